#include "loyalty/checkout/service.h"

#include <algorithm>
#include <cctype>

#include "loyalty/base/encoding.h"
#include "loyalty/base/hash.h"
#include "loyalty/base/ids.h"
#include "loyalty/base/json_writer.h"
#include "loyalty/base/phone.h"
#include "loyalty/base/rate_limit.h"
#include "loyalty/base/time.h"
#include "loyalty/checkout/lots.h"
#include "loyalty/checkout/requests.h"
#include "loyalty/checkout/views.h"
#include "loyalty/codes/enrol_claim.h"
#include "loyalty/sync/sale_basis.h"

namespace loyalty::checkout {

using nlohmann::json;

namespace {

Status Err(ErrorCode code, std::string msg) { return Status::Error(code, std::move(msg)); }

std::string MemberIdString(uint64_t id) { return std::to_string(id); }

// The ledger error of a failed write: anything but a constraint on our own ids means the
// ledger cannot be written right now.
Status WriteError(const Status& s) {
  if (s.code() == ErrorCode::kUnavailable || s.code() == ErrorCode::kLedgerDamaged) return s;
  return Status::Error(ErrorCode::kUnavailable, "ledger write failed: " + s.message());
}

// The error of a failed ledger read: the request is refused (503), never answered as if
// the row were absent (pos-api.md: a ledger read that fails is an error, never an answer).
Status ReadError(const Status& s) {
  if (s.code() == ErrorCode::kUnavailable || s.code() == ErrorCode::kLedgerDamaged) return s;
  return Status::Error(ErrorCode::kUnavailable, "ledger read failed: " + s.message());
}

// A ledger latched as damaged answers nothing: a row it does not find may be a row on a
// damaged page (operations.md).
Status DamagedError(const ledger::Ledger& l) {
  return Status::Error(ErrorCode::kLedgerDamaged,
                       "the ledger file is damaged (" + l.damage_reason() +
                           "); see docs/operations.md, \"A damaged ledger\"");
}

// The revocation check the code verifier calls: a failed read counts as revoked (the code
// is refused) and is kept, so the caller answers with the read's error instead.
struct RevocationCheck {
  ledger::Ledger& l;
  Status error;
  bool operator()(std::string_view pk) {
    auto r = l.IsRevoked(pk);
    if (r.ok()) return *r;
    if (error.ok()) error = ReadError(r.status());
    return true;
  }
};

// Points of a lot are valid through expires_at_s (the last second of the expiry month).
bool LotExpired(const model::Lot& l, int64_t now_s) {
  return l.expires_at_s != model::kNeverExpires && now_s > l.expires_at_s;
}

}  // namespace

struct CheckoutService::Resolved {
  bool has_member = false;
  bool provisional = false;  // a valid dynamic code of a member this terminal has not seen
  ledger::MemberRow member;
  codes::Identified id;
};

CheckoutService::CheckoutService(ServiceOptions opts, const Clock& clock,
                                 const codes::CodeVerifier& verifier,
                                 codes::TrustedTime& trusted_time, TimeZone tz,
                                 std::shared_ptr<const rules::Rules> rules, ServiceEvents events)
    : opts_(std::move(opts)),
      clock_(clock),
      verifier_(verifier),
      trusted_time_(trusted_time),
      tz_(std::move(tz)),
      events_(std::move(events)),
      rules_(std::move(rules)) {}

std::shared_ptr<const rules::Rules> CheckoutService::rules() const {
  std::lock_guard<std::mutex> g(mu_);
  return rules_;
}

void CheckoutService::SetRules(std::shared_ptr<const rules::Rules> r) {
  std::lock_guard<std::mutex> g(mu_);
  rules_ = std::move(r);
}

int64_t CheckoutService::NowS() const { return trusted_time_.NowS(clock_); }

int64_t CheckoutService::NowMs() const {
  auto est = trusted_time_.untrusted(clock_) ? trusted_time_.EstimateMs(clock_) : std::nullopt;
  return est ? *est : clock_.now_ms();
}

void CheckoutService::Log(const std::string& event, const json& fields) {
  if (events_.log) events_.log(event, fields);
}

std::string CheckoutService::RememberIdentification(const codes::Identified& id, int64_t now_s) {
  std::string key = HexEncode(RandomBytes(12));
  const int64_t expires_at_s = now_s + opts_.identification_ttl_s;
  std::lock_guard<std::mutex> g(mu_);
  // Bounded memory, whatever the POS does: at the cap, the ones nearest expiry (the expired
  // first) are dropped, in O(log n) through the expiry index.
  while (!identifications_.empty() && identifications_.size() >= opts_.max_identifications) {
    auto nearest = identification_expiries_.begin();
    identifications_.erase(nearest->second);
    identification_expiries_.erase(nearest);
  }
  identifications_[key] = Identification{id, expires_at_s};
  identification_expiries_.emplace(expires_at_s, key);
  return key;
}

std::optional<CheckoutService::Identification> CheckoutService::FindIdentification(
    const std::string& id, int64_t now_s) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = identifications_.find(id);
  if (it == identifications_.end() || it->second.expires_at_s < now_s) return std::nullopt;
  return it->second;
}

int64_t CheckoutService::AvailableBalance(const std::vector<model::Lot>& lots,
                                          int64_t now_s) const {
  int64_t sum = 0;
  for (const auto& l : lots)
    if (!LotExpired(l, now_s)) sum += l.remaining;
  return sum;
}

bool CheckoutService::IsBirthdayMonth(const ledger::MemberRow& m, int64_t now_s) const {
  return rules::IsBirthdayMonth(m.birthday_month, now_s,
                                [this](int64_t t) { return tz_.UtcOffsetAt(t); });
}

Result<MemberView> CheckoutService::ViewMember(ledger::Ledger& l, const ledger::MemberRow& m,
                                               bool provisional, int64_t now_s,
                                               const rules::Rules& r,
                                               const std::vector<model::Lot>* known_lots) {
  MemberView v;
  v.member = m;
  v.provisional = provisional;
  v.birthday_month = IsBirthdayMonth(m, now_s);
  v.stale = !m.snapshot_at_s || now_s - *m.snapshot_at_s > r.stale_after_s;
  if (provisional) return v;
  std::vector<model::Lot> read;
  if (!known_lots) {
    auto lots = l.Lots(m.member_id);
    if (!lots.ok()) return ReadError(lots.status());
    read = std::move(*lots);
  }
  const auto& rows = known_lots ? *known_lots : read;
  v.available_balance = AvailableBalance(rows, now_s);
  auto coupons = l.UsableCoupons(m.member_id, now_s, kMemberViewCoupons);
  if (!coupons.ok()) return ReadError(coupons.status());
  for (auto& c : *coupons) v.coupons.push_back(std::move(static_cast<model::Coupon&>(c)));
  // Lots expiring together are shown as one (all points earned in a month expire at the
  // same second), so the view stays short however long the member's history is.
  auto& by_expiry = v.lots;
  by_expiry.reserve(rows.size());
  for (const auto& lot : rows)
    if (lot.remaining > 0 && !LotExpired(lot, now_s))
      by_expiry.push_back({lot.expires_at_s, lot.remaining});
  // Ledger::Lots returns them by expiry already; a caller's list is not trusted to.
  auto earlier = [](const ExpiringPoints& a, const ExpiringPoints& b) {
    return a.expires_at_s < b.expires_at_s;
  };
  if (!std::is_sorted(by_expiry.begin(), by_expiry.end(), earlier))
    std::stable_sort(by_expiry.begin(), by_expiry.end(), earlier);
  size_t n = 0;
  for (size_t i = 0; i < by_expiry.size(); ++i) {
    if (n > 0 && by_expiry[n - 1].expires_at_s == by_expiry[i].expires_at_s)
      by_expiry[n - 1].points += by_expiry[i].points;
    else
      by_expiry[n++] = by_expiry[i];
  }
  by_expiry.resize(n);
  return v;
}

