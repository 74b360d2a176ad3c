// Member scope end to end (hq-and-sync.md, "Download"): real loyalty-hq and loyaltyd
// processes, two stores. A member who never shopped at a store is not on its terminals; a
// terminal there identifies them offline by a dynamic code as a provisional member, and
// online fetches them on the first scan; the sale's points reach HQ and every balance still
// reconciles exactly, on the terminals of both stores. A brand-new terminal that looks a
// member up before its first run keeps them after it: the look-up names the terminal's store.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "e2e_fixture.h"
#include "support/hq_store.h"

namespace loyalty::e2e {
namespace {

const char* kHome = "T-HOME";  // a lane of S001, where the member enrolled
const char* kAway = "T-AWAY";  // a lane of S002
const char* kNew = "T-NEW";    // a new lane of S002, never synced

class E2eScopeTest : public E2eFixture {
 protected:
  E2eScopeTest() : E2eFixture({kHome, kAway, kNew}) {}

  TerminalProcess& Lane(const char* id, const std::string& store, uint16_t port) {
    TerminalOptions o = Options(id, port);
    o.store_id = store;
    return AddTerminal(std::move(o));
  }
  static bool Holds(TerminalProcess& t, const std::string& member_id) {
    auto r = t.Call("GET", "/v1/members/" + member_id);
    EXPECT_TRUE(r.status == 200 || r.status == 404) << r.raw;
    return r.status == 200;
  }
};

TEST_F(E2eScopeTest, AMemberOfAnotherStoreIsProvisionalOfflineAndFetchedOnline) {
  StartHq();
  Member home = Enrol(*hq_, 1, "S001"), local = Enrol(*hq_, 2, "S002");
  FaultProxy to_hq(hq_->port(), 1);
  auto& h = Lane(kHome, "S001", hq_->port());
  auto& a = Lane(kAway, "S002", to_hq.port());
  ExpectOk(h.Sync());
  ExpectOk(a.Sync());
  // Each store holds its own member only.
  EXPECT_TRUE(Holds(h, home.id));
  EXPECT_FALSE(Holds(h, local.id));
  EXPECT_TRUE(Holds(a, local.id));
  EXPECT_FALSE(Holds(a, home.id));
  auto earn = h.Call(
      "POST", "/v1/checkouts/commit",
      json{{"checkout_id", "h-1"}, {"member_code", home.card_number}, {"lines", Basket(50000)}});
  ASSERT_EQ(earn.status, 200) << earn.raw;
  ExpectOk(h.Sync());
  const int64_t balance = hq_->Admin("GET", "/v1/members/" + home.id).body["balance"];
  ASSERT_GT(balance, 0);

  // Offline at the other store: a dynamic code still identifies the member, provisionally.
  to_hq.set_upstream(FreePort());  // nothing listens there: HQ unreachable
  auto off = a.Call("POST", "/v1/identify", json{{"code", DynamicCode(home)}});
  ASSERT_EQ(off.status, 200) << off.raw;
  EXPECT_TRUE(off.body["member"]["stale"].get<bool>()) << off.raw;
  EXPECT_TRUE(off.body["member"]["snapshot_at"].is_null()) << off.raw;
  EXPECT_EQ(off.body["member"]["balance"], 0) << off.raw;
  EXPECT_FALSE(Holds(a, home.id));  // identify writes nothing
  // A printed card of a member this store does not hold: unknown offline.
  auto card_off = a.Call("POST", "/v1/identify", json{{"code", home.card_number}});
  EXPECT_EQ(card_off.status, 404) << card_off.raw;
  EXPECT_EQ(card_off.body["error"]["code"], "member_unknown") << card_off.raw;

  // Online again (a run resumes the look-ups): the first scan fetches the member.
  to_hq.set_upstream(hq_->port());
  ExpectOk(a.Sync());
  EXPECT_FALSE(Holds(a, home.id));
  // A quote or commit that names the card but is refused whatever the member (a bad line,
  // rules no longer current) asks HQ nothing and changes nothing: the member is still not
  // held (pos-api.md, "changes nothing").
  json bad_lines = json::array({{{"sku", "x"}, {"qty", 0}, {"unit_price_cents", 100}}});
  for (const char* route : {"/v1/checkouts/quote", "/v1/checkouts/commit"}) {
    auto r = a.Call(
        "POST", route,
        json{{"checkout_id", "a-bad"}, {"member_code", home.card_number}, {"lines", bad_lines}});
    EXPECT_EQ(r.status, 400) << route << " " << r.raw;
    EXPECT_FALSE(Holds(a, home.id)) << route;
  }
  auto stale_rules = a.Call("POST", "/v1/checkouts/commit",
                            json{{"checkout_id", "a-old"},
                                 {"member_code", home.card_number},
                                 {"lines", Basket(20000)},
                                 {"rules_version", "not-the-current-one"}});
  EXPECT_EQ(stale_rules.status, 409) << stale_rules.raw;
  EXPECT_EQ(stale_rules.body["error"]["code"], "rules_changed") << stale_rules.raw;
  EXPECT_FALSE(Holds(a, home.id));
  EXPECT_EQ(a.ReadLog().find("\"event\":\"member_lookup\""), std::string::npos) << a.ReadLog();
  auto on = a.Call("POST", "/v1/identify", json{{"code", DynamicCode(home)}});
  ASSERT_EQ(on.status, 200) << on.raw;
  EXPECT_EQ(on.body["member"]["balance"], balance) << on.raw;
  EXPECT_FALSE(on.body["member"]["snapshot_at"].is_null()) << on.raw;
  EXPECT_TRUE(Holds(a, home.id));
  auto sale = a.Call(
      "POST", "/v1/checkouts/commit",
      json{{"checkout_id", "a-1"}, {"member_code", home.card_number}, {"lines", Basket(20000)}});
  ASSERT_EQ(sale.status, 200) << sale.raw;
  ExpectOk(a.Sync());
  ExpectOk(h.Sync());
  // Balances reconcile exactly on both lanes, and HQ's balance is its entries' sum.
  const json view = hq_->Admin("GET", "/v1/members/" + home.id).body;
  const int64_t now_balance = view["balance"];
  EXPECT_EQ(now_balance, HqEntrySum(*hq_, home.id));
  EXPECT_EQ(h.MemberBalance(home.id), now_balance);
  EXPECT_EQ(a.MemberBalance(home.id), now_balance);
  EXPECT_GT(now_balance, balance);
  // A second run of each finds nothing to repair: the balance sets agree.
  for (auto* t : {&h, &a}) {
    auto run = t->Sync();
    ExpectOk(run);
    EXPECT_EQ(run.value("repaired", -1), 0) << run.dump();
  }
  // The member `local` never shopped at S001: still not there.
  EXPECT_FALSE(Holds(h, local.id));
}

// A look-up HQ answers after the lane's timeout (HQ's database busy for a second): the lane
// sells the member as the provisional member they still are there, while HQ records the
// member as sent to it. That honest sale is accepted -- its points applied, no conflict --
// and the lane's next runs bring the member and reconcile every balance exactly.
TEST_F(E2eScopeTest, ALookUpAnsweredAfterTheTimeoutLeavesTheSaleStanding) {
  StartHq();
  Member home = Enrol(*hq_, 1, "S001");
  ASSERT_EQ(hq_->Admin("POST", "/v1/members/" + home.id + "/tier", json{{"tier", "vip"}}).status,
            200);
  auto& a = Lane(kAway, "S002", hq_->port());
  ExpectOk(a.Sync());
  ASSERT_FALSE(Holds(a, home.id));

  // HQ's database held by another writer for 1.5 s: the look-up waits there, past the lane's
  // 300 ms, and is then answered to a lane that has gone on without it.
  std::atomic<bool> holding{false};
  std::thread busy([&] {
    auto store = testing::OpenTestHqStore(hq_->dir());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    Status s = (*store)->Transaction([&] {
      holding.store(true);
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      return Status::Ok();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
  });
  for (int i = 0; i < 500 && !holding.load(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(holding.load());
  auto off = a.Call("POST", "/v1/identify", json{{"code", DynamicCode(home)}});
  ASSERT_EQ(off.status, 200) << off.raw;
  EXPECT_TRUE(off.body["member"]["snapshot_at"].is_null()) << off.raw;
  EXPECT_EQ(off.body["member"]["tier"], "member") << off.raw;
  auto sale = a.Call("POST", "/v1/checkouts/commit",
                     json{{"checkout_id", "a-1"},
                          {"identification_id", off.body["identification"]["id"]},
                          {"lines", Basket(20000)}});
  ASSERT_EQ(sale.status, 200) << sale.raw;
  const int64_t earned = sale.body["points_to_earn"];
  ASSERT_GT(earned, 0);
  busy.join();
  // HQ answered the look-up once the database was free: the member is recorded as sent.
  int64_t sent = 0;
  for (int i = 0; i < 500 && sent == 0; ++i) {
    auto n = testing::QueryIntOnTestHqStore(
        hq_->dir(), "SELECT count(*) FROM member_downloads WHERE terminal_id = 'T-AWAY'");
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    sent = *n;
    if (sent == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(sent, 1);

  ExpectOk(a.Sync());
  const json view = hq_->Admin("GET", "/v1/members/" + home.id).body;
  EXPECT_EQ(view["balance"], earned) << view.dump();
  EXPECT_EQ(HqEntrySum(*hq_, home.id), earned);
  for (const auto& c : view["conflicts"]) ADD_FAILURE() << c.dump();
  // The run brought the member; the next finds nothing to repair.
  EXPECT_EQ(a.MemberBalance(home.id), earned);
  auto run = a.Sync();
  ExpectOk(run);
  EXPECT_EQ(run.value("repaired", -1), 0) << run.dump();
}

// A lane HQ has never heard from (no `hello` yet, so HQ does not know its store) identifies a
// member of another store online: the look-up names the lane's store, so the member enters
// that store's scope, and the lane's first run keeps them instead of evicting them; the
// store's other lane downloads them too, and every balance reconciles exactly.
TEST_F(E2eScopeTest, AMemberLookedUpBeforeTheFirstSyncIsKeptByIt) {
  StartHq();
  Member home = Enrol(*hq_, 1, "S001");
  auto& h = Lane(kHome, "S001", hq_->port());
  auto& a = Lane(kAway, "S002", hq_->port());
  ExpectOk(h.Sync());
  ExpectOk(a.Sync());
  auto earn = h.Call(
      "POST", "/v1/checkouts/commit",
      json{{"checkout_id", "h-1"}, {"member_code", home.card_number}, {"lines", Basket(50000)}});
  ASSERT_EQ(earn.status, 200) << earn.raw;
  ExpectOk(h.Sync());
  const int64_t balance = hq_->Admin("GET", "/v1/members/" + home.id).body["balance"];
  ASSERT_GT(balance, 0);

  // A new lane of S002, started and never synced: the printed card is looked up online.
  auto& n = Lane(kNew, "S002", hq_->port());
  ASSERT_EQ(hq_->Admin("GET", std::string("/v1/terminals/") + kNew).status, 404);
  auto on = n.Call("POST", "/v1/identify", json{{"code", home.card_number}});
  ASSERT_EQ(on.status, 200) << on.raw;
  EXPECT_EQ(on.body["member"]["member_id"], home.id) << on.raw;
  EXPECT_EQ(on.body["member"]["balance"], balance) << on.raw;
  ASSERT_TRUE(Holds(n, home.id));

  // Its first run keeps the member: S002 asked for them.
  ExpectOk(n.Sync());
  EXPECT_TRUE(Holds(n, home.id)) << n.ReadLog();
  EXPECT_EQ(n.MemberBalance(home.id), balance);
  // So does the store's other lane, at its next run.
  ExpectOk(a.Sync());
  EXPECT_TRUE(Holds(a, home.id));

  // A sale at the new lane; balances reconcile exactly on all three lanes.
  auto sale = n.Call(
      "POST", "/v1/checkouts/commit",
      json{{"checkout_id", "n-1"}, {"member_code", home.card_number}, {"lines", Basket(20000)}});
  ASSERT_EQ(sale.status, 200) << sale.raw;
  ExpectOk(n.Sync());
  EXPECT_TRUE(Holds(n, home.id));
  ExpectOk(h.Sync());
  ExpectOk(a.Sync());
  const int64_t now_balance = hq_->Admin("GET", "/v1/members/" + home.id).body["balance"];
  EXPECT_GT(now_balance, balance);
  EXPECT_EQ(now_balance, HqEntrySum(*hq_, home.id));
  for (auto* t : {&h, &a, &n}) {
    EXPECT_EQ(t->MemberBalance(home.id), now_balance) << t->options().terminal_id;
    auto run = t->Sync();
    ExpectOk(run);
    EXPECT_EQ(run.value("repaired", -1), 0) << run.dump();
    EXPECT_TRUE(Holds(*t, home.id)) << t->options().terminal_id;
  }
}

}  // namespace
}  // namespace loyalty::e2e
