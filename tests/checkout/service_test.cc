// The checkout use cases with an injected clock over a real SQLite ledger: time-dependent
// rules (refund window, cooldown, lot expiry, birthday month, identification lifetime,
// the velocity window) at their exact edges.
#include "loyalty/checkout/service.h"

#include <gtest/gtest.h>

#include "checkout_test_util.h"
#include "loyalty/base/hash.h"
#include "loyalty/base/time.h"

namespace loyalty::checkout {
namespace {

using nlohmann::json;

json Basket() {
  return json::array(
      {{{"sku", "A"}, {"qty", 2}, {"unit_price_cents", 1990}, {"category", "grocery"}},
       {{"sku", "B"}, {"qty", 1}, {"unit_price_cents", 12900}, {"category", "beauty"}},
       {{"sku", "C"}, {"qty", 1}, {"unit_price_cents", 3500}, {"category", "tobacco"}}});
}

class ServiceTest : public CheckoutFixture {
 protected:
  void Seed(const std::string& tier, int64_t points, int birthday_month = 0) {
    SeedMember(tier, points, birthday_month);
  }

  Answer Commit(const std::string& id, json extra = json::object()) {
    json body{{"checkout_id", id}, {"member_code", Code()}, {"lines", Basket()}};
    for (auto it = extra.begin(); it != extra.end(); ++it) body[it.key()] = it.value();
    return Parsed(service_->Commit(*ledger_, body));
  }
};

TEST_F(ServiceTest, RefundWindowClosesAfterExactlySevenDays) {
  ASSERT_EQ(Commit("c1").status, 200);
  clock_.advance_ms(7 * 86400 * 1000);
  auto ok = Parsed(service_->Refund(
      *ledger_,
      {{"refund_id", "r1"}, {"checkout_id", "c1"}, {"lines", {{{"line", 0}, {"qty", 1}}}}}));
  EXPECT_EQ(ok.status, 200) << ok.body.dump();
  clock_.advance_ms(1000);
  auto late = Parsed(service_->Refund(
      *ledger_,
      {{"refund_id", "r2"}, {"checkout_id", "c1"}, {"lines", {{{"line", 0}, {"qty", 1}}}}}));
  EXPECT_EQ(late.status, 422);
  EXPECT_EQ(late.body["error"]["code"], "refund_window_closed");
  // The window is checked before the unit count.
  auto both = Parsed(service_->Refund(
      *ledger_,
      {{"refund_id", "r3"}, {"checkout_id", "c1"}, {"lines", {{{"line", 0}, {"qty", 5}}}}}));
  EXPECT_EQ(both.body["error"]["code"], "refund_window_closed");
}

// The commit body is written directly, not through a document: it must carry the quote's
// fields with the same values, the member view GET /v1/members gives right after, and come
// back byte for byte when the same request is committed again.
TEST_F(ServiceTest, CommitBodyAgreesWithTheQuoteTheMemberViewAndItsReplay) {
  Seed("vip", 5000);
  // A frozen reason, a masked name and phone with characters to escape, and lots of two
  // expiries, so every branch of the member view is written.
  ASSERT_TRUE(ledger_->Begin().ok());
  auto m = ledger_->GetMember(kMember).value();
  ASSERT_TRUE(m);
  m->display_name = "张*\"";
  m->phone = "138****5678";
  ASSERT_TRUE(ledger_->UpsertMember(*m).ok());
  model::Lot lot;
  lot.member_id = kMember;
  lot.points = lot.remaining = 70;
  lot.earned_at_s = kT0;
  lot.expires_at_s = kT0 + 10 * 86400;
  ASSERT_TRUE(ledger_->AddLot(lot).ok());
  m->balance += 70;
  ASSERT_TRUE(ledger_->UpsertMember(*m).ok());
  ASSERT_TRUE(ledger_->Commit().ok());

  json quote_body{
      {"checkout_id", "q1"}, {"member_code", Code()}, {"lines", Basket()}, {"redeem_points", 300}};
  auto q = Parsed(service_->Quote(*ledger_, quote_body));
  ASSERT_EQ(q.status, 200) << q.body.dump();
  auto c = Commit("q1", {{"redeem_points", 300}});
  ASSERT_EQ(c.status, 200) << c.body.dump();
  for (const char* k :
       {"checkout_id", "subtotal_cents", "tier_discount_cents", "coupon", "redeem_points",
        "redeem_cents", "total_due_cents", "eligible_cents", "points_to_earn", "max_redeem_points",
        "lines", "rules_version", "warnings"})
    EXPECT_EQ(c.body[k], q.body[k]) << k;
  std::set<std::string> keys;
  for (auto it = c.body.begin(); it != c.body.end(); ++it) keys.insert(it.key());
  std::set<std::string> want;
  for (auto it = q.body.begin(); it != q.body.end(); ++it) want.insert(it.key());
  want.insert({"committed_at", "balance_after", "entries", "receipt_lines", "return_token"});
  EXPECT_EQ(keys, want);
  EXPECT_TRUE(c.body["return_token"].is_null());  // no receipt key certified here
  EXPECT_EQ(c.body["lines"].size(), 3u);
  EXPECT_EQ(c.body["entries"].size(), 2u);  // earn and redeem
  EXPECT_EQ(c.body["committed_at"], FormatRfc3339(kT0));

  auto view = Parsed(service_->GetMember(*ledger_, std::to_string(kMember)));
  ASSERT_EQ(view.status, 200);
  view.body.erase("recent_entries");
  EXPECT_EQ(c.body["member"], view.body);
  EXPECT_EQ(c.body["member"]["display_name"], "张*\"");
  // The redemption used up the 10-day lot first (FIFO by expiry): the seeded lot and this
  // sale's remain.
  EXPECT_EQ(c.body["member"]["lots"].size(), 2u);
  EXPECT_EQ(c.body["balance_after"], c.body["member"]["balance"]);
}

TEST_F(ServiceTest, AReplayedCommitReturnsTheStoredBodyByteForByte) {
  Seed("member", 0);
  json body{{"checkout_id", "r1"}, {"member_code", Code()}, {"lines", Basket()}};
  auto first = Parsed(service_->Commit(*ledger_, body));
  ASSERT_EQ(first.status, 200) << first.Text();
  clock_.advance_ms(5000);
  auto second = Parsed(service_->Commit(*ledger_, body));
  ASSERT_EQ(second.status, 200) << second.Text();
  EXPECT_EQ(second.text, first.text);
  EXPECT_EQ(first.text, json::parse(first.text).dump());
  auto stored = ledger_->GetCheckout("r1", /*with_lines=*/true).value();
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->response_json, first.text);
  // The request is kept as its hash and its lines, not as text: the member code in it is
  // personal data (a card number, a channel member number).
  EXPECT_EQ(stored->request_hash, DigestHex(Sha256(body.dump())));
  EXPECT_TRUE(stored->request_json.empty());
  EXPECT_EQ(stored->response_json.find(body["member_code"].get<std::string>()), std::string::npos);
  ASSERT_EQ(stored->lines.size(), 3u);
  EXPECT_EQ(stored->lines[1].sku, "B");
  EXPECT_EQ(stored->lines[1].net_cents, json::parse(first.text)["lines"][1]["net_cents"]);
}

// A checkout's entries and a member's local spend are found without indexes of their own
// (schema 4): through the responses that name the entries, and the member's earn entries.
TEST_F(ServiceTest, CheckoutEntriesAndLocalSpendFollowCommitsAndRefunds) {
  Seed("vip", 5000);
  auto a = Commit("s1", {{"redeem_points", 200}});
  ASSERT_EQ(a.status, 200) << a.body.dump();
  clock_.advance_ms(700 * 1000);  // past the redemption cooldown
  auto b = Commit("s2");
  ASSERT_EQ(b.status, 200) << b.body.dump();
  auto r = Parsed(service_->Refund(
      *ledger_,
      {{"refund_id", "rf1"}, {"checkout_id", "s1"}, {"lines", {{{"line", 1}, {"qty", 1}}}}}));
  ASSERT_EQ(r.status, 200) << r.Text();
  auto entries = ledger_->EntriesForCheckout("s1").value();
  std::vector<std::string> ids;
  for (const auto& e : entries) ids.push_back(e.entry_id);
  std::vector<std::string> want = a.body["entries"].get<std::vector<std::string>>();
  for (const auto& id : r.body["entries"]) want.push_back(id.get<std::string>());
  EXPECT_EQ(ids, want);  // earn, redeem, then the refund's claw-back and restore, by seq
  EXPECT_EQ(entries.front().kind, "earn");
  EXPECT_EQ(ledger_->EntriesForCheckout("s2").value().size(), 1u);
  EXPECT_TRUE(ledger_->EntriesForCheckout("nope").value().empty());

  int64_t total =
      a.body["total_due_cents"].get<int64_t>() + b.body["total_due_cents"].get<int64_t>();
  int64_t refunded = r.body["refund_cents"].get<int64_t>();
  EXPECT_EQ(ledger_->LocalSpendSince(kMember, (kT0 - 1) * 1000).value(), total - refunded);
  // From a time on: the first checkout was committed at kT0, the second 700 s later.
  EXPECT_EQ(ledger_->LocalSpendSince(kMember, kT0 * 1000 + 1).value(),
            b.body["total_due_cents"].get<int64_t>());
  EXPECT_EQ(ledger_->LocalSpendSince(kMember + 1, 0).value(), 0);
  // What HQ acknowledged is in HQ's month spend: no longer counted here.
  ASSERT_TRUE(ledger_->AckEntries({b.body["entries"][0].get<std::string>()}).ok());
  EXPECT_EQ(ledger_->LocalSpendSince(kMember, (kT0 - 1) * 1000).value(),
            a.body["total_due_cents"].get<int64_t>() - refunded);
}

// A commit does not look for an earlier checkout first; whatever refuses a replay — the
// primary key, the code expired since, the member frozen since — the earlier checkout
// answers: its stored response for the same body, 409 for another, and nothing is written.
TEST_F(ServiceTest, ReplaysAreAnsweredByTheEarlierCheckoutWhateverRefusesThem) {
  Seed("vip", 0);
  json body{{"checkout_id", "k1"}, {"member_code", Code()}, {"lines", Basket()}};
  auto first = Parsed(service_->Commit(*ledger_, body));
  ASSERT_EQ(first.status, 200) << first.Text();
  int64_t entries = ledger_->EntryCount().value();
  // The code's validity has passed and the member is frozen since.
  clock_.advance_ms(3600 * 1000);
  ASSERT_TRUE(ledger_->Begin().ok());
  auto m = ledger_->GetMember(kMember).value();
  m->status = "frozen";
  m->frozen_reason = "manual";
  ASSERT_TRUE(ledger_->UpsertMember(*m).ok());
  ASSERT_TRUE(ledger_->Commit().ok());
  auto again = Parsed(service_->Commit(*ledger_, body));
  ASSERT_EQ(again.status, 200) << again.Text();
  EXPECT_EQ(again.text, first.text);
  json other = body;
  other["tender"] = "cash";
  auto conflict = Parsed(service_->Commit(*ledger_, other));
  EXPECT_EQ(conflict.status, 409);
  EXPECT_EQ(conflict.body["error"]["code"], "idempotency_conflict");
  EXPECT_EQ(ledger_->EntryCount().value(), entries);

  // A channel card is not bound to a checkout: the replay goes as far as the checkout's
  // key, which refuses it, and the whole attempt is rolled back.
  ASSERT_TRUE(ledger_->Begin().ok());
  m->status = "active";
  ASSERT_TRUE(ledger_->UpsertMember(*m).ok());
  ASSERT_TRUE(ledger_->PutIdentity("wechat", "123456789012", kMember).ok());
  ASSERT_TRUE(ledger_->Commit().ok());
  json card{{"checkout_id", "k2"}, {"member_code", "123456789012"}, {"lines", Basket()}};
  auto c1 = Parsed(service_->Commit(*ledger_, card));
  ASSERT_EQ(c1.status, 200) << c1.Text();
  int64_t balance = ledger_->GetMember(kMember).value()->balance;
  entries = ledger_->EntryCount().value();
  auto c2 = Parsed(service_->Commit(*ledger_, card));
  ASSERT_EQ(c2.status, 200) << c2.Text();
  EXPECT_EQ(c2.text, c1.text);
  EXPECT_EQ(ledger_->EntryCount().value(), entries);
  EXPECT_EQ(ledger_->GetMember(kMember).value()->balance, balance);
  // An id never committed: the refusal stands.
  json bad{{"checkout_id", "k3"}, {"member_code", "123456789012"}, {"lines", json::array()}};
  EXPECT_EQ(Parsed(service_->Commit(*ledger_, bad)).status, 400);
}

TEST_F(ServiceTest, RedeemCooldownEndsAtExactlyTenMinutes) {
  Seed("vip", 10000);
  ASSERT_EQ(Commit("c1", {{"redeem_points", 100}}).status, 200);
  clock_.advance_ms(599 * 1000);
  auto early = Commit("c2", {{"redeem_points", 100}});
  EXPECT_EQ(early.status, 422);
  EXPECT_EQ(early.body["error"]["code"], "redeem_cooldown");
  clock_.advance_ms(1000);
  EXPECT_EQ(Commit("c3", {{"redeem_points", 100}}).status, 200);
}

TEST_F(ServiceTest, LotsExpireAfterTheLastSecondOfTheTwelfthMonth) {
  auto c = Commit("c1");
  ASSERT_EQ(c.status, 200);
  EXPECT_EQ(c.body["balance_after"], 168);
  auto m = Parsed(service_->GetMember(*ledger_, std::to_string(kMember)));
  ASSERT_EQ(m.body["lots"].size(), 1u);
  // Earned 2026-11-18 (Shanghai) → valid through 2027-11-30T23:59:59+08:00.
  EXPECT_EQ(m.body["lots"][0]["expires_at"], "2027-11-30T15:59:59Z");
  clock_.set_now_s(*ParseRfc3339("2027-11-30T15:59:59Z"));
  EXPECT_EQ(
      Parsed(service_->GetMember(*ledger_, std::to_string(kMember))).body["available_balance"],
      168);
  clock_.set_now_s(*ParseRfc3339("2027-11-30T16:00:00Z"));
  auto after = Parsed(service_->GetMember(*ledger_, std::to_string(kMember)));
  EXPECT_EQ(after.body["available_balance"], 0);
  EXPECT_EQ(after.body["balance"], 168);  // HQ writes the expire entry; the terminal does not
  EXPECT_EQ(after.body["lots"].size(), 0u);
}

TEST_F(ServiceTest, BlackTierInTheBirthdayMonthEarnsDouble) {
  Seed("black", 0, /*birthday_month=*/11);
  auto c = Commit("c1");
  ASSERT_EQ(c.status, 200) << c.body.dump();
  EXPECT_EQ(c.body["tier_discount_cents"], 1688);
  EXPECT_EQ(c.body["total_due_cents"], 18692);
  EXPECT_EQ(c.body["points_to_earn"], 607);
  EXPECT_EQ(c.body["member"]["birthday_month"], true);
  // 2026-11-30T16:00:00Z is already December in Shanghai: no birthday multiplier.
  clock_.set_now_s(*ParseRfc3339("2026-11-30T16:00:00Z"));
  auto d = Commit("c2");
  ASSERT_EQ(d.status, 200) << d.body.dump();
  EXPECT_EQ(d.body["points_to_earn"], 303);
}

TEST_F(ServiceTest, IdentificationLastsThirtyMinutes) {
  auto id = Parsed(service_->Identify(*ledger_, Code()));
  ASSERT_EQ(id.status, 200) << id.body.dump();
  std::string ident = id.body["identification"]["id"];
  EXPECT_EQ(id.body["identification"]["expires_at"], FormatRfc3339(kT0 + 1800));
  clock_.advance_ms(1800 * 1000);  // the code itself expired long ago; the identification has not
  json q{{"checkout_id", "q"}, {"identification_id", ident}, {"lines", Basket()}};
  EXPECT_EQ(Parsed(service_->Quote(*ledger_, q)).status, 200);
  clock_.advance_ms(1000);
  auto gone = Parsed(service_->Quote(*ledger_, q));
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(gone.body["error"]["code"], "not_found");
}

// Bounded memory: at max_identifications the one nearest expiry goes, the others stay.
TEST_F(ServiceTest, AtTheCapTheIdentificationNearestExpiryGoes) {
  ServiceOptions o{"T01", "S001"};
  o.max_identifications = 3;
  CheckoutService small(o, clock_, *verifier_, trusted_, *TimeZone::Load("Asia/Shanghai"), rules_);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto r = Parsed(small.Identify(*ledger_, Code()));
    ASSERT_EQ(r.status, 200) << r.body.dump();
    ids.push_back(r.body["identification"]["id"]);
    clock_.advance_ms(1000);
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    json q{{"checkout_id", "q" + std::to_string(i)},
           {"identification_id", ids[i]},
           {"lines", Basket()}};
    EXPECT_EQ(Parsed(small.Quote(*ledger_, q)).status, i < 2 ? 404 : 200) << i;
  }
}

