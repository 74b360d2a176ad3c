// Recovery from a damaged ledger, as docs/operations.md ("A damaged ledger") tells store IT:
// a real loyalty-hq and a real loyaltyd; the terminal's ledger gets a damaged `members`
// page while the daemon is stopped; started on it, the terminal is degraded and refuses
// commits with 503 ledger_damaged; stopped, the file (and its -wal/-shm) moved aside, and
// started again on a fresh ledger, one sync with HQ brings its whole history back: the same
// entries, the stored answers of its checkouts, and HQ's balances. The same when the damage
// is on a page the daemon reads while it opens the ledger (the root of `entries`, read
// for the chain head): it starts degraded instead of exiting, and neither a commit nor a
// sync writes to the damaged file.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "e2e_fixture.h"
#include "support/files.h"
#include "support/sqlite_damage.h"

namespace loyalty::e2e {
namespace {

const char* kA = "T-A";

class DamagedLedgerE2eTest : public E2eFixture {
 protected:
  DamagedLedgerE2eTest() : E2eFixture({kA}) {}

  void SetUp() override {
    E2eFixture::SetUp();
    StartHq();
    terminal_ = std::make_unique<TerminalProcess>(dir_ / kA, Options(kA, hq_->port()));
  }
  void TearDown() override {
    terminal_.reset();
    E2eFixture::TearDown();
  }

  // Polls /v1/health until ledger.ok is `ok` (at most 20 s); the last health.
  json WaitForLedgerOk(bool ok) {
    json h;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      h = terminal_->Call("GET", "/v1/health").body;
      if (h.contains("ledger") && h["ledger"].value("ok", !ok) == ok) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return h;
  }

