#include "loyalty/base/timezone.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace loyalty {
namespace {

constexpr int64_t kHour = 3600;

int64_t Utc(int64_t y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  return UnixFromCivil(CivilTime{y, mo, d, h, mi, s});
}

TimeZone MustLoad(const std::string& name) {
  auto tz = TimeZone::Load(name);
  EXPECT_TRUE(tz.ok()) << name << ": " << tz.status().ToString();
  return tz.ok() ? *tz : TimeZone::Utc();
}

TEST(TimeZone, ShanghaiIsPlusEightSince1991AndHadDstIn1990) {
  TimeZone tz = MustLoad("Asia/Shanghai");
  EXPECT_EQ(tz.name(), "Asia/Shanghai");
  EXPECT_EQ(tz.UtcOffsetAt(Utc(1990, 7, 1)), 9 * kHour);
  EXPECT_TRUE(tz.IsDstAt(Utc(1990, 7, 1)));
  // 1990's DST began 1990-04-15 02:00 local (18:00 UTC the day before).
  EXPECT_EQ(tz.UtcOffsetAt(Utc(1990, 4, 14, 18) - 1), 8 * kHour);
  EXPECT_EQ(tz.UtcOffsetAt(Utc(1990, 4, 14, 18)), 9 * kHour);
  // The last DST ended 1991-09-15 (17:00 UTC the day before); +08:00 ever since.
  EXPECT_EQ(tz.UtcOffsetAt(Utc(1991, 9, 14, 17) - 1), 9 * kHour);
  EXPECT_EQ(tz.UtcOffsetAt(Utc(1991, 9, 14, 17)), 8 * kHour);
  for (int64_t y : {1992, 2000, 2026, 2037, 2038, 2100, 2500}) {
    EXPECT_EQ(tz.UtcOffsetAt(Utc(y, 7, 1)), 8 * kHour) << y;
    EXPECT_FALSE(tz.IsDstAt(Utc(y, 7, 1))) << y;
  }
}

TEST(TimeZone, ShanghaiLocalTimeCrossesMidnightAndMonthEnd) {
  TimeZone tz = MustLoad("Asia/Shanghai");
  // 2026-01-31T16:00:00Z is February 1st, midnight, in Shanghai.
  CivilTime t = tz.ToLocal(Utc(2026, 1, 31, 16));
  EXPECT_EQ(t.year, 2026);
  EXPECT_EQ(t.month, 2);
  EXPECT_EQ(t.day, 1);
  EXPECT_EQ(t.hour, 0);
  CivilTime before = tz.ToLocal(Utc(2026, 1, 31, 16) - 1);
  EXPECT_EQ(before.month, 1);
  EXPECT_EQ(before.day, 31);
  EXPECT_EQ(before.hour, 23);
  EXPECT_EQ(before.minute, 59);
  EXPECT_EQ(before.second, 59);
  EXPECT_EQ(tz.FromLocal(CivilTime{2026, 2, 1, 0, 0, 0}), Utc(2026, 1, 31, 16));
}

TEST(TimeZone, NewYorkSpringForward) {
  TimeZone tz = MustLoad("America/New_York");
  const int64_t jump = Utc(2026, 3, 8, 7);  // 02:00 EST becomes 03:00 EDT
  EXPECT_EQ(tz.UtcOffsetAt(jump - 1), -5 * kHour);
  EXPECT_FALSE(tz.IsDstAt(jump - 1));
  EXPECT_EQ(tz.UtcOffsetAt(jump), -4 * kHour);
  EXPECT_TRUE(tz.IsDstAt(jump));
  CivilTime a = tz.ToLocal(jump - 1);
  EXPECT_EQ(a.hour, 1);
  EXPECT_EQ(a.minute, 59);
  CivilTime b = tz.ToLocal(jump);
  EXPECT_EQ(b.hour, 3);
  EXPECT_EQ(b.minute, 0);
  // 02:30 never happens that night: read with the offset before the jump.
  EXPECT_EQ(tz.FromLocal(CivilTime{2026, 3, 8, 2, 30, 0}), Utc(2026, 3, 8, 7, 30));
  EXPECT_EQ(tz.FromLocal(CivilTime{2026, 3, 8, 1, 59, 59}), jump - 1);
  EXPECT_EQ(tz.FromLocal(CivilTime{2026, 3, 8, 3, 0, 0}), jump);
}

TEST(TimeZone, NewYorkFallBack) {
  TimeZone tz = MustLoad("America/New_York");
  const int64_t back = Utc(2026, 11, 1, 6);  // 02:00 EDT becomes 01:00 EST
  EXPECT_EQ(tz.UtcOffsetAt(back - 1), -4 * kHour);
  EXPECT_EQ(tz.UtcOffsetAt(back), -5 * kHour);
  CivilTime a = tz.ToLocal(back - 1);
  EXPECT_EQ(a.hour, 1);
  EXPECT_EQ(a.minute, 59);
  CivilTime b = tz.ToLocal(back);
  EXPECT_EQ(b.hour, 1);
  EXPECT_EQ(b.minute, 0);
  // 01:30 happens twice: the first (EDT) instant wins.
  EXPECT_EQ(tz.FromLocal(CivilTime{2026, 11, 1, 1, 30, 0}), Utc(2026, 11, 1, 5, 30));
  EXPECT_EQ(tz.FromLocal(CivilTime{2026, 11, 1, 2, 0, 0}), Utc(2026, 11, 1, 7));
}

TEST(TimeZone, NewYorkBeyondTheLastTransitionFollowsTheFooterRule) {
  TimeZone tz = MustLoad("America/New_York");
  // 2100-03-14 is the second Sunday of March 2100.
  const int64_t jump = Utc(2100, 3, 14, 7);
  EXPECT_EQ(tz.UtcOffsetAt(jump - 1), -5 * kHour);
  EXPECT_EQ(tz.UtcOffsetAt(jump), -4 * kHour);
  EXPECT_EQ(tz.UtcOffsetAt(Utc(2100, 7, 1)), -4 * kHour);
  EXPECT_EQ(tz.UtcOffsetAt(Utc(2100, 12, 1)), -5 * kHour);
}

TEST(TimeZone, LondonSummerTime) {
  TimeZone tz = MustLoad("Europe/London");
  const int64_t start = Utc(2026, 3, 29, 1);
  const int64_t end = Utc(2026, 10, 25, 1);
  EXPECT_EQ(tz.UtcOffsetAt(start - 1), 0);
  EXPECT_EQ(tz.UtcOffsetAt(start), kHour);
  EXPECT_EQ(tz.UtcOffsetAt(end - 1), kHour);
  EXPECT_EQ(tz.UtcOffsetAt(end), 0);
  EXPECT_EQ(tz.FromLocal(CivilTime{2026, 7, 1, 12, 0, 0}), Utc(2026, 7, 1, 11));
  EXPECT_EQ(tz.FromLocal(CivilTime{2026, 1, 1, 12, 0, 0}), Utc(2026, 1, 1, 12));
}

TEST(TimeZone, UtcAndFixedOffsets) {
  auto utc = TimeZone::Load("UTC");
  ASSERT_TRUE(utc.ok());
  EXPECT_EQ(utc->UtcOffsetAt(Utc(2026, 7, 1)), 0);
  EXPECT_EQ(utc->FromLocal(CivilTime{2026, 7, 1, 0, 0, 0}), Utc(2026, 7, 1));

  auto east = TimeZone::Load("+08:00");
  ASSERT_TRUE(east.ok());
  EXPECT_EQ(east->name(), "+08:00");
  EXPECT_EQ(east->UtcOffsetAt(0), 8 * kHour);
  auto west = TimeZone::Load("-05:30");
  ASSERT_TRUE(west.ok());
  EXPECT_EQ(west->UtcOffsetAt(0), -(5 * kHour + 1800));
  CivilTime t = west->ToLocal(Utc(2026, 1, 1, 3));
  EXPECT_EQ(t.year, 2025);
  EXPECT_EQ(t.day, 31);
  EXPECT_EQ(t.hour, 21);
  EXPECT_EQ(t.minute, 30);

  EXPECT_TRUE(TimeZone::Load("+18:00").ok());
  EXPECT_TRUE(TimeZone::Load("-18:00").ok());
  for (const char* bad : {"+18:01", "+8:00", "+08", "+0800", "+08:60", "+08:00 ", "-", "+"}) {
    auto tz = TimeZone::Load(bad);
    ASSERT_FALSE(tz.ok()) << bad;
    EXPECT_EQ(tz.status().code(), ErrorCode::kTimezoneInvalid);
  }
  EXPECT_FALSE(TimeZone::Fixed(18 * kHour + 1).ok());
}

TEST(TimeZone, UnknownAndMalformedNamesAreRejected) {
  for (const char* bad :
       {"", "Mars/Olympus_Mons", "Asia", "asia/shanghai ", "Asia Shanghai", "Asia/Shanghai\n"}) {
    auto tz = TimeZone::Load(bad);
    ASSERT_FALSE(tz.ok()) << '"' << bad << '"';
    EXPECT_EQ(tz.status().code(), ErrorCode::kTimezoneInvalid);
  }
}

TEST(TimeZone, NamesCannotEscapeTheZoneinfoDirectory) {
  for (const char* bad :
       {"../etc/passwd", "../../../../etc/passwd", "/etc/passwd", "Asia/../../etc/passwd",
        "Asia/./Shanghai", "Asia//Shanghai", "./UTC", "Asia/.."}) {
    auto tz = TimeZone::Load(bad);
    ASSERT_FALSE(tz.ok()) << bad;
    EXPECT_EQ(tz.status().code(), ErrorCode::kTimezoneInvalid);
    EXPECT_NE(tz.status().message().find("is not a time zone name"), std::string::npos)
        << tz.status().message();
  }
}

class TzdirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("tzdir_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_ / "Test");
    const char* old = std::getenv("TZDIR");
    if (old != nullptr) old_ = old;
    ::setenv("TZDIR", dir_.c_str(), 1);
  }
  void TearDown() override {
    if (old_) {
      ::setenv("TZDIR", old_->c_str(), 1);
    } else {
      ::unsetenv("TZDIR");
    }
    std::filesystem::remove_all(dir_);
  }
  void Write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
  }
  std::filesystem::path dir_;
  std::optional<std::string> old_;
};

