// Sign-up claims at HQ (docs/hq.md, "Claims"), in process over the run's backend with a fake
// clock: a claimed sale's points credited once, from HQ's record of the checkout, whether the
// claim comes before or after the sale's upload; never twice, never for a refunded sale, a
// sale with a member, an expired, forged or altered claim; a refund after the credit takes
// back exactly its share, cumulatively.
#include <gtest/gtest.h>

#include "hq_test_util.h"
#include "loyalty/codes/enrol_claim.h"
#include "loyalty/codes/return_token.h"

namespace loyalty::hq::testing {
namespace {

using nlohmann::json;

const std::string kTerminalSeed(32, '\x5a');
constexpr int64_t kDayMs = 86'400'000;

class HqClaimsTest : public HqFixture {
 protected:
  // The receipt-key certificate HQ (signing key 3) gives terminal `tid`.
  static std::string Cert(const std::string& tid = "T01", const std::string& hq_seed = HqSeed(),
                          uint8_t key_id = 3) {
    return codes::MakeReceiptKeyCert(hq_seed, key_id, tid, codes::ReceiptPublicKey(kTerminalSeed),
                                     static_cast<uint32_t>(kNowMs / 1000 + 90 * 86400));
  }
  // The claim terminal `tid` signs for its sale `checkout` committed at `at_ms`.
  static std::string Claim(const std::string& checkout, int64_t at_ms,
                           const std::string& tid = "T01", int64_t window_days = 7) {
    codes::EnrolClaim c;
    c.checkout_id = checkout;
    c.committed_at_ms = at_ms;
    c.expires_at_s = codes::EnrolClaimExpiry(at_ms, window_days);
    return codes::MakeEnrolClaim(Cert(tid), kTerminalSeed, c);
  }
  // A sale without a member, priced as a terminal prices it (the default rules).
  static sync::Checkout Anonymous(const std::string& id, int64_t at_ms,
                                  const std::vector<rules::Line>& lines) {
    rules::QuoteInput in;
    in.lines = lines;
    auto q = rules::ComputeQuote(rules::Rules::Defaults(), in);
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    sync::Checkout c;
    c.checkout_id = id;
    c.request_hash = std::string(64, 'b');
    c.rules_version = "default";
    c.committed_at_ms = at_ms;
    c.subtotal_cents = q->subtotal_cents;
    c.total_due_cents = q->total_due_cents;
    c.eligible_cents = q->eligible_cents;
    c.redeemable_cents = q->redeemable_cents;
    c.tender = "cash";
    c.request_json = "{}";
    c.response_json = "{}";
    for (size_t i = 0; i < lines.size(); ++i) {
      const auto& l = q->lines[i];
      c.lines.push_back({static_cast<int64_t>(i), lines[i].sku, lines[i].category, lines[i].qty,
                         lines[i].unit_price_cents, l.tier_discount_cents, l.coupon_cents,
                         l.redeem_cents, l.net_cents, l.net_before_redeem_cents, l.points_eligible,
                         l.redeemable});
    }
    return c;
  }
  // 3 × 33.33 grocery, 1 × 10.01 grocery, 1 × 35.00 tobacco: 110.00 earn points, 110 for a
  // member at 1 point a yuan.
  static std::vector<rules::Line> Lines() {
    return {{"A", 3, 3333, "grocery"}, {"B", 1, 1001, "grocery"}, {"C", 1, 3500, "tobacco"}};
  }
  // A refund of `units` of `line` after `before` units of every line were refunded.
  static sync::Refund RefundOf(const sync::Checkout& c, const std::string& id, size_t line,
                               int64_t units, std::vector<int64_t> before, int64_t at_ms,
                               const std::string& sold_at = "") {
    std::vector<int64_t> after = before;
    after[line] += units;
    auto a = rules::ComputeRefund(rules::RefundBasisOf(c), before, after);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    sync::Refund r;
    r.refund_id = id;
    r.checkout_id = c.checkout_id;
    r.reason = "return";
    r.at_ms = at_ms;
    r.refund_cents = a->refund_cents;
    r.response_json = "{}";
    r.lines = {{static_cast<int64_t>(line), units}};
    r.sold_at = sold_at;
    return r;
  }
  json Join(const std::string& claim, json body = {{"name", "李四"}}) {
    body["claim"] = claim;
    body["store_id"] = kStore;
    auto r = Call("POST", "/v1/members", body);
    last_ = r;
    return J(r);
  }
  json AddClaim(const std::string& member, const std::string& claim) {
    auto r = Call("POST", "/v1/members/" + member + "/claims", json{{"claim", claim}});
    last_ = r;
    return J(r);
  }
  json Claims(const std::string& member) {
    auto r = Call("GET", "/v1/members/" + member + "/claims");
    EXPECT_EQ(r.status, 200) << r.body;
    return J(r)["claims"];
  }
  int64_t Balance(const std::string& member) { return Member(member)["balance"]; }
  int Events(const std::string& name) {
    int n = 0;
    for (const auto& [e, f] : events_) n += e == name;
    return n;
  }
  std::string ErrorCodeOf(const json& j) { return j["error"]["code"]; }
  // Members HQ holds (a refused enrolment adds none).
  int64_t MemberCount() {
    auto ids = store_->MembersAfter(0, 1000);
    EXPECT_TRUE(ids.ok());
    return ids.ok() ? static_cast<int64_t>(ids->size()) : -1;
  }
  http::Response last_;
};

TEST_F(HqClaimsTest, AClaimOfAnUploadedSaleIsCreditedOnceFromHqsRecord) {
  const sync::Checkout sale = Anonymous("c-1", kNowMs - 3600'000, Lines());
  ASSERT_EQ(sale.points_earned, 0);
  Upload("T01", {{}, {sale}, {}});
  const json joined = Join(Claim("c-1", sale.committed_at_ms));
  ASSERT_EQ(last_.status, 201) << last_.body;
  const std::string member = joined["member_id"];
  EXPECT_EQ(joined["claim"]["status"], "credited") << joined.dump();
  EXPECT_EQ(joined["claim"]["terminal_id"], "T01");
  EXPECT_EQ(joined["claim"]["checkout_id"], "c-1");
  EXPECT_EQ(joined["claim"]["points"], 110) << "eligible 110.00 (tobacco earns nothing)";
  EXPECT_EQ(joined["claim"]["reason"], nullptr);
  EXPECT_EQ(Balance(member), 110);
  EXPECT_EQ(Events("claim_credited"), 1);
  EXPECT_EQ(Events("claim_recorded"), 1);

  // The same claim again, by the same member or another: 409, nothing credited.
  const json again = AddClaim(member, Claim("c-1", sale.committed_at_ms));
  EXPECT_EQ(last_.status, 409) << last_.body;
  EXPECT_EQ(ErrorCodeOf(again), "claim_used");
  const std::string other = CreateMember({{"name", "王五"}});
  EXPECT_EQ(ErrorCodeOf(AddClaim(other, Claim("c-1", sale.committed_at_ms))), "claim_used");
  EXPECT_EQ(last_.status, 409);
  const int64_t before = MemberCount();
  EXPECT_EQ(ErrorCodeOf(Join(Claim("c-1", sale.committed_at_ms))), "claim_used");
  EXPECT_EQ(MemberCount(), before) << "a refused claim enrols no one";
  // The same sale uploaded again changes nothing.
  Upload("T01", {{}, {sale}, {}});
  EXPECT_EQ(Balance(member), 110);
  EXPECT_EQ(Balance(other), 0);
  EXPECT_EQ(Events("claim_credited"), 1);
  EXPECT_EQ(Events("claim_refused"), 3);
  // HQ's balance is its entries': the credit is one HQ-side adjust entry.
  auto sum = store_->SumMemberPoints(std::stoull(member));
  ASSERT_TRUE(sum.ok());
  EXPECT_EQ(*sum, 110);
  const json claims = Claims(member);
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(claims[0]["status"], "credited");
  EXPECT_EQ(claims[0]["points"], 110);
  EXPECT_TRUE(Claims(other).empty());
}

TEST_F(HqClaimsTest, TheMembersTierAndBirthdayMonthCount) {
  const sync::Checkout sale = Anonymous("c-vip", kNowMs - 1000, Lines());
  Upload("T01", {{}, {sale}, {}});
  // March 2026 (kNowMs) is the member's birthday month: vip ×1.5, birthday ×2.
  const json joined = Join(Claim("c-vip", sale.committed_at_ms),
                           {{"name", "赵六"}, {"tier", "vip"}, {"birthday", "03-09"}});
  ASSERT_EQ(last_.status, 201) << last_.body;
  EXPECT_EQ(joined["claim"]["points"], 330) << "11000 × 1 × 1.5 × 2 / 100";
}

TEST_F(HqClaimsTest, AClaimBeforeTheUploadWaitsAndTheUploadCreditsIt) {
  const sync::Checkout sale = Anonymous("c-2", kNowMs - 60'000, Lines());
  const json joined = Join(Claim("c-2", sale.committed_at_ms));
  ASSERT_EQ(last_.status, 201) << last_.body;
  const std::string member = joined["member_id"];
  EXPECT_EQ(joined["claim"]["status"], "pending");
  EXPECT_EQ(joined["claim"]["points"], 0);
  EXPECT_EQ(Balance(member), 0);
  // Submitted twice while it waits: still one claim.
  EXPECT_EQ(ErrorCodeOf(AddClaim(member, Claim("c-2", sale.committed_at_ms))), "claim_used");
  clock_.advance_ms(3 * kDayMs);
  Upload("T01", {{}, {sale}, {}});
  EXPECT_EQ(Balance(member), 110);
  EXPECT_EQ(Claims(member)[0]["status"], "credited");
  Upload("T01", {{}, {sale}, {}});
  EXPECT_EQ(Balance(member), 110);
  EXPECT_EQ(Events("claim_credited"), 1);
}

TEST_F(HqClaimsTest, ARefundedSalesClaimCreditsNothing) {
  const sync::Checkout sale = Anonymous("c-3", kNowMs - 60'000, Lines());
  const sync::Refund refund = RefundOf(sale, "r-3", 1, 1, {0, 0, 0}, kNowMs - 30'000);
  Upload("T01", {{}, {sale}, {refund}});
  const int64_t before = MemberCount();
  const json refused = Join(Claim("c-3", sale.committed_at_ms));
  EXPECT_EQ(last_.status, 422) << last_.body;
  EXPECT_EQ(ErrorCodeOf(refused), "checkout_refunded");
  EXPECT_EQ(MemberCount(), before);
  const std::string member = CreateMember({{"name", "孙七"}});
  EXPECT_EQ(ErrorCodeOf(AddClaim(member, Claim("c-3", sale.committed_at_ms))), "checkout_refunded");
  EXPECT_EQ(Balance(member), 0);
  EXPECT_TRUE(Claims(member).empty());

  // Claimed before the upload, the sale and its refund arriving together: refused there.
  const sync::Checkout later = Anonymous("c-4", kNowMs - 50'000, Lines());
  const json waiting = AddClaim(member, Claim("c-4", later.committed_at_ms));
  ASSERT_EQ(last_.status, 201) << last_.body;
  EXPECT_EQ(waiting["status"], "pending");
  Upload("T01", {{}, {later}, {RefundOf(later, "r-4", 2, 1, {0, 0, 0}, kNowMs)}});
  EXPECT_EQ(Balance(member), 0);
  const json claims = Claims(member);
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(claims[0]["status"], "refused");
  EXPECT_EQ(claims[0]["reason"], "checkout_refunded");
  EXPECT_EQ(claims[0]["points"], 0);
}

TEST_F(HqClaimsTest, ARefundAfterTheCreditTakesBackExactlyItsShareCumulatively) {
  const sync::Checkout sale = Anonymous("c-5", kNowMs - 60'000, Lines());
  Upload("T01", {{}, {sale}, {}});
  const std::string member = Join(Claim("c-5", sale.committed_at_ms))["member_id"];
  ASSERT_EQ(Balance(member), 110);
  // One unit of line 0 here, another at a lane of another terminal, then the rest: each
  // takes floor(110 × refunded eligible / 11000) so far, less what went before.
  Upload("T01", {{}, {}, {RefundOf(sale, "r-5a", 0, 1, {0, 0, 0}, kNowMs)}});
  EXPECT_EQ(Balance(member), 110 - 33) << "floor(110 × 3333 / 11000) = 33";
  Upload("T02", {{}, {}, {RefundOf(sale, "r-5b", 0, 1, {1, 0, 0}, kNowMs + 1, "T01")}});
  EXPECT_EQ(Balance(member), 110 - 66) << "floor(110 × 6666 / 11000) = 66";
  Upload("T01", {{}, {}, {RefundOf(sale, "r-5c", 2, 1, {2, 0, 0}, kNowMs + 2)}});
  EXPECT_EQ(Balance(member), 110 - 66) << "tobacco earned nothing";
  Upload("T01", {{}, {}, {RefundOf(sale, "r-5d", 0, 1, {2, 0, 1}, kNowMs + 3)}});
  EXPECT_EQ(Balance(member), 110 - 99) << "floor(110 × 9999 / 11000) = 99";
  Upload("T01", {{}, {}, {RefundOf(sale, "r-5e", 1, 1, {3, 0, 1}, kNowMs + 4)}});
  EXPECT_EQ(Balance(member), 0) << "every unit back: exactly the credited points";
  const json c = Claims(member)[0];
  EXPECT_EQ(c["points"], 110);
  EXPECT_EQ(c["clawed_back"], 110);
  EXPECT_EQ(Events("claim_clawed_back"), 4);
  auto sum = store_->SumMemberPoints(std::stoull(member));
  ASSERT_TRUE(sum.ok());
  EXPECT_EQ(*sum, 0);
}

TEST_F(HqClaimsTest, AnExpiredClaimCreditsNothing) {
  const int64_t sold = kNowMs - 7 * kDayMs;  // exactly the refund window ago
  const sync::Checkout sale = Anonymous("c-6", sold, Lines());
  Upload("T01", {{}, {sale}, {}});
  // The claim lives to the last second of the window (a whole second after the sale's).
  clock_.set_now_ms(sold - sold % 1000 + 7 * kDayMs + 999);
  const json joined = Join(Claim("c-6", sold));
  ASSERT_EQ(last_.status, 201) << last_.body;
  EXPECT_EQ(joined["claim"]["points"], 110);

  const sync::Checkout late = Anonymous("c-7", sold, Lines());
  Upload("T01", {{}, {late}, {}});
  clock_.set_now_ms(sold - sold % 1000 + 7 * kDayMs + 1000);
  const int64_t before = MemberCount();
  const json expired = Join(Claim("c-7", sold));
  EXPECT_EQ(last_.status, 422) << last_.body;
  EXPECT_EQ(ErrorCodeOf(expired), "code_expired");
  EXPECT_EQ(MemberCount(), before);

  // A terminal that signed a longer window than HQ's current rules: HQ's window counts.
  const sync::Checkout long_claim = Anonymous("c-8", kNowMs, Lines());
  Upload("T01", {{}, {long_claim}, {}});
  clock_.set_now_ms(kNowMs + 7 * kDayMs + 1000);
  const std::string member = CreateMember({{"name", "周八"}});
  const json refused = AddClaim(member, Claim("c-8", kNowMs, "T01", 30));
  EXPECT_EQ(last_.status, 422) << last_.body;
  EXPECT_EQ(ErrorCodeOf(refused), "code_expired");
  EXPECT_EQ(Balance(member), 0);
}

TEST_F(HqClaimsTest, ForgedOrAlteredClaimsAreRefusedAndRecordNothing) {
  const sync::Checkout sale = Anonymous("c-9", kNowMs - 60'000, Lines());
  Upload("T01", {{}, {sale}, {}});
  const std::string member = CreateMember({{"name", "吴九"}});
  const std::string good = Claim("c-9", sale.committed_at_ms);
  std::string altered = good;
  altered[altered.size() / 2] = altered[altered.size() / 2] == 'A' ? 'B' : 'A';
  codes::EnrolClaim forged_claim;
  forged_claim.checkout_id = "c-9";
  forged_claim.committed_at_ms = sale.committed_at_ms;
  forged_claim.expires_at_s = codes::EnrolClaimExpiry(sale.committed_at_ms, 7);
  // Certified by another HQ under a key id this HQ uses; by a key id it does not have.
  const std::string other_hq =
      codes::MakeEnrolClaim(Cert("T01", std::string(32, '\x66'), 3), kTerminalSeed, forged_claim);
  const std::string unknown_key =
      codes::MakeEnrolClaim(Cert("T01", std::string(32, '\x66'), 9), kTerminalSeed, forged_claim);
  // Signed by a key the certificate does not name.
  const std::string wrong_key =
      codes::MakeEnrolClaim(Cert("T01"), std::string(32, '\x77'), forged_claim);
  for (const auto& [text, want] : std::vector<std::pair<std::string, std::set<std::string>>>{
           {altered,
            {"code_signature_invalid", "code_malformed", "code_issuer_unknown", "code_expired"}},
           {other_hq, {"code_signature_invalid"}},
           {unknown_key, {"code_issuer_unknown"}},
           {wrong_key, {"code_signature_invalid"}},
           {"LC1.AAAA", {"code_malformed"}},
           {"not a claim", {"code_malformed"}}}) {
    const json r = AddClaim(member, text);
    EXPECT_EQ(last_.status, 422) << last_.body;
    EXPECT_EQ(want.count(ErrorCodeOf(r)), 1u) << last_.body;
  }
  auto too_long = Call("POST", "/v1/members/" + member + "/claims",
                       json{{"claim", "LC1." + std::string(codes::kMaxEnrolClaimChars, 'A')}});
  EXPECT_EQ(too_long.status, 400) << too_long.body;
  EXPECT_TRUE(Claims(member).empty());
  EXPECT_EQ(Balance(member), 0);
  EXPECT_EQ(Events("claim_refused"), 6);
  // The genuine claim still works afterwards.
  EXPECT_EQ(AddClaim(member, good)["points"], 110);
}

TEST_F(HqClaimsTest, SalesHqCannotCreditAreRefused) {
  // A sale with a member earned its points then.
  const std::string holder = CreateMember({{"name", "郑十"}});
  FakeTerminal t{"T01"};
  Sale with = PricedSale(t, std::stoull(holder), "c-m", Basket(10000), kNowMs - 60'000);
  Upload("T01", {with.entries, {with.checkout}, {}});
  const std::string member = CreateMember({{"name", "冯一"}});
  EXPECT_EQ(ErrorCodeOf(AddClaim(member, Claim("c-m", kNowMs - 60'000))), "checkout_has_member");
  EXPECT_EQ(last_.status, 422);
  // A claim whose commit time is not the sale's.
  const sync::Checkout sale = Anonymous("c-10", kNowMs - 60'000, Lines());
  Upload("T01", {{}, {sale}, {}});
  EXPECT_EQ(ErrorCodeOf(AddClaim(member, Claim("c-10", kNowMs - 59'000))), "claim_refused");
  // An anonymous sale whose nets are not what the rules make of its lines.
  sync::Checkout inflated = Anonymous("c-11", kNowMs - 60'000, Lines());
  inflated.lines[0].unit_price_cents = 333300;
  Upload("T01", {{}, {inflated}, {}});
  EXPECT_EQ(ErrorCodeOf(AddClaim(member, Claim("c-11", kNowMs - 60'000))), "claim_refused");
  // A sale HQ refused at upload (an anonymous checkout that claims points).
  sync::Checkout pointed = Anonymous("c-12", kNowMs - 60'000, Lines());
  pointed.points_earned = 5;
  Upload("T01", {{}, {pointed}, {}});
  EXPECT_EQ(ErrorCodeOf(AddClaim(member, Claim("c-12", kNowMs - 60'000))), "claim_refused");
  // Claimed first, then uploaded with a member: refused by the upload.
  const json waiting = AddClaim(member, Claim("c-m2", kNowMs - 30'000));
  ASSERT_EQ(last_.status, 201) << last_.body;
  Sale with2 = PricedSale(t, std::stoull(holder), "c-m2", Basket(10000), kNowMs - 30'000);
  Upload("T01", {with2.entries, {with2.checkout}, {}});
  const json claims = Claims(member);
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(claims[0]["status"], "refused");
  EXPECT_EQ(claims[0]["reason"], "checkout_has_member");
  EXPECT_EQ(Balance(member), 0);
  // Another terminal's claim names its own sales only: T02's claim of c-10 is another sale.
  EXPECT_EQ(AddClaim(member, Claim("c-10", kNowMs - 60'000, "T02"))["status"], "pending");
}

TEST_F(HqClaimsTest, AFrozenMemberIsCreditedNothing) {
  const sync::Checkout sale = Anonymous("c-13", kNowMs - 60'000, Lines());
  Upload("T01", {{}, {sale}, {}});
  const std::string member = CreateMember({{"name", "陈二"}});
  FakeTerminal t{"T01"};
  t.seq = 0;
  // A terminal's velocity freeze (6,000 points in its hour) freezes the member at HQ.
  Sale big = PricedSale(t, std::stoull(member), "c-big", Basket(600000), kNowMs - 2000);
  sync::UploadRequest up{big.entries, {big.checkout}, {}};
  up.entries.push_back(
      t.Make("freeze", std::stoull(member), 0, kNowMs - 2000, "c-big", R"({"reason":"velocity"})"));
  Upload("T01", up);
  ASSERT_EQ(Member(member)["status"], "frozen");
  const int64_t before = Balance(member);
  const json c = AddClaim(member, Claim("c-13", sale.committed_at_ms));
  ASSERT_EQ(last_.status, 201) << last_.body;
  EXPECT_EQ(c["status"], "credited");
  EXPECT_EQ(c["points"], 0);
  EXPECT_EQ(Balance(member), before);
}

TEST_F(HqClaimsTest, UnknownMembersAndBadBodies) {
  const std::string claim = Claim("c-14", kNowMs);
  auto r = Call("POST", "/v1/members/424242/claims", json{{"claim", claim}});
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(J(r)["error"]["code"], "member_unknown");
  auto g = Call("GET", "/v1/members/424242/claims");
  EXPECT_EQ(g.status, 404) << g.body;
  const std::string member = CreateMember({{"name", "褚三"}});
  auto missing = Call("POST", "/v1/members/" + member + "/claims", json::object());
  EXPECT_EQ(missing.status, 400) << missing.body;
  EXPECT_EQ(J(missing)["error"]["message"], "claim is missing");
  auto wrong = Call("POST", "/v1/members/" + member + "/claims", json{{"claim", 7}});
  EXPECT_EQ(wrong.status, 400) << wrong.body;
  auto no_token = Call("POST", "/v1/members/" + member + "/claims", json{{"claim", claim}}, false);
  EXPECT_EQ(no_token.status, 401);
  auto bad_join = Call("POST", "/v1/members", json{{"name", "卫四"}, {"claim", ""}});
  EXPECT_EQ(bad_join.status, 400) << bad_join.body;
}

}  // namespace
}  // namespace loyalty::hq::testing
