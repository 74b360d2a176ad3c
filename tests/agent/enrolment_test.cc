// Sign-up at the till (docs/pos-api.md): a real loyaltyd process, real HTTP on loopback, a real
// ledger file. The enrolment routes of a sale made without a member answer the join page's
// link with a claim HQ can verify, and its QR code as PNG and SVG that ZXing reads back to
// exactly that link; every refusal has the contract's code and changes nothing.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <ctime>

#include "harness.h"
#include "loyalty/base/encoding.h"
#include "loyalty/base/time.h"
#include "loyalty/codes/enrol_claim.h"
#include "loyalty/codes/return_token.h"
#include "qr_test_util.h"

namespace loyalty::testing {
namespace {

using nlohmann::json;

constexpr uint64_t kDynamicMember = 1234567890123;  // the vectors' certificate member
const std::string kTemplate = "https://join.example.com/m?claim={claim}&s=S001";
const std::string kReceiptSeed(32, '\x42');

json Lines() {
  return json::array(
      {{{"sku", "A"}, {"qty", 2}, {"unit_price_cents", 1990}, {"category", "grocery"}},
       {{"sku", "C"}, {"qty", 1}, {"unit_price_cents", 3500}, {"category", "tobacco"}}});
}

std::map<int, std::string> HqKeys() { return {{1, *Base64UrlDecode(kHqPublicB64)}}; }

class AgentEnrolmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  void TearDown() override {
    if (agent_) {
      const std::string log = agent_->ReadLog();
      EXPECT_EQ(log.find("log_event_uncatalogued"), std::string::npos) << log;
      // The claim is a bearer of points: never in the log.
      EXPECT_EQ(log.find("LC1."), std::string::npos) << "a claim in the log";
    }
    agent_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }
  AgentProcess& Start(const std::string& extra) {
    agent_ = std::make_unique<AgentProcess>(dir_, extra);
    return *agent_;
  }
  // The receipt key HQ certifies at the first sync, put in the ledger as a sync leaves it.
  void Certify(AgentProcess& a, uint32_t not_after) {
    auto l = a.OpenLedger();
    ASSERT_TRUE(l);
    const std::string cert = codes::MakeReceiptKeyCert(
        *HexDecode(kHqSeedHex), 1, "T01", codes::ReceiptPublicKey(kReceiptSeed), not_after);
    ASSERT_FALSE(cert.empty());
    ASSERT_TRUE(l->PutMeta("receipt_key_seed", HexEncode(kReceiptSeed)).ok());
    ASSERT_TRUE(l->PutMeta("receipt_key_cert", Base64UrlEncode(cert)).ok());
  }
  static std::string Enabled(int pixels = 3) {
    return "\n[enrolment]\nurl_template = \"" + kTemplate +
           "\"\nqr_module_pixels = " + std::to_string(pixels) + "\n";
  }
  static HttpReply Commit(AgentProcess& a, const std::string& id, bool member = false) {
    json body{{"checkout_id", id}, {"lines", Lines()}};
    if (member) body["member_code"] = MintCode(kDynamicMember);
    auto r = a.Post("/v1/checkouts/commit", body);
    EXPECT_EQ(r.status, 200) << r.raw;
    return r;
  }
  // Entries, checkouts and meta rows: an enrolment route writes none of them.
  static std::vector<int64_t> Counts(AgentProcess& a) {
    auto l = a.OpenLedger(ledger::Ledger::Mode::kReader);
    std::vector<int64_t> out;
    for (const char* sql : {"SELECT count(*) FROM entries", "SELECT count(*) FROM checkouts",
                            "SELECT count(*) FROM meta"}) {
      auto st = l->db().Prepare(sql);
      out.push_back((*st)->Step() ? (*st)->Int(0) : -1);
    }
    return out;
  }
  std::filesystem::path dir_;
  std::unique_ptr<AgentProcess> agent_;
};

TEST_F(AgentEnrolmentTest, TheLinkCarriesAClaimHqVerifiesAndTheQrCodesReadBackToIt) {
  auto& a = Start(Enabled(3));
  Certify(a, static_cast<uint32_t>(::time(nullptr) + 90 * 86400));
  a.Start();
  const auto commit = Commit(a, "anon-1");
  const int64_t committed_s = *ParseRfc3339(commit.body["committed_at"].get<std::string>());
  const auto before = Counts(a);

  auto j = a.Get("/v1/checkouts/anon-1/enrolment");
  ASSERT_EQ(j.status, 200) << j.raw;
  EXPECT_EQ(j.content_type, "application/json");
  EXPECT_EQ(j.body["checkout_id"], "anon-1");
  const std::string claim = j.body["claim"];
  const std::string url = j.body["url"];
  EXPECT_EQ(url, "https://join.example.com/m?claim=" + claim + "&s=S001");
  // The refund window of the default rules: 7 days after the sale, to the second.
  const int64_t expires = *ParseRfc3339(j.body["expires_at"].get<std::string>());
  EXPECT_EQ(expires, committed_s + 7 * 86400);
  // What HQ will check: the terminal's signature under HQ's certificate of its key.
  auto v = codes::VerifyEnrolClaim(claim, HqKeys(), committed_s);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->terminal_id, "T01");
  EXPECT_EQ(v->checkout_id, "anon-1");
  EXPECT_EQ(v->committed_at_ms / 1000, committed_s);
  EXPECT_EQ(v->expires_at_s, expires);
  // Asked again: the same claim (Ed25519 signs deterministically).
  EXPECT_EQ(a.Get("/v1/checkouts/anon-1/enrolment").body["claim"], claim);

