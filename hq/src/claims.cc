// Sign-up at the till (docs/hq.md, "Claims: the points of the sale a member joined at"): a
// customer who paid without being a member joins with the claim the selling terminal signed
// for that sale, and HQ credits the points the sale would have earned the member, once, from
// its own record of the checkout. A claim HQ cannot judge yet (the terminal has not uploaded
// the sale) waits and is judged by the upload that brings the sale; a refund of a credited
// sale takes back its share of the credit.
//
// What is checked, in order: the claim (signature, certificate issued by HQ's own keys,
// expiry by HQ's clock and the current refund window), once per sale (claim_used), then the
// sale as HQ holds it: accepted, without a member, the claim's commit time, no accepted
// refund, priced again as the terminal priced it. Every step of a request is one write.
#include "service_internal.h"

#include <algorithm>
#include <string>
#include <vector>

#include "loyalty/base/json_reader.h"
#include "loyalty/base/time.h"

namespace loyalty::hq {

using namespace internal;

namespace {

constexpr char kPending[] = "pending";
constexpr char kCredited[] = "credited";
constexpr char kRefused[] = "refused";

// The error a request gets for a sale that cannot be credited: the reason's code.
Status ClaimError(const std::string& reason, const std::string& sale) {
  if (reason == "checkout_has_member")
    return Status::Error(ErrorCode::kCheckoutHasMember,
                         "sale " + sale + " was made with a member, who earned its points then");
  if (reason == "checkout_refunded")
    return Status::Error(ErrorCode::kCheckoutRefunded,
                         "sale " + sale + " was refunded: its points cannot be claimed");
  return Status::Error(ErrorCode::kClaimRefused,
                       "sale " + sale + " cannot be credited (" + reason + ")");
}

json TimeOrNull(int64_t ms) { return ms > 0 ? json(FormatRfc3339(FloorDiv(ms, 1000))) : json(); }

// The basis of a credited claim's claw-back: the sale's lines with the credited points as
// the points earned on its eligible lines (docs/hq.md).
rules::RefundBasis ClaimBasis(const sync::Checkout& co, int64_t points) {
  rules::RefundBasis b = rules::RefundBasisOf(co);
  b.points_earned = points;
  b.redeemed_points = 0;
  b.eligible_cents = 0;
  for (const auto& l : b.lines)
    if (l.points_eligible) b.eligible_cents += l.final_net_cents;
  return b;
}

}  // namespace

json HqService::Impl::ClaimJson(const ClaimRecord& c) {
  return json{{"terminal_id", c.terminal_id},
              {"checkout_id", c.checkout_id},
              {"member_id", std::to_string(c.member_id)},
              {"status", c.status},
              {"reason", c.reason.empty() ? json() : json(c.reason)},
              {"points", c.points},
              {"clawed_back", c.clawed_back},
              {"committed_at", TimeOrNull(c.committed_at_ms)},
              {"expires_at", FormatRfc3339(c.expires_at_s)},
              {"claimed_at", TimeOrNull(c.claimed_at_ms)},
              {"settled_at", TimeOrNull(c.credited_at_ms)}};
}

Result<codes::EnrolClaim> HqService::Impl::VerifyClaim(const std::string& text) {
  const int64_t now_ms = clock.now_ms();
  auto c = codes::VerifyEnrolClaim(text, PublicKeys(), FloorDiv(now_ms, 1000), &receipt_certs);
  if (!c.ok()) return c.status();
  // The terminal set the expiry with the rules it had; HQ's current window counts too, as a
  // refund is judged by the rules current when it is made.
  if (current.refund_window_days > 0 &&
      FloorDiv(now_ms, 1000) >
          codes::EnrolClaimExpiry(c->committed_at_ms, current.refund_window_days))
    return Status::Error(ErrorCode::kCodeExpired,
                         "enrolment claim: the sale is older than the refund window (" +
                             std::to_string(current.refund_window_days) + " days)");
  return c;
}

Result<std::string> HqService::Impl::JudgeClaim(const ClaimRecord& c, const sync::Checkout& co) {
  if (co.member_id) return std::string("checkout_has_member");
  if (co.committed_at_ms != c.committed_at_ms) return std::string("claim_mismatch");
  auto refunds = store.AcceptedRefundsOfSale(c.terminal_id, c.checkout_id);
  if (!refunds.ok()) return refunds.status();
  if (!refunds->empty()) return std::string("checkout_refunded");
  // An anonymous sale is not priced again at upload (it earns nothing there): it is here,
  // before it earns anything, with the rules version it names and no member.
  auto rv = RulesVersion(co.rules_version);
  if (!rv.ok()) return rv.status();
  if (!*rv) return std::string("rules_version_unknown");
  rules::QuoteInput in;
  for (size_t i = 0; i < co.lines.size(); ++i) {
    const auto& l = co.lines[i];
    if (l.line != static_cast<int64_t>(i)) return std::string("record_malformed");
    in.lines.push_back({l.sku, l.qty, l.unit_price_cents, l.category});
  }
  if (!co.coupon_id.empty() || co.points_earned != 0 || co.redeemed_points != 0)
    return std::string("price_mismatch");
  auto q = rules::ComputeQuote(**rv, in);
  if (!q.ok() || !SamePricing(*q, co)) return std::string("price_mismatch");
  return std::string();
}

Status HqService::Impl::CreditClaim(ClaimRecord& c, const sync::Checkout& co) {
  auto rv = RulesVersion(co.rules_version);
  if (!rv.ok()) return rv.status();
  if (!*rv) return Status::Error(ErrorCode::kInternal, "rules " + co.rules_version + " vanished");
  const rules::Rules& r = **rv;
  auto slot = Slot(c.member_id);
  if (!slot.ok()) return slot.status();
  if (!(*slot)->m)
    return Status::Error(ErrorCode::kMemberUnknown, "no member " + std::to_string(c.member_id));
  const MemberRecord& m = *(*slot)->m;
  // The points the sale would have earned this member: its final nets (what was paid) on
  // the points-eligible lines, the member's tier and freeze now, the birthday month at the
  // sale in the chain's calendar.
  int64_t eligible = 0;
  for (const auto& l : co.lines)
    if (l.points_eligible) eligible += l.net_cents;
  rules::MemberContext ctx;
  ctx.tier = m.tier;
  ctx.frozen = m.status == "frozen";
  ctx.birthday_month = rules::IsBirthdayMonth(m.birthday_month, FloorDiv(co.committed_at_ms, 1000),
                                              [this](int64_t t) { return UtcOffset(t); });
  const int64_t points = rules::PointsFor(r, eligible, ctx);
  auto fits = BalanceCanTake(c.member_id, points);
  if (!fits.ok()) return fits.status();
  if (!*fits) return ClaimError("value_out_of_range", c.terminal_id + "/" + c.checkout_id);
  if (points > 0) {
    auto e = AppendHqEntry(
        "adjust", c.member_id, points,
        {{"reason", "claim"}, {"terminal_id", c.terminal_id}, {"checkout_id", c.checkout_id}});
    if (!e.ok()) return e.status();
    if (Status s = ApplyEntry(*e); !s.ok()) return s;
    c.entry_id = e->entry_id;
  }
  // The sale is a visit to its store: the member joins the store's scope as a sale with
  // them would have put them (docs/hq.md, "Member scope").
  auto term = store.GetTerminal(c.terminal_id);
  if (!term.ok()) return term.status();
  if (*term) {
    const int64_t at = std::min(co.committed_at_ms, clock.now_ms());
    if (Status s = ScopeMember((*term)->store_id, c.member_id, "shopped", at); !s.ok()) return s;
  }
  if (Status s = Touch(c.member_id); !s.ok()) return s;
  c.status = kCredited;
  c.reason.clear();
  c.points = points;
  c.credited_at_ms = clock.now_ms();
  if (Status s = store.UpdateClaim(c); !s.ok()) return s;
  Report("claim_credited", {{"terminal_id", c.terminal_id},
                            {"checkout_id", c.checkout_id},
                            {"member_id", std::to_string(c.member_id)},
                            {"points", points}});
  return Status::Ok();
}

Result<ClaimRecord> HqService::Impl::RecordClaim(const codes::EnrolClaim& v, uint64_t member_id) {
  const std::string sale = v.terminal_id + "/" + v.checkout_id;
  ClaimRecord c;
  c.terminal_id = v.terminal_id;
  c.checkout_id = v.checkout_id;
  c.member_id = member_id;
  c.committed_at_ms = v.committed_at_ms;
  c.expires_at_s = v.expires_at_s;
  c.claimed_at_ms = clock.now_ms();
  c.status = kPending;
  auto prior = store.GetClaim(c.terminal_id, c.checkout_id);
  if (!prior.ok()) return prior.status();
  if (*prior)
    return Status::Error(
        ErrorCode::kClaimUsed,
        "sale " + sale + " was claimed already" +
            ((*prior)->member_id == member_id ? " by this member" : " by another member"));
  // The sale as HQ holds it: judged now, or when its terminal uploads it.
  auto verdict = store.CheckoutRefused(c.terminal_id, c.checkout_id);
  if (!verdict.ok()) return verdict.status();
  std::optional<sync::Checkout> co;
  if (*verdict) {
    if (**verdict) return ClaimError("checkout_refused", sale);
    auto got = store.GetCheckout(c.terminal_id, c.checkout_id);
    if (!got.ok()) return got.status();
    if (!*got) return Status::Error(ErrorCode::kInternal, "sale " + sale + " vanished");
    co = std::move(**got);
    auto reason = JudgeClaim(c, *co);
    if (!reason.ok()) return reason.status();
    if (!reason->empty()) return ClaimError(*reason, sale);
  }
  auto inserted = store.InsertClaim(c);
  if (!inserted.ok()) return inserted.status();
  if (!*inserted)
    return Status::Error(ErrorCode::kClaimUsed, "sale " + sale + " was claimed already");
  if (co) {
    if (Status s = CreditClaim(c, *co); !s.ok()) return s;
  }
  return c;
}

Status HqService::Impl::SettleClaims(const std::string& tid) {
  auto pending = store.PendingClaims(tid);
  if (!pending.ok()) return pending.status();
  for (ClaimRecord& c : *pending) {
    auto verdict = store.CheckoutRefused(c.terminal_id, c.checkout_id);
    if (!verdict.ok()) return verdict.status();
    if (!*verdict) continue;  // not uploaded yet
    std::string reason = **verdict ? "checkout_refused" : "";
    std::optional<sync::Checkout> co;
    if (reason.empty()) {
      auto got = store.GetCheckout(c.terminal_id, c.checkout_id);
      if (!got.ok()) return got.status();
      if (!*got) continue;
      co = std::move(**got);
      auto judged = JudgeClaim(c, *co);
      if (!judged.ok()) return judged.status();
      reason = *judged;
    }
    if (reason.empty()) {
      Status s = CreditClaim(c, *co);
      if (s.ok()) continue;
      // The balance's limits (the only refusal crediting has): refused alone, never a
      // failed upload.
      if (s.code() != ErrorCode::kClaimRefused) return s;
      reason = "value_out_of_range";
    }
    c.status = kRefused;
    c.reason = reason;
    c.credited_at_ms = clock.now_ms();
    if (Status s = store.UpdateClaim(c); !s.ok()) return s;
    Report("claim_refused", {{"terminal_id", c.terminal_id},
                             {"checkout_id", c.checkout_id},
                             {"member_id", std::to_string(c.member_id)},
                             {"reason", reason}});
  }
  return Status::Ok();
}

Status HqService::Impl::ClawBackClaim(const std::string& sold_at, const std::string& checkout_id,
                                      const std::string& refund_id) {
  auto claim = store.GetClaim(sold_at, checkout_id);
  if (!claim.ok()) return claim.status();
  if (!*claim || (*claim)->status != kCredited || (*claim)->points == 0) return Status::Ok();
  ClaimRecord& c = **claim;
  auto co = store.GetCheckout(sold_at, checkout_id);
  if (!co.ok()) return co.status();
  auto refunds = store.AcceptedRefundsOfSale(sold_at, checkout_id);
  if (!refunds.ok()) return refunds.status();
  auto failed = [&](const std::string& why) {
    // Never a failed upload: the refund stands, the credit stays, and the defect is told.
    Report("claim_clawback_failed", {{"terminal_id", sold_at},
                                     {"checkout_id", checkout_id},
                                     {"refund_id", refund_id},
                                     {"reason", why}});
    return Status::Ok();
  };
  if (!*co) return failed("the sale's record is missing");
  // Cumulative and exact: the share of the credited points that every unit refunded so far
  // takes back, less what was taken back before (loyalty-rules.md, "Refunds").
  const size_t n = (*co)->lines.size();
  std::vector<int64_t> none(n, 0), units(n, 0);
  for (const auto& [by, f] : *refunds) {
    for (const auto& l : f.lines) {
      if (l.line < 0 || static_cast<size_t>(l.line) >= n) return failed("a refund line is outside");
      units[static_cast<size_t>(l.line)] += l.qty;
    }
  }
  auto so_far = rules::ComputeRefund(ClaimBasis(**co, c.points), none, units);
  if (!so_far.ok()) return failed(so_far.status().message());
  const int64_t take = so_far->points_clawed_back - c.clawed_back;
  if (take <= 0) return Status::Ok();
  auto fits = BalanceCanTake(c.member_id, -take);
  if (!fits.ok()) return fits.status();
  if (!*fits) return failed("the member's balance would leave the limits");
  auto e = AppendHqEntry("adjust", c.member_id, -take,
                         {{"reason", "claim_refund"},
                          {"terminal_id", sold_at},
                          {"checkout_id", checkout_id},
                          {"refund_id", refund_id}});
  if (!e.ok()) return e.status();
  if (Status s = ApplyEntry(*e); !s.ok()) return s;
  c.clawed_back = so_far->points_clawed_back;
  if (Status s = store.UpdateClaim(c); !s.ok()) return s;
  Report("claim_clawed_back", {{"terminal_id", sold_at},
                               {"checkout_id", checkout_id},
                               {"refund_id", refund_id},
                               {"member_id", std::to_string(c.member_id)},
                               {"points", take}});
  return Status::Ok();
}

// POST /v1/members/{id}/claims {"claim"}: a member who joined before (or elsewhere) claims a
// sale's points.
http::Response HqService::Impl::AddClaim(const std::string& id_text, const http::Request& req) {
  auto j = AdminBody(req);
  if (!j.ok()) return FromStatus(j.status());
  JsonReader r(*j, ErrorCode::kBadRequest);
  std::string text;
  r.Str("claim", &text, 1, codes::kMaxEnrolClaimChars);
  if (!r.ok()) return FromStatus(r.status());
  auto member = RequireMember(id_text);
  if (!member.ok()) return FromStatus(member.status());
  auto verified = VerifyClaim(text);
  if (!verified.ok()) {
    ReportClaimRefused(nullptr, member->member_id, verified.status());
    return FromStatus(verified.status());
  }
  ClaimRecord out;
  Status s = Write([&]() -> Status {
    auto c = RecordClaim(*verified, member->member_id);
    if (!c.ok()) return c.status();
    out = std::move(*c);
    return Status::Ok();
  });
  if (!s.ok()) {
    ReportClaimRefused(&*verified, member->member_id, s);
    return FromStatus(s);
  }
  ReportClaimRecorded(out);
  return JsonResponse(201, ClaimJson(out));
}

// GET /v1/members/{id}/claims: what became of the member's claims.
http::Response HqService::Impl::MemberClaims(const std::string& id_text) {
  auto member = RequireMember(id_text);
  if (!member.ok()) return FromStatus(member.status());
  auto claims = store.ClaimsOfMember(member->member_id);
  if (!claims.ok()) return FromStatus(claims.status());
  json list = json::array();
  for (const auto& c : *claims) list.push_back(ClaimJson(c));
  return JsonResponse(
      200, {{"member_id", std::to_string(member->member_id)}, {"claims", std::move(list)}});
}

void HqService::Impl::ReportClaimRecorded(const ClaimRecord& c) {
  Report("claim_recorded", {{"terminal_id", c.terminal_id},
                            {"checkout_id", c.checkout_id},
                            {"member_id", std::to_string(c.member_id)},
                            {"status", c.status}});
}

void HqService::Impl::ReportClaimRefused(const codes::EnrolClaim* c, uint64_t member_id,
                                         const Status& why) {
  // Only the claim's own refusals; a database error is the request's, not the claim's.
  switch (why.code()) {
    case ErrorCode::kCodeMalformed:
    case ErrorCode::kCodeIssuerUnknown:
    case ErrorCode::kCodeSignatureInvalid:
    case ErrorCode::kCodeExpired:
    case ErrorCode::kClaimUsed:
    case ErrorCode::kClaimRefused:
    case ErrorCode::kCheckoutHasMember:
    case ErrorCode::kCheckoutRefunded:
      break;
    default:
      return;
  }
  Report("claim_refused", {{"terminal_id", c ? json(c->terminal_id) : json()},
                           {"checkout_id", c ? json(c->checkout_id) : json()},
                           {"member_id", std::to_string(member_id)},
                           {"reason", std::string(ErrorCodeName(why.code()))}});
}

}  // namespace loyalty::hq
