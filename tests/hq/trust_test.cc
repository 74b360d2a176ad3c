// What HQ trusts (hq-and-sync.md): a terminal's upload is believed only as far as HQ can check
// it. Each forgery here comes with a genuine terminal id and a hash chain that verifies; HQ
// stores it once, applies it to nothing, reports entry_refused, and honest uploads go on.
#include <sqlite3.h>

#include <algorithm>
#include <map>
#include <set>

#include "hq_test_util.h"

namespace loyalty::hq::testing {
namespace {

using nlohmann::json;

class HqTrustTest : public HqFixture {
 protected:
  std::vector<json> Refusals(const std::string& id) {
    std::vector<json> out;
    json view = Member(id);
    for (const auto& c : view["conflicts"]) {
      if (c["kind"] == "entry_refused") out.push_back(c);
    }
    return out;
  }
  std::set<std::string> RefusalReasons(const std::string& tid) {
    std::set<std::string> out;
    json view = J(Call("GET", "/v1/terminals/" + tid));
    for (const auto& c : view["conflicts"]) {
      if (c["kind"] == "entry_refused") out.insert(c["detail"]["reason"].get<std::string>());
    }
    return out;
  }
  int64_t Balance(const std::string& id) { return Member(id)["balance"]; }
  // T01 uploads these sales (their checkouts and entries) and `more` entries after them: the
  // statuses of the entries, in order.
  std::vector<std::string> UploadSales(const std::vector<const Sale*>& sales,
                                       const std::vector<sync::Entry>& more = {}) {
    sync::UploadRequest up;
    for (const Sale* s : sales) {
      up.checkouts.push_back(s->checkout);
      up.entries.insert(up.entries.end(), s->entries.begin(), s->entries.end());
    }
    up.entries.insert(up.entries.end(), more.begin(), more.end());
    std::vector<std::string> out;
    for (const auto& r : Upload("T01", up).results) out.push_back(r.status);
    return out;
  }
  // The status of the redeem entry of a sale redeeming 1000 points for m at at_ms (a dynamic
  // code), which t uploads alone.
  std::string RedeemStatus(FakeTerminal& t, uint64_t m, const std::string& cid, int64_t at_ms) {
    Sale s = PricedSale(t, m, cid, Basket(10000), at_ms, 1000, std::string(64, 'c'));
    auto res = Upload(t.id, {s.entries, {s.checkout}, {}});
    EXPECT_EQ(res.results.size(), 2u);
    return res.results.size() == 2 ? res.results[1].status : std::string();
  }
  // A member with `points` from an HQ adjustment, downloaded by T01 a second ago.
  std::string SeededMember(int64_t points) {
    std::string id = CreateMember();
    EXPECT_EQ(Call("POST", "/v1/members/" + id + "/adjustments",
                   json{{"adjustment_id", "a1"}, {"points", points}, {"reason", "seed"}})
                  .status,
              201);
    EXPECT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);
    clock_.advance_ms(1000);
    return id;
  }
  // The invariant: HQ's balance is the sum of the applied entries.
  void ExpectBalanceIsAppliedSum(const std::string& id) {
    auto sum = store_->SumMemberPoints(std::stoull(id));
    ASSERT_TRUE(sum.ok());
    EXPECT_EQ(*sum, Balance(id));
  }
};

TEST_F(HqTrustTest, HqKindsFromATerminalAreRefusedButKeptInTheChain) {
  std::string id = CreateMember();
  uint64_t m = std::stoull(id);
  FakeTerminal t{"T01"};
  sync::UploadRequest up;
  up.entries = {t.Make("adjust", m, 1'000'000'000'000'000, kNowMs, "", R"({"reason":"gift"})"),
                t.Make("unfreeze", m, 0, kNowMs),
                t.Make("tier_change", m, 0, kNowMs, "", R"({"to":"black"})"),
                t.Make("expire", m, -5, kNowMs)};
  auto res = Upload("T01", up);
  ASSERT_EQ(res.results.size(), 4u);
  for (const auto& r : res.results) EXPECT_EQ(r.status, "refused");
  EXPECT_EQ(Balance(id), 0);
  EXPECT_EQ(Member(id)["tier"], "member");
  EXPECT_EQ(Member(id)["entries"], 4);  // stored once each, counted
  EXPECT_EQ(RefusalReasons("T01"), (std::set<std::string>{"kind_not_allowed"}));
  EXPECT_EQ(Refusals(id).size(), 4u);
  // A resend is still `exists`; nothing is counted twice; the chain verifies.
  res = Upload("T01", up);
  for (const auto& r : res.results) EXPECT_EQ(r.status, "exists");
  EXPECT_EQ(Refusals(id).size(), 4u);
  auto view = J(Call("GET", "/v1/terminals/T01"));
  EXPECT_EQ(view["chain_ok"], true);
  EXPECT_EQ(view["last_seq"], 4);
  ExpectBalanceIsAppliedSum(id);
}

// An entry for a member HQ never enrolled is refused and makes no member: a till cannot take
// an id before HQ enrols it (a zero-point correction had made one, and blocked the id).
TEST_F(HqTrustTest, AnEntryForAMemberHqDoesNotHoldMakesNone) {
  FakeTerminal t{"T01"};
  const uint64_t ghost = 999;
  ASSERT_EQ(Call("GET", "/v1/members/999").status, 404);
  sync::UploadRequest up;
  up.entries = {t.Make("correction", ghost, 0, kNowMs), t.Make("freeze", ghost, 0, kNowMs + 1)};
  auto res = Upload("T01", up);
  ASSERT_EQ(res.results.size(), 2u);
  for (const auto& r : res.results) EXPECT_EQ(r.status, "refused");
  EXPECT_EQ(RefusalReasons("T01"), (std::set<std::string>{"member_unknown"}));
  EXPECT_EQ(Call("GET", "/v1/members/999").status, 404);
  auto made = Call("POST", "/v1/members", json{{"member_id", "999"}, {"name", "real"}});
  EXPECT_EQ(made.status, 201) << made.body;
  // Resent after the member exists: still the entries HQ stored, refused once.
  res = Upload("T01", up);
  for (const auto& r : res.results) EXPECT_EQ(r.status, "exists");
  auto view = J(Call("GET", "/v1/terminals/T01"));
  EXPECT_EQ(view["chain_ok"], true);
}

TEST_F(HqTrustTest, PointsMustFollowACheckoutHqPricesAgain) {
  std::string id = CreateMember();
  uint64_t m = std::stoull(id);
  FakeTerminal t{"T01"};
  // An honest 100-yuan sale: 100 points.
  Sale honest = PricedSale(t, m, "c1", Basket(10000), kNowMs);
  // The same basket claiming 1,000,000 points.
  Sale forged = PricedSale(t, m, "c2", Basket(10000), kNowMs + 1);
  forged.checkout.points_earned = 1'000'000;
  forged.entries[0] = t.Make("earn", m, 1'000'000, kNowMs + 1, "c2");
  // An earn naming no checkout, and one naming a checkout never uploaded.
  sync::Entry bare = t.Make("earn", m, 50, kNowMs + 2);
  sync::Entry orphan = t.Make("earn", m, 50, kNowMs + 3, "c-missing");
  // An earn of the honest checkout's points again, under a new id.
  sync::Entry again = t.Make("earn", m, 100, kNowMs + 4, "c1");
  // Priced with a rules version HQ never published.
  Sale unknown_rules = PricedSale(t, m, "c3", Basket(10000), kNowMs + 5);
  unknown_rules.checkout.rules_version = "rooted-2026";
  // Priced as black although the member is a plain member.
  Sale as_black = PricedSale(t, m, "c4", Basket(10000), kNowMs + 6, 0, "", "black");
  sync::UploadRequest up;
  up.entries = {honest.entries[0],        forged.entries[0],  bare, orphan, again,
                unknown_rules.entries[0], as_black.entries[0]};
  up.checkouts = {honest.checkout, forged.checkout, unknown_rules.checkout, as_black.checkout};
  auto res = Upload("T01", up);
  ASSERT_EQ(res.results.size(), 7u);
  EXPECT_EQ(res.results[0].status, "created");
  for (size_t i = 1; i < 7; ++i) EXPECT_EQ(res.results[i].status, "refused") << i;
  EXPECT_EQ(Balance(id), 100);
  EXPECT_EQ(RefusalReasons("T01"),
            (std::set<std::string>{"price_mismatch", "checkout_refused", "record_missing",
                                   "duplicate", "rules_version_unknown"}));
  // Refused checkouts count in no spend.
  EXPECT_EQ(Member(id)["month_spend_cents"], 10000);
  ExpectBalanceIsAppliedSum(id);
}

// A coupon is priced only as HQ holds it: this member's (or anyone's), inside its validity
// period at the second of the commit, as the terminal itself checks at the till.
TEST_F(HqTrustTest, ACouponMustBeTheMembersAndValidAtTheCommit) {
  std::string id = CreateMember();
  std::string other = CreateMember();
  uint64_t m = std::stoull(id);
  const int64_t now_s = kNowMs / 1000;
  auto make = [&](const std::string& cid, const std::string& member, int64_t from, int64_t to) {
    ASSERT_EQ(Call("POST", "/v1/coupons",
                   json{{"coupon_id", cid},
                        {"member_id", member},
                        {"kind", "amount_off"},
                        {"value_cents", 1000},
                        {"min_spend_cents", 5000},
                        {"valid_from", from},
                        {"valid_to", to}})
                  .status,
              201);
  };
  make("in", id, now_s - 86400, now_s + 86400);
  make("edge", "0", now_s, now_s + 10);
  make("over", id, now_s - 86400, now_s - 1);
  make("early", id, now_s + 1, now_s + 86400);
  make("theirs", other, now_s - 86400, now_s + 86400);
  auto with = [](const std::string& cid) {
    rules::Coupon c;
    c.coupon_id = cid;
    c.value_cents = 1000;
    c.min_spend_cents = 5000;
    return c;
  };
  FakeTerminal t{"T01"};
  sync::UploadRequest up;
  // Accepted: inside the period, and the first and last millisecond of its edges.
  std::vector<Sale> sales = {
      PricedSale(t, m, "c-in", Basket(10000), kNowMs + 10, 0, "", "member", with("in")),
      PricedSale(t, m, "c-edge1", Basket(10000), kNowMs, 0, "", "member", with("edge")),
      PricedSale(t, m, "c-edge2", Basket(10000), (now_s + 10) * 1000 + 999, 0, "", "member",
                 with("edge")),
      // Refused: after its end, before its start (by one second), another member's, unknown.
      PricedSale(t, m, "c-over", Basket(10000), kNowMs + 20, 0, "", "member", with("over")),
      PricedSale(t, m, "c-early", Basket(10000), kNowMs + 999, 0, "", "member", with("early")),
      PricedSale(t, m, "c-theirs", Basket(10000), kNowMs + 30, 0, "", "member", with("theirs")),
      PricedSale(t, m, "c-none", Basket(10000), kNowMs + 40, 0, "", "member", with("none"))};
  std::sort(sales.begin(), sales.end(), [](const Sale& a, const Sale& b) {
    return a.checkout.committed_at_ms < b.checkout.committed_at_ms;
  });
  std::map<std::string, std::string> status_of;
  for (const auto& s : sales) {
    up.entries.push_back(s.entries[0]);
    up.checkouts.push_back(s.checkout);
  }
  auto res = Upload("T01", up);
  ASSERT_EQ(res.results.size(), sales.size());
  for (size_t i = 0; i < sales.size(); ++i)
    status_of[sales[i].checkout.checkout_id] = res.results[i].status;
  EXPECT_EQ(status_of, (std::map<std::string, std::string>{{"c-in", "created"},
                                                           {"c-edge1", "created"},
                                                           {"c-edge2", "created"},
                                                           {"c-over", "refused"},
                                                           {"c-early", "refused"},
                                                           {"c-theirs", "refused"},
                                                           {"c-none", "refused"}}));
  EXPECT_EQ(RefusalReasons("T01"),
            (std::set<std::string>{"coupon_out_of_period", "coupon_not_for_member",
                                   "coupon_unknown", "checkout_refused"}));
  EXPECT_EQ(Balance(id), 3 * 90);
  EXPECT_EQ(Member(id)["month_spend_cents"], 3 * 9000);
  ExpectBalanceIsAppliedSum(id);
}

// One bad record never stops the chain: a sale past the Limits of loyalty-rules.md (a
// quantity, a unit price, a sku) is refused alone, stored in the chain with its entries
// refused; the other sales of the same upload are applied, and the next upload goes on.
TEST_F(HqTrustTest, ARecordPastTheRulesLimitsIsRefusedAlone) {
  std::string id = CreateMember();
  uint64_t m = std::stoull(id);
  FakeTerminal t{"T01"};
  Sale good = PricedSale(t, m, "c-good", Basket(10000), kNowMs);
  auto bad = [&](const std::string& cid, int64_t at, auto change) {
    Sale s = PricedSale(t, m, cid, Basket(10000), at);
    change(s.checkout.lines[0]);
    return s;
  };
  Sale qty = bad("c-qty", kNowMs + 1, [](sync::CheckoutLine& l) { l.qty = 10001; });
  Sale neg = bad("c-neg", kNowMs + 2, [](sync::CheckoutLine& l) { l.qty = -5; });
  Sale price = bad("c-price", kNowMs + 3, [](sync::CheckoutLine& l) {
    l.unit_price_cents = rules::kMaxUnitPriceCents + 1;
  });
  Sale sku = bad("c-sku", kNowMs + 4, [](sync::CheckoutLine& l) { l.sku = std::string(65, 's'); });
  sync::UploadRequest up;
  for (const Sale* s : {&good, &qty, &neg, &price, &sku}) {
    up.entries.push_back(s->entries[0]);
    up.checkouts.push_back(s->checkout);
  }
  auto res = Upload("T01", up);
  ASSERT_EQ(res.results.size(), 5u);
  EXPECT_EQ(res.results[0].status, "created");
  for (size_t i = 1; i < 5; ++i) EXPECT_EQ(res.results[i].status, "refused") << i;
  EXPECT_EQ(RefusalReasons("T01"),
            (std::set<std::string>{"value_out_of_range", "checkout_refused"}));
  EXPECT_EQ(Balance(id), 100);
  // A refund of the good sale with a quantity past the limits: refused alone as well.
  sync::Refund r{"r1", "c-good", "", "return", kNowMs + 1000, 10000, 100, 0, "{}", {{0, 10001}}};
  sync::Entry claw = t.MakeFull("clawback", m, -100, kNowMs + 1000, "c-good", "r1", "");
  Sale next = PricedSale(t, m, "c-next", Basket(5000), kNowMs + 2000);
  res = Upload("T01", {{claw, next.entries[0]}, {next.checkout}, {r}});
  ASSERT_EQ(res.results.size(), 2u);
  EXPECT_EQ(res.results[0].status, "refused");
  EXPECT_EQ(res.results[1].status, "created");
  EXPECT_EQ(Balance(id), 150);
  auto view = J(Call("GET", "/v1/terminals/T01"));
  EXPECT_EQ(view["chain_ok"], true);
  EXPECT_EQ(view["last_seq"], 7);
  ExpectBalanceIsAppliedSum(id);
  // A refund of a refused sale is refused too, and concerns the sale's member.
  sync::Refund of_refused{"r2", "c-qty", "", "return", kNowMs + 3000, 0, 0, 0, "{}", {{0, 1}}};
  Upload("T01", {{}, {}, {of_refused}});
  bool listed = false;
  for (const auto& c : Refusals(id))
    listed = listed || (c["detail"].value("refund_id", "") == "r2" &&
                        c["detail"].value("reason", "") == "checkout_refused");
  EXPECT_TRUE(listed) << Member(id).dump();
  // The refused refund is read back with the sale's other refunds: a later one goes through.
  sync::Refund r3{"r3", "c-good", "", "return", kNowMs + 4000, 10000, 100, 0, "{}", {{0, 1}}};
  sync::Entry claw3 = t.MakeFull("clawback", m, -100, kNowMs + 4000, "c-good", "r3", "");
  res = Upload("T01", {{claw3}, {}, {r3}});
  ASSERT_EQ(res.results.size(), 1u);
  EXPECT_EQ(res.results[0].status, "created");
  EXPECT_EQ(Balance(id), 50);
  ExpectBalanceIsAppliedSum(id);
  // The terminal restored from its backup fetches its records: every entry, and the records
  // its codec can read; those past the limits are left out, never sent (hq-and-sync.md).
  sync::FetchRequest f;
  for (const Sale* s : {&good, &qty, &neg, &price, &sku, &next})
    f.entry_ids.push_back(s->entries[0].entry_id);
  f.entry_ids.push_back(claw.entry_id);
  f.entry_ids.push_back(claw3.entry_id);
  f.without_entries_after = "";
  auto fetched = Call("POST", "/v1/sync/T01/fetch", sync::SerializeMessage(f), false);
  ASSERT_EQ(fetched.status, 200) << fetched.body;
  auto got = sync::ParseMessage<sync::FetchResponse>(fetched.body);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->entries.size(), 8u);
  std::set<std::string> checkouts, refunds;
  for (const auto& c : got->checkouts) checkouts.insert(c.checkout_id);
  for (const auto& r : got->refunds) refunds.insert(r.refund_id);
  EXPECT_TRUE(checkouts.count("c-good") && checkouts.count("c-next"));
  for (const char* past : {"c-qty", "c-neg", "c-price"}) EXPECT_FALSE(checkouts.count(past));
  EXPECT_EQ(refunds, (std::set<std::string>{"r2", "r3"}));
}

TEST_F(HqTrustTest, RedemptionIsCheckedAgainstWhatTheTerminalCouldKnow) {
  std::string id = CreateMember();
  uint64_t m = std::stoull(id);
  ASSERT_EQ(Call("POST", "/v1/members/" + id + "/adjustments",
                 json{{"adjustment_id", "a1"}, {"points", 3000}, {"reason", "seed"}})
                .status,
            201);
  std::string code(64, 'c');
  FakeTerminal t{"T01"};
  // Never downloaded the member: it knew no balance (and its snapshot was stale).
  Sale blind = PricedSale(t, m, "c1", Basket(100000), kNowMs + 10, 1000, code);
  auto res = Upload("T01", {blind.entries, {blind.checkout}, {}});
  EXPECT_EQ(res.results[0].status, "created");  // the earn is fine
  EXPECT_EQ(res.results[1].status, "refused");  // the redemption is not
  EXPECT_EQ(RefusalReasons("T01"), (std::set<std::string>{"insufficient_points"}));
  // After a download it knows 3000 (+ its earn of c1): a redemption within that stands
  // (past the cooldown after the first one, which the terminal recorded).
  ASSERT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);
  clock_.advance_ms(1000);
  Sale ok = PricedSale(t, m, "c2", Basket(100000), kNowMs + 700'000, 2000, code);
  res = Upload("T01", {ok.entries, {ok.checkout}, {}});
  EXPECT_EQ(res.results[0].status, "created");
  EXPECT_EQ(res.results[1].status, "created");
  // More than it could know is refused.
  Sale over = PricedSale(t, m, "c3", Basket(1000000), kNowMs + 1'400'000, 5000, code);
  res = Upload("T01", {over.entries, {over.checkout}, {}});
  EXPECT_EQ(res.results[1].status, "refused");
  // A static card cannot redeem: pricing refuses the whole checkout.
  Sale card = PricedSale(t, m, "c4", Basket(10000), kNowMs + 2'100'000, 0, "");
  card.checkout.redeemed_points = 100;
  card.entries.push_back(t.Make("redeem", m, -100, kNowMs + 2'100'000, "c4"));
  res = Upload("T01", {card.entries, {card.checkout}, {}});
  EXPECT_EQ(res.results[1].status, "refused");
  EXPECT_EQ(Balance(id), 3000 + blind.checkout.points_earned + ok.checkout.points_earned - 2000 +
                             over.checkout.points_earned);
  ExpectBalanceIsAppliedSum(id);
}

// A changes page whose answer was lost never reached the terminal: its next hello names the
// cursor it holds, and a sale it priced with what it did hold stands. A terminal that did
// receive the page (its hello names the page's cursor) knew the new tier: the same sale from
// it is refused.
TEST_F(HqTrustTest, APageWhoseAnswerWasLostIsNotWhatTheTerminalCouldKnow) {
  std::string id = CreateMember();
  uint64_t m = std::stoull(id);
  auto page = [&](const std::string& tid, const std::string& cursor) {
    auto r = Call("GET", "/v1/sync/" + tid + "/changes?cursor=" + cursor, "", false);
    EXPECT_EQ(r.status, 200) << r.body;
    return J(r)["cursor"].get<std::string>();
  };
  auto hello = [&](const std::string& tid, const std::string& cursor) {
    json h = json::parse(Hello(tid));
    h["cursor"] = cursor;
    EXPECT_EQ(Call("POST", "/v1/sync/" + tid + "/hello", h, false).status, 200);
  };
  const std::string lost_at = page("T01", ""), got_at = page("T02", "");
  clock_.advance_ms(1000);
  ASSERT_EQ(Call("POST", "/v1/members/" + id + "/tier", json{{"tier", "vip"}}).status, 200);
  clock_.advance_ms(1000);
  page("T01", lost_at);  // served; the answer is lost on the way
  const std::string newer = page("T02", got_at);
  ASSERT_NE(newer, got_at);
  FakeTerminal t1{"T01"}, t2{"T02"};
  Sale a = PricedSale(t1, m, "c1", Basket(10000), kNowMs + 3000);  // priced as "member"
  Sale b = PricedSale(t2, m, "c1", Basket(10000), kNowMs + 3000);
  clock_.advance_ms(2000);
  hello("T01", lost_at);
  hello("T02", newer);
  EXPECT_EQ(Upload("T01", {a.entries, {a.checkout}, {}}).results[0].status, "created");
  EXPECT_TRUE(RefusalReasons("T01").empty());
  EXPECT_EQ(Upload("T02", {b.entries, {b.checkout}, {}}).results[0].status, "refused");
  EXPECT_TRUE(RefusalReasons("T02").count("price_mismatch"));
  ExpectBalanceIsAppliedSum(id);
}

// A cursor HQ has no record of giving this terminal — one it never gave, or one given after
// the backup HQ was restored from, whose values HQ's later changes reuse — is refused, so
// the terminal downloads again from the beginning instead of missing the changes between.
TEST_F(HqTrustTest, ACursorHqHasNoRecordOfGivingIsRefused) {
  CreateMember();
  auto page = [&](const std::string& tid, const std::string& cursor) {
    return Call("GET", "/v1/sync/" + tid + "/changes?cursor=" + cursor, "", false);
  };
  auto first = page("T01", "");
  ASSERT_EQ(first.status, 200);
  const std::string given = J(first)["cursor"];
  CreateMember({{"name", "李四"}});  // a change: HQ's newest is past the cursor given
  clock_.advance_ms(1000);
  EXPECT_EQ(page("T01", given).status, 200);
  // T02 never got a page: a cursor of T01's, or any other, is not T02's to name — once
  // T02 holds a recorded cursor.
  ASSERT_EQ(page("T02", "").status, 200);
  auto refused = page("T02", std::to_string(std::stoll(given) - 1));
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(J(refused)["error"]["code"], "bad_request");
  // As after a restore: the records of the pages given since are gone.
  ASSERT_TRUE(
      loyalty::testing::ExecOnTestHqStore(
          dir_,
          "DELETE FROM terminal_downloads WHERE terminal_id = 'T01' AND cursor_seq = " + given)
          .ok());
  EXPECT_EQ(page("T01", given).status, 400);
}

// A look-up of one member is a download of that member only: a sale of another member the
// terminal holds, priced with its snapshot from the last changes page, stands. And a look-up
// answer may never have arrived (HQ answered after the terminal's timeout): a sale priced with
// the page's state after it stands as well as one priced with the answer's; a state the member
// never held since the page is still refused.
TEST_F(HqTrustTest, ALookUpIsADownloadOfTheMembersItCarriedOnly) {
  std::string x = CreateMember(), y = CreateMember({{"name", "李四"}});
  ASSERT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);
  clock_.advance_ms(1000);
  ASSERT_EQ(Call("POST", "/v1/members/" + x + "/tier", json{{"tier", "vip"}}).status, 200);
  clock_.advance_ms(1000);
  auto look = Call("POST", "/v1/sync/T01/members", json{{"member_ids", {y}}}, false);
  ASSERT_EQ(look.status, 200) << look.body;
  FakeTerminal t{"T01"};
  Sale sale = PricedSale(t, std::stoull(x), "c1", Basket(10000), kNowMs + 3000);  // "member"
  clock_.advance_ms(2000);
  EXPECT_EQ(Upload("T01", {sale.entries, {sale.checkout}, {}}).results[0].status, "created");
  EXPECT_TRUE(RefusalReasons("T01").empty());
  // A look-up of x itself, whose answer (vip) the terminal may not have received.
  look = Call("POST", "/v1/sync/T01/members", json{{"member_ids", {x}}}, false);
  ASSERT_EQ(look.status, 200) << look.body;
  clock_.advance_ms(1000);
  Sale lost = PricedSale(t, std::stoull(x), "c2", Basket(10000), kNowMs + 6000);  // the page's
  Sale got = PricedSale(t, std::stoull(x), "c3", Basket(10000), kNowMs + 6001, 0, "", "vip");
  Sale never = PricedSale(t, std::stoull(x), "c4", Basket(10000), kNowMs + 6002, 0, "", "black");
  clock_.advance_ms(1000);
  auto res = Upload("T01", {{lost.entries[0], got.entries[0], never.entries[0]},
                            {lost.checkout, got.checkout, never.checkout},
                            {}});
  ASSERT_EQ(res.results.size(), 3u);
  EXPECT_EQ(res.results[0].status, "created");
  EXPECT_EQ(res.results[1].status, "created");
  EXPECT_EQ(res.results[2].status, "refused");
  EXPECT_EQ(RefusalReasons("T01"), (std::set<std::string>{"checkout_refused", "price_mismatch"}));
  // Once a changes page came after the look-up, the terminal holds what it says: the state
  // before the look-up is refused.
  ASSERT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);
  clock_.advance_ms(1000);
  Sale old = PricedSale(t, std::stoull(x), "c5", Basket(10000), kNowMs + 9000);
  EXPECT_EQ(Upload("T01", {old.entries, {old.checkout}, {}}).results[0].status, "refused");
}

