// Several loyalty-hq processes on one PostgreSQL database (docs/hq.md, "Several processes"):
// real processes over mutual TLS, a switchable proxy in front of them as the load balancer.
// Terminals move between the processes from run to run; the same coupon and the same code
// spent at two stores reach HQ through both processes at once; the same upload arrives
// through both at once; a process is killed in the middle of an upload. Every invariant of
// hq-and-sync.md holds as with one process.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <thread>

#include "../hq/hq_test_util.h"
#include "e2e_fixture.h"
#include "support/hq_store.h"
#include "support/prometheus.h"

namespace loyalty::e2e {
namespace {

using hq::testing::FakeTerminal;
using hq::testing::PricedSale;
using hq::testing::Sale;

const char* kA = "T-A";
const char* kB = "T-B";
const char* kD = "T-D";  // speaks the upload message itself

class TwoHqTest : public E2eFixture {
 protected:
  TwoHqTest() : E2eFixture({kA, kB, kD}) {}

  void SetUp() override {
    E2eFixture::SetUp();
    ASSERT_TRUE(testing::HqOnPostgres()) << "runs with LOYALTY_TEST_HQ_BACKEND=postgres (ctest)";
    StartHq();
    hq2_ = std::make_unique<HqProcess>(dir_ / "hq2", *pki_, /*tls=*/true);
    hq2_->ShareStoreOf(*hq_);
    hq2_->Start();
  }
  void TearDown() override {
    if (hq2_) hq2_->Kill();
    E2eFixture::TearDown();
  }

  json Commit(TerminalProcess& t, const std::string& checkout_id, const std::string& code,
              int64_t cents, const json& extra = json::object()) {
    json req{{"checkout_id", checkout_id}, {"member_code", code}, {"lines", Basket(cents)}};
    req.update(extra);
    auto r = t.Call("POST", "/v1/checkouts/commit", req);
    EXPECT_EQ(r.status, 200) << r.raw;
    return r.body;
  }

  // Both processes answer every admin view alike, and every invariant holds.
  void ExpectConverged(const std::vector<TerminalProcess*>& ts,
                       const std::vector<Member>& members) {
    for (auto* t : ts) {
      const std::string path = std::string("/v1/terminals/") + t->options().terminal_id;
      auto v1 = hq_->Admin("GET", path), v2 = hq2_->Admin("GET", path);
      ASSERT_EQ(v1.status, 200) << v1.raw;
      EXPECT_EQ(v1.body, v2.body);
      EXPECT_EQ(v1.body["entries"].get<int64_t>(), t->LedgerEntries()) << path;
      EXPECT_TRUE(v1.body["chain_ok"].get<bool>()) << v1.raw;
    }
    for (const auto& m : members) {
      auto v1 = hq_->Admin("GET", "/v1/members/" + m.id),
           v2 = hq2_->Admin("GET", "/v1/members/" + m.id);
      ASSERT_EQ(v1.status, 200) << v1.raw;
      EXPECT_EQ(v1.body, v2.body);
      const int64_t balance = v1.body["balance"].get<int64_t>();
      EXPECT_EQ(balance, HqEntrySum(*hq_, m.id)) << "member " << m.id;
      for (auto* t : ts)
        EXPECT_EQ(t->MemberBalance(m.id), balance)
            << t->options().terminal_id << " member " << m.id;
    }
  }

  // body_a uploaded as kA through the first process and body_d as kD through the second, at
  // the same moment: both answered 200, every entry `created`.
  void UploadThroughBothAtOnce(const std::string& body_a, const std::string& body_d) {
    auto send = [&](HqProcess& hq, const char* tid, const std::string& body) {
      return hq.AsTerminal("POST", std::string("/v1/sync/") + tid + "/entries", body,
                           pki_->client(tid), pki_->ca_file());
    };
    auto r1 = std::async(std::launch::async, [&] { return send(*hq_, kA, body_a); });
    auto r2 = std::async(std::launch::async, [&] { return send(*hq2_, kD, body_d); });
    for (const Reply& r : {r1.get(), r2.get()}) {
      ASSERT_EQ(r.status, 200) << r.raw;
      for (const auto& x : r.body["results"]) ASSERT_EQ(x["status"], "created") << r.raw;
    }
  }

