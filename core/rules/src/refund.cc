// Refunds: shared/spec/loyalty-rules.md, "Refunds". Each figure is computed cumulatively
// ("so far", after this refund) minus the same figure before it. Each per-line term
// floor(x × units / qty) only grows with units and equals x when units = qty, so the
// differences are never negative, never add up to more than the sale, and add up to
// exactly the sale once every unit is back, whatever the order and split.

#include <string>
#include <vector>

#include "loyalty/rules/rules.h"

namespace loyalty::rules {
namespace {

using i128 = __int128;

// A stored basis is checked against the same limits as the quote that produced it; a
// line's net is at most qty × unit price ≤ 10^12 and a checkout's totals at most 500 of them.
constexpr int64_t kMaxLineCents = kMaxQty * kMaxUnitPriceCents;
constexpr int64_t kMaxCheckoutCents = kMaxLineCents * static_cast<int64_t>(kMaxLines);
constexpr int64_t kMaxPoints = 1000000000000000000;  // 10^18

Status Internal(std::string message) {
  return Status::Error(ErrorCode::kInternal, "refund basis: " + std::move(message));
}

enum class Amount { kFinalNet, kEligibleNet, kRedeemableBeforeRedeem };

// Σ floor(per_line_i × units_i / qty_i) over the lines that count for `which`.
int64_t Refunded(const RefundBasis& b, const std::vector<int64_t>& units, Amount which) {
  i128 sum = 0;
  for (size_t i = 0; i < b.lines.size(); ++i) {
    const RefundLine& l = b.lines[i];
    int64_t per_line = 0;
    switch (which) {
      case Amount::kFinalNet:
        per_line = l.final_net_cents;
        break;
      case Amount::kEligibleNet:
        per_line = l.points_eligible ? l.final_net_cents : 0;
        break;
      case Amount::kRedeemableBeforeRedeem:
        per_line = l.redeemable ? l.net_before_redeem_cents : 0;
        break;
    }
    sum += static_cast<i128>(per_line) * units[i] / l.qty;
  }
  return static_cast<int64_t>(sum);  // ≤ Σ per_line ≤ kMaxCheckoutCents
}

// floor(total × part / whole), 0 when nothing is at stake.
int64_t Share(int64_t total, int64_t part, int64_t whole) {
  if (total == 0 || whole == 0) return 0;
  return static_cast<int64_t>(static_cast<i128>(total) * part / whole);
}

Status CheckBasis(const RefundBasis& b) {
  if (b.lines.empty() || b.lines.size() > kMaxLines)
    return Internal("must hold 1 to 500 lines, has " + std::to_string(b.lines.size()));
  int64_t eligible = 0, redeemable = 0;
  for (size_t i = 0; i < b.lines.size(); ++i) {
    const RefundLine& l = b.lines[i];
    std::string at = "line " + std::to_string(i);
    if (l.qty < 1 || l.qty > kMaxQty)
      return Internal(at + ": qty " + std::to_string(l.qty) + " is outside 1..10000");
    if (l.net_before_redeem_cents < 0 || l.net_before_redeem_cents > kMaxLineCents ||
        l.final_net_cents < 0 || l.final_net_cents > l.net_before_redeem_cents)
      return Internal(at + ": nets must satisfy 0 <= final <= before redemption <= 10^12");
    if (l.points_eligible) eligible += l.final_net_cents;
    if (l.redeemable) redeemable += l.net_before_redeem_cents;
  }
  if (b.points_earned < 0 || b.points_earned > kMaxPoints || b.redeemed_points < 0 ||
      b.redeemed_points > kMaxPoints)
    return Internal("points must be 0..10^18");
  if (b.eligible_cents < 0 || b.eligible_cents > kMaxCheckoutCents || b.redeemable_cents < 0 ||
      b.redeemable_cents > kMaxCheckoutCents)
    return Internal("eligible and redeemable cents out of range");
  // Exactness rests on these: at a full refund the refunded eligible (redeemable) amount
  // equals the stored total, so the share is all of the points. A mismatch would leave
  // points behind or give too many back, so it is refused rather than approximated.
  if (b.points_earned > 0 && b.eligible_cents != eligible)
    return Internal("eligible_cents " + std::to_string(b.eligible_cents) +
                    " is not the sum of the eligible lines (" + std::to_string(eligible) + ")");
  if (b.redeemed_points > 0 && b.redeemable_cents != redeemable)
    return Internal("redeemable_cents " + std::to_string(b.redeemable_cents) +
                    " is not the sum of the redeemable lines (" + std::to_string(redeemable) + ")");
  return Status::Ok();
}

}  // namespace

RefundBasis RefundBasisOf(const model::Checkout& sale) {
  RefundBasis b;
  b.lines.reserve(sale.lines.size());
  for (const auto& l : sale.lines)
    b.lines.push_back(
        {l.qty, l.net_cents, l.net_before_redeem_cents, l.points_eligible, l.redeemable});
  b.points_earned = sale.points_earned;
  b.redeemed_points = sale.redeemed_points;
  b.eligible_cents = sale.eligible_cents;
  b.redeemable_cents = sale.redeemable_cents;
  return b;
}

Result<RefundAmounts> ComputeRefund(const RefundBasis& basis,
                                    const std::vector<int64_t>& units_before,
                                    const std::vector<int64_t>& units_after) {
  if (units_before.size() != basis.lines.size() || units_after.size() != basis.lines.size())
    return Status::Error(ErrorCode::kBadRequest,
                         "the checkout has " + std::to_string(basis.lines.size()) + " lines");
  if (Status s = CheckBasis(basis); !s.ok()) return s;
  for (size_t i = 0; i < basis.lines.size(); ++i) {
    std::string at = "line " + std::to_string(i);
    if (units_before[i] < 0 || units_after[i] < units_before[i])
      return Status::Error(ErrorCode::kBadRequest,
                           at + ": units refunded cannot be negative or decrease");
    if (units_after[i] > basis.lines[i].qty)
      return Status::Error(ErrorCode::kRefundExceedsSale,
                           at + ": " + std::to_string(units_after[i]) + " units refunded in all, " +
                               std::to_string(basis.lines[i].qty) + " sold");
  }
  RefundAmounts out;
  out.refund_cents = Refunded(basis, units_after, Amount::kFinalNet) -
                     Refunded(basis, units_before, Amount::kFinalNet);
  out.points_clawed_back =
      Share(basis.points_earned, Refunded(basis, units_after, Amount::kEligibleNet),
            basis.eligible_cents) -
      Share(basis.points_earned, Refunded(basis, units_before, Amount::kEligibleNet),
            basis.eligible_cents);
  out.points_restored =
      Share(basis.redeemed_points, Refunded(basis, units_after, Amount::kRedeemableBeforeRedeem),
            basis.redeemable_cents) -
      Share(basis.redeemed_points, Refunded(basis, units_before, Amount::kRedeemableBeforeRedeem),
            basis.redeemable_cents);
  return out;
}

}  // namespace loyalty::rules
