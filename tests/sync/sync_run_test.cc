// The terminal's sync run against an HQ kept in memory (the HQ side of PROTOCOL.md reduced
// to what a run needs), with a real ledger file, the real writer thread and a seeded
// transport that loses requests, loses responses after HQ committed, and duplicates them.
#include <gtest/gtest.h>

#include <algorithm>
#include <unistd.h>

#include <filesystem>
#include <future>
#include <map>
#include <random>

#include "loyalty/base/encoding.h"
#include "loyalty/base/hash.h"
#include "loyalty/codes/mint.h"
#include "loyalty/http/message.h"
#include "loyalty/sqlite/sqlite.h"
#include "loyalty/recon/protocol.h"
#include "loyalty/sync/run.h"
#include "sync_local.h"

namespace loyalty::agent {
namespace {

using nlohmann::json;

constexpr uint64_t kMember = 42;
constexpr int64_t kT0 = 1795000030;  // 2026-11-18T11:07:10Z

// HQ in memory: entries by id, checkouts by id, members with a base balance.
class FakeHq {
 public:
  std::map<std::string, sync::Entry> entries;
  std::map<std::string, sync::Checkout> checkouts;
  std::map<std::string, sync::Refund> refunds;
  std::map<uint64_t, int64_t> base_balance;  // HQ's own credits (adjustments)
  int conflicts = 0;
  int64_t version = 0;

  int64_t Balance(uint64_t m) const {
    int64_t b = base_balance.count(m) ? base_balance.at(m) : 0;
    for (const auto& [id, e] : entries)
      if (e.member_id == m) b += e.points;
    return b;
  }
  sync::Snapshot Snap(uint64_t m) const {
    sync::Snapshot s;
    s.member_id = m;
    s.balance = Balance(m);
    if (s.balance != 0) s.lots.push_back({s.balance, s.balance > 0 ? int64_t{1893456000} : int64_t{0}});
    s.snapshot_at_s = kT0;
    for (const auto& [id, e] : entries) s.terminal_seq = std::max(s.terminal_seq, e.seq);
    return s;
  }

  recon::MemoryStore EntrySet() const {
    recon::MemoryStore st;
    for (const auto& [id, e] : entries) {
      recon::Item it;
      it.id = *HexDecode(e.entry_id);
      std::copy(e.hash.begin(), e.hash.end(), it.hash.begin());
      EXPECT_TRUE(st.Add(it).ok());
    }
    return st;
  }
  recon::MemoryStore BalanceSet() const {
    recon::MemoryStore st;
    for (const auto& [m, b] : base_balance) EXPECT_TRUE(st.Add(recon::MemberBalanceItem(std::to_string(m), Balance(m), 0)).ok());
    return st;
  }

