// Lots (FIFO, shortfall), month-end expiry in local time, the birthday month, velocity
// and provisional upgrades.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "loyalty/base/time.h"
#include "loyalty/base/timezone.h"
#include "loyalty/rules/rules.h"

namespace loyalty::rules {
namespace {

int64_t At(const char* rfc3339) {
  auto t = ParseRfc3339(rfc3339);
  EXPECT_TRUE(t.has_value()) << rfc3339;
  return t.value_or(0);
}

UtcOffsetFn Fixed(int64_t offset_s) {
  return [offset_s](int64_t) { return offset_s; };
}
const UtcOffsetFn kShanghai = Fixed(8 * 3600);
const UtcOffsetFn kUtc = Fixed(0);

// --- ConsumeFifo -----------------------------------------------------------------------

TEST(ConsumeFifo, OldestExpiryFirstThenCreation) {
  std::vector<Lot> lots = {{7, 100, 3000}, {3, 50, 2000}, {5, 80, 2000}, {4, 10, 5000}};
  EXPECT_EQ(ConsumeFifo(lots, 60, 1000), (std::vector<LotTake>{{3, 50}, {5, 10}}));
  EXPECT_EQ(ConsumeFifo(lots, 130, 1000), (std::vector<LotTake>{{3, 50}, {5, 80}}));
  EXPECT_EQ(ConsumeFifo(lots, 200, 1000), (std::vector<LotTake>{{3, 50}, {5, 80}, {7, 70}}));
}

TEST(ConsumeFifo, SkipsExpiredAndEmptyLots) {
  std::vector<Lot> lots = {
      {1, 100, 999}, {2, 0, 2000}, {3, -40, 2000}, {4, 30, 1000}, {5, 20, 3000}};
  // now = 1000: lot 1 expired (999 < 1000); lot 4 is valid through its last second 1000.
  EXPECT_EQ(ConsumeFifo(lots, 40, 1000), (std::vector<LotTake>{{4, 30}, {5, 10}}));
  EXPECT_EQ(ConsumeFifo(lots, 40, 1001), (std::vector<LotTake>{{5, 20}, {0, 20}}));
}

TEST(ConsumeFifo, ShortfallGoesLast) {
  std::vector<Lot> lots = {{1, 30, 5000}};
  EXPECT_EQ(ConsumeFifo(lots, 100, 0), (std::vector<LotTake>{{1, 30}, {0, 70}}));
  EXPECT_EQ(ConsumeFifo({}, 25, 0), (std::vector<LotTake>{{0, 25}}));
  EXPECT_TRUE(ConsumeFifo(lots, 0, 0).empty());
  EXPECT_TRUE(ConsumeFifo(lots, -5, 0).empty());
}

TEST(ConsumeFifo, EqualIdsKeepInputOrder) {
  std::vector<Lot> lots = {{9, 5, 100}, {9, 6, 100}};
  EXPECT_EQ(ConsumeFifo(lots, 8, 0), (std::vector<LotTake>{{9, 5}, {9, 3}}));
}

// --- LotExpiry -------------------------------------------------------------------------

TEST(LotExpiry, SpecExampleShanghai) {
  // Earned 2026-11-05 local, 12 months → 2027-11-30T23:59:59+08:00.
  int64_t e = LotExpiry(At("2026-11-05T10:00:00+08:00"), 12, kShanghai);
  EXPECT_EQ(e, At("2027-11-30T23:59:59+08:00"));
  EXPECT_EQ(FormatRfc3339(e), "2027-11-30T15:59:59Z");
}

TEST(LotExpiry, AcrossYearEnds) {
  EXPECT_EQ(LotExpiry(At("2026-12-15T00:00:00Z"), 12, kUtc), At("2027-12-31T23:59:59Z"));
  EXPECT_EQ(LotExpiry(At("2026-12-31T23:59:59Z"), 1, kUtc), At("2027-01-31T23:59:59Z"));
  EXPECT_EQ(LotExpiry(At("2026-11-01T00:00:00Z"), 2, kUtc), At("2027-01-31T23:59:59Z"));
  EXPECT_EQ(LotExpiry(At("2026-01-31T12:00:00Z"), 1, kUtc), At("2026-02-28T23:59:59Z"));
  EXPECT_EQ(LotExpiry(At("2027-02-10T12:00:00Z"), 12, kUtc),
            At("2028-02-29T23:59:59Z"));  // leap year
  EXPECT_EQ(LotExpiry(At("2026-05-10T12:00:00Z"), 0, kUtc), At("2026-05-31T23:59:59Z"));
  EXPECT_EQ(LotExpiry(At("2026-05-10T12:00:00Z"), 36, kUtc), At("2029-05-31T23:59:59Z"));
}

TEST(LotExpiry, ShanghaiNearMidnight) {
  // 2026-11-30T23:59:59 local is still November; one second later is December.
  EXPECT_EQ(LotExpiry(At("2026-11-30T15:59:59Z"), 12, kShanghai), At("2027-11-30T23:59:59+08:00"));
  EXPECT_EQ(LotExpiry(At("2026-11-30T16:00:00Z"), 12, kShanghai), At("2027-12-31T23:59:59+08:00"));
  // New Year's Eve in UTC is already January in Shanghai.
  EXPECT_EQ(LotExpiry(At("2026-12-31T16:30:00Z"), 12, kShanghai), At("2028-01-31T23:59:59+08:00"));
  EXPECT_EQ(LotExpiry(At("2026-12-31T16:30:00Z"), 12, kUtc), At("2027-12-31T23:59:59Z"));
  // The expiry is the last valid second: the next one is the first of the next month.
  int64_t e = LotExpiry(At("2026-11-05T10:00:00+08:00"), 12, kShanghai);
  EXPECT_EQ(e + 1, At("2027-12-01T00:00:00+08:00"));
}

TEST(LotExpiry, DaylightSavingZone) {
  auto ny = TimeZone::Load("America/New_York");
  if (!ny.ok()) GTEST_SKIP() << "no tz database: " << ny.status().ToString();
  UtcOffsetFn f = [&](int64_t t) { return ny->UtcOffsetAt(t); };
  // Earned in February (EST, -05:00); expires at the end of March (EDT, -04:00).
  EXPECT_EQ(LotExpiry(At("2026-02-10T12:00:00Z"), 1, f), At("2026-03-31T23:59:59-04:00"));
  // Earned in October (EDT); expires at the end of November (EST).
  EXPECT_EQ(LotExpiry(At("2026-10-10T12:00:00Z"), 1, f), At("2026-11-30T23:59:59-05:00"));
}

TEST(LotExpiry, ExtremeInputsStayDefined) {
  int64_t e = LotExpiry(INT64_MAX, INT64_MAX, kShanghai);
  EXPECT_GT(e, 0);
  int64_t n = LotExpiry(INT64_MIN, -5, Fixed(INT64_MIN));
  EXPECT_LT(n, 0);
}

// --- Birthday month --------------------------------------------------------------------

TEST(BirthdayMonth, StoreLocalMonth) {
  int64_t t = At("2026-11-30T16:30:00Z");  // 2026-12-01T00:30 in Shanghai
  EXPECT_TRUE(IsBirthdayMonth(12, t, kShanghai));
  EXPECT_FALSE(IsBirthdayMonth(11, t, kShanghai));
  EXPECT_TRUE(IsBirthdayMonth(11, t, kUtc));
  EXPECT_FALSE(IsBirthdayMonth(0, t, kShanghai));
  EXPECT_FALSE(IsBirthdayMonth(13, t, kShanghai));
  EXPECT_FALSE(IsBirthdayMonth(-1, t, kShanghai));
}

// --- Velocity --------------------------------------------------------------------------

TEST(Velocity, ExceedingFreezes) {
  Rules r = Rules::Defaults();  // 5000 per hour
  EXPECT_FALSE(CrossesVelocity(r, 4000, 1000));
  EXPECT_TRUE(CrossesVelocity(r, 4000, 1001));
  EXPECT_FALSE(CrossesVelocity(r, 0, 5000));
  EXPECT_TRUE(CrossesVelocity(r, 0, 5001));
  EXPECT_FALSE(CrossesVelocity(r, 9000, 0));  // earning nothing never crosses
  EXPECT_TRUE(CrossesVelocity(r, INT64_MAX, INT64_MAX));
}

// --- Provisional upgrades ------------------------------------------------------------

TEST(ProvisionalUpgrade, OnlyUpwardsAndOnlyWhenEnabled) {
  Rules r = Rules::Defaults();
  EXPECT_EQ(ProvisionalUpgrade(r, "member", 300000, 0), std::nullopt);  // disabled by default
  r.provisional_upgrade = true;
  EXPECT_EQ(ProvisionalUpgrade(r, "member", 49999, 0), std::nullopt);
  EXPECT_EQ(ProvisionalUpgrade(r, "member", 40000, 10000), std::optional<std::string>("vip"));
  EXPECT_EQ(ProvisionalUpgrade(r, "member", 150000, 50000), std::optional<std::string>("black"));
  EXPECT_EQ(ProvisionalUpgrade(r, "vip", 150000, 49999), std::nullopt);
  EXPECT_EQ(ProvisionalUpgrade(r, "vip", 150000, 50000), std::optional<std::string>("black"));
  EXPECT_EQ(ProvisionalUpgrade(r, "vip", 60000, 0), std::nullopt);  // already vip
  EXPECT_EQ(ProvisionalUpgrade(r, "black", 0, 0), std::nullopt);    // never a downgrade
  EXPECT_EQ(ProvisionalUpgrade(r, "platinum", 900000, 0), std::nullopt);
  EXPECT_EQ(ProvisionalUpgrade(r, "member", INT64_MAX, INT64_MAX),
            std::optional<std::string>("black"));
  EXPECT_EQ(ProvisionalUpgrade(r, "member", 60000, -20000), std::nullopt);  // refunds net out
}

// ---------------------------------------------------------------------------------------
// The lot engine (PlanLotMovement): one plan for the terminal's ledger and HQ.

model::Lot L(int64_t id, int64_t remaining, int64_t expires, int64_t points = 0) {
  return model::Lot{id,  5,       points ? points : remaining, remaining,
                    100, expires, "e" + std::to_string(id)};
}

TEST(LotEngineTest, AnEarnBecomesALotWithTheGivenExpiry) {
  LotMovement m = PlanLotMovement({}, 5, 120, 1000, 9000, "x");
  EXPECT_TRUE(m.updates.empty());
  ASSERT_TRUE(m.added);
  EXPECT_EQ(*m.added, (model::Lot{0, 5, 120, 120, 1000, 9000, "x"}));
  EXPECT_EQ(PlanLotMovement({}, 5, 0, 1000, 9000, "x"), LotMovement{});
}

TEST(LotEngineTest, AnEarnPaysTheDebtFirst) {
  std::vector<model::Lot> lots{L(1, 50, 5000), L(2, -30, model::kNeverExpires)};
  LotMovement some = PlanLotMovement(lots, 5, 100, 1000, 9000, "x");
  EXPECT_EQ(some.updates, (std::vector<LotUpdate>{{2, 0}}));
  ASSERT_TRUE(some.added);
  EXPECT_EQ(some.added->points, 70);
  EXPECT_EQ(some.added->remaining, 70);
  LotMovement all = PlanLotMovement(lots, 5, 20, 1000, 9000, "x");  // the debt takes it all
  EXPECT_EQ(all.updates, (std::vector<LotUpdate>{{2, -10}}));
  EXPECT_FALSE(all.added);
}

TEST(LotEngineTest, ASpendTakesUnexpiredLotsOldestExpiryFirst) {
  std::vector<model::Lot> lots{L(3, 40, 8000), L(1, 50, 500),
                               L(2, 30, 6000)};  // lot 1 expired at 1000
  LotMovement m = PlanLotMovement(lots, 5, -50, 1000, 0, "x");
  EXPECT_EQ(m.updates, (std::vector<LotUpdate>{{2, 0}, {3, 20}}));
  EXPECT_FALSE(m.added);
}

TEST(LotEngineTest, AShortfallOpensOrDeepensTheDebtLot) {
  std::vector<model::Lot> lots{L(1, 30, 6000)};
  LotMovement open = PlanLotMovement(lots, 5, -100, 1000, 0, "x");
  EXPECT_EQ(open.updates, (std::vector<LotUpdate>{{1, 0}}));
  ASSERT_TRUE(open.added);
  EXPECT_EQ(*open.added, (model::Lot{0, 5, -70, -70, 1000, model::kNeverExpires, "x"}));
  lots.push_back(L(2, -10, model::kNeverExpires));
  LotMovement deeper = PlanLotMovement(lots, 5, -100, 1000, 0, "x");
  EXPECT_EQ(deeper.updates, (std::vector<LotUpdate>{{1, 0}, {2, -80}}));
  EXPECT_FALSE(deeper.added);
}

TEST(LotEngineTest, ApplyLeavesLotsAsAStoreReadsThem) {
  std::vector<model::Lot> lots{L(2, 10, 500), L(1, 30, 6000)};  // in Lots() order
  LotMovement m = PlanLotMovement(lots, 5, -100, 1000, 0, "x");
  ApplyLotMovement(lots, m, 7);
  ASSERT_EQ(lots.size(), 2u);  // lot 1 emptied and dropped; lot 2 (expired) kept; the debt added
  EXPECT_EQ(lots[0].lot_id, 2);
  EXPECT_EQ(lots[1].lot_id, 7);
  EXPECT_EQ(lots[1].remaining, -70);
}

}  // namespace
}  // namespace loyalty::rules
