// Fail closed (pos-api.md: "a ledger read that fails is an error, never an answer"): each
// security-relevant read of identify, quote, commit and refund made to fail through the
// ledger's step fault seam (ledger/sqlite.h, StepFault), on a real SQLite file. Each
// request must be refused with 503 — never answered as if the row were absent — and a
// refused commit or refund writes nothing. A corruption error latches the ledger damaged:
// 503 ledger_damaged from then on.
#include <gtest/gtest.h>

#include "checkout_test_util.h"
#include "loyalty/base/hash.h"
#include "loyalty/checkout/service.h"
#include "loyalty/sqlite/sqlite.h"

namespace loyalty::checkout {
namespace {

using nlohmann::json;

// The statements under test, by a fragment of their SQL (ledger.cc).
constexpr char kRevocationRead[] = "FROM revoked_devices";
constexpr char kBindingRead[] = "FROM code_bindings";
constexpr char kVelocityRead[] = "kind = 'earn' AND at_ms > ?";
constexpr char kLotsRead[] = "FROM lots WHERE member_id = ? AND remaining";
constexpr char kRedeemTimeRead[] = "kind = 'redeem'";
constexpr char kMemberRead[] = "FROM members WHERE member_id = ?";
constexpr char kIdentityRead[] = "FROM identities";
constexpr char kCouponRead[] = "FROM coupons";
constexpr char kCheckoutRead[] = "FROM checkouts WHERE checkout_id = ?";
constexpr char kRefundRead[] = "FROM refunds WHERE refund_id = ?";
constexpr char kPriorRefundsRead[] = "FROM refunds WHERE checkout_id = ?";

json Basket() {
  return json::array(
      {{{"sku", "A"}, {"qty", 2}, {"unit_price_cents", 1990}, {"category", "grocery"}},
       {{"sku", "B"}, {"qty", 1}, {"unit_price_cents", 12900}, {"category", "beauty"}}});
}

class FailClosedTest : public CheckoutFixture {
 protected:
  void SetUp() override {
    sqlite::ClearStepFaults();
    CheckoutFixture::SetUp();
    Seed(5000);
  }
  void TearDown() override {
    sqlite::ClearStepFaults();
    CheckoutFixture::TearDown();
  }

  // The member with `points`, a WeChat channel number and a coupon of their own.
  void Seed(int64_t points) {
    SeedMember("member", points);
    ASSERT_TRUE(ledger_->Begin().ok());
    ASSERT_TRUE(ledger_->PutIdentity("wechat", "100000000042", kMember).ok());
    ledger::CouponRow c;
    c.coupon_id = "TEN";
    c.member_id = kMember;
    c.kind = "amount_off";
    c.value_cents = 1000;
    ASSERT_TRUE(ledger_->PutCoupon(c).ok());
    ASSERT_TRUE(ledger_->Commit().ok());
  }

  // Fails every step of the statements whose SQL contains `sql` from now on.
  static void Fail(const char* sql, int rc = SQLITE_IOERR) {
    sqlite::InjectStepFault({sql, 1, -1, rc});
  }

  json CommitBody(const std::string& id, const std::string& code, json extra = json::object()) {
    json body{{"checkout_id", id}, {"member_code", code}, {"lines", Basket()}};
    for (auto it = extra.begin(); it != extra.end(); ++it) body[it.key()] = it.value();
    return body;
  }
  Answer Commit(const std::string& id, json extra = json::object()) {
    return Parsed(service_->Commit(*ledger_, CommitBody(id, Code(), std::move(extra))));
  }
  Answer Refund(const std::string& refund_id, const std::string& checkout_id) {
    return Parsed(service_->Refund(
        *ledger_, {{"refund_id", refund_id}, {"checkout_id", checkout_id}, {"reason", "void"}}));
  }

  // What a refused write must leave unchanged.
  struct State {
    int64_t entries, balance;
    bool operator==(const State&) const = default;
  };
  State Now() {
    return {ledger_->EntryCount().value(), ledger_->GetMember(kMember).value()->balance};
  }

