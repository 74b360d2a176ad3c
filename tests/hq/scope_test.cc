// Member scope (hq-and-sync.md, "Download"; docs/hq.md, "Member scope"): a store's
// terminals are sent the members enrolled there, those that shopped there and those a
// terminal of the store asked for — never the whole chain — and each terminal's balance
// reconciliation covers exactly the members it holds.
#include <sqlite3.h>

#include "hq_test_util.h"
#include "loyalty/recon/recon.h"

namespace loyalty::hq::testing {
namespace {

using nlohmann::json;

class HqScopeTest : public HqFixture {
 protected:
  // Member ids of one `changes` download of tid (from its cursor, all pages).
  std::set<uint64_t> Download(const std::string& tid) {
    std::set<uint64_t> ids;
    std::string& cursor = cursors_[tid];
    for (int page = 0; page < 100; ++page) {
      auto r = Call("GET", "/v1/sync/" + tid + "/changes?cursor=" + cursor, "", false);
      EXPECT_EQ(r.status, 200) << r.body;
      auto ch = sync::ParseMessage<sync::ChangesResponse>(r.body);
      EXPECT_TRUE(ch.ok()) << r.body;
      if (!ch.ok()) break;
      for (const auto& m : ch->members) ids.insert(m.member_id);
      for (const auto& c : ch->coupons) coupons_[tid].insert(c.coupon_id);
      evict_[tid] = ch->evict;  // named on the last page
      cursor = ch->cursor;
      if (!ch->more) break;
    }
    return ids;
  }
  void Greet(const std::string& tid, const std::string& store) {
    ASSERT_EQ(Call("POST", "/v1/sync/" + tid + "/hello", Hello(tid, store), false).status, 200);
    greeted_.insert(tid);
  }
  uint64_t Enrol(const std::string& store) {
    return std::stoull(CreateMember({{"name", "王五"}, {"store_id", store}}));
  }
  // How many members the terminal's balance set at HQ holds.
  uint64_t HeldBalances(const std::string& tid) {
    auto set = store_->BalanceSet(tid);
    EXPECT_TRUE(set.ok());
    std::vector<recon::Symbol> s0;
    EXPECT_TRUE((*set)->ReadSymbols(0, 1, &s0).ok());
    return static_cast<uint64_t>(s0[0].count);
  }
  // Whether the terminal's balance set at HQ is exactly these members at these balances.
  bool BalancesAre(const std::string& tid, const std::map<uint64_t, int64_t>& balances) {
    auto set = store_->BalanceSet(tid);
    EXPECT_TRUE(set.ok());
    if (!set.ok()) return false;
    const uint64_t n = (*set)->stored_symbols();
    recon::MemoryStore want(n);
    for (const auto& [id, balance] : balances)
      EXPECT_TRUE(want.Upsert(recon::MemberBalanceItem(std::to_string(id), balance, 0)).ok());
    std::vector<recon::Symbol> a, b;
    EXPECT_TRUE((*set)->ReadSymbols(0, n, &a).ok());
    EXPECT_TRUE(want.ReadSymbols(0, n, &b).ok());
    return a == b;
  }
  int64_t BalanceAtHq(uint64_t id) {
    auto m = store_->GetMember(id);
    EXPECT_TRUE(m.ok() && m->has_value());
    return m.ok() && m->has_value() ? (*m)->balance : -1;
  }
  sync::MembersResponse Ask(const std::string& tid, const sync::MembersRequest& req) {
    auto r = Call("POST", "/v1/sync/" + tid + "/members", sync::SerializeMessage(req), false);
    EXPECT_EQ(r.status, 200) << r.body;
    auto out = sync::ParseMessage<sync::MembersResponse>(r.body);
    EXPECT_TRUE(out.ok()) << r.body;
    return out.ok() ? *out : sync::MembersResponse{};
  }

