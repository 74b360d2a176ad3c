// Quotes: shared/spec/loyalty-rules.md, "The computation, in order". The steps below are
// numbered like the spec's. Every figure is an int64; products go through __int128 and the
// Limits plus ValidateRules' ranges keep every result inside int64 (docs/rules.md).

#include <algorithm>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "loyalty/rules/rules.h"
#include "text.h"

namespace loyalty::rules {
namespace {

using i128 = __int128;

constexpr int64_t kBpOne = 10000;

Status Bad(std::string message) {
  return Status::Error(ErrorCode::kBadRequest, std::move(message));
}

// floor(a × b / d) for non-negative a, b and positive d; the callers' ranges keep the
// result inside int64.
int64_t MulDiv(int64_t a, int64_t b, int64_t d) {
  return static_cast<int64_t>(static_cast<i128>(a) * b / d);
}

Status CheckText(const std::string& s, size_t line, const char* field) {
  // The field's name is put together only for a refusal: this runs for every line of every
  // quote and commit.
  auto name = [&] { return "lines[" + std::to_string(line) + "]." + field; };
  if (s.size() > kMaxTextBytes)
    return Bad(name() + " must be at most 64 bytes, got " + std::to_string(s.size()));
  if (!internal::IsCleanText(s)) return Bad(name() + " must be UTF-8 without control characters");
  return Status::Ok();
}

// Refusals 1–4 of step 4, in the spec's order; nullopt when none applies.
std::optional<ErrorCode> RefusalBeforeAmount(const Rules& r, const MemberContext& m) {
  if (m.frozen) return ErrorCode::kMemberFrozen;
  if (m.static_identification && !r.static_codes_can_redeem)
    return ErrorCode::kStaticCodeCannotRedeem;
  if (m.in_redeem_cooldown) return ErrorCode::kRedeemCooldown;
  if (m.available_balance <= 0) return ErrorCode::kInsufficientPoints;
  return std::nullopt;
}

std::string RefusalMessage(ErrorCode code, const Rules& r) {
  if (code == ErrorCode::kMemberFrozen) return "the member is frozen and cannot redeem points";
  if (code == ErrorCode::kStaticCodeCannotRedeem)
    return "a static card or channel number identifies the member but cannot redeem points; scan "
           "the dynamic code";
  if (code == ErrorCode::kRedeemCooldown)
    return "the member redeemed on this terminal less than " + std::to_string(r.redeem_cooldown_s) +
           " s ago";
  return "the member has no points available";
}

}  // namespace

Coupon CouponTerms(const model::Coupon& c) {
  Coupon t;
  t.coupon_id = c.coupon_id;
  t.kind = c.kind == "percent_off" ? Coupon::Kind::kPercentOff : Coupon::Kind::kAmountOff;
  t.value_cents = c.value_cents;
  t.bp = c.bp;
  t.min_spend_cents = c.min_spend_cents;
  return t;
}

Status ValidateLines(const std::vector<Line>& lines) {
  if (lines.empty() || lines.size() > kMaxLines)
    return Bad("lines must hold 1 to 500 lines, got " + std::to_string(lines.size()));
  for (size_t i = 0; i < lines.size(); ++i) {
    const Line& l = lines[i];
    auto at = [i] { return "lines[" + std::to_string(i) + "]"; };
    if (l.qty < 1 || l.qty > kMaxQty)
      return Bad(at() + ".qty must be 1..10000, got " + std::to_string(l.qty));
    if (l.unit_price_cents < 0 || l.unit_price_cents > kMaxUnitPriceCents)
      return Bad(at() + ".unit_price_cents must be 0..100000000, got " +
                 std::to_string(l.unit_price_cents));
    if (Status s = CheckText(l.sku, i, "sku"); !s.ok()) return s;
    if (Status s = CheckText(l.category, i, "category"); !s.ok()) return s;
  }
  return Status::Ok();
}

std::vector<int64_t> Allocate(int64_t amount, const std::vector<int64_t>& weights) {
  std::vector<int64_t> out(weights.size(), 0);
  i128 total = 0;
  for (int64_t w : weights) total += std::max<int64_t>(w, 0);
  if (amount <= 0 || total == 0) return out;
  std::vector<i128> remainder(weights.size(), 0);
  i128 given = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    i128 product = static_cast<i128>(amount) * std::max<int64_t>(weights[i], 0);
    out[i] = static_cast<int64_t>(product / total);
    remainder[i] = product % total;
    given += out[i];
  }
  // Fewer cents are left than lines with a non-zero remainder (Σ remainders = left × Σw
  // with each remainder < Σw), so a zero-weight line never gets one.
  auto left = static_cast<size_t>(amount - given);
  std::vector<size_t> order(weights.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return remainder[a] > remainder[b]; });
  for (size_t k = 0; k < left && k < order.size(); ++k) ++out[order[k]];
  return out;
}