TEST_F(ServiceTest, VelocityCountsOnlyTheTrailingHourAfterTheLatestUnfreeze) {
  json big =
      json::array({{{"sku", "TV"}, {"qty", 1}, {"unit_price_cents", 300000}, {"category", "tv"}}});
  ASSERT_EQ(Commit("v1", {{"lines", big}}).body["points_to_earn"], 3000);
  clock_.advance_ms(3600 *
                    1000);  // v1 is now exactly an hour old: out of the window (at > now − 3600 s)
  auto v2 = Commit("v2", {{"lines", big}});
  EXPECT_EQ(v2.body["member"]["status"], "active") << v2.body.dump();
  clock_.advance_ms(1000);
  auto v3 = Commit("v3", {{"lines", big}});
  ASSERT_EQ(v3.status, 200) << v3.body.dump();
  EXPECT_EQ(v3.body["member"]["status"], "frozen");
  EXPECT_EQ(v3.body["entries"].size(), 2u);
  // HQ lifts the freeze (as sync will): earnings before the unfreeze no longer count.
  auto m = ledger_->GetMember(kMember).value();
  m->status = "active";
  m->frozen_reason.clear();
  m->unfrozen_at_ms = clock_.now_ms();
  ASSERT_TRUE(ledger_->UpsertMember(*m).ok());
  clock_.advance_ms(1000);
  EXPECT_EQ(Commit("v4", {{"lines", big}}).body["member"]["status"], "active");
}

