// Refunds on the spec's basket step by step, and the refusals of ComputeRefund.

#include <gtest/gtest.h>

#include <vector>

#include "loyalty/rules/rules.h"

namespace loyalty::rules {
namespace {

// vip + coupon 10 off over 100 + redeem "max" with balance 5000 (spec, worked examples).
RefundBasis SpecRedeemBasis() {
  RefundBasis b;
  b.lines = {
      {2, 2366, 3545, true, true}, {1, 7670, 11491, true, true}, {1, 3500, 3500, false, false}};
  b.points_earned = 150;
  b.redeemed_points = 5000;
  b.eligible_cents = 10036;
  b.redeemable_cents = 15036;
  return b;
}

TEST(Refund, StepByStepOnTheSpecBasket) {
  RefundBasis b = SpecRedeemBasis();
  auto r1 = ComputeRefund(b, {0, 0, 0}, {0, 1, 0});
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EXPECT_EQ(r1->refund_cents, 7670);
  EXPECT_EQ(r1->points_clawed_back, 114);  // floor(150 × 7670 / 10036)
  EXPECT_EQ(r1->points_restored, 3821);    // floor(5000 × 11491 / 15036)

  auto r2 = ComputeRefund(b, {0, 1, 0}, {1, 1, 0});
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->refund_cents, 1183);             // floor(2366 / 2)
  EXPECT_EQ(r2->points_clawed_back, 132 - 114);  // floor(150 × 8853 / 10036) − 114
  EXPECT_EQ(r2->points_restored, 4410 - 3821);   // floor(5000 × (11491 + 1772) / 15036) − 3821

  auto r3 = ComputeRefund(b, {1, 1, 0}, {2, 1, 1});
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(r3->refund_cents, 1183 + 3500);
  EXPECT_EQ(r3->points_clawed_back, 150 - 132);
  EXPECT_EQ(r3->points_restored, 5000 - 4410);
  EXPECT_EQ(r1->refund_cents + r2->refund_cents + r3->refund_cents, 13536);
}

TEST(Refund, VoidReturnsEverything) {
  RefundBasis b = SpecRedeemBasis();
  auto r = ComputeRefund(b, {0, 0, 0}, {2, 1, 1});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->refund_cents, 13536);
  EXPECT_EQ(r->points_clawed_back, 150);
  EXPECT_EQ(r->points_restored, 5000);
}

TEST(Refund, NothingNewReturnsNothing) {
  auto r = ComputeRefund(SpecRedeemBasis(), {1, 0, 0}, {1, 0, 0});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->refund_cents, 0);
  EXPECT_EQ(r->points_clawed_back, 0);
  EXPECT_EQ(r->points_restored, 0);
}

TEST(Refund, ExceedsSale) {
  auto r = ComputeRefund(SpecRedeemBasis(), {2, 0, 0}, {3, 0, 0});
  EXPECT_EQ(r.status().code(), ErrorCode::kRefundExceedsSale);
  EXPECT_EQ(r.status().message(), "line 0: 3 units refunded in all, 2 sold");
}

TEST(Refund, BadUnits) {
  RefundBasis b = SpecRedeemBasis();
  EXPECT_EQ(ComputeRefund(b, {0, 0}, {0, 0, 1}).status().code(), ErrorCode::kBadRequest);
  EXPECT_EQ(ComputeRefund(b, {0, 0, 0}, {0, 0}).status().code(), ErrorCode::kBadRequest);
  EXPECT_EQ(ComputeRefund(b, {1, 0, 0}, {0, 0, 0}).status().code(), ErrorCode::kBadRequest);
  EXPECT_EQ(ComputeRefund(b, {-1, 0, 0}, {0, 0, 0}).status().code(), ErrorCode::kBadRequest);
}

TEST(Refund, InconsistentBasisIsRefused) {
  RefundBasis b = SpecRedeemBasis();
  b.eligible_cents = 10035;
  EXPECT_EQ(ComputeRefund(b, {0, 0, 0}, {2, 1, 1}).status().code(), ErrorCode::kInternal);
  b = SpecRedeemBasis();
  b.redeemable_cents = 15037;
  EXPECT_EQ(ComputeRefund(b, {0, 0, 0}, {2, 1, 1}).status().code(), ErrorCode::kInternal);
  b = SpecRedeemBasis();
  b.lines[0].qty = 0;
  EXPECT_EQ(ComputeRefund(b, {0, 0, 0}, {0, 1, 1}).status().code(), ErrorCode::kInternal);
  b = SpecRedeemBasis();
  b.lines[1].final_net_cents = 11492;  // more than before redemption
  EXPECT_EQ(ComputeRefund(b, {0, 0, 0}, {0, 1, 1}).status().code(), ErrorCode::kInternal);
}

TEST(Refund, NoPointsAtStakeNeedsNoTotals) {
  // A checkout without a member stores eligible 0 while its lines are eligible by
  // category: no points were earned, so nothing is clawed back and nothing fails.
  RefundBasis b;
  b.lines = {{1, 500, 500, true, true}};
  auto r = ComputeRefund(b, {0}, {1});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->refund_cents, 500);
  EXPECT_EQ(r->points_clawed_back, 0);
  EXPECT_EQ(r->points_restored, 0);
}

}  // namespace
}  // namespace loyalty::rules