// A download and a state change HQ recorded in the same millisecond: which came first is
// unknown, so the terminal may hold either state. A sale priced with the state before the
// change stands (it was refused as price_mismatch when the change took the download's time).
TEST_F(HqTrustTest, AStateChangeInTheMillisecondOfADownloadLeavesBothStatesPossible) {
  std::string id = CreateMember();
  uint64_t m = std::stoull(id);
  clock_.advance_ms(1000);
  ASSERT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);
  ASSERT_EQ(Call("POST", "/v1/members/" + id + "/tier", json{{"tier", "vip"}}).status, 200);
  clock_.advance_ms(1000);
  FakeTerminal t{"T01"};
  Sale as_member = PricedSale(t, m, "c1", Basket(10000), kNowMs + 2000, 0, "", "member");
  Sale as_vip = PricedSale(t, m, "c2", Basket(10000), kNowMs + 2001, 0, "", "vip");
  ASSERT_NE(as_member.checkout.total_due_cents, as_vip.checkout.total_due_cents);
  std::vector<sync::Entry> entries = as_member.entries;
  entries.insert(entries.end(), as_vip.entries.begin(), as_vip.entries.end());
  auto res = Upload("T01", {entries, {as_member.checkout, as_vip.checkout}, {}});
  ASSERT_EQ(res.results.size(), 2u);
  EXPECT_EQ(res.results[0].status, "created");
  EXPECT_EQ(res.results[1].status, "created");
  EXPECT_EQ(RefusalReasons("T01"), std::set<std::string>{});
  // A millisecond later the download is known to hold the change: the old state is not,
  // once the terminal has had the moment it takes to write the page (a second).
  clock_.advance_ms(1000);
  ASSERT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);
  clock_.advance_ms(1);
  ASSERT_EQ(Call("POST", "/v1/members/" + id + "/tier", json{{"tier", "black"}}).status, 200);
  clock_.advance_ms(8000);
  Sale stale = PricedSale(t, m, "c3", Basket(10000), kNowMs + 8002, 0, "", "member");
  res = Upload("T01", {stale.entries, {stale.checkout}, {}});
  ASSERT_EQ(res.results.size(), 1u);
  EXPECT_EQ(res.results[0].status, "refused");
  EXPECT_EQ(RefusalReasons("T01"), (std::set<std::string>{"price_mismatch", "checkout_refused"}));
  ExpectBalanceIsAppliedSum(id);
}

