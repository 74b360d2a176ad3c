#include "loyalty/base/encoding.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <random>
#include <vector>

#include "loyalty/base/hash.h"
#include "loyalty/base/ids.h"
#include "loyalty/base/time.h"

namespace loyalty {
namespace {

TEST(Base64Url, RoundTripsEveryLength) {
  std::string bytes;
  for (int n = 0; n < 70; ++n) {
    auto enc = Base64UrlEncode(bytes);
    EXPECT_EQ(enc.find('='), std::string::npos);
    auto dec = Base64UrlDecode(enc);
    ASSERT_TRUE(dec.has_value()) << n;
    EXPECT_EQ(*dec, bytes);
    bytes += static_cast<char>(n * 37 + 11);
  }
}

TEST(Base64Url, RejectsPaddingForeignAlphabetAndNonCanonicalBits) {
  EXPECT_FALSE(Base64UrlDecode("QQ==").has_value());
  EXPECT_FALSE(Base64UrlDecode("Q+8").has_value());
  EXPECT_FALSE(Base64UrlDecode("Q/8").has_value());
  EXPECT_FALSE(Base64UrlDecode("Q").has_value());  // length ≡ 1 mod 4
  EXPECT_TRUE(Base64UrlDecode("QQ").has_value());
  EXPECT_FALSE(Base64UrlDecode("QR").has_value());  // low 4 bits non-zero
  EXPECT_EQ(*Base64UrlDecode("_-8"), std::string("\xff\xef", 2));
}

TEST(Hex, RoundTrip) {
  EXPECT_EQ(HexEncode("\x01\xab"), "01ab");
  EXPECT_EQ(*HexDecode("01AB"), "\x01\xab");
  EXPECT_FALSE(HexDecode("0g").has_value());
  EXPECT_FALSE(HexDecode("abc").has_value());
}

TEST(Utf8, Validates) {
  EXPECT_TRUE(IsValidUtf8("普通会员"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc0\x80"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));  // surrogate
  EXPECT_FALSE(IsValidUtf8("\xe6\x99"));      // truncated
}

TEST(Sha256, KnownVector) {
  EXPECT_EQ(DigestHex(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256Hasher h;
  h.Update("a");
  h.Update("bc");
  EXPECT_EQ(DigestHex(h.Finish()), DigestHex(Sha256("abc")));
  EXPECT_EQ(ShortHash("abc"), "ba7816bf8f01");
}

TEST(EntryId, TimeOrderedAndUnique) {
  auto a = NewEntryId(1795000000123);
  auto b = NewEntryId(1795000000124);
  EXPECT_TRUE(IsEntryId(a));
  EXPECT_LT(a, b);
  EXPECT_EQ(EntryIdMillis(a), 1795000000123);
  EXPECT_NE(NewEntryId(1), NewEntryId(1));
  EXPECT_FALSE(IsEntryId("xyz"));
}

TEST(Rfc3339, FormatAndParse) {
  EXPECT_EQ(FormatRfc3339(1795000030), "2026-11-18T11:07:10Z");
  EXPECT_EQ(*ParseRfc3339("2026-11-18T11:07:10Z"), 1795000030);
  EXPECT_EQ(*ParseRfc3339("2026-11-18T19:07:10+08:00"), 1795000030);
  EXPECT_EQ(*ParseRfc3339("2026-11-18T11:07:10.250Z"), 1795000030);
  EXPECT_FALSE(ParseRfc3339("2026-02-29T00:00:00Z").has_value());
  EXPECT_TRUE(ParseRfc3339("2028-02-29T00:00:00Z").has_value());
  EXPECT_FALSE(ParseRfc3339("2026-11-18 07:47:10").has_value());
  EXPECT_FALSE(ParseRfc3339("2026-11-18T11:07:10Zjunk").has_value());
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00Z");
}

// The formatter writes digits itself; the C library's calendar is the reference, across
// leap years, century rules and every field's carry.
TEST(Rfc3339, FormatAgreesWithTheCLibraryAcrossCenturies) {
  std::mt19937_64 rng(7);
  std::vector<int64_t> cases = {0,
                                59,
                                60,
                                3599,
                                86399,
                                86400,
                                951782400 /* 2000-02-29 */,
                                4107542399 /* 2100-02-28T23:59:59 */,
                                4107542400,
                                253402300799 /* 9999-12-31T23:59:59 */,
                                -1,
                                -86400,
                                -62135596800 /* 0001-01-01 */};
  for (int i = 0; i < 20000; ++i)
    cases.push_back(static_cast<int64_t>(rng() % 253402300800ULL) - 62135596800LL);
  for (int64_t t : cases) {
    time_t tt = static_cast<time_t>(t);
    std::tm tm{};
    ASSERT_NE(gmtime_r(&tt, &tm), nullptr);
    char want[40];
    std::snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    ASSERT_EQ(FormatRfc3339(t), want) << t;
    ASSERT_EQ(ParseRfc3339(want), t) << want;
  }
}

}  // namespace
}  // namespace loyalty
