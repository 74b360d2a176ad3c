// Crash safety: commit checkouts through the real API and kill loyaltyd with SIGKILL at
// random moments. Afterwards every acknowledged commit must be in the ledger with all of
// its entries, nothing may be half-written, the hash chain must verify, and every
// member's balance must equal the sum of its lots and of its entries.
//
// LOYALTY_CRASH_KILLS sets the number of kills (default 50); LOYALTY_CRASH_SEED the seed.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "harness.h"

namespace loyalty::testing {
namespace {

using nlohmann::json;

constexpr uint64_t kMember = 1234567890123;

TEST(CrashTest, AcknowledgedCommitsSurviveSigkill) {
  int kills =
      std::getenv("LOYALTY_CRASH_KILLS") ? std::atoi(std::getenv("LOYALTY_CRASH_KILLS")) : 50;
  uint64_t seed = std::getenv("LOYALTY_CRASH_SEED")
                      ? std::strtoull(std::getenv("LOYALTY_CRASH_SEED"), nullptr, 10)
                      : static_cast<uint64_t>(::time(nullptr));
  SCOPED_TRACE("seed " + std::to_string(seed) + " (rerun with LOYALTY_CRASH_SEED)");
  std::mt19937_64 rng(seed);
  auto dir = FreshDir("crash");
  AgentProcess agent(dir);

  std::map<std::string, json> acked;  // checkout_id → response
  std::set<std::string> refunds_acked;
  int next_id = 0;
  for (int round = 0; round < kills; ++round) {
    agent.Start();
    if (::testing::Test::HasFatalFailure()) return;
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::map<std::string, json> acked_now;
    int first = next_id;
    next_id += 1000;
    std::thread client([&, first] {
      http::Client client("127.0.0.1", agent.port());
      for (int i = first; !stop.load(); ++i) {
        std::string id = "k" + std::to_string(i);
        json lines = json::array({{{"sku", "A"},
                                   {"qty", 1 + i % 3},
                                   {"unit_price_cents", 1000 + (i % 7) * 130},
                                   {"category", "grocery"}},
                                  {{"sku", "B"},
                                   {"qty", 1},
                                   {"unit_price_cents", 500},
                                   {"category", i % 2 ? "tobacco" : "beauty"}}});
        // 50 members in each round's thousand ids, new ones in the next: a phone shows a new
        // code once a second, so one member's thousandth code would be long expired.
        const uint64_t member = kMember + static_cast<uint64_t>(i / 1000) * 50 + i % 50;
        json req{{"checkout_id", id}, {"member_code", MintCode(member)}, {"lines", lines}};
        auto r = CallWith(client, agent.token(), "POST", "/v1/checkouts/commit", req.dump());
        if (r.status == 200) {
          std::lock_guard<std::mutex> g(mu);
          acked_now[id] = r.body;
        } else if (r.status > 0) {
          ADD_FAILURE() << id << ": " << r.raw;
        }
        if (r.status < 0) break;  // the daemon is gone
      }
    });
    std::uniform_int_distribution<int> delay(5, 120);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay(rng)));
    agent.Kill();
    stop = true;
    client.join();
    for (auto& [k, v] : acked_now) acked[k] = v;
  }