  sync::EvictedResponse Evicted(const std::string& tid, std::vector<uint64_t> ids) {
    auto r = Call("POST", "/v1/sync/" + tid + "/evicted",
                  sync::SerializeMessage(sync::EvictedRequest{std::move(ids)}), false);
    EXPECT_EQ(r.status, 200) << r.body;
    auto out = sync::ParseMessage<sync::EvictedResponse>(r.body);
    EXPECT_TRUE(out.ok()) << r.body;
    return out.ok() ? *out : sync::EvictedResponse{};
  }

  std::map<std::string, std::string> cursors_;
  std::map<std::string, std::set<std::string>> coupons_;
  std::map<std::string, std::vector<uint64_t>> evict_;
};

TEST_F(HqScopeTest, AStoreHoldsItsOwnMembersNeverTheChain) {
  Greet("T01", "S001");
  Greet("T02", "S001");
  Greet("T09", "S009");
  const uint64_t here = Enrol("S001"), there = Enrol("S009");
  const uint64_t nowhere = std::stoull(CreateMember({{"name", "赵六"}, {"store_id", nullptr}}));
  (void)nowhere;
  EXPECT_EQ(Download("T01"), (std::set<uint64_t>{here}));
  EXPECT_EQ(Download("T09"), (std::set<uint64_t>{there}));
  // Coupons follow the members: one for `there` stays at S009, one for anyone goes everywhere.
  const int64_t now_s = kNowMs / 1000;
  for (auto [id, member] : {std::pair{"cp-there", there}, std::pair{"cp-any", uint64_t{0}}}) {
    ASSERT_EQ(Call("POST", "/v1/coupons",
                   json{{"coupon_id", id},
                        {"member_id", std::to_string(member)},
                        {"kind", "amount_off"},
                        {"value_cents", 500},
                        {"min_spend_cents", 1000},
                        {"valid_from", now_s - 60},
                        {"valid_to", now_s + 86400}})
                  .status,
              201);
  }
  Download("T01");
  Download("T09");
  EXPECT_EQ(coupons_["T01"], (std::set<std::string>{"cp-any"}));
  EXPECT_EQ(coupons_["T09"], (std::set<std::string>{"cp-there", "cp-any"}));
  EXPECT_EQ(HeldBalances("T01"), 1u);
  EXPECT_EQ(HeldBalances("T09"), 1u);
}

TEST_F(HqScopeTest, ASaleOrALookUpAtAStoreBringsTheMemberToAllItsLanes) {
  Greet("T01", "S001");
  Greet("T02", "S001");
  Greet("T09", "S009");
  const uint64_t a = Enrol("S009"), b = Enrol("S009");
  Download("T01");
  Download("T02");
  // T01 sells to `a` offline (a dynamic code: provisional there) and uploads.
  FakeTerminal t{"T01"};
  Sale s = PricedSale(t, a, "c1", Basket(10000), kNowMs + 1000, 0, std::string(64, 'c'));
  sync::UploadRequest up{s.entries, {s.checkout}, {}};
  for (const auto& r : Upload("T01", up).results) EXPECT_EQ(r.status, "created");
  EXPECT_EQ(HeldBalances("T01"), 1u);                   // T01 holds what it wrote entries for
  EXPECT_EQ(Download("T02"), (std::set<uint64_t>{a}));  // the store's other lane gets it
  EXPECT_EQ(HeldBalances("T02"), 1u);
  // T02 looks `b` up by the card it scanned: the snapshot and its identities come back.
  sync::MembersRequest req;
  req.identities = std::vector<sync::IdentityKey>{{"card", ""}};
  auto ids = store_->IdentitiesOf(b);
  ASSERT_TRUE(ids.ok() && !ids->empty());
  (*req.identities)[0].external_id = (*ids)[0].external_id;
  auto found = Ask("T02", req);
  ASSERT_EQ(found.members.size(), 1u);
  EXPECT_EQ(found.members[0].member_id, b);
  ASSERT_TRUE(found.identities.has_value());
  EXPECT_FALSE(found.identities->empty());
  EXPECT_EQ(HeldBalances("T02"), 2u);
  // And T01 gets it at its next run (with `a`, whose balance its own sale changed).
  EXPECT_EQ(Download("T01"), (std::set<uint64_t>{a, b}));
  // A card nobody holds: nothing, and nothing held.
  (*req.identities)[0].external_id = "8800000000000000";
  EXPECT_TRUE(Ask("T02", req).members.empty());
  EXPECT_EQ(HeldBalances("T02"), 2u);
  // A repair (no identities in the request) answers as before, without identities.
  sync::MembersRequest repair;
  repair.member_ids = {a};
  auto fixed = Ask("T02", repair);
  EXPECT_EQ(fixed.members.size(), 1u);
  EXPECT_FALSE(fixed.identities.has_value());
}

// A terminal's balance set at HQ is what it was sent (docs/hq.md, "Member scope"): another
// lane's sale of a member both hold changes it at this lane's next download, when the
// member's new snapshot is sent, never before — so the lane's reconciliation after that
// download finds no difference, and none that a download will settle anyway in between.
// A member HQ never sent a lane is a provisional member there (member-codes.md): its sale,
// priced as a plain member, is accepted however recent the lane's download and whatever
// tier HQ holds; a member the lane holds is judged by what it was sent.
TEST_F(HqScopeTest, ASaleOfAMemberNeverSentIsPricedAsTheProvisionalMemberItWas) {
  const uint64_t away = Enrol("S009"), here = Enrol("S001");
  clock_.advance_ms(1000);
  for (uint64_t id : {away, here})
    ASSERT_EQ(
        Call("POST", "/v1/members/" + std::to_string(id) + "/tier", json{{"tier", "vip"}}).status,
        200);
  clock_.advance_ms(60'000);
  Greet("T01", "S001");
  EXPECT_EQ(Download("T01"), (std::set<uint64_t>{here}));  // a minute after both became VIP
  clock_.advance_ms(60'000);
  FakeTerminal t{"T01"};
  const int64_t at = kNowMs + 120'000;
  Sale provisional =
      PricedSale(t, away, "c1", Basket(10000), at, 0, std::string(64, 'c'), "member");
  Sale held = PricedSale(t, here, "c2", Basket(10000), at + 1, 0, std::string(64, 'd'),
                         "member");  // a rooted till's claim: it was sent `here` as VIP
  auto res = Upload(
      "T01",
      {{provisional.entries[0], held.entries[0]}, {provisional.checkout, held.checkout}, {}});
  ASSERT_EQ(res.results.size(), 2u);
  EXPECT_EQ(res.results[0].status, "created");
  EXPECT_EQ(res.results[1].status, "refused");
  EXPECT_EQ(BalanceAtHq(away), provisional.checkout.points_earned);
  EXPECT_EQ(BalanceAtHq(here), 0);
}

// A look-up HQ answered after the lane had given up on it (its timeout) leaves the lane
// without the member, although HQ sent it and holds it there: the lane sold them as the
// provisional member they were (member-codes.md), before or after the moment HQ recorded
// the answer, and that sale stands; never priced
// unfrozen, though, while HQ had them frozen (asking again for a member a lane holds frozen
// must not let a rooted till sell it unfrozen).
TEST_F(HqScopeTest, ALookUpAnswerThatNeverArrivedLeavesTheMemberProvisional) {
  const uint64_t away = Enrol("S009"), cold = Enrol("S009"), late = Enrol("S009");
  clock_.advance_ms(1000);
  for (uint64_t id : {away, late})
    ASSERT_EQ(
        Call("POST", "/v1/members/" + std::to_string(id) + "/tier", json{{"tier", "vip"}}).status,
        200);
  // `cold`: frozen by HQ's chain-wide velocity rule (3,000 points at each of two lanes).
  Greet("T08", "S009");
  Greet("T09", "S009");
  FakeTerminal x{"T08"}, y{"T09"};
  Sale sx = PricedSale(x, cold, "x1", Basket(300000), kNowMs + 1000);
  Sale sy = PricedSale(y, cold, "y1", Basket(300000), kNowMs + 2000);
  Upload("T08", {sx.entries, {sx.checkout}, {}});
  Upload("T09", {sy.entries, {sy.checkout}, {}});
  auto frozen = store_->GetMember(cold);
  ASSERT_TRUE(frozen.ok() && frozen->has_value());
  ASSERT_EQ((*frozen)->status, "frozen");
  clock_.advance_ms(60'000);
  Greet("T01", "S001");
  EXPECT_EQ(Download("T01"), (std::set<uint64_t>{}));
  clock_.advance_ms(1000);
  // `late` is sold as provisional while HQ, busy, has not yet answered its look-up.
  FakeTerminal t{"T01"};
  Sale r =
      PricedSale(t, late, "c0", Basket(10000), clock_.now_ms(), 0, std::string(64, 'b'), "member");
  clock_.advance_ms(1000);
  for (uint64_t id : {away, cold, late}) {  // each scanned and asked for: the answers are lost
    sync::MembersRequest ask;
    ask.identities.emplace();
    ask.store_id = "S001";
    ask.member_ids = {id};
    ASSERT_EQ(Ask("T01", ask).members.size(), 1u);
  }
  EXPECT_EQ(HeldBalances("T01"), 3u);
  clock_.advance_ms(1000);
  const int64_t at = clock_.now_ms() - 500;
  Sale p = PricedSale(t, away, "c1", Basket(10000), at, 0, std::string(64, 'c'), "member");
  Sale q = PricedSale(t, cold, "c2", Basket(10000), at + 1, 0, std::string(64, 'd'), "member");
  clock_.advance_ms(1000);
  auto res = Upload(
      "T01",
      {{r.entries[0], p.entries[0], q.entries[0]}, {r.checkout, p.checkout, q.checkout}, {}});
  ASSERT_EQ(res.results.size(), 3u);
  EXPECT_EQ(res.results[0].status, "created");
  EXPECT_EQ(res.results[1].status, "created");
  EXPECT_EQ(res.results[2].status, "refused");
  EXPECT_EQ(BalanceAtHq(late), r.checkout.points_earned);
  EXPECT_EQ(BalanceAtHq(away), p.checkout.points_earned);
  EXPECT_EQ(BalanceAtHq(cold), 6000);
  // Had the answer arrived, the VIP price would stand as well.
  Sale v = PricedSale(t, away, "c3", Basket(10000), at + 2, 0, std::string(64, 'e'), "vip");
  EXPECT_EQ(Upload("T01", {v.entries, {v.checkout}, {}}).results[0].status, "created");
}

// A lane's run uploads its provisional sale of a member of another store and then fails
// before its download: the lane still has only the provisional member its first sale made,
// and its next sale of them, priced so, stands -- in a later upload too, although HQ now
// holds the member there. Once a changes page came after that upload (it carries the
// member), the lane had the member's snapshot, and a provisional price is refused. A read
// of this that fails fails the upload, with nothing changed.
TEST_F(HqScopeTest, ProvisionalSalesBeforeTheNextPageStand) {
  const uint64_t away = Enrol("S009");
  clock_.advance_ms(1000);
  ASSERT_EQ(
      Call("POST", "/v1/members/" + std::to_string(away) + "/tier", json{{"tier", "vip"}}).status,
      200);
  clock_.advance_ms(1000);
  Greet("T01", "S001");
  EXPECT_EQ(Download("T01"), (std::set<uint64_t>{}));
  clock_.advance_ms(1000);
  FakeTerminal t{"T01"};
  auto sale = [&](const std::string& id) {
    Sale s =
        PricedSale(t, away, id, Basket(10000), clock_.now_ms(), 0, std::string(64, 'c'), "member");
    clock_.advance_ms(1000);
    return s;
  };
  Sale a = sale("c1"), b = sale("c2");
  auto res = Upload("T01", {{a.entries[0], b.entries[0]}, {a.checkout, b.checkout}, {}});
  ASSERT_EQ(res.results.size(), 2u);
  EXPECT_EQ(res.results[0].status, "created");
  EXPECT_EQ(res.results[1].status, "created");
  // The run's download failed: no page. The next sale, in the next run.
  Sale c = sale("c3");
  const std::string body = sync::SerializeMessage(sync::UploadRequest{c.entries, {c.checkout}, {}});
  hq::InjectStoreFault({"min(received_at_ms) FROM entries", 1, -1, SQLITE_IOERR});
  auto failed = Call("POST", "/v1/sync/T01/entries", body, false);
  const int fired = hq::StoreFaultsFired();
  hq::ClearStoreFaults();
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(failed.status, 503) << failed.body;
  EXPECT_EQ(BalanceAtHq(away), 2 * a.checkout.points_earned);
  res = Upload("T01", {c.entries, {c.checkout}, {}});
  EXPECT_EQ(res.results[0].status, "created");
  EXPECT_EQ(BalanceAtHq(away), 3 * a.checkout.points_earned);
  // A page after the uploads carried the member: a provisional price after it is refused.
  EXPECT_EQ(Download("T01"), (std::set<uint64_t>{away}));
  clock_.advance_ms(1000);
  Sale d = sale("c4");
  EXPECT_EQ(Upload("T01", {d.entries, {d.checkout}, {}}).results[0].status, "refused");
  EXPECT_EQ(BalanceAtHq(away), 3 * a.checkout.points_earned);
}

// A changes page ends before its answer would pass its budget (6 MiB estimated; the
// terminal takes 8): two members of 70,000 lots each (~2.7 MB a snapshot) come on two
// pages. Without the budget, lots enough make a page every later run fails on.
TEST_F(HqScopeTest, AChangesPageEndsBeforeItsAnswerPassesEightMegabytes) {
  Greet("T01", "S001");
  const uint64_t a = Enrol("S001"), b = Enrol("S001");
  ASSERT_TRUE(store_
                  ->Transaction([&]() -> Status {
                    for (uint64_t id : {a, b}) {
                      for (int64_t k = 0; k < 70'000; ++k) {
                        model::Lot l{0, id, 1, 1, kNowMs / 1000, kNowMs / 1000 + 86'400 + k, "e"};
                        if (auto lot = store_->AddLot(l); !lot.ok()) return lot.status();
                      }
                    }
                    return Status::Ok();
                  })
                  .ok());
  std::set<uint64_t> got;
  std::string cursor;
  int pages = 0;
  for (; pages < 10; ++pages) {
    auto r = Call("GET", "/v1/sync/T01/changes?cursor=" + cursor, "", false);
    ASSERT_EQ(r.status, 200) << r.body.substr(0, 200);
    EXPECT_LT(r.body.size(), size_t{8} << 20);
    auto ch = sync::ParseMessage<sync::ChangesResponse>(r.body);
    ASSERT_TRUE(ch.ok()) << ch.status().ToString();
    for (const auto& m : ch->members) {
      EXPECT_EQ(m.lots.size(), 70'000u);
      got.insert(m.member_id);
    }
    cursor = ch->cursor;
    if (!ch->more) break;
  }
  EXPECT_EQ(got, (std::set<uint64_t>{a, b}));
  EXPECT_EQ(pages, 1);  // the second page was the last
}

TEST_F(HqScopeTest, ATerminalsBalanceSetHoldsWhatItWasSent) {
  Greet("T01", "S001");
  Greet("T02", "S001");
  const uint64_t a = Enrol("S001");
  Download("T01");
  Download("T02");
  EXPECT_TRUE(BalancesAre("T01", {{a, 0}}));
  EXPECT_TRUE(BalancesAre("T02", {{a, 0}}));
  FakeTerminal t{"T01"};
  Sale s = PricedSale(t, a, "c1", Basket(10000), kNowMs + 1000, 0, std::string(64, 'c'));
  sync::UploadRequest up{s.entries, {s.checkout}, {}};
  for (const auto& r : Upload("T01", up).results) EXPECT_EQ(r.status, "created");
  const int64_t after = BalanceAtHq(a);
  ASSERT_GT(after, 0);
  // Neither lane has been sent the new balance yet: both sets keep the last one sent.
  EXPECT_TRUE(BalancesAre("T01", {{a, 0}}));
  EXPECT_TRUE(BalancesAre("T02", {{a, 0}}));
  EXPECT_EQ(Download("T02"), (std::set<uint64_t>{a}));
  EXPECT_TRUE(BalancesAre("T02", {{a, after}}));
  EXPECT_TRUE(BalancesAre("T01", {{a, 0}}));
  EXPECT_EQ(Download("T01"), (std::set<uint64_t>{a}));
  EXPECT_TRUE(BalancesAre("T01", {{a, after}}));
  // A repair (POST members by id) sends the snapshot, and the set takes its balance too.
  Greet("T03", "S001");
  sync::MembersRequest repair;
  repair.member_ids = {a};
  ASSERT_EQ(Ask("T03", repair).members.size(), 1u);
  EXPECT_TRUE(BalancesAre("T03", {{a, after}}));
}

TEST_F(HqScopeTest, AMemberWhoStopsShoppingLeavesTheScopeAndComesBackWithTheNextSale) {
  Greet("T01", "S001");
  Greet("T02", "S001");
  const uint64_t enrolled = Enrol("S001"), visitor = Enrol("S009");
  FakeTerminal t{"T01"};
  Sale s = PricedSale(t, visitor, "c1", Basket(10000), kNowMs + 1000);
  Upload("T01", sync::UploadRequest{s.entries, {s.checkout}, {}});
  EXPECT_EQ(Download("T02"), (std::set<uint64_t>{enrolled, visitor}));
  // Thirteen months later both change at HQ: only the member enrolled here is sent.
  clock_.advance_ms(int64_t{13} * 31 * 86'400'000);
  for (uint64_t id : {enrolled, visitor}) {
    ASSERT_EQ(Call("POST", "/v1/members/" + std::to_string(id) + "/adjustments",
                   json{{"adjustment_id", "adj-" + std::to_string(id)},
                        {"points", 10},
                        {"reason", "wechat shop"}})
                  .status,
              201);
  }
  EXPECT_EQ(Download("T02"), (std::set<uint64_t>{enrolled}));
  // The visitor shops here again: back in the scope, with everything since.
  Sale again = PricedSale(t, visitor, "c2", Basket(5000), clock_.now_ms());
  Upload("T01", sync::UploadRequest{again.entries, {again.checkout}, {}});
  EXPECT_EQ(Download("T02"), (std::set<uint64_t>{visitor}));
}

// Eviction (docs/hq.md, "Member scope"): a member who left the store's scope is named on
// the last `changes` page; once the terminal says it dropped them, HQ forgets the holding
// and the terminal's balance set no longer covers them. A member enrolled at the store
// never leaves; one who came back meanwhile is not forgotten.
TEST_F(HqScopeTest, MembersWhoLeftTheScopeAreEvictedAndForgottenOnceDropped) {
  Greet("T01", "S001");
  const uint64_t enrolled = Enrol("S001"), visitor = Enrol("S009"), back = Enrol("S009");
  FakeTerminal t{"T01"};
  for (auto [id, co] : {std::pair{visitor, "c1"}, std::pair{back, "c2"}}) {
    Sale s = PricedSale(t, id, co, Basket(10000), kNowMs + 1000);
    Upload("T01", sync::UploadRequest{s.entries, {s.checkout}, {}});
  }
  EXPECT_EQ(Download("T01"), (std::set<uint64_t>{enrolled, visitor, back}));
  EXPECT_TRUE(evict_["T01"].empty());
  EXPECT_EQ(HeldBalances("T01"), 3u);

  clock_.advance_ms(int64_t{13} * 31 * 86'400'000);
  Download("T01");
  EXPECT_EQ(evict_["T01"],
            (std::vector<uint64_t>{std::min(visitor, back), std::max(visitor, back)}));
  // `back` shops here again before the terminal answers: still in scope, not forgotten.
  Sale again = PricedSale(t, back, "c3", Basket(5000), clock_.now_ms());
  Upload("T01", sync::UploadRequest{again.entries, {again.checkout}, {}});
  // A member the store never held, and one in scope, are not forgotten either.
  EXPECT_EQ(Evicted("T01", {visitor, back, enrolled, 424242}).forgotten, 1);
  EXPECT_EQ(HeldBalances("T01"), 2u);
  Download("T01");
  EXPECT_TRUE(evict_["T01"].empty());
  // Said twice (a retried request): nothing more to forget.
  EXPECT_EQ(Evicted("T01", {visitor}).forgotten, 0);
  // A look-up brings the visitor back to the terminal, held again.
  sync::MembersRequest ask;
  ask.member_ids = {visitor};
  ask.identities.emplace();
  EXPECT_EQ(Ask("T01", ask).members.size(), 1u);
  EXPECT_EQ(HeldBalances("T01"), 3u);
  Download("T01");
  EXPECT_TRUE(evict_["T01"].empty());
}

// A terminal HQ has had no hello from yet (a new lane, before its first run) names its store
// in a look-up or a sale it asks for: the member is counted in that store's scope, so the
// store's lanes download them and the terminal's first run keeps them (no eviction).
TEST_F(HqScopeTest, ALookUpOrASaleBeforeTheFirstHelloCountsInTheStoreItNames) {
  Greet("T01", "S001");
  Greet("T06", "S002");
  const uint64_t looked = Enrol("S001"), bought = Enrol("S001");
  FakeTerminal t{"T01"};
  Sale s = PricedSale(t, bought, "c1", Basket(10000), kNowMs + 1000);
  Upload("T01", sync::UploadRequest{s.entries, {s.checkout}, {}});
  EXPECT_TRUE(Download("T06").empty());

  sync::MembersRequest ask;
  ask.member_ids = {looked};
  ask.identities.emplace();
  ask.store_id = "S002";
  ASSERT_EQ(Ask("T05", ask).members.size(), 1u);
  EXPECT_EQ(HeldBalances("T05"), 1u);
  auto r = Call("POST", "/v1/sync/T07/sale",
                sync::SerializeMessage(sync::SaleRequest{"T01", "c1", "S002"}), false);
  ASSERT_EQ(r.status, 200) << r.body;
  auto sale = sync::ParseMessage<sync::SaleResponse>(r.body);
  ASSERT_TRUE(sale.ok()) << r.body;
  ASSERT_EQ(sale->members.size(), 1u);
  EXPECT_EQ(sale->members[0].member_id, bought);

  // The store's other lane gets both; each new lane's first run keeps what it was sent.
  EXPECT_EQ(Download("T06"), (std::set<uint64_t>{looked, bought}));
  for (const char* tid : {"T05", "T07"}) {
    Greet(tid, "S002");
    EXPECT_EQ(Download(tid), (std::set<uint64_t>{looked, bought})) << tid;
    EXPECT_TRUE(evict_[tid].empty()) << tid;
  }
  EXPECT_EQ(HeldBalances("T05"), 2u);
  EXPECT_EQ(HeldBalances("T07"), 2u);
}

}  // namespace
}  // namespace loyalty::hq::testing
