// The terminal's sync run against the real HQ: HqService over a real SQLite file, served in
// process over loopback mutual TLS (support/hq_server.h), reached through the client's own
// HTTPS transport, with a real ledger file and the real writer thread. Faults come from a
// seeded transport in front of the HTTPS one that loses requests before HQ sees them, loses
// responses after HQ committed, and sends requests twice.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <future>
#include <random>

#include "loyalty/checkout/views.h"
#include "loyalty/codes/mint.h"
#include "loyalty/rules/rules.h"
#include "loyalty/sqlite/sqlite.h"
#include "loyalty/sync/run.h"
#include "loyalty/sync/transport.h"
#include "support/files.h"
#include "support/hq_server.h"
#include "support/net.h"
#include "support/pki.h"
#include "sync_local.h"

namespace loyalty::agent {
namespace {

using nlohmann::json;
using testing::InProcessHq;

constexpr char kTerminal[] = "T01";
constexpr char kWechatId[] = "100000000042";  // the member's channel number at the till
constexpr int64_t kT0 = 1795000030;           // 2026-11-18T11:07:10Z

// In front of the transport to HQ: each request, by a seeded roll, is lost before HQ sees
// it, answered by HQ and then lost on the way back, or sent twice (the second answer
// returned); fault_percent of requests meet one of the three. Records the largest body sent.
class FaultyTransport final : public sync::Transport {
 public:
  FaultyTransport(sync::Transport& hq, uint64_t seed, int fault_percent)
      : hq_(hq), rng_(seed), fault_percent_(fault_percent) {}

  Result<sync::Exchange> Send(std::string_view method, std::string_view target,
                              std::string_view content_type, std::string_view body,
                              int timeout_ms) override {
    largest_body_ = std::max(largest_body_, body.size());
    int roll = static_cast<int>(rng_() % 100);
    if (roll < fault_percent_ / 3) {
      ++faults_;
      return Status::Error(ErrorCode::kUnavailable, "cut before HQ saw the request");
    }
    auto r = hq_.Send(method, target, content_type, body, timeout_ms);
    if (!r.ok()) return r;
    if (roll < 2 * fault_percent_ / 3) {
      ++faults_;
      hq_.Reset();
      return Status::Error(ErrorCode::kUnavailable, "cut after HQ answered");
    }
    if (roll < fault_percent_) {
      ++faults_;
      r = hq_.Send(method, target, content_type, body, timeout_ms);
    }
    return r;
  }
  void Reset() override { hq_.Reset(); }

  size_t largest_body() const { return largest_body_; }
  int faults() const { return faults_; }

 private:
  sync::Transport& hq_;
  std::mt19937_64 rng_;
  int fault_percent_;
  size_t largest_body_ = 0;
  int faults_ = 0;
};

class SyncRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pki = testing::TestPki::Create({kTerminal});
    ASSERT_TRUE(pki.ok()) << pki.status().ToString();
    pki_ = std::move(*pki);
    clock_.set_now_s(kT0);
    testing::InProcessHqOptions hq_options;
    hq_options.pki = pki_.get();
    hq_options.clock = &clock_;
    hq_ = std::make_unique<InProcessHq>(dir_ / "hq", hq_options);
    member_ = hq_->CreateMember();
    ASSERT_FALSE(member_.empty());
    member_id_ = std::stoull(member_);

    sync::HqEndpoint e;
    e.host = "127.0.0.1";
    e.port = hq_->port();
    e.ca_file = pki_->ca_file();
    e.cert_file = pki_->client(kTerminal).cert_file;
    e.key_file = pki_->client(kTerminal).key_file;
    auto t = sync::NewHqTransport(e);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    https_ = std::move(*t);

    codes::CodesConfig cc;
    cc.hq_public_keys[1] = codes::Ed25519PublicFromSeed(std::string(32, '\x01'));
    cc.channels.push_back({"wechat", "^[0-9]{12}$"});
    auto v = codes::CodeVerifier::Create(cc);
    ASSERT_TRUE(v.ok());
    verifier_ = std::move(*v);
    tz_ = *TimeZone::Load("Asia/Shanghai");
    service_ = std::make_unique<checkout::CheckoutService>(
        checkout::ServiceOptions{kTerminal, "S001"}, clock_, *verifier_, trusted_, tz_,
        std::make_shared<rules::Rules>(rules::Rules::Defaults()));
    OpenTerminal();
  }
  void TearDown() override {
    sqlite::ClearStepFaults();
    CloseTerminal();
    https_.reset();
    hq_.reset();
  }

  std::string Db() const { return (dir_ / "ledger.db").string(); }
  // The terminal's ledger knows the member's channel number (the member row itself comes
  // from HQ at the first sync, or is there from before).
  void OpenTerminal() {
    auto l = ledger::Ledger::Open(Db(), ledger::Ledger::Mode::kWriter, kTerminal);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    ASSERT_TRUE((*l)->Begin().ok());
    ASSERT_TRUE((*l)->PutIdentity("wechat", kWechatId, member_id_).ok());
    if (!(*l)->GetMember(member_id_).value()) {
      ledger::MemberRow m;
      m.member_id = member_id_;
      m.snapshot_at_s = kT0;
      ASSERT_TRUE((*l)->UpsertMember(m).ok());
    }
    ASSERT_TRUE((*l)->Commit().ok());
    writer_ = std::make_unique<checkout::LedgerWriter>(std::move(*l));
    local_ = std::make_unique<SyncLocal>(SyncLocalOptions{Db(), kTerminal, "S001", "test"},
                                         *writer_, *service_, clock_, tz_,
                                         [this](const json& r) { rules_seen_.push_back(r); });
  }
  void CloseTerminal() {
    local_.reset();
    if (writer_) writer_->Stop();
    writer_.reset();
  }
  void RemoveTerminalDatabase() {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(Db() + suffix);
  }  // The terminal's disk is lost: a fresh, empty ledger, then one run (the restore).
  sync::RunRecord LoseTheDiskAndRun() {
    CloseTerminal();
    RemoveTerminalDatabase();
    OpenTerminal();
    return Run();
  }

