// Sign-up at the till, end to end (docs/pos-api.md, "Sign-up at the till"; docs/hq.md,
// "Claims"): real loyalty-hq and loyaltyd processes over mutual TLS. A sale made without a
// member gives an enrolment QR code (PNG and SVG, read back by ZXing to exactly its link);
// the customer joins at HQ with the link's claim before the terminal has synced, and the
// upload credits the sale's points once, which reach the terminal. A claim sent twice
// credits once; a refunded sale's claim, an expired, forged or altered one credit nothing;
// a refund after the credit takes its share back.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <ctime>

#include "e2e_fixture.h"
#include "loyalty/base/encoding.h"
#include "loyalty/codes/enrol_claim.h"
#include "loyalty/codes/return_token.h"
#include "qr_test_util.h"

namespace loyalty::e2e {
namespace {

const char* kSeller = "T01";  // S001
const char* kOther = "T02";   // S001
const std::string kJoin = "https://join.example.com/m?claim={claim}";

// 2 × 49.90 grocery and 1 × 35.00 tobacco: 99.80 earns points, 99 for a member.
json Lines() {
  return json::array(
      {{{"sku", "A"}, {"qty", 2}, {"unit_price_cents", 4990}, {"category", "grocery"}},
       {{"sku", "C"}, {"qty", 1}, {"unit_price_cents", 3500}, {"category", "tobacco"}}});
}

class E2eEnrolmentTest : public E2eFixture {
 protected:
  E2eEnrolmentTest() : E2eFixture({kSeller, kOther}) {}

