// Phone look-up with consent, end to end (docs/pos-api.md, "Phone look-up"): real loyalty-hq
// and loyaltyd processes over mutual TLS. A consenting member of the store is found by
// number offline (HQ stopped), one of another store online through HQ; a member without
// consent, an unknown number and a number two members share find nobody; the member found
// earns but cannot redeem without a code; the till's limit answers 429; and no file the
// scenario leaves — the terminal's ledger and log, HQ's database and log — holds the number.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "e2e_fixture.h"
#include "support/hq_store.h"

namespace loyalty::e2e {
namespace {

// Every number of the scenario, as typed and stored.
const char* kConsenting = "13912340001";  // S001, consented
const char* kRefusing = "13912340002";    // S001, no consent
const char* kAway = "13912340003";        // S002, consented: found online
const char* kShared = "13912340009";      // two consenting members of S001
const char* kNobody = "13912340077";

class E2ePhoneTest : public E2eFixture {
 protected:
  E2ePhoneTest() : E2eFixture({"T01"}) {}

  std::string Enrol(const std::string& phone, const std::string& store, bool consent) {
    auto r = hq_->Admin("POST", "/v1/members",
                        json{{"name", "周九"},
                             {"phone", phone},
                             {"store_id", store},
                             {"phone_lookup_consent", consent}});
    EXPECT_EQ(r.status, 201) << r.raw;
    return r.body.value("member_id", "");
  }
  static Reply Lookup(TerminalProcess& t, const std::string& typed) {
    return t.Call("POST", "/v1/members/lookup", json{{"phone", typed}});
  }
  // Every byte of the files under `dir` (recursively).
  static std::string FilesUnder(const std::filesystem::path& dir) {
    std::string all;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path(), std::ios::binary);
      all.append(std::istreambuf_iterator<char>(in), {});
    }
    return all;
  }
};

TEST_F(E2ePhoneTest, FoundWithConsentOnlyAndTheNumberIsKeptNowhere) {
  StartHq();
  const std::string here = Enrol(kConsenting, "S001", true);
  Enrol(kRefusing, "S001", false);
  const std::string away = Enrol(kAway, "S002", true);
  Enrol(kShared, "S001", true);
  Enrol(kShared, "S001", true);
  TerminalOptions o = Options("T01", hq_->port());
  o.api_toml = "phone_lookups_per_hour = 8\n";
  auto& t = AddTerminal(std::move(o));
  ExpectOk(t.Sync());

  // The store's consenting member, from the ledger, in any written form of the number.
  auto found = Lookup(t, "+86 139-1234-0001");
  ASSERT_EQ(found.status, 200) << found.raw;
  EXPECT_EQ(found.body["identification"]["kind"], "phone");
  EXPECT_EQ(found.body["member"]["member_id"], here);
  EXPECT_EQ(found.body["member"]["phone"], "139****0001");
  // No consent, nobody, two members: the same answer.
  for (const char* n : {kRefusing, kNobody, kShared}) {
    auto r = Lookup(t, n);
    EXPECT_EQ(r.status, 404) << n << " " << r.raw;
    EXPECT_EQ(r.body["error"]["code"], "member_unknown") << n;
  }
  // Another store's consenting member: asked of HQ, and held here from now on.
  auto online = Lookup(t, kAway);
  ASSERT_EQ(online.status, 200) << online.raw;
  EXPECT_EQ(online.body["member"]["member_id"], away);
  EXPECT_EQ(Lookup(t, "139 1234 0003").status, 200);
  // Malformed input changes nothing and names the field.
  auto bad = Lookup(t, "call 13912340001");
  EXPECT_EQ(bad.status, 400) << bad.raw;
  EXPECT_EQ(t.Call("POST", "/v1/members/lookup", json{{"phone", kConsenting}, {"x", 1}}).status,
            400);

  // The identification earns at a commit; redeeming needs a scanned code.
  const std::string ident = found.body["identification"]["id"];
  auto commit = t.Call(
      "POST", "/v1/checkouts/commit",
      json{{"checkout_id", "c-phone"}, {"identification_id", ident}, {"lines", Basket(10000)}});
  ASSERT_EQ(commit.status, 200) << commit.raw;
  EXPECT_GT(commit.body.value("points_to_earn", 0), 0) << commit.raw;
  auto redeem = t.Call("POST", "/v1/checkouts/quote",
                       json{{"checkout_id", "c-redeem"},
                            {"identification_id", ident},
                            {"redeem_points", 1},
                            {"lines", Basket(10000)}});
  EXPECT_EQ(redeem.status, 422) << redeem.raw;
  EXPECT_EQ(redeem.body["error"]["code"], "static_code_cannot_redeem");

  // Offline: HQ gone, the store's member is still found; an unheld number finds nobody.
  ExpectOk(t.Sync());
  EXPECT_EQ(hq_->Stop(), 0);
  auto offline = Lookup(t, kConsenting);
  ASSERT_EQ(offline.status, 200) << offline.raw;
  EXPECT_EQ(offline.body["member"]["member_id"], here);
  EXPECT_EQ(Lookup(t, kNobody).status, 404);

  // Eight look-ups in the hour (made above; the malformed ones are not counted); the ninth
  // is refused, found or not.
  auto limited = Lookup(t, kConsenting);
  EXPECT_EQ(limited.status, 429) << limited.raw;
  EXPECT_EQ(limited.body["error"]["code"], "rate_limited");
  const std::string log = t.ReadLog();
  EXPECT_NE(log.find("\"phone_lookup_limited\""), std::string::npos);
  // At its catalogue's level (operations.md): a warning, as someone may be trying numbers.
  EXPECT_NE(log.find("\"event\":\"phone_lookup_limited\",\"level\":\"warn\""), std::string::npos)
      << log;
  EXPECT_NE(log.find("\"phone_lookup\""), std::string::npos);
  EXPECT_EQ(t.StopWithin(10000), 0);

  // No number in clear, in any form, in anything the scenario wrote.
  const std::string terminal_files = FilesUnder(std::filesystem::path(t.db_path()).parent_path());
  auto hq_db = testing::RawTestHqStoreBytes(hq_->dir());
  ASSERT_TRUE(hq_db.ok()) << hq_db.status().ToString();
  const std::string hq_files = FilesUnder(hq_->dir()) + *hq_db;
  ASSERT_GT(terminal_files.size(), 0u);
  for (const char* n : {kConsenting, kRefusing, kAway, kShared, kNobody}) {
    const std::string digits(n), dashed = digits.substr(0, 3) + "-" + digits.substr(3, 4);
    EXPECT_EQ(terminal_files.find(digits), std::string::npos) << n;
    EXPECT_EQ(terminal_files.find(dashed), std::string::npos) << n;
    EXPECT_EQ(hq_files.find(digits), std::string::npos) << n;
  }
  EXPECT_NE(terminal_files.find("139****0001"), std::string::npos);  // the masked form is kept
}

}  // namespace
}  // namespace loyalty::e2e