TEST_F(TzdirTest, ReadsFromTzdirAndRejectsFilesThatAreNotZoneFiles) {
  std::filesystem::copy_file("/usr/share/zoneinfo/Asia/Tokyo", dir_ / "Test/Fixed");
  Write("Test/Text", "this is not a zone file\n");
  auto tz = TimeZone::Load("Test/Fixed");
  ASSERT_TRUE(tz.ok()) << tz.status().ToString();
  EXPECT_EQ(tz->UtcOffsetAt(Utc(2026, 1, 1)), 9 * kHour);
  auto text = TimeZone::Load("Test/Text");
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), ErrorCode::kTimezoneInvalid);
  EXPECT_NE(text.status().message().find("not a valid zoneinfo"), std::string::npos)
      << text.status().message();
  auto missing = TimeZone::Load("Asia/Shanghai");  // not in this TZDIR
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("unknown time zone 'Asia/Shanghai'"),
            std::string::npos);
}

TEST(TimeZone, SydneySummerTimeSpansNewYearInAnyYear) {
  TimeZone tz = MustLoad("Australia/Sydney");
  // DST from the first Sunday of October 02:00 to the first Sunday of April 03:00.
  // 2026-04-05 03:00 AEDT = 2026-04-04T16:00:00Z; 2026-10-04 02:00 AEST = 2026-10-03T16:00:00Z.
  EXPECT_EQ(tz.UtcOffsetAt(Utc(2026, 4, 4, 16) - 1), 11 * kHour);
  EXPECT_EQ(tz.UtcOffsetAt(Utc(2026, 4, 4, 16)), 10 * kHour);
  EXPECT_EQ(tz.UtcOffsetAt(Utc(2026, 10, 3, 16) - 1), 10 * kHour);
  EXPECT_EQ(tz.UtcOffsetAt(Utc(2026, 10, 3, 16)), 11 * kHour);
  // New Year's Eve is in summer time on both sides of midnight.
  EXPECT_EQ(tz.UtcOffsetAt(Utc(2026, 12, 31, 12, 59, 59)), 11 * kHour);
  EXPECT_EQ(tz.UtcOffsetAt(Utc(2026, 12, 31, 13)), 11 * kHour);
  // Beyond the zone file's transitions (2037) the file's rule still applies.
  EXPECT_EQ(tz.UtcOffsetAt(Utc(2100, 1, 1)), 11 * kHour);
  EXPECT_TRUE(tz.IsDstAt(Utc(2100, 1, 1)));
  EXPECT_EQ(tz.UtcOffsetAt(Utc(2100, 7, 1)), 10 * kHour);
  EXPECT_FALSE(tz.IsDstAt(Utc(2100, 7, 1)));
}