TEST_F(ServiceTest, ClawbackBelowZeroLeavesADebtThatNewPointsPayFirst) {
  Seed("member", 0);
  json big =
      json::array({{{"sku", "TV"}, {"qty", 1}, {"unit_price_cents", 100000}, {"category", "tv"}}});
  ASSERT_EQ(Commit("e1", {{"lines", big}}).body["balance_after"], 1000);
  clock_.advance_ms(1000);
  auto e2 = Commit("e2", {{"lines", Basket()}, {"redeem_points", 800}});
  ASSERT_EQ(e2.status, 200) << e2.body.dump();
  clock_.advance_ms(1000);
  auto refund = Parsed(
      service_->Refund(*ledger_, {{"refund_id", "r"}, {"checkout_id", "e1"}, {"reason", "void"}}));
  ASSERT_EQ(refund.status, 200) << refund.body.dump();
  EXPECT_EQ(refund.body["points_clawed_back"], 1000);
  int64_t after = refund.body["balance_after"];
  EXPECT_LT(after, 0);
  clock_.advance_ms(600 * 1000);
  auto refused = Commit("e3", {{"redeem_points", 100}});
  EXPECT_EQ(refused.body["error"]["code"], "insufficient_points");
  auto pay = Commit("e4", {{"lines", big}});
  ASSERT_EQ(pay.status, 200);
  EXPECT_EQ(pay.body["balance_after"], after + 1000);
  EXPECT_TRUE(ledger_->Verify().ok());
}