  json Commit(const std::string& checkout_id, int64_t cents, int lines_in_basket = 1) {
    std::promise<Result<checkout::CommitOutcome>> p;
    json lines = json::array();
    for (int i = 0; i < lines_in_basket; ++i)
      lines.push_back({{"sku", "SKU-" + std::to_string(i)},
                       {"qty", 1},
                       {"unit_price_cents", cents},
                       {"category", "grocery"}});
    json body{{"checkout_id", checkout_id}, {"member_code", kWechatId}, {"lines", lines}};
    writer_->Post([&](ledger::Ledger& w) { p.set_value(service_->Commit(w, body)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    clock_.advance_ms(1000);
    return r.ok() ? json::parse(checkout::ViewJson(*r)) : json();
  }

  // One transaction on the terminal's writer thread.
  void OnWriter(const std::function<void(ledger::Ledger&)>& f) {
    std::promise<void> done;
    writer_->Post([&](ledger::Ledger& w) {
      if (w.Begin().ok()) {
        f(w);
        EXPECT_TRUE(w.Commit().ok());
      } else {
        ADD_FAILURE() << "cannot begin a transaction on the writer";
      }
      done.set_value();
    });
    done.get_future().get();
  }

  sync::RunRecord Run(sync::Transport& t) {
    sync::RunOptions o;
    o.terminal_id = kTerminal;
    o.jitter_seed = 7;
    o.max_attempts = 4;
    o.sleep = [](int64_t) {};
    o.log = [this](const std::string& event, const json&) { logged_.push_back(event); };
    sync::SyncRun run(*local_, t, clock_, o);
    return run.Execute("run-" + std::to_string(++runs_));
  }
  sync::RunRecord Run() {
    FaultyTransport clean(*https_, 1, 0);
    return Run(clean);
  }

  // One run while every step of the statements whose SQL contains `sql` fails with an I/O
  // error (the ledger's step fault seam; HQ's store shares it, hence fragments only the
  // terminal's statements contain): the run met the fault and failed with it.
  void RunWithFailingRead(const char* sql) {
    sqlite::InjectStepFault({sql, 1, -1, SQLITE_IOERR});
    auto r = Run();
    const int fired = sqlite::StepFaultsFired();
    sqlite::ClearStepFaults();
    EXPECT_GT(fired, 0) << sql;
    EXPECT_EQ(r.result, "failed");
    EXPECT_NE(r.error.find("I/O"), std::string::npos) << r.error;
  }

  // Reads through a reader of its own, as loyaltyctl would.
  template <typename F>
  auto Read(F f) {
    auto r = ledger::Ledger::Open(Db(), ledger::Ledger::Mode::kReader, kTerminal);
    EXPECT_TRUE(r.ok());
    return f(**r);
  }

  // An adjustment of the member's points at HQ (a WeChat shop's, say): the changes feed
  // carries the member's new snapshot.
  void AdjustAtHq(const std::string& adjustment_id, int64_t points,
                  const std::string& reason = "wechat shop") {
    auto adj =
        hq_->Admin("POST", "/v1/members/" + member_ + "/adjustments",
                   json{{"adjustment_id", adjustment_id}, {"points", points}, {"reason", reason}});
    ASSERT_EQ(adj.status, 201) << adj.raw;
  }

  // What HQ holds, through its admin API.
  int64_t HqEntries() { return hq_->Terminal(kTerminal).value("entries", int64_t{0}); }
  int64_t HqCheckouts() { return hq_->Terminal(kTerminal).value("checkouts", int64_t{0}); }
  json HqConflicts() { return hq_->Terminal(kTerminal).value("conflicts", json::array()); }
  int64_t HqBalance() { return hq_->Member(member_).value("balance", int64_t{-1}); }

  void ExpectConverged() {
    const int64_t hq_entries = HqEntries(), hq_balance = HqBalance();
    Read([&](ledger::Ledger& l) {
      EXPECT_EQ(l.PendingEntryCount().value(), 0);
      EXPECT_EQ(l.EntryCount().value() + l.BranchEntryCount().value(), hq_entries);
      EXPECT_EQ(l.GetMember(member_id_).value()->balance, hq_balance);
      auto rep = l.Verify();
      EXPECT_TRUE(rep.ok()) << (rep.problems.empty() ? "" : rep.problems[0]);
      return 0;
    });
  }

  testing::TempDir dir_{"sync_run_test"};
  std::unique_ptr<testing::TestPki> pki_;
  FakeClock clock_;
  std::unique_ptr<InProcessHq> hq_;
  std::unique_ptr<sync::Transport> https_;
  std::string member_;  // HQ's id of the member, as text
  uint64_t member_id_ = 0;
  codes::TrustedTime trusted_;
  std::unique_ptr<codes::CodeVerifier> verifier_;
  TimeZone tz_ = TimeZone::Utc();
  std::unique_ptr<checkout::CheckoutService> service_;
  std::unique_ptr<checkout::LedgerWriter> writer_;
  std::unique_ptr<SyncLocal> local_;
  int runs_ = 0;
  std::vector<std::string> logged_;  // the events of the runs, in order
  std::vector<json> rules_seen_;     // the rules of each page applied, as HQ sent them
};

TEST_F(SyncRunTest, UploadsPendingEntriesOnceAndThenFindsTheSetsEqual) {
  for (int i = 0; i < 3; ++i) Commit("c" + std::to_string(i), 10000);
  auto r = Run();
  ASSERT_EQ(r.result, "ok") << r.error;
  EXPECT_EQ(r.uploaded, 3);
  EXPECT_EQ(HqEntries(), 3);
  EXPECT_EQ(HqCheckouts(), 3);
  ExpectConverged();
  EXPECT_EQ(HqBalance(), 300);
  auto again = Run();
  ASSERT_EQ(again.result, "ok") << again.error;
  EXPECT_EQ(again.uploaded, 0);
  EXPECT_EQ(again.repaired, 0);
  // hello, changes, and one round trip per reconciled set.
  EXPECT_EQ(again.round_trips, 4);
  EXPECT_GT(again.bytes_sent, 0);
  EXPECT_EQ(HqEntries(), 3);
  auto runs = Read([](ledger::Ledger& l) { return l.RecentSyncRuns(10).value(); });
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].run_id, "run-2");
  EXPECT_EQ(runs[0].result, "ok");
  EXPECT_EQ(runs[1].uploaded, 3);
}

// bytes_sent counts the body bytes that reached HQ (hq-and-sync.md, "Targets": the bytes
// exchanged with HQ): a run whose every connection is refused sent none, whatever it tried.
TEST_F(SyncRunTest, ARunThatNeverReachesHqCountsNoBytesSent) {
  Commit("c-unsent", 10000);
  auto dead = sync::NewHttpTransport("127.0.0.1", testing::FreePort(), "");
  auto r = Run(*dead);
  EXPECT_EQ(r.result, "failed");
  EXPECT_EQ(r.round_trips, 0);
  EXPECT_EQ(r.bytes_sent, 0);
  EXPECT_EQ(r.bytes_received, 0);
  // Through the real transport to HQ, every byte of every body is counted.
  auto live = Run(*https_);
  ASSERT_EQ(live.result, "ok") << live.error;
  EXPECT_GT(live.bytes_sent, 0);
  EXPECT_EQ(live.uploaded, 1);
}

TEST_F(SyncRunTest, UploadBatchesStayUnderHqsBodyLimitWhateverTheirSize) {
  // 40 checkouts of 200 one-yuan lines (20 points each, far from the velocity limit): one
  // 500-entry batch would be several MiB, and HQ refuses a body over 1 MiB with 413.
  for (int i = 0; i < 40; ++i) Commit("big" + std::to_string(i), 10, 200);
  FaultyTransport t(*https_, 1, 0);
  auto r = Run(t);
  ASSERT_EQ(r.result, "ok") << r.error;
  EXPECT_GT(r.bytes_sent, int64_t{1} << 20);  // more than one body could carry
  EXPECT_LE(t.largest_body(), size_t{1} << 20);
  EXPECT_EQ(r.uploaded, 40);
  EXPECT_EQ(HqEntries(), 40);
  EXPECT_EQ(HqCheckouts(), 40);
  EXPECT_TRUE(HqConflicts().empty()) << HqConflicts().dump();
  EXPECT_EQ(HqBalance(), 800);
  ExpectConverged();
}

// A sale the terminal priced for a member its own velocity freeze had just frozen (it earns
// nothing) travels in the same upload as that freeze: HQ must price it as the terminal did,
// not refuse it.
TEST_F(SyncRunTest, ASaleAfterTheTerminalsOwnVelocityFreezeIsAcceptedInTheSameUpload) {
  Commit("v1", 300000);  // 3,000 points
  Commit("v2", 300000);  // 3,000 more within the hour: past 5,000, frozen at this terminal
  auto frozen_sale = Commit("v3", 10000);
  EXPECT_EQ(frozen_sale["points_to_earn"], 0) << frozen_sale.dump();
  EXPECT_EQ(frozen_sale["member"]["status"], "frozen") << frozen_sale.dump();
  auto r = Run();
  ASSERT_EQ(r.result, "ok") << r.error;
  EXPECT_EQ(r.uploaded, HqEntries());
  EXPECT_TRUE(HqConflicts().empty()) << HqConflicts().dump();
  EXPECT_EQ(hq_->Member(member_)["status"], "frozen");
  ExpectConverged();
}

// HQ judges a record with the entries that carry its points in the same upload, so an
// upload batch never ends inside one commit's entries: it ends before the commit, or, when
// that commit is all the batch would hold, after it.
TEST_F(SyncRunTest, AnUploadBatchNeverEndsInsideOneCommit) {
  Commit("v1", 300000);  // seq 1
  Commit("v2", 300000);  // seq 2 earn, seq 3 the terminal's velocity freeze
  Commit("v3", 10000);   // seq 4
  auto seqs = [&](int64_t after, size_t limit) {
    auto b = local_->NextUploadBatch(after, limit);
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    std::vector<std::pair<int64_t, std::string>> out;
    if (b.ok())
      for (const auto& e : b->request.entries) out.emplace_back(e.seq, e.checkout_id);
    std::set<std::string> records;
    if (b.ok())
      for (const auto& c : b->request.checkouts) records.insert(c.checkout_id);
    for (const auto& [seq, checkout] : out) EXPECT_TRUE(records.count(checkout)) << seq;
    return out;
  };
  using Seqs = std::vector<std::pair<int64_t, std::string>>;
  EXPECT_EQ(seqs(0, 1), (Seqs{{1, "v1"}}));
  EXPECT_EQ(seqs(0, 2), (Seqs{{1, "v1"}}));  // not v2's earn without its freeze
  EXPECT_EQ(seqs(0, 3), (Seqs{{1, "v1"}, {2, "v2"}, {3, "v2"}}));
  EXPECT_EQ(seqs(1, 1), (Seqs{{2, "v2"}, {3, "v2"}}));  // the commit is the whole batch
  EXPECT_EQ(seqs(1, 2), (Seqs{{2, "v2"}, {3, "v2"}}));
  EXPECT_EQ(seqs(1, 500), (Seqs{{2, "v2"}, {3, "v2"}, {4, "v3"}}));
  EXPECT_EQ(seqs(3, 1), (Seqs{{4, "v3"}}));
  // Entries the reconciliation asks for by id bring the rest of their commit.
  auto v2 = Read([](ledger::Ledger& l) { return l.EntriesForCheckout("v2").value(); });
  ASSERT_EQ(v2.size(), 2u);
  for (const auto& one : v2) {
    auto req = local_->EntriesForUpload({one.entry_id});
    ASSERT_TRUE(req.ok()) << req.status().ToString();
    Seqs got;
    for (const auto& e : req->entries) got.emplace_back(e.seq, e.checkout_id);
    EXPECT_EQ(got, (Seqs{{2, "v2"}, {3, "v2"}}));
    ASSERT_EQ(req->checkouts.size(), 1u);
    EXPECT_EQ(req->checkouts[0].checkout_id, "v2");
  }
}

// A refund that moved points travels with its own entries, never ahead of them with an
// earlier refund of its sale (HQ would judge it without its clawback and refuse it).
TEST_F(SyncRunTest, ARefundThatMovedPointsTravelsWithItsOwnEntries) {
  Commit("two", 10000, 2);  // seq 1: 200 points over two lines
  for (const char* rid : {"r-two-0", "r-two-1"}) {
    std::promise<Result<checkout::RefundOutcome>> p;
    const int line = rid[6] - '0';
    writer_->Post([&](ledger::Ledger& w) {
      p.set_value(service_->Refund(w, json{{"refund_id", rid},
                                           {"checkout_id", "two"},
                                           {"lines", {{{"line", line}, {"qty", 1}}}}}));
    });
    auto f = p.get_future().get();
    ASSERT_TRUE(f.ok()) << f.status().ToString();
  }
  {
    auto b = local_->NextUploadBatch(1, 1);  // seq 2, r-two-0's clawback, alone
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    ASSERT_EQ(b->request.entries.size(), 1u);
    EXPECT_EQ(b->request.entries[0].refund_id, "r-two-0");
    ASSERT_EQ(b->request.refunds.size(), 1u);
    EXPECT_EQ(b->request.refunds[0].refund_id, "r-two-0");
  }
  auto r = Run();
  ASSERT_EQ(r.result, "ok") << r.error;
  EXPECT_TRUE(HqConflicts().empty()) << HqConflicts().dump();
  EXPECT_EQ(HqBalance(), 0);
  ExpectConverged();
}

// A terminal whose cached balance drifted from HQ's without a change at HQ (its member row
// and lots changed outside any sync: nothing in HQ's changes feed will replace them) gets
// HQ's balance back from the balance reconciliation, with a `correction` entry that says
// what it held.
TEST_F(SyncRunTest, ADifferingBalanceIsReplacedByHqsWithACorrection) {
  Commit("c1", 10000);
  ASSERT_EQ(Run().result, "ok");
  ASSERT_EQ(HqBalance(), 100);
  OnWriter([&](ledger::Ledger& w) {
    auto m = w.GetMember(member_id_).value();
    ASSERT_TRUE(m);
    model::Lot lot;
    lot.member_id = member_id_;
    lot.points = lot.remaining = 500;
    lot.earned_at_s = kT0;
    lot.expires_at_s = kT0 + 365 * 86400;
    ASSERT_TRUE(w.AddLot(lot).ok());
    m->balance += 500;
    ASSERT_TRUE(w.UpsertMember(*m).ok());
  });
  auto r = Run();
  ASSERT_EQ(r.result, "ok") << r.error;
  EXPECT_EQ(r.repaired, 1);
  Read([&](ledger::Ledger& l) {
    EXPECT_EQ(l.GetMember(member_id_).value()->balance, 100);
    auto recent = l.RecentEntries(member_id_, 1).value();
    EXPECT_EQ(recent[0].kind, "correction");
    EXPECT_EQ(recent[0].points, 0);
    EXPECT_EQ(json::parse(recent[0].detail),
              json({{"terminal_balance", 600}, {"hq_balance", 100}}));
    return 0;
  });
  // The correction itself (0 points) reaches HQ at the next run: earn + correction.
  ASSERT_EQ(Run().result, "ok");
  EXPECT_EQ(HqEntries(), 2);
  EXPECT_EQ(HqBalance(), 100);
  ExpectConverged();
}

// pos-api.md: snapshot_at is HQ's time at the last sync that delivered *or confirmed* the
// member. A member HQ has no change for is not sent again, yet an ok run (its download
// complete, its balances reconciled) confirms it: the member is not stale while the hourly
// runs succeed, and becomes stale only stale_after_s after the last ok one.
TEST_F(SyncRunTest, AnOkRunConfirmsEveryHeldMemberSoAnUnchangedOneIsNotStale) {
  Commit("c1", 10000);
  ASSERT_EQ(Run().result, "ok");
  auto view = [&] {
    return Read([&](ledger::Ledger& l) { return service_->GetMember(l, member_).value(); });
  };
  const int64_t delivered = *view().member.member.snapshot_at_s;
  EXPECT_FALSE(view().member.stale);

  clock_.advance_ms(3 * 3600 * 1000);  // past stale_after_s (7200) with no ok run
  EXPECT_TRUE(view().member.stale);
  EXPECT_EQ(*view().member.member.snapshot_at_s, delivered);

  // A run that fails confirms nothing.
  FaultyTransport dead(*https_, 3, 300);  // every request lost before HQ sees it
  ASSERT_EQ(Run(dead).result, "failed");
  EXPECT_TRUE(view().member.stale);
  EXPECT_EQ(*view().member.member.snapshot_at_s, delivered);

  // An ok run with nothing to send for the member: confirmed at the run's start, HQ's time.
  const int64_t run_at = clock_.now_ms() / 1000;
  auto r = Run();
  ASSERT_EQ(r.result, "ok") << r.error;
  EXPECT_EQ(r.downloaded, 0);  // confirmed, not delivered
  EXPECT_FALSE(view().member.stale);
  EXPECT_EQ(*view().member.member.snapshot_at_s, run_at);
  // Its data is untouched: the balance is HQ's, the snapshot's own balance unchanged.
  Read([&](ledger::Ledger& l) {
    EXPECT_EQ(l.GetMember(member_id_).value()->balance, HqBalance());
    return 0;
  });
  // A later ok run of an earlier HQ time (HQ's clock stepped back) never moves it back.
  OnWriter([&](ledger::Ledger& w) { ASSERT_TRUE(w.ConfirmMembers(run_at - 600).ok()); });
  EXPECT_EQ(*view().member.member.snapshot_at_s, run_at);

  clock_.advance_ms(7201 * 1000);
  EXPECT_TRUE(view().member.stale);
}

// hq-and-sync.md, "Download": HQ-side entries (adjustments, expiries, unfreezes, tier
// changes) come down with the member. The terminal shows them in the member's recent
// entries beside its own, newest first; they are not its chain (nothing to upload, the chain
// still verifies) and their points are the snapshot's, never counted twice.
TEST_F(SyncRunTest, HqSideEntriesComeDownWithTheMemberAndShowBesideTheTerminals) {
  Commit("c1", 10000);
  ASSERT_EQ(Run().result, "ok");
  const int64_t before = HqBalance();
  clock_.advance_ms(60 * 1000);
  AdjustAtHq("wx-1", 700);
  clock_.advance_ms(60 * 1000);
  auto tier = hq_->Admin("POST", "/v1/members/" + member_ + "/tier", json{{"tier", "black"}});
  ASSERT_EQ(tier.status, 200) << tier.raw;
  clock_.advance_ms(60 * 1000);
  Commit("c2", 10000);
  auto r = Run();
  ASSERT_EQ(r.result, "ok") << r.error;
  EXPECT_EQ(r.repaired, 0);

  auto detail = Read([&](ledger::Ledger& l) { return service_->GetMember(l, member_).value(); });
  std::vector<std::string> kinds;
  for (const auto& e : detail.recent_entries) kinds.push_back(e.kind);
  EXPECT_EQ(kinds, (std::vector<std::string>{"earn", "tier_change", "adjust", "earn"}));
  EXPECT_EQ(detail.recent_entries[2].points, 700);
  EXPECT_EQ(detail.member.member.balance, HqBalance());
  EXPECT_EQ(HqBalance(), before + 700 + detail.recent_entries[0].points);
  EXPECT_EQ(detail.member.member.tier, "black");
  ExpectConverged();
  // Another run: nothing of HQ's goes back up, and the list is the same.
  ASSERT_EQ(Run().result, "ok");
  EXPECT_EQ(HqEntries(), 2);
  auto again = Read([&](ledger::Ledger& l) { return service_->GetMember(l, member_).value(); });
  EXPECT_EQ(again.recent_entries.size(), 4u);
}

// hq-and-sync.md, "Refused is not lost": the terminal's balance for a member with an entry HQ
// refused is corrected with a correction entry, as for any other difference, also when the
// member's snapshot comes down in the same run (HQ changed the member meanwhile) and already
// counts the refusal, so that the reconciliation after it finds nothing to repair.
TEST_F(SyncRunTest, ARefusedEntryIsCorrectedWithACorrectionWhenTheSnapshotComesInTheSameRun) {
  Commit("c1", 10000);
  ASSERT_EQ(Run().result, "ok");
  // Rules HQ never published: HQ cannot price the next sale and refuses its earn entry.
  auto local_rules = std::make_shared<rules::Rules>(rules::Rules::Defaults());
  local_rules->version = "store-local-1";
  service_->SetRules(local_rules);
  Commit("c2", 10000);
  const int64_t held =
      Read([&](ledger::Ledger& l) { return l.GetMember(member_id_).value()->balance; });
  ASSERT_GT(held, HqBalance());
  // HQ changes the member, so the member is sent in the run that uploads the refused entry.
  AdjustAtHq("adj-1", 40, "shop");
  auto r = Run();
  ASSERT_EQ(r.result, "ok") << r.error;
  ASSERT_FALSE(HqConflicts().empty());
  for (const auto& c : HqConflicts()) EXPECT_EQ(c["kind"], "entry_refused") << HqConflicts().dump();
  Read([&](ledger::Ledger& l) {
    EXPECT_EQ(l.GetMember(member_id_).value()->balance, HqBalance());
    auto recent = l.RecentEntries(member_id_, 1).value();
    EXPECT_EQ(recent.size(), 1u);
    if (recent.empty()) return 0;
    EXPECT_EQ(recent[0].kind, "correction");
    EXPECT_EQ(recent[0].points, 0);
    if (recent[0].kind == "correction")
      EXPECT_EQ(json::parse(recent[0].detail),
                json({{"terminal_balance", held}, {"hq_balance", HqBalance()}}));
    EXPECT_FALSE(l.GetMeta("refused_pending").value().value_or("{}").find(member_) !=
                 std::string::npos);  // corrected: nothing pending
    return 0;
  });
  service_->SetRules(std::make_shared<rules::Rules>(rules::Rules::Defaults()));
  ASSERT_EQ(Run().result, "ok");  // the correction goes up; nothing more to repair
  ExpectConverged();
}

// Eviction (sync/PROTOCOL.md): a member who has not shopped at the store within
// member_scope_months (12) is dropped from the terminal once HQ has their entries, HQ
// forgets the holding, and the balance sets still agree: nothing to repair.
TEST_F(SyncRunTest, AMemberWhoLeftTheStoresScopeIsDroppedAndTheSetsStillAgree) {
  Commit("c1", 10000);
  ASSERT_EQ(Run().result, "ok");
  ASSERT_EQ(HqBalance(), 100);
  clock_.advance_ms(int64_t{13} * 31 * 86'400'000);
  trusted_.RecordHqTime(clock_.now_ms(), clock_.mono_ms());
  auto r = Run();
  ASSERT_EQ(r.result, "ok") << r.error;
  EXPECT_EQ(r.repaired, 0);
  Read([&](ledger::Ledger& l) {
    EXPECT_FALSE(l.GetMember(member_id_).value().has_value());
    EXPECT_EQ(l.LookupIdentity("wechat", kWechatId).value(), std::nullopt);
    EXPECT_EQ(l.EntryCount().value(), 1);  // the sale's entry stays in the ledger
    return 0;
  });
  // Another run: nothing named, nothing repaired, the member not sent again.
  auto again = Run();
  ASSERT_EQ(again.result, "ok") << again.error;
  EXPECT_EQ(again.repaired, 0);
  EXPECT_EQ(again.downloaded, 0);
  EXPECT_EQ(HqBalance(), 100);
}

// Phone look-up across a rotation of the store's key (docs/pos-api.md, "Phone look-up"): a
// consenting member of the store is found offline with the key of the last sync; after the
// key changes, the run asks HQ again for the members hashed with the old one, and the number
// finds them under the new key; a withdrawn consent takes the hash away at the next run.
TEST_F(SyncRunTest, PhoneLookUpFollowsTheKeyAndTheConsent) {
  ASSERT_EQ(
      hq_->Admin("PUT", "/v1/members/" + member_ + "/phone-lookup-consent", json{{"consent", true}})
          .status,
      200);
  Commit("c1", 10000);  // a sale here: the member is in the store's scope
  ASSERT_EQ(Run().result, "ok");
  auto lookup = [&](const std::string& typed) {
    return Read([&](ledger::Ledger& l) { return service_->LookupPhone(l, typed); });
  };
  auto key_of_member = [&] {
    return Read([&](ledger::Ledger& l) { return l.GetMember(member_id_).value()->phone_key_id; });
  };
  auto first = lookup("+86 138 1234 5678");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->member.member.member_id, member_id_);
  EXPECT_EQ(first->kind, codes::CodeKind::kPhone);
  const int64_t key_before = key_of_member();
  ASSERT_GT(key_before, 0);

