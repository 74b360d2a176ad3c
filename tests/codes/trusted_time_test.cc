#include "loyalty/codes/trusted_time.h"

#include <gtest/gtest.h>

namespace loyalty::codes {
namespace {

constexpr int64_t kHqMs = 1'795'000'000'000;

TEST(TrustedTimeTest, WithoutHqTimeTheWallClockIsTrusted) {
  FakeClock clock(kHqMs + 999'000'000);  // wildly off, but nothing to compare with
  TrustedTime tt(60);
  EXPECT_FALSE(tt.has_hq_time());
  EXPECT_FALSE(tt.EstimateMs(clock).has_value());
  EXPECT_FALSE(tt.untrusted(clock));
  EXPECT_EQ(tt.NowS(clock), clock.now_s());
  EXPECT_EQ(tt.TakeTransition(clock), TrustedTime::Transition::kNone);
}

TEST(TrustedTimeTest, EstimateFollowsTheMonotonicClock) {
  FakeClock clock(kHqMs, 5'000);
  TrustedTime tt(60);
  tt.RecordHqTime(kHqMs, clock.mono_ms());
  EXPECT_TRUE(tt.has_hq_time());
  clock.advance_ms(90'500);
  EXPECT_EQ(tt.EstimateMs(clock), kHqMs + 90'500);
  EXPECT_FALSE(tt.untrusted(clock));
  EXPECT_EQ(tt.NowS(clock), (kHqMs + 90'500) / 1000);
}

TEST(TrustedTimeTest, SkewBoundaryBothWays) {
  FakeClock clock(kHqMs, 5'000);
  TrustedTime tt(60);
  tt.RecordHqTime(kHqMs, clock.mono_ms());
  // Exactly clock_skew_s off: still trusted, the wall clock is used.
  clock.set_now_ms(kHqMs + 60'000);
  EXPECT_FALSE(tt.untrusted(clock));
  EXPECT_EQ(tt.NowS(clock), kHqMs / 1000 + 60);
  clock.set_now_ms(kHqMs - 60'000);
  EXPECT_FALSE(tt.untrusted(clock));
  EXPECT_EQ(tt.NowS(clock), kHqMs / 1000 - 60);
  // One millisecond more: untrusted, and the trusted estimate is used.
  clock.set_now_ms(kHqMs + 60'001);
  EXPECT_TRUE(tt.untrusted(clock));
  EXPECT_EQ(tt.NowS(clock), kHqMs / 1000);
  clock.set_now_ms(kHqMs - 60'001);
  EXPECT_TRUE(tt.untrusted(clock));
  EXPECT_EQ(tt.NowS(clock), kHqMs / 1000);
}

TEST(TrustedTimeTest, WallClockResetIsOverriddenUntilItIsFixed) {
  FakeClock clock(kHqMs, 5'000);
  TrustedTime tt(60);
  tt.RecordHqTime(kHqMs - 2'000, clock.mono_ms() - 2'000);  // recorded two seconds ago
  EXPECT_EQ(tt.NowS(clock), kHqMs / 1000);
  // Someone sets the terminal clock back a day; an hour passes.
  clock.set_now_ms(kHqMs - 86'400'000);
  clock.advance_ms(3'600'000);
  EXPECT_TRUE(tt.untrusted(clock));
  EXPECT_EQ(tt.NowS(clock), kHqMs / 1000 + 3600);
  // The clock is fixed (NTP or a technician).
  clock.set_now_ms(kHqMs + 3'600'000 + 1'000);
  EXPECT_FALSE(tt.untrusted(clock));
  EXPECT_EQ(tt.NowS(clock), kHqMs / 1000 + 3601);
}

TEST(TrustedTimeTest, ANewSyncReplacesTheRecord) {
  FakeClock clock(kHqMs, 5'000);
  TrustedTime tt(60);
  tt.RecordHqTime(kHqMs + 600'000, clock.mono_ms());  // HQ said the wall clock is 10 min slow
  EXPECT_TRUE(tt.untrusted(clock));
  EXPECT_EQ(tt.NowS(clock), kHqMs / 1000 + 600);
  tt.RecordHqTime(kHqMs, clock.mono_ms());
  EXPECT_FALSE(tt.untrusted(clock));
}

TEST(TrustedTimeTest, TransitionsAreReportedOncePerChange) {
  FakeClock clock(kHqMs, 5'000);
  TrustedTime tt(60);
  tt.RecordHqTime(kHqMs, clock.mono_ms());
  EXPECT_FALSE(tt.TakeUntrustedTransition(clock));
  clock.set_now_ms(kHqMs + 3'600'000);
  EXPECT_TRUE(tt.TakeUntrustedTransition(clock));   // logged once
  EXPECT_FALSE(tt.TakeUntrustedTransition(clock));  // not again
  clock.advance_ms(1'000);
  EXPECT_FALSE(tt.TakeUntrustedTransition(clock));
  clock.set_now_ms(kHqMs + 1'000);
  EXPECT_EQ(tt.TakeTransition(clock), TrustedTime::Transition::kBecameTrusted);
  EXPECT_EQ(tt.TakeTransition(clock), TrustedTime::Transition::kNone);
  clock.set_now_ms(kHqMs - 3'600'000);
  EXPECT_EQ(tt.TakeTransition(clock), TrustedTime::Transition::kBecameUntrusted);
  EXPECT_EQ(tt.TakeTransition(clock), TrustedTime::Transition::kNone);
}

TEST(TrustedTimeTest, NegativeEstimatesFloor) {
  FakeClock clock(-1'500, 0);
  TrustedTime tt(0);
  tt.RecordHqTime(-1'500, 0);
  EXPECT_EQ(tt.NowS(clock), -2);
  clock.set_now_ms(5'000'000);
  EXPECT_EQ(tt.NowS(clock), -2);
}

}  // namespace
}  // namespace loyalty::codes
