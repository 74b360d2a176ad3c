// Property tests with a seeded RNG: allocation, and quotes followed by refunds split at
// random. Every failure prints the seed of its case; set LOYALTY_TEST_SEED to replay a run
// from another base seed.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "loyalty/rules/rules.h"

namespace loyalty::rules {
namespace {

uint64_t BaseSeed() {
  const char* env = std::getenv("LOYALTY_TEST_SEED");
  return env != nullptr ? std::strtoull(env, nullptr, 10) : 20261122;
}

int64_t Uniform(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

// --- Allocation ------------------------------------------------------------------------

TEST(Allocate, Examples) {
  EXPECT_EQ(Allocate(1, {1, 1, 1}), (std::vector<int64_t>{1, 0, 0}));
  EXPECT_EQ(Allocate(2, {1, 1, 1}), (std::vector<int64_t>{1, 1, 0}));
  EXPECT_EQ(Allocate(3, {5, 0, 5}), (std::vector<int64_t>{2, 0, 1}));
  EXPECT_EQ(Allocate(1000, {3781, 12255}), (std::vector<int64_t>{236, 764}));
  EXPECT_EQ(Allocate(5000, {3545, 11491, 0}), (std::vector<int64_t>{1179, 3821, 0}));
  EXPECT_EQ(Allocate(3000, {3781, 12255, 0}), (std::vector<int64_t>{707, 2293, 0}));
  EXPECT_EQ(Allocate(5, {0, 0}), (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(Allocate(0, {4, 5}), (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(Allocate(-3, {4, 5}), (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(Allocate(7, {-4, 2}), (std::vector<int64_t>{0, 7}));
  EXPECT_EQ(Allocate(7, {}), (std::vector<int64_t>{}));
  // Extreme magnitudes: the products need 128 bits.
  EXPECT_EQ(Allocate(INT64_MAX, {INT64_MAX, INT64_MAX}),
            (std::vector<int64_t>{INT64_MAX / 2 + 1, INT64_MAX / 2}));
}

TEST(Allocate, RandomSumsExactlyAndTiesGoToTheLowerIndex) {
  const uint64_t base = BaseSeed();
  for (uint64_t iter = 0; iter < 3000; ++iter) {
    uint64_t seed = base * 1000003 + iter;
    SCOPED_TRACE("seed=" + std::to_string(seed) + " (LOYALTY_TEST_SEED=" + std::to_string(base) +
                 ", case " + std::to_string(iter) + ")");
    std::mt19937_64 rng(seed);
    size_t n = static_cast<size_t>(Uniform(rng, 1, 12));
    std::vector<int64_t> w(n);
    // Small weights make ties frequent; large ones exercise the products.
    int64_t wmax = Uniform(rng, 0, 1) ? 5 : 1000000000000;
    for (auto& x : w) x = Uniform(rng, 0, wmax);
    __int128 total = 0;
    for (auto x : w) total += x;
    int64_t amount = Uniform(rng, 0, 2) == 0 ? Uniform(rng, 0, 20) : Uniform(rng, 0, 1000000000);
    auto a = Allocate(amount, w);
    ASSERT_EQ(a.size(), n);
    if (total == 0) {
      for (auto x : a) EXPECT_EQ(x, 0);
      continue;
    }
    __int128 sum = 0;
    std::vector<bool> got_extra(n);
    std::vector<__int128> rem(n);
    for (size_t i = 0; i < n; ++i) {
      __int128 p = static_cast<__int128>(amount) * w[i];
      int64_t floor = static_cast<int64_t>(p / total);
      rem[i] = p % total;
      ASSERT_TRUE(a[i] == floor || a[i] == floor + 1) << i;
      got_extra[i] = a[i] == floor + 1;
      if (w[i] == 0) {
        EXPECT_EQ(a[i], 0);
      }
      if (amount <= total) {
        EXPECT_LE(a[i], w[i]);
      }
      sum += a[i];
    }
    ASSERT_TRUE(sum == amount);
    // Every line that got a leftover cent outranks every line that did not.
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < n; ++j)
        if (got_extra[i] && !got_extra[j]) {
          ASSERT_TRUE(rem[i] > rem[j] || (rem[i] == rem[j] && i < j)) << i << " " << j;
        }
  }
}

// --- Quotes and refunds ----------------------------------------------------------------

const char* const kCategories[] = {"grocery", "beauty", "tobacco", "gift_card", ""};

QuoteInput RandomInput(std::mt19937_64& rng) {
  QuoteInput in;
  size_t n = static_cast<size_t>(Uniform(rng, 1, 8));
  for (size_t i = 0; i < n; ++i) {
    Line l;
    l.sku = "sku" + std::to_string(i);
    l.qty = Uniform(rng, 0, 3) == 0 ? Uniform(rng, 1, 30) : Uniform(rng, 1, 4);
    int64_t kind = Uniform(rng, 0, 9);
    l.unit_price_cents = kind == 0 ? 0 : kind < 4 ? Uniform(rng, 1, 99) : Uniform(rng, 100, 500000);
    l.category = kCategories[Uniform(rng, 0, 4)];
    in.lines.push_back(l);
  }
  if (Uniform(rng, 0, 5) == 0) return in;  // no member
  MemberContext m;
  const char* tiers[] = {"member", "vip", "black"};
  m.tier = tiers[Uniform(rng, 0, 2)];
  m.available_balance = Uniform(rng, 0, 3) == 0 ? Uniform(rng, -500, 500) : Uniform(rng, 0, 500000);
  m.birthday_month = Uniform(rng, 0, 4) == 0;
  m.stale = Uniform(rng, 0, 4) == 0;
  m.frozen = Uniform(rng, 0, 15) == 0;
  m.static_identification = Uniform(rng, 0, 15) == 0;
  in.member = m;
  if (Uniform(rng, 0, 2) == 0) {
    Coupon c;
    c.coupon_id = "C";
    if (Uniform(rng, 0, 1)) {
      c.kind = Coupon::Kind::kAmountOff;
      c.value_cents = Uniform(rng, 1, 200000);
    } else {
      c.kind = Coupon::Kind::kPercentOff;
      c.bp = Uniform(rng, 1, 10000);
    }
    c.min_spend_cents = Uniform(rng, 0, 1) ? 0 : Uniform(rng, 0, 300000);
    in.coupon = c;
  }
  in.redeem.max = Uniform(rng, 0, 2) != 0;
  return in;
}

Rules RandomRules(std::mt19937_64& rng) {
  Rules r = Rules::Defaults();
  if (Uniform(rng, 0, 2) == 0) {
    r.cents_per_point = Uniform(rng, 1, 7);
    r.redeem_step_points = Uniform(rng, 1, 300);
    r.max_redeem_bp = Uniform(rng, 0, 10000);
    r.earn_points_per_yuan = Uniform(rng, 0, 20);
    r.tiers["vip"].discount_bp = Uniform(rng, 0, 10000);
    r.tiers["black"].multiplier_bp = Uniform(rng, 0, 100000);
  }
  return r;
}

TEST(QuoteProperties, LinesAddUpAndNeverGoNegative) {
  const uint64_t base = BaseSeed();
  for (uint64_t iter = 0; iter < 3000; ++iter) {
    uint64_t seed = base * 7919 + iter;
    SCOPED_TRACE("seed=" + std::to_string(seed) + " (LOYALTY_TEST_SEED=" + std::to_string(base) +
                 ", case " + std::to_string(iter) + ")");
    std::mt19937_64 rng(seed);
    Rules r = RandomRules(rng);
    QuoteInput in = RandomInput(rng);
    auto q = ComputeQuote(r, in);
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    int64_t subtotal = 0, tier = 0, coupon = 0, redeem = 0, net = 0, eligible = 0, redeemable = 0;
    for (size_t i = 0; i < q->lines.size(); ++i) {
      const auto& l = q->lines[i];
      ASSERT_GE(l.net_cents, 0) << i;
      ASSERT_GE(l.net_before_redeem_cents, l.net_cents) << i;
      ASSERT_EQ(l.line_total - l.tier_discount_cents - l.coupon_cents, l.net_before_redeem_cents)
          << i;
      ASSERT_EQ(l.net_before_redeem_cents - l.redeem_cents, l.net_cents) << i;
      if (!l.discountable) {
        EXPECT_EQ(l.tier_discount_cents + l.coupon_cents, 0);
      }
      if (!l.redeemable) {
        EXPECT_EQ(l.redeem_cents, 0);
      }
      subtotal += l.line_total;
      tier += l.tier_discount_cents;
      coupon += l.coupon_cents;
      redeem += l.redeem_cents;
      net += l.net_cents;
      if (l.points_eligible) eligible += l.net_cents;
      if (l.redeemable) redeemable += l.net_before_redeem_cents;
    }
    EXPECT_EQ(subtotal, q->subtotal_cents);
    EXPECT_EQ(tier, q->tier_discount_cents);
    EXPECT_EQ(coupon, q->coupon_discount_cents);
    EXPECT_EQ(redeem, q->redeem_cents);
    EXPECT_EQ(q->redeem_cents, q->redeem_points * r.cents_per_point);
    EXPECT_EQ(net, q->total_due_cents);
    EXPECT_EQ(redeemable, q->redeemable_cents);
    EXPECT_EQ(q->eligible_cents, in.member ? eligible : 0);
    EXPECT_EQ(q->max_redeem_points % r.redeem_step_points, 0);
    EXPECT_LE(q->redeem_points, q->max_redeem_points);
    if (in.member) {
      EXPECT_LE(q->redeem_points, std::max<int64_t>(in.member->available_balance, 0));
    }
  }
}

// Splits `qty` units of every line into refunds: each refund takes a random subset of the
// lines that still have units, a random part of each, until nothing is left.
std::vector<std::vector<int64_t>> RandomRefundSteps(std::mt19937_64& rng,
                                                    const std::vector<int64_t>& qty) {
  std::vector<std::vector<int64_t>> steps;
  std::vector<int64_t> left = qty;
  auto remaining = [&] {
    int64_t s = 0;
    for (auto x : left) s += x;
    return s;
  };
  while (remaining() > 0) {
    std::vector<int64_t> step(qty.size(), 0);
    for (size_t i = 0; i < qty.size(); ++i) {
      if (left[i] == 0 || Uniform(rng, 0, 2) == 0) continue;
      step[i] = Uniform(rng, 1, left[i]);
      left[i] -= step[i];
    }
    steps.push_back(step);
  }
  return steps;
}

TEST(RefundProperties, FullRefundIsExactAndNoStepOverReturns) {
  const uint64_t base = BaseSeed();
  for (uint64_t iter = 0; iter < 3000; ++iter) {
    uint64_t seed = base * 104729 + iter;
    SCOPED_TRACE("seed=" + std::to_string(seed) + " (LOYALTY_TEST_SEED=" + std::to_string(base) +
                 ", case " + std::to_string(iter) + ")");
    std::mt19937_64 rng(seed);
    Rules r = RandomRules(rng);
    QuoteInput in = RandomInput(rng);
    auto q = ComputeQuote(r, in);
    ASSERT_TRUE(q.ok()) << q.status().ToString();

    RefundBasis basis;
    std::vector<int64_t> qty;
    for (size_t i = 0; i < q->lines.size(); ++i) {
      const auto& l = q->lines[i];
      basis.lines.push_back({in.lines[i].qty, l.net_cents, l.net_before_redeem_cents,
                             l.points_eligible, l.redeemable});
      qty.push_back(in.lines[i].qty);
    }
    basis.points_earned = q->points_to_earn;
    basis.redeemed_points = q->redeem_points;
    basis.eligible_cents = q->eligible_cents;
    basis.redeemable_cents = q->redeemable_cents;

    // Several independent splits of the same checkout, each in its own random order.
    for (int split = 0; split < 3; ++split) {
      auto steps = RandomRefundSteps(rng, qty);
      std::shuffle(steps.begin(), steps.end(), rng);
      std::vector<int64_t> before(qty.size(), 0);
      int64_t cents = 0, clawed = 0, restored = 0;
      for (const auto& step : steps) {
        std::vector<int64_t> after = before;
        for (size_t i = 0; i < qty.size(); ++i) after[i] += step[i];
        auto a = ComputeRefund(basis, before, after);
        ASSERT_TRUE(a.ok()) << a.status().ToString();
        ASSERT_GE(a->refund_cents, 0);
        ASSERT_GE(a->points_clawed_back, 0);
        ASSERT_GE(a->points_restored, 0);
        cents += a->refund_cents;
        clawed += a->points_clawed_back;
        restored += a->points_restored;
        ASSERT_LE(cents, q->total_due_cents);
        ASSERT_LE(clawed, q->points_to_earn);
        ASSERT_LE(restored, q->redeem_points);
        before = after;
      }
      EXPECT_EQ(before, qty);
      EXPECT_EQ(cents, q->total_due_cents);
      EXPECT_EQ(clawed, q->points_to_earn);
      EXPECT_EQ(restored, q->redeem_points);
      // Nothing is left to refund.
      std::vector<int64_t> one_more = qty;
      one_more[0] += 1;
      EXPECT_EQ(ComputeRefund(basis, qty, one_more).status().code(), ErrorCode::kRefundExceedsSale);
    }
  }
}

}  // namespace
}  // namespace loyalty::rules