Result<CheckoutService::Resolved> CheckoutService::ResolveIdentified(ledger::Ledger& l,
                                                                     const codes::Identified& id,
                                                                     const std::string& checkout_id,
                                                                     int64_t now_s) {
  Resolved r;
  r.id = id;
  uint64_t member_id = 0;
  switch (id.kind) {
    case codes::CodeKind::kDynamic: {
      auto bound = l.CodeBoundTo(id.code_hash);
      if (!bound.ok()) return ReadError(bound.status());
      if (*bound && **bound != checkout_id)
        return Err(ErrorCode::kCodeReplayed,
                   "this member code was already used for another checkout");
      member_id = id.member_id;
      break;
    }
    case codes::CodeKind::kStatic: {
      auto m = l.LookupIdentity("card", id.card_number);
      if (!m.ok()) return ReadError(m.status());
      if (!*m) return Err(ErrorCode::kMemberUnknown, "no member holds this card number");
      member_id = **m;
      break;
    }
    case codes::CodeKind::kPhone:
      member_id = id.member_id;
      break;
    case codes::CodeKind::kChannel: {
      auto m = l.LookupIdentity(id.channel, id.external_id);
      if (!m.ok()) return ReadError(m.status());
      if (!*m)
        return Err(ErrorCode::kMemberUnknown,
                   "no member is known for this " + id.channel + " card");
      member_id = **m;
      break;
    }
  }
  r.has_member = true;
  auto m = l.GetMember(member_id);
  if (!m.ok()) return ReadError(m.status());
  if (*m) {
    r.member = **m;
  } else if (id.kind == codes::CodeKind::kDynamic) {
    // The certificate proves HQ enrolled the member; the next sync fills in the rest.
    r.provisional = true;
    r.member.member_id = member_id;
  } else {
    return Err(ErrorCode::kMemberUnknown,
               "member " + std::to_string(member_id) + " is not in this terminal's ledger");
  }
  return r;
}

Result<CheckoutService::Resolved> CheckoutService::ResolveMember(ledger::Ledger& l,
                                                                 const json& body,
                                                                 const std::string& checkout_id,
                                                                 int64_t now_s) {
  auto ident = body.find("identification_id");
  if (ident != body.end() && ident->is_string()) {
    auto found = FindIdentification(ident->get<std::string>(), now_s);
    if (!found) return Err(ErrorCode::kNotFound, "identification_id is unknown or has expired");
    // A device key revoked since the scan (a sync brought the revocation) no longer
    // identifies anyone: the identification is judged again, as the code itself would be.
    if (found->id.kind == codes::CodeKind::kDynamic) {
      auto revoked = l.IsRevoked(found->id.device_public_key);
      if (!revoked.ok()) return ReadError(revoked.status());
      if (*revoked)
        return Err(ErrorCode::kCodeRevoked, "the device key of this member code was revoked");
    }
    return ResolveIdentified(l, found->id, checkout_id, now_s);
  }
  auto code = body.find("member_code");
  if (code != body.end() && code->is_string()) {
    RevocationCheck revoked{l, {}};
    auto id = verifier_.Identify(code->get<std::string>(), now_s, std::ref(revoked));
    if (!revoked.error.ok()) return revoked.error;
    if (!id.ok()) return id.status();
    return ResolveIdentified(l, *id, checkout_id, now_s);
  }
  return Resolved{};
}

void CheckoutService::SetMemberLookup(std::function<bool(const codes::Identified&)> lookup) {
  lookup_ = std::move(lookup);
}

void CheckoutService::LookUpIfUnheld(ledger::Ledger& reader, const json& body, bool is_commit) {
  if (!lookup_ || reader.damaged()) return;
  auto code = body.find("member_code");
  if (code == body.end() || !code->is_string()) return;
  const std::string& text = code->get_ref<const std::string&>();
  if (text.rfind(codes::kDynamicPrefix, 0) == 0) return;
  const int64_t now_s = NowS();
  RevocationCheck revoked{reader, {}};
  auto id = verifier_.Identify(text, now_s, std::ref(revoked));
  if (!id.ok() || id->kind == codes::CodeKind::kDynamic) return;  // the use case says why
  auto resolved = ResolveIdentified(reader, *id, "", now_s);
  if (resolved.ok() || resolved.status().code() != ErrorCode::kMemberUnknown) return;
  // What the use case refuses before it looks at the member is refused without asking HQ
  // (parsed only here, for a member HQ would be asked about: the use case parses it anyway).
  auto req = ParseCheckoutRequest(body, is_commit);
  if (!req.ok()) return;
  if (is_commit && req->rules_version && *req->rules_version != rules()->version) return;
  (void)lookup_(*id);
}

Result<IdentifyOutcome> CheckoutService::Identify(ledger::Ledger& reader, std::string_view text) {
  if (reader.damaged()) return DamagedError(reader);
  int64_t now_s = NowS();
  RevocationCheck revoked{reader, {}};
  auto id = verifier_.Identify(text, now_s, std::ref(revoked));
  if (!revoked.error.ok()) return revoked.error;
  if (!id.ok()) return id.status();
  if (id->kind == codes::CodeKind::kDynamic) {
    auto bound = reader.CodeBoundTo(id->code_hash);
    if (!bound.ok()) return ReadError(bound.status());
    if (*bound)
      return Err(ErrorCode::kCodeReplayed, "this member code was already used for a checkout");
  }
  auto resolved = ResolveIdentified(reader, *id, /*checkout_id=*/"", now_s);
  const bool unheld =
      resolved.ok() ? resolved->provisional : resolved.status().code() == ErrorCode::kMemberUnknown;
  if (unheld && lookup_ && lookup_(*id)) resolved = ResolveIdentified(reader, *id, "", now_s);
  if (!resolved.ok()) return resolved.status();
  return IdentifyAnswer(reader, *id, *resolved, now_s);
}

Result<IdentifyOutcome> CheckoutService::IdentifyAnswer(ledger::Ledger& reader,
                                                        const codes::Identified& id,
                                                        const Resolved& resolved, int64_t now_s) {
  auto r = rules();
  auto member = ViewMember(reader, resolved.member, resolved.provisional, now_s, *r);
  if (!member.ok()) return member.status();
  IdentifyOutcome o;
  o.identification_id = RememberIdentification(id, now_s);
  o.kind = id.kind;
  if (id.kind == codes::CodeKind::kChannel) o.channel = id.channel;
  o.expires_at_s = now_s + opts_.identification_ttl_s;
  o.member = std::move(*member);
  return o;
}