  auto png = a.Get("/v1/checkouts/anon-1/enrolment.png");
  ASSERT_EQ(png.status, 200) << png.raw.substr(0, 200);
  EXPECT_EQ(png.content_type, "image/png");
  auto gray = qr::testing::LoadGray(png.raw);
  ASSERT_TRUE(gray);
  EXPECT_EQ(gray->w % 3, 0) << "qr_module_pixels = 3";
  auto read = qr::testing::ReadQr(*gray);
  ASSERT_TRUE(read) << "ZXing found no QR code in the PNG";
  EXPECT_EQ(read->text, url);
  EXPECT_EQ(read->ec_level, "M");

  auto svg = a.Get("/v1/checkouts/anon-1/enrolment.svg");
  ASSERT_EQ(svg.status, 200) << svg.raw.substr(0, 200);
  EXPECT_EQ(svg.content_type, "image/svg+xml");
  EXPECT_EQ(svg.raw.rfind("<svg ", 0), 0u);
  auto svg_read = qr::testing::ReadSvgQr(svg.raw);
  ASSERT_TRUE(svg_read) << "ZXing found no QR code in the SVG's modules";
  EXPECT_EQ(svg_read->text, url);
  EXPECT_EQ(Counts(a), before) << "nothing is written";
  const std::string log = a.ReadLog();
  EXPECT_NE(log.find("\"event\":\"enrolment_offered\""), std::string::npos) << log;
}