  clock_.advance_ms(int64_t{31} * 86'400'000);
  trusted_.RecordHqTime(clock_.now_ms(), clock_.mono_ms());
  auto rotated = Run();
  ASSERT_EQ(rotated.result, "ok") << rotated.error;
  EXPECT_GE(rotated.downloaded, 1);
  EXPECT_EQ(key_of_member(), key_before + 1);
  auto again = lookup("13812345678");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->member.member.member_id, member_id_);
  auto quiet = Run();  // nothing hashed with an old key is left to ask for
  ASSERT_EQ(quiet.result, "ok") << quiet.error;
  EXPECT_EQ(quiet.downloaded, 0);

  ASSERT_EQ(hq_->Admin("PUT", "/v1/members/" + member_ + "/phone-lookup-consent",
                       json{{"consent", false}})
                .status,
            200);
  ASSERT_EQ(Run().result, "ok");
  EXPECT_EQ(key_of_member(), 0);
  auto gone = lookup("13812345678");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), ErrorCode::kMemberUnknown);
}

TEST_F(SyncRunTest, ATerminalWhoseDatabaseWasDeletedGetsItsHistoryBack) {
  for (int i = 0; i < 4; ++i) Commit("c" + std::to_string(i), 5000);
  ASSERT_EQ(Run().result, "ok");
  auto r = LoseTheDiskAndRun();
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
  ASSERT_EQ(Run().result, "ok");
  EXPECT_EQ(HqEntries(), 5);
  EXPECT_TRUE(HqConflicts().empty()) << HqConflicts().dump();
  EXPECT_EQ(hq_->Terminal(kTerminal)["chain_ok"], true);
  ExpectConverged();
}