void CheckoutService::SetPhoneKeys(std::vector<std::pair<int64_t, std::string>> keys) {
  std::lock_guard<std::mutex> g(mu_);
  phone_keys_ = std::move(keys);
}

void CheckoutService::SetPhoneFetcher(
    std::function<std::optional<uint64_t>(const std::string& digits)> fetch) {
  fetch_phone_ = std::move(fetch);
}

Result<IdentifyOutcome> CheckoutService::LookupPhone(ledger::Ledger& reader,
                                                     std::string_view typed) {
  if (reader.damaged()) return DamagedError(reader);
  auto digits = ParseTypedPhone(typed);
  if (!digits)
    return Err(ErrorCode::kBadRequest,
               "phone must be 5 to 20 digits (spaces, '-', '+', '(' and ')' may separate them)");
  const std::string not_found = "no member of this store can be found by this phone number";
  if (opts_.phone_lookups_per_hour <= 0)
    return Err(ErrorCode::kMemberUnknown, "phone look-up is turned off at this terminal");
  const int64_t start = clock_.mono_ms();
  std::vector<std::pair<int64_t, std::string>> keys;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (!TakeHourlySlot(phone_lookups_, static_cast<size_t>(opts_.phone_lookups_per_hour), start)) {
      Log("phone_lookup_limited", {{"per_hour", opts_.phone_lookups_per_hour}});
      return Err(ErrorCode::kRateLimited,
                 "more than " + std::to_string(opts_.phone_lookups_per_hour) +
                     " phone look-ups in the last hour at this terminal: scan the member's code");
    }
    keys = phone_keys_;
  }
  // Each key the terminal holds (the current one, and the one before during a rotation);
  // two members under one number (a shared phone) name neither.
  uint64_t member_id = 0;
  std::string via = "none";
  bool shared = false;  // HQ would name neither either: not asked
  for (const auto& [key_id, key] : keys) {
    auto found = reader.MembersByPhoneHash(key_id, KeyedHashHex(key, *digits), 2);
    if (!found.ok()) return ReadError(found.status());
    if (found->size() == 1) {
      member_id = found->front();
      via = "ledger";
      break;
    }
    shared = found->size() > 1;
    if (shared) break;
  }
  if (member_id == 0 && !shared && fetch_phone_) {
    if (auto id = fetch_phone_(*digits)) {
      member_id = *id;
      via = "hq";
    }
  }
  auto done = [&](bool found) {
    Log("phone_lookup", {{"found", found},
                         {"via", via},
                         {"member_id", found ? std::to_string(member_id) : std::string()},
                         {"ms", clock_.mono_ms() - start}});
  };
  if (member_id == 0) {
    done(false);
    return Err(ErrorCode::kMemberUnknown, not_found);
  }
  const int64_t now_s = NowS();
  codes::Identified id;
  id.kind = codes::CodeKind::kPhone;
  id.member_id = member_id;
  auto resolved = ResolveIdentified(reader, id, /*checkout_id=*/"", now_s);
  if (!resolved.ok()) {
    done(false);
    if (resolved.status().code() == ErrorCode::kMemberUnknown)
      return Err(ErrorCode::kMemberUnknown, not_found);
    return resolved.status();
  }
  done(true);
  return IdentifyAnswer(reader, id, *resolved, now_s);
}

namespace {

struct Priced {
  rules::Quote quote;
  std::optional<ledger::CouponRow> coupon;
};

Result<std::optional<ledger::CouponRow>> LoadCoupon(ledger::Ledger& l, const CheckoutRequest& req,
                                                    bool has_member, uint64_t member_id,
                                                    int64_t now_s) {
  if (!req.coupon_id) return std::optional<ledger::CouponRow>();
  if (!has_member)
    return Status::Error(ErrorCode::kCouponInvalid, "a coupon needs an identified member");
  auto read = l.GetCoupon(*req.coupon_id);
  if (!read.ok()) return ReadError(read.status());
  const auto& c = *read;
  if (!c) return Status::Error(ErrorCode::kCouponInvalid, "unknown coupon " + *req.coupon_id);
  if (!c->ForMember(member_id))
    return Status::Error(ErrorCode::kCouponInvalid,
                         "coupon " + *req.coupon_id + " belongs to another member");
  if (!c->ValidAt(now_s))
    return Status::Error(ErrorCode::kCouponInvalid,
                         "coupon " + *req.coupon_id + " is outside its validity period");
  if (!c->used_by_checkout.empty() && c->used_by_checkout != req.checkout_id)
    return Status::Error(ErrorCode::kCouponUsed, "coupon " + *req.coupon_id + " was already used");
  return std::optional<ledger::CouponRow>(*c);
}

// "best_coupon": the usable coupon (Ledger::UsableCoupons, those the member view lists)
// that takes the most off this basket; ties: the one ending soonest, then by id. None when
// no coupon takes anything off.
Result<std::optional<ledger::CouponRow>> BestCoupon(ledger::Ledger& l, const rules::Rules& r,
                                                    const rules::QuoteInput& in, uint64_t member_id,
                                                    int64_t now_s) {
  auto usable = l.UsableCoupons(member_id, now_s, kMemberViewCoupons);
  if (!usable.ok()) return ReadError(usable.status());
  std::optional<ledger::CouponRow> best;
  int64_t best_off = 0;
  for (auto& c : *usable) {
    rules::QuoteInput with = in;
    with.coupon = rules::CouponTerms(c);
    auto q = rules::ComputeQuote(r, with);
    if (!q.ok() || !q->coupon_applied || q->coupon_discount_cents <= best_off) continue;
    best_off = q->coupon_discount_cents;
    best = std::move(c);
  }
  return best;
}

}  // namespace

