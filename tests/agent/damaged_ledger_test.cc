// A damaged ledger is never healthy (operations.md): a real ledger file with a page of its
// `members` table overwritten as a bad sector would, under the real loyaltyd process. Found
// by the start-up quick_check or by a request that reads the page while the daemon runs,
// it latches the ledger damaged: /v1/health degraded with ledger.ok false and a reason,
// ledger_damaged logged once, commits and refunds 503 ledger_damaged, identify of a member
// on that page 503 (not member_unknown), and loyaltyctl verify exits non-zero naming the
// problem. A page that opening the ledger itself reads (a table's root, the schema) is the
// same: the daemon starts degraded and writes nothing to the file, instead of exiting into
// systemd's restart loop. A file that is not SQLite's, or of a newer schema, still stops
// the start.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <optional>
#include <string>
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

// The log file is appended to by every start of the daemon, and SetUp's start logs a
// ledger_checked of its own (ok, on the ledger before it was damaged): a wait for this
// start's verdict reads only what was logged after `from`, the log's size before Start().
// Polls until such a line is the event `event` and returns it (at most 20 s; the daemon
// decides, not the clock).
std::optional<json> WaitForEvent(AgentProcess& a, size_t from, const std::string& event) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string log = a.ReadLog();
    // Whole lines only: the last one may still be being written.
    for (size_t at = from, end; at < log.size() && (end = log.find('\n', at)) != std::string::npos;
         at = end + 1) {
      json line = json::parse(log.substr(at, end - at), nullptr, /*allow_exceptions=*/false);
      if (line.is_object() && line.value("event", "") == event) return line;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return std::nullopt;
}

// What a fresh connection's PRAGMA quick_check says of the file: "ok", its first problem, or
// the error that stopped it (a damaged page often stops it with SQLITE_CORRUPT).
std::string QuickCheck(const std::string& path) {
  sqlite3* db = nullptr;
  std::string verdict;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    verdict = std::string("open: ") + sqlite3_errmsg(db);
  } else {
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
      verdict = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    else
      verdict = std::string("error: ") + sqlite3_errmsg(db);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return verdict;
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

  // Starts the daemon and waits for this start's ledger_checked (see WaitForEvent).
  std::optional<json> StartAndWaitForTheCheck() {
    size_t from = agent_->ReadLog().size();
    agent_->Start();
    auto checked = WaitForEvent(*agent_, from, "ledger_checked");
    if (!checked) ADD_FAILURE() << "no ledger_checked after this start:\n" << agent_->ReadLog();
    return checked;
  }

  std::unique_ptr<AgentProcess> agent_;
  std::optional<uint32_t> damaged_page_;
};

TEST_F(DamagedLedgerTest, HealthyLedgerPassesTheStartUpCheckAndVerify) {
  auto checked = StartAndWaitForTheCheck();
  ASSERT_TRUE(checked);
  EXPECT_EQ((*checked)["ok"], true) << checked->dump();
  EXPECT_EQ((*checked)["problems"], 0) << checked->dump();
  auto h = agent_->Get("/v1/health");
  EXPECT_EQ(h.body["ledger"]["ok"], true) << h.raw;
  EXPECT_FALSE(h.body["ledger"].contains("reason")) << h.raw;
  ASSERT_EQ(agent_->Stop(), 0);
  ProgramResult v = RunCtl({"--config", agent_->config_path(), "verify"});
  EXPECT_EQ(v.exit, 0) << v.out << v.err;
}

TEST_F(DamagedLedgerTest, APageDamagedAtRestIsFoundByTheStartUpCheck) {
  // Damaged at rest: no WAL frames can hold a newer copy of the page (DamageRowPage refuses
  // a non-empty -wal), and the file alone fails SQLite's own check.
  ASSERT_EQ(DamageRowPage(agent_->db_path(), "members", kDamagedMember), damaged_page_);
  ASSERT_NE(QuickCheck(agent_->db_path()), "ok");
  auto checked = StartAndWaitForTheCheck();
  ASSERT_TRUE(checked);
  EXPECT_EQ((*checked)["ok"], false) << checked->dump();
  EXPECT_GE((*checked)["problems"], 1) << checked->dump();
  ExpectRefusedAsDamaged();
  ASSERT_EQ(agent_->Stop(), 0);
  ExpectVerifyFails();
}