TEST(TimeZone, ExtremeTimesStayWithinTheDocumentedDomain) {
  for (const char* name : {"America/New_York", "Asia/Shanghai", "UTC", "+05:30"}) {
    TimeZone tz = MustLoad(name);
    for (int64_t t :
         {int64_t{-1'000'000'000'000}, int64_t{1'000'000'000'000}, INT64_MIN, INT64_MAX}) {
      const int64_t off = tz.UtcOffsetAt(t);
      EXPECT_LE(off < 0 ? -off : off, 18 * kHour) << name << " " << t;
      const CivilTime local = tz.ToLocal(t);
      EXPECT_GE(local.month, 1);
      EXPECT_LE(local.month, 12);
      (void)tz.FromLocal(local);
    }
  }
}

TEST(TimeZone, FromLocalInvertsToLocalExceptInTheRepeatedHour) {
  for (const char* name :
       {"America/New_York", "Europe/London", "Australia/Sydney", "Asia/Shanghai"}) {
    TimeZone tz = MustLoad(name);
    for (int64_t t = Utc(1985, 1, 1); t < Utc(2045, 1, 1); t += 86400 * 3 + 1234) {
      const int64_t back = tz.FromLocal(tz.ToLocal(t));
      // Only an instant in the second pass of a repeated hour maps back to the first pass.
      if (back != t) {
        EXPECT_EQ(back, t - (tz.UtcOffsetAt(back) - tz.UtcOffsetAt(t))) << name << " " << t;
        EXPECT_GT(tz.UtcOffsetAt(back), tz.UtcOffsetAt(t)) << name << " " << t;
      }
    }
    // Every transition hour, both sides.
    for (int64_t t = Utc(2025, 1, 1); t < Utc(2027, 1, 1); t += 1800) {
      const int64_t back = tz.FromLocal(tz.ToLocal(t));
      EXPECT_TRUE(back == t || (back < t && tz.UtcOffsetAt(back) > tz.UtcOffsetAt(t)))
          << name << " " << t;
    }
  }
}

TEST(TimeZone, CopiesAreIndependentValues) {
  TimeZone a = MustLoad("Europe/London");
  TimeZone b = a;
  a = TimeZone::Utc();
  EXPECT_EQ(b.UtcOffsetAt(Utc(2026, 7, 1)), kHour);
  EXPECT_EQ(a.UtcOffsetAt(Utc(2026, 7, 1)), 0);
}

}  // namespace
}  // namespace loyalty