// HQ records a changes page when it sends it; the terminal's run writes it a moment later.
// A sale committed in between was priced with the page before (a black-box audit: 31 ms
// after the page, priced with the tier it replaced, refused and its points lost): within a
// second of a page the states since the page before it stand too, and before the first page
// the member unknown to the terminal (provisional); past that, only the page's.
TEST_F(HqTrustTest, ASaleInTheMomentBeforeItsPageIsWrittenKeepsThePageBefore) {
  std::string id = CreateMember();
  uint64_t m = std::stoull(id);
  ASSERT_EQ(Call("POST", "/v1/members/" + id + "/tier", json{{"tier", "black"}}).status, 200);
  clock_.advance_ms(1000);
  ASSERT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);  // black
  const int64_t page1 = kNowMs + 1000;
  clock_.advance_ms(60'000);
  ASSERT_EQ(Call("POST", "/v1/members/" + id + "/tier", json{{"tier", "vip"}}).status, 200);
  clock_.advance_ms(1000);
  ASSERT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);  // vip
  const int64_t page2 = page1 + 61'000;
  clock_.advance_ms(20'000);
  FakeTerminal t{"T01"};
  Sale just_after = PricedSale(t, m, "c1", Basket(10000), page2 + 31, 0, "", "black");
  Sale at_edge = PricedSale(t, m, "c2", Basket(10000), page2 + 999, 0, "", "black");
  Sale later = PricedSale(t, m, "c3", Basket(10000), page2 + 1000, 0, "", "black");
  Sale as_vip = PricedSale(t, m, "c4", Basket(10000), page2 + 1001, 0, "", "vip");
  EXPECT_EQ(UploadSales({&just_after, &at_edge, &later, &as_vip}),
            (std::vector<std::string>{"created", "created", "refused", "created"}));
  // The first page a terminal gets: a sale in the moment before it is written had no
  // snapshot of the member (a provisional member); past the moment, it did.
  std::string id2 = CreateMember({{"name", "李四"}});
  uint64_t m2 = std::stoull(id2);
  clock_.advance_ms(1000);
  ASSERT_EQ(Call("POST", "/v1/members/" + id2 + "/tier", json{{"tier", "vip"}}).status, 200);
  clock_.advance_ms(1000);
  ASSERT_EQ(Call("POST", "/v1/sync/T02/hello", Hello("T02"), false).status, 200);  // its store's
  auto page = Call("GET", "/v1/sync/T02/changes", "", false);
  ASSERT_EQ(page.status, 200);
  ASSERT_NE(page.body.find(id2), std::string::npos) << page.body;  // T02 holds the member
  const int64_t first = page2 + 22'000;
  clock_.advance_ms(20'000);
  FakeTerminal t2{"T02"};
  Sale provisional = PricedSale(t2, m2, "d1", Basket(10000), first + 100, 0, "", "member");
  Sale too_late = PricedSale(t2, m2, "d2", Basket(10000), first + 2000, 0, "", "member");
  sync::UploadRequest up{{}, {provisional.checkout, too_late.checkout}, {}};
  for (const auto* s : {&provisional, &too_late})
    up.entries.insert(up.entries.end(), s->entries.begin(), s->entries.end());
  std::vector<std::string> got;
  for (const auto& r : Upload("T02", up).results) got.push_back(r.status);
  EXPECT_EQ(got, (std::vector<std::string>{"created", "refused"}));
  ExpectBalanceIsAppliedSum(id);
  ExpectBalanceIsAppliedSum(id2);
}

// loyalty-rules.md: a request for "max" takes the cap, whatever the balance; only a request
// for a number of points is limited to 100,000,000. A terminal's "max" of more than that is
// priced again as "max", and stands.
TEST_F(HqTrustTest, AMaxRedemptionPastTheLimitOfARequestedNumberStands) {
  const int64_t kBalance = 100'000'100;
  std::string id = SeededMember(kBalance);
  uint64_t m = std::stoull(id);
  FakeTerminal t{"T01"};
  rules::QuoteInput in;
  in.lines = {{"sku-1", 10000, 100'000'000, "grocery"}};
  rules::MemberContext ctx;
  ctx.available_balance = kBalance;
  in.member = ctx;
  in.redeem.max = true;
  Sale big = PricedSaleOf(t, m, "c1", in, kNowMs + 10, std::string(64, 'c'));
  ASSERT_EQ(big.checkout.redeemed_points, kBalance);
  auto res = Upload("T01", {big.entries, {big.checkout}, {}});
  ASSERT_EQ(res.results.size(), 2u);
  EXPECT_EQ(res.results[0].status, "created");
  EXPECT_EQ(res.results[1].status, "created");
  EXPECT_EQ(RefusalReasons("T01"), std::set<std::string>{});
  EXPECT_EQ(Balance(id), big.checkout.points_earned);
  ExpectBalanceIsAppliedSum(id);
}

// loyalty-rules.md: a member redeems at most once per redeem_cooldown_s on a terminal. A
// redemption the terminal could not have allowed — less than that after the member's last
// one in its own chain, whatever HQ made of that one — is refused (cooldown_active).
TEST_F(HqTrustTest, ARedemptionInsideTheCooldownIsRefused) {
  std::string id = CreateMember();
  uint64_t m = std::stoull(id);
  ASSERT_EQ(Call("POST", "/v1/members/" + id + "/adjustments",
                 json{{"adjustment_id", "a1"}, {"points", 20000}, {"reason", "seed"}})
                .status,
            201);
  for (const char* tid : {"/v1/sync/T01/changes", "/v1/sync/T02/changes"}) {
    ASSERT_EQ(Call("GET", tid, "", false).status, 200);
  }
  clock_.advance_ms(1000);
  const std::string code(64, 'c');
  const int64_t t0 = kNowMs + 10'000, cooldown_ms = 600'000;
  FakeTerminal a{"T01"}, b{"T02"};
  auto redeem_status = [&](FakeTerminal& t, const std::string& tid, const std::string& cid,
                           int64_t at_ms) {
    Sale s = PricedSale(t, m, cid, Basket(10000), at_ms, 1000, code);
    auto res = Upload(tid, {s.entries, {s.checkout}, {}});
    EXPECT_EQ(res.results.size(), 2u);
    return res.results.size() == 2 ? res.results[1].status : std::string();
  };
  EXPECT_EQ(redeem_status(a, "T01", "c1", t0), "created");
  EXPECT_EQ(redeem_status(a, "T01", "c2", t0 + cooldown_ms - 1), "refused");
  EXPECT_EQ(RefusalReasons("T01"), (std::set<std::string>{"cooldown_active"}));
  // The refused one is still in the terminal's chain: the cooldown runs from it.
  EXPECT_EQ(redeem_status(a, "T01", "c3", t0 + cooldown_ms), "refused");
  EXPECT_EQ(redeem_status(a, "T01", "c4", t0 + 2 * cooldown_ms), "created");
  // Another terminal has its own cooldown.
  EXPECT_EQ(redeem_status(b, "T02", "c5", t0 + 1), "created");
  // Two redemptions within the cooldown in one upload: the second is refused.
  Sale s6 = PricedSale(a, m, "c6", Basket(10000), t0 + 4 * cooldown_ms, 1000, code);
  Sale s7 = PricedSale(a, m, "c7", Basket(10000), t0 + 4 * cooldown_ms + 1000, 1000, code);
  auto res = Upload("T01", {{s6.entries[0], s6.entries[1], s7.entries[0], s7.entries[1]},
                            {s6.checkout, s7.checkout},
                            {}});
  ASSERT_EQ(res.results.size(), 4u);
  EXPECT_EQ(res.results[1].status, "created");
  EXPECT_EQ(res.results[3].status, "refused");
  EXPECT_EQ(Balance(id), 20000 + 7 * 90 - 4 * 1000);
  ExpectBalanceIsAppliedSum(id);
}

// A terminal leaves lots past their expiry out of the available balance (loyalty-rules.md),
// so what it could know at a redemption leaves them out too: those still at HQ, and those
// HQ's daily job emptied after the terminal's snapshot.
TEST_F(HqTrustTest, LotsExpiredAtTheRedemptionAreNotWhatTheTerminalCouldKnow) {
  std::string id = CreateMember();
  uint64_t m = std::stoull(id);
  ASSERT_EQ(Call("POST", "/v1/members/" + id + "/adjustments",
                 json{{"adjustment_id", "a1"}, {"points", 3000}, {"reason", "seed"}})
                .status,
            201);
  auto lots = store_->Lots(m);
  ASSERT_TRUE(lots.ok());
  ASSERT_EQ(lots->size(), 1u);
  const int64_t expiry_ms = (*lots)[0].expires_at_s * 1000;
  ASSERT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);
  clock_.advance_ms(1000);
  FakeTerminal t{"T01"};
  auto redeem = [&](const std::string& cid, int64_t at_ms) {
    return RedeemStatus(t, m, cid, at_ms);
  };
  // Before the lot expires the snapshot's 3000 are there to redeem.
  EXPECT_EQ(redeem("c1", expiry_ms - 1'000'000), "created");
  // After it, only what the terminal earned since (90 points) is: 1000 is refused.
  EXPECT_EQ(redeem("c2", expiry_ms + 1'000'000), "refused");
  EXPECT_EQ(RefusalReasons("T01"), (std::set<std::string>{"insufficient_points"}));
  // HQ's job empties the lot after the terminal's snapshot: still not there to redeem.
  clock_.advance_ms(1000);
  auto job = service_->RunDailyJobs(expiry_ms / 1000 + 1500);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->points, 2000);
  EXPECT_EQ(redeem("c3", expiry_ms + 2'000'000), "refused");
  EXPECT_EQ(Balance(id), 3000 - 1000 + 3 * 90 - 2000);
  ExpectBalanceIsAppliedSum(id);
}

