// One lot engine at both ends: the same random entry sequences, applied by the terminal's
// ledger (checkout::ApplyLotDelta on a real ledger file) and by HQ (hq::MoveLots on a real
// HQ store), must leave the same lots and the same balances. Both run rules::PlanLotMovement;
// what this proves is that neither end's writes drift from the plan.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <numeric>
#include <random>

#include "loyalty/checkout/lots.h"
#include "loyalty/hq/lots.h"
#include "loyalty/hq/store.h"
#include "loyalty/ledger/ledger.h"
#include "loyalty/rules/rules.h"

namespace loyalty {
namespace {

// A lot without its id (each store numbers lots its own way).
std::string Describe(const std::vector<model::Lot>& lots) {
  std::string s;
  for (const auto& l : lots)
    s += "[" + std::to_string(l.points) + " " + std::to_string(l.remaining) + " " +
         std::to_string(l.earned_at_s) + " " + std::to_string(l.expires_at_s) + " " + l.entry_id +
         "]";
  return s;
}

int64_t Balance(const std::vector<model::Lot>& lots) {
  return std::accumulate(lots.begin(), lots.end(), int64_t{0},
                         [](int64_t s, const model::Lot& l) { return s + l.remaining; });
}

class LotsAgreeTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("lots_agree_" + std::to_string(::getpid()) + "_" + std::to_string(GetParam()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto l =
        ledger::Ledger::Open((dir_ / "ledger.db").string(), ledger::Ledger::Mode::kWriter, "T01");
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    ledger_ = std::move(*l);
    auto h = hq::OpenSqliteStore((dir_ / "hq.db").string());
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    hq_ = std::move(*h);
  }
  void TearDown() override {
    ledger_.reset();
    hq_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::filesystem::path dir_;
  std::unique_ptr<ledger::Ledger> ledger_;
  std::unique_ptr<hq::Store> hq_;
};

TEST_P(LotsAgreeTest, RandomEntrySequencesLeaveTheSameLotsAtBothEnds) {
  std::mt19937 rng(GetParam());
  constexpr int kMembers = 3;
  for (uint64_t m = 1; m <= kMembers; ++m) {
    hq::MemberRecord rec;
    rec.member_id = m;
    ASSERT_TRUE(hq_->Transaction([&] { return hq_->InsertMember(rec); }).ok());
  }
  int64_t at_s = 1'795'000'000;
  int debts = 0, paid_off = 0, expired_skipped = 0;
  for (int step = 0; step < 300; ++step) {
    const uint64_t member = 1 + rng() % kMembers;
    at_s += static_cast<int64_t>(rng() % (15 * 86400));
    // Mostly earns, some spends larger than what is left (debts), expiries that coincide
    // (one month's points) and expiries already past at later steps.
    const int64_t delta =
        rng() % 3 ? static_cast<int64_t>(rng() % 400) + 1 : -static_cast<int64_t>(rng() % 1200) - 1;
    const int64_t expires = at_s + static_cast<int64_t>(rng() % 4) * 20 * 86400;
    const std::string entry_id = "e" + std::to_string(step);

    auto before = ledger_->Lots(member).value();
    const auto plan = rules::PlanLotMovement(before, member, delta, at_s, expires, entry_id);
    for (const auto& l : before)
      expired_skipped += l.remaining > 0 && l.expires_at_s < at_s && delta < 0;
    if (delta > 0 && Balance(before) < 0) ++paid_off;

    ASSERT_TRUE(ledger_->Begin().ok());
    Status a = checkout::ApplyLotDelta(*ledger_, member, delta, at_s, expires, entry_id);
    ASSERT_TRUE(a.ok()) << a.ToString();
    ASSERT_TRUE(ledger_->Commit().ok());
    Status b = hq_->Transaction(
        [&] { return hq::MoveLots(*hq_, member, delta, at_s, expires, entry_id); });
    ASSERT_TRUE(b.ok()) << b.ToString();

    const auto at_terminal = ledger_->Lots(member).value();
    const auto at_hq = hq_->Lots(member).value();
    ASSERT_EQ(Describe(at_terminal), Describe(at_hq))
        << "step " << step << " member " << member << " delta " << delta;
    ASSERT_EQ(Balance(at_terminal), Balance(at_hq));
    // And both equal the plan applied in memory.
    rules::ApplyLotMovement(before, plan, 1'000'000 + step);
    ASSERT_EQ(Describe(before), Describe(at_terminal)) << "step " << step;
    for (const auto& l : at_terminal) debts += l.remaining < 0;
  }
  // The walk went through every path, not only plain earns.
  EXPECT_GT(debts, 0);
  EXPECT_GT(paid_off, 0);
  EXPECT_GT(expired_skipped, 0);
}

INSTANTIATE_TEST_SUITE_P(Seeds, LotsAgreeTest, ::testing::Values(1u, 2u, 3u, 20261204u));

}  // namespace
}  // namespace loyalty