  static void ExpectRefused(const Answer& r, const char* code = "unavailable") {
    EXPECT_EQ(r.status, 503) << r.Text();
    EXPECT_EQ(r.Json()["error"]["code"], code) << r.Text();
  }
};

// Phone look-up: a failed read of the look-up index refuses (503), never "nobody has that
// number" and never a question to HQ instead; the same number is found once the read works.
TEST_F(FailClosedTest, APhoneLookUpWhoseIndexReadFailsIsRefused) {
  const std::string key(32, '\x21');
  ASSERT_TRUE(ledger_->Begin().ok());
  auto m = ledger_->GetMember(kMember).value().value();
  m.phone_hash = KeyedHashHex(key, "13812345678");
  m.phone_key_id = 4;
  ASSERT_TRUE(ledger_->UpsertMember(m).ok());
  ASSERT_TRUE(ledger_->Commit().ok());
  service_->SetPhoneKeys({{4, key}});
  bool asked_hq = false;
  service_->SetPhoneFetcher([&asked_hq](const std::string&) -> std::optional<uint64_t> {
    asked_hq = true;
    return std::nullopt;
  });
  Fail("FROM members WHERE phone_hash = ?");
  ExpectRefused(Parsed(service_->LookupPhone(*ledger_, "13812345678")));
  EXPECT_FALSE(asked_hq);
  sqlite::ClearStepFaults();
  auto found = Parsed(service_->LookupPhone(*ledger_, "13812345678"));
  EXPECT_EQ(found.status, 200) << found.Text();
  EXPECT_EQ(found.Json()["member"]["member_id"], std::to_string(kMember));
}

TEST_F(FailClosedTest, TheSeamFailsTheNthMatchingStepOnly) {
  sqlite::InjectStepFault({kMemberRead, 2, 1, SQLITE_IOERR});
  EXPECT_TRUE(ledger_->GetMember(kMember).ok());
  auto second = ledger_->GetMember(kMember);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(ledger_->GetMember(kMember).ok());
  EXPECT_EQ(sqlite::StepFaultsFired(), 1);
  EXPECT_FALSE(ledger_->damaged());
}

TEST_F(FailClosedTest, IdentifyOfARevokedDeviceWhoseRevocationReadFailsIsRefused) {
  ASSERT_TRUE(ledger_->PutRevocation(codes::Ed25519PublicFromSeed(dev_seed_)).ok());
  EXPECT_EQ(Parsed(service_->Identify(*ledger_, Code())).body["error"]["code"], "code_revoked");
  Fail(kRevocationRead);
  ExpectRefused(Parsed(service_->Identify(*ledger_, Code())));
  // The same read in a commit.
  State before = Now();
  ExpectRefused(Commit("c1"));
  EXPECT_EQ(Now(), before);
}

// An identification made before its device key was revoked is judged again at quote and
// commit: code_revoked once the revocation is held, 503 while it cannot be read; nothing
// is written either way.
TEST_F(FailClosedTest, AnIdentificationOfADeviceRevokedSinceIsRefused) {
  auto id = Parsed(service_->Identify(*ledger_, Code()));
  ASSERT_EQ(id.status, 200) << id.Text();
  const std::string ident = id.Json()["identification"]["id"];
  json body{{"checkout_id", "c-ident"}, {"identification_id", ident}, {"lines", Basket()}};
  ASSERT_EQ(Parsed(service_->Quote(*ledger_, body)).status, 200);
  ASSERT_TRUE(ledger_->PutRevocation(codes::Ed25519PublicFromSeed(dev_seed_)).ok());
  State before = Now();
  for (auto r :
       {Parsed(service_->Quote(*ledger_, body)), Parsed(service_->Commit(*ledger_, body))}) {
    EXPECT_EQ(r.status, 422) << r.Text();
    EXPECT_EQ(r.Json()["error"]["code"], "code_revoked") << r.Text();
  }
  Fail(kRevocationRead);
  ExpectRefused(Parsed(service_->Commit(*ledger_, body)));
  EXPECT_EQ(Now(), before);
}

TEST_F(FailClosedTest, ReplayCheckThatCannotReadIsRefused) {
  std::string code = Code();
  ASSERT_EQ(Parsed(service_->Commit(*ledger_, CommitBody("c1", code))).status, 200);
  Fail(kBindingRead);
  ExpectRefused(Parsed(service_->Identify(*ledger_, code)));
  State before = Now();
  ExpectRefused(Parsed(service_->Commit(*ledger_, CommitBody("c2", code))));
  ExpectRefused(Parsed(service_->Quote(*ledger_, CommitBody("q1", code))));
  EXPECT_EQ(Now(), before);
  sqlite::ClearStepFaults();
  EXPECT_EQ(Parsed(service_->Commit(*ledger_, CommitBody("c2", code))).body["error"]["code"],
            "code_replayed");
}

TEST_F(FailClosedTest, VelocityReadFailingOnCommitRefusesItAndWritesNothing) {
  State before = Now();
  Fail(kVelocityRead);
  ExpectRefused(Commit("c1"));
  EXPECT_EQ(Now(), before);
  EXPECT_FALSE(ledger_->GetCheckout("c1").value());
}

TEST_F(FailClosedTest, BalanceReadFailingOnARedeemRefusesIt) {
  State before = Now();
  Fail(kLotsRead);
  ExpectRefused(Commit("c1", {{"redeem_points", 1000}}));
  ExpectRefused(
      Parsed(service_->Quote(*ledger_, CommitBody("q1", Code(), {{"redeem_points", 1000}}))));
  EXPECT_EQ(Now(), before);
  sqlite::ClearStepFaults();
  Fail(kRedeemTimeRead);  // the cooldown's read
  ExpectRefused(Commit("c1", {{"redeem_points", 1000}}));
  EXPECT_EQ(Now(), before);
  sqlite::ClearStepFaults();
  auto ok = Commit("c1", {{"redeem_points", 1000}});
  EXPECT_EQ(ok.status, 200) << ok.Text();
}

TEST_F(FailClosedTest, MemberReadFailingIsRefusedNotMemberUnknown) {
  Fail(kMemberRead);
  ExpectRefused(Parsed(service_->Identify(*ledger_, "100000000042")));  // a channel card
  ExpectRefused(Parsed(service_->Identify(*ledger_, Code())));          // a dynamic code
  ExpectRefused(Parsed(service_->GetMember(*ledger_, std::to_string(kMember))));
  sqlite::ClearStepFaults();
  Fail(kIdentityRead);
  ExpectRefused(Parsed(service_->Identify(*ledger_, "100000000042")));
}

TEST_F(FailClosedTest, CouponReadFailingIsRefusedNotCouponInvalid) {
  State before = Now();
  Fail(kCouponRead);
  ExpectRefused(Commit("c1", {{"coupon_id", "TEN"}}));
  ExpectRefused(
      Parsed(service_->Quote(*ledger_, CommitBody("q1", Code(), {{"coupon_id", "TEN"}}))));
  EXPECT_EQ(Now(), before);
}

TEST_F(FailClosedTest, CommitIdempotencyReadFailingIsRefused) {
  std::string code = Code();
  auto first = Parsed(service_->Commit(*ledger_, CommitBody("c1", code)));
  ASSERT_EQ(first.status, 200);
  State before = Now();
  Fail(kCheckoutRead);
  // The replay's stored response cannot be read: refused, not answered with the error of a
  // new commit.
  ExpectRefused(Parsed(service_->Commit(*ledger_, CommitBody("c1", code))));
  EXPECT_EQ(Now(), before);
}

TEST_F(FailClosedTest, RefundReadsFailingRefuseTheRefundAndWriteNothing) {
  ASSERT_EQ(Commit("c1").status, 200);
  auto first = Refund("r1", "c1");
  ASSERT_EQ(first.status, 200) << first.Text();
  State before = Now();
  // The idempotency look-up: read as "not refunded yet" it would refund the sale twice.
  Fail(kRefundRead);
  ExpectRefused(Refund("r1", "c1"));
  EXPECT_EQ(Now(), before);
  sqlite::ClearStepFaults();
  ASSERT_EQ(Commit("c2").status, 200);
  before = Now();
  for (const char* read : {kCheckoutRead, kPriorRefundsRead, kMemberRead, kLotsRead}) {
    SCOPED_TRACE(read);
    sqlite::ClearStepFaults();
    Fail(read);
    ExpectRefused(Refund("r2", "c2"));
    EXPECT_EQ(ledger_->EntryCount().value(), before.entries);  // Now() reads the member too
  }
  sqlite::ClearStepFaults();
  EXPECT_EQ(Now(), before);
  EXPECT_EQ(Refund("r2", "c2").status, 200);
}

TEST_F(FailClosedTest, ACorruptionErrorLatchesTheLedgerDamaged) {
  ASSERT_EQ(Commit("c1").status, 200);
  Fail(kMemberRead, SQLITE_CORRUPT);
  std::string reason;
  int called = 0;
  ledger_->OnDamaged([&](const std::string& why) {
    ++called;
    reason = why;
  });
  ExpectRefused(Parsed(service_->Identify(*ledger_, Code())), "ledger_damaged");
  EXPECT_TRUE(ledger_->damaged());
  EXPECT_EQ(called, 1);
  EXPECT_NE(reason.find("injected"), std::string::npos) << reason;
  sqlite::ClearStepFaults();
  // From then on every commit and refund is refused, whatever it reads; said once.
  State before = Now();
  ExpectRefused(Commit("c2"), "ledger_damaged");
  ExpectRefused(Refund("r1", "c1"), "ledger_damaged");
  ExpectRefused(Parsed(service_->Quote(*ledger_, CommitBody("q1", Code()))), "ledger_damaged");
  EXPECT_EQ(Now(), before);
  EXPECT_EQ(called, 1);
  // Another connection to the same file sees the latch.
  auto reader =
      ledger::Ledger::Open((dir_ / "l.db").string(), ledger::Ledger::Mode::kReader, "T01");
  ASSERT_TRUE(reader.ok());
  EXPECT_TRUE((*reader)->damaged());
  EXPECT_FALSE((*reader)->Verify().ok());
}

}  // namespace
}  // namespace loyalty::checkout
