// Shared by the checkout tests: the checkout use cases with an injected clock over a real
// SQLite ledger in a temporary folder, trusting the test vectors' HQ key, and dynamic codes
// minted for one member with the vectors' device key.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "loyalty/base/encoding.h"
#include "loyalty/checkout/service.h"
#include "loyalty/checkout/views.h"
#include "loyalty/codes/mint.h"
#include "loyalty/http/errors.h"
#include "loyalty/ledger/ledger.h"
#include "support/files.h"

namespace loyalty::checkout {

inline constexpr char kHqSeedHex[] =
    "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";
inline constexpr char kDeviceSeedHex[] =
    "65666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f8081828384";
inline constexpr uint64_t kMember = 1234567890123;
// 2026-11-18T11:07:10Z = 19:07:10 in Shanghai.
inline constexpr int64_t kT0 = 1795000030;

class CheckoutFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    auto l = ledger::Ledger::Open((dir_ / "l.db").string(), ledger::Ledger::Mode::kWriter, "T01");
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    ledger_ = std::move(*l);
    clock_.set_now_s(kT0);
    codes::CodesConfig cc;
    hq_seed_ = *HexDecode(kHqSeedHex);
    dev_seed_ = *HexDecode(kDeviceSeedHex);
    cc.hq_public_keys[1] = codes::Ed25519PublicFromSeed(hq_seed_);
    cc.channels.push_back({"wechat", "^[0-9]{12}$"});
    auto v = codes::CodeVerifier::Create(cc);
    ASSERT_TRUE(v.ok());
    verifier_ = std::move(*v);
    auto tz = TimeZone::Load("Asia/Shanghai");
    ASSERT_TRUE(tz.ok());
    rules_ = std::make_shared<rules::Rules>(rules::Rules::Defaults());
    service_ = std::make_unique<CheckoutService>(ServiceOptions{"T01", "S001"}, clock_, *verifier_,
                                                 trusted_, *tz, rules_);
  }
  void TearDown() override { ledger_.reset(); }

  // A code the phone has not shown before: the newest code_time not used yet.
  std::string Code() {
    std::string cert = codes::MakeCertificate(hq_seed_, 1, kMember,
                                              codes::Ed25519PublicFromSeed(dev_seed_), 1893456000);
    int64_t t = clock_.now_s();
    while (used_code_times_.count(t)) --t;
    used_code_times_.insert(t);
    return codes::MakeDynamicCode(cert, dev_seed_, static_cast<uint32_t>(t));
  }

  // kMember as HQ's snapshot left it now: this tier and birthday month, and `points` in one
  // lot valid 400 days.
  void SeedMember(const std::string& tier, int64_t points, int birthday_month = 0) {
    ASSERT_TRUE(ledger_->Begin().ok());
    ledger::MemberRow m;
    m.member_id = kMember;
    m.tier = tier;
    m.birthday_month = birthday_month;
    m.snapshot_at_s = clock_.now_s();
    m.balance = points;
    ASSERT_TRUE(ledger_->UpsertMember(m).ok());
    if (points) {
      model::Lot lot;
      lot.member_id = kMember;
      lot.points = lot.remaining = points;
      lot.earned_at_s = clock_.now_s();
      lot.expires_at_s = clock_.now_s() + 400 * 86400;
      ASSERT_TRUE(ledger_->AddLot(lot).ok());
    }
    ASSERT_TRUE(ledger_->Commit().ok());
  }

  // A use case's outcome as the POS API answers it (the view of checkout/views.h, or the
  // error with its status from loyalty/http/errors.h). The text is checked to be exactly
  // what dump() prints of its document (compact, keys in order), then parsed for the test
  // to look into.
  struct Answer {
    int status = 0;
    nlohmann::json body;
    std::string text;
    const std::string& Text() const { return text; }
    const nlohmann::json& Json() const { return body; }
  };
  template <typename T>
  static Answer Parsed(const Result<T>& r) {
    Answer a;
    if (r.ok()) {
      a.status = 200;
      a.text = std::string(ViewJson(*r));
    } else {
      http::Response e = http::ErrorResponse(r.status());
      a.status = e.status;
      a.text = e.body;
    }
    a.body = nlohmann::json::parse(a.text);
    EXPECT_EQ(a.text, a.body.dump());
    return a;
  }

  loyalty::testing::TempDir dir_{"checkout_test"};
  std::unique_ptr<ledger::Ledger> ledger_;
  FakeClock clock_;
  codes::TrustedTime trusted_{60};
  std::unique_ptr<codes::CodeVerifier> verifier_;
  std::shared_ptr<rules::Rules> rules_;
  std::unique_ptr<CheckoutService> service_;
  std::string hq_seed_, dev_seed_;
  std::set<int64_t> used_code_times_;
};

}  // namespace loyalty::checkout