TEST_F(ServiceTest, CouponAllocatesByNetAndIsUsedOnce) {
  Seed("vip", 0);
  ledger::CouponRow c;
  c.coupon_id = "TEN";
  c.member_id = kMember;
  c.kind = "amount_off";
  c.value_cents = 1000;
  c.min_spend_cents = 10000;
  c.valid_from_s = kT0 - 10;
  c.valid_to_s = kT0 + 86400;
  ASSERT_TRUE(ledger_->PutCoupon(c).ok());
  auto r = Commit("k1", {{"coupon_id", "TEN"}});
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["coupon"]["discount_cents"], 1000);
  EXPECT_EQ(r.body["lines"][0]["coupon_cents"], 236);
  EXPECT_EQ(r.body["lines"][1]["coupon_cents"], 764);
  EXPECT_EQ(r.body["total_due_cents"], 18536);
  EXPECT_EQ(r.body["points_to_earn"], 225);
  auto again = Commit("k2", {{"coupon_id", "TEN"}});
  EXPECT_EQ(again.body["error"]["code"], "coupon_used");
  clock_.advance_ms(2 * 86400 * 1000);
  c.coupon_id = "OLD";
  ASSERT_TRUE(ledger_->PutCoupon(c).ok());
  EXPECT_EQ(Commit("k3", {{"coupon_id", "OLD"}}).body["error"]["code"], "coupon_invalid");
}