  // Verify straight from the file.
  auto l = agent.OpenLedger(ledger::Ledger::Mode::kReader);
  ASSERT_TRUE(l);
  auto rep = l->Verify();
  EXPECT_TRUE(rep.ok()) << rep.problems.front();
  EXPECT_GT(acked.size(), 0u);
  for (const auto& [id, resp] : acked) {
    auto co = l->GetCheckout(id).value();
    ASSERT_TRUE(co) << "acknowledged checkout " << id << " is missing";
    // Straight from the entries table, not through the response that names them.
    std::vector<std::string> ids;
    {
      auto by_checkout =
          l->db().Prepare("SELECT entry_id FROM entries WHERE checkout_id = ? ORDER BY seq");
      ASSERT_TRUE(by_checkout.ok());
      (*by_checkout)->Bind(1, id);
      while ((*by_checkout)->Step()) ids.push_back((*by_checkout)->Text(0));
    }
    EXPECT_EQ(json(ids), resp["entries"]) << id;
    EXPECT_EQ(json::parse(co->response_json), resp) << id;
  }
  // Nothing half-written: every checkout with a member has its earn entry; every entry's
  // checkout exists.
  auto st = l->db().Prepare(
      "SELECT count(*) FROM checkouts c WHERE c.member_id IS NOT NULL AND NOT EXISTS "
      "(SELECT 1 FROM entries e WHERE e.checkout_id = c.checkout_id AND e.kind = 'earn')");
  ASSERT_TRUE((*st)->Step());
  EXPECT_EQ((*st)->Int(0), 0);
  auto orphans = l->db().Prepare(
      "SELECT count(*) FROM entries e WHERE e.checkout_id <> '' AND NOT EXISTS "
      "(SELECT 1 FROM checkouts c WHERE c.checkout_id = e.checkout_id)");
  ASSERT_TRUE((*orphans)->Step());
  EXPECT_EQ((*orphans)->Int(0), 0);
  // Balance = sum of lots (Verify) = sum of the member's entries (members created here).
  auto members = l->db().Prepare(
      "SELECT m.member_id, m.balance, coalesce((SELECT sum(points) FROM entries e WHERE "
      "e.member_id = m.member_id), 0) "
      "FROM members m");
  int checked = 0;
  while ((*members)->Step()) {
    EXPECT_EQ((*members)->Int(1), (*members)->Int(2)) << "member " << (*members)->Int(0);
    ++checked;
  }
  EXPECT_GT(checked, 0);
  if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

// operations.md: the ledger has one writer. A second loyaltyd started on the same ledger
// (a second unit, a copy started by hand) stops at start, naming why, before it touches the
// file; the first goes on selling. Once the first is gone (even by SIGKILL) a new one starts.
TEST(CrashTest, ASecondDaemonOnTheSameLedgerStopsAndTheFirstSellsOn) {
  auto dir = FreshDir("second_daemon");
  AgentProcess first(dir);
  first.Start();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  json lines = json::array({{{"sku", "A"}, {"qty", 1}, {"unit_price_cents", 1000}}});
  ASSERT_EQ(first.Post("/v1/checkouts/commit", {{"checkout_id", "a1"}, {"lines", lines}}).status,
            200);
  // The same config but another port: the same ledger (relative to the config's folder).
  std::string toml = ReadFile(first.config_path());
  const std::string port = std::to_string(first.port());
  toml.replace(toml.find(port), port.size(), std::to_string(FreePort()));
  const auto second_toml = dir / "second.toml";
  WriteFile(second_toml, toml);
  const std::string second_log = (dir / "second.log").string();
  pid_t second =
      Spawn({std::string(LOYALTY_BINARY_DIR) + "/agent/loyaltyd", "--config", second_toml.string()},
            second_log);
  int status = ReapWithin(second, 10000);
  if (status < 0) {
    SignalAndReap(second, SIGKILL);
    FAIL() << "a second loyaltyd started on the same ledger:\n" << ReadFile(second_log);
  }
  EXPECT_NE(status, 0);
  const std::string log = ReadFile(second_log);
  EXPECT_NE(log.find("\"event\":\"ledger_error\""), std::string::npos) << log;
  EXPECT_NE(log.find("in use by another loyaltyd"), std::string::npos) << log;
  EXPECT_EQ(log.find("sync_interrupted"), std::string::npos) << log;
  // The same ledger reached through a symbolic link meets the same lock.
  std::filesystem::create_symlink(dir / "ledger.db", dir / "alias.db");
  std::string alias = toml;
  alias.replace(alias.find("database = \"ledger.db\""),
                std::string("database = \"ledger.db\"").size(), "database = \"alias.db\"");
  WriteFile(dir / "alias.toml", alias);
  const std::string alias_log = (dir / "alias.log").string();
  pid_t third = Spawn({std::string(LOYALTY_BINARY_DIR) + "/agent/loyaltyd", "--config",
                       (dir / "alias.toml").string()},
                      alias_log);
  status = ReapWithin(third, 10000);
  if (status < 0) {
    SignalAndReap(third, SIGKILL);
    FAIL() << "a second loyaltyd started on the ledger through a link:\n" << ReadFile(alias_log);
  }
  EXPECT_NE(status, 0);
  EXPECT_NE(ReadFile(alias_log).find("in use by another loyaltyd"), std::string::npos)
      << ReadFile(alias_log);
  // The first sells on, healthy.
  for (const char* id : {"a2", "a3"}) {
    auto r = first.Post("/v1/checkouts/commit", {{"checkout_id", id}, {"lines", lines}});
    EXPECT_EQ(r.status, 200) << r.raw;
  }
  EXPECT_EQ(first.Get("/v1/health").body["status"], "ok");
  // Killed, the first leaves no lock behind: the next start takes the ledger.
  first.Kill();
  first.Start();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  auto again = first.Post("/v1/checkouts/commit", {{"checkout_id", "a4"}, {"lines", lines}});
  EXPECT_EQ(again.status, 200) << again.raw;
  EXPECT_EQ(first.Stop(), 0);
}

}  // namespace
}  // namespace loyalty::testing