  sync::Exchange Handle(std::string_view method, std::string_view target, std::string_view body) {
    auto t = http::ParseTarget(target);
    std::string route = t->path.substr(std::string("/v1/sync/T01/").size());
    auto ok = [](const std::string& b) { return sync::Exchange{200, "application/json", b}; };
    if (route == "hello") {
      sync::HelloResponse r;
      r.hq_time_ms = kT0 * 1000;
      r.terminal_known = !entries.empty();
      r.hq_entries = static_cast<int64_t>(entries.size());
      return ok(sync::SerializeMessage(r));
    }
    if (route == "entries") {
      auto req = sync::ParseMessage<sync::UploadRequest>(body);
      EXPECT_TRUE(req.ok()) << req.status().ToString();
      sync::UploadResponse resp;
      for (const auto& e : req->entries) {
        auto it = entries.find(e.entry_id);
        std::string status = "created";
        if (it != entries.end()) {
          status = it->second.hash == e.hash ? "exists" : "conflict";
          if (status == "conflict") ++conflicts;
        } else {
          entries[e.entry_id] = e;
          ++version;
        }
        resp.results.push_back({e.entry_id, status});
      }
      for (const auto& c : req->checkouts) checkouts.emplace(c.checkout_id, c);
      for (const auto& r : req->refunds) refunds.emplace(r.refund_id, r);
      return ok(sync::SerializeMessage(resp));
    }
    if (route == "changes") {
      sync::ChangesResponse r;
      r.cursor = std::to_string(version);
      r.hq_time_ms = kT0 * 1000;
      std::string since = t->query.count("cursor") ? t->query.at("cursor") : "";
      if (since != r.cursor)
        for (const auto& [m, b] : base_balance) r.members.push_back(Snap(m));
      return ok(sync::SerializeMessage(r));
    }
    if (route == "recon/entries" || route == "recon/balances") {
      recon::MemoryStore st = route == "recon/entries" ? EntrySet() : BalanceSet();
      auto reply = recon::Responder(st).Reply(body);
      EXPECT_TRUE(reply.ok()) << reply.status().ToString();
      return {200, "application/octet-stream", *reply};
    }
    if (route == "fetch") {
      auto req = sync::ParseMessage<sync::FetchRequest>(body);
      sync::FetchResponse r;
      for (const auto& id : req->entry_ids) {
        auto it = entries.find(id);
        if (it == entries.end()) continue;
        r.entries.push_back(it->second);
        if (checkouts.count(it->second.checkout_id)) r.checkouts.push_back(checkouts.at(it->second.checkout_id));
      }
      return ok(sync::SerializeMessage(r));
    }
    if (route == "members") {
      auto req = sync::ParseMessage<sync::MembersRequest>(body);
      sync::MembersResponse r;
      for (uint64_t m : req->member_ids) r.members.push_back(Snap(m));
      return ok(sync::SerializeMessage(r));
    }
    return {404, "application/json", R"({"error":{"code":"not_found","message":"no route"}})"};
  }
};

// Delivers to the fake HQ, with seeded faults: lost request, lost response after HQ
// committed, duplicated request.
class FaultyTransport final : public sync::Transport {
 public:
  FaultyTransport(FakeHq& hq, uint64_t seed, int fault_percent) : hq_(hq), rng_(seed), fault_percent_(fault_percent) {}
  Result<sync::Exchange> Send(std::string_view method, std::string_view target, std::string_view, std::string_view body,
                              int) override {
    int roll = static_cast<int>(rng_() % 100);
    if (roll < fault_percent_ / 3) return Status::Error("unavailable", "cut before HQ saw the request");
    auto r = hq_.Handle(method, target, body);
    if (roll < 2 * fault_percent_ / 3) return Status::Error("unavailable", "cut after HQ committed");
    if (roll < fault_percent_) r = hq_.Handle(method, target, body);  // duplicated request
    return r;
  }

 private:
  FakeHq& hq_;
  std::mt19937_64 rng_;
  int fault_percent_;
};

// HQ's request body limit (1 MiB): a larger upload is refused with 413, as loyalty-hq does.
class BodyLimitTransport final : public sync::Transport {
 public:
  explicit BodyLimitTransport(FakeHq& hq) : hq_(hq) {}
  Result<sync::Exchange> Send(std::string_view method, std::string_view target, std::string_view, std::string_view body,
                              int) override {
    largest = std::max(largest, body.size());
    if (body.size() > (1u << 20))
      return sync::Exchange{413, "application/json", R"({"error":{"code":"body_too_large","message":"over 1 MiB"}})"};
    return hq_.Handle(method, target, body);
  }
  size_t largest = 0;

 private:
  FakeHq& hq_;
};

class SyncRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sync_run_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    clock_.set_now_s(kT0);
    codes::CodesConfig cc;
    cc.hq_public_keys[1] = codes::Ed25519PublicFromSeed(std::string(32, '\x01'));
    cc.channels.push_back({"wechat", "^[0-9]{12}$"});
    auto v = codes::CodeVerifier::Create(cc);
    ASSERT_TRUE(v.ok());
    verifier_ = std::move(*v);
    tz_ = *TimeZone::Load("Asia/Shanghai");
    service_ = std::make_unique<checkout::CheckoutService>(checkout::ServiceOptions{"T01", "S001"}, clock_, *verifier_,
                                                           trusted_, tz_,
                                                           std::make_shared<rules::Rules>(rules::Rules::Defaults()));
    hq_.base_balance[kMember] = 0;
    OpenTerminal();
  }
  void TearDown() override {
    CloseTerminal();
    std::filesystem::remove_all(dir_);
  }