  TerminalProcess& Lane(const char* id) {
    TerminalOptions o = Options(id, hq_->port());
    o.extra_toml = "\n[enrolment]\nurl_template = \"" + kJoin + "\"\n";
    return AddTerminal(std::move(o));
  }
  static json Sell(TerminalProcess& t, const std::string& id) {
    auto r = t.Call("POST", "/v1/checkouts/commit", json{{"checkout_id", id}, {"lines", Lines()}});
    EXPECT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(r.body["entries"], json::array()) << r.raw;
    return r.body;
  }
  static std::string ClaimOf(TerminalProcess& t, const std::string& checkout) {
    auto r = t.Call("GET", "/v1/checkouts/" + checkout + "/enrolment");
    EXPECT_EQ(r.status, 200) << r.raw;
    return r.body.value("claim", "");
  }
  // POST /v1/members with the claim; the answer.
  Reply Join(const std::string& claim, const std::string& name = "李四") {
    return hq_->Admin("POST", "/v1/members",
                      json{{"name", name}, {"store_id", "S001"}, {"claim", claim}});
  }
  int64_t HqBalance(const std::string& member) {
    auto r = hq_->Admin("GET", "/v1/members/" + member);
    EXPECT_EQ(r.status, 200) << r.raw;
    return r.body.value("balance", int64_t{-1});
  }
  json Claims(const std::string& member) {
    auto r = hq_->Admin("GET", "/v1/members/" + member + "/claims");
    EXPECT_EQ(r.status, 200) << r.raw;
    return r.body["claims"];
  }
  // The terminal's receipt key and HQ's certificate of it, from its ledger (read-only).
  static std::pair<std::string, std::string> ReceiptKey(TerminalProcess& t) {
    std::pair<std::string, std::string> out;
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(t.db_path().c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT key, value FROM meta WHERE key LIKE 'receipt_key_%'", -1, &st,
                       nullptr);
    while (sqlite3_step(st) == SQLITE_ROW) {
      const std::string key = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      const std::string value = reinterpret_cast<const char*>(sqlite3_column_text(st, 1));
      if (key == "receipt_key_seed") out.first = HexDecode(value).value_or("");
      if (key == "receipt_key_cert") out.second = Base64UrlDecode(value).value_or("");
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }
};

TEST_F(E2eEnrolmentTest, AClaimMadeBeforeTheSyncIsCreditedOnceAtTheUploadAndReachesTheTill) {
  StartHq();
  auto& seller = Lane(kSeller);
  ExpectOk(seller.Sync());  // HQ certifies the receipt key
  const json sale = Sell(seller, "anon-1");

  // The POS shows the code: a PNG for the receipt, an SVG for the customer display, both
  // read back by ZXing to exactly the link.
  auto link = seller.Call("GET", "/v1/checkouts/anon-1/enrolment");
  ASSERT_EQ(link.status, 200) << link.raw;
  const std::string url = link.body["url"], claim = link.body["claim"];
  EXPECT_EQ(url, "https://join.example.com/m?claim=" + claim);
  auto png = seller.Call("GET", "/v1/checkouts/anon-1/enrolment.png");
  ASSERT_EQ(png.status, 200);
  EXPECT_EQ(png.content_type, "image/png");
  auto gray = qr::testing::LoadGray(png.raw);
  ASSERT_TRUE(gray);
  auto from_png = qr::testing::ReadQr(*gray);
  ASSERT_TRUE(from_png);
  EXPECT_EQ(from_png->text, url);
  auto svg = seller.Call("GET", "/v1/checkouts/anon-1/enrolment.svg");
  ASSERT_EQ(svg.status, 200);
  EXPECT_EQ(svg.content_type, "image/svg+xml");
  auto from_svg = qr::testing::ReadSvgQr(svg.raw);
  ASSERT_TRUE(from_svg);
  EXPECT_EQ(from_svg->text, url);

  // The customer joins (the join page calls HQ's admin API) before the lane has synced: the
  // claim waits for the sale.
  auto joined = Join(claim);
  ASSERT_EQ(joined.status, 201) << joined.raw;
  const std::string member = joined.body["member_id"];
  EXPECT_EQ(joined.body["claim"]["status"], "pending") << joined.raw;
  EXPECT_EQ(joined.body["claim"]["terminal_id"], kSeller);
  EXPECT_EQ(HqBalance(member), 0);
  // Sent twice (a double tap on the join page, or the receipt passed on): one claim.
  auto twice = hq_->Admin("POST", "/v1/members/" + member + "/claims", json{{"claim", claim}});
  EXPECT_EQ(twice.status, 409) << twice.raw;
  EXPECT_EQ(twice.body["error"]["code"], "claim_used");
  auto someone_else = Join(claim, "王五");
  EXPECT_EQ(someone_else.status, 409) << someone_else.raw;
  EXPECT_EQ(someone_else.body["error"]["code"], "claim_used");

  // The lane's next run uploads the sale: credited, once; the member (enrolled at S001)
  // reaches the lane in the same run with the points.
  ExpectOk(seller.Sync());
  EXPECT_EQ(HqBalance(member), 99);
  EXPECT_EQ(HqEntrySum(*hq_, member), 99);
  const json claims = Claims(member);
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(claims[0]["status"], "credited");
  EXPECT_EQ(claims[0]["points"], 99);
  auto at_till = seller.Call("GET", "/v1/members/" + member);
  ASSERT_EQ(at_till.status, 200) << at_till.raw;
  EXPECT_EQ(at_till.body["balance"], 99) << at_till.raw;
  EXPECT_EQ(at_till.body["available_balance"], 99) << at_till.raw;
  // Runs after: nothing credited again, nothing to repair.
  auto again = seller.Sync();
  ExpectOk(again);
  EXPECT_EQ(again.value("repaired", -1), 0) << again.dump();
  EXPECT_EQ(HqBalance(member), 99);
  EXPECT_EQ(seller.MemberBalance(member), 99);
  EXPECT_EQ(sale["total_due_cents"], 13480);
}

TEST_F(E2eEnrolmentTest, RefundedExpiredForgedAndAlteredClaimsCreditNothing) {
  StartHq();
  auto& seller = Lane(kSeller);
  ExpectOk(seller.Sync());

  // A sale refunded (one unit) before anyone claims it.
  Sell(seller, "anon-r");
  const std::string refunded_claim = ClaimOf(seller, "anon-r");
  auto refund = seller.Call("POST", "/v1/refunds",
                            json{{"refund_id", "r-anon-r"},
                                 {"checkout_id", "anon-r"},
                                 {"lines", json::array({{{"line", 0}, {"qty", 1}}})}});
  ASSERT_EQ(refund.status, 200) << refund.raw;
  auto after_refund = seller.Call("GET", "/v1/checkouts/anon-r/enrolment.png");
  EXPECT_EQ(after_refund.status, 422) << after_refund.raw;
  EXPECT_EQ(after_refund.body["error"]["code"], "checkout_refunded");
  ExpectOk(seller.Sync());
  auto refunded = Join(refunded_claim);
  EXPECT_EQ(refunded.status, 422) << refunded.raw;
  EXPECT_EQ(refunded.body["error"]["code"], "checkout_refunded");

  // Altered in transit, or forged: refused, nothing recorded.
  const std::string member =
      hq_->Admin("POST", "/v1/members", json{{"name", "孙七"}, {"store_id", "S001"}})
          .body["member_id"];
  Sell(seller, "anon-f");
  const std::string genuine = ClaimOf(seller, "anon-f");
  std::string altered = genuine;
  altered[40] = altered[40] == 'A' ? 'B' : 'A';
  auto [seed, cert] = ReceiptKey(seller);
  ASSERT_EQ(seed.size(), 32u);
  ASSERT_FALSE(cert.empty());
  codes::EnrolClaim c;
  c.checkout_id = "anon-f";
  c.committed_at_ms = static_cast<int64_t>(::time(nullptr)) * 1000 - 60'000;
  c.expires_at_s = codes::EnrolClaimExpiry(c.committed_at_ms, 7);
  // A key the till made up, certified by another HQ.
  const std::string forged_seed(32, '\x61');
  const std::string forged_cert = codes::MakeReceiptKeyCert(
      std::string(32, '\x62'), 1, kSeller, codes::ReceiptPublicKey(forged_seed), 2'000'000'000);
  const std::string forged = codes::MakeEnrolClaim(forged_cert, forged_seed, c);
  ASSERT_FALSE(forged.empty());
  for (const std::string& bad : {altered, forged}) {
    auto r = hq_->Admin("POST", "/v1/members/" + member + "/claims", json{{"claim", bad}});
    EXPECT_EQ(r.status, 422) << r.raw;
    const std::string code = r.body["error"]["code"];
    EXPECT_TRUE(code == "code_signature_invalid" || code == "code_malformed") << r.raw;
  }
  // Signed with the lane's own certified key, but for a sale eight days old: expired.
  codes::EnrolClaim old = c;
  old.checkout_id = "anon-old";
  old.committed_at_ms = static_cast<int64_t>(::time(nullptr)) * 1000 - 8 * 86'400'000;
  old.expires_at_s = codes::EnrolClaimExpiry(old.committed_at_ms, 7);
  auto expired = hq_->Admin("POST", "/v1/members/" + member + "/claims",
                            json{{"claim", codes::MakeEnrolClaim(cert, seed, old)}});
  EXPECT_EQ(expired.status, 422) << expired.raw;
  EXPECT_EQ(expired.body["error"]["code"], "code_expired");
  EXPECT_TRUE(Claims(member).empty());
  EXPECT_EQ(HqBalance(member), 0);
  // The genuine claim still works.
  auto ok = hq_->Admin("POST", "/v1/members/" + member + "/claims", json{{"claim", genuine}});
  EXPECT_EQ(ok.status, 201) << ok.raw;
  ExpectOk(seller.Sync());
  EXPECT_EQ(HqBalance(member), 99);
  const std::string log = hq_->ReadLog();
  EXPECT_NE(log.find("\"event\":\"claim_refused\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"event\":\"claim_credited\""), std::string::npos) << log;
}

TEST_F(E2eEnrolmentTest, ARefundAfterTheCreditAtAnotherLaneTakesItsShareBack) {
  StartHq();
  auto& seller = Lane(kSeller);
  auto& other = Lane(kOther);
  ExpectOk(seller.Sync());
  ExpectOk(other.Sync());
  Sell(seller, "anon-c");
  ExpectOk(seller.Sync());  // HQ holds the sale: the claim is credited at once
  auto joined = Join(ClaimOf(seller, "anon-c"));
  ASSERT_EQ(joined.status, 201) << joined.raw;
  EXPECT_EQ(joined.body["claim"]["status"], "credited") << joined.raw;
  EXPECT_EQ(joined.body["claim"]["points"], 99);
  const std::string member = joined.body["member_id"];
  // One of the two grocery units comes back at the other lane (HQ sends it the sale).
  auto r = other.Call("POST", "/v1/refunds",
                      json{{"refund_id", "r-c-1"},
                           {"checkout_id", "anon-c"},
                           {"sold_at", kSeller},
                           {"lines", json::array({{{"line", 0}, {"qty", 1}}})}});
  ASSERT_EQ(r.status, 200) << r.raw;
  ExpectOk(other.Sync());
  EXPECT_EQ(HqBalance(member), 99 - 49) << "floor(99 × 4990 / 9980) = 49";
  // The other unit at the seller: every point of the credit is back.
  auto rest = seller.Call("POST", "/v1/refunds",
                          json{{"refund_id", "r-c-2"},
                               {"checkout_id", "anon-c"},
                               {"lines", json::array({{{"line", 0}, {"qty", 1}}})}});
  ASSERT_EQ(rest.status, 200) << rest.raw;
  ExpectOk(seller.Sync());
  EXPECT_EQ(HqBalance(member), 0);
  EXPECT_EQ(HqEntrySum(*hq_, member), 0);
  EXPECT_EQ(Claims(member)[0]["clawed_back"], 99);
  ExpectOk(seller.Sync());
  EXPECT_EQ(seller.MemberBalance(member), 0);
}

}  // namespace
}  // namespace loyalty::e2e