// A restored terminal whose sales were large (80 checkouts of 500 lines: about 10 MB of
// records) gets them all back, each answer under the protocol's 8 MiB: HQ refuses (413) an
// answer that would pass it before encoding anything, and the terminal asks in halves.
TEST_F(SyncRunTest, ARestoreOfLargeSalesComesInAnswersUnderTheResponseLimit) {
  for (int i = 0; i < 80; ++i) Commit("big" + std::to_string(i), 10, 500);
  ASSERT_EQ(Run().result, "ok");
  auto r = LoseTheDiskAndRun();
  ASSERT_EQ(r.result, "ok") << r.error;
  Read([&](ledger::Ledger& l) {
    EXPECT_EQ(l.EntryCount().value(), 80);
    EXPECT_TRUE(l.GetCheckout("big0").value());
    EXPECT_TRUE(l.GetCheckout("big79").value());
    return 0;
  });
  EXPECT_LT(r.bytes_received, int64_t{40} << 20);  // a few answers, not ever-repeated ones
  ExpectConverged();
}

// hq-and-sync.md: HQ gives a restored terminal its checkouts back. A checkout made without a
// member writes no entry, so no entry brings it back: a ledger with no checkout at all, of a
// terminal HQ knows, asks for them by id a page at a time (past one page here), with their
// refunds; their ids stay taken (the same id with another body is an idempotency conflict).
TEST_F(SyncRunTest, ARestoredTerminalGetsBackItsCheckoutsMadeWithoutAMember) {
  auto on_writer = [&](const std::function<Result<json>(ledger::Ledger&)>& f) {
    std::promise<Result<json>> p;
    writer_->Post([&](ledger::Ledger& w) { p.set_value(f(w)); });
    return p.get_future().get();
  };
  auto anonymous = [](const std::string& id, int64_t cents) {
    return json{
        {"checkout_id", id},
        {"lines",
         {{{"sku", "A"}, {"qty", 2}, {"unit_price_cents", cents}, {"category", "grocery"}}}}};
  };
  constexpr int kAnonymous = sync::kMaxFetchCheckoutsWithoutEntries + 30;
  for (int i = 0; i < kAnonymous; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "a%04d", i);
    auto r = on_writer([&](ledger::Ledger& w) -> Result<json> {
      auto c = service_->Commit(w, anonymous(id, 1000 + i));
      if (!c.ok()) return c.status();
      return json::parse(checkout::ViewJson(*c));
    });
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  Commit("m1", 5000);  // one with the member: its entry brings it back
  auto refund = on_writer([&](ledger::Ledger& w) -> Result<json> {
    auto f = service_->Refund(w, json{{"refund_id", "r-a0007"},
                                      {"checkout_id", "a0007"},
                                      {"lines", {{{"line", 0}, {"qty", 1}}}}});
    if (!f.ok()) return f.status();
    return json();
  });
  ASSERT_TRUE(refund.ok()) << refund.status().ToString();
  ASSERT_EQ(Run().result, "ok");
  ASSERT_EQ(HqCheckouts(), kAnonymous + 1);

  auto r = LoseTheDiskAndRun();
  ASSERT_EQ(r.result, "ok") << r.error;
  Read([&](ledger::Ledger& l) {
    for (int i = 0; i < kAnonymous; ++i) {
      char id[16];
      std::snprintf(id, sizeof id, "a%04d", i);
      auto c = l.GetCheckout(id).value();
      EXPECT_TRUE(c) << id;
      if (!c) continue;
      EXPECT_EQ(c->total_due_cents, 2 * (1000 + i)) << id;
      EXPECT_FALSE(c->member_id) << id;
    }
    EXPECT_TRUE(l.GetCheckout("m1").value());
    auto f = l.GetRefund("r-a0007").value();
    EXPECT_TRUE(f);
    if (f) EXPECT_EQ(f->checkout_id, "a0007");
    return 0;
  });
  // The ids stay taken: the same body is the stored answer, another body a conflict.
  auto again = on_writer([&](ledger::Ledger& w) -> Result<json> {
    auto c = service_->Commit(w, anonymous("a0003", 7));
    if (!c.ok()) return c.status();
    return json();
  });
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), ErrorCode::kIdempotencyConflict);
  ExpectConverged();
  // The next run has checkouts in its ledger: it asks for none of them again.
  ASSERT_EQ(Run().result, "ok");
  EXPECT_TRUE(HqConflicts().empty()) << HqConflicts().dump();
}