Result<QuoteOutcome> CheckoutService::Quote(ledger::Ledger& reader, const json& body) {
  auto req = ParseCheckoutRequest(body, /*is_commit=*/false);
  if (!req.ok()) return req.status();
  if (reader.damaged()) return DamagedError(reader);
  int64_t now_s = NowS();
  auto r = rules();
  auto who = ResolveMember(reader, body, req->checkout_id, now_s);
  if (!who.ok()) return who.status();
  auto coupon = LoadCoupon(reader, *req, who->has_member, who->member.member_id, now_s);
  if (!coupon.ok()) return coupon.status();

  rules::QuoteInput in;
  in.lines = req->lines;
  in.redeem = req->redeem;
  if (*coupon) in.coupon = rules::CouponTerms(**coupon);
  QuoteOutcome o;
  o.checkout_id = req->checkout_id;
  o.rules_version = r->version;
  if (who->has_member) {
    rules::MemberContext ctx;
    const auto& m = who->member;
    ctx.tier = m.tier;
    ctx.frozen = m.status == "frozen";
    ctx.static_identification = who->id.kind != codes::CodeKind::kDynamic;
    std::vector<model::Lot> lots;
    int64_t last = 0;
    if (!who->provisional) {
      auto read = reader.Lots(m.member_id);
      if (!read.ok()) return ReadError(read.status());
      lots = std::move(*read);
      auto redeemed = reader.LastRedeemAtMs(m.member_id);
      if (!redeemed.ok()) return ReadError(redeemed.status());
      last = *redeemed;
    }
    ctx.available_balance = who->provisional ? 0 : AvailableBalance(lots, now_s);
    ctx.stale = !m.snapshot_at_s || now_s - *m.snapshot_at_s > r->stale_after_s;
    ctx.birthday_month = IsBirthdayMonth(m, now_s);
    ctx.in_redeem_cooldown = last > 0 && NowMs() - last < r->redeem_cooldown_s * 1000;
    in.member = ctx;
    auto view = ViewMember(reader, m, who->provisional, now_s, *r, &lots);
    if (!view.ok()) return view.status();
    o.member = std::move(*view);
  }
  if (req->best_coupon && who->has_member && !who->provisional) {
    auto best = BestCoupon(reader, *r, in, who->member.member_id, now_s);
    if (!best.ok()) return best.status();
    *coupon = std::move(*best);
    if (*coupon) in.coupon = rules::CouponTerms(**coupon);
  }
  auto q = rules::ComputeQuote(*r, in);
  if (!q.ok()) return q.status();
  if (*coupon && q->coupon_applied) o.coupon_id = (*coupon)->coupon_id;
  o.quote = std::move(*q);
  return o;
}

Status CheckoutService::ApplyPoints(ledger::Ledger& w, ledger::MemberRow& m, int64_t delta,
                                    int64_t now_s, const std::string& entry_id,
                                    const rules::Rules& r, std::vector<model::Lot>* lots) {
  if (delta == 0) return Status::Ok();
  int64_t expires_at_s = delta > 0
                             ? rules::LotExpiry(now_s, r.points_validity_months,
                                                [this](int64_t t) { return tz_.UtcOffsetAt(t); })
                             : 0;
  Status s = lots ? ApplyLotDelta(w, *lots, m.member_id, delta, now_s, expires_at_s, entry_id)
                  : ApplyLotDelta(w, m.member_id, delta, now_s, expires_at_s, entry_id);
  if (!s.ok()) return s;
  m.balance += delta;
  return Status::Ok();
}

namespace {

std::vector<std::string> ReceiptLines(int64_t earned, int64_t redeemed, int64_t balance_after,
                                      const std::vector<model::Lot>& lots, int64_t now_s) {
  std::vector<std::string> out;
  out.push_back("本次积分 Points earned: " + std::to_string(earned));
  if (redeemed > 0) out.push_back("积分抵扣 Points redeemed: " + std::to_string(redeemed));
  out.push_back("积分余额 Balance: " + std::to_string(balance_after));
  // Points expiring within 30 days, soonest first.
  int64_t soon = 0, first = 0;
  for (const auto& l : lots) {
    if (l.remaining <= 0 || l.expires_at_s == model::kNeverExpires || l.expires_at_s < now_s)
      continue;
    if (l.expires_at_s - now_s <= 30 * 86400) {
      soon += l.remaining;
      if (!first) first = l.expires_at_s;
    }
  }
  if (soon > 0)
    out.push_back("即将过期 Expiring by " + FormatRfc3339(first).substr(0, 10) + ": " +
                  std::to_string(soon));
  return out;
}

}  // namespace

Result<CommitOutcome> CheckoutService::Commit(ledger::Ledger& w, const json& body) {
  // Only the request's hash is kept (idempotency; HQ gets it with the checkout): its lines
  // are stored as lines, and the member code it carries — a card number, a WeChat or
  // Alipay member number — is not the terminal's to keep (最小必要).
  std::string request_hash = CanonicalHash(body);
  // A new checkout is committed without looking for an earlier one first: the checkouts
  // table's primary key refuses a second row with the same id. Whatever refuses the commit
  // — that key, a code expired since, a member frozen since — an earlier checkout with
  // this id answers instead: the same body gets its stored response, another body 409.
  // A damaged ledger takes no commit, not even the replay of a stored one (operations.md).
  if (w.damaged()) return DamagedError(w);
  auto result = CommitNew(w, body, request_hash);
  if (result.ok()) return result;
  auto cid = body.find("checkout_id");
  if (cid != body.end() && cid->is_string() &&
      IsValidClientId(cid->get_ref<const std::string&>())) {
    auto existing = w.GetCheckout(cid->get<std::string>(), /*with_lines=*/false);
    if (!existing.ok()) return ReadError(existing.status());
    if (*existing) {
      if ((*existing)->request_hash != request_hash)
        return Err(ErrorCode::kIdempotencyConflict,
                   "checkout " + (*existing)->checkout_id + " was committed with a different body");
      return CommitOutcome{(*existing)->checkout_id, /*replayed=*/true,
                           std::move((*existing)->response_json)};
    }
  }
  // A corruption met during the commit latched the ledger: say so rather than what the
  // damaged read led to.
  if (w.damaged()) return DamagedError(w);
  return result;
}

