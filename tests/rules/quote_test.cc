// Quotes: the spec's worked examples column by column, the refusal order, and the edges of
// every step (coupon minimum, caps, rounding, no member, frozen, birthday).

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "loyalty/rules/rules.h"

namespace loyalty::rules {
namespace {

// The spec's basket: 0: 2 × 19.90 grocery, 1: 1 × 129.00 beauty, 2: 1 × 35.00 tobacco.
std::vector<Line> SpecBasket() {
  return {{"6901234567890", 2, 1990, "grocery"},
          {"6909876543210", 1, 12900, "beauty"},
          {"6900000000035", 1, 3500, "tobacco"}};
}

MemberContext Member(const std::string& tier, int64_t balance = 0) {
  MemberContext m;
  m.tier = tier;
  m.available_balance = balance;
  return m;
}

Coupon TenOffOverHundred() {
  Coupon c;
  c.coupon_id = "C-10-OFF";
  c.kind = Coupon::Kind::kAmountOff;
  c.value_cents = 1000;
  c.min_spend_cents = 10000;
  return c;
}

Quote MustQuote(const QuoteInput& in, const Rules& r = Rules::Defaults()) {
  auto q = ComputeQuote(r, in);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  return q.ok() ? *q : Quote{};
}

std::vector<int64_t> Nets(const Quote& q) {
  std::vector<int64_t> v;
  for (const auto& l : q.lines) v.push_back(l.net_cents);
  return v;
}
std::vector<int64_t> CouponCents(const Quote& q) {
  std::vector<int64_t> v;
  for (const auto& l : q.lines) v.push_back(l.coupon_cents);
  return v;
}
std::vector<int64_t> RedeemCents(const Quote& q) {
  std::vector<int64_t> v;
  for (const auto& l : q.lines) v.push_back(l.redeem_cents);
  return v;
}

std::string CodeOf(const QuoteInput& in, const Rules& r = Rules::Defaults()) {
  auto q = ComputeQuote(r, in);
  return std::string(q.status().code_name());
}

// --- Worked examples -------------------------------------------------------------------

TEST(WorkedExamples, TierMember) {
  QuoteInput in{SpecBasket(), Member("member"), std::nullopt, {}};
  Quote q = MustQuote(in);
  EXPECT_EQ(q.subtotal_cents, 20380);
  EXPECT_EQ(q.tier_discount_cents, 0);
  EXPECT_EQ(q.coupon_discount_cents, 0);
  EXPECT_EQ(q.redeem_points, 0);
  EXPECT_EQ(q.total_due_cents, 20380);
  EXPECT_EQ(q.eligible_cents, 16880);
  EXPECT_EQ(q.points_to_earn, 168);
  EXPECT_EQ(Nets(q), (std::vector<int64_t>{3980, 12900, 3500}));
}

TEST(WorkedExamples, TierVip) {
  QuoteInput in{SpecBasket(), Member("vip"), std::nullopt, {}};
  Quote q = MustQuote(in);
  EXPECT_EQ(q.subtotal_cents, 20380);
  EXPECT_EQ(q.tier_discount_cents, 844);
  EXPECT_EQ(q.lines[0].tier_discount_cents, 199);
  EXPECT_EQ(q.lines[1].tier_discount_cents, 645);
  EXPECT_EQ(q.lines[2].tier_discount_cents, 0);
  EXPECT_EQ(q.coupon_discount_cents, 0);
  EXPECT_EQ(q.redeem_points, 0);
  EXPECT_EQ(q.total_due_cents, 19536);
  EXPECT_EQ(q.eligible_cents, 16036);
  EXPECT_EQ(q.points_to_earn, 240);
  EXPECT_EQ(Nets(q), (std::vector<int64_t>{3781, 12255, 3500}));
}

TEST(WorkedExamples, TierBlackBirthdayMonth) {
  MemberContext m = Member("black");
  m.birthday_month = true;
  QuoteInput in{SpecBasket(), m, std::nullopt, {}};
  Quote q = MustQuote(in);
  EXPECT_EQ(q.tier_discount_cents, 1688);
  EXPECT_EQ(q.coupon_discount_cents, 0);
  EXPECT_EQ(q.redeem_points, 0);
  EXPECT_EQ(q.total_due_cents, 18692);
  EXPECT_EQ(q.eligible_cents, 15192);
  EXPECT_EQ(q.points_to_earn, 607);
  EXPECT_EQ(Nets(q), (std::vector<int64_t>{3582, 11610, 3500}));
}

TEST(WorkedExamples, VipWithCoupon) {
  QuoteInput in{SpecBasket(), Member("vip"), TenOffOverHundred(), {}};
  Quote q = MustQuote(in);
  EXPECT_EQ(q.tier_discount_cents, 844);
  EXPECT_TRUE(q.coupon_applied);
  EXPECT_EQ(q.coupon_discount_cents, 1000);
  EXPECT_EQ(CouponCents(q), (std::vector<int64_t>{236, 764, 0}));
  EXPECT_EQ(q.redeem_points, 0);
  EXPECT_EQ(q.total_due_cents, 18536);
  EXPECT_EQ(q.eligible_cents, 15036);
  EXPECT_EQ(q.points_to_earn, 225);
  EXPECT_EQ(Nets(q), (std::vector<int64_t>{3545, 11491, 3500}));
  EXPECT_TRUE(q.warnings.empty());
}

TEST(WorkedExamples, VipCouponRedeemMax) {
  QuoteInput in{SpecBasket(), Member("vip", 5000), TenOffOverHundred(), {.max = true}};
  Quote q = MustQuote(in);
  EXPECT_EQ(q.tier_discount_cents, 844);
  EXPECT_EQ(q.coupon_discount_cents, 1000);
  EXPECT_EQ(CouponCents(q), (std::vector<int64_t>{236, 764, 0}));
  EXPECT_EQ(q.max_redeem_points, 5000);
  EXPECT_EQ(q.redeem_points, 5000);
  EXPECT_EQ(q.redeem_cents, 5000);
  EXPECT_EQ(RedeemCents(q), (std::vector<int64_t>{1179, 3821, 0}));
  EXPECT_EQ(q.total_due_cents, 13536);
  EXPECT_EQ(q.eligible_cents, 10036);
  EXPECT_EQ(q.points_to_earn, 150);
  EXPECT_EQ(Nets(q), (std::vector<int64_t>{2366, 7670, 3500}));
  EXPECT_EQ(q.redeemable_cents, 15036);
  EXPECT_EQ(q.lines[0].net_before_redeem_cents, 3545);
  EXPECT_EQ(q.lines[1].net_before_redeem_cents, 11491);
}

TEST(WorkedExamples, VipRedeem3000) {
  QuoteInput in{SpecBasket(), Member("vip", 3050), std::nullopt, {.points = 3000}};
  Quote q = MustQuote(in);
  EXPECT_EQ(q.tier_discount_cents, 844);
  EXPECT_EQ(q.coupon_discount_cents, 0);
  EXPECT_EQ(q.redeem_points, 3000);
  EXPECT_EQ(RedeemCents(q), (std::vector<int64_t>{707, 2293, 0}));
  EXPECT_EQ(q.total_due_cents, 16536);
  EXPECT_EQ(q.eligible_cents, 13036);
  EXPECT_EQ(q.points_to_earn, 195);
  EXPECT_EQ(Nets(q), (std::vector<int64_t>{3074, 9962, 3500}));
  EXPECT_EQ(q.max_redeem_points, 3000);  // the balance 3050 rounded down to the step
}

// --- Refusals --------------------------------------------------------------------------

// Step 6 alone (PointsFor): what HQ credits a claimed sale with (docs/hq.md, "Claims").
TEST(PointsFor, IsStepSixOfTheQuote) {
  for (const char* tier : {"member", "vip", "black"}) {
    for (bool birthday : {false, true}) {
      MemberContext m = Member(tier);
      m.birthday_month = birthday;
      const Quote q = MustQuote({SpecBasket(), m, std::nullopt, {}});
      EXPECT_EQ(PointsFor(Rules::Defaults(), q.eligible_cents, m), q.points_to_earn)
          << tier << (birthday ? " birthday" : "");
    }
  }
  // The spec basket's eligible 16880 without discounts: 168 points for a member, 253 for a vip.
  EXPECT_EQ(PointsFor(Rules::Defaults(), 16880, Member("member")), 168);
  EXPECT_EQ(PointsFor(Rules::Defaults(), 16880, Member("vip")), 253);
  MemberContext frozen = Member("black");
  frozen.frozen = true;
  EXPECT_EQ(PointsFor(Rules::Defaults(), 16880, frozen), 0);
  EXPECT_EQ(PointsFor(Rules::Defaults(), 0, Member("black")), 0);
  EXPECT_EQ(PointsFor(Rules::Defaults(), -5, Member("black")), 0);
  EXPECT_EQ(PointsFor(Rules::Defaults(), 99, Member("member")), 0) << "under a yuan";
  EXPECT_EQ(PointsFor(Rules::Defaults(), 16880, Member("gold")), 168) << "unknown: member";
}

TEST(Refusals, EachInTurn) {
  QuoteInput in{SpecBasket(), Member("vip", 5000), std::nullopt, {.points = 1000}};
  EXPECT_EQ(CodeOf(in), "ok");

  QuoteInput frozen = in;
  frozen.member->frozen = true;
  EXPECT_EQ(CodeOf(frozen), "member_frozen");

  QuoteInput static_code = in;
  static_code.member->static_identification = true;
  EXPECT_EQ(CodeOf(static_code), "static_code_cannot_redeem");
  Rules allow = Rules::Defaults();
  allow.static_codes_can_redeem = true;
  EXPECT_EQ(CodeOf(static_code, allow), "ok");

  QuoteInput cooldown = in;
  cooldown.member->in_redeem_cooldown = true;
  EXPECT_EQ(CodeOf(cooldown), "redeem_cooldown");

  QuoteInput empty = in;
  empty.member->available_balance = 0;
  EXPECT_EQ(CodeOf(empty), "insufficient_points");
  empty.member->available_balance = -300;  // after a claw-back
  EXPECT_EQ(CodeOf(empty), "insufficient_points");

  QuoteInput above_balance = in;
  above_balance.member->available_balance = 900;
  EXPECT_EQ(CodeOf(above_balance), "insufficient_points");

  QuoteInput off_step = in;
  off_step.redeem.points = 1050;
  EXPECT_EQ(CodeOf(off_step), "redeem_not_allowed");

  QuoteInput above_half = in;  // redeemable 16036 → at most 8018 cents
  above_half.member->available_balance = 100000;
  above_half.redeem.points = 8100;
  EXPECT_EQ(CodeOf(above_half), "redeem_not_allowed");
  above_half.redeem.points = 8000;
  EXPECT_EQ(CodeOf(above_half), "ok");

  QuoteInput stale = in;
  stale.member->stale = true;
  stale.redeem.points = 2100;
  EXPECT_EQ(CodeOf(stale), "redeem_not_allowed");
  stale.redeem.points = 2000;
  EXPECT_EQ(CodeOf(stale), "ok");
}

TEST(Refusals, EarlierRefusalWins) {
  QuoteInput in{SpecBasket(), Member("vip", 5000), std::nullopt, {.points = 1000}};
  QuoteInput a = in;  // 1 and 2
  a.member->frozen = true;
  a.member->static_identification = true;
  EXPECT_EQ(CodeOf(a), "member_frozen");
  QuoteInput b = in;  // 2 and 3
  b.member->static_identification = true;
  b.member->in_redeem_cooldown = true;
  EXPECT_EQ(CodeOf(b), "static_code_cannot_redeem");
  QuoteInput c = in;  // 3 and 4
  c.member->in_redeem_cooldown = true;
  c.member->available_balance = 0;
  EXPECT_EQ(CodeOf(c), "redeem_cooldown");
  QuoteInput d = in;  // 4 and 5: above the balance and off the step
  d.member->available_balance = 50;
  d.redeem.points = 150;
  EXPECT_EQ(CodeOf(d), "insufficient_points");
  QuoteInput e = in;  // 1 and 5
  e.member->frozen = true;
  e.redeem.points = 99999;
  EXPECT_EQ(CodeOf(e), "member_frozen");
}

TEST(Refusals, MaxIsNeverRefused) {
  QuoteInput in{SpecBasket(), Member("vip", 5000), std::nullopt, {.max = true}};
  for (int which = 0; which < 4; ++which) {
    QuoteInput x = in;
    if (which == 0) x.member->frozen = true;
    if (which == 1) x.member->static_identification = true;
    if (which == 2) x.member->in_redeem_cooldown = true;
    if (which == 3) x.member->available_balance = -10;
    Quote q = MustQuote(x);
    EXPECT_EQ(q.redeem_points, 0) << which;
    EXPECT_EQ(q.max_redeem_points, 0) << which;
    ASSERT_EQ(q.warnings.size(), 1u) << which;
    EXPECT_EQ(q.warnings[0].code, "redeem_unavailable");
  }
}

TEST(Refusals, ZeroPointsIsNoRedemption) {
  QuoteInput in{SpecBasket(), Member("vip", 0), std::nullopt, {.points = 0}};
  in.member->frozen = true;
  Quote q = MustQuote(in);
  EXPECT_EQ(q.redeem_points, 0);
  EXPECT_EQ(q.total_due_cents, 19536);
}

TEST(Refusals, NoMember) {
  QuoteInput points{SpecBasket(), std::nullopt, std::nullopt, {.points = 100}};
  EXPECT_EQ(CodeOf(points), "redeem_not_allowed");
  QuoteInput coupon{SpecBasket(), std::nullopt, TenOffOverHundred(), {}};
  EXPECT_EQ(CodeOf(coupon), "coupon_invalid");
  QuoteInput max{SpecBasket(), std::nullopt, std::nullopt, {.max = true}};
  Quote q = MustQuote(max);
  EXPECT_EQ(q.redeem_points, 0);
  EXPECT_EQ(q.max_redeem_points, 0);
}

// --- Caps and rounding -----------------------------------------------------------------

TEST(Redemption, StaleCapWithMax) {
  QuoteInput in{SpecBasket(), Member("vip", 5000), std::nullopt, {.max = true}};
  in.member->stale = true;
  Quote q = MustQuote(in);
  EXPECT_EQ(q.max_redeem_points, 2000);
  EXPECT_EQ(q.redeem_points, 2000);
  EXPECT_EQ(q.total_due_cents, 19536 - 2000);
}

TEST(Redemption, StepRoundsDown) {
  // Redeemable 2468 → half is 1234 cents → 1200 points.
  QuoteInput in{{{"a", 1, 2468, "grocery"}}, Member("member", 100000), std::nullopt, {.max = true}};
  Quote q = MustQuote(in);
  EXPECT_EQ(q.max_redeem_points, 1200);
  Rules r = Rules::Defaults();
  r.redeem_step_points = 1;
  EXPECT_EQ(MustQuote(in, r).max_redeem_points, 1234);
  r.redeem_step_points = 500;
  EXPECT_EQ(MustQuote(in, r).max_redeem_points, 1000);
  r.redeem_step_points = 100;
  r.cents_per_point = 3;  // floor(1234 / 3) = 411 → 400 points = 1200 cents
  Quote q3 = MustQuote(in, r);
  EXPECT_EQ(q3.max_redeem_points, 400);
  EXPECT_EQ(q3.redeem_cents, 1200);
}

TEST(Redemption, HalfCapCountsRedeemableLinesOnly) {
  QuoteInput in{
      {{"g", 1, 1000, "grocery"}, {"t", 1, 100000, "tobacco"}, {"gc", 1, 50000, "gift_card"}},
      Member("member", 100000),
      std::nullopt,
      {.max = true}};
  Quote q = MustQuote(in);
  EXPECT_EQ(q.redeemable_cents, 1000);
  EXPECT_EQ(q.max_redeem_points, 500);
  EXPECT_EQ(RedeemCents(q), (std::vector<int64_t>{500, 0, 0}));
  EXPECT_EQ(Nets(q), (std::vector<int64_t>{500, 100000, 50000}));
  in.redeem = {.points = 600};
  EXPECT_EQ(CodeOf(in), "redeem_not_allowed");
}

TEST(Redemption, BalanceCapsMax) {
  QuoteInput in{SpecBasket(), Member("vip", 1234), std::nullopt, {.max = true}};
  EXPECT_EQ(MustQuote(in).redeem_points, 1200);
}

// --- Coupons ---------------------------------------------------------------------------

TEST(Coupons, BelowMinimumIsAWarning) {
  Coupon c = TenOffOverHundred();
  c.min_spend_cents = 16037;  // the vip base is 16036
  QuoteInput in{SpecBasket(), Member("vip"), c, {}};
  Quote q = MustQuote(in);
  EXPECT_FALSE(q.coupon_applied);
  EXPECT_EQ(q.coupon_discount_cents, 0);
  EXPECT_EQ(q.total_due_cents, 19536);
  ASSERT_EQ(q.warnings.size(), 1u);
  EXPECT_EQ(q.warnings[0].code, "coupon_below_min_spend");
  in.coupon->min_spend_cents = 16036;  // exactly at the minimum applies
  EXPECT_TRUE(MustQuote(in).coupon_applied);
}

TEST(Coupons, PercentOff) {
  Coupon c;
  c.coupon_id = "P10";
  c.kind = Coupon::Kind::kPercentOff;
  c.bp = 1000;
  QuoteInput in{SpecBasket(), Member("vip"), c, {}};
  Quote q = MustQuote(in);
  EXPECT_EQ(q.coupon_discount_cents, 1603);  // floor(16036 × 10 %)
  EXPECT_EQ(CouponCents(q), (std::vector<int64_t>{378, 1225, 0}));
  EXPECT_EQ(q.total_due_cents, 17933);
  EXPECT_EQ(q.eligible_cents, 14433);
  EXPECT_EQ(q.points_to_earn, 216);
}

TEST(Coupons, AmountOffLargerThanBase) {
  Coupon c = TenOffOverHundred();
  c.value_cents = 1000000;
  c.min_spend_cents = 0;
  QuoteInput in{SpecBasket(), Member("vip", 5000), c, {.max = true}};
  Quote q = MustQuote(in);
  EXPECT_EQ(q.coupon_discount_cents, 16036);
  EXPECT_EQ(Nets(q), (std::vector<int64_t>{0, 0, 3500}));
  EXPECT_EQ(q.total_due_cents, 3500);
  EXPECT_EQ(q.eligible_cents, 0);
  EXPECT_EQ(q.points_to_earn, 0);
  EXPECT_EQ(q.max_redeem_points, 0);  // only tobacco is left
}

TEST(Coupons, NothingDiscountableIsNotUsed) {
  Coupon c = TenOffOverHundred();
  c.min_spend_cents = 0;
  QuoteInput in{{{"t", 1, 3500, "tobacco"}}, Member("vip"), c, {}};
  Quote q = MustQuote(in);
  EXPECT_FALSE(q.coupon_applied);
  ASSERT_EQ(q.warnings.size(), 1u);
  EXPECT_EQ(q.warnings[0].code, "coupon_no_discount");
}

TEST(Coupons, ImpossibleValues) {
  Coupon c = TenOffOverHundred();
  c.value_cents = -1;
  EXPECT_EQ(CodeOf({SpecBasket(), Member("vip"), c, {}}), "coupon_invalid");
  c = TenOffOverHundred();
  c.kind = Coupon::Kind::kPercentOff;
  c.bp = 10001;
  EXPECT_EQ(CodeOf({SpecBasket(), Member("vip"), c, {}}), "coupon_invalid");
  c.bp = 10000;
  Quote q = MustQuote({SpecBasket(), Member("vip"), c, {}});
  EXPECT_EQ(q.total_due_cents, 3500);
}

// --- Members and points ----------------------------------------------------------------

TEST(Points, NoMemberGivesPlainTotals) {
  QuoteInput in{SpecBasket(), std::nullopt, std::nullopt, {}};
  Quote q = MustQuote(in);
  EXPECT_EQ(q.subtotal_cents, 20380);
  EXPECT_EQ(q.tier_discount_cents, 0);
  EXPECT_EQ(q.total_due_cents, 20380);
  EXPECT_EQ(q.eligible_cents, 0);
  EXPECT_EQ(q.points_to_earn, 0);
  EXPECT_EQ(Nets(q), (std::vector<int64_t>{3980, 12900, 3500}));
}

TEST(Points, ZeroPointsAndZeroEligible) {
  Quote tobacco = MustQuote({{{"t", 1, 3500, "tobacco"}}, Member("black"), std::nullopt, {}});
  EXPECT_EQ(tobacco.eligible_cents, 0);
  EXPECT_EQ(tobacco.points_to_earn, 0);
  Quote small = MustQuote({{{"g", 1, 99, "grocery"}}, Member("member"), std::nullopt, {}});
  EXPECT_EQ(small.eligible_cents, 99);
  EXPECT_EQ(small.points_to_earn, 0);
  Quote one = MustQuote({{{"g", 1, 100, "grocery"}}, Member("member"), std::nullopt, {}});
  EXPECT_EQ(one.points_to_earn, 1);
  Quote free = MustQuote({{{"g", 3, 0, ""}}, Member("member"), std::nullopt, {}});
  EXPECT_EQ(free.total_due_cents, 0);
  EXPECT_EQ(free.points_to_earn, 0);
}

TEST(Points, FrozenEarnsNothingButKeepsTierPrices) {
  MemberContext m = Member("vip");
  m.frozen = true;
  Quote q = MustQuote({SpecBasket(), m, std::nullopt, {}});
  EXPECT_EQ(q.tier_discount_cents, 844);
  EXPECT_EQ(q.points_to_earn, 0);
  EXPECT_EQ(q.eligible_cents, 16036);
}

TEST(Points, BirthdayMonthMultiplies) {
  MemberContext m = Member("member");
  m.birthday_month = true;
  EXPECT_EQ(MustQuote({SpecBasket(), m, std::nullopt, {}}).points_to_earn, 337);  // 16880 × 2 / 100
  Rules r = Rules::Defaults();
  r.birthday_multiplier_bp = 10000;
  EXPECT_EQ(MustQuote({SpecBasket(), m, std::nullopt, {}}, r).points_to_earn, 168);
}

TEST(Points, UnknownTierPricesAsMember) {
  Quote q = MustQuote({SpecBasket(), Member("platinum"), std::nullopt, {}});
  EXPECT_EQ(q.tier_discount_cents, 0);
  EXPECT_EQ(q.points_to_earn, 168);
  ASSERT_EQ(q.warnings.size(), 1u);
  EXPECT_EQ(q.warnings[0].code, "tier_unknown");
}

TEST(Points, CategoriesFollowTheRules) {
  Rules r = Rules::Defaults();
  r.no_points_categories = {"beauty"};
  r.no_discount_categories = {};
  Quote q = MustQuote({SpecBasket(), Member("vip"), std::nullopt, {}}, r);
  EXPECT_EQ(q.tier_discount_cents, 199 + 645 + 175);
  EXPECT_EQ(q.eligible_cents, 3781 + 3325);
  EXPECT_FALSE(q.lines[1].points_eligible);
  EXPECT_TRUE(q.lines[2].discountable);
}

TEST(Quote, RejectsInvalidRules) {
  Rules r = Rules::Defaults();
  r.redeem_step_points = 0;
  EXPECT_EQ(CodeOf({SpecBasket(), Member("vip"), std::nullopt, {}}, r), "rules_invalid");
}

// --- Limits ----------------------------------------------------------------------------

std::string LineError(const Line& l) {
  Status s = ValidateLines({l});
  return s.ok() ? "ok" : std::string(s.code_name()) + ": " + s.message();
}

TEST(Limits, Quantity) {
  EXPECT_EQ(LineError({"a", 10000, 1, ""}), "ok");
  EXPECT_EQ(LineError({"a", 10001, 1, ""}),
            "bad_request: lines[0].qty must be 1..10000, got 10001");
  EXPECT_EQ(LineError({"a", 1, 1, ""}), "ok");
  EXPECT_EQ(LineError({"a", 0, 1, ""}), "bad_request: lines[0].qty must be 1..10000, got 0");
  EXPECT_EQ(LineError({"a", -5, 1, ""}), "bad_request: lines[0].qty must be 1..10000, got -5");
}

TEST(Limits, UnitPrice) {
  EXPECT_EQ(LineError({"a", 1, 100000000, ""}), "ok");
  EXPECT_EQ(LineError({"a", 1, 100000001, ""}),
            "bad_request: lines[0].unit_price_cents must be 0..100000000, got 100000001");
  EXPECT_EQ(LineError({"a", 1, 0, ""}), "ok");
  EXPECT_EQ(LineError({"a", 1, -1, ""}),
            "bad_request: lines[0].unit_price_cents must be 0..100000000, got -1");
}

TEST(Limits, LineCount) {
  std::vector<Line> lines(500, Line{"a", 1, 100, "grocery"});
  EXPECT_TRUE(ValidateLines(lines).ok());
  lines.push_back(lines.back());
  Status s = ValidateLines(lines);
  EXPECT_EQ(s.code(), ErrorCode::kBadRequest);
  EXPECT_EQ(s.message(), "lines must hold 1 to 500 lines, got 501");
  EXPECT_EQ(ValidateLines({}).code(), ErrorCode::kBadRequest);
}

TEST(Limits, TextLengths) {
  EXPECT_EQ(LineError({std::string(64, 's'), 1, 1, std::string(64, 'c')}), "ok");
  EXPECT_EQ(LineError({std::string(65, 's'), 1, 1, ""}),
            "bad_request: lines[0].sku must be at most 64 bytes, got 65");
  EXPECT_EQ(LineError({"a", 1, 1, std::string(65, 'c')}),
            "bad_request: lines[0].category must be at most 64 bytes, got 65");
  // 21 three-byte characters + 1 byte = 64 bytes; one more character is 67.
  std::string cjk;
  for (int i = 0; i < 21; ++i) cjk += "烟";
  EXPECT_EQ(LineError({"a", 1, 1, cjk + "x"}), "ok");
  EXPECT_EQ(LineError({"a", 1, 1, cjk + "烟"}),
            "bad_request: lines[0].category must be at most 64 bytes, got 66");
}

TEST(Limits, ControlCharactersAndBadUtf8) {
  for (std::string bad : {std::string("a\x01"), std::string("a\tb"), std::string("a\nb"),
                          std::string("a\x7f"), std::string("a\xC2\x85"), std::string("a\xff"),
                          std::string("\xE7\x83"), std::string("a\0b", 3)}) {
    Status s = ValidateLines({{bad, 1, 1, ""}});
    EXPECT_EQ(s.code(), ErrorCode::kBadRequest) << bad.size();
    EXPECT_EQ(s.message(), "lines[0].sku must be UTF-8 without control characters");
    EXPECT_EQ(ValidateLines({{"a", 1, 1, bad}}).code(), ErrorCode::kBadRequest);
  }
  EXPECT_TRUE(ValidateLines({{"a b-c_d/é", 1, 1, "食品 饮料"}}).ok());
}

TEST(Limits, RedeemPoints) {
  QuoteInput in{SpecBasket(), Member("vip", 200000000), std::nullopt, {.points = 100000000}};
  EXPECT_EQ(CodeOf(in), "redeem_not_allowed");  // in range, above the 50 % cap
  in.redeem.points = 100000001;
  auto q = ComputeQuote(Rules::Defaults(), in);
  EXPECT_EQ(q.status().code(), ErrorCode::kBadRequest);
  EXPECT_EQ(q.status().message(), "redeem_points must be 0..100000000 or \"max\", got 100000001");
  in.redeem.points = -1;
  EXPECT_EQ(CodeOf(in), "bad_request");
  // At the limit, on a basket big enough, 10^8 points go through.
  QuoteInput big{{{"a", 10000, 100000000, "grocery"}},
                 Member("member", 100000000),
                 std::nullopt,
                 {.points = 100000000}};
  Quote q2 = MustQuote(big);
  EXPECT_EQ(q2.redeem_points, 100000000);
}

TEST(Limits, LargestBasketDoesNotOverflow) {
  // 500 lines × 10000 × 10^8 = 5 × 10^14 cents of eligible spend with every multiplier at
  // its maximum: 5 × 10^28 inside the product, 5 × 10^18 points out.
  Rules r = Rules::Defaults();
  r.earn_points_per_yuan = 10000;
  r.tiers["black"] = {100000, 0};
  r.birthday_multiplier_bp = 100000;
  r.max_redeem_bp = 10000;
  std::vector<Line> lines(500, Line{std::string(64, 'x'), 10000, 100000000, "grocery"});
  MemberContext m = Member("black", INT64_MAX);
  m.birthday_month = true;
  Quote q = MustQuote({lines, m, std::nullopt, {.max = true}}, r);
  EXPECT_EQ(q.subtotal_cents, 500000000000000);
  EXPECT_EQ(q.max_redeem_points, 500000000000000);
  EXPECT_EQ(q.total_due_cents, 0);
  Quote q2 = MustQuote({lines, m, std::nullopt, {}}, r);
  EXPECT_EQ(q2.points_to_earn, 5000000000000000000);
}

}  // namespace
}  // namespace loyalty::rules