TEST_F(SyncRunTest, ATerminalRestoredFromAnOlderCopyThatCommittedKeepsBothBranches) {
  Commit("c1", 5000);
  ASSERT_EQ(Run().result, "ok");
  CloseTerminal();
  std::filesystem::copy_file(Db(), dir_ / "backup.db");
  OpenTerminal();
  Commit("c2", 5000);
  Commit("c3", 5000);
  ASSERT_EQ(Run().result, "ok");
  CloseTerminal();
  RemoveTerminalDatabase();
  std::filesystem::copy_file(dir_ / "backup.db", Db());
  OpenTerminal();
  Commit("c4", 5000);  // forks the chain at seq 2
  auto r = Run();
  ASSERT_EQ(r.result, "ok") << r.error;
  Read([&](ledger::Ledger& l) {
    EXPECT_EQ(l.EntryCount().value(), 2);
    EXPECT_EQ(l.BranchEntryCount().value(), 2);
    EXPECT_TRUE(l.GetCheckout("c3").value());
    return 0;
  });
  EXPECT_EQ(HqEntries(), 4);
  EXPECT_EQ(HqBalance(), 200);  // both branches count
  ExpectConverged();
}

// Fail closed (pos-api.md): a ledger read the run needs that fails (the ledger's step
// fault seam, ledger/sqlite.h) fails the run; nothing is sent half: entries never travel
// without the checkouts they belong to.
TEST_F(SyncRunTest, AReadThatFailsWhileUploadingFailsTheRunAndSendsNothingHalf) {
  for (int i = 0; i < 3; ++i) Commit("c" + std::to_string(i), 10000);
  // The terminal's look-up of a checkout (HQ's names the terminal too).
  RunWithFailingRead("FROM checkouts WHERE checkout_id = ?");
  EXPECT_EQ(HqEntries(), 0);
  EXPECT_EQ(HqCheckouts(), 0);
  Read([](ledger::Ledger& l) {
    EXPECT_EQ(l.PendingEntryCount().value(), 3);
    return 0;
  });
  auto clean = Run();
  ASSERT_EQ(clean.result, "ok") << clean.error;
  EXPECT_EQ(HqCheckouts(), 3);
  ExpectConverged();
}