// Coupons in view (docs/pos-api.md): the member view lists the coupons the member may use
// now; a quote or commit with "best_coupon" applies the one that takes the most off.
TEST_F(ServiceTest, TheMemberViewListsUsableCouponsAndBestCouponPicksTheLargest) {
  Seed("member", 0);
  auto put = [&](const std::string& id, uint64_t member, const std::string& kind, int64_t value,
                 int64_t min_spend, int64_t from, int64_t to, const std::string& used = "") {
    ledger::CouponRow c;
    c.coupon_id = id;
    c.member_id = member;
    c.kind = kind;
    (kind == "amount_off" ? c.value_cents : c.bp) = value;
    c.min_spend_cents = min_spend;
    c.valid_from_s = from;
    c.valid_to_s = to;
    c.used_by_checkout = used;
    ASSERT_TRUE(ledger_->PutCoupon(c).ok());
  };
  put("TEN", kMember, "amount_off", 1000, 10000, kT0 - 10, kT0 + 86400);
  put("PCT15", kMember, "percent_off", 1500, 0, 0, kT0 + 7 * 86400);
  put("ANYONE", 0, "amount_off", 500, 0, 0, 0);
  put("OTHERS", kMember + 1, "amount_off", 9000, 0, 0, 0);
  put("EXPIRED", kMember, "amount_off", 9000, 0, 0, kT0 - 1);
  put("LATER", kMember, "amount_off", 9000, 0, kT0 + 3600, 0);
  put("USED", kMember, "amount_off", 9000, 0, 0, 0, "earlier-checkout");
  auto view = Parsed(service_->GetMember(*ledger_, std::to_string(kMember)));
  ASSERT_EQ(view.status, 200) << view.text;
  std::vector<std::string> ids;
  for (const auto& c : view.body["coupons"]) ids.push_back(c["coupon_id"]);
  // Soonest-ending first, open-ended last.
  EXPECT_EQ(ids, (std::vector<std::string>{"TEN", "PCT15", "ANYONE"})) << view.text;
  const json& ten = view.body["coupons"][0];
  EXPECT_EQ(ten["kind"], "amount_off");
  EXPECT_EQ(ten["value_cents"], 1000);
  EXPECT_EQ(ten["min_spend_cents"], 10000);
  EXPECT_EQ(ten["valid_from"], FormatRfc3339(kT0 - 10));
  EXPECT_EQ(ten["valid_to"], FormatRfc3339(kT0 + 86400));
  EXPECT_EQ(view.body["coupons"][1]["bp"], 1500);
  EXPECT_FALSE(view.body["coupons"][1].contains("value_cents"));
  EXPECT_TRUE(view.body["coupons"][2]["valid_to"].is_null());

  // Best for this basket (168.80 of it takes coupons): 15 % beats 10.00 off and 5.00 off.
  json body{
      {"checkout_id", "b1"}, {"member_code", Code()}, {"lines", Basket()}, {"best_coupon", true}};
  auto q = Parsed(service_->Quote(*ledger_, body));
  ASSERT_EQ(q.status, 200) << q.text;
  EXPECT_EQ(q.body["coupon"]["coupon_id"], "PCT15") << q.text;
  const int64_t off = q.body["coupon"]["discount_cents"];
  for (const char* other : {"TEN", "ANYONE"}) {
    json with = body;
    with.erase("best_coupon");
    with["coupon_id"] = other;
    auto alt = Parsed(service_->Quote(*ledger_, with));
    ASSERT_EQ(alt.status, 200) << alt.text;
    EXPECT_LT(alt.body["coupon"]["discount_cents"].get<int64_t>(), off) << other;
  }
  // Committed: that coupon is used, and gone from the member's list.
  auto c = Commit("b1", {{"best_coupon", true}});
  ASSERT_EQ(c.status, 200) << c.text;
  EXPECT_EQ(c.body["coupon"]["coupon_id"], "PCT15");
  ids.clear();
  for (const auto& x : c.body["member"]["coupons"]) ids.push_back(x["coupon_id"]);
  EXPECT_EQ(ids, (std::vector<std::string>{"TEN", "ANYONE"}));
  // Both at once is a bad request; without a member, best_coupon applies nothing.
  json both = body;
  both["coupon_id"] = "TEN";
  EXPECT_EQ(Parsed(service_->Quote(*ledger_, both)).body["error"]["code"], "bad_request");
  json anon{{"checkout_id", "b2"}, {"lines", Basket()}, {"best_coupon", true}};
  auto plain = Parsed(service_->Quote(*ledger_, anon));
  ASSERT_EQ(plain.status, 200) << plain.text;
  EXPECT_TRUE(plain.body["coupon"].is_null());
}