// A repair's answer that never arrived (HQ answered after the terminal's timeout): the
// terminal redeems against the snapshot of its last changes page, which HQ still believes;
// once a later page came, against that one only.
TEST_F(HqTrustTest, ARepairAnswerThatNeverArrivedNarrowsNoRedemption) {
  std::string id = SeededMember(3000);  // T01's page: 3000
  uint64_t m = std::stoull(id);
  ASSERT_EQ(Call("POST", "/v1/members/" + id + "/adjustments",
                 json{{"adjustment_id", "a2"}, {"points", -2500}, {"reason", "other channel"}})
                .status,
            201);
  clock_.advance_ms(1000);
  // The repair that would have said 500: lost on the way.
  ASSERT_EQ(Call("POST", "/v1/sync/T01/members", json{{"member_ids", {id}}}, false).status, 200);
  clock_.advance_ms(1000);
  FakeTerminal t{"T01"};
  auto redeem = [&](const std::string& cid, int64_t at_ms) {
    return RedeemStatus(t, m, cid, at_ms);
  };
  EXPECT_EQ(redeem("c1", kNowMs + 3000), "created");
  EXPECT_EQ(RefusalReasons("T01"), std::set<std::string>{});
  // A page after it: the terminal knew 3000 - 2500 - 1000 + 90.
  ASSERT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);
  clock_.advance_ms(1000);
  EXPECT_EQ(redeem("c2", kNowMs + 3'600'000), "refused");
  EXPECT_EQ(RefusalReasons("T01"), (std::set<std::string>{"insufficient_points"}));
  EXPECT_EQ(Balance(id), 3000 - 2500 - 1000 + 2 * 90);
  ExpectBalanceIsAppliedSum(id);
}

// The answers since the last page a redemption is checked against are the last eight: a till
// asking for a member again and again does not multiply the check's reads. An answer that
// alone knew enough points counts while among the last eight, and not past them.
TEST_F(HqTrustTest, ARedemptionIsCheckedAgainstTheLastEightAnswersSinceThePage) {
  for (int answers : {8, 9}) {
    SCOPED_TRACE(answers);
    std::string id = CreateMember({{"name", "王" + std::to_string(answers)}});
    uint64_t m = std::stoull(id);
    ASSERT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);  // T01's page: 0
    clock_.advance_ms(1000);
    auto adjust = [&](const std::string& adj, int64_t points) {
      ASSERT_EQ(Call("POST", "/v1/members/" + id + "/adjustments",
                     json{{"adjustment_id", adj + id}, {"points", points}, {"reason", "x"}})
                    .status,
                201);
      clock_.advance_ms(1000);
    };
    auto repair = [&] {
      ASSERT_EQ(Call("POST", "/v1/sync/T01/members", json{{"member_ids", {id}}}, false).status,
                200);
      clock_.advance_ms(1000);
    };
    adjust("up", 3000);
    repair();  // the one answer that knew 3000
    adjust("down", -2900);
    for (int i = 1; i < answers; ++i) repair();  // 100 each
    FakeTerminal t{"T01"};
    EXPECT_EQ(RedeemStatus(t, m, "c-" + id, clock_.now_ms() - 500),
              answers <= 8 ? "created" : "refused");
  }
  EXPECT_EQ(RefusalReasons("T01"), (std::set<std::string>{"insufficient_points"}));
}

TEST_F(HqTrustTest, RefundsFollowTheirCheckoutAndNeverExceedIt) {
  std::string id = CreateMember();
  uint64_t m = std::stoull(id);
  FakeTerminal t{"T01"};
  Sale sale = PricedSale(t, m, "c1", {{"a", 2, 5000, "grocery"}}, kNowMs);  // 100 points
  ASSERT_EQ(Upload("T01", {sale.entries, {sale.checkout}, {}}).results[0].status, "created");
  // An honest refund of one unit: 5000 cents, 50 points back.
  sync::Refund r1{"r1", "c1", "", "return", kNowMs + 1000, 5000, 50, 0, "{}", {{0, 1}}};
  sync::Entry c1 = t.MakeFull("clawback", m, -50, kNowMs + 1000, "c1", "r1", "");
  // INT64_MAX cents cannot even be said (the codec's limits); past the sale is refused.
  sync::Refund r2{"r2", "c1", "", "return", kNowMs + 2000,
                  5000, 50,   0,  "{}",     {{0, 2}}};  // 3 of 2 units
  sync::Entry c2 = t.MakeFull("clawback", m, -50, kNowMs + 2000, "c1", "r2", "");
  // Amounts that do not follow from the checkout.
  sync::Refund r3{"r3", "c1", "", "return", kNowMs + 3000, 4000, 0, 0, "{}", {{0, 1}}};
  // A restore of points the checkout never redeemed.
  sync::Entry restore = t.MakeFull("restore", m, 1000, kNowMs + 3000, "c1", "r3", "");
  auto res = Upload("T01", {{c1, c2, restore}, {}, {r1, r2, r3}});
  EXPECT_EQ(res.results[0].status, "created");
  EXPECT_EQ(res.results[1].status, "refused");
  EXPECT_EQ(res.results[2].status, "refused");
  EXPECT_EQ(Balance(id), 50);
  EXPECT_EQ(Member(id)["month_spend_cents"], 5000);  // the refused refunds count in no spend
  std::set<std::string> reasons = RefusalReasons("T01");
  EXPECT_TRUE(reasons.count("refund_exceeds_sale"));
  EXPECT_TRUE(reasons.count("refund_mismatch"));
  auto big =
      R"({"refunds":[{"refund_id":"r9","checkout_id":"c1","request_hash":"","reason":"return","at_ms":1,
    "refund_cents":9223372036854775807,"points_clawed_back":0,"points_restored":0,"response_json":"{}",
    "lines":[{"line":0,"qty":1}]}],"entries":[],"checkouts":[]})";
  EXPECT_EQ(Call("POST", "/v1/sync/T01/entries", big, false).status, 400);
  EXPECT_EQ(Call("GET", "/v1/members/" + id).status, 200);
  EXPECT_EQ(Call("GET", "/v1/sync/T02/changes", "", false).status, 200);
  ExpectBalanceIsAppliedSum(id);
}

// The points a sale redeemed or a refund takes back are its entries': a till that uploads the
// record without them (or with other points) would leave the member the points. The record
// is refused, and so is every entry that names it.
TEST_F(HqTrustTest, ARecordIsJudgedWithTheEntryCarryingItsPoints) {
  const std::string id = SeededMember(5000);
  const uint64_t m = std::stoull(id);
  const int64_t t0 = kNowMs + 10'000, cooldown_ms = 600'000;
  const std::string code(64, 'c');
  FakeTerminal t{"T01"};
  // Redeems 1000 points with no redeem entry; then 1000 with a redeem entry of 1 point.
  Sale bare = PricedSale(t, m, "c1", Basket(10000), t0, 1000, code);
  bare.entries.pop_back();
  t.seq--;
  t.head_hash = bare.entries[0].hash;
  Sale cheap = PricedSale(t, m, "c2", Basket(10000), t0 + cooldown_ms, 1000, code);
  t.seq--;
  t.head_hash = cheap.entries[0].hash;
  cheap.entries[1] = t.Make("redeem", m, -1, t0 + cooldown_ms, "c2");
  auto res = Upload(
      "T01",
      {{bare.entries[0], cheap.entries[0], cheap.entries[1]}, {bare.checkout, cheap.checkout}, {}});
  ASSERT_EQ(res.results.size(), 3u);
  for (const auto& r : res.results) EXPECT_EQ(r.status, "refused");
  EXPECT_EQ(RefusalReasons("T01"), (std::set<std::string>{"redeem_missing", "checkout_refused"}));
  EXPECT_EQ(Balance(id), 5000);
  EXPECT_EQ(Member(id)["month_spend_cents"], 0);
  // The honest sale, its redeem entry in the same upload: accepted.
  Sale honest = PricedSale(t, m, "c3", Basket(10000), t0 + 2 * cooldown_ms, 1000, code);
  ASSERT_EQ(honest.entries.size(), 2u);
  res = Upload("T01", {honest.entries, {honest.checkout}, {}});
  ASSERT_EQ(res.results.size(), 2u);
  EXPECT_EQ(res.results[0].status, "created");
  EXPECT_EQ(res.results[1].status, "created");
  const int64_t after_sale = 5000 - 1000 + honest.checkout.points_earned;
  EXPECT_EQ(Balance(id), after_sale);
  // A refund of the whole sale takes its points back: without its clawback entry, refused.
  const int64_t earned = honest.checkout.points_earned;
  ASSERT_GT(earned, 0);
  sync::Refund whole{
      "r1",   "c3", "",   "return", t0 + 2 * cooldown_ms + 1000, honest.checkout.total_due_cents,
      earned, 1000, "{}", {{0, 1}}};
  sync::Entry restore = t.MakeFull("restore", m, 1000, t0 + 2 * cooldown_ms + 1000, "c3", "r1", "");
  res = Upload("T01", {{restore}, {}, {whole}});
  ASSERT_EQ(res.results.size(), 1u);
  EXPECT_EQ(res.results[0].status, "refused");
  EXPECT_TRUE(RefusalReasons("T01").count("clawback_missing"));
  EXPECT_EQ(Balance(id), after_sale);
  // The same refund under another id, with its clawback entry: accepted.
  whole.refund_id = "r2";
  whole.at_ms += 1000;
  sync::Entry claw = t.MakeFull("clawback", m, -earned, whole.at_ms, "c3", "r2", "");
  sync::Entry restore2 = t.MakeFull("restore", m, 1000, whole.at_ms, "c3", "r2", "");
  res = Upload("T01", {{claw, restore2}, {}, {whole}});
  ASSERT_EQ(res.results.size(), 2u);
  EXPECT_EQ(res.results[0].status, "created");
  EXPECT_EQ(res.results[1].status, "created");
  EXPECT_EQ(Balance(id), 5000);
  ExpectBalanceIsAppliedSum(id);
}

// The refund window is the rules' current at the refund (docs/pos-api.md): a terminal that
// took a longer window from HQ since the sale refunds within it, and HQ agrees.
TEST_F(HqTrustTest, ARefundIsJudgedWithTheWindowOfTheRulesCurrentAtIt) {
  rules::Rules week = rules::Rules::Defaults();
  week.version = "window-7";
  week.refund_window_days = 7;
  rules_ = week;
  Open();
  ASSERT_TRUE(service_->Start().ok());
  std::string id = CreateMember();
  uint64_t m = std::stoull(id);
  FakeTerminal t{"T01"};
  Sale sale = PricedSale(t, m, "c1", {{"a", 2, 5000, "grocery"}}, kNowMs);  // 100 points
  sale.checkout.rules_version = "window-7";
  ASSERT_EQ(Upload("T01", {sale.entries, {sale.checkout}, {}}).results[0].status, "created");
  const int64_t day9 = kNowMs + 9 * 86'400'000LL;
  sync::Refund late{"r1", "c1", "", "return", day9, 5000, 50, 0, "{}", {{0, 1}}};
  sync::Entry claw = t.MakeFull("clawback", m, -50, day9, "c1", "r1", "");
  EXPECT_EQ(Upload("T01", {{claw}, {}, {late}}).results[0].status, "refused");
  EXPECT_TRUE(RefusalReasons("T01").count("refund_window_closed"));
  EXPECT_EQ(Balance(id), 100);
  // HQ now publishes a 30-day window; the same late refund, made again, stands.
  rules::Rules month = week;
  month.version = "window-30";
  month.refund_window_days = 30;
  rules_ = month;
  Open();
  ASSERT_TRUE(service_->Start().ok());
  sync::Refund again{"r2", "c1", "", "return", day9 + 1, 5000, 50, 0, "{}", {{0, 1}}};
  sync::Entry claw2 = t.MakeFull("clawback", m, -50, day9 + 1, "c1", "r2", "");
  EXPECT_EQ(Upload("T01", {{claw2}, {}, {again}}).results[0].status, "created");
  EXPECT_EQ(Balance(id), 50);
  // Past both windows it is closed.
  const int64_t day31 = kNowMs + 31 * 86'400'000LL;
  sync::Refund closed{"r3", "c1", "", "return", day31, 5000, 50, 0, "{}", {{0, 1}}};
  sync::Entry claw3 = t.MakeFull("clawback", m, -50, day31, "c1", "r3", "");
  EXPECT_EQ(Upload("T01", {{claw3}, {}, {closed}}).results[0].status, "refused");
  EXPECT_EQ(Balance(id), 50);
  ExpectBalanceIsAppliedSum(id);
}