TEST_F(SyncRunTest, AReadThatFailsWhileApplyingChangesFailsTheRunAndAppliesNothing) {
  Commit("c1", 10000);
  ASSERT_EQ(Run().result, "ok");
  AdjustAtHq("adj-1", 500);
  auto cursor = [&] {
    return Read([](ledger::Ledger& l) { return l.GetMeta(ledger::kSyncCursorKey).value(); });
  };
  auto before = cursor();
  // The terminal's read of the member's last lot id, as the snapshot's lots are written
  // (HQ's store lets SQLite number its lots: no such read there).
  RunWithFailingRead("SELECT max(lot_id) FROM lots");
  Read([&](ledger::Ledger& l) {
    EXPECT_EQ(l.GetMember(member_id_).value()->balance, 100);
    EXPECT_TRUE(l.Verify().ok());
    return 0;
  });
  EXPECT_EQ(cursor(), before);
  ASSERT_EQ(Run().result, "ok");
  EXPECT_EQ(HqBalance(), 600);
  ExpectConverged();
}

// A cursor HQ refuses — here one past HQ's newest change, as a terminal holds after HQ was
// restored from an older backup — starts the download again from the beginning in the same
// run; before, every later run failed on it and the terminal never downloaded again.
TEST_F(SyncRunTest, ACursorHqRefusesStartsTheDownloadAgainInTheSameRun) {
  Commit("c1", 10000);
  ASSERT_EQ(Run().result, "ok");
  AdjustAtHq("adj-1", 500);
  {
    auto db = sqlite::Db::Open(Db(), false);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("UPDATE meta SET value = '999999999' WHERE key = 'sync_cursor'").ok());
  }
  logged_.clear();
  auto r = Run();
  ASSERT_EQ(r.result, "ok") << r.error;
  EXPECT_EQ(std::count(logged_.begin(), logged_.end(), "sync_cursor_reset"), 1);
  EXPECT_NE(Read([](ledger::Ledger& l) { return l.GetMeta(ledger::kSyncCursorKey).value(); }),
            std::optional<std::string>("999999999"));
  Read([&](ledger::Ledger& l) {
    EXPECT_EQ(l.GetMember(member_id_).value()->balance, 600);  // the adjustment arrived
    return 0;
  });
  // A run after it downloads from the cursor HQ gave, without starting again.
  logged_.clear();
  ASSERT_EQ(Run().result, "ok");
  EXPECT_EQ(std::count(logged_.begin(), logged_.end(), "sync_cursor_reset"), 0);
  ExpectConverged();
}