  std::string Db() const { return (dir_ / "ledger.db").string(); }
  void OpenTerminal() {
    auto l = ledger::Ledger::Open(Db(), ledger::Ledger::Mode::kWriter, "T01");
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    ASSERT_TRUE((*l)->Begin().ok());
    ASSERT_TRUE((*l)->PutIdentity("wechat", "100000000042", kMember).ok());
    if (!(*l)->GetMember(kMember).value()) {
      ledger::MemberRow m;
      m.member_id = kMember;
      m.snapshot_at_s = kT0;
      ASSERT_TRUE((*l)->UpsertMember(m).ok());
    }
    ASSERT_TRUE((*l)->Commit().ok());
    writer_ = std::make_unique<checkout::LedgerWriter>(std::move(*l));
    local_ = std::make_unique<SyncLocal>(SyncLocalOptions{Db(), "T01", "S001", "test"}, *writer_, *service_, clock_, tz_);
  }
  void CloseTerminal() {
    local_.reset();
    if (writer_) writer_->Stop();
    writer_.reset();
  }

  json Commit(const std::string& checkout_id, int64_t cents, int lines_in_basket = 1) {
    std::promise<checkout::ApiResult> p;
    json lines = json::array();
    for (int i = 0; i < lines_in_basket; ++i)
      lines.push_back({{"sku", "SKU-" + std::to_string(i)}, {"qty", 1}, {"unit_price_cents", cents}, {"category", "grocery"}});
    json body{{"checkout_id", checkout_id}, {"member_code", "100000000042"}, {"lines", lines}};
    writer_->Post([&](ledger::Ledger& w) { p.set_value(service_->Commit(w, body)); });
    auto r = p.get_future().get();
    EXPECT_EQ(r.status, 200) << r.Text();
    clock_.advance_ms(1000);
    return r.Json();
  }

  sync::RunRecord Run(sync::Transport& t) {
    sync::RunOptions o;
    o.terminal_id = "T01";
    o.jitter_seed = 7;
    o.max_attempts = 4;
    o.sleep = [](int64_t) {};
    sync::SyncRun run(*local_, t, clock_, o);
    return run.Execute("run-" + std::to_string(++runs_));
  }

  // Reads through a reader of its own, as loyaltyctl would.
  template <typename F>
  auto Read(F f) {
    auto r = ledger::Ledger::Open(Db(), ledger::Ledger::Mode::kReader, "T01");
    EXPECT_TRUE(r.ok());
    return f(**r);
  }

  void ExpectConverged() {
    Read([&](ledger::Ledger& l) {
      EXPECT_EQ(l.PendingEntryCount().value(), 0);
      EXPECT_EQ(l.EntryCount().value() + l.BranchEntryCount().value(), static_cast<int64_t>(hq_.entries.size()));
      EXPECT_EQ(l.GetMember(kMember).value()->balance, hq_.Balance(kMember));
      auto rep = l.Verify();
      EXPECT_TRUE(rep.ok()) << (rep.problems.empty() ? "" : rep.problems[0]);
      return 0;
    });
  }

  std::filesystem::path dir_;
  FakeClock clock_;
  codes::TrustedTime trusted_;
  std::unique_ptr<codes::CodeVerifier> verifier_;
  TimeZone tz_ = TimeZone::Utc();
  std::unique_ptr<checkout::CheckoutService> service_;
  std::unique_ptr<checkout::LedgerWriter> writer_;
  std::unique_ptr<SyncLocal> local_;
  FakeHq hq_;
  int runs_ = 0;
};

TEST_F(SyncRunTest, UploadsPendingEntriesOnceAndThenFindsTheSetsEqual) {
  for (int i = 0; i < 3; ++i) Commit("c" + std::to_string(i), 10000);
  FaultyTransport t(hq_, 1, 0);
  auto r = Run(t);
  ASSERT_EQ(r.result, "ok") << r.error;
  EXPECT_EQ(r.uploaded, 3);
  EXPECT_EQ(hq_.entries.size(), 3u);
  EXPECT_EQ(hq_.checkouts.size(), 3u);
  ExpectConverged();
  EXPECT_EQ(hq_.Balance(kMember), 300);
  auto again = Run(t);
  ASSERT_EQ(again.result, "ok") << again.error;
  EXPECT_EQ(again.uploaded, 0);
  EXPECT_EQ(again.repaired, 0);
  // hello, changes, and one round trip per reconciled set.
  EXPECT_EQ(again.round_trips, 4);
  EXPECT_GT(again.bytes_sent, 0);
  auto runs = Read([](ledger::Ledger& l) { return l.RecentSyncRuns(10).value(); });
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].run_id, "run-2");
  EXPECT_EQ(runs[0].result, "ok");
  EXPECT_EQ(runs[1].uploaded, 3);
}