TEST_F(ServiceTest, ProvisionalUpgradeOnlyWhenEnabled) {
  Seed("member", 0);
  json big =
      json::array({{{"sku", "TV"}, {"qty", 1}, {"unit_price_cents", 60000}, {"category", "tv"}}});
  auto off = Commit("p1", {{"lines", big}});
  EXPECT_EQ(off.body["entries"].size(), 1u);
  auto upgraded = std::make_shared<rules::Rules>(*rules_);
  upgraded->provisional_upgrade = true;
  upgraded->version = "up";
  service_->SetRules(upgraded);
  clock_.advance_ms(1000);
  auto on = Commit("p2", {{"lines", big}});
  ASSERT_EQ(on.status, 200) << on.body.dump();
  EXPECT_EQ(on.body["entries"].size(), 2u);  // earn + tier_upgrade
  EXPECT_EQ(ledger_->GetMember(kMember).value()->tier, "vip");
  EXPECT_EQ(on.body["rules_version"], "up");
}

// loyalty-rules.md, Tiers: HQ's month-to-date spend plus this terminal's checkouts since
// that snapshot. A checkout HQ has already counted (acknowledged) is in HQ's figure and is
// not counted again, whatever the clocks say (it was made in the snapshot's own second).
TEST_F(ServiceTest, ProvisionalUpgradeCountsACheckoutHqHasCountedOnce) {
  Seed("member", 0);
  auto rules = std::make_shared<rules::Rules>(*rules_);
  rules->provisional_upgrade = true;
  service_->SetRules(rules);
  auto line = [](int64_t cents) {
    return json::array(
        {{{"sku", "A"}, {"qty", 1}, {"unit_price_cents", cents}, {"category", "grocery"}}});
  };
  auto first = Commit("s1", {{"lines", line(25000)}});
  ASSERT_EQ(first.status, 200) << first.body.dump();
  // The sync that follows: HQ acknowledges the sale and sends a snapshot (the same second)
  // whose month spend counts it.
  ASSERT_TRUE(ledger_->AckEntries({first.body["entries"][0].get<std::string>()}).ok());
  auto m = ledger_->GetMember(kMember).value().value();
  m.month_spend_cents = 25000;
  m.snapshot_at_s = clock_.now_s();
  ASSERT_TRUE(ledger_->UpsertMember(m).ok());
  clock_.advance_ms(1000);                               // a new code a sale
  auto second = Commit("s2", {{"lines", line(20000)}});  // 45000 in all: no upgrade
  ASSERT_EQ(second.status, 200) << second.body.dump();
  EXPECT_EQ(second.body["entries"].size(), 1u) << second.body.dump();
  EXPECT_EQ(ledger_->GetMember(kMember).value()->tier, "member");
  clock_.advance_ms(1000);
  auto third = Commit("s3", {{"lines", line(5000)}});  // 50000: vip from the next sale
  ASSERT_EQ(third.status, 200) << third.body.dump();
  EXPECT_EQ(third.body["entries"].size(), 2u) << third.body.dump();
  EXPECT_EQ(ledger_->GetMember(kMember).value()->tier, "vip");
}

