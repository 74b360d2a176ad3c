#include "member_lookup.h"

#include <algorithm>

#include "log.h"
#include "loyalty/base/hash.h"
#include "loyalty/sync/messages.h"

namespace loyalty::agent {

MemberLookup::MemberLookup(MemberLookupOptions options, MakeTransport make_transport,
                           SyncLocal& local, const Clock& clock)
    : opt_(std::move(options)),
      make_transport_(std::move(make_transport)),
      local_(local),
      clock_(clock) {}

Result<std::string> MemberLookup::Ask(std::string_view route, const std::string& body,
                                      int timeout_ms) {
  auto transport = make_transport_();
  if (!transport.ok()) return transport.status();
  auto ex = (*transport)
                ->Send("POST", "/v1/sync/" + opt_.terminal_id + "/" + std::string(route),
                       "application/json", body, timeout_ms);
  if (!ex.ok()) return ex.status();
  if (ex->status != 200)
    return Status::Error(ex->status == 429 ? ErrorCode::kRateLimited : ErrorCode::kBadResponse,
                         "HQ answered " + std::to_string(ex->status));
  return std::move(ex->body);
}

Result<sync::MembersResponse> MemberLookup::AdoptOne(const std::string& body,
                                                     std::optional<uint64_t> member_id) {
  auto found = sync::ParseMessage<sync::MembersResponse>(body);
  if (!found.ok()) return found.status();
  if (found->members.size() > 1 ||
      (member_id && !found->members.empty() && found->members[0].member_id != *member_id))
    return Status::Error(ErrorCode::kBadResponse, "HQ sent a member not asked for");
  if (found->identities) {
    for (const auto& i : *found->identities) {
      if (found->members.empty() || i.member_id != found->members[0].member_id)
        return Status::Error(ErrorCode::kBadResponse, "HQ sent an identity not asked for");
    }
  }
  if (!found->members.empty()) {
    if (Status s = local_.AdoptMembers(*found); !s.ok()) return s;
  }
  return found;
}

void MemberLookup::Pause() { paused_until_mono_ms_.store(clock_.mono_ms() + opt_.pause_ms); }

bool MemberLookup::Lookup(const codes::Identified& id) {
  if (opt_.timeout_ms <= 0) return false;
  std::lock_guard<std::mutex> g(mu_);
  const int64_t start = clock_.mono_ms();
  if (start < paused_until_mono_ms_.load()) return false;
  sync::MembersRequest req;
  req.identities.emplace();
  req.store_id = opt_.store_id;
  std::string what;  // for the log: never the card number itself
  switch (id.kind) {
    case codes::CodeKind::kDynamic:
      req.member_ids.push_back(id.member_id);
      what = "dynamic";
      break;
    case codes::CodeKind::kStatic:
      req.identities->push_back({"card", id.card_number});
      what = "card";
      break;
    case codes::CodeKind::kChannel:
      req.identities->push_back({id.channel, id.external_id});
      what = id.channel;
      break;
    case codes::CodeKind::kPhone:  // LookupPhone asks by number
      return false;
  }
  auto fail = [&](const Status& s) {
    Pause();
    LogEvent(Level::kWarn, "member_lookup_failed",
             {{"kind", what},
              {"code_hash", id.code_hash.substr(0, 12)},
              {"reason", s.ToString()},
              {"paused_s", opt_.pause_ms / 1000}});
    return false;
  };
  auto answer = Ask("members", sync::SerializeMessage(req), opt_.timeout_ms);
  if (!answer.ok()) return fail(answer.status());
  // Only what was asked for: one member, the one of the dynamic code or the card's holder.
  auto found =
      AdoptOne(*answer, id.kind == codes::CodeKind::kDynamic ? std::optional<uint64_t>(id.member_id)
                                                             : std::nullopt);
  if (!found.ok()) return fail(found.status());
  LogEvent(Level::kInfo, "member_lookup",
           {{"kind", what},
            {"code_hash", id.code_hash.substr(0, 12)},
            {"found", !found->members.empty()},
            {"member_id",
             found->members.empty() ? std::string() : std::to_string(found->members[0].member_id)},
            {"ms", clock_.mono_ms() - start}});
  return !found->members.empty();
}

std::optional<uint64_t> MemberLookup::LookupPhone(const std::string& digits) {
  if (opt_.timeout_ms <= 0) return std::nullopt;
  std::lock_guard<std::mutex> g(mu_);
  const int64_t start = clock_.mono_ms();
  if (start < paused_until_mono_ms_.load()) return std::nullopt;
  auto fail = [&](const Status& s) -> std::optional<uint64_t> {
    Pause();
    LogEvent(Level::kWarn, "member_lookup_failed",
             {{"kind", "phone"},
              {"code_hash", ""},
              {"reason", s.ToString()},
              {"paused_s", opt_.pause_ms / 1000}});
    return std::nullopt;
  };
  sync::MembersRequest req;
  req.identities.emplace();
  req.phone = digits;
  req.store_id = opt_.store_id;
  auto answer = Ask("members", sync::SerializeMessage(req), opt_.timeout_ms);
  if (!answer.ok()) {
    // HQ's limit on phone look-ups is an answer, not an outage: no pause.
    if (answer.status().code() == ErrorCode::kRateLimited) return std::nullopt;
    return fail(answer.status());
  }
  auto found = AdoptOne(*answer, std::nullopt);
  if (!found.ok()) return fail(found.status());
  const uint64_t id = found->members.empty() ? 0 : found->members[0].member_id;
  LogEvent(Level::kInfo, "member_lookup",
           {{"kind", "phone"},
            {"code_hash", ""},
            {"found", id != 0},
            {"member_id", id ? std::to_string(id) : std::string()},
            {"ms", clock_.mono_ms() - start}});
  if (id == 0) return std::nullopt;
  return id;
}

std::optional<checkout::RemoteSale> MemberLookup::FetchSale(const std::string& sold_at,
                                                            const std::string& checkout_id) {
  if (opt_.timeout_ms <= 0) return std::nullopt;
  std::lock_guard<std::mutex> g(mu_);
  const int64_t start = clock_.mono_ms();
  if (start < paused_until_mono_ms_.load()) return std::nullopt;
  auto fail = [&](const Status& s) -> std::optional<checkout::RemoteSale> {
    Pause();
    LogEvent(Level::kWarn, "sale_fetch_failed",
             {{"sold_at", sold_at},
              {"checkout_id", checkout_id},
              {"reason", s.ToString()},
              {"paused_s", opt_.pause_ms / 1000}});
    return std::nullopt;
  };
  sync::SaleRequest req{sold_at, checkout_id, opt_.store_id};
  // Another terminal's sale cannot be refunded without HQ (or the receipt): worth a longer
  // wait than this terminal's own, which only learns of units refunded elsewhere.
  auto answer = Ask(
      "sale", sync::SerializeMessage(req),
      sold_at == opt_.terminal_id ? opt_.timeout_ms : std::max(opt_.timeout_ms, kSaleTimeoutMs));
  if (!answer.ok()) return fail(answer.status());
  auto found = sync::ParseMessage<sync::SaleResponse>(*answer);
  if (!found.ok()) return fail(found.status());
  // Only what was asked for: that checkout, its member, that member's identities.
  if (found->checkout && found->checkout->checkout_id != checkout_id)
    return fail(Status::Error(ErrorCode::kBadResponse, "HQ sent another checkout"));
  const std::optional<uint64_t> member =
      found->checkout ? found->checkout->member_id : std::nullopt;
  for (const auto& snap : found->members)
    if (!member || snap.member_id != *member)
      return fail(Status::Error(ErrorCode::kBadResponse, "HQ sent a member not asked for"));
  for (const auto& i : found->identities)
    if (!member || i.member_id != *member)
      return fail(Status::Error(ErrorCode::kBadResponse, "HQ sent an identity not asked for"));
  for (const auto& o : found->refunds)
    if (o.refund.checkout_id != checkout_id || o.terminal_id == opt_.terminal_id)
      return fail(Status::Error(ErrorCode::kBadResponse, "HQ sent a refund not asked for"));
  if (!found->members.empty()) {
    sync::MembersResponse adopt;
    adopt.members = found->members;
    adopt.identities = found->identities;
    if (Status s = local_.AdoptMembers(adopt); !s.ok()) return fail(s);
  }
  checkout::RemoteSale sale;
  sale.checkout = std::move(found->checkout);
  for (auto& o : found->refunds) sale.other_refunds.push_back(std::move(o.refund));
  LogEvent(Level::kInfo, "sale_fetch",
           {{"sold_at", sold_at},
            {"checkout_id", checkout_id},
            {"found", sale.checkout.has_value()},
            {"refunds_elsewhere", sale.other_refunds.size()},
            {"ms", clock_.mono_ms() - start}});
  return sale;
}

}  // namespace loyalty::agent
