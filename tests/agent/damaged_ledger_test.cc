// A damaged ledger is never healthy (operations.md): a real ledger file with a page of its
// `members` table overwritten as a bad sector would, under the real loyaltyd process. Found
// by the start-up quick_check or by a request that reads the page while the daemon runs,
// it latches the ledger damaged: /v1/health degraded with ledger.ok false and a reason,
// ledger_damaged logged once, commits and refunds 503 ledger_damaged, identify of a member
// on that page 503 (not member_unknown), and loyaltyctl verify exits non-zero naming the
// problem.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "harness.h"
#include "support/sqlite_damage.h"

namespace loyalty::testing {
namespace {

using nlohmann::json;

constexpr uint64_t kMembers = 3000;
constexpr uint64_t kDamagedMember = 1500;  // on the page that is overwritten
constexpr uint64_t kHealthyMember = 7;     // on another page

json Basket() {
  return json::array(
      {{{"sku", "A"}, {"qty", 1}, {"unit_price_cents", 1990}, {"category", "grocery"}}});
}

// Members 1..kMembers as HQ snapshots would leave them (those not there yet), in one
// transaction.
void SeedMembers(ledger::Ledger& l) {
  ASSERT_TRUE(l.Begin().ok());
  for (uint64_t id = 1; id <= kMembers; ++id) {
    if (l.GetMember(id).value()) continue;
    ledger::MemberRow m;
    m.member_id = id;
    m.display_name = "张*";
    m.phone = "138****5678";
    m.snapshot_at_s = ::time(nullptr);
    ASSERT_TRUE(l.UpsertMember(m).ok());
  }
  ASSERT_TRUE(l.Commit().ok());
}

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1))
    ++n;
  return n;
}