  int64_t Count(const std::string& sql) {
    auto n = testing::QueryIntOnTestHqStore(hq_->dir(), sql);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    return n.ok() ? *n : -1;
  }

  std::unique_ptr<HqProcess> hq2_;
};

TEST_F(TwoHqTest, TerminalsMovingBetweenProcessesConverge) {
  std::vector<Member> members{Enrol(*hq_, 1), Enrol(*hq2_, 2)};
  FaultProxy lb(hq_->port(), 1);
  auto& a = AddTerminal(Options(kA, lb.port()));
  auto& b = AddTerminal(Options(kB, lb.port()));
  int n = 0;
  for (int round = 0; round < 4; ++round) {
    for (auto* t : {&a, &b}) {
      lb.set_upstream((round + (t == &b)) % 2 ? hq2_->port() : hq_->port());
      ExpectOk(t->Sync());
      for (const auto& m : members)
        Commit(*t, t->options().terminal_id + "-" + std::to_string(++n), m.card_number,
               1000 + 700 * n);
    }
    // HQ's own changes made at either process reach both terminals.
    HqProcess& admin = round % 2 ? *hq2_ : *hq_;
    ASSERT_EQ(admin
                  .Admin("POST", "/v1/members/" + members[round % 2].id + "/adjustments",
                         json{{"adjustment_id", "adj-" + std::to_string(round)},
                              {"points", 100 + round},
                              {"reason", "wechat shop"}})
                  .status,
              201);
  }
  lb.set_upstream(hq2_->port());
  ExpectOk(a.Sync());
  lb.set_upstream(hq_->port());
  ExpectOk(b.Sync());
  ExpectOk(a.Sync());
  ExpectConverged({&a, &b}, members);
}

// The same coupon and the same dynamic code, spent offline at two stores, arrive at HQ
// through two processes at the same moment: exactly one use is applied, the other is a
// conflict, recorded once.
TEST_F(TwoHqTest, ConcurrentReuseThroughTwoProcessesIsOneUseAndOneConflict) {
  std::vector<Member> members{Enrol(*hq_, 1), Enrol(*hq_, 2)};
  const int64_t now = static_cast<int64_t>(::time(nullptr));
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(hq2_->Admin("POST", "/v1/coupons",
                          json{{"coupon_id", "cp-" + std::to_string(i)},
                               {"member_id", members[1].id},
                               {"kind", "amount_off"},
                               {"value_cents", 500},
                               {"min_spend_cents", 1000},
                               {"valid_from", now - 3600},
                               {"valid_to", now + 86400}})
                  .status,
              201);
  }
  FaultProxy to1(hq_->port(), 1), to2(hq2_->port(), 2);
  auto& a = AddTerminal(Options(kA, to1.port()));
  auto& b = AddTerminal(Options(kB, to2.port()));
  ExpectOk(a.Sync());
  ExpectOk(b.Sync());
  for (int i = 0; i < 3; ++i) {
    const std::string cp = "cp-" + std::to_string(i);
    Commit(a, "a-" + cp, members[1].card_number, 3000, {{"coupon_id", cp}});
    Commit(b, "b-" + cp, members[1].card_number, 3000, {{"coupon_id", cp}});
    std::string code = DynamicCode(members[0]);
    Commit(a, "a-code-" + std::to_string(i), code, 2000);
    Commit(b, "b-code-" + std::to_string(i), code, 2000);
  }
  // Both uploads at once, each through its own process.
  ASSERT_EQ(a.Call("POST", "/v1/sync").status, 202);
  ASSERT_EQ(b.Call("POST", "/v1/sync").status, 202);
  ExpectOk(a.Sync());  // waits for the run above, then runs again
  ExpectOk(b.Sync());
  ExpectOk(a.Sync());
  for (int i = 0; i < 3; ++i) {
    const std::string cp = "cp-" + std::to_string(i);
    EXPECT_EQ(Count("SELECT count(*) FROM coupons WHERE coupon_id = '" + cp +
                    "' AND used_by_checkout <> ''"),
              1)
        << cp;
  }
  std::map<std::string, int> kinds;
  for (const auto& m : members) {
    const Reply view = hq_->Admin("GET", "/v1/members/" + m.id);
    for (const auto& c : view.body["conflicts"]) ++kinds[c["kind"].get<std::string>()];
  }
  EXPECT_EQ(kinds["coupon_reused"], 3);
  EXPECT_EQ(kinds["code_reused"], 3);
  ExpectConverged({&a, &b}, members);
}

// One upload sent through both processes at the same moment, again and again: every entry
// is created by exactly one of them and reported `exists` by the other, and stored once.
TEST_F(TwoHqTest, TheSameUploadThroughBothProcessesAtOnceIsStoredOnce) {
  Member m = Enrol(*hq_, 1);
  const uint64_t member_id = std::stoull(m.id);
  FakeTerminal d{kD};
  const int64_t now_ms = static_cast<int64_t>(::time(nullptr)) * 1000;
  size_t sent = 0;
  for (int round = 0; round < 8; ++round) {
    sync::UploadRequest up;
    for (int i = 0; i < 5; ++i) {
      Sale s = PricedSale(d, member_id, "d-" + std::to_string(round) + "-" + std::to_string(i),
                          hq::testing::Basket(1000 + 100 * i), now_ms + round * 100 + i);
      up.entries.insert(up.entries.end(), s.entries.begin(), s.entries.end());
      up.checkouts.push_back(s.checkout);
    }
    sent += up.entries.size();
    const std::string body = sync::SerializeMessage(up);
    auto send = [&](HqProcess& hq) {
      return hq.AsTerminal("POST", std::string("/v1/sync/") + kD + "/entries", body,
                           pki_->client(kD), pki_->ca_file());
    };
    auto r1 = std::async(std::launch::async, [&] { return send(*hq_); });
    auto r2 = std::async(std::launch::async, [&] { return send(*hq2_); });
    Reply x = r1.get(), y = r2.get();
    ASSERT_EQ(x.status, 200) << x.raw;
    ASSERT_EQ(y.status, 200) << y.raw;
    ASSERT_EQ(x.body["results"].size(), up.entries.size());
    for (size_t i = 0; i < up.entries.size(); ++i) {
      std::multiset<std::string> pair{x.body["results"][i]["status"].get<std::string>(),
                                      y.body["results"][i]["status"].get<std::string>()};
      EXPECT_EQ(pair, (std::multiset<std::string>{"created", "exists"})) << round << "/" << i;
    }
  }
  EXPECT_EQ(Count(std::string("SELECT count(*) FROM entries WHERE terminal_id = '") + kD + "'"),
            static_cast<int64_t>(sent));
  auto view = hq_->Admin("GET", "/v1/members/" + m.id);
  EXPECT_EQ(view.body["balance"].get<int64_t>(), HqEntrySum(*hq_, m.id));
  EXPECT_GT(view.body["balance"].get<int64_t>(), 0);
  EXPECT_TRUE(hq2_->Admin("GET", std::string("/v1/terminals/") + kD).body["chain_ok"].get<bool>());
}

// One process answers on several workers (hq.toml `workers`: two unless set, on
// PostgreSQL), each with its own connection: a request that waits in the database — here
// T-A's upload, whose terminal lock another connection holds — holds up no other
// terminal's, and once the lock goes it is applied as any other. The process's metrics
// count what every worker answered.
TEST_F(TwoHqTest, ARequestWaitingInTheDatabaseHoldsUpNoOtherWorker) {
  hq2_->Kill();
  ASSERT_EQ(hq_->Stop(), 0);
  hq_->AddConfig("workers = 3\n");
  hq_->Start();
  Member m = Enrol(*hq_, 1);
  FakeTerminal ta{kA};
  const int64_t now_ms = static_cast<int64_t>(::time(nullptr)) * 1000;
  Sale sale = PricedSale(ta, std::stoull(m.id), "a-1", hq::testing::Basket(5000), now_ms);
  sync::UploadRequest up;
  up.entries = sale.entries;
  up.checkouts.push_back(sale.checkout);
  const std::string body = sync::SerializeMessage(up);

  // Another connection takes T-A's key (the lock an upload of T-A takes first) and keeps it.
  auto store = testing::OpenTestHqStore(hq_->dir());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  std::promise<void> locked, release;
  std::shared_future<void> released = release.get_future().share();
  auto holder = std::async(std::launch::async, [&] {
    return (*store)->SharedTransaction({std::string("t:") + kA}, [&]() -> Status {
      locked.set_value();
      released.wait();
      return Status::Ok();
    });
  });
  locked.get_future().wait();
  auto upload = std::async(std::launch::async, [&] {
    return hq_->AsTerminal("POST", std::string("/v1/sync/") + kA + "/entries", body,
                           pki_->client(kA), pki_->ca_file());
  });
  // The upload is in a worker, waiting for the lock.
  int64_t waiting = 0;
  for (int i = 0; i < 200 && waiting == 0; ++i) {
    waiting = Count("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted");
    if (waiting == 0) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_EQ(waiting, 1);
  // Meanwhile the other workers answer other terminals, and the admin API.
  for (const char* tid : {kB, kD}) {
    const std::string hello = R"({"protocol":1,"store_id":"S001","agent_version":"e2e",)"
                              R"("head":{"seq":0,"hash":""},"entries":0})";
    auto r = hq_->AsTerminal("POST", std::string("/v1/sync/") + tid + "/hello", hello,
                             pki_->client(tid), pki_->ca_file());
    EXPECT_EQ(r.status, 200) << r.raw;
  }
  EXPECT_EQ(hq_->Admin("GET", "/v1/members/" + m.id).status, 200);
  EXPECT_EQ(upload.wait_for(std::chrono::seconds(0)), std::future_status::timeout)
      << "the upload went through while its terminal's lock was held";
  release.set_value();
  ASSERT_TRUE(holder.get().ok());
  const Reply r = upload.get();
  ASSERT_EQ(r.status, 200) << r.raw;
  for (const auto& x : r.body["results"]) EXPECT_EQ(x["status"], "created") << r.raw;
  EXPECT_EQ(hq_->Admin("GET", "/v1/members/" + m.id).body["balance"].get<int64_t>(),
            HqEntrySum(*hq_, m.id));

  auto metrics = hq_->Admin("GET", "/metrics");
  ASSERT_EQ(metrics.status, 200) << metrics.raw;
  auto samples = testing::MetricSamples(metrics.raw);
  EXPECT_EQ(
      testing::MetricValue(samples, R"(loyalty_hq_sync_requests_total{route="hello",result="ok"})"),
      2)
      << metrics.raw;
  EXPECT_EQ(testing::MetricValue(samples,
                                 R"(loyalty_hq_sync_requests_total{route="entries",result="ok"})"),
            1)
      << metrics.raw;
  EXPECT_EQ(testing::MetricValue(samples, R"(loyalty_hq_upload_entries_total{status="created"})"),
            static_cast<int64_t>(up.entries.size()))
      << metrics.raw;
  EXPECT_EQ(testing::MetricValue(samples, "loyalty_hq_workers"), 3) << metrics.raw;
  EXPECT_EQ(testing::MetricValue(samples, "loyalty_hq_requests_waiting"), 0) << metrics.raw;
  // The upload, two hellos, the admin reads and this scrape, each taken by a worker once.
  EXPECT_GE(testing::MetricValue(samples, "loyalty_hq_request_wait_seconds_count"), 7)
      << metrics.raw;
}

// Two terminals selling to the same members, each uploading through its own process at the
// same moment, again and again: each upload reads and rewrites those members' balances,
// lots and month spends, so the two writes must not interleave. Every balance stays the sum
// of its member's entries and of their lots, every month spend the sum of the sales.
TEST_F(TwoHqTest, SalesOfTheSameMembersThroughBothProcessesAtOnceLoseNoPoint) {
  std::vector<Member> members{Enrol(*hq_, 1), Enrol(*hq_, 2), Enrol(*hq_, 3)};
  FakeTerminal ta{kA}, td{kD};
  const int64_t now_ms = static_cast<int64_t>(::time(nullptr)) * 1000;
  std::map<std::string, int64_t> spend;  // member id → cents sold
  for (int round = 0; round < 8; ++round) {
    auto batch = [&](FakeTerminal& t) {
      sync::UploadRequest up;
      for (size_t k = 0; k < members.size(); ++k) {
        const int64_t cents = 1000 + 100 * round + static_cast<int64_t>(k);
        Sale s =
            PricedSale(t, std::stoull(members[k].id),
                       t.id + "-" + std::to_string(round) + "-" + std::to_string(k),
                       hq::testing::Basket(cents), now_ms + round * 10 + static_cast<int64_t>(k));
        up.entries.insert(up.entries.end(), s.entries.begin(), s.entries.end());
        up.checkouts.push_back(s.checkout);
        spend[members[k].id] += s.checkout.total_due_cents;
      }
      return sync::SerializeMessage(up);
    };
    const std::string body_a = batch(ta), body_d = batch(td);
    ASSERT_NO_FATAL_FAILURE(UploadThroughBothAtOnce(body_a, body_d));
  }
  for (const auto& m : members) {
    const Reply v = hq2_->Admin("GET", "/v1/members/" + m.id);
    ASSERT_EQ(v.status, 200) << v.raw;
    const int64_t balance = v.body["balance"].get<int64_t>();
    EXPECT_GT(balance, 0);
    EXPECT_EQ(balance, HqEntrySum(*hq_, m.id)) << "member " << m.id;
    EXPECT_EQ(balance,
              Count("SELECT COALESCE(sum(remaining), 0) FROM lots WHERE member_id = " + m.id))
        << "member " << m.id;
    EXPECT_EQ(v.body["month_spend_cents"].get<int64_t>(), spend[m.id]) << "member " << m.id;
    EXPECT_EQ(v.body["entries"].get<int64_t>(), 16) << "member " << m.id;
  }
}

// A terminal's changes pages through one process while another terminal's uploads of the
// same members go through the other, at once (docs/hq.md, "Writers in parallel": a page
// locks its members and reads them again; its cursor is the sequence's end read before
// the page). Every page is consistent and the terminal ends with HQ's balances: its last
// run, once the uploads have stopped, has nothing left to repair.
TEST_F(TwoHqTest, ChangesPagesBesideUploadsOfTheSameMembersConverge) {
  std::vector<Member> members;
  for (int i = 0; i < 6; ++i) members.push_back(Enrol(*hq_, 20 + i));
  auto& a = AddTerminal(Options(kA, hq_->port()));
  ExpectOk(a.Sync());
  FakeTerminal td{kD};
  const int64_t now_ms = static_cast<int64_t>(::time(nullptr)) * 1000;
  std::atomic<bool> stop{false};
  std::atomic<int> uploads{0};
  auto uploader = std::async(std::launch::async, [&] {
    for (int round = 0; !stop && round < 200; ++round) {
      sync::UploadRequest up;
      for (size_t k = 0; k < members.size(); ++k) {
        Sale s =
            PricedSale(td, std::stoull(members[k].id),
                       std::string(kD) + "-p-" + std::to_string(round) + "-" + std::to_string(k),
                       hq::testing::Basket(1000 + 100 * static_cast<int64_t>(k)),
                       now_ms + round * 10 + static_cast<int64_t>(k));
        up.entries.insert(up.entries.end(), s.entries.begin(), s.entries.end());
        up.checkouts.push_back(s.checkout);
      }
      Reply r = hq2_->AsTerminal("POST", std::string("/v1/sync/") + kD + "/entries",
                                 sync::SerializeMessage(up), pki_->client(kD), pki_->ca_file());
      if (r.status != 200) return r.raw;
      ++uploads;
    }
    return std::string();
  });
  // Sales at the terminal too (its members join its store's scope), and runs meanwhile.
  int n = 0;
  while (uploads < 12) {
    for (const auto& m : members)
      Commit(a, std::string(kA) + "-" + std::to_string(++n), m.card_number, 1500);
    ExpectOk(a.Sync());
  }
  stop = true;
  EXPECT_EQ(uploader.get(), "");
  const json last = a.Sync();
  ExpectOk(last);
  ExpectOk(a.Sync());
  EXPECT_EQ(last.value("repaired", -1), 0) << last.dump();
  ExpectConverged({&a}, members);
}

// HQ's own chain is written by uploads running beside each other: velocity freezes of
// different members through both processes at once. Each is the next entry of one chain —
// never two entries at one seq (docs/hq.md, "Writers in parallel": LockHqChain).
TEST_F(TwoHqTest, FreezesAppendedThroughBothProcessesAtOnceKeepHqsChainOneLine) {
  FakeTerminal ta{kA}, td{kD};
  const int64_t now_ms = static_cast<int64_t>(::time(nullptr)) * 1000;
  std::vector<Member> frozen;
  for (int round = 0; round < 4; ++round) {
    auto batch = [&](FakeTerminal& t, int first_device) {
      sync::UploadRequest up;
      for (int k = 0; k < 2; ++k) {
        const Member m = Enrol(*hq_, first_device + k);
        frozen.push_back(m);
        // 6,000 points in one sale: past the 5,000 an hour the chain allows.
        Sale s = PricedSale(t, std::stoull(m.id),
                            t.id + "-v-" + std::to_string(round) + "-" + std::to_string(k),
                            hq::testing::Basket(600'000), now_ms + round * 10 + k);
        up.entries.insert(up.entries.end(), s.entries.begin(), s.entries.end());
        up.checkouts.push_back(s.checkout);
      }
      return sync::SerializeMessage(up);
    };
    const std::string body_a = batch(ta, 100 + 10 * round), body_d = batch(td, 105 + 10 * round);
    ASSERT_NO_FATAL_FAILURE(UploadThroughBothAtOnce(body_a, body_d));
  }
  const int64_t n = static_cast<int64_t>(frozen.size());
  const std::string hq = "FROM entries e WHERE e.terminal_id = '_hq'";
  EXPECT_EQ(Count("SELECT count(*) " + hq + " AND e.kind = 'freeze'"), n);
  EXPECT_EQ(Count("SELECT count(*) " + hq), Count("SELECT count(DISTINCT seq) " + hq));
  EXPECT_EQ(Count("SELECT max(seq) " + hq), Count("SELECT count(*) " + hq));
  // Each links to the one before it.
  EXPECT_EQ(Count("SELECT count(*) " + hq +
                  " AND EXISTS (SELECT 1 FROM entries p WHERE p.terminal_id = '_hq' AND "
                  "p.seq = e.seq - 1 AND p.hash = e.prev_hash)"),
            Count("SELECT count(*) " + hq) - 1);
  for (const auto& m : frozen) {
    const Reply v = hq2_->Admin("GET", "/v1/members/" + m.id);
    ASSERT_EQ(v.status, 200) << v.raw;
    EXPECT_EQ(v.body["status"], "frozen") << m.id;
    EXPECT_EQ(v.body["balance"].get<int64_t>(), HqEntrySum(*hq_, m.id)) << m.id;
  }
}

// A process killed (SIGKILL) in the middle of a terminal's upload: the terminal's next run,
// through the other process, converges with every invariant.
TEST_F(TwoHqTest, AProcessKilledMidUploadAndTheNextRunThroughTheOtherConverges) {
  std::vector<Member> members{Enrol(*hq_, 1), Enrol(*hq_, 2), Enrol(*hq_, 3)};
  FaultProxy lb(hq_->port(), 1);
  auto& a = AddTerminal(Options(kA, lb.port()));
  ExpectOk(a.Sync());
  for (int round = 0; round < 2; ++round) {
    HqProcess& victim = round == 0 ? *hq_ : *hq2_;
    HqProcess& other = round == 0 ? *hq2_ : *hq_;
    lb.set_upstream(victim.port());
    for (int i = 0; i < 150; ++i)
      Commit(a, "a-" + std::to_string(round) + "-" + std::to_string(i),
             members[static_cast<size_t>(i) % members.size()].card_number, 1000 + i);
    ASSERT_EQ(a.Call("POST", "/v1/sync").status, 202);
    std::this_thread::sleep_for(std::chrono::milliseconds(60 + 90 * round));
    victim.Kill();
    lb.set_upstream(other.port());
    ExpectOk(a.Sync());  // waits for the interrupted run, then runs through the other
    victim.Start();
  }
  ExpectOk(a.Sync());
  ExpectConverged({&a}, members);
}

}  // namespace
}  // namespace loyalty::e2e
