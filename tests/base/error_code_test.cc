#include "loyalty/base/error_code.h"

#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>

#include "loyalty/base/status.h"
#include "support/error_codes.h"

namespace loyalty {
namespace {

TEST(ErrorCode, EveryCodeHasOneWireNameThatNamesItBack) {
  std::set<std::string> names;
  for (ErrorCode c : testing::AllErrorCodes()) {
    std::string name(ErrorCodeName(c));
    EXPECT_TRUE(names.insert(name).second) << "two codes are spelled " << name;
    ASSERT_TRUE(ErrorCodeFromName(name).has_value()) << name;
    EXPECT_EQ(*ErrorCodeFromName(name), c) << name;
    for (char ch : name) EXPECT_TRUE((ch >= 'a' && ch <= 'z') || ch == '_') << name;
  }
  EXPECT_GE(names.size(), 31u);  // the contract's codes alone
}

TEST(ErrorCode, TheContractsNamesAreSpelledAsTheContractSpellsThem) {
  EXPECT_EQ(ErrorCodeName(ErrorCode::kCodeNotYetValid), "code_not_yet_valid");
  EXPECT_EQ(ErrorCodeName(ErrorCode::kStaticCodeCannotRedeem), "static_code_cannot_redeem");
  EXPECT_EQ(ErrorCodeName(ErrorCode::kNotAMemberCode), "not_a_member_code");
  EXPECT_EQ(ErrorCodeName(ErrorCode::kLedgerDamaged), "ledger_damaged");
  EXPECT_EQ(ErrorCodeName(ErrorCode::kOk), "ok");
}

TEST(ErrorCode, AnUnknownNameIsNoCode) {
  EXPECT_FALSE(ErrorCodeFromName("").has_value());
  EXPECT_FALSE(ErrorCodeFromName("ok").has_value());
  EXPECT_FALSE(ErrorCodeFromName("Bad_Request").has_value());
  EXPECT_FALSE(ErrorCodeFromName("bad_request ").has_value());
  EXPECT_FALSE(ErrorCodeFromName(std::string_view("bad_request\0", 12)).has_value());
}

TEST(ErrorCode, StatusCarriesTheCodeAndPrintsItsName) {
  Status s = Status::Error(ErrorCode::kCouponUsed, "coupon c1 was already used");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::kCouponUsed);
  EXPECT_EQ(s.code_name(), "coupon_used");
  EXPECT_EQ(s.ToString(), "coupon_used: coupon c1 was already used");
  std::ostringstream os;
  os << s.code();
  EXPECT_EQ(os.str(), "coupon_used");
  EXPECT_TRUE(Status::Ok().ok());
  EXPECT_EQ(Status::Ok().code_name(), "ok");
  // An error always has a code: kOk is not one.
  Status none = Status::Error(ErrorCode::kOk, "?");
  EXPECT_FALSE(none.ok());
  EXPECT_EQ(none.code(), ErrorCode::kInternal);
}

}  // namespace
}  // namespace loyalty
