// ApplyLotDelta on lots the caller holds must leave the ledger exactly as the reading form
// does, and the caller's copy equal to what the ledger now returns: a commit reads a
// member's lots once and trusts that copy for the balance, the member view and the receipt.
#include "loyalty/checkout/lots.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "support/files.h"

namespace loyalty::checkout {
namespace {

std::string Describe(const std::vector<model::Lot>& lots) {
  std::string s;
  for (const auto& l : lots)
    s += "[" + std::to_string(l.lot_id) + " " + std::to_string(l.points) + " " +
         std::to_string(l.remaining) + " " + std::to_string(l.expires_at_s) + "]";
  return s;
}

class LotsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"held", "read"}) {
      auto l = ledger::Ledger::Open((dir_ / (std::string(name) + ".db")).string(),
                                    ledger::Ledger::Mode::kWriter, "T01");
      ASSERT_TRUE(l.ok()) << l.status().ToString();
      ledgers_.push_back(std::move(*l));
    }
  }
  void TearDown() override { ledgers_.clear(); }

  loyalty::testing::TempDir dir_{"lots_test"};
  std::vector<std::unique_ptr<ledger::Ledger>> ledgers_;
};

TEST_F(LotsTest, HeldLotsFollowTheLedgerThroughEarnsSpendsAndDebts) {
  constexpr uint64_t kMember = 42;
  ledger::Ledger& held = *ledgers_[0];
  ledger::Ledger& read = *ledgers_[1];
  std::mt19937 rng(11);
  std::vector<model::Lot> lots;  // held's lots as the caller keeps them
  int64_t at_s = 1'795'000'000;
  int debts = 0;
  for (int step = 0; step < 400; ++step) {
    at_s += static_cast<int64_t>(rng() % (20 * 86400));
    // Earn mostly, sometimes spend more than is left (a debt), with expiries that often
    // coincide (points of one month) and sometimes lie in the past at the next step.
    int64_t delta =
        rng() % 3 ? static_cast<int64_t>(rng() % 500) + 1 : -static_cast<int64_t>(rng() % 1500) - 1;
    int64_t expires = at_s + static_cast<int64_t>(rng() % 4) * 30 * 86400;
    ASSERT_TRUE(held.Begin().ok());
    ASSERT_TRUE(read.Begin().ok());
    Status a = ApplyLotDelta(held, lots, kMember, delta, at_s, expires, "e" + std::to_string(step));
    Status b = ApplyLotDelta(read, kMember, delta, at_s, expires, "e" + std::to_string(step));
    ASSERT_TRUE(a.ok()) << a.ToString();
    ASSERT_TRUE(b.ok()) << b.ToString();
    ASSERT_TRUE(held.Commit().ok());
    ASSERT_TRUE(read.Commit().ok());
    auto in_held = held.Lots(kMember).value();
    auto in_read = read.Lots(kMember).value();
    ASSERT_EQ(Describe(lots), Describe(in_held)) << "step " << step << " delta " << delta;
    ASSERT_EQ(Describe(in_held), Describe(in_read)) << "step " << step << " delta " << delta;
    for (const auto& lot : in_held) debts += lot.remaining < 0;
  }
  EXPECT_GT(debts, 0);  // the walk went through debts, not only plain earns and spends
}

TEST_F(LotsTest, DebtIsPaidFirstAndEmptyLotsLeaveTheHeldCopy) {
  constexpr uint64_t kMember = 7;
  ledger::Ledger& l = *ledgers_[0];
  std::vector<model::Lot> lots;
  ASSERT_TRUE(l.Begin().ok());
  ASSERT_TRUE(ApplyLotDelta(l, lots, kMember, 100, 1000, 5000, "a").ok());
  ASSERT_TRUE(ApplyLotDelta(l, lots, kMember, -150, 1001, 0, "b").ok());  // 50 short: a debt lot
  ASSERT_EQ(lots.size(), 1u);
  EXPECT_EQ(lots[0].remaining, -50);
  EXPECT_EQ(lots[0].expires_at_s, model::kNeverExpires);
  ASSERT_TRUE(
      ApplyLotDelta(l, lots, kMember, 30, 1002, 6000, "c").ok());  // all of it pays the debt
  ASSERT_EQ(lots.size(), 1u);
  EXPECT_EQ(lots[0].remaining, -20);
  ASSERT_TRUE(ApplyLotDelta(l, lots, kMember, 25, 1003, 6000, "d").ok());  // 20 to the debt, 5 left
  ASSERT_EQ(lots.size(), 1u);
  EXPECT_EQ(lots[0].remaining, 5);
  EXPECT_EQ(lots[0].expires_at_s, 6000);
  ASSERT_TRUE(l.Commit().ok());
  EXPECT_EQ(Describe(lots), Describe(l.Lots(kMember).value()));
}

}  // namespace
}  // namespace loyalty::checkout