// A snapshot of last month carries last month's spend: in a new month (store local time)
// it counts for nothing, and only this month's sales here do.
TEST_F(ServiceTest, ProvisionalUpgradeDoesNotAddThisMonthToLastMonthsSpend) {
  Seed("member", 0);
  auto rules = std::make_shared<rules::Rules>(*rules_);
  rules->provisional_upgrade = true;
  service_->SetRules(rules);
  // 2026-11-30 23:55 in Shanghai: HQ's snapshot says 45000 this month.
  const int64_t nov_30_2355 = 1796054100;  // 2026-11-30T15:55:00Z
  auto m = ledger_->GetMember(kMember).value().value();
  m.month_spend_cents = 45000;
  m.snapshot_at_s = nov_30_2355;
  ASSERT_TRUE(ledger_->UpsertMember(m).ok());
  clock_.set_now_s(nov_30_2355 + 35 * 60);  // 00:30 on 1 December, Shanghai
  auto line = json::array(
      {{{"sku", "A"}, {"qty", 1}, {"unit_price_cents", 5000}, {"category", "grocery"}}});
  auto sale = Commit("d1", {{"lines", line}});
  ASSERT_EQ(sale.status, 200) << sale.body.dump();
  EXPECT_EQ(sale.body["entries"].size(), 1u) << sale.body.dump();  // no tier_upgrade
  EXPECT_EQ(ledger_->GetMember(kMember).value()->tier, "member");
  // The same spend within November would have upgraded.
  m.snapshot_at_s = nov_30_2355;
  m.month_spend_cents = 45000;
  ASSERT_TRUE(ledger_->UpsertMember(m).ok());
  clock_.set_now_s(nov_30_2355 + 60);
  auto late = Commit("n1", {{"lines", line}});
  ASSERT_EQ(late.status, 200) << late.body.dump();
  EXPECT_EQ(late.body["entries"].size(), 2u) << late.body.dump();
}

TEST_F(ServiceTest, UntrustedWallClockIsReplacedByHqTime) {
  // HQ said it was kT0 when the monotonic clock read m0; then the terminal's wall clock is
  // set back a day. Codes are judged by the trusted time, so a code made "now" by HQ's
  // time is valid.
  trusted_.RecordHqTime(kT0 * 1000, clock_.mono_ms());
  std::string code = Code();
  clock_.set_now_s(kT0 - 86400);
  EXPECT_TRUE(trusted_.untrusted(clock_));
  auto id = Parsed(service_->Identify(*ledger_, code));
  EXPECT_EQ(id.status, 200) << id.body.dump();
}

}  // namespace
}  // namespace loyalty::checkout