Result<CommitOutcome> CheckoutService::CommitNew(ledger::Ledger& w, const json& body,
                                                 const std::string& request_hash) {
  auto req = ParseCheckoutRequest(body, /*is_commit=*/true);
  if (!req.ok()) return req.status();
  auto r = rules();
  if (req->rules_version && *req->rules_version != r->version)
    return Err(ErrorCode::kRulesChanged, "rules version " + *req->rules_version +
                                             " is no longer current (now " + r->version +
                                             "); quote again");
  int64_t now_ms = NowMs();
  int64_t now_s = now_ms >= 0 ? now_ms / 1000 : 0;

  if (Status s = w.Begin(); !s.ok()) return WriteError(s);
  auto fail = [&](const Status& s) {
    w.Rollback();
    return s;
  };

  auto who = ResolveMember(w, body, req->checkout_id, now_s);
  if (!who.ok()) return fail(who.status());
  auto coupon = LoadCoupon(w, *req, who->has_member, who->member.member_id, now_s);
  if (!coupon.ok()) return fail(coupon.status());

  rules::QuoteInput in;
  in.lines = req->lines;
  in.redeem = req->redeem;
  if (*coupon) in.coupon = rules::CouponTerms(**coupon);
  ledger::MemberRow m = who->member;
  // The member's lots, read once and kept up to date through the commit's changes.
  std::vector<model::Lot> lots;
  if (who->has_member) {
    int64_t last = 0;
    if (!who->provisional) {
      auto read = w.Lots(m.member_id);
      if (!read.ok()) return fail(ReadError(read.status()));
      lots = std::move(*read);
      auto redeemed = w.LastRedeemAtMs(m.member_id);
      if (!redeemed.ok()) return fail(ReadError(redeemed.status()));
      last = *redeemed;
    }
    rules::MemberContext ctx;
    ctx.tier = m.tier;
    ctx.frozen = m.status == "frozen";
    ctx.static_identification = who->id.kind != codes::CodeKind::kDynamic;
    ctx.available_balance = who->provisional ? 0 : AvailableBalance(lots, now_s);
    ctx.stale = !m.snapshot_at_s || now_s - *m.snapshot_at_s > r->stale_after_s;
    ctx.birthday_month = IsBirthdayMonth(m, now_s);
    ctx.in_redeem_cooldown = last > 0 && now_ms - last < r->redeem_cooldown_s * 1000;
    in.member = ctx;
  }
  if (req->best_coupon && who->has_member && !who->provisional) {
    auto best = BestCoupon(w, *r, in, m.member_id, now_s);
    if (!best.ok()) return fail(best.status());
    *coupon = std::move(*best);
    if (*coupon) in.coupon = rules::CouponTerms(**coupon);
  }
  auto q = rules::ComputeQuote(*r, in);
  if (!q.ok()) return fail(q.status());

  std::vector<std::string> entries;
  std::optional<int64_t> balance_after;
  bool froze = false;
  std::string upgraded_to;
  if (who->has_member) {
    if (who->provisional) {
      if (Status s = w.UpsertMember(m); !s.ok()) return fail(WriteError(s));
    }
    // Velocity counts this terminal's earn entries in the trailing hour after the latest
    // unfreeze; it is read before this commit's own earn entry is written.
    int64_t window_start = std::max(now_ms - 3600 * 1000, m.unfrozen_at_ms);
    auto earned = w.EarnedSince(m.member_id, window_start);
    if (!earned.ok()) return fail(ReadError(earned.status()));
    int64_t earned_before = *earned;
    bool was_frozen = m.status == "frozen";

    auto append = [&](const std::string& kind, int64_t points,
                      const std::string& detail) -> Result<ledger::EntryRow> {
      ledger::EntryDraft d{NewEntryId(now_ms), kind, m.member_id, points, now_ms,
                           req->checkout_id,   "",   detail};
      auto e = w.AppendEntry(d);
      if (e.ok()) entries.push_back(e->entry_id);
      return e;
    };
    auto earn = append("earn", q->points_to_earn, "");
    if (!earn.ok()) return fail(WriteError(earn.status()));
    if (Status s = ApplyPoints(w, m, q->points_to_earn, now_s, earn->entry_id, *r, &lots); !s.ok())
      return fail(WriteError(s));
    if (q->redeem_points > 0) {
      auto red = append("redeem", -q->redeem_points, "");
      if (!red.ok()) return fail(WriteError(red.status()));
      if (Status s = ApplyPoints(w, m, -q->redeem_points, now_s, red->entry_id, *r, &lots); !s.ok())
        return fail(WriteError(s));
    }
    if (!was_frozen && rules::CrossesVelocity(*r, earned_before, q->points_to_earn)) {
      json detail{{"reason", "velocity"},
                  {"earned_in_window", earned_before + q->points_to_earn},
                  {"limit", r->max_points_per_hour}};
      auto fr = append("freeze", 0, detail.dump());
      if (!fr.ok()) return fail(WriteError(fr.status()));
      m.status = "frozen";
      m.frozen_reason = "velocity";
      froze = true;
    }
    if (r->provisional_upgrade && m.snapshot_at_s && m.status != "frozen") {
      // This calendar month only (store local time): HQ's month spend counts when its
      // snapshot is of this month, and this terminal's sales HQ has not counted yet
      // (unacknowledged) when they were made in it.
      const CivilTime today = tz_.ToLocal(now_s);
      const int64_t month_start_s = tz_.FromLocal({today.year, today.month, 1, 0, 0, 0});
      const bool hq_spend_is_this_month = *m.snapshot_at_s >= month_start_s;
      auto spent = w.LocalSpendSince(m.member_id, month_start_s * 1000);
      if (!spent.ok()) return fail(ReadError(spent.status()));
      int64_t local = *spent + q->total_due_cents;
      if (auto tier = rules::ProvisionalUpgrade(
              *r, m.tier, hq_spend_is_this_month ? m.month_spend_cents : 0, local)) {
        json detail{{"from", m.tier}, {"to", *tier}};
        auto up = append("tier_upgrade", 0, detail.dump());
        if (!up.ok()) return fail(WriteError(up.status()));
        m.tier = *tier;
        upgraded_to = *tier;
      }
    }
    // The balance index holds the balance less this terminal's unacknowledged points: every
    // point this commit moved is in an unacknowledged entry of the member, so it stays.
    if (Status s = w.UpsertMember(m, /*refresh_balance_index=*/false); !s.ok())
      return fail(WriteError(s));
    balance_after = m.balance;
    if (who->id.kind == codes::CodeKind::kDynamic) {
      if (Status s = w.BindCode(who->id.code_hash, req->checkout_id, m.member_id, now_ms); !s.ok())
        return fail(WriteError(s));
    }
  }
  if (*coupon && q->coupon_applied) {
    if (Status s = w.MarkCouponUsed((*coupon)->coupon_id, req->checkout_id); !s.ok())
      return fail(WriteError(s));
  }

  QuoteOutcome priced;
  priced.checkout_id = req->checkout_id;
  priced.rules_version = r->version;
  if (*coupon && q->coupon_applied) priced.coupon_id = (*coupon)->coupon_id;
  CommitDetails details;
  details.balance_after = balance_after;
  details.committed_at_s = now_s;
  if (who->has_member) {
    auto view = ViewMember(w, m, false, now_s, *r, &lots);
    if (!view.ok()) return fail(view.status());
    priced.member = std::move(*view);
    details.receipt_lines =
        ReceiptLines(q->points_to_earn, q->redeem_points, *balance_after, lots, now_s);
  }
  details.entries = std::move(entries);
  // The quote and the entries move into the view's inputs; read from there on.
  priced.quote = std::move(*q);
  const rules::Quote& quote = priced.quote;
  details.return_token = ReturnToken(
      req->checkout_id, who->has_member ? std::optional<uint64_t>(m.member_id) : std::nullopt,
      now_ms, r->version, quote, *req);
  std::string resp = CommitViewJson(priced, details);

  model::Checkout row;
  row.checkout_id = req->checkout_id;
  row.request_hash = request_hash;
  if (who->has_member) row.member_id = m.member_id;
  row.rules_version = r->version;
  row.committed_at_ms = now_ms;
  row.subtotal_cents = quote.subtotal_cents;
  row.total_due_cents = quote.total_due_cents;
  row.points_earned = quote.points_to_earn;
  row.redeemed_points = quote.redeem_points;
  row.eligible_cents = quote.eligible_cents;
  row.redeemable_cents = quote.redeemable_cents;
  if (who->id.kind == codes::CodeKind::kDynamic && who->has_member)
    row.code_hash = who->id.code_hash;
  row.tender = req->tender.value_or("");
  row.cashier_id = req->cashier_id.value_or("");
  row.coupon_id = *coupon && quote.coupon_applied ? (*coupon)->coupon_id : "";
  row.response_json = resp;
  for (size_t i = 0; i < quote.lines.size(); ++i) {
    const auto& ql = quote.lines[i];
    model::CheckoutLine l;
    l.line = static_cast<int>(i);
    l.sku = req->lines[i].sku;
    l.category = req->lines[i].category;
    l.qty = req->lines[i].qty;
    l.unit_price_cents = req->lines[i].unit_price_cents;
    l.tier_discount_cents = ql.tier_discount_cents;
    l.coupon_cents = ql.coupon_cents;
    l.redeem_cents = ql.redeem_cents;
    l.net_cents = ql.net_cents;
    l.net_before_redeem_cents = ql.net_before_redeem_cents;
    l.points_eligible = ql.points_eligible;
    l.redeemable = ql.redeemable;
    row.lines.push_back(std::move(l));
  }
  if (Status s = w.InsertCheckout(row); !s.ok()) return fail(WriteError(s));
  if (Status s = w.Commit(); !s.ok()) return WriteError(s);

  if (events_.log)
    Log("checkout_committed",
        {{"checkout_id", req->checkout_id},
         {"member_id", who->has_member ? json(MemberIdString(m.member_id)) : json(nullptr)},
         {"total_due_cents", quote.total_due_cents},
         {"points_earned", quote.points_to_earn},
         {"points_redeemed", quote.redeem_points},
         {"entries", details.entries.size()}});
  if (froze)
    Log("member_frozen", {{"member_id", MemberIdString(m.member_id)},
                          {"reason", "velocity"},
                          {"checkout_id", req->checkout_id}});
  if (!upgraded_to.empty())
    Log("tier_upgraded", {{"member_id", MemberIdString(m.member_id)}, {"tier", upgraded_to}});
  return CommitOutcome{req->checkout_id, /*replayed=*/false, std::move(resp)};
}

