// Returns at any lane, end to end (docs/pos-api.md, "Returns anywhere"): real loyalty-hq and
// loyaltyd processes over mutual TLS. A checkout sold at T01 is refunded at a lane of
// another store online (HQ sends the sale), and offline from the receipt's signed return
// token; partial returns at two terminals sum exactly to the sale; the same units returned
// twice offline are one conflict at HQ (entry_refused, refund_reused) and clawed back once; a
// forged or altered token changes nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <thread>

#include "e2e_fixture.h"

namespace loyalty::e2e {
namespace {

const char* kSeller = "T01";  // S001, where the member enrolled
const char* kNear = "T02";    // S001
const char* kAway = "T03";    // S002: does not hold the member until it needs them

// Two lines: 3 units of 100.00 and 1 of 50.00.
json TwoLines() {
  return json::array(
      {{{"sku", "A"}, {"qty", 3}, {"unit_price_cents", 10000}, {"category", "grocery"}},
       {{"sku", "B"}, {"qty", 1}, {"unit_price_cents", 5000}, {"category", "grocery"}}});
}

json Refund(const std::string& id, const std::string& checkout, json lines) {
  return json{{"refund_id", id}, {"checkout_id", checkout}, {"lines", std::move(lines)}};
}

class E2eReturnsTest : public E2eFixture {
 protected:
  E2eReturnsTest() : E2eFixture({kSeller, kNear, kAway}) {}

