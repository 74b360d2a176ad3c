// The one coupon model: its stored columns (both ends' stores), who may use it and when, and
// the one conversion to the pricing terms the rules take.
#include "loyalty/model/coupon.h"

#include <gtest/gtest.h>

#include "loyalty/rules/rules.h"
#include "loyalty/sqlite/sqlite.h"
#include "support/files.h"

namespace loyalty::model {
namespace {

Coupon Sample() {
  Coupon c;
  c.coupon_id = "CP-1";
  c.member_id = 18446744073709551615u;  // stored as its int64 bit pattern
  c.kind = "percent_off";
  c.value_cents = 7;
  c.bp = 1500;
  c.min_spend_cents = 10000;
  c.valid_from_s = 1790000000;
  c.valid_to_s = 1800000000;
  return c;
}

TEST(CouponTest, EveryFieldIsBoundAndReadBackFromItsColumn) {
  const Coupon c = Sample();
  loyalty::testing::TempDir dir("coupon_columns");
  auto db = sqlite::Db::Open((dir / "c.db").string(), /*read_only=*/false);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_TRUE((*db)->Exec("CREATE TABLE coupons (" LOYALTY_COUPON_COLUMNS ", extra)").ok());
  {
    auto st = (*db)->Prepare("INSERT INTO coupons (" LOYALTY_COUPON_COLUMNS
                             ", extra) VALUES (?,?,?,?,?,?,?,?,?)");
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    BindCouponColumns(**st, c);
    (*st)->Bind(kCouponColumnCount + 1, "mine");
    ASSERT_TRUE((*st)->Run().ok());
  }
  auto st = (*db)->Prepare("SELECT " LOYALTY_COUPON_COLUMNS ", extra FROM coupons");
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  ASSERT_TRUE((*st)->Step()) << (*st)->status().ToString();
  EXPECT_EQ(ReadCouponColumns(**st), c);
  EXPECT_EQ((*st)->Text(kCouponColumnCount), "mine");
}

TEST(CouponTest, ForMemberAdmitsItsMemberOrAnyoneWhenUnassigned) {
  Coupon c = Sample();
  c.member_id = 42;
  EXPECT_TRUE(c.ForMember(42));
  EXPECT_FALSE(c.ForMember(43));
  EXPECT_FALSE(c.ForMember(0));
  c.member_id = 0;
  EXPECT_TRUE(c.ForMember(42));
  EXPECT_TRUE(c.ForMember(1));
}

TEST(CouponTest, ValidAtIncludesBothEndsAndZeroLeavesAnEndOpen) {
  Coupon c = Sample();
  EXPECT_FALSE(c.ValidAt(c.valid_from_s - 1));
  EXPECT_TRUE(c.ValidAt(c.valid_from_s));
  EXPECT_TRUE(c.ValidAt(c.valid_to_s));
  EXPECT_FALSE(c.ValidAt(c.valid_to_s + 1));
  c.valid_from_s = 0;
  EXPECT_TRUE(c.ValidAt(-5));
  EXPECT_FALSE(c.ValidAt(c.valid_to_s + 1));
  c.valid_to_s = 0;
  EXPECT_TRUE(c.ValidAt(INT64_MAX));
}

TEST(CouponTest, CouponTermsCarriesThePricingFields) {
  Coupon c = Sample();
  rules::Coupon t = rules::CouponTerms(c);
  EXPECT_EQ(t.coupon_id, "CP-1");
  EXPECT_EQ(t.kind, rules::Coupon::Kind::kPercentOff);
  EXPECT_EQ(t.value_cents, 7);
  EXPECT_EQ(t.bp, 1500);
  EXPECT_EQ(t.min_spend_cents, 10000);
  c.kind = "amount_off";
  EXPECT_EQ(rules::CouponTerms(c).kind, rules::Coupon::Kind::kAmountOff);
}

}  // namespace
}  // namespace loyalty::model