void CheckoutService::SetSaleFetcher(SaleFetcher fetch) { fetch_sale_ = std::move(fetch); }

void CheckoutService::SetReceiptKey(std::string seed32, std::string certificate) {
  std::lock_guard<std::mutex> lock(mu_);
  receipt_seed_ = std::move(seed32);
  receipt_cert_ = std::move(certificate);
}

std::optional<std::string> CheckoutService::ReturnToken(
    const std::string& checkout_id, std::optional<uint64_t> member_id, int64_t at_ms,
    const std::string& rules_version, const rules::Quote& quote, const CheckoutRequest& req) {
  std::string seed, cert;
  {
    std::lock_guard<std::mutex> lock(mu_);
    seed = receipt_seed_;
    cert = receipt_cert_;
  }
  if (seed.empty() || cert.empty() || quote.lines.size() > codes::kMaxReturnTokenLines)
    return std::nullopt;
  codes::ReturnBasis b;
  b.checkout_id = checkout_id;
  b.member_id = member_id;
  b.committed_at_ms = at_ms;
  b.rules_version = rules_version;
  b.points_earned = quote.points_to_earn;
  b.redeemed_points = quote.redeem_points;
  b.eligible_cents = quote.eligible_cents;
  b.redeemable_cents = quote.redeemable_cents;
  for (size_t i = 0; i < quote.lines.size(); ++i) {
    const auto& ql = quote.lines[i];
    b.lines.push_back({req.lines[i].qty, ql.net_cents, ql.net_before_redeem_cents,
                       ql.points_eligible, ql.redeemable});
  }
  std::string token = codes::MakeReturnToken(cert, seed, b);
  if (token.empty()) return std::nullopt;
  return token;
}

