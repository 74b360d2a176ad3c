// Phone numbers as HQ and the till hash them for look-up (base/phone.h): one number in any of
// its written forms, and what a cashier may type, at the edges.
#include "loyalty/base/phone.h"

#include <gtest/gtest.h>

#include <string>

namespace loyalty {
namespace {

TEST(PhoneTest, OneNumberInEveryWrittenForm) {
  for (const char* form : {"13812345678", "138 1234 5678", "138-1234-5678", "+86 138 1234 5678",
                           "+8613812345678", "0086 13812345678", "(+86) 138-1234-5678"}) {
    EXPECT_EQ(PhoneLookupDigits(form), "13812345678") << form;
  }
  // 86 is dropped only before an 11-digit mobile number.
  EXPECT_EQ(PhoneLookupDigits("+86 10 1234 5678"), "861012345678");
  EXPECT_EQ(PhoneLookupDigits("86123"), "86123");
  EXPECT_EQ(PhoneLookupDigits("+1 415 555 0100"), "14155550100");
  EXPECT_EQ(PhoneLookupDigits(""), "");
}

TEST(PhoneTest, WhatACashierMayTypeAtItsEdges) {
  EXPECT_EQ(ParseTypedPhone("12345"), "12345");                            // 5 digits
  EXPECT_FALSE(ParseTypedPhone("1234").has_value());                       // 4
  EXPECT_EQ(ParseTypedPhone(std::string(20, '9')), std::string(20, '9'));  // 20 digits
  EXPECT_FALSE(ParseTypedPhone(std::string(21, '9')).has_value());         // 21
  const std::string spaced = "1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6";            // 31 characters
  EXPECT_TRUE(ParseTypedPhone(spaced).has_value());
  EXPECT_TRUE(ParseTypedPhone(spaced + "7").has_value());    // 32 characters
  EXPECT_FALSE(ParseTypedPhone(spaced + " 7").has_value());  // 33
  EXPECT_FALSE(ParseTypedPhone("").has_value());
  for (const char* bad : {"138x12345678", "138.1234.5678", "１３８１２３４５６７８",
                          "138\n12345678", "13812345678;", "tel:13812345678"})
    EXPECT_FALSE(ParseTypedPhone(bad).has_value()) << bad;
  EXPECT_EQ(ParseTypedPhone("+86 (138) 1234-5678"), "13812345678");
}

}  // namespace
}  // namespace loyalty