TEST_F(SyncRunTest, UploadBatchesStayUnderHqsBodyLimitWhateverTheirSize) {
  // 40 checkouts of 200 lines: one 500-entry batch would be several MiB.
  for (int i = 0; i < 40; ++i) Commit("big" + std::to_string(i), 100, 200);
  BodyLimitTransport t(hq_);
  auto r = Run(t);
  ASSERT_EQ(r.result, "ok") << r.error;
  EXPECT_EQ(r.uploaded, static_cast<int64_t>(hq_.entries.size()));  // 40 earns and a velocity freeze
  EXPECT_EQ(hq_.checkouts.size(), 40u);
  EXPECT_LE(t.largest, size_t{1} << 20);
  ExpectConverged();
}

TEST_F(SyncRunTest, ADifferingBalanceIsReplacedByHqsWithACorrection) {
  Commit("c1", 10000);
  FaultyTransport t(hq_, 1, 0);
  ASSERT_EQ(Run(t).result, "ok");
  // An adjustment at HQ the changes feed did not carry (the cursor does not move).
  hq_.base_balance[kMember] = 500;
  auto r = Run(t);
  ASSERT_EQ(r.result, "ok") << r.error;
  EXPECT_EQ(r.repaired, 1);
  Read([&](ledger::Ledger& l) {
    EXPECT_EQ(l.GetMember(kMember).value()->balance, 600);
    auto recent = l.RecentEntries(kMember, 1).value();
    EXPECT_EQ(recent[0].kind, "correction");
    EXPECT_EQ(recent[0].points, 0);
    EXPECT_EQ(json::parse(recent[0].detail), json({{"terminal_balance", 100}, {"hq_balance", 600}}));
    return 0;
  });
  // The correction itself (0 points) reaches HQ at the next run: earn + correction.
  ASSERT_EQ(Run(t).result, "ok");
  EXPECT_EQ(hq_.entries.size(), 2u);
  ExpectConverged();
}

TEST_F(SyncRunTest, ATerminalWhoseDatabaseWasDeletedGetsItsHistoryBack) {
  for (int i = 0; i < 4; ++i) Commit("c" + std::to_string(i), 5000);
  FaultyTransport t(hq_, 1, 0);
  ASSERT_EQ(Run(t).result, "ok");
  CloseTerminal();
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(Db() + suffix);
  OpenTerminal();
  auto r = Run(t);
  ASSERT_EQ(r.result, "ok") << r.error;
  Read([&](ledger::Ledger& l) {
    EXPECT_EQ(l.EntryCount().value(), 4);
    EXPECT_EQ(l.BranchEntryCount().value(), 0);
    EXPECT_TRUE(l.GetCheckout("c2").value());  // old checkout ids stay taken
    return 0;
  });
  ExpectConverged();
  // New checkouts continue the restored chain.
  Commit("c9", 5000);
  ASSERT_EQ(Run(t).result, "ok");
  EXPECT_EQ(hq_.conflicts, 0);
  ExpectConverged();
}

TEST_F(SyncRunTest, ATerminalRestoredFromAnOlderCopyThatCommittedKeepsBothBranches) {
  Commit("c1", 5000);
  FaultyTransport t(hq_, 1, 0);
  ASSERT_EQ(Run(t).result, "ok");
  CloseTerminal();
  std::filesystem::copy_file(Db(), (dir_ / "backup.db").string());
  OpenTerminal();
  Commit("c2", 5000);
  Commit("c3", 5000);
  ASSERT_EQ(Run(t).result, "ok");
  CloseTerminal();
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(Db() + suffix);
  std::filesystem::copy_file((dir_ / "backup.db").string(), Db());
  OpenTerminal();
  Commit("c4", 5000);  // forks the chain at seq 2
  auto r = Run(t);
  ASSERT_EQ(r.result, "ok") << r.error;
  Read([&](ledger::Ledger& l) {
    EXPECT_EQ(l.EntryCount().value(), 2);
    EXPECT_EQ(l.BranchEntryCount().value(), 2);
    EXPECT_TRUE(l.GetCheckout("c3").value());
    return 0;
  });
  EXPECT_EQ(hq_.entries.size(), 4u);
  ExpectConverged();
}