// Polls until the log holds `needle` (at most 20 s; the daemon decides, not the clock).
bool WaitForLog(AgentProcess& a, const std::string& needle) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (a.ReadLog().find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

class DamagedLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    agent_ = std::make_unique<AgentProcess>(
        FreshDir(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    // A ledger with members and entries, closed cleanly (its WAL folded into the file).
    agent_->Start();
    auto first = agent_->Post("/v1/checkouts/commit", {{"checkout_id", "before"},
                                                       {"member_code", MintCode(kHealthyMember)},
                                                       {"lines", Basket()}});
    ASSERT_EQ(first.status, 200) << first.raw;
    ASSERT_EQ(agent_->Stop(), 0);
    {
      auto l = agent_->OpenLedger();
      ASSERT_TRUE(l);
      SeedMembers(*l);
    }
    damaged_page_ = LeafPageOfRowid(agent_->db_path(), "members", kDamagedMember);
    auto healthy_page = LeafPageOfRowid(agent_->db_path(), "members", kHealthyMember);
    ASSERT_TRUE(damaged_page_ && healthy_page);
    ASSERT_NE(*damaged_page_, *healthy_page);
    ASSERT_NE(*damaged_page_, *RootPage(agent_->db_path(), "members"));
  }

  // The state a damaged ledger must be in, wherever the damage was found.
  void ExpectRefusedAsDamaged() {
    auto h = agent_->Get("/v1/health");
    ASSERT_EQ(h.status, 200) << h.raw;
    EXPECT_EQ(h.body["status"], "degraded") << h.raw;
    EXPECT_EQ(h.body["ledger"]["ok"], false) << h.raw;
    EXPECT_NE(h.body["ledger"].value("reason", "").find("damaged"), std::string::npos) << h.raw;

    auto commit = agent_->Post(
        "/v1/checkouts/commit",
        {{"checkout_id", "after"}, {"member_code", MintCode(kHealthyMember)}, {"lines", Basket()}});
    EXPECT_EQ(commit.status, 503) << commit.raw;
    EXPECT_EQ(commit.body["error"]["code"], "ledger_damaged") << commit.raw;
    auto refund = agent_->Post(
        "/v1/refunds", {{"refund_id", "r1"}, {"checkout_id", "before"}, {"reason", "void"}});
    EXPECT_EQ(refund.status, 503) << refund.raw;
    EXPECT_EQ(refund.body["error"]["code"], "ledger_damaged") << refund.raw;
    auto ident = agent_->Post("/v1/identify", {{"code", MintCode(kDamagedMember)}});
    EXPECT_EQ(ident.status, 503) << ident.raw;
    EXPECT_EQ(ident.body["error"]["code"], "ledger_damaged") << ident.raw;

    auto metrics = agent_->Get("/metrics");
    EXPECT_NE(metrics.raw.find("loyalty_ledger_ok 0"), std::string::npos);
    std::string log = agent_->ReadLog();
    EXPECT_EQ(Count(log, "\"event\":\"ledger_damaged\""), 1u) << log;
  }

  void ExpectVerifyFails() {
    ProgramResult v = RunCtl({"--config", agent_->config_path(), "verify"});
    EXPECT_EQ(v.exit, 8) << v.out << v.err;  // kExitVerifyFailed
    EXPECT_NE(v.out.find("integrity_check"), std::string::npos) << v.out << v.err;
    EXPECT_NE(v.err.find("verify found"), std::string::npos) << v.err;
  }

  std::unique_ptr<AgentProcess> agent_;
  std::optional<uint32_t> damaged_page_;
};

TEST_F(DamagedLedgerTest, HealthyLedgerPassesTheStartUpCheckAndVerify) {
  agent_->Start();
  ASSERT_TRUE(WaitForLog(*agent_, "\"event\":\"ledger_checked\"")) << agent_->ReadLog();
  EXPECT_NE(agent_->ReadLog().find("\"ok\":true"), std::string::npos) << agent_->ReadLog();
  auto h = agent_->Get("/v1/health");
  EXPECT_EQ(h.body["ledger"]["ok"], true) << h.raw;
  EXPECT_FALSE(h.body["ledger"].contains("reason")) << h.raw;
  ASSERT_EQ(agent_->Stop(), 0);
  ProgramResult v = RunCtl({"--config", agent_->config_path(), "verify"});
  EXPECT_EQ(v.exit, 0) << v.out << v.err;
}

TEST_F(DamagedLedgerTest, APageDamagedAtRestIsFoundByTheStartUpCheck) {
  ASSERT_EQ(DamageRowPage(agent_->db_path(), "members", kDamagedMember), damaged_page_);
  agent_->Start();
  ASSERT_TRUE(WaitForLog(*agent_, "\"event\":\"ledger_checked\"")) << agent_->ReadLog();
  ExpectRefusedAsDamaged();
  ASSERT_EQ(agent_->Stop(), 0);
  ExpectVerifyFails();
}

TEST_F(DamagedLedgerTest, APageDamagedUnderTheRunningDaemonIsFoundByTheRequestThatReadsIt) {
  agent_->Start();
  // The start-up check has passed: what follows is found by a request.
  ASSERT_TRUE(WaitForLog(*agent_, "\"event\":\"ledger_checked\"")) << agent_->ReadLog();
  auto healthy = agent_->Post("/v1/identify", {{"code", MintCode(kHealthyMember)}});
  ASSERT_EQ(healthy.status, 200) << healthy.raw;
  ASSERT_TRUE(DamagePage(agent_->db_path(), *damaged_page_));
  auto ident = agent_->Post("/v1/identify", {{"code", MintCode(kDamagedMember)}});
  EXPECT_EQ(ident.status, 503) << ident.raw;
  EXPECT_EQ(ident.body["error"]["code"], "ledger_damaged") << ident.raw;
  ExpectRefusedAsDamaged();
  ASSERT_EQ(agent_->Stop(), 0);
  ExpectVerifyFails();
}

}  // namespace
}  // namespace loyalty::testing
