// A compromised terminal (hq-and-sync.md, "What HQ trusts"): a real loyalty-hq over mutual
// TLS, honest loyaltyd terminals, a till whose rules were tampered with, and a client that
// holds a genuine terminal certificate and speaks the upload message with made-up entries.
// Not one forgery changes a balance at HQ, honest runs stay ok, and the tampered till is
// corrected by its next run.
#include <gtest/gtest.h>

#include <limits>
#include <set>

#include "../hq/hq_test_util.h"
#include "e2e_fixture.h"

namespace loyalty::e2e {
namespace {

using hq::testing::FakeTerminal;
using hq::testing::PricedSale;
using hq::testing::Sale;

// The chain's rules: the defaults under a version of the chain's own.
constexpr const char* kChainRules = "version = \"chain-1\"\n";
// What a rooted till did to its copy: the same version, twenty points a yuan (kept under
// the velocity limit, so that the till itself freezes nobody).
constexpr const char* kRootedRules = "version = \"chain-1\"\nearn_points_per_yuan = 20\n";

class E2eTrustTest : public E2eFixture {
 protected:
  E2eTrustTest() : E2eFixture({"T01", "T02", "T03", "T09"}) {}

  void SetUp() override {
    E2eFixture::SetUp();
    StartHq(/*tls=*/true, kChainRules);
  }
  // A terminal of store S001; `rules`, when not empty, its local rules file.
  TerminalProcess& AddTerminal(const std::string& id, const std::string& rules = "") {
    TerminalOptions o = Options(id, hq_->port());
    o.store_id = "S001";
    o.rules_toml = rules;
    return E2eFixture::AddTerminal(std::move(o));
  }
  // The forger: T09's genuine certificate, anything in the body.
  Reply Forge(const sync::UploadRequest& up) {
    return hq_->AsTerminal("POST", "/v1/sync/T09/entries", sync::SerializeMessage(up),
                           pki_->client("T09"), pki_->ca_file());
  }
  int64_t HqBalance(const std::string& id) {
    return hq_->Admin("GET", "/v1/members/" + id).body["balance"];
  }
};

TEST_F(E2eTrustTest, ACompromisedTerminalChangesNoBalanceAndStopsNoOne) {
  Member a = Enrol(*hq_, 1), b = Enrol(*hq_, 2);
  uint64_t ma = std::stoull(a.id), mb = std::stoull(b.id);
  auto& t1 = AddTerminal("T01");
  auto& t2 = AddTerminal("T02");
  auto& t3 = AddTerminal("T03", kRootedRules);  // never synced yet: prices with its tampered file
  ExpectOk(t1.Sync());
  ExpectOk(t2.Sync());

  // An honest 100-yuan sale at T01: 100 points.
  auto honest = t1.Call(
      "POST", "/v1/checkouts/commit",
      json{{"checkout_id", "t1-1"}, {"member_code", a.card_number}, {"lines", Basket(10000)}});
  ASSERT_EQ(honest.status, 200) << honest.raw;
  ASSERT_EQ(honest.body["points_to_earn"], 100);
  ExpectOk(t1.Sync());
  ASSERT_EQ(HqBalance(a.id), 100);

  // The tampered till: the same basket earns 2,000 there.
  auto rooted = t3.Call(
      "POST", "/v1/checkouts/commit",
      json{{"checkout_id", "t3-1"}, {"member_code", DynamicCode(a)}, {"lines", Basket(10000)}});
  ASSERT_EQ(rooted.status, 200) << rooted.raw;
  ASSERT_EQ(rooted.body["points_to_earn"], 2000);

  // The forger's uploads: HQ kinds, points without a sale HQ can price, a long freeze reason.
  FakeTerminal f{"T09"}, scratch{"T09"};
  int64_t now_ms = static_cast<int64_t>(::time(nullptr)) * 1000;
  Sale overpriced = PricedSale(scratch, ma, "f-1", hq::testing::Basket(10000), now_ms);
  overpriced.checkout.rules_version = "chain-1";
  overpriced.checkout.points_earned = 1'000'000;
  sync::UploadRequest up;
  up.entries = {
      f.Make("adjust", ma, 1'000'000'000'000'000, now_ms, "", R"({"reason":"gift"})"),
      f.Make("unfreeze", ma, 0, now_ms),
      f.Make("tier_change", ma, 0, now_ms, "", R"({"to":"black"})"),
      f.Make("earn", ma, 1'000'000, now_ms, "f-1"),
      f.Make("freeze", mb, 0, now_ms, "", json{{"reason", std::string(300, 'x')}}.dump())};
  up.checkouts = {overpriced.checkout};
  auto r = Forge(up);
  ASSERT_EQ(r.status, 200) << r.raw;
  std::vector<std::string> statuses;
  for (const auto& x : r.body["results"]) statuses.push_back(x["status"]);
  // The freeze of b too: nothing of T09's explains it (hq-and-sync.md: one terminal never
  // harms another).
  EXPECT_EQ(statuses,
            (std::vector<std::string>{"refused", "refused", "refused", "refused", "refused"}));
  // Values past the limits table cannot even be said: the whole message is refused.
  sync::UploadRequest overflow;
  overflow.entries = {f.Make("earn", ma, std::numeric_limits<int64_t>::max(), now_ms, "f-1"),
                      f.Make("earn", ma, std::numeric_limits<int64_t>::max(), now_ms, "f-1")};
  EXPECT_EQ(Forge(overflow).status, 400);
  sync::UploadRequest refund;
  refund.refunds = {{"f-r1",
                     "f-1",
                     "",
                     "return",
                     now_ms,
                     std::numeric_limits<int64_t>::max(),
                     0,
                     0,
                     "{}",
                     {{0, 1}}}};
  EXPECT_EQ(Forge(refund).status, 400);

  // Not one point moved; the refusals are on record; HQ still answers everything.
  EXPECT_EQ(HqBalance(a.id), 100);
  EXPECT_EQ(HqBalance(a.id), HqEntrySum(*hq_, a.id));
  auto view = hq_->Admin("GET", "/v1/members/" + a.id);
  ASSERT_EQ(view.status, 200) << view.raw;
  EXPECT_EQ(view.body["tier"], "member");
  EXPECT_EQ(view.body["status"], "active");
  std::set<std::string> reasons;
  for (const auto& c : view.body["conflicts"]) {
    if (c["kind"] == "entry_refused") reasons.insert(c["detail"]["reason"].get<std::string>());
  }
  EXPECT_TRUE(reasons.count("kind_not_allowed")) << view.raw;
  EXPECT_TRUE(reasons.count("checkout_refused")) << view.raw;
  auto bview = hq_->Admin("GET", "/v1/members/" + b.id);
  ASSERT_EQ(bview.status, 200) << bview.raw;
  EXPECT_EQ(bview.body["status"], "active");
  bool unexplained = false;
  for (const auto& c : bview.body["conflicts"])
    unexplained |= c["kind"] == "entry_refused" && c["detail"]["reason"] == "freeze_unexplained";
  EXPECT_TRUE(unexplained) << bview.raw;
  auto forger = hq_->Admin("GET", "/v1/terminals/T09");
  EXPECT_EQ(forger.body["chain_ok"], true) << forger.raw;  // refused entries stay in the chain

  // Honest terminals keep syncing, and b is not frozen by the forged freeze.
  ExpectOk(t2.Sync());
  ExpectOk(t1.Sync());
  auto mbv = t2.Call("GET", "/v1/members/" + b.id);
  ASSERT_EQ(mbv.status, 200) << mbv.raw;
  EXPECT_EQ(mbv.body["status"], "active");

  // The tampered till's next run: its earn is refused, its balance corrected to HQ's, and
  // it prices with the chain's rules from then on.
  ExpectOk(t3.Sync());
  EXPECT_EQ(HqBalance(a.id), 100);
  EXPECT_EQ(t3.MemberBalance(a.id), 100);
  auto q = t3.Call(
      "POST", "/v1/checkouts/quote",
      json{{"checkout_id", "t3-2"}, {"member_code", a.card_number}, {"lines", Basket(10000)}});
  ASSERT_EQ(q.status, 200) << q.raw;
  EXPECT_EQ(q.body["points_to_earn"], 100);
  EXPECT_EQ(q.body["rules_version"], "chain-1");
  for (auto* t : {&t1, &t2, &t3}) {
    auto tv = hq_->Admin("GET", std::string("/v1/terminals/") + (t == &t1   ? "T01"
                                                                 : t == &t2 ? "T02"
                                                                            : "T03"));
    EXPECT_EQ(tv.body["entries"].get<int64_t>(), t->LedgerEntries()) << tv.raw;
    EXPECT_TRUE(tv.body["chain_ok"].get<bool>()) << tv.raw;
    EXPECT_EQ(t->MemberBalance(a.id), HqBalance(a.id));
  }
}

}  // namespace
}  // namespace loyalty::e2e