TEST_F(DamagedLedgerTest, APageDamagedUnderTheRunningDaemonIsFoundByTheRequestThatReadsIt) {
  // This start's check has passed: what follows is found by a request.
  auto checked = StartAndWaitForTheCheck();
  ASSERT_TRUE(checked);
  ASSERT_EQ((*checked)["ok"], true) << checked->dump();
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

// Damage where start-up reads before it is ready: the root page of a table opening the
// ledger reads (the chain head's entries, the terminal id's meta, the recon index's tables,
// the interrupted runs' sync_runs), or the schema on page 1.
class DamagedWhereStartUpReadsTest : public DamagedLedgerTest,
                                     public ::testing::WithParamInterface<const char*> {};

TEST_P(DamagedWhereStartUpReadsTest, TheAgentStartsDegradedAndWritesNothing) {
  const std::string db = agent_->db_path();
  auto page = DamageRootPage(db, GetParam());
  ASSERT_TRUE(page) << GetParam();
  ASSERT_NE(QuickCheck(db), "ok");
  const std::string before = ReadFile(db);
  size_t from = agent_->ReadLog().size();
  agent_->Start();  // fails the test if the daemon exits instead
  ASSERT_TRUE(agent_->running());
  auto damaged = WaitForEvent(*agent_, from, "ledger_damaged");
  ASSERT_TRUE(damaged) << agent_->ReadLog().substr(from);
  EXPECT_EQ((*damaged)["level"], "critical") << damaged->dump();
  EXPECT_EQ((*damaged)["database"], db) << damaged->dump();
  EXPECT_TRUE(WaitForEvent(*agent_, from, "agent_started")) << agent_->ReadLog().substr(from);
  ExpectRefusedAsDamaged();
  ASSERT_EQ(agent_->Stop(), 0);
  EXPECT_EQ(ReadFile(db), before) << "the damaged file was written";
  std::error_code ec;
  EXPECT_EQ(
      std::filesystem::exists(db + "-wal", ec) ? std::filesystem::file_size(db + "-wal", ec) : 0u,
      0u);
  EXPECT_EQ(Count(agent_->ReadLog(), "\"event\":\"ledger_damaged\""), 1u);
  ExpectVerifyFails();
}

INSTANTIATE_TEST_SUITE_P(Tables, DamagedWhereStartUpReadsTest,
                         ::testing::Values("entries", "meta", "recon_meta", "recon_scopes",
                                           "sync_runs", "sqlite_schema"),
                         [](const auto& info) { return std::string(info.param); });

// Starts loyaltyd on the fixture's config and waits (at most 10 s) for it to exit: its
// status, or -2 when it kept running (it is killed).
int StartExpectingExit(AgentProcess& a) {
  pid_t pid =
      Spawn({std::string(LOYALTY_BINARY_DIR) + "/agent/loyaltyd", "--config", a.config_path()},
            a.log_path());
  int st = ReapWithin(pid, 10000);
  if (st == -2) SignalAndReap(pid, SIGKILL);
  return st;
}

// loyaltyd --check-config on the fixture's config: its exit status (-2: it did not exit).
int CheckConfigExit(AgentProcess& a) {
  pid_t pid = Spawn({std::string(LOYALTY_BINARY_DIR) + "/agent/loyaltyd", "--check-config",
                     "--config", a.config_path()},
                    a.log_path());
  int st = ReapWithin(pid, 10000);
  if (st == -2) SignalAndReap(pid, SIGKILL);
  return st;
}

// What is not a damaged ledger still stops the start, as before: a file that is not
// SQLite's at all (the wrong file named, or its first page lost) and a ledger of a newer
// schema than this program's. Both say why (ledger_error) and leave the file as it was.
TEST_F(DamagedLedgerTest, AFileThatIsNotALedgerStopsTheStart) {
  const std::string db = agent_->db_path();
  std::filesystem::remove(db);
  WriteFile(db, std::string(4096, 'x'), 0600);
  size_t from = agent_->ReadLog().size();
  EXPECT_EQ(StartExpectingExit(*agent_), 1);
  std::string log = agent_->ReadLog().substr(from);
  EXPECT_NE(log.find("\"event\":\"ledger_error\""), std::string::npos) << log;
  EXPECT_NE(log.find("is not an SQLite database"), std::string::npos) << log;
  EXPECT_EQ(log.find("\"event\":\"ledger_damaged\""), std::string::npos) << log;
  EXPECT_EQ(ReadFile(db), std::string(4096, 'x'));
  // --check-config says so too, naming the key, with the start's status.
  from = agent_->ReadLog().size();
  EXPECT_EQ(CheckConfigExit(*agent_), 1);
  log = agent_->ReadLog().substr(from);
  EXPECT_NE(
      log.find(agent_->config_path() + ": agent.database: " + db + " is not an SQLite database"),
      std::string::npos)
      << log;
  EXPECT_EQ(ReadFile(db), std::string(4096, 'x'));
}

TEST_F(DamagedLedgerTest, ALedgerOfANewerSchemaStopsTheStart) {
  const std::string db = agent_->db_path();
  {
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(h, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(h);
  }
  size_t from = agent_->ReadLog().size();
  EXPECT_EQ(StartExpectingExit(*agent_), 1);
  std::string log = agent_->ReadLog().substr(from);
  EXPECT_NE(log.find("newer than this program"), std::string::npos) << log;
  EXPECT_EQ(log.find("\"event\":\"ledger_damaged\""), std::string::npos) << log;
  from = agent_->ReadLog().size();
  EXPECT_EQ(CheckConfigExit(*agent_), 1);
  log = agent_->ReadLog().substr(from);
  EXPECT_NE(log.find(": agent.database: ledger " + db + " has schema version 99, newer than"),
            std::string::npos)
      << log;
}

// --check-config says what the start would refuse of the ledger file, with its status: a
// folder where the file should be (a config error, 2), and another terminal's ledger (1).
TEST_F(DamagedLedgerTest, AFolderOrAnotherTerminalsLedgerStopsCheckConfigAsTheStart) {
  const std::string db = agent_->db_path();
  {
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(h, "UPDATE meta SET value = 'T09' WHERE key = 'terminal_id'", nullptr,
                           nullptr, nullptr),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_changes(h), 1);
    sqlite3_close(h);
  }
  size_t from = agent_->ReadLog().size();
  EXPECT_EQ(StartExpectingExit(*agent_), 1);
  std::string log = agent_->ReadLog().substr(from);
  EXPECT_NE(log.find("belongs to terminal 'T09', not 'T01'"), std::string::npos) << log;
  from = agent_->ReadLog().size();
  EXPECT_EQ(CheckConfigExit(*agent_), 1);
  log = agent_->ReadLog().substr(from);
  EXPECT_NE(log.find(": agent.database: ledger " + db + " belongs to terminal 'T09', not 'T01'"),
            std::string::npos)
      << log;

  // A folder is no ledger file: refused with the config, as every file a config names that
  // is not a regular file is (exit 2).
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db + suffix);
  std::filesystem::create_directory(db);
  from = agent_->ReadLog().size();
  EXPECT_EQ(StartExpectingExit(*agent_), 2);
  from = agent_->ReadLog().size();
  EXPECT_EQ(CheckConfigExit(*agent_), 2);
  log = agent_->ReadLog().substr(from);
  EXPECT_NE(log.find(": agent.database: " + db + ": not a regular file"), std::string::npos) << log;
  EXPECT_TRUE(std::filesystem::is_directory(db));
}

}  // namespace
}  // namespace loyalty::testing