// HQ's answer to changes with rules this build cannot take (an earn rate below zero): the
// page is applied, the rules in force stay, and the rules are passed on as sent, for the
// daemon to say once that it refused them (rules_refused) rather than drop them unsaid.
class BadRulesTransport final : public sync::Transport {
 public:
  explicit BadRulesTransport(sync::Transport& hq) : hq_(hq) {}
  Result<sync::Exchange> Send(std::string_view method, std::string_view target,
                              std::string_view content_type, std::string_view body,
                              int timeout_ms) override {
    auto r = hq_.Send(method, target, content_type, body, timeout_ms);
    if (!r.ok() || r->status != 200 || target.find("/changes") == std::string_view::npos) return r;
    json page = json::parse(r->body);
    page["rules"]["earn_points_per_yuan"] = -1;
    r->body = page.dump();
    return r;
  }
  void Reset() override { hq_.Reset(); }

 private:
  sync::Transport& hq_;
};

TEST_F(SyncRunTest, RulesTheTerminalCannotTakeLeaveTheOnesInForceAndArePassedOn) {
  Commit("c1", 10000);
  BadRulesTransport bad(*https_);
  auto r = Run(bad);
  ASSERT_EQ(r.result, "ok") << r.error;
  ASSERT_FALSE(rules_seen_.empty());
  EXPECT_EQ(rules_seen_.back()["earn_points_per_yuan"], -1);
  EXPECT_FALSE(rules::RulesFromJson(rules_seen_.back()).ok());
  auto adopted = [&] {
    return Read([](ledger::Ledger& l) { return l.GetMeta("hq_rules").value(); });
  };
  EXPECT_EQ(adopted(), std::nullopt);
  ASSERT_EQ(Run().result, "ok");
  EXPECT_TRUE(rules::RulesFromJson(rules_seen_.back()).ok());
  EXPECT_NE(adopted(), std::nullopt);
  ExpectConverged();
}