// Fail closed (pos-api.md): a ledger read the run needs that fails (the ledger's step
// fault seam, ledger/sqlite.h) fails the run; nothing is sent half: entries never travel
// without the checkouts they belong to.
TEST_F(SyncRunTest, AReadThatFailsWhileUploadingFailsTheRunAndSendsNothingHalf) {
  for (int i = 0; i < 3; ++i) Commit("c" + std::to_string(i), 10000);
  FaultyTransport t(hq_, 1, 0);
  sqlite::InjectStepFault({"FROM checkouts WHERE checkout_id = ?", 1, -1, SQLITE_IOERR});
  auto r = Run(t);
  sqlite::ClearStepFaults();
  EXPECT_EQ(r.result, "failed");
  EXPECT_NE(r.error.find("I/O"), std::string::npos) << r.error;
  EXPECT_TRUE(hq_.entries.empty());
  EXPECT_TRUE(hq_.checkouts.empty());
  Read([](ledger::Ledger& l) {
    EXPECT_EQ(l.PendingEntryCount().value(), 3);
    return 0;
  });
  auto clean = Run(t);
  ASSERT_EQ(clean.result, "ok") << clean.error;
  EXPECT_EQ(hq_.checkouts.size(), 3u);
  ExpectConverged();
}

TEST_F(SyncRunTest, AReadThatFailsWhileApplyingChangesFailsTheRunAndAppliesNothing) {
  Commit("c1", 10000);
  FaultyTransport t(hq_, 1, 0);
  ASSERT_EQ(Run(t).result, "ok");
  // An adjustment at HQ that the changes feed carries.
  hq_.base_balance[kMember] = 500;
  ++hq_.version;
  auto cursor = [&] { return Read([](ledger::Ledger& l) { return l.GetMeta(ledger::kSyncCursorKey).value(); }); };
  auto before = cursor();
  sqlite::InjectStepFault({"FROM lots WHERE member_id = ? AND remaining", 1, -1, SQLITE_IOERR});
  auto r = Run(t);
  sqlite::ClearStepFaults();
  EXPECT_EQ(r.result, "failed");
  Read([](ledger::Ledger& l) {
    EXPECT_EQ(l.GetMember(kMember).value()->balance, 100);
    EXPECT_TRUE(l.Verify().ok());
    return 0;
  });
  EXPECT_EQ(cursor(), before);
  ASSERT_EQ(Run(t).result, "ok");
  ExpectConverged();
  EXPECT_EQ(hq_.Balance(kMember), 600);
}

TEST_F(SyncRunTest, AfterFaultsOneCleanRunEstablishesEveryInvariant) {
  const char* env = std::getenv("LOYALTY_SYNC_FAULT_ROUNDS");
  int rounds = env ? std::atoi(env) : 20;
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("LOYALTY_SYNC_SEED")) seed = std::strtoull(s, nullptr, 10);
  SCOPED_TRACE("seed " + std::to_string(seed) + " (LOYALTY_SYNC_SEED to repeat)");
  FaultyTransport faulty(hq_, seed, 60);
  for (int i = 0; i < rounds; ++i) {
    Commit("c" + std::to_string(i), 1000 + 100 * i);
    Run(faulty);  // may fail: a run is safe to interrupt and to repeat
  }
  FaultyTransport clean(hq_, seed, 0);
  auto r = Run(clean);
  ASSERT_EQ(r.result, "ok") << r.error;
  EXPECT_EQ(hq_.entries.size(), static_cast<size_t>(rounds));
  EXPECT_EQ(hq_.conflicts, 0);
  ExpectConverged();
}

}  // namespace
}  // namespace loyalty::agent
