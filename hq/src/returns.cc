// Returns anywhere (docs/pos-api.md, "Returns anywhere"; docs/hq.md, "Returns at another
// terminal"): the sale route a refunding terminal asks, the certification of terminals'
// receipt keys, the sale a refund is checked against (HQ's checkout record, or the
// receipt's signed return token while HQ has no record), and the refunds-by-cashier view.
#include "service_internal.h"

#include <algorithm>
#include <string>

#include "loyalty/base/encoding.h"
#include "loyalty/codes/mint.h"
#include "loyalty/codes/return_token.h"
#include "loyalty/sync/sale_basis.h"

namespace loyalty::hq {

using namespace internal;

namespace {

// How long a receipt key's certificate lasts: a terminal renews it at a sync when less than
// a third is left (docs/sync.md).
constexpr int64_t kReceiptKeyDays = 90;

}  // namespace

std::map<int, std::string> HqService::Impl::PublicKeys() const {
  std::map<int, std::string> out;
  for (const auto& [id, seed] : opt.signing_seeds) out[id] = codes::Ed25519PublicFromSeed(seed);
  return out;
}

Result<HqService::Impl::Sale> HqService::Impl::SaleOf(const std::string& tid,
                                                      const sync::Refund& f) {
  Sale sale;
  sale.sold_at = f.sold_at.empty() ? tid : f.sold_at;
  auto verdict = store.CheckoutRefused(sale.sold_at, f.checkout_id);
  if (!verdict.ok()) return verdict.status();
  if (*verdict) {
    auto c = store.GetCheckout(sale.sold_at, f.checkout_id);
    if (!c.ok()) return c.status();
    if (**verdict) {
      sale.reason = "checkout_refused";
      if (*c && (*c)->member_id) sale.refused_member = *(*c)->member_id;
      return sale;
    }
    if (*c) {
      sale.checkout = std::move(**c);
      return sale;
    }
  }
  // No record of the sale at HQ (its terminal has not uploaded it yet): a refund made
  // offline from the receipt carries the selling terminal's signed token.
  if (sale.sold_at != tid && !f.receipt.empty()) {
    auto b = codes::VerifyReturnToken(f.receipt, PublicKeys(), &receipt_certs);
    if (!b.ok()) {
      sale.reason = "receipt_invalid";
      return sale;
    }
    if (b->terminal_id != sale.sold_at || b->checkout_id != f.checkout_id) {
      sale.reason = "receipt_mismatch";
      return sale;
    }
    sale.checkout = sync::CheckoutOfReturnBasis(*b);
    sale.from_token = true;
    return sale;
  }
  sale.reason = "checkout_unknown";
  return sale;
}

bool HqService::Impl::AllowSaleFetch(const std::string& tid, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(shared->limits_mu);
  return TakeHourlySlot(shared->sale_fetches[tid], kSaleFetchesPerHour, now_ms);
}

bool HqService::Impl::AllowPhoneLookup(const std::string& tid, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(shared->limits_mu);
  return TakeHourlySlot(shared->phone_lookups[tid], kPhoneLookupsPerHour, now_ms);
}

http::Response HqService::Impl::SaleRoute(const std::string& tid, const http::Request& req) {
  auto m = sync::ParseMessage<sync::SaleRequest>(req.body);
  if (!m.ok()) return FromStatus(m.status());
  if (!AllowSaleFetch(tid, clock.now_ms())) {
    Report("sale_fetch_limited", {{"terminal_id", tid}, {"per_hour", kSaleFetchesPerHour}});
    return Error(ErrorCode::kRateLimited, "more than " + std::to_string(kSaleFetchesPerHour) +
                                              " sales asked for in the last hour by this terminal");
  }
  sync::SaleResponse out;
  Status s = Transact([&]() -> Status {
    out = sync::SaleResponse{};
    auto verdict = store.CheckoutRefused(m->terminal_id, m->checkout_id);
    if (!verdict.ok()) return verdict.status();
    if (!*verdict || **verdict) return Status::Ok();  // none, or refused: nothing to refund
    auto c = store.GetCheckout(m->terminal_id, m->checkout_id);
    if (!c.ok()) return c.status();
    if (!*c) return Status::Ok();
    out.checkout = std::move(**c);
    // The request and response texts stay with the selling terminal: the refunding one
    // needs the lines, their allocations and the points.
    out.checkout->request_json.clear();
    out.checkout->response_json.clear();
    auto refunds = store.AcceptedRefundsOfSale(m->terminal_id, m->checkout_id);
    if (!refunds.ok()) return refunds.status();
    for (auto& [by, r] : *refunds) {
      if (by == tid) continue;  // the asking terminal knows its own
      r.response_json.clear();
      r.receipt.clear();
      out.refunds.push_back({by, std::move(r)});
      if (out.refunds.size() >= sync::kMaxSaleRefunds) break;
    }
    // The member: the refunding terminal writes the claw-back and restore for them, and
    // holds them from now on (their balance set covers them).
    if (!out.checkout->member_id) return Status::Ok();
    const uint64_t id = *out.checkout->member_id;
    auto term = store.GetTerminal(tid);
    if (!term.ok()) return term.status();
    auto rec = store.GetMember(id);
    if (!rec.ok()) return rec.status();
    if (!*rec) return Status::Ok();
    // The store the request names, as a look-up's (sync_routes.cc, Members), else the one
    // of the terminal's last hello.
    const std::string store_id = m->store_id ? *m->store_id : (*term ? (*term)->store_id : "");
    if (Status s = ScopeMember(store_id, id, "asked", clock.now_ms()); !s.ok()) return s;
    // The terminal takes this snapshot: what it could know of the member from now on.
    const int64_t at = clock.now_ms();
    auto snap = Snapshot(**rec, *term ? (*term)->head_seq : 0, store_id, at);
    if (!snap.ok()) return snap.status();
    if (Status v = sync::ValidateSnapshot(*snap); !v.ok()) return Status::Ok();
    if (Status h = store.SendMember(tid, id, (*rec)->balance); !h.ok()) return h;
    if (Status d = store.AddMemberDownloads(tid, {id}, at); !d.ok()) return d;
    out.members.push_back(std::move(*snap));
    auto ids = store.IdentitiesOf(id);
    if (!ids.ok()) return ids.status();
    out.identities = std::move(*ids);
    return Status::Ok();
  });
  if (!s.ok()) return FromStatus(s);
  Report("sale_fetched", {{"terminal_id", tid},
                          {"sold_at", m->terminal_id},
                          {"checkout_id", m->checkout_id},
                          {"found", out.checkout.has_value()},
                          {"refunds", out.refunds.size()}});
  return JsonResponse(200, sync::ToJson(out));
}

http::Response HqService::Impl::ReceiptKey(const std::string& tid, const http::Request& req) {
  auto m = sync::ParseMessage<sync::ReceiptKeyRequest>(req.body);
  if (!m.ok()) return FromStatus(m.status());
  if (opt.signing_seeds.empty()) return Error(ErrorCode::kInternal, "no signing key");
  auto key = opt.signing_seeds.rbegin();  // the highest key id is the current one
  const int64_t now_ms = clock.now_ms();
  const int64_t not_after = clock.now_s() + kReceiptKeyDays * 86400;
  sync::ReceiptKeyResponse out;
  out.certificate = codes::MakeReceiptKeyCert(key->second, static_cast<uint8_t>(key->first), tid,
                                              m->public_key, static_cast<uint32_t>(not_after));
  if (out.certificate.empty())
    return Error(ErrorCode::kInternal, "the receipt key could not be certified");
  Status s = Transact(
      [&]() -> Status { return store.AddReceiptKey(tid, Base64UrlEncode(m->public_key), now_ms); });
  if (!s.ok()) return FromStatus(s);
  Report("receipt_key_certified",
         {{"terminal_id", tid}, {"key_id", key->first}, {"not_after", FormatRfc3339(not_after)}});
  return JsonResponse(200, sync::ToJson(out));
}

// GET /v1/refunds?store_id=&from=&to= (admin): refunds by cashier and terminal, the view
// store managers and loss prevention read (docs/hq.md, "Refunds by cashier").
http::Response HqService::Impl::RefundsByCashier(const http::Request& req) {
  std::string store_id;
  int64_t to_ms = clock.now_ms(), from_ms = to_ms - 7 * 86'400'000LL;
  for (const auto& [k, v] : req.query) {
    if (k == "store_id") {
      if (v.size() > 64) return Error(ErrorCode::kBadRequest, "store_id is too long");
      store_id = v;
    } else if (k == "from" || k == "to") {
      auto t = ParseRfc3339(v);
      if (!t) return Error(ErrorCode::kBadRequest, k + " must be an RFC 3339 UTC time");
      (k == "from" ? from_ms : to_ms) = *t * 1000;
    } else {
      return Error(ErrorCode::kBadRequest, "unknown parameter " + k);
    }
  }
  if (from_ms > to_ms) return Error(ErrorCode::kBadRequest, "from is after to");
  auto rows = store.RefundsByCashier(store_id, from_ms, to_ms);
  if (!rows.ok()) return FromStatus(rows.status());
  json list = json::array();
  for (const auto& r : *rows) {
    list.push_back({{"cashier_id", r.cashier_id.empty() ? json(nullptr) : json(r.cashier_id)},
                    {"terminal_id", r.terminal_id},
                    {"store_id", r.store_id},
                    {"refunds", r.refunds},
                    {"refund_cents", r.refund_cents},
                    {"refused", r.refused},
                    {"of_other_terminals", r.other_terminal}});
  }
  return JsonResponse(200, json{{"from", FormatRfc3339(from_ms / 1000)},
                                {"to", FormatRfc3339(to_ms / 1000)},
                                {"store_id", store_id.empty() ? json(nullptr) : json(store_id)},
                                {"cashiers", std::move(list)}});
}

}  // namespace loyalty::hq