Result<Quote> ComputeQuote(const Rules& r, const QuoteInput& in) {
  if (Status s = ValidateRules(r); !s.ok()) return s;
  if (Status s = ValidateLines(in.lines); !s.ok()) return s;
  if (!in.redeem.max && (in.redeem.points < 0 || in.redeem.points > kMaxRedeemPoints))
    return Bad("redeem_points must be 0..100000000 or \"max\", got " +
               std::to_string(in.redeem.points));
  if (in.coupon) {
    const Coupon& c = *in.coupon;
    if (!in.member)
      return Status::Error(ErrorCode::kCouponInvalid, "a coupon needs an identified member");
    bool percent = c.kind == Coupon::Kind::kPercentOff;
    if ((!percent && c.value_cents < 0) || (percent && (c.bp < 0 || c.bp > kBpOne)) ||
        c.min_spend_cents < 0)
      return Status::Error(ErrorCode::kCouponInvalid,
                           "coupon " + internal::Printable(c.coupon_id) + " has impossible values");
  }
  bool wants_points = !in.redeem.max && in.redeem.points > 0;
  if (!in.member && wants_points)
    return Status::Error(ErrorCode::kRedeemNotAllowed,
                         "redeeming points needs an identified member");

  Quote q;
  const MemberContext* member = in.member ? &*in.member : nullptr;
  // Without a member nothing of the programme applies: no tier discount, no points.
  TierRule tier{kBpOne, 0};
  if (member) {
    auto it = r.tiers.find(member->tier);
    if (it == r.tiers.end()) {
      it = r.tiers.find("member");
      q.warnings.push_back({"tier_unknown", "tier " + internal::Printable(member->tier) +
                                                " is not in rules " + r.version +
                                                "; priced as member"});
    }
    tier = it->second;
  }

  const size_t n = in.lines.size();
  q.lines.resize(n);
  std::vector<int64_t> net(n);
  for (size_t i = 0; i < n; ++i) {
    const Line& l = in.lines[i];
    LineResult& lr = q.lines[i];
    lr.line_total = l.qty * l.unit_price_cents;  // ≤ 10^12 by the Limits
    lr.discountable = !r.no_discount_categories.count(l.category);
    lr.points_eligible = !r.no_points_categories.count(l.category);
    lr.redeemable = !r.no_redeem_categories.count(l.category);
    q.subtotal_cents += lr.line_total;
    // 1. Tier discount.
    if (lr.discountable) lr.tier_discount_cents = MulDiv(lr.line_total, tier.discount_bp, kBpOne);
    q.tier_discount_cents += lr.tier_discount_cents;
    net[i] = lr.line_total - lr.tier_discount_cents;
  }

  // 2. Coupon, allocated over the discountable lines by their net.
  if (in.coupon) {
    const Coupon& c = *in.coupon;
    std::vector<int64_t> weights(n, 0);
    int64_t base = 0;
    for (size_t i = 0; i < n; ++i)
      if (q.lines[i].discountable) base += weights[i] = net[i];
    if (base < c.min_spend_cents) {
      q.warnings.push_back(
          {"coupon_below_min_spend", "coupon " + internal::Printable(c.coupon_id) + " needs " +
                                         std::to_string(c.min_spend_cents) +
                                         " cents of discountable spend, the basket has " +
                                         std::to_string(base)});
    } else {
      int64_t amount = c.kind == Coupon::Kind::kAmountOff ? std::min(c.value_cents, base)
                                                          : MulDiv(base, c.bp, kBpOne);
      if (amount == 0) {
        // Spending a coupon on a zero discount would take it from the customer for nothing.
        q.warnings.push_back(
            {"coupon_no_discount", "coupon " + internal::Printable(c.coupon_id) +
                                       " gives no discount on this basket and is not used"});
      } else {
        auto alloc = Allocate(amount, weights);
        for (size_t i = 0; i < n; ++i) {
          q.lines[i].coupon_cents = alloc[i];
          net[i] -= alloc[i];
        }
        q.coupon_discount_cents = amount;
        q.coupon_applied = true;
      }
    }
  }

  // 3. Payable and redeemable.
  int64_t payable = 0;
  std::vector<int64_t> redeem_weights(n, 0);
  for (size_t i = 0; i < n; ++i) {
    payable += net[i];
    q.lines[i].net_before_redeem_cents = net[i];
    if (q.lines[i].redeemable) q.redeemable_cents += redeem_weights[i] = net[i];
  }

  // 4. Redemption: the cap first, then the request against it.
  if (member) {
    int64_t cap = MulDiv(q.redeemable_cents, r.max_redeem_bp, kBpOne) / r.cents_per_point;
    cap = std::min(cap, member->available_balance);
    if (member->stale) cap = std::min(cap, r.stale_redeem_cap_points);
    cap = std::max<int64_t>(cap, 0);
    cap -= cap % r.redeem_step_points;
    std::optional<ErrorCode> refusal = RefusalBeforeAmount(r, *member);
    if (refusal) cap = 0;
    q.max_redeem_points = cap;

    if (in.redeem.max) {
      q.redeem_points = cap;
      if (refusal)
        q.warnings.push_back({"redeem_unavailable", std::string(ErrorCodeName(*refusal)) + ": " +
                                                        RefusalMessage(*refusal, r)});
    } else if (wants_points) {
      int64_t want = in.redeem.points;
      if (refusal) return Status::Error(*refusal, RefusalMessage(*refusal, r));
      if (want > member->available_balance)
        return Status::Error(ErrorCode::kInsufficientPoints,
                             "the member has " + std::to_string(member->available_balance) +
                                 " points available, " + std::to_string(want) + " requested");
      if (want % r.redeem_step_points != 0)
        return Status::Error(ErrorCode::kRedeemNotAllowed,
                             "points are redeemed in multiples of " +
                                 std::to_string(r.redeem_step_points) + ", got " +
                                 std::to_string(want));
      if (want > cap)
        return Status::Error(ErrorCode::kRedeemNotAllowed,
                             "at most " + std::to_string(cap) +
                                 " points can be redeemed on this basket" +
                                 (member->stale ? " (the member's data is stale)" : ""));
      q.redeem_points = want;
    }
  }
  // points ≤ floor(redeemable × max_redeem_bp / 10000 / cents_per_point), so the cents
  // never exceed the redeemable amount and no line's net goes below zero.
  q.redeem_cents = q.redeem_points * r.cents_per_point;
  if (q.redeem_cents > 0) {
    auto alloc = Allocate(q.redeem_cents, redeem_weights);
    for (size_t i = 0; i < n; ++i) {
      q.lines[i].redeem_cents = alloc[i];
      net[i] -= alloc[i];
    }
  }

  // 5. Total due.
  q.total_due_cents = payable - q.redeem_cents;

  // 6. Points on the final nets.
  for (size_t i = 0; i < n; ++i) q.lines[i].net_cents = net[i];
  if (member) {
    for (size_t i = 0; i < n; ++i)
      if (q.lines[i].points_eligible) q.eligible_cents += net[i];
    q.points_to_earn = PointsFor(r, q.eligible_cents, *member);
  }
  return q;
}

int64_t PointsFor(const Rules& r, int64_t eligible_cents, const MemberContext& member) {
  if (member.frozen || eligible_cents <= 0) return 0;
  auto it = r.tiers.find(member.tier);
  if (it == r.tiers.end()) it = r.tiers.find("member");
  const int64_t multiplier_bp = it == r.tiers.end() ? kBpOne : it->second.multiplier_bp;
  const int64_t campaign_bp = member.birthday_month ? r.birthday_multiplier_bp : kBpOne;
  const i128 num =
      static_cast<i128>(eligible_cents) * r.earn_points_per_yuan * multiplier_bp * campaign_bp;
  return static_cast<int64_t>(num / (static_cast<i128>(100) * kBpOne * kBpOne));
}

}  // namespace loyalty::rules