// Two refunds of one checkout in the same millisecond: each was computed against the ones
// the terminal had made before it, which its chain says (the seq of their claw-backs), not
// their ids. Here the order changes every amount (the floors of 1/3 and 2/3 of a VIP net).
TEST_F(HqTrustTest, RefundsInOneMillisecondFollowTheChainsOrder) {
  std::string id = CreateMember({{"name", "张三"}, {"tier", "vip"}});
  uint64_t m = std::stoull(id);
  FakeTerminal t{"T01"};
  auto sale = [&](const std::string& cid, int64_t at_ms) {
    Sale s = PricedSale(t, m, cid, {{"a", 3, 1010, "grocery"}}, at_ms, 0, "", "vip");
    EXPECT_EQ(Upload("T01", {s.entries, {s.checkout}, {}}).results[0].status, "created");
    return s.checkout;
  };
  // As the terminal computes a refund: against every unit refunded before it.
  auto refund = [&](const sync::Checkout& c, const std::string& rid, int64_t units_before,
                    int64_t units, int64_t at_ms) {
    rules::RefundBasis basis;
    for (const auto& l : c.lines) {
      basis.lines.push_back(
          {l.qty, l.net_cents, l.net_before_redeem_cents, l.points_eligible, l.redeemable});
    }
    basis.points_earned = c.points_earned;
    basis.redeemed_points = c.redeemed_points;
    basis.eligible_cents = c.eligible_cents;
    basis.redeemable_cents = c.redeemable_cents;
    auto a = rules::ComputeRefund(basis, {units_before}, {units_before + units});
    EXPECT_TRUE(a.ok());
    sync::Refund r{
        rid, c.checkout_id, "",          "return", at_ms, a->refund_cents, a->points_clawed_back,
        0,   "{}",          {{0, units}}};
    sync::Entry e =
        t.MakeFull("clawback", m, -a->points_clawed_back, at_ms, c.checkout_id, rid, "");
    return std::make_pair(r, e);
  };
  // One unit, then two, committed in the same millisecond; the first has the greater id.
  sync::Checkout c1 = sale("c1", kNowMs);
  const int64_t at = kNowMs + 1000;
  auto [r1, e1] = refund(c1, "r-z", 0, 1, at);
  auto [r2, e2] = refund(c1, "r-a", 1, 2, at);
  ASSERT_NE(r1.refund_cents, refund(c1, "x", 2, 1, at).first.refund_cents);  // the order matters
  auto res = Upload("T01", {{e1, e2}, {}, {r2, r1}});
  ASSERT_EQ(res.results.size(), 2u);
  EXPECT_EQ(res.results[0].status, "created");
  EXPECT_EQ(res.results[1].status, "created");
  // The same across two uploads: the second refund is judged against the first, stored.
  sync::Checkout c2 = sale("c2", kNowMs + 2000);
  auto [r3, e3] = refund(c2, "r-y", 0, 1, at + 2000);
  auto [r4, e4] = refund(c2, "r-b", 1, 2, at + 2000);
  EXPECT_EQ(Upload("T01", {{e3}, {}, {r3}}).results[0].status, "created");
  EXPECT_EQ(Upload("T01", {{e4}, {}, {r4}}).results[0].status, "created");
  EXPECT_TRUE(RefusalReasons("T01").empty());
  // Every unit is back: the points and the spend of both sales are gone.
  EXPECT_EQ(Balance(id), 0);
  EXPECT_EQ(Member(id)["month_spend_cents"], 0);
  ExpectBalanceIsAppliedSum(id);
}

// Lanes returning parts of one sale each knew some of the others' returns: a lane that asked
// HQ after one other lane's return reached it, but before another's, computed its amounts with
// the first only. HQ accepts it as the lane could compute it (with the rounding made up), and
// once every unit is back the sale's points are back exactly.
TEST_F(HqTrustTest, AReturnComputedWithSomeOfTheOtherLanesReturnsIsAccepted) {
  const std::string id = SeededMember(5000);
  const uint64_t m = std::stoull(id);
  const std::string code(64, 'c');
  // Lines 1..3 are returned at T02, T04 and T03 (which knew of T02's return only); line 0 at
  // the selling lane last. A basket where T03's amounts with T02's return known differ from
  // those with none and with both known (the allocation's rounding).
  auto amounts = [](const sync::Checkout& c, std::vector<int64_t> before, size_t line) {
    std::vector<int64_t> after = before;
    after[line] += 1;
    auto a = rules::ComputeRefund(rules::RefundBasisOf(c), before, after);
    EXPECT_TRUE(a.ok());
    return a.ok() ? *a : rules::RefundAmounts{};
  };
  auto same = [](const rules::RefundAmounts& a, const rules::RefundAmounts& b) {
    return a.refund_cents == b.refund_cents && a.points_clawed_back == b.points_clawed_back &&
           a.points_restored == b.points_restored;
  };
  FakeTerminal seller{"T01"};
  std::optional<Sale> sale;
  for (int64_t p = 1001; p < 4000 && !sale; p += 7) {
    FakeTerminal scratch{"T01"};
    Sale s = PricedSale(scratch, m, "c1",
                        {{"a", 1, 10000, "grocery"},
                         {"b", 1, p, "grocery"},
                         {"c", 1, p + 331, "grocery"},
                         {"d", 1, p + 719, "grocery"}},
                        kNowMs, 1000, code);
    const auto none = amounts(s.checkout, {0, 0, 0, 0}, 3);
    const auto some = amounts(s.checkout, {0, 1, 0, 0}, 3);
    const auto both = amounts(s.checkout, {0, 1, 1, 0}, 3);
    if (!same(some, none) && !same(some, both)) sale = s;
  }
  ASSERT_TRUE(sale) << "no basket where knowing some of the returns differs";
  Sale sold = PricedSale(seller, m, "c1",
                         {{"a", 1, 10000, "grocery"},
                          {"b", 1, sale->checkout.lines[1].unit_price_cents, "grocery"},
                          {"c", 1, sale->checkout.lines[2].unit_price_cents, "grocery"},
                          {"d", 1, sale->checkout.lines[3].unit_price_cents, "grocery"}},
                         kNowMs, 1000, code);
  auto res = Upload("T01", {sold.entries, {sold.checkout}, {}});
  ASSERT_EQ(res.results.size(), 2u);
  ASSERT_EQ(res.results[1].status, "created");
  int64_t at = kNowMs + 60'000;
  // A lane's return of one line, computed with the lines it knew were back already.
  auto lane_return = [&](FakeTerminal& lane, const std::string& rid, size_t line,
                         std::vector<int64_t> known) {
    const auto a = amounts(sold.checkout, std::move(known), line);
    at += 1000;
    sync::Refund r{rid,
                   "c1",
                   "",
                   "return",
                   at,
                   a.refund_cents,
                   a.points_clawed_back,
                   a.points_restored,
                   "{}",
                   {{static_cast<int64_t>(line), 1}}};
    if (lane.id != "T01") r.sold_at = "T01";
    std::vector<sync::Entry> entries;
    if (a.points_clawed_back > 0)
      entries.push_back(lane.MakeFull("clawback", m, -a.points_clawed_back, at, "c1", rid, ""));
    if (a.points_restored > 0)
      entries.push_back(lane.MakeFull("restore", m, a.points_restored, at, "c1", rid, ""));
    auto up = Upload(lane.id, {entries, {}, {r}});
    for (const auto& e : up.results) EXPECT_EQ(e.status, "created") << rid;
  };
  FakeTerminal t2{"T02"}, t3{"T03"}, t4{"T04"};
  lane_return(t2, "r2", 1, {0, 0, 0, 0});  // the first: knows none, HQ has none
  lane_return(t4, "r4", 2, {0, 0, 0, 0});  // offline: knew none; HQ had T02's
  lane_return(t3, "r3", 3, {0, 1, 0, 0});  // asked HQ after T02's, before T04's
  lane_return(seller, "r1", 0, {0, 1, 1, 1});
  EXPECT_TRUE(RefusalReasons("T03").empty());
  EXPECT_TRUE(RefusalReasons("T04").empty());
  // Every unit is back: the points earned are taken back and those redeemed restored.
  EXPECT_EQ(Balance(id), 5000);
  EXPECT_EQ(Member(id)["month_spend_cents"], 0);
  ExpectBalanceIsAppliedSum(id);
}