// A snapshot whose lots do not add up to its balance (HQ's invariant broken, or a hostile
// answer): the ledger keeps balance = the sum of the lots, points over as a lot earned at
// the snapshot (with a date the POS can show), a shortfall as a debt lot that never expires.
TEST_F(SyncRunTest, LotsThatDoNotAddUpToTheBalanceKeepTheRestAsADatedLotOrADebt) {
  CloseTerminal();
  auto l = ledger::Ledger::Open(Db(), ledger::Ledger::Mode::kWriter, kTerminal);
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  auto offset = [&](int64_t t) { return tz_.UtcOffsetAt(t); };
  const int64_t expires = rules::LotExpiry(kT0, 12, offset);
  auto apply = [&](int64_t balance) {
    sync::Snapshot s;
    s.member_id = member_id_;
    s.tier = "member";
    s.status = "active";
    s.balance = balance;
    s.lots = {{300, kT0 + 86400}};
    s.snapshot_at_s = kT0;
    ASSERT_TRUE((*l)->Begin().ok());
    ASSERT_TRUE(ApplySnapshot(**l, s, tz_, 12).ok());
    ASSERT_TRUE((*l)->Commit().ok());
  };
  apply(1000);
  auto lots = (*l)->Lots(member_id_).value();
  ASSERT_EQ(lots.size(), 2u);
  int64_t sum = 0;
  for (const auto& lot : lots) {
    sum += lot.remaining;
    if (lot.remaining == 700) EXPECT_EQ(lot.expires_at_s, expires);
  }
  EXPECT_EQ(sum, 1000);
  apply(100);
  lots = (*l)->Lots(member_id_).value();
  sum = 0;
  for (const auto& lot : lots) {
    sum += lot.remaining;
    if (lot.remaining < 0) EXPECT_EQ(lot.expires_at_s, model::kNeverExpires);
  }
  EXPECT_EQ(sum, 100);
  l->reset();
  OpenTerminal();
}

TEST_F(SyncRunTest, AfterFaultsOneCleanRunEstablishesEveryInvariant) {
  const char* env = std::getenv("LOYALTY_SYNC_FAULT_ROUNDS");
  int rounds = env ? std::atoi(env) : 20;
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("LOYALTY_SYNC_SEED")) seed = std::strtoull(s, nullptr, 10);
  SCOPED_TRACE("seed " + std::to_string(seed) + " (LOYALTY_SYNC_SEED to repeat)");
  FaultyTransport faulty(*https_, seed, 60);
  for (int i = 0; i < rounds; ++i) {
    Commit("c" + std::to_string(i), 1000 + 100 * i);
    Run(faulty);  // may fail: a run is safe to interrupt and to repeat
  }
  EXPECT_GT(faulty.faults(), 0);
  auto r = Run();
  ASSERT_EQ(r.result, "ok") << r.error;
  EXPECT_EQ(HqEntries(), rounds);
  EXPECT_EQ(HqCheckouts(), rounds);
  EXPECT_TRUE(HqConflicts().empty()) << HqConflicts().dump();
  EXPECT_EQ(hq_->Terminal(kTerminal)["chain_ok"], true);
  ExpectConverged();
}

}  // namespace
}  // namespace loyalty::agent