  std::unique_ptr<TerminalProcess> terminal_;
};

TEST_F(DamagedLedgerE2eTest, MovedAsideAndSyncedOnceTheTerminalHasItsHistoryBack) {
  Member m = Enrol(*hq_, 1);
  auto& a = *terminal_;
  a.Start();
  ASSERT_EQ(a.Sync().value("result", ""), "ok");
  json req{{"checkout_id", "sale-1"},
           {"member_code", m.card_number},
           {"lines", Basket(5000)},
           {"tender", "cash"}};
  auto sale = a.Call("POST", "/v1/checkouts/commit", req);
  ASSERT_EQ(sale.status, 200) << sale.raw;
  json req2{{"checkout_id", "sale-2"},
            {"member_code", m.card_number},
            {"lines", Basket(7000)},
            {"tender", "cash"}};
  ASSERT_EQ(a.Call("POST", "/v1/checkouts/commit", req2).status, 200);
  ASSERT_EQ(a.Sync().value("result", ""), "ok");
  int64_t entries = a.LedgerEntries();
  int64_t balance = a.MemberBalance(m.id);
  ASSERT_GT(balance, 0);

  // A bad sector in the members table while the terminal is off.
  ASSERT_EQ(a.Stop(), 0);
  ASSERT_TRUE(testing::FoldWal(a.db_path()));
  ASSERT_TRUE(testing::DamageRowPage(a.db_path(), "members", std::stoll(m.id)))
      << "member " << m.id << " not found in the members table";
  a.Start();
  json h = WaitForLedgerOk(false);
  EXPECT_EQ(h["status"], "degraded") << h.dump();
  EXPECT_EQ(h["ledger"]["ok"], false) << h.dump();
  json req3{{"checkout_id", "sale-3"},
            {"member_code", m.card_number},
            {"lines", Basket(100)},
            {"tender", "cash"}};
  auto refused = a.Call("POST", "/v1/checkouts/commit", req3);
  EXPECT_EQ(refused.status, 503) << refused.raw;
  EXPECT_EQ(refused.body["error"]["code"], "ledger_damaged") << refused.raw;

  // Recovery: stop, move the file and its -wal/-shm aside, start on a fresh ledger, sync.
  ASSERT_EQ(a.Stop(), 0);
  std::filesystem::create_directories(dir_ / "damaged");
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::path from = a.db_path() + suffix;
    if (std::filesystem::exists(from))
      std::filesystem::rename(from, dir_ / "damaged" / from.filename());
  }
  a.Start();
  h = WaitForLedgerOk(true);
  EXPECT_EQ(h["ledger"]["ok"], true) << h.dump();
  ASSERT_EQ(a.Sync().value("result", ""), "ok");
  EXPECT_EQ(a.LedgerEntries(), entries);
  EXPECT_EQ(a.MemberBalance(m.id), balance);
  auto hq_view = hq_->Admin("GET", "/v1/members/" + m.id);
  ASSERT_EQ(hq_view.status, 200) << hq_view.raw;
  EXPECT_EQ(hq_view.body["balance"].get<int64_t>(), balance);
  // The history is back: the first sale answers with its stored response, its id is taken.
  auto again = a.Call("POST", "/v1/checkouts/commit", req);
  EXPECT_EQ(again.status, 200) << again.raw;
  EXPECT_EQ(again.body["entries"], sale.body["entries"]);
  // And the lane sells again.
  auto next = a.Call("POST", "/v1/checkouts/commit", req3);
  EXPECT_EQ(next.status, 200) << next.raw;
  h = terminal_->Call("GET", "/v1/health").body;
  EXPECT_EQ(h["ledger"]["ok"], true) << h.dump();
}

TEST_F(DamagedLedgerE2eTest, DamagedWhereStartUpReadsTheTerminalStartsDegradedAndRecovers) {
  Member m = Enrol(*hq_, 1);
  auto& a = *terminal_;
  a.Start();
  ASSERT_EQ(a.Sync().value("result", ""), "ok");
  json req{{"checkout_id", "sale-1"},
           {"member_code", m.card_number},
           {"lines", Basket(5000)},
           {"tender", "cash"}};
  auto sale = a.Call("POST", "/v1/checkouts/commit", req);
  ASSERT_EQ(sale.status, 200) << sale.raw;
  ASSERT_EQ(a.Sync().value("result", ""), "ok");
  int64_t entries = a.LedgerEntries();
  int64_t balance = a.MemberBalance(m.id);
  ASSERT_GT(entries, 0);
  ASSERT_GT(balance, 0);

  // A bad sector on the root page of the entries table while the terminal is off.
  ASSERT_EQ(a.Stop(), 0);
  ASSERT_TRUE(testing::FoldWal(a.db_path()));
  ASSERT_TRUE(testing::DamageRootPage(a.db_path(), "entries"));
  const std::string damaged = testing::ReadFile(a.db_path());
  a.Start();  // fails the test if loyaltyd exits instead
  json h = WaitForLedgerOk(false);
  EXPECT_EQ(h["status"], "degraded") << h.dump();
  EXPECT_EQ(h["ledger"]["ok"], false) << h.dump();
  EXPECT_NE(h["ledger"].value("reason", "").find("damaged"), std::string::npos) << h.dump();
  json req2{{"checkout_id", "sale-2"},
            {"member_code", m.card_number},
            {"lines", Basket(100)},
            {"tender", "cash"}};
  auto refused = a.Call("POST", "/v1/checkouts/commit", req2);
  EXPECT_EQ(refused.status, 503) << refused.raw;
  EXPECT_EQ(refused.body["error"]["code"], "ledger_damaged") << refused.raw;
  auto sync = a.Call("POST", "/v1/sync");
  EXPECT_EQ(sync.status, 503) << sync.raw;
  EXPECT_EQ(sync.body["error"]["code"], "ledger_damaged") << sync.raw;
  ASSERT_EQ(a.Stop(), 0);
  EXPECT_EQ(testing::ReadFile(a.db_path()), damaged) << "the damaged file was written";
  std::string log = a.ReadLog();
  size_t said = 0;
  for (size_t at = log.find("\"event\":\"ledger_damaged\""); at != std::string::npos;
       at = log.find("\"event\":\"ledger_damaged\"", at + 1))
    ++said;
  EXPECT_EQ(said, 1u) << log;

  // Recovery as for any damaged ledger: move it aside, start on a fresh one, sync.
  std::filesystem::create_directories(dir_ / "damaged");
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::path from = a.db_path() + suffix;
    if (std::filesystem::exists(from))
      std::filesystem::rename(from, dir_ / "damaged" / from.filename());
  }
  a.Start();
  h = WaitForLedgerOk(true);
  EXPECT_EQ(h["ledger"]["ok"], true) << h.dump();
  ASSERT_EQ(a.Sync().value("result", ""), "ok");
  EXPECT_EQ(a.LedgerEntries(), entries);
  EXPECT_EQ(a.MemberBalance(m.id), balance);
  auto next = a.Call("POST", "/v1/checkouts/commit", req2);
  EXPECT_EQ(next.status, 200) << next.raw;
}

}  // namespace
}  // namespace loyalty::e2e