TEST_F(HqTrustTest, ChainWideVelocityFreezesAtHq) {
  std::string id = CreateMember();
  uint64_t m = std::stoull(id);
  FakeTerminal a{"T01"}, b{"T02"};
  // 3000 points at each of two stores within the hour: neither terminal crossed 5000 alone.
  Sale sa = PricedSale(a, m, "ca", Basket(300000), kNowMs);
  Sale sb = PricedSale(b, m, "cb", Basket(300000), kNowMs + 60'000);
  ASSERT_EQ(sa.checkout.points_earned, 3000);
  Upload("T01", {sa.entries, {sa.checkout}, {}});
  EXPECT_EQ(Member(id)["status"], "active");
  Upload("T02", {sb.entries, {sb.checkout}, {}});
  json v = Member(id);
  EXPECT_EQ(v["status"], "frozen");
  EXPECT_EQ(v["balance"], 6000);  // the sale happened: its points stand
  // The freeze flows down to every terminal with the snapshot.
  auto ch = sync::ParseMessage<sync::ChangesResponse>(
      Call("GET", "/v1/sync/T03/changes", "", false).body);
  ASSERT_TRUE(ch.ok());
  ASSERT_EQ(ch->members.size(), 1u);
  EXPECT_EQ(ch->members[0].status, "frozen");
  EXPECT_EQ(ch->members[0].frozen_reason, "velocity");
  // Outside the hour the sums do not meet: another member stays active.
  std::string id2 = CreateMember({{"name", "李四"}});
  uint64_t m2 = std::stoull(id2);
  Sale s1 = PricedSale(a, m2, "c2a", Basket(300000), kNowMs);
  Sale s2 = PricedSale(b, m2, "c2b", Basket(300000), kNowMs + 3'600'001);
  Upload("T01", {s1.entries, {s1.checkout}, {}});
  Upload("T02", {s2.entries, {s2.checkout}, {}});
  EXPECT_EQ(Member(id2)["status"], "active");
  // Uploaded in the other order (the later sale's till synced first): the earlier sale
  // completes the later one's hour, and the member is frozen all the same.
  std::string id3 = CreateMember({{"name", "王五"}});
  uint64_t m3 = std::stoull(id3);
  Sale late = PricedSale(b, m3, "c3b", Basket(300000), kNowMs + 1'800'000);
  Sale early = PricedSale(a, m3, "c3a", Basket(300000), kNowMs);
  Upload("T02", {late.entries, {late.checkout}, {}});
  EXPECT_EQ(Member(id3)["status"], "active");
  Upload("T01", {early.entries, {early.checkout}, {}});
  EXPECT_EQ(Member(id3)["status"], "frozen");
  EXPECT_EQ(Member(id3)["balance"], 6000);
  ExpectBalanceIsAppliedSum(id3);
}

// "Never lets one terminal harm another": a terminal's freeze stands only when its own earn
// entries for the member in the hour up to it crossed max_points_per_hour; a freeze nothing
// of the terminal's explains (a rooted till freezing members of the chain) is refused.
TEST_F(HqTrustTest, AFreezeItsTerminalsEarningsDoNotExplainIsRefused) {
  std::string id = CreateMember();
  uint64_t m = std::stoull(id);
  FakeTerminal t{"T01"};
  Sale small = PricedSale(t, m, "c-small", Basket(100000), kNowMs);  // 1,000 points
  sync::UploadRequest up{small.entries, {small.checkout}, {}};
  up.entries.push_back(
      t.Make("freeze", m, 0, kNowMs, "c-small", json{{"reason", "velocity"}}.dump()));
  auto res = Upload("T01", up);
  ASSERT_EQ(res.results.size(), 2u);
  EXPECT_EQ(res.results[0].status, "created");
  EXPECT_EQ(res.results[1].status, "refused");
  EXPECT_EQ(Member(id)["status"], "active");
  EXPECT_EQ(RefusalReasons("T01"), (std::set<std::string>{"freeze_unexplained"}));
  // A freeze with no sale at all, for another member: refused the same way.
  std::string id2 = CreateMember({{"name", "李四"}});
  sync::UploadRequest lone;
  lone.entries = {t.Make("freeze", std::stoull(id2), 0, kNowMs + 1000, "",
                         json{{"reason", "velocity"}}.dump())};
  EXPECT_EQ(Upload("T01", lone).results[0].status, "refused");
  EXPECT_EQ(Member(id2)["status"], "active");
  // The terminal downloads the member as HQ holds it (active: the freeze was refused), and
  // sells again. Earnings of the hour before, over two sales, explain the next freeze: it
  // stands.
  clock_.advance_ms(30'000);
  ASSERT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);
  Sale more = PricedSale(t, m, "c-more", Basket(450000), kNowMs + 60'000);  // 4,500 more
  sync::UploadRequest up2{more.entries, {more.checkout}, {}};
  up2.entries.push_back(
      t.Make("freeze", m, 0, kNowMs + 60'000, "c-more", json{{"reason", "velocity"}}.dump()));
  for (const auto& r : Upload("T01", up2).results) EXPECT_EQ(r.status, "created");
  EXPECT_EQ(Member(id)["status"], "frozen");
  ExpectBalanceIsAppliedSum(id);
}

// A terminal's own freeze or tier upgrade that HQ refuses changes no point, so no balance
// differs for the reconciliation to repair: the next changes page carries the member as HQ
// holds it, and the terminal's status and tier come back to HQ's.
TEST_F(HqTrustTest, ARefusedFreezeOrUpgradeSendsTheMemberBackAsHqHoldsIt) {
  std::string id = CreateMember();
  std::string id2 = CreateMember({{"name", "李四"}});
  auto page = [&](const std::string& cursor) {
    auto r = sync::ParseMessage<sync::ChangesResponse>(
        Call("GET", "/v1/sync/T01/changes?cursor=" + cursor, "", false).body);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : sync::ChangesResponse{};
  };
  std::string cursor = page("0").cursor;
  ASSERT_TRUE(page(cursor).members.empty());
  FakeTerminal t{"T01"};
  sync::UploadRequest up;
  up.entries = {
      t.Make("freeze", std::stoull(id), 0, kNowMs, "", json{{"reason", "velocity"}}.dump()),
      t.Make("tier_upgrade", std::stoull(id2), 0, kNowMs + 1, "",
             json{{"from", "member"}, {"to", "black"}}.dump())};
  auto res = Upload("T01", up);
  ASSERT_EQ(res.results.size(), 2u);
  for (const auto& r : res.results) EXPECT_EQ(r.status, "refused");
  auto next = page(cursor);
  std::map<std::string, sync::Snapshot> sent;
  for (const auto& m : next.members) sent[std::to_string(m.member_id)] = m;
  ASSERT_EQ(sent.size(), 2u);
  // Each with the terminal's chain as HQ holds it: past the refused entries, which the
  // terminal no longer applies over the snapshot.
  EXPECT_EQ(sent[id].status, "active");
  EXPECT_EQ(sent[id].terminal_seq, 2);
  EXPECT_EQ(sent[id2].tier, "member");
  EXPECT_EQ(sent[id2].terminal_seq, 2);
  // Sent once: the page after it is empty again.
  EXPECT_TRUE(page(next.cursor).members.empty());
}

// A terminal's velocity rule freezes the member at the sale that carries its own hour past the
// limit, in the same commit (loyalty-rules.md); its later sales price the member frozen.
// A till that leaves its freeze out and keeps pricing the member unfrozen is judged by its
// own earn entries as if it had written it: those later sales are refused, their points too.
TEST_F(HqTrustTest, ATillThatLeavesOutItsVelocityFreezeEarnsNothingAfterIt) {
  FakeTerminal t{"T01"};
  // The honest till writes its freeze with the second sale and prices the third frozen.
  const auto three_sales = [&](uint64_t m, const std::string& id, bool honest) {
    std::vector<Sale> s;
    s.push_back(PricedSale(t, m, id + "-1", Basket(300000), kNowMs));
    s.push_back(PricedSale(t, m, id + "-2", Basket(300000), kNowMs + 60'000));  // 6,000
    if (honest) {
      s[1].entries.push_back(
          t.Make("freeze", m, 0, kNowMs + 60'000, id + "-2", json{{"reason", "velocity"}}.dump()));
    }
    s.push_back(PricedSale(t, m, id + "-3", Basket(300000), kNowMs + 120'000, 0, "", "member",
                           std::nullopt, honest));
    return s;
  };
  const auto upload = [&](const std::vector<Sale>& sales) {
    std::vector<const Sale*> all;
    for (const auto& s : sales) all.push_back(&s);
    return UploadSales(all);
  };
  const std::vector<std::string> created(3, "created");
  // In one upload: the third sale, priced unfrozen after the second crossed 5,000, is refused.
  std::string id = CreateMember();
  auto sales = three_sales(std::stoull(id), "a", false);
  ASSERT_EQ(sales[2].checkout.points_earned, 3000);
  EXPECT_EQ(upload(sales), (std::vector<std::string>{"created", "created", "refused"}));
  // The sale, and its earn entry with it.
  EXPECT_EQ(RefusalReasons("T01"), (std::set<std::string>{"price_mismatch", "checkout_refused"}));
  EXPECT_EQ(Balance(id), 6000);
  EXPECT_EQ(Member(id)["status"], "frozen");  // HQ's own chain-wide freeze, for review
  ExpectBalanceIsAppliedSum(id);
  // The honest till's freeze, and the third sale priced frozen (earning nothing): accepted.
  std::string id2 = CreateMember({{"name", "李四"}});
  sales = three_sales(std::stoull(id2), "b", true);
  ASSERT_EQ(sales[2].checkout.points_earned, 0);
  EXPECT_EQ(upload(sales), std::vector<std::string>(4, "created"));
  EXPECT_EQ(Balance(id2), 6000);
  // The crossing in an earlier upload, the sale after it in the next: the stored entries count.
  std::string id3 = CreateMember({{"name", "王五"}});
  sales = three_sales(std::stoull(id3), "c", false);
  EXPECT_EQ(upload({sales[0], sales[1]}), (std::vector<std::string>{"created", "created"}));
  EXPECT_EQ(upload({sales[2]}), (std::vector<std::string>{"refused"}));
  EXPECT_EQ(Balance(id3), 6000);
  ExpectBalanceIsAppliedSum(id3);
  // A download between the crossing and the next sale lifts nothing (an honest till keeps
  // its freeze through a download; only HQ's unfreeze lifts it).
  std::string id4 = CreateMember({{"name", "赵六"}});
  sales = three_sales(std::stoull(id4), "d", false);
  clock_.set_now_ms(kNowMs + 90'000);
  ASSERT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);
  EXPECT_EQ(upload(sales), (std::vector<std::string>{"created", "created", "refused"}));
  EXPECT_EQ(Balance(id4), 6000);
}

// A till restored from an older backup forks its chain: the branch it lost is HQ's, not in
// its ledger, and its velocity rule did not count it. Its sales are judged without it, in the
// upload that forks the chain and in those after.
TEST_F(HqTrustTest, ARestoredTillIsNotJudgedFrozenByTheBranchItLost) {
  std::string id = CreateMember();
  uint64_t m = std::stoull(id);
  FakeTerminal t{"T01"};
  Sale first = PricedSale(t, m, "s0", Basket(10000), kNowMs);               // 100 points
  FakeTerminal restored = t;                                                // the backup, after s0
  Sale lost = PricedSale(t, m, "s-lost", Basket(350000), kNowMs + 60'000);  // 3,500
  EXPECT_EQ(UploadSales({&first, &lost}), std::vector<std::string>(2, "created"));
  // Restored after the lost sale: 1,000 then 1,600 (2,700 in its hour; the lost sale's 3,500
  // with either would pass 5,000).
  Sale a2 = PricedSale(restored, m, "s-a2", Basket(100000), kNowMs + 1'800'000);
  Sale a3 = PricedSale(restored, m, "s-a3", Basket(160000), kNowMs + 2'400'000);
  EXPECT_EQ(UploadSales({&a2, &a3}), std::vector<std::string>(2, "created"));
  // Its next upload, with the fork on record: the same.
  Sale x = PricedSale(restored, m, "s-x", Basket(100000), kNowMs + 2'700'000);
  EXPECT_EQ(UploadSales({&x}), std::vector<std::string>{"created"});
  EXPECT_EQ(RefusalReasons("T01"), std::set<std::string>{});
  EXPECT_EQ(Balance(id), 100 + 3500 + 1000 + 1600 + x.checkout.points_earned);
  ExpectBalanceIsAppliedSum(id);
}

// The same restored till, when its lost branch had frozen the member (a velocity freeze, the
// till gone before its run's download): the restored ledger never held that freeze, and its
// sales priced unfrozen stand, in the upload that forks the chain and in the next.
TEST_F(HqTrustTest, ARestoredTillIsNotJudgedFrozenByAFreezeOfTheBranchItLost) {
  std::string id = CreateMember();
  uint64_t m = std::stoull(id);
  ASSERT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);
  FakeTerminal t{"T01"};
  Sale first = PricedSale(t, m, "s0", Basket(10000), kNowMs + 1000);        // 100 points
  FakeTerminal restored = t;                                                // the backup, after s0
  Sale lost = PricedSale(t, m, "s-lost", Basket(600000), kNowMs + 60'000);  // 6,000
  lost.entries.push_back(
      t.Make("freeze", m, 0, kNowMs + 60'000, "s-lost", json{{"reason", "velocity"}}.dump()));
  EXPECT_EQ(UploadSales({&first, &lost}), std::vector<std::string>(3, "created"));
  EXPECT_EQ(Member(id)["status"], "frozen");
  // Restored to s0, its hour clear of the lost branch: 1,000 then 1,600 points, unfrozen.
  Sale a2 = PricedSale(restored, m, "s-a2", Basket(100000), kNowMs + 3'700'000);
  Sale a3 = PricedSale(restored, m, "s-a3", Basket(160000), kNowMs + 3'800'000);
  EXPECT_EQ(UploadSales({&a2}), std::vector<std::string>{"created"});
  EXPECT_EQ(UploadSales({&a3}), std::vector<std::string>{"created"});
  EXPECT_EQ(RefusalReasons("T01"), std::set<std::string>{});
  EXPECT_EQ(Balance(id), 100 + 6000 + 1000 + 1600);
  ExpectBalanceIsAppliedSum(id);
}

// What an honest till counted is never exceeded: the hour is the terminal's own entries in the
// chain's order up to the sale, after HQ's latest unfreeze, which lifts the freeze.
TEST_F(HqTrustTest, AnHonestTillsSalesAreNeverJudgedFrozenByItsOwnEarnings) {
  FakeTerminal t{"T01"};
  // Three sales each, accepted whole (7,000 points): 3,000 + 3,000 an hour apart (an hour is
  // `at > now - 3600 s`: no hour crosses 5,000); and a till whose clock stepped back -- an
  // entry written after a sale, with an earlier time, was not in the ledger the sale was
  // priced with: 3,000 then 1,000 (4,000: no freeze), then 3,000 an earlier minute: only that
  // last one crosses, and nothing comes after it.
  const int64_t t0 = kNowMs + 8'000'000;
  const std::vector<std::pair<std::string, std::vector<std::pair<int64_t, int64_t>>>> cases = {
      {"an hour apart",
       {{300000, kNowMs}, {300000, kNowMs + 3'600'000}, {100000, kNowMs + 3'700'000}}},
      {"clock stepped back", {{300000, t0}, {100000, t0 + 100'000}, {300000, t0 + 50'000}}}};
  for (const auto& [name, baskets] : cases) {
    std::string id = CreateMember({{"name", name}});
    std::vector<Sale> sales;
    for (const auto& [cents, at] : baskets)
      sales.push_back(PricedSale(t, std::stoull(id), "c" + std::to_string(at), Basket(cents), at));
    EXPECT_EQ(UploadSales({&sales[0], &sales[1], &sales[2]}),
              std::vector<std::string>(3, "created"))
        << name;
    EXPECT_EQ(Balance(id), 7000) << name;
  }
  // Crossed, frozen with its freeze entry; HQ's review unfreezes, the till downloads the member
  // again and sells: priced unfrozen, accepted (the hour before the unfreeze no longer counts).
  std::string id3 = CreateMember({{"name", "王五"}});
  uint64_t m3 = std::stoull(id3);
  const int64_t t1 = kNowMs + 20'000'000;
  Sale big = PricedSale(t, m3, "big", Basket(600000), t1);
  EXPECT_EQ(UploadSales({&big},
                        {t.Make("freeze", m3, 0, t1, "big", json{{"reason", "velocity"}}.dump())}),
            std::vector<std::string>(2, "created"));
  clock_.set_now_ms(t1 + 60'000);
  ASSERT_EQ(Call("POST", "/v1/members/" + id3 + "/unfreeze", json{{"reason", "reviewed"}}).status,
            200);
  EXPECT_EQ(Member(id3)["status"], "active");
  clock_.set_now_ms(t1 + 120'000);
  ASSERT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);
  ASSERT_EQ(Member(id3)["tier"], "black");  // 6,000 yuan this month
  Sale after = PricedSale(t, m3, "after", Basket(100000), t1 + 180'000, 0, "", "black");
  EXPECT_EQ(UploadSales({&after}), std::vector<std::string>{"created"});
  EXPECT_EQ(Balance(id3), 6000 + after.checkout.points_earned);
  EXPECT_TRUE(RefusalReasons("T01").empty());
  ExpectBalanceIsAppliedSum(id3);
}

TEST_F(HqTrustTest, ALongFreezeReasonNeverStopsAnotherTerminal) {
  std::string id = CreateMember();
  uint64_t m = std::stoull(id);
  CreateMember({{"name", "王五"}});
  FakeTerminal t{"T01"};
  // An honest velocity freeze (6,000 points in the hour), with a reason past the limit.
  Sale big = PricedSale(t, m, "c-big", Basket(600000), kNowMs);
  sync::UploadRequest up{big.entries, {big.checkout}, {}};
  up.entries.push_back(
      t.Make("freeze", m, 0, kNowMs, "c-big", json{{"reason", std::string(300, 'x')}}.dump()));
  for (const auto& r : Upload("T01", up).results) EXPECT_EQ(r.status, "created");
  EXPECT_EQ(Member(id)["status"], "frozen");
  auto r = Call("GET", "/v1/sync/T02/changes", "", false);
  ASSERT_EQ(r.status, 200);
  auto ch = sync::ParseMessage<sync::ChangesResponse>(r.body);
  ASSERT_TRUE(ch.ok()) << ch.status().ToString();
  ASSERT_EQ(ch->members.size(), 2u);
  for (const auto& s : ch->members) {
    if (s.member_id == m) {
      EXPECT_EQ(s.frozen_reason, "velocity");
    }
  }
}

TEST_F(HqTrustTest, ASnapshotHqCannotEncodeIsLeftOutAndReported) {
  std::string bad = CreateMember();
  std::string good = CreateMember({{"name", "赵六"}});
  // A row damaged past the limits table (written around the service).
  Status put = loyalty::testing::ExecOnTestHqStore(
      dir_, "UPDATE members SET balance = 9223372036854775807 WHERE member_id = " + bad);
  ASSERT_TRUE(put.ok()) << put.ToString();
  auto r = Call("GET", "/v1/sync/T01/changes", "", false);
  ASSERT_EQ(r.status, 200);
  auto ch = sync::ParseMessage<sync::ChangesResponse>(r.body);
  ASSERT_TRUE(ch.ok()) << ch.status().ToString();
  ASSERT_EQ(ch->members.size(), 1u);
  EXPECT_EQ(std::to_string(ch->members[0].member_id), good);
  bool reported = false;
  for (const auto& [event, fields] : events_)
    reported = reported || (event == "snapshot_not_sent" && fields["member_id"] == bad);
  EXPECT_TRUE(reported);
}

TEST_F(HqTrustTest, HqPublishesItsRulesAndPricesWithEveryVersion) {
  rules::Rules r1 = rules::Rules::Defaults();
  r1.version = "2026-11";
  r1.earn_points_per_yuan = 2;
  r1.vip_threshold_cents = 1000;
  rules_ = r1;
  Open();
  ASSERT_TRUE(service_->Start().ok());
  std::string id = CreateMember();
  uint64_t m = std::stoull(id);
  auto ch = sync::ParseMessage<sync::ChangesResponse>(
      Call("GET", "/v1/sync/T01/changes", "", false).body);
  ASSERT_TRUE(ch.ok() && ch->rules);
  EXPECT_EQ((*ch->rules)["version"], "2026-11");
  EXPECT_EQ((*ch->rules)["earn_points_per_yuan"], 2);
  // A sale priced with 2026-11: 2 points a yuan; HQ's tier threshold is the rules' (10 yuan).
  FakeTerminal t{"T01"};
  rules::QuoteInput in;
  in.lines = Basket(5000);
  in.member = rules::MemberContext{};
  auto q = rules::ComputeQuote(r1, in);
  ASSERT_TRUE(q.ok());
  Sale s = PricedSale(t, m, "c1", Basket(5000), kNowMs);
  s.checkout.rules_version = "2026-11";
  s.checkout.points_earned = q->points_to_earn;
  s.entries[0] = t.Make("earn", m, q->points_to_earn, kNowMs, "c1");
  EXPECT_EQ(Upload("T01", {s.entries, {s.checkout}, {}}).results[0].status, "created");
  EXPECT_EQ(Balance(id), 100);
  EXPECT_EQ(Member(id)["tier"], "vip");
  // A new version: the old one is still known, so a terminal offline since is still checked.
  rules::Rules r2 = r1;
  r2.version = "2026-12";
  r2.earn_points_per_yuan = 1;
  rules_ = r2;
  Open();
  ASSERT_TRUE(service_->Start().ok());
  Sale late = PricedSale(t, m, "c2", Basket(5000), kNowMs + 10);
  late.checkout.rules_version = "2026-11";
  late.checkout.points_earned = q->points_to_earn;
  late.entries[0] = t.Make("earn", m, q->points_to_earn, kNowMs + 10, "c2");
  EXPECT_EQ(Upload("T01", {late.entries, {late.checkout}, {}}).results[0].status, "created");
  // A version is immutable: the same name with other values is refused at start.
  rules::Rules changed = r2;
  changed.earn_points_per_yuan = 5;
  rules_ = changed;
  Open();
  Status st = service_->Start();
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.code(), ErrorCode::kConfigInvalid);
  EXPECT_NE(st.message().find("2026-12"), std::string::npos);
}

// A provisional upgrade (loyalty-rules.md, "Tiers") is believed when the month's spend HQ
// and the upload know of reaches the tier: a till cannot promote a member by saying so,
// and a sale it priced at the tier it claimed is refused with it.
TEST_F(HqTrustTest, AProvisionalUpgradeMustFollowFromTheMonthsSpend) {
  rules::Rules r = rules::Rules::Defaults();
  r.version = "prov-1";
  r.provisional_upgrade = true;
  rules_ = r;
  Open();
  ASSERT_TRUE(service_->Start().ok());
  FakeTerminal t{"T01"};
  auto priced = [&](uint64_t m, const std::string& id, int64_t cents, int64_t at,
                    const std::string& tier) {
    Sale s = PricedSale(t, m, id, Basket(cents), at, 0, "", tier);
    s.checkout.rules_version = "prov-1";
    return s;
  };
  const std::string to_vip = R"({"from":"member","to":"vip"})";
  std::string forged_id = CreateMember(), honest_id = CreateMember({{"name", "李四"}});
  const uint64_t forged = std::stoull(forged_id), honest = std::stoull(honest_id);
  // The lane downloads both members, sells offline for an hour and uploads: HQ's own upgrades
  // at the upload come after every sale, so a sale priced at VIP stands on the lane's claim.
  ASSERT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);
  clock_.advance_ms(3'600'000);

  // 10 yuan of spend (500 needed), then an upgrade to VIP and a sale priced at VIP.
  Sale small = priced(forged, "f1", 1000, kNowMs, "member");
  sync::Entry claim = t.Make("tier_upgrade", forged, 0, kNowMs, "f1", to_vip);
  Sale as_vip = priced(forged, "f2", 10000, kNowMs + 1, "vip");
  // A claim to a tier that does not exist.
  sync::Entry odd = t.Make("tier_upgrade", forged, 0, kNowMs + 2, "f1", R"({"to":"diamond"})");
  // 600 yuan, then the upgrade it explains and a sale priced at VIP.
  Sale big = priced(honest, "h1", 60000, kNowMs + 10, "member");
  sync::Entry earned = t.Make("tier_upgrade", honest, 0, kNowMs + 10, "h1", to_vip);
  Sale next = priced(honest, "h2", 10000, kNowMs + 11, "vip");
  sync::UploadRequest up;
  up.entries = {small.entries[0], claim,  as_vip.entries[0], odd,
                big.entries[0],   earned, next.entries[0]};
  up.checkouts = {small.checkout, as_vip.checkout, big.checkout, next.checkout};
  auto res = Upload("T01", up);
  ASSERT_EQ(res.results.size(), 7u);
  const std::vector<std::string> want{"created", "refused", "refused", "refused",
                                      "created", "created", "created"};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(res.results[i].status, want[i]) << i;
  EXPECT_EQ(RefusalReasons("T01"), (std::set<std::string>{"upgrade_unexplained", "price_mismatch",
                                                          "checkout_refused", "record_malformed"}));
  EXPECT_EQ(Balance(forged_id), small.checkout.points_earned);
  EXPECT_EQ(Member(forged_id)["tier"], "member");
  EXPECT_EQ(Balance(honest_id), big.checkout.points_earned + next.checkout.points_earned);
  ExpectBalanceIsAppliedSum(forged_id);
  ExpectBalanceIsAppliedSum(honest_id);

  // Later spend does not explain an earlier claim: the refused one stays refused, and a sale
  // priced at VIP after a later upload of spend is still judged without it.
  Sale more = priced(forged, "f3", 60000, kNowMs + 20, "member");
  Sale still = priced(forged, "f4", 10000, kNowMs + 21, "vip");
  res = Upload("T01", {{more.entries[0], still.entries[0]}, {more.checkout, still.checkout}, {}});
  ASSERT_EQ(res.results.size(), 2u);
  EXPECT_EQ(res.results[0].status, "created");
  EXPECT_EQ(res.results[1].status, "refused");
  ExpectBalanceIsAppliedSum(forged_id);
}

// HQ reads a terminal's downloads once per upload; checkouts of one upload on either side of
// a download are each priced with what the terminal knew at their own commit.
TEST_F(HqTrustTest, OneUploadAcrossTwoDownloadsPricesEachCheckoutWithItsOwnSnapshot) {
  std::string id1 = CreateMember(), id2 = CreateMember({{"name", "李四"}});
  ASSERT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);  // D1: both members
  clock_.advance_ms(1000);
  for (const auto& id : {id1, id2}) {
    ASSERT_EQ(Call("POST", "/v1/members/" + id + "/tier", json{{"tier", "vip"}}).status, 200);
  }
  clock_.advance_ms(1000);
  ASSERT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);  // D2: both VIP
  clock_.advance_ms(2000);
  FakeTerminal t{"T01"};
  for (const auto& id : {id1, id2}) {
    uint64_t m = std::stoull(id);
    // Between D1 and D2 the terminal may price as a member; after D2 (and the second it may
    // take to write it) only as a VIP.
    Sale before = PricedSale(t, m, "a" + id, Basket(10000), kNowMs + 1500, 0, "", "member");
    Sale stale = PricedSale(t, m, "b" + id, Basket(10000), kNowMs + 3000, 0, "", "member");
    Sale after = PricedSale(t, m, "c" + id, Basket(10000), kNowMs + 3100, 0, "", "vip");
    sync::UploadRequest up;
    std::vector<Sale> order = {before, stale, after};
    if (id == id2) std::reverse(order.begin(), order.end());
    for (const auto& s : order) {
      up.entries.push_back(s.entries[0]);
      up.checkouts.push_back(s.checkout);
    }
    std::map<std::string, std::string> status;
    auto res = Upload("T01", up);
    ASSERT_EQ(res.results.size(), 3u);
    for (size_t i = 0; i < 3; ++i) status[up.entries[i].checkout_id] = res.results[i].status;
    EXPECT_EQ(status["a" + id], "created") << id;
    EXPECT_EQ(status["b" + id], "refused") << id;
    EXPECT_EQ(status["c" + id], "created") << id;
  }
  EXPECT_EQ(RefusalReasons("T01"), (std::set<std::string>{"price_mismatch", "checkout_refused"}));
}

TEST_F(HqTrustTest, ASaleAfterTheTerminalsFreezeInTheSameUploadIsPricedFrozen) {
  std::string id = CreateMember();
  uint64_t m = std::stoull(id);
  ASSERT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);
  clock_.advance_ms(1000);
  FakeTerminal t{"T01"};
  // 6000 points in one sale: the terminal freezes the member in the same commit, and its
  // next sale earns nothing.
  Sale big = PricedSale(t, m, "c1", Basket(600000), kNowMs + 100);
  big.entries.push_back(t.Make("freeze", m, 0, kNowMs + 100, "c1", R"({"reason":"velocity"})"));
  Sale after =
      PricedSale(t, m, "c2", Basket(10000), kNowMs + 200, 0, "", "member", std::nullopt, true);
  ASSERT_EQ(after.checkout.points_earned, 0);
  sync::UploadRequest up;
  up.entries = {big.entries[0], big.entries[1], after.entries[0]};
  up.checkouts = {big.checkout, after.checkout};
  auto res = Upload("T01", up);
  ASSERT_EQ(res.results.size(), 3u);
  for (const auto& r : res.results) EXPECT_EQ(r.status, "created");
  EXPECT_TRUE(RefusalReasons("T01").empty());
  EXPECT_EQ(Member(id)["status"], "frozen");
  EXPECT_EQ(Balance(id), 6000);
  // A later sale of the same terminal priced as if it had not frozen the member (100
  // points) is refused: after its own freeze, and with no download since, it knew.
  Sale forged = PricedSale(t, m, "c3", Basket(10000), kNowMs + 300);
  ASSERT_EQ(forged.checkout.points_earned, 100);
  auto res2 = Upload("T01", {forged.entries, {forged.checkout}, {}});
  ASSERT_EQ(res2.results.size(), 1u);
  EXPECT_EQ(res2.results[0].status, "refused");
  EXPECT_TRUE(RefusalReasons("T01").count("price_mismatch"));
  EXPECT_EQ(Balance(id), 6000);
}

// A till's freeze stands where it is in the till's chain, not where its clock put it: after a
// clock stepped back, a sale written after the freeze with an earlier time was priced frozen,
// and one written before it with a later time was priced unfrozen. Both stand.
TEST_F(HqTrustTest, ATillsFreezeIsJudgedInItsChainsOrderNotByItsClock) {
  ASSERT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);
  clock_.advance_ms(1000);
  FakeTerminal t{"T01"};
  const std::string velocity = json{{"reason", "velocity"}}.dump();
  // Frozen by a 6,000-point sale; the clock steps back 50 ms; the next sale earns nothing.
  std::string id = CreateMember();
  uint64_t m = std::stoull(id);
  Sale big = PricedSale(t, m, "c1", Basket(600000), kNowMs + 2000);
  big.entries.push_back(t.Make("freeze", m, 0, kNowMs + 2000, "c1", velocity));
  Sale after =
      PricedSale(t, m, "c2", Basket(10000), kNowMs + 1950, 0, "", "member", std::nullopt, true);
  ASSERT_EQ(after.checkout.points_earned, 0);
  EXPECT_EQ(UploadSales({&big, &after}), std::vector<std::string>(3, "created"));
  EXPECT_EQ(Balance(id), 6000);
  // A 100-point sale; the clock steps back a minute; a 6,000-point sale freezes the member:
  // the first sale, later by the clock, was priced before the freeze.
  std::string id2 = CreateMember({{"name", "李四"}});
  uint64_t m2 = std::stoull(id2);
  Sale small = PricedSale(t, m2, "d1", Basket(10000), kNowMs + 70'000);
  Sale crossing = PricedSale(t, m2, "d2", Basket(600000), kNowMs + 10'000);
  crossing.entries.push_back(t.Make("freeze", m2, 0, kNowMs + 10'000, "d2", velocity));
  EXPECT_EQ(UploadSales({&small, &crossing}), std::vector<std::string>(3, "created"));
  EXPECT_EQ(Balance(id2), 6100);
  EXPECT_EQ(RefusalReasons("T01"), std::set<std::string>{});
  // And a sale after the freeze in the chain but priced unfrozen is still refused, however
  // early its clock says it was.
  Sale forged = PricedSale(t, m2, "d3", Basket(10000), kNowMs + 5000);
  ASSERT_EQ(forged.checkout.points_earned, 100);
  EXPECT_EQ(UploadSales({&forged}), std::vector<std::string>{"refused"});
  EXPECT_EQ(Balance(id2), 6100);
  ExpectBalanceIsAppliedSum(id);
  ExpectBalanceIsAppliedSum(id2);
}

// HQ reads each member, its lots and its history once per upload and writes it once at the
// end. The same sales uploaded all at once or one at a time (a refused forgery, a duplicate,
// redemptions, a tier reached and a velocity freeze among them) must leave HQ in the same
// state: balances, lots, tiers, statuses, spend and what a terminal downloads.
TEST_F(HqTrustTest, OneUploadOrOneSaleAtATimeEndTheSame) {
  struct Hq {
    std::unique_ptr<Store> store;
    std::unique_ptr<HqService> service;
  };
  auto open = [&](const std::string& name) {
    Hq h;
    auto s = loyalty::testing::OpenTestHqStore(dir_ / name);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    h.store = std::move(*s);
    HqOptions o;
    o.admin_token = "secret-token";
    o.signing_seeds[3] = HqSeed();
    o.timezone = *TimeZone::Fixed(8 * 3600);
    h.service =
        std::make_unique<HqService>(*h.store, clock_, PiiCipher::FromKey(std::string(32, 'k')), o);
    return h;
  };
  auto call = [&](Hq& h, const std::string& method, const std::string& path,
                  const std::string& body, bool admin) {
    http::Request r;
    r.method = method;
    r.target = r.path = path;
    r.body = body;
    if (admin) r.authorization = "Bearer secret-token";
    return Recorded(r, h.service->Handle(r, std::nullopt));
  };
  Hq all = open("all.db"), each = open("each.db");
  for (Hq* h : {&all, &each}) {
    for (const char* id : {"1001", "1002", "1003"}) {
      ASSERT_EQ(call(*h, "POST", "/v1/members",
                     json{{"member_id", id}, {"name", "x"}, {"store_id", kStore}}.dump(), true)
                    .status,
                201);
    }
    ASSERT_EQ(call(*h, "POST", "/v1/sync/T01/hello", Hello("T01"), false).status, 200);
    ASSERT_EQ(call(*h, "POST", "/v1/members/1001/adjustments",
                   json{{"adjustment_id", "a1"}, {"points", 3000}, {"reason", "seed"}}.dump(), true)
                  .status,
              201);
    ASSERT_EQ(call(*h, "GET", "/v1/sync/T01/changes", "", false).status, 200);
  }
  clock_.advance_ms(1000);
  const int64_t t0 = kNowMs + 2000;
  const std::string code(64, 'd');
  FakeTerminal t{"T01"};
  std::vector<sync::UploadRequest> uploads;
  auto add = [&](const Sale& s) { uploads.push_back({s.entries, {s.checkout}, {}}); };
  Sale s1 = PricedSale(t, 1001, "s1", Basket(10000), t0);
  add(s1);
  add(PricedSale(t, 1002, "s2", Basket(20000), t0 + 1000));
  Sale forged = PricedSale(t, 1001, "f1", Basket(10000), t0 + 2000);
  forged.checkout.points_earned = 1'000'000;
  forged.entries[0] = t.Make("earn", 1001, 1'000'000, t0 + 2000, "f1");
  add(forged);
  Sale s3 = PricedSale(t, 1001, "s3", Basket(50000), t0 + 3000, 2000, code);
  add(s3);
  add(PricedSale(t, 1003, "s4", Basket(5000), t0 + 4000));
  uploads.push_back({{t.Make("earn", 1002, 200, t0 + 5000, "s2")}, {}, {}});  // s2's points again
  add(PricedSale(t, 1002, "s6", Basket(300000), t0 + 6000));
  Sale s7 = PricedSale(t, 1002, "s7", Basket(300000), t0 + 7000);
  s7.entries.push_back(t.Make("freeze", 1002, 0, t0 + 7000, "s7", R"({"reason":"velocity"})"));
  add(s7);
  Sale s8 = PricedSale(t, 1001, "s8", Basket(10000), t0 + 900'000);
  add(s8);
  add(PricedSale(t, 1003, "s9", Basket(7000), t0 + 901'000));
  // Everything 1001 has, down to part of s8's lot, which this upload created.
  int64_t all_of_it = 3000 + s1.checkout.points_earned + s3.checkout.points_earned - 2000 +
                      s8.checkout.points_earned;
  Sale s10 = PricedSale(t, 1001, "s10", Basket(400000), t0 + 902'000, all_of_it / 100 * 100, code);
  ASSERT_EQ(s10.checkout.redeemed_points, all_of_it / 100 * 100);
  add(s10);

  sync::UploadRequest one;
  for (const auto& u : uploads) {
    one.entries.insert(one.entries.end(), u.entries.begin(), u.entries.end());
    one.checkouts.insert(one.checkouts.end(), u.checkouts.begin(), u.checkouts.end());
  }
  auto upload = [&](Hq& h, const sync::UploadRequest& up) {
    auto r = call(h, "POST", "/v1/sync/T01/entries", sync::SerializeMessage(up), false);
    EXPECT_EQ(r.status, 200) << r.body;
    auto out = sync::ParseMessage<sync::UploadResponse>(r.body);
    EXPECT_TRUE(out.ok());
    return out.ok() ? out->results : std::vector<sync::UploadResult>{};
  };
  std::vector<sync::UploadResult> results_all = upload(all, one), results_each;
  for (const auto& u : uploads) {
    auto r = upload(each, u);
    results_each.insert(results_each.end(), r.begin(), r.end());
  }
  ASSERT_EQ(results_all.size(), one.entries.size());
  EXPECT_EQ(results_all, results_each);
  size_t refused = std::count_if(results_all.begin(), results_all.end(),
                                 [](const sync::UploadResult& r) { return r.status == "refused"; });
  EXPECT_EQ(refused, 2u);  // the forgery and the second earn of s2

  for (const char* id : {"1001", "1002", "1003"}) {
    json a = json::parse(call(all, "GET", std::string("/v1/members/") + id, "", true).body);
    json b = json::parse(call(each, "GET", std::string("/v1/members/") + id, "", true).body);
    for (const char* k : {"balance", "tier", "status", "entries", "month_spend_cents"})
      EXPECT_EQ(a[k], b[k]) << id << " " << k;
    auto sum = all.store->SumMemberPoints(std::stoull(id));
    ASSERT_TRUE(sum.ok());
    EXPECT_EQ(*sum, a["balance"].get<int64_t>()) << id;
    auto la = all.store->Lots(std::stoull(id)), lb = each.store->Lots(std::stoull(id));
    ASSERT_TRUE(la.ok() && lb.ok());
    ASSERT_EQ(la->size(), lb->size()) << id;
    for (size_t i = 0; i < la->size(); ++i) {
      EXPECT_EQ((*la)[i].remaining, (*lb)[i].remaining) << id;
      EXPECT_EQ((*la)[i].expires_at_s, (*lb)[i].expires_at_s) << id;
    }
  }
  json m1002 = json::parse(call(all, "GET", "/v1/members/1002", "", true).body);
  EXPECT_EQ(m1002["tier"], "black");
  EXPECT_EQ(m1002["status"], "frozen");
  EXPECT_EQ(json::parse(call(all, "GET", "/v1/members/1001", "", true).body)["balance"],
            all_of_it - s10.checkout.redeemed_points + s10.checkout.points_earned);
  for (const auto& r : results_all) {
    if (r.entry_id == s3.entries[1].entry_id || r.entry_id == s10.entries[1].entry_id) {
      EXPECT_EQ(r.status, "created");
    }
  }
  // What a terminal downloads is the same, and each member once.
  for (Hq* h : {&all, &each})
    ASSERT_EQ(call(*h, "POST", "/v1/sync/T02/hello", Hello("T02"), false).status, 200);
  auto ca = sync::ParseMessage<sync::ChangesResponse>(
      call(all, "GET", "/v1/sync/T02/changes", "", false).body);
  auto cb = sync::ParseMessage<sync::ChangesResponse>(
      call(each, "GET", "/v1/sync/T02/changes", "", false).body);
  ASSERT_TRUE(ca.ok() && cb.ok());
  ASSERT_EQ(ca->members.size(), 3u);
  ASSERT_EQ(cb->members.size(), 3u);
  auto by_id = [](std::vector<sync::Snapshot> v) {
    std::sort(v.begin(), v.end(),
              [](const auto& x, const auto& y) { return x.member_id < y.member_id; });
    for (auto& s : v) {
      s.terminal_seq = 0;
      // HQ's own entries (the velocity freeze) are the same entries, made by each HQ under
      // an id of its own.
      for (auto& e : s.hq_entries) e.entry_id.clear();
    }
    return v;
  };
  EXPECT_EQ(by_id(ca->members), by_id(cb->members));
}

}  // namespace
}  // namespace loyalty::hq::testing