TEST_F(AgentEnrolmentTest, RefusalsHaveTheContractsCodes) {
  auto& a = Start(Enabled() + "qr_error_correction = \"H\"\n");
  a.Start();
  Commit(a, "anon-2");
  // No receipt key yet (the first sync certifies one): 503, ask again after a sync.
  auto early = a.Get("/v1/checkouts/anon-2/enrolment.png");
  EXPECT_EQ(early.status, 503) << early.raw;
  EXPECT_EQ(early.content_type, "application/json");
  EXPECT_EQ(early.body["error"]["code"], "unavailable") << early.raw;
  ASSERT_EQ(a.Stop(), 0);
  Certify(a, static_cast<uint32_t>(::time(nullptr) + 90 * 86400));
  a.Start();
  Commit(a, "with-member", /*member=*/true);
  Commit(a, "voided");
  auto voided = a.Post(
      "/v1/refunds", json{{"refund_id", "void-1"}, {"checkout_id", "voided"}, {"reason", "void"}});
  ASSERT_EQ(voided.status, 200) << voided.raw;
  const auto before = Counts(a);
  for (const auto& [target, status, code] : std::vector<std::tuple<std::string, int, std::string>>{
           {"/v1/checkouts/with-member/enrolment", 422, "checkout_has_member"},
           {"/v1/checkouts/with-member/enrolment.svg", 422, "checkout_has_member"},
           {"/v1/checkouts/voided/enrolment.png", 422, "checkout_refunded"},
           {"/v1/checkouts/no-such/enrolment", 404, "checkout_unknown"},
           {"/v1/checkouts/no-such/enrolment.png", 404, "checkout_unknown"},
           {"/v1/checkouts/bad%21id/enrolment", 400, "bad_request"},
           {"/v1/checkouts/" + std::string(65, 'x') + "/enrolment", 400, "bad_request"},
           {"/v1/checkouts/anon-2/enrolment.gif", 404, "not_found"},
           {"/v1/checkouts/anon-2/enrolment/x", 404, "not_found"}}) {
    auto r = a.Get(target);
    EXPECT_EQ(r.status, status) << target << ": " << r.raw;
    EXPECT_EQ(r.body["error"]["code"], code) << target << ": " << r.raw;
  }
  auto post = a.Call("POST", "/v1/checkouts/anon-2/enrolment", "{}");
  EXPECT_EQ(post.status, 404) << post.raw;
  auto no_token = a.Call("GET", "/v1/checkouts/anon-2/enrolment", "", /*auth=*/false);
  EXPECT_EQ(no_token.status, 401) << no_token.raw;
  // Error correction H, as configured.
  auto png = a.Get("/v1/checkouts/anon-2/enrolment.png");
  ASSERT_EQ(png.status, 200) << png.raw.substr(0, 200);
  auto read = qr::testing::ReadQr(*qr::testing::LoadGray(png.raw));
  ASSERT_TRUE(read);
  EXPECT_EQ(read->ec_level, "H");
  EXPECT_EQ(Counts(a), before);
}

TEST_F(AgentEnrolmentTest, OffUnlessALinkIsConfigured) {
  auto& a = Start("");
  Certify(a, static_cast<uint32_t>(::time(nullptr) + 90 * 86400));
  a.Start();
  Commit(a, "anon-3");
  for (const char* suffix : {"", ".png", ".svg"}) {
    auto r = a.Get(std::string("/v1/checkouts/anon-3/enrolment") + suffix);
    EXPECT_EQ(r.status, 404) << r.raw;
    EXPECT_EQ(r.body["error"]["code"], "not_found") << r.raw;
  }
}

TEST_F(AgentEnrolmentTest, ASaleOlderThanTheRefundWindowCanNoLongerBeClaimed) {
  auto& a = Start(Enabled());
  Certify(a, static_cast<uint32_t>(::time(nullptr) + 90 * 86400));
  a.Start();
  Commit(a, "old");
  Commit(a, "edge");
  ASSERT_EQ(a.Stop(), 0);
  // Moved back in time in the ledger file: "old" 7 days and 10 minutes ago, "edge" 7 days
  // less 10 minutes ago (the daemon reads the system clock).
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(a.db_path().c_str(), &db), SQLITE_OK);
    const int64_t now_ms = static_cast<int64_t>(::time(nullptr)) * 1000;
    const std::string sql = "UPDATE checkouts SET committed_at_ms = " +
                            std::to_string(now_ms - 7 * 86'400'000 - 600'000) +
                            " WHERE checkout_id = 'old'; UPDATE checkouts SET committed_at_ms = " +
                            std::to_string(now_ms - 7 * 86'400'000 + 600'000) +
                            " WHERE checkout_id = 'edge';";
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  a.Start();
  auto old = a.Get("/v1/checkouts/old/enrolment");
  EXPECT_EQ(old.status, 422) << old.raw;
  EXPECT_EQ(old.body["error"]["code"], "code_expired") << old.raw;
  auto edge = a.Get("/v1/checkouts/edge/enrolment");
  EXPECT_EQ(edge.status, 200) << edge.raw;
}

}  // namespace
}  // namespace loyalty::testing