  TerminalProcess& Lane(const char* id, const std::string& store, uint16_t port) {
    TerminalOptions o = Options(id, port);
    o.store_id = store;
    return AddTerminal(std::move(o));
  }
  static json Commit(TerminalProcess& t, const std::string& id, const Member& m) {
    auto r =
        t.Call("POST", "/v1/checkouts/commit",
               json{{"checkout_id", id}, {"member_code", m.card_number}, {"lines", TwoLines()}});
    EXPECT_EQ(r.status, 200) << r.raw;
    return r.body;
  }
  json Conflicts(const std::string& tid) {
    auto v = hq_->Admin("GET", "/v1/terminals/" + tid);
    EXPECT_EQ(v.status, 200) << v.raw;
    return v.body.value("conflicts", json::array());
  }
  static int Count(const json& conflicts, const std::string& kind) {
    int n = 0;
    for (const auto& c : conflicts) n += c.value("kind", "") == kind;
    return n;
  }
};

TEST_F(E2eReturnsTest, OnlineAtAnotherStorePartialReturnsSumExactlyToTheSale) {
  StartHq();
  Member m = Enrol(*hq_, 1, "S001");
  auto& seller = Lane(kSeller, "S001", hq_->port());
  auto& away = Lane(kAway, "S002", hq_->port());
  ExpectOk(seller.Sync());
  ExpectOk(away.Sync());
  const json sale = Commit(seller, "c-1", m);
  const json twin = Commit(seller, "c-twin", m);  // refunded at the seller, for comparison
  ASSERT_GT(sale.value("points_to_earn", 0), 0) << sale.dump();
  ExpectOk(seller.Sync());

  // One unit of line 0 at the other store: HQ sends the sale (and the member), and the
  // amounts are exactly those the seller computes for the same units of the same sale.
  auto r1 = away.Call("POST", "/v1/refunds", [&] {
    json b = Refund("r-away-1", "c-1", json::array({{{"line", 0}, {"qty", 1}}}));
    b["sold_at"] = kSeller;
    b["cashier_id"] = "cashier-7";
    return b;
  }());
  ASSERT_EQ(r1.status, 200) << r1.raw;
  EXPECT_EQ(r1.body["sold_at"], kSeller) << r1.raw;
  auto same = seller.Call("POST", "/v1/refunds",
                          Refund("r-twin-1", "c-twin", json::array({{{"line", 0}, {"qty", 1}}})));
  ASSERT_EQ(same.status, 200) << same.raw;
  for (const char* k : {"refund_cents", "points_clawed_back", "points_restored"})
    EXPECT_EQ(r1.body[k], same.body[k]) << k << ": " << r1.raw << " vs " << same.raw;
  ExpectOk(away.Sync());

  // The seller returns the rest online: HQ tells it of the other store's unit.
  auto rest =
      seller.Call("POST", "/v1/refunds",
                  Refund("r-seller-1", "c-1",
                         json::array({{{"line", 0}, {"qty", 2}}, {{"line", 1}, {"qty", 1}}})));
  ASSERT_EQ(rest.status, 200) << rest.raw;
  // Nothing is left: any further unit at either terminal exceeds the sale.
  auto more = seller.Call("POST", "/v1/refunds",
                          Refund("r-seller-2", "c-1", json::array({{{"line", 0}, {"qty", 1}}})));
  EXPECT_EQ(more.status, 422) << more.raw;
  EXPECT_EQ(more.body["error"]["code"], "refund_exceeds_sale") << more.raw;
  ExpectOk(seller.Sync());
  auto more_away = away.Call("POST", "/v1/refunds", [&] {
    json b = Refund("r-away-2", "c-1", json::array({{{"line", 1}, {"qty", 1}}}));
    b["sold_at"] = kSeller;
    return b;
  }());
  EXPECT_EQ(more_away.status, 422) << more_away.raw;
  EXPECT_EQ(more_away.body["error"]["code"], "refund_exceeds_sale") << more_away.raw;

  // Exactly the sale, split over two terminals: money and points.
  const int64_t cents =
      r1.body["refund_cents"].get<int64_t>() + rest.body["refund_cents"].get<int64_t>();
  EXPECT_EQ(cents, sale["total_due_cents"].get<int64_t>());
  const int64_t clawed =
      r1.body["points_clawed_back"].get<int64_t>() + rest.body["points_clawed_back"].get<int64_t>();
  EXPECT_EQ(clawed, sale["points_to_earn"].get<int64_t>());
  ExpectOk(away.Sync());
  ExpectOk(seller.Sync());
  // Every terminal and HQ agree, with nothing refused.
  const int64_t balance = hq_->Admin("GET", "/v1/members/" + m.id).body["balance"];
  EXPECT_EQ(balance, HqEntrySum(*hq_, m.id));
  EXPECT_EQ(seller.MemberBalance(m.id), balance);
  EXPECT_EQ(away.MemberBalance(m.id), balance);
  for (auto* t : {&seller, &away}) {
    auto run = t->Sync();
    ExpectOk(run);
    EXPECT_EQ(run.value("repaired", -1), 0) << run.dump();
  }
  EXPECT_EQ(Count(Conflicts(kSeller), "entry_refused"), 0) << Conflicts(kSeller).dump();
  EXPECT_EQ(Count(Conflicts(kAway), "entry_refused"), 0) << Conflicts(kAway).dump();

  // Who did it: the refunds-by-cashier view at HQ.
  auto view = hq_->Admin("GET", "/v1/refunds?store_id=S002");
  ASSERT_EQ(view.status, 200) << view.raw;
  ASSERT_EQ(view.body["cashiers"].size(), 1u) << view.raw;
  EXPECT_EQ(view.body["cashiers"][0]["cashier_id"], "cashier-7") << view.raw;
  EXPECT_EQ(view.body["cashiers"][0]["terminal_id"], kAway) << view.raw;
  EXPECT_EQ(view.body["cashiers"][0]["refunds"], 1) << view.raw;
  EXPECT_EQ(view.body["cashiers"][0]["of_other_terminals"], 1) << view.raw;
  EXPECT_EQ(view.body["cashiers"][0]["refund_cents"], r1.body["refund_cents"]) << view.raw;
}

// A lane that refunded another terminal's sale and then lost its disk gets that refund back
// with its history (hq-and-sync.md, "what the terminal lacks ... is downloaded"): the same
// refund sent again is its stored answer (idempotent on refund_id), not a second payout.
TEST_F(E2eReturnsTest, ARestoredLaneKeepsItsRefundsOfAnotherLanesSale) {
  StartHq();
  Member m = Enrol(*hq_, 1, "S001");
  auto& seller = Lane(kSeller, "S001", hq_->port());
  auto& near = Lane(kNear, "S001", hq_->port());
  ExpectOk(seller.Sync());
  ExpectOk(near.Sync());
  const json sale = Commit(seller, "c-1", m);
  ExpectOk(seller.Sync());
  json body = Refund("r-near-1", "c-1", json::array({{{"line", 0}, {"qty", 1}}}));
  body["sold_at"] = kSeller;
  auto first = near.Call("POST", "/v1/refunds", body);
  ASSERT_EQ(first.status, 200) << first.raw;
  ASSERT_GT(first.body["points_clawed_back"].get<int64_t>(), 0) << first.raw;
  ExpectOk(near.Sync());
  const int64_t entries = near.LedgerEntries();
  const int64_t balance_before = hq_->Admin("GET", "/v1/members/" + m.id).body["balance"];

  ASSERT_EQ(near.Stop(), 0);
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(near.db_path() + suffix);
  near.Start();
  ExpectOk(near.Sync());
  EXPECT_EQ(near.LedgerEntries(), entries);
  auto again = near.Call("POST", "/v1/refunds", body);
  ASSERT_EQ(again.status, 200) << again.raw;
  EXPECT_EQ(again.body["entries"], first.body["entries"]) << again.raw;
  EXPECT_EQ(again.body["refund_cents"], first.body["refund_cents"]) << again.raw;
  EXPECT_EQ(near.LedgerEntries(), entries);  // nothing new written
  json other = body;
  other["lines"][0]["qty"] = 2;
  EXPECT_EQ(near.Call("POST", "/v1/refunds", other).status, 409);
  ExpectOk(near.Sync());
  ExpectOk(seller.Sync());
  const int64_t balance = hq_->Admin("GET", "/v1/members/" + m.id).body["balance"];
  EXPECT_EQ(balance, HqEntrySum(*hq_, m.id));
  EXPECT_EQ(balance, balance_before);  // clawed back once
  EXPECT_GT(sale["points_to_earn"].get<int64_t>(), 0);
  EXPECT_EQ(near.MemberBalance(m.id), balance);
  EXPECT_EQ(seller.MemberBalance(m.id), balance);
  EXPECT_EQ(Count(Conflicts(kNear), "entry_refused"), 0) << Conflicts(kNear).dump();
}

// A partial return too small to move a point writes no entry; the return of the rest,
// whose amounts follow from it (the rounding of the allocation), reaches HQ in the same run.
// Both travel together, so HQ checks the second against the first: the whole sale is clawed
// back at HQ and at the lane, and the month's spend falls to nothing.
TEST_F(E2eReturnsTest, AReturnOfNoPointsTravelsWithTheReturnsOfItsSaleAfterIt) {
  StartHq();
  Member m = Enrol(*hq_, 1, "S001");
  auto& seller = Lane(kSeller, "S001", hq_->port());
  ExpectOk(seller.Sync());
  const json lines = json::array(
      {{{"sku", "A"}, {"qty", 3}, {"unit_price_cents", 50}, {"category", "grocery"}},
       {{"sku", "B"}, {"qty", 1}, {"unit_price_cents", 100000}, {"category", "grocery"}}});
  auto sale =
      seller.Call("POST", "/v1/checkouts/commit",
                  json{{"checkout_id", "c-1"}, {"member_code", m.card_number}, {"lines", lines}});
  ASSERT_EQ(sale.status, 200) << sale.raw;
  const int64_t earned = sale.body["points_to_earn"];
  ASSERT_GT(earned, 0) << sale.raw;

  auto small = seller.Call("POST", "/v1/refunds",
                           Refund("r-1", "c-1", json::array({{{"line", 0}, {"qty", 1}}})));
  ASSERT_EQ(small.status, 200) << small.raw;
  ASSERT_EQ(small.body["points_clawed_back"], 0) << small.raw;
  ASSERT_TRUE(small.body["entries"].empty()) << small.raw;
  auto rest = seller.Call(
      "POST", "/v1/refunds",
      Refund("r-2", "c-1", json::array({{{"line", 0}, {"qty", 2}}, {{"line", 1}, {"qty", 1}}})));
  ASSERT_EQ(rest.status, 200) << rest.raw;
  ASSERT_EQ(rest.body["points_clawed_back"], earned) << rest.raw;
  ASSERT_EQ(rest.body["balance_after"], 0) << rest.raw;

  ExpectOk(seller.Sync());
  EXPECT_EQ(Count(Conflicts(kSeller), "entry_refused"), 0) << Conflicts(kSeller).dump();
  auto member = hq_->Admin("GET", "/v1/members/" + m.id);
  ASSERT_EQ(member.status, 200) << member.raw;
  EXPECT_EQ(member.body["balance"], 0) << member.raw;
  EXPECT_EQ(member.body["month_spend_cents"], 0) << member.raw;
  EXPECT_EQ(HqEntrySum(*hq_, m.id), 0);
  EXPECT_EQ(seller.MemberBalance(m.id), 0);
  auto again = seller.Sync();
  ExpectOk(again);
  EXPECT_EQ(again.value("repaired", -1), 0) << again.dump();
  EXPECT_EQ(seller.MemberBalance(m.id), 0);
}

// Two lanes return the two lines of one sale, each before the other's return reached HQ:
// the later lane computes its claw-back without the other's, off by the allocation's
// rounding. HQ accepts it as that lane could compute it and makes up the difference with
// its own adjust entry: the whole sale's points come back exactly, at HQ and every lane.
TEST_F(E2eReturnsTest, TwoLanesReturningOneSaleUnawareOfEachOtherClawBackExactlyItsPoints) {
  StartHq();
  Member m = Enrol(*hq_, 1, "S001");
  // The near lane offline for its return (from the receipt): unaware of the other's.
  FaultProxy near_link(hq_->port(), 1);
  auto& seller = Lane(kSeller, "S001", hq_->port());
  auto& near = Lane(kNear, "S001", near_link.port());
  auto& away = Lane(kAway, "S002", hq_->port());
  for (auto* t : {&seller, &near, &away}) ExpectOk(t->Sync());
  const json lines =
      json::array({{{"sku", "A"}, {"qty", 1}, {"unit_price_cents", 10000}, {"category", "beauty"}},
                   {{"sku", "B"}, {"qty", 3}, {"unit_price_cents", 40}, {"category", "grocery"}}});
  auto sale =
      seller.Call("POST", "/v1/checkouts/commit",
                  json{{"checkout_id", "c-1"}, {"member_code", m.card_number}, {"lines", lines}});
  ASSERT_EQ(sale.status, 200) << sale.raw;
  const int64_t earned = sale.body["points_to_earn"];
  ExpectOk(seller.Sync());
  auto at = [&](TerminalProcess& t, const std::string& id, int line, int qty) {
    json b = Refund(id, "c-1", json::array({{{"line", line}, {"qty", qty}}}));
    if (&t == &near)
      b["receipt"] = sale.body["return_token"];
    else
      b["sold_at"] = kSeller;
    auto r = t.Call("POST", "/v1/refunds", b);
    EXPECT_EQ(r.status, 200) << r.raw;
    return r.body;
  };
  near_link.set_upstream(FreePort());
  const json small = at(near, "r-near", 1, 3);  // not synced before the other return
  EXPECT_EQ(near.Sync()["result"], "failed");   // offline
  near_link.set_upstream(hq_->port());
  const json big = at(away, "r-away", 0, 1);
  const int64_t clawed =
      small.value("points_clawed_back", int64_t{0}) + big.value("points_clawed_back", int64_t{0});
  ASSERT_NE(clawed, earned) << "the lanes' own sums are exact here: the test needs rounding";
  ExpectOk(away.Sync());
  ExpectOk(near.Sync());
  ExpectOk(seller.Sync());
  auto member = hq_->Admin("GET", "/v1/members/" + m.id);
  ASSERT_EQ(member.status, 200) << member.raw;
  EXPECT_EQ(member.body["balance"], 0) << member.raw;
  EXPECT_EQ(member.body["month_spend_cents"], 0) << member.raw;
  EXPECT_EQ(HqEntrySum(*hq_, m.id), 0);
  for (auto* t : {&seller, &near, &away}) {
    ExpectOk(t->Sync());
    EXPECT_EQ(t->MemberBalance(m.id), 0) << t->options().terminal_id;
  }
  for (const char* tid : {kSeller, kNear, kAway}) {
    EXPECT_EQ(Count(Conflicts(tid), "entry_refused"), 0) << Conflicts(tid).dump();
    EXPECT_EQ(Count(Conflicts(tid), "refund_reused"), 0) << Conflicts(tid).dump();
  }
}

// The same unit returned at two lanes unaware of each other (one offline from the receipt;
// HQ then refuses the later refund as refund_reused): each lane then counts that line past
// its units. The sale's other lines stay returnable at both, and a refund checks only the
// lines it names.
TEST_F(E2eReturnsTest, ALineReturnedTwiceLeavesTheSalesOtherLinesReturnable) {
  StartHq();
  Member m = Enrol(*hq_, 1, "S001");
  FaultProxy near_link(hq_->port(), 1);
  auto& seller = Lane(kSeller, "S001", hq_->port());
  auto& near = Lane(kNear, "S001", near_link.port());
  for (auto* t : {&seller, &near}) ExpectOk(t->Sync());
  const json sale = Commit(seller, "c-1", m);
  ASSERT_TRUE(sale["return_token"].is_string()) << sale.dump();
  ExpectOk(seller.Sync());
  auto refund = [&](TerminalProcess& t, const std::string& id, int line, int qty) {
    json b = Refund(id, "c-1", json::array({{{"line", line}, {"qty", qty}}}));
    if (&t != &seller) b["sold_at"] = kSeller;
    return t.Call("POST", "/v1/refunds", b);
  };
  near_link.set_upstream(FreePort());
  json offline = Refund("r-near-1", "c-1", json::array({{{"line", 1}, {"qty", 1}}}));
  offline["receipt"] = sale["return_token"];
  ASSERT_EQ(near.Call("POST", "/v1/refunds", offline).status, 200);
  ASSERT_EQ(refund(seller, "r-seller-1", 1, 1).status, 200);  // HQ knows of no other
  ExpectOk(seller.Sync());
  EXPECT_EQ(near.Sync()["result"], "failed");  // offline
  near_link.set_upstream(hq_->port());
  for (int round = 0; round < 2; ++round)
    for (auto* t : {&near, &seller}) ExpectOk(t->Sync());
  // Line 1 is past its unit at both lanes now; line 0 has three units left.
  for (auto* t : {&seller, &near}) {
    auto again = refund(*t, std::string("r-again-") + t->options().terminal_id, 1, 1);
    EXPECT_EQ(again.status, 422) << again.raw;
    EXPECT_EQ(again.body["error"]["code"], "refund_exceeds_sale") << again.raw;
  }
  auto at_seller = refund(seller, "r-seller-2", 0, 1);
  ASSERT_EQ(at_seller.status, 200) << at_seller.raw;
  EXPECT_EQ(at_seller.body["refund_cents"], 10000) << at_seller.raw;
  auto at_near = refund(near, "r-near-2", 0, 2);
  ASSERT_EQ(at_near.status, 200) << at_near.raw;
  EXPECT_EQ(at_near.body["refund_cents"], 20000) << at_near.raw;
  ExpectOk(near.Sync());
  auto past = refund(seller, "r-seller-3", 0, 1);
  EXPECT_EQ(past.status, 422) << past.raw;
  EXPECT_EQ(past.body["error"]["code"], "refund_exceeds_sale") << past.raw;
  for (int round = 0; round < 2; ++round)
    for (auto* t : {&near, &seller}) ExpectOk(t->Sync());
  // At HQ: the seller's refund of line 1 came first; the near lane's is the one conflict.
  json reused = json::array();
  for (const char* tid : {kSeller, kNear})
    for (const auto& c : Conflicts(tid))
      if (c.value("kind", "") == "entry_refused" &&
          c["detail"].value("reason", "") == "refund_reused")
        reused.push_back(c["detail"].value("refund_id", ""));
  std::sort(reused.begin(), reused.end());
  reused.erase(std::unique(reused.begin(), reused.end()), reused.end());
  EXPECT_EQ(reused, json::array({"r-near-1"})) << reused.dump();
  const int64_t balance = hq_->Admin("GET", "/v1/members/" + m.id).body["balance"];
  EXPECT_EQ(balance, HqEntrySum(*hq_, m.id));
  EXPECT_EQ(balance, 0) << "every unit returned once: earned " << sale["points_to_earn"];
  for (auto* t : {&seller, &near}) EXPECT_EQ(t->MemberBalance(m.id), balance);
}

TEST_F(E2eReturnsTest, OfflineFromTheReceiptTwiceIsOneConflictAndClawedBackOnce) {
  StartHq();
  Member m = Enrol(*hq_, 1, "S001");
  FaultProxy near_link(hq_->port(), 1), away_link(hq_->port(), 2);
  auto& seller = Lane(kSeller, "S001", hq_->port());
  auto& near = Lane(kNear, "S001", near_link.port());
  auto& away = Lane(kAway, "S002", away_link.port());
  for (auto* t : {&seller, &near, &away}) ExpectOk(t->Sync());  // receipt keys certified
  const json sale = Commit(seller, "c-1", m);
  ASSERT_TRUE(sale["return_token"].is_string()) << sale.dump();
  const std::string token = sale["return_token"];
  EXPECT_EQ(token.rfind("LR1:", 0), 0u);
  // The seller does not sync yet: HQ has no record of the sale.

  near_link.set_upstream(FreePort());  // both lanes offline
  away_link.set_upstream(FreePort());
  json all = json::array({{{"line", 0}, {"qty", 3}}, {{"line", 1}, {"qty", 1}}});
  // Without the receipt, an offline lane cannot refund another terminal's sale.
  auto no_receipt = near.Call("POST", "/v1/refunds", [&] {
    json b = Refund("r-near-0", "c-1", all);
    b["sold_at"] = kSeller;
    return b;
  }());
  EXPECT_EQ(no_receipt.status, 404) << no_receipt.raw;
  EXPECT_EQ(no_receipt.body["error"]["code"], "checkout_unknown") << no_receipt.raw;
  // A forged or altered token, a token of another sale or terminal: refused, nothing written.
  const int64_t entries_before = near.LedgerEntries();
  std::string altered = token;
  altered[altered.size() / 2] = altered[altered.size() / 2] == 'A' ? 'B' : 'A';
  for (const auto& [body, code] :
       std::vector<std::pair<json, std::string>>{{json{{"refund_id", "r-bad-1"},
                                                       {"checkout_id", "c-1"},
                                                       {"receipt", altered},
                                                       {"lines", all}},
                                                  ""},
                                                 {json{{"refund_id", "r-bad-2"},
                                                       {"checkout_id", "c-2"},
                                                       {"receipt", token},
                                                       {"lines", all}},
                                                  "bad_request"},
                                                 {json{{"refund_id", "r-bad-3"},
                                                       {"checkout_id", "c-1"},
                                                       {"sold_at", kAway},
                                                       {"receipt", token},
                                                       {"lines", all}},
                                                  "bad_request"},
                                                 {json{{"refund_id", "r-bad-4"},
                                                       {"checkout_id", "c-1"},
                                                       {"receipt", "LR1:AAAA"},
                                                       {"lines", all}},
                                                  "code_malformed"}}) {
    auto r = near.Call("POST", "/v1/refunds", body);
    EXPECT_TRUE(r.status == 400 || r.status == 422) << r.raw;
    if (!code.empty()) {
      EXPECT_EQ(r.body["error"]["code"], code) << r.raw;
    } else {
      const std::string c = r.body["error"]["code"];
      EXPECT_TRUE(c == "code_signature_invalid" || c == "code_malformed") << r.raw;
    }
  }
  EXPECT_EQ(near.LedgerEntries(), entries_before);

  // The same units at two lanes, each offline from the receipt: both lanes refund.
  auto at_near = near.Call("POST", "/v1/refunds", [&] {
    json b = Refund("r-near-1", "c-1", all);
    b["receipt"] = token;
    b["cashier_id"] = "c-near";
    return b;
  }());
  ASSERT_EQ(at_near.status, 200) << at_near.raw;
  EXPECT_EQ(at_near.body["refund_cents"], sale["total_due_cents"]) << at_near.raw;
  EXPECT_EQ(at_near.body["points_clawed_back"], sale["points_to_earn"]) << at_near.raw;
  auto at_away = away.Call("POST", "/v1/refunds", [&] {
    json b = Refund("r-away-1", "c-1", all);
    b["receipt"] = token;
    b["sold_at"] = kSeller;
    b["cashier_id"] = "c-away";
    return b;
  }());
  ASSERT_EQ(at_away.status, 200) << at_away.raw;
  // A second return of the same units at one lane is refused there.
  auto twice = near.Call("POST", "/v1/refunds", [&] {
    json b = Refund("r-near-2", "c-1", json::array({{{"line", 1}, {"qty", 1}}}));
    b["receipt"] = token;
    return b;
  }());
  EXPECT_EQ(twice.status, 422) << twice.raw;
  EXPECT_EQ(twice.body["error"]["code"], "refund_exceeds_sale") << twice.raw;

  // Back online: the near lane first (HQ checks its refund against the token: the seller
  // has not uploaded the sale), then the away lane (the same units again), then the seller.
  near_link.set_upstream(hq_->port());
  away_link.set_upstream(hq_->port());
  ExpectOk(near.Sync());
  ExpectOk(away.Sync());
  ExpectOk(seller.Sync());
  for (auto* t : {&near, &away, &seller}) ExpectOk(t->Sync());
  // One conflict, against the later refund (the away lane's), naming the other lane: an
  // entry_refused (hq-and-sync.md's kinds) with the reason refund_reused.
  auto reused_in = [](const json& conflicts) {
    json out = json::array();
    for (const auto& c : conflicts)
      if (c.value("kind", "") == "entry_refused" &&
          c["detail"].value("reason", "") == "refund_reused")
        out.push_back(c);
    return out;
  };
  const json reused = reused_in(Conflicts(kAway));
  ASSERT_EQ(reused.size(), 1u) << Conflicts(kAway).dump();
  EXPECT_EQ(reused[0]["detail"]["refund_id"], "r-away-1") << reused.dump();
  EXPECT_EQ(reused[0]["detail"]["other_terminal_id"], kNear) << reused.dump();
  EXPECT_EQ(reused[0]["detail"]["cashier_id"], "c-away") << reused.dump();
  EXPECT_EQ(reused_in(Conflicts(kNear)), reused);  // the same one, seen from there
  for (const char* tid : {kSeller, kNear, kAway})
    for (const auto& c : Conflicts(tid))
      EXPECT_NE(c.value("kind", ""), "refund_reused") << "not one of hq-and-sync.md's kinds";
  // Clawed back once: the sale's points earned then taken back, once.
  const int64_t balance = hq_->Admin("GET", "/v1/members/" + m.id).body["balance"];
  EXPECT_EQ(balance, HqEntrySum(*hq_, m.id));
  EXPECT_EQ(balance, 0) << "earned " << sale["points_to_earn"] << ", clawed back once";
  for (auto* t : {&seller, &near}) EXPECT_EQ(t->MemberBalance(m.id), balance);
  // The away lane (another store) held the member only for its refund, which HQ refused:
  // not a visit that puts the member in its store's scope, so its lane dropped them again
  // (eviction) once HQ had its entries, and its cached balance went with them.
  EXPECT_EQ(away.MemberBalance(m.id), std::numeric_limits<int64_t>::min());
  auto run = away.Sync();
  ExpectOk(run);
  EXPECT_EQ(run.value("repaired", -1), 0) << run.dump();
  // The view names both cashiers; the refused refund is counted as refused.
  auto view = hq_->Admin("GET", "/v1/refunds");
  ASSERT_EQ(view.status, 200) << view.raw;
  int refused = 0;
  for (const auto& row : view.body["cashiers"]) refused += row["refused"].get<int>();
  EXPECT_EQ(refused, 1) << view.raw;
}

}  // namespace
}  // namespace loyalty::e2e
