// Decodes bytes into rules, a basket, a member, a coupon and a redemption, runs
// ComputeQuote, then refunds the checkout in fuzzed steps with ComputeRefund. Nothing may
// crash or trip UBSan, every refusal must be one the contract names, and the invariants
// the POS relies on must hold: lines add up, no net is negative, refunds never return more
// than the sale and return exactly the sale once every unit is back.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "loyalty/rules/rules.h"

namespace {

using namespace loyalty::rules;  // NOLINT: a test program

void Check(bool ok) {
  if (!ok) std::abort();
}

bool KnownQuoteError(const std::string& code) {
  for (const char* c : {"bad_request", "rules_invalid", "coupon_invalid", "member_frozen",
                        "static_code_cannot_redeem", "redeem_cooldown", "insufficient_points",
                        "redeem_not_allowed"})
    if (code == c) return true;
  return false;
}

// Mostly in range, sometimes anywhere: both the arithmetic and the validation get exercised.
int64_t Value(FuzzedDataProvider& in, int64_t lo, int64_t hi) {
  if (in.ConsumeIntegralInRange<int>(0, 15) == 0) return in.ConsumeIntegral<int64_t>();
  return in.ConsumeIntegralInRange<int64_t>(lo, hi);
}

std::string Category(FuzzedDataProvider& in) {
  static const char* const kNames[] = {"grocery", "beauty", "tobacco", "gift_card", ""};
  if (in.ConsumeBool()) return kNames[in.ConsumeIntegralInRange<int>(0, 4)];
  return in.ConsumeRandomLengthString(70);
}

Rules FuzzRules(FuzzedDataProvider& in) {
  Rules r = Rules::Defaults();
  if (!in.ConsumeBool()) return r;
  r.earn_points_per_yuan = Value(in, 0, 10000);
  r.tiers["member"] = {Value(in, 0, 100000), Value(in, 0, 10000)};
  r.tiers["vip"] = {Value(in, 0, 100000), Value(in, 0, 10000)};
  r.tiers["black"] = {Value(in, 0, 100000), Value(in, 0, 10000)};
  r.birthday_multiplier_bp = Value(in, 0, 100000);
  r.cents_per_point = Value(in, 1, 1000000);
  r.redeem_step_points = Value(in, 1, 100000000);
  r.max_redeem_bp = Value(in, 0, 10000);
  r.stale_redeem_cap_points = Value(in, 0, 100000000);
  r.static_codes_can_redeem = in.ConsumeBool();
  if (in.ConsumeBool()) r.no_points_categories = {Category(in)};
  if (in.ConsumeBool()) r.no_discount_categories = {Category(in)};
  if (in.ConsumeBool()) r.no_redeem_categories = {Category(in)};
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  Rules rules = FuzzRules(in);
  QuoteInput q;
  size_t n = in.ConsumeIntegralInRange<size_t>(0, in.ConsumeBool() ? 8 : 520);
  for (size_t i = 0; i < n; ++i) {
    Line l;
    l.qty = Value(in, 1, in.ConsumeBool() ? 5 : 10000);
    l.unit_price_cents = Value(in, 0, in.ConsumeBool() ? 1000 : 100000000);
    l.category = Category(in);
    l.sku = in.ConsumeBool() ? "sku" : in.ConsumeRandomLengthString(70);
    q.lines.push_back(std::move(l));
  }
  if (in.ConsumeBool()) {
    MemberContext m;
    static const char* const kTiers[] = {"member", "vip", "black", "gold"};
    m.tier = kTiers[in.ConsumeIntegralInRange<int>(0, 3)];
    m.frozen = in.ConsumeIntegralInRange<int>(0, 7) == 0;
    m.static_identification = in.ConsumeIntegralInRange<int>(0, 7) == 0;
    m.in_redeem_cooldown = in.ConsumeIntegralInRange<int>(0, 7) == 0;
    m.available_balance = Value(in, -1000, 10000000);
    m.stale = in.ConsumeBool();
    m.birthday_month = in.ConsumeBool();
    q.member = m;
  }
  if (in.ConsumeBool()) {
    Coupon c;
    c.coupon_id = "C";
    c.kind = in.ConsumeBool() ? Coupon::Kind::kAmountOff : Coupon::Kind::kPercentOff;
    c.value_cents = Value(in, 0, 1000000);
    c.bp = Value(in, 0, 10000);
    c.min_spend_cents = Value(in, 0, 1000000);
    q.coupon = c;
  }
  q.redeem.max = in.ConsumeBool();
  q.redeem.points = Value(in, 0, 20000);

  auto quote = ComputeQuote(rules, q);
  if (!quote.ok()) {
    Check(KnownQuoteError(std::string(quote.status().code_name())));
    return 0;
  }
  int64_t net_sum = 0;
  RefundBasis basis;
  std::vector<int64_t> qty;
  for (size_t i = 0; i < quote->lines.size(); ++i) {
    const LineResult& l = quote->lines[i];
    Check(l.net_cents >= 0 && l.net_cents <= l.net_before_redeem_cents);
    net_sum += l.net_cents;
    basis.lines.push_back(
        {q.lines[i].qty, l.net_cents, l.net_before_redeem_cents, l.points_eligible, l.redeemable});
    qty.push_back(q.lines[i].qty);
  }
  Check(net_sum == quote->total_due_cents);
  Check(quote->points_to_earn >= 0 && quote->redeem_points >= 0);
  basis.points_earned = quote->points_to_earn;
  basis.redeemed_points = quote->redeem_points;
  basis.eligible_cents = quote->eligible_cents;
  basis.redeemable_cents = quote->redeemable_cents;

  // Refund in fuzzed steps, then whatever is left in one last step.
  std::vector<int64_t> before(qty.size(), 0);
  int64_t cents = 0, clawed = 0, restored = 0;
  for (int step = 0; step < 4 && in.remaining_bytes() > 0; ++step) {
    std::vector<int64_t> after = before;
    for (size_t i = 0; i < qty.size(); ++i)
      after[i] += in.ConsumeIntegralInRange<int64_t>(0, qty[i] - before[i]);
    auto a = ComputeRefund(basis, before, after);
    Check(a.ok());
    Check(a->refund_cents >= 0 && a->points_clawed_back >= 0 && a->points_restored >= 0);
    cents += a->refund_cents;
    clawed += a->points_clawed_back;
    restored += a->points_restored;
    Check(cents <= quote->total_due_cents && clawed <= quote->points_to_earn &&
          restored <= quote->redeem_points);
    before = after;
  }
  auto last = ComputeRefund(basis, before, qty);
  Check(last.ok());
  Check(cents + last->refund_cents == quote->total_due_cents);
  Check(clawed + last->points_clawed_back == quote->points_to_earn);
  Check(restored + last->points_restored == quote->redeem_points);
  // One unit too many is refused.
  std::vector<int64_t> over = qty;
  over[0] += 1;
  Check(ComputeRefund(basis, qty, over).status().code() == loyalty::ErrorCode::kRefundExceedsSale);
  return 0;
}