namespace {

// A string member of a JSON object, or "" (PrepareRefund reads before validation).
std::string StringField(const json& body, const char* key) {
  auto it = body.find(key);
  return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

PreparedRefund CheckoutService::PrepareRefund(ledger::Ledger& reader, const json& body) {
  PreparedRefund out;
  if (!body.is_object()) return out;
  std::string refund_id = StringField(body, "refund_id");
  std::string checkout_id = StringField(body, "checkout_id");
  if (!IsValidClientId(refund_id) || !IsValidClientId(checkout_id)) return out;
  // A replay answers from the ledger: nothing to check or ask.
  if (auto existing = reader.GetRefund(refund_id); !existing.ok() || *existing) return out;
  std::string seller = StringField(body, "sold_at");
  std::string receipt = StringField(body, "receipt");
  if (!receipt.empty()) {
    auto b = codes::VerifyReturnToken(receipt, verifier_.config().hq_public_keys, &receipt_certs_);
    if (!b.ok()) return out;  // Refund answers the token's error
    if (seller.empty()) seller = b->terminal_id;
    out.receipt = std::move(receipt);
    out.receipt_basis = std::move(*b);
  }
  if (!fetch_sale_) return out;
  if (seller.empty()) seller = opts_.terminal_id;
  if (seller.size() > 32) return out;
  for (char c : seller)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return out;
  out.remote = fetch_sale_(seller, checkout_id);
  return out;
}

Result<RefundOutcome> CheckoutService::Refund(ledger::Ledger& w, const json& body) {
  return Refund(w, body, PreparedRefund{});
}

Result<RefundOutcome> CheckoutService::Refund(ledger::Ledger& w, const json& body,
                                              const PreparedRefund& prepared) {
  std::string request_hash = CanonicalHash(body);
  if (w.damaged()) return DamagedError(w);
  auto result = RefundNew(w, body, request_hash, prepared);
  if (w.damaged() && !result.ok()) return DamagedError(w);
  return result;
}

Result<RefundOutcome> CheckoutService::RefundNew(ledger::Ledger& w, const json& body,
                                                 const std::string& request_hash,
                                                 const PreparedRefund& prepared) {
  const std::optional<RemoteSale>& remote = prepared.remote;
  auto rid = body.find("refund_id");
  if (rid != body.end() && rid->is_string() && IsValidClientId(rid->get<std::string>())) {
    auto existing = w.GetRefund(rid->get<std::string>());
    if (!existing.ok()) return ReadError(existing.status());
    if (*existing) {
      if ((*existing)->request_hash != request_hash)
        return Err(ErrorCode::kIdempotencyConflict,
                   "refund " + (*existing)->refund_id + " was made with a different body");
      return RefundOutcome{(*existing)->refund_id, /*replayed=*/true,
                           std::move((*existing)->response_json)};
    }
  }
  auto req = ParseRefundRequest(body);
  if (!req.ok()) return req.status();
  auto r = rules();
  int64_t now_ms = NowMs();
  int64_t now_s = now_ms >= 0 ? now_ms / 1000 : 0;

  // The sale: this terminal's own checkout, or another terminal's (sold_at, the receipt).
  std::optional<codes::ReturnBasis> token;
  if (req->receipt) {
    auto b = prepared.receipt_basis && prepared.receipt == *req->receipt
                 ? Result<codes::ReturnBasis>(*prepared.receipt_basis)
                 : codes::VerifyReturnToken(*req->receipt, verifier_.config().hq_public_keys,
                                            &receipt_certs_);
    if (!b.ok()) return b.status();
    if (req->sold_at && *req->sold_at != b->terminal_id)
      return Err(ErrorCode::kBadRequest, "sold_at names another terminal than the receipt");
    if (b->checkout_id != req->checkout_id)
      return Err(ErrorCode::kBadRequest, "the receipt is of another checkout");
    token = std::move(*b);
  }
  const std::string seller = req->sold_at ? *req->sold_at
                             : token      ? token->terminal_id
                                          : opts_.terminal_id;
  const bool foreign = seller != opts_.terminal_id;
  // What HQ said applies only to the sale it was asked about.
  const RemoteSale* hq =
      remote && (!remote->checkout || (remote->checkout->checkout_id == req->checkout_id))
          ? &*remote
          : nullptr;

  model::Checkout sale;
  bool from_token = false;
  if (!foreign) {
    auto co_read = w.GetCheckout(req->checkout_id);
    if (!co_read.ok()) return ReadError(co_read.status());
    if (!*co_read)
      return Err(ErrorCode::kCheckoutUnknown, "no committed checkout " + req->checkout_id);
    sale = std::move(**co_read);
  } else if (hq && hq->checkout) {
    sale = *hq->checkout;
  } else if (token) {
    sale = sync::CheckoutOfReturnBasis(*token);
    from_token = true;
  } else {
    return Err(ErrorCode::kCheckoutUnknown,
               hq ? "HQ holds no checkout " + req->checkout_id + " of terminal " + seller +
                        ": scan the receipt's return code"
                  : "checkout " + req->checkout_id + " of terminal " + seller +
                        " cannot be fetched from HQ now: scan the receipt's return code");
  }
  for (const auto& [line, qty] : req->lines)
    if (line < 0 || static_cast<size_t>(line) >= sale.lines.size())
      return Err(ErrorCode::kBadRequest,
                 "line " + std::to_string(line) + " is not a line of checkout " + req->checkout_id);
  if (r->refund_window_days > 0 &&
      now_ms - sale.committed_at_ms > r->refund_window_days * 86400 * 1000)
    return Err(ErrorCode::kRefundWindowClosed,
               "the checkout is older than " + std::to_string(r->refund_window_days) + " days");

  // Units refunded before: here (this terminal's refunds of the sale), and at the other
  // terminals HQ knows of (docs/pos-api.md: cumulative at HQ; offline, what HQ cannot tell
  // is bounded and reported as refund_reused).
  std::vector<int64_t> before(sale.lines.size(), 0);
  auto priors = w.RefundsForSale(foreign ? seller : "", req->checkout_id);
  if (!priors.ok()) return ReadError(priors.status());
  auto count = [&before](const model::Refund& prior) {
    for (const auto& [line, qty] : prior.lines)
      if (line >= 0 && static_cast<size_t>(line) < before.size())
        before[static_cast<size_t>(line)] += qty;
  };
  for (const auto& prior : *priors) count(prior);
  if (hq && hq->checkout)
    for (const auto& prior : hq->other_refunds) count(prior);
  // A line two lanes both returned before either synced counts past its units here (HQ kept
  // one of those refunds, refund_reused): it is all returned, and the sale's other lines
  // stay returnable. Only the lines this refund names are checked (a void's: all, from what
  // is left of each).
  const bool void_all = req->lines.empty();
  std::vector<bool> named(sale.lines.size(), void_all);
  for (const auto& [line, qty] : req->lines) named[static_cast<size_t>(line)] = true;
  for (size_t i = 0; i < before.size(); ++i) {
    if (!named[i] || void_all) before[i] = std::min(before[i], sale.lines[i].qty);
  }
  std::vector<int64_t> after = before;
  std::vector<model::RefundLine> refund_lines;
  if (void_all) {  // a void without lines: every unit not refunded yet
    for (size_t i = 0; i < sale.lines.size(); ++i) {
      if (sale.lines[i].qty > before[i])
        refund_lines.push_back({static_cast<int64_t>(i), sale.lines[i].qty - before[i]});
      after[i] = sale.lines[i].qty;
    }
  } else {
    std::map<int, int64_t> merged;
    for (const auto& [line, qty] : req->lines) merged[static_cast<int>(line)] += qty;
    for (const auto& [line, qty] : merged) {
      after[static_cast<size_t>(line)] += qty;
      refund_lines.push_back({line, qty});
    }
  }
  for (size_t i = 0; i < after.size(); ++i)
    if (named[i] && after[i] > sale.lines[i].qty)
      return Err(ErrorCode::kRefundExceedsSale,
                 "line " + std::to_string(i) + ": " + std::to_string(after[i]) +
                     " units refunded in all, " + std::to_string(sale.lines[i].qty) + " sold");
  if (refund_lines.empty())
    return Err(ErrorCode::kRefundExceedsSale, "every unit of this checkout was already refunded");

  auto amounts = rules::ComputeRefund(rules::RefundBasisOf(sale), before, after);
  if (!amounts.ok()) return amounts.status();

  if (Status s = w.Begin(); !s.ok()) return WriteError(s);
  auto fail = [&](const Status& s) {
    w.Rollback();
    return s;
  };
  std::vector<std::string> entries;
  std::optional<int64_t> balance_after;
  if (sale.member_id) {
    auto m_read = w.GetMember(*sale.member_id);
    if (!m_read.ok()) return fail(ReadError(m_read.status()));
    auto& m = *m_read;
    if (!m) {
      if (!foreign)
        return fail(Status::Error(ErrorCode::kInternal,
                                  "member of checkout " + req->checkout_id + " is missing"));
      // Another store's member this terminal does not hold, refunded offline from the
      // receipt: held from now on as a provisional member (as a dynamic code makes one);
      // the next sync brings the snapshot and reconciles the balance.
      m.emplace();
      m->member_id = *sale.member_id;
    }
    auto append = [&](const std::string& kind, int64_t points) -> Result<ledger::EntryRow> {
      ledger::EntryDraft d{NewEntryId(now_ms), kind, m->member_id, points, now_ms, req->checkout_id,
                           req->refund_id,     ""};
      auto e = w.AppendEntry(d);
      if (e.ok()) entries.push_back(e->entry_id);
      return e;
    };
    if (amounts->points_clawed_back > 0) {
      auto e = append("clawback", -amounts->points_clawed_back);
      if (!e.ok()) return fail(WriteError(e.status()));
      if (Status s = ApplyPoints(w, *m, -amounts->points_clawed_back, now_s, e->entry_id, *r);
          !s.ok())
        return fail(WriteError(s));
    }
    if (amounts->points_restored > 0) {
      auto e = append("restore", amounts->points_restored);
      if (!e.ok()) return fail(WriteError(e.status()));
      if (Status s = ApplyPoints(w, *m, amounts->points_restored, now_s, e->entry_id, *r); !s.ok())
        return fail(WriteError(s));
    }
    if (Status s = w.UpsertMember(*m); !s.ok()) return fail(WriteError(s));
    balance_after = m->balance;
  }
  RefundDetails details;
  details.refund_id = req->refund_id;
  details.checkout_id = req->checkout_id;
  details.refund_cents = amounts->refund_cents;
  details.points_clawed_back = amounts->points_clawed_back;
  details.points_restored = amounts->points_restored;
  details.balance_after = balance_after;
  details.entries = std::move(entries);
  if (foreign) details.sold_at = seller;
  std::string resp = RefundViewJson(details);
  model::Refund row;
  row.refund_id = req->refund_id;
  row.checkout_id = req->checkout_id;
  row.request_hash = request_hash;
  row.reason = req->reason;
  row.at_ms = now_ms;
  row.refund_cents = amounts->refund_cents;
  row.points_clawed_back = amounts->points_clawed_back;
  row.points_restored = amounts->points_restored;
  row.lines = refund_lines;
  row.response_json = resp;
  row.cashier_id = req->cashier_id.value_or("");
  if (foreign) {
    row.sold_at = seller;
    // Kept so that HQ can check the refund against it while it has no record of the sale.
    if (req->receipt) row.receipt = *req->receipt;
  }
  if (Status s = w.InsertRefund(row); !s.ok()) return fail(WriteError(s));
  if (Status s = w.Commit(); !s.ok()) return WriteError(s);
  Log("refund_committed", {{"refund_id", req->refund_id},
                           {"checkout_id", req->checkout_id},
                           {"sold_at", foreign ? json(seller) : json(nullptr)},
                           {"from", !foreign     ? "ledger"
                                    : from_token ? "receipt"
                                                 : "hq"},
                           {"reason", req->reason},
                           {"refund_cents", amounts->refund_cents},
                           {"points_clawed_back", amounts->points_clawed_back},
                           {"points_restored", amounts->points_restored}});
  return RefundOutcome{req->refund_id, /*replayed=*/false, std::move(resp)};
}

Result<MemberDetail> CheckoutService::GetMember(ledger::Ledger& reader,
                                                const std::string& member_id) {
  uint64_t id = 0;
  if (member_id.empty() || member_id.size() > 20)
    return Err(ErrorCode::kBadRequest, "member_id must be a decimal number");
  for (char c : member_id) {
    if (c < '0' || c > '9')
      return Err(ErrorCode::kBadRequest, "member_id must be a decimal number");
    if (id > (UINT64_MAX - static_cast<uint64_t>(c - '0')) / 10)
      return Err(ErrorCode::kBadRequest, "member_id is out of range");
    id = id * 10 + static_cast<uint64_t>(c - '0');
  }
  if (reader.damaged()) return DamagedError(reader);
  auto m = reader.GetMember(id);
  if (!m.ok()) return ReadError(m.status());
  if (!*m)
    // The id is not repeated: a phone or card number typed in its place would be logged.
    return Err(ErrorCode::kMemberUnknown, "no such member in this terminal's ledger");
  int64_t now_s = NowS();
  auto r = rules();
  auto member = ViewMember(reader, **m, false, now_s, *r);
  if (!member.ok()) return member.status();
  // The last 20 of the terminal's own entries and HQ's (from the member's snapshot), newest
  // first; each list keeps its own order, the terminal's first at equal times.
  constexpr int kRecent = 20;
  auto own = reader.RecentEntries(id, kRecent);
  if (!own.ok()) return ReadError(own.status());
  auto hq = reader.RecentHqEntries(id, kRecent);
  if (!hq.ok()) return ReadError(hq.status());
  std::vector<ledger::EntryRow> entries;
  size_t a = 0, b = 0;
  while (entries.size() < static_cast<size_t>(kRecent) && (a < own->size() || b < hq->size())) {
    const bool take_hq = a == own->size() || (b < hq->size() && (*hq)[b].at_ms > (*own)[a].at_ms);
    entries.push_back(std::move(take_hq ? (*hq)[b++] : (*own)[a++]));
  }
  return MemberDetail{std::move(*member), std::move(entries)};
}

Result<model::Checkout> CheckoutService::CommittedCheckout(ledger::Ledger& reader,
                                                           const std::string& checkout_id) {
  if (!IsValidClientId(checkout_id))
    return Err(ErrorCode::kBadRequest, "checkout_id must be 1-64 characters of [A-Za-z0-9_-]");
  if (reader.damaged()) return DamagedError(reader);
  auto co = reader.GetCheckout(checkout_id, /*with_lines=*/false);
  if (!co.ok()) return ReadError(co.status());
  if (!*co) return Err(ErrorCode::kCheckoutUnknown, "no committed checkout " + checkout_id);
  return std::move(**co);
}

Result<CheckoutRecord> CheckoutService::GetCheckout(ledger::Ledger& reader,
                                                    const std::string& checkout_id) {
  auto co = CommittedCheckout(reader, checkout_id);
  if (!co.ok()) return co.status();
  auto stored_refunds = reader.RefundsForCheckout(checkout_id);
  if (!stored_refunds.ok()) return ReadError(stored_refunds.status());
  // Stored responses are our own bytes, read back through the same limited parser as
  // everything else: a damaged row is an error, never an exception or a deep tree.
  auto stored = [](const std::string& text) -> Result<json> {
    auto j = ParseJsonObject(text);
    if (!j.ok())
      return Status::Error(ErrorCode::kInternal,
                           "a stored response does not parse: " + j.status().message());
    return j;
  };
  auto j = stored(co->response_json);
  if (!j.ok()) return j.status();
  CheckoutRecord record;
  record.checkout = std::move(*j);
  for (const auto& r : *stored_refunds) {
    auto rj = stored(r.response_json);
    if (!rj.ok()) return rj.status();
    record.refunds.push_back(std::move(*rj));
  }
  return record;
}

Result<EnrolmentOutcome> CheckoutService::Enrolment(ledger::Ledger& reader,
                                                    const std::string& checkout_id) {
  auto co = CommittedCheckout(reader, checkout_id);
  if (!co.ok()) return co.status();
  if (co->member_id)
    return Err(ErrorCode::kCheckoutHasMember,
               "checkout " + checkout_id + " was made with a member, who earned its points then");
  // A sale refunded here (a void when the payment failed, or a return) earns no one points;
  // HQ refuses the claim of a sale refunded anywhere else too.
  auto refunds = reader.RefundsForCheckout(checkout_id);
  if (!refunds.ok()) return ReadError(refunds.status());
  if (!refunds->empty())
    return Err(ErrorCode::kCheckoutRefunded,
               "checkout " + checkout_id + " was refunded: its points cannot be claimed");
  std::string seed, cert;
  {
    std::lock_guard<std::mutex> lock(mu_);
    seed = receipt_seed_;
    cert = receipt_cert_;
  }
  if (seed.empty() || cert.empty())
    return Err(ErrorCode::kUnavailable,
               "this terminal's receipt key is not certified yet: its first sync with HQ "
               "certifies it, and sign-up claims can be made from then on");
  // The claim lives as long as a refund of the sale could still be made here: the window of
  // the rules in force now, as a refund is judged (docs/pos-api.md, "Commit and refunds").
  codes::EnrolClaim c;
  c.checkout_id = checkout_id;
  c.committed_at_ms = co->committed_at_ms;
  c.expires_at_s = codes::EnrolClaimExpiry(c.committed_at_ms, rules()->refund_window_days);
  if (NowS() > c.expires_at_s)
    return Err(ErrorCode::kCodeExpired, "checkout " + checkout_id +
                                            " is older than the refund window: its points can no "
                                            "longer be claimed");
  std::string claim = codes::MakeEnrolClaim(cert, seed, c);
  if (claim.empty())
    return Err(ErrorCode::kInternal,
               "the sign-up claim of checkout " + checkout_id + " could not be made");
  return EnrolmentOutcome{checkout_id, std::move(claim), c.committed_at_ms, c.expires_at_s};
}

}  // namespace loyalty::checkout
