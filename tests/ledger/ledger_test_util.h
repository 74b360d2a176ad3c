// Shared by the ledger tests: a real ledger file in a temporary folder, and rows to put in it.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loyalty/base/ids.h"
#include "loyalty/ledger/ledger.h"
#include "loyalty/recon/recon.h"
#include "loyalty/sqlite/sqlite.h"
#include "support/files.h"

namespace loyalty::ledger {
// The ledger tests reach the SQLite layer below the ledger (faults, raw statements).
using sqlite::ClearStepFaults;
using sqlite::Db;
using sqlite::InjectStepFault;
using sqlite::StepFaultsFired;

class LedgerTest : public ::testing::Test {
 protected:
  void TearDown() override { ClearStepFaults(); }

  std::unique_ptr<Ledger> OpenWriter(const std::string& terminal = "T01") {
    return Open(Ledger::Mode::kWriter, terminal);
  }
  std::unique_ptr<Ledger> OpenReader(const std::string& terminal = "T01") {
    return Open(Ledger::Mode::kReader, terminal);
  }
  std::unique_ptr<Ledger> Open(Ledger::Mode mode, const std::string& terminal) {
    auto l = Ledger::Open(path_, mode, terminal);
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    return l.ok() ? std::move(*l) : nullptr;
  }

  // Appends one entry (in the caller's transaction, if one is open).
  static EntryRow Append(Ledger& l, const std::string& kind, uint64_t member, int64_t points,
                         int64_t at_ms, const std::string& checkout_id = "C1",
                         const std::string& refund_id = "", const std::string& detail = "") {
    EntryDraft d{NewEntryId(at_ms), kind, member, points, at_ms, checkout_id, refund_id, detail};
    auto e = l.AppendEntry(d);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.ok() ? *e : EntryRow{};
  }

  // Runs f between Begin and Commit.
  template <typename F>
  static void InTransaction(Ledger& l, F f) {
    ASSERT_TRUE(l.Begin().ok());
    f();
    ASSERT_TRUE(l.Commit().ok());
  }

  loyalty::testing::TempDir dir_{"ledger_test"};
  std::string path_ = (dir_ / "ledger.db").string();
};

// A member with every field set.
inline MemberRow FullMember(uint64_t id, int64_t balance) {
  MemberRow m;
  m.member_id = id;
  m.display_name = "张*";
  m.phone = "138****5678";
  m.phone_hash = "ab12";
  m.tier = "gold";
  m.status = "frozen";
  m.frozen_reason = "velocity";
  m.birthday_month = 11;
  m.snapshot_at_s = 1795000000;
  m.snapshot_balance = balance;
  m.month_spend_cents = 123456;
  m.unfrozen_at_ms = 1794000000000;
  m.balance = balance;
  return m;
}

inline model::Lot Lot(uint64_t member, int64_t points, int64_t expires_at_s,
                      const std::string& entry_id = "") {
  model::Lot l;
  l.member_id = member;
  l.points = l.remaining = points;
  l.earned_at_s = 1795000000;
  l.expires_at_s = expires_at_s;
  l.entry_id = entry_id;
  return l;
}

// A checkout with two lines; member nullopt for one without a member.
inline model::Checkout MakeCheckout(const std::string& id, std::optional<uint64_t> member,
                                    int64_t committed_at_ms, int64_t total_due_cents = 5000,
                                    const std::string& response_json = "{}") {
  model::Checkout c;
  c.checkout_id = id;
  c.request_hash = std::string(64, 'a');
  c.member_id = member;
  c.rules_version = "default";
  c.committed_at_ms = committed_at_ms;
  c.subtotal_cents = total_due_cents + 100;
  c.total_due_cents = total_due_cents;
  c.points_earned = total_due_cents / 100;
  c.redeemed_points = 3;
  c.eligible_cents = total_due_cents - 10;
  c.redeemable_cents = total_due_cents - 20;
  c.code_hash = member ? "code-" + id : "";
  c.tender = "wechat";
  c.coupon_id = "CP1";
  c.request_json = R"({"checkout_id":")" + id + R"("})";
  c.response_json = response_json;
  c.lines.push_back({0, "SKU-1", "grocery", 2, 1990, 10, 5, 3, 3962, 3965, true, true});
  c.lines.push_back({1, "烟", "tobacco", 1, 3500, 0, 0, 0, 3500, 3500, false, false});
  return c;
}

inline model::Refund MakeRefund(const std::string& id, const std::string& checkout_id,
                                int64_t at_ms, int64_t refund_cents = 1990,
                                const std::string& response_json = "{}") {
  model::Refund r;
  r.refund_id = id;
  r.checkout_id = checkout_id;
  r.request_hash = std::string(64, 'b');
  r.reason = "damaged";
  r.at_ms = at_ms;
  r.refund_cents = refund_cents;
  r.points_clawed_back = 19;
  r.points_restored = 2;
  r.lines = {{1, 1}, {0, 2}};
  r.response_json = response_json;
  return r;
}

inline void ExpectSameCheckout(const model::Checkout& a, const model::Checkout& b,
                               bool with_lines = true) {
  EXPECT_EQ(a.checkout_id, b.checkout_id);
  EXPECT_EQ(a.request_hash, b.request_hash);
  EXPECT_EQ(a.member_id, b.member_id);
  EXPECT_EQ(a.rules_version, b.rules_version);
  EXPECT_EQ(a.committed_at_ms, b.committed_at_ms);
  EXPECT_EQ(a.subtotal_cents, b.subtotal_cents);
  EXPECT_EQ(a.total_due_cents, b.total_due_cents);
  EXPECT_EQ(a.points_earned, b.points_earned);
  EXPECT_EQ(a.redeemed_points, b.redeemed_points);
  EXPECT_EQ(a.eligible_cents, b.eligible_cents);
  EXPECT_EQ(a.redeemable_cents, b.redeemable_cents);
  EXPECT_EQ(a.code_hash, b.code_hash);
  EXPECT_EQ(a.tender, b.tender);
  EXPECT_EQ(a.coupon_id, b.coupon_id);
  EXPECT_EQ(a.request_json, b.request_json);
  EXPECT_EQ(a.response_json, b.response_json);
  if (!with_lines) return;
  ASSERT_EQ(a.lines.size(), b.lines.size());
  for (size_t i = 0; i < a.lines.size(); ++i) {
    EXPECT_EQ(a.lines[i].line, b.lines[i].line);
    EXPECT_EQ(a.lines[i].sku, b.lines[i].sku);
    EXPECT_EQ(a.lines[i].net_cents, b.lines[i].net_cents);
    EXPECT_EQ(a.lines[i].points_eligible, b.lines[i].points_eligible);
  }
}

inline void ExpectSameRefund(const model::Refund& a, const model::Refund& b) {
  EXPECT_EQ(a.refund_id, b.refund_id);
  EXPECT_EQ(a.checkout_id, b.checkout_id);
  EXPECT_EQ(a.request_hash, b.request_hash);
  EXPECT_EQ(a.reason, b.reason);
  EXPECT_EQ(a.at_ms, b.at_ms);
  EXPECT_EQ(a.refund_cents, b.refund_cents);
  EXPECT_EQ(a.points_clawed_back, b.points_clawed_back);
  EXPECT_EQ(a.points_restored, b.points_restored);
  EXPECT_EQ(a.response_json, b.response_json);
  auto sorted = a.lines;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, b.lines);  // read back in line order
}

// The ids of rows, in the order given.
template <typename Rows, typename Id>
std::vector<std::string> Ids(const Rows& rows, Id id) {
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r.*id);
  return out;
}

// Whether a reconciliation set holds exactly this item (same id and hash).
inline bool SetHolds(const recon::FingerprintStore& set, const recon::Item& item) {
  auto want = recon::MakeElement(item);
  if (!want.ok()) return false;
  std::vector<recon::Element> page;
  bool more = true;
  const recon::ElementId* after = nullptr;
  recon::ElementId last{};
  while (more) {
    if (!set.ListElements(after, 256, &page, &more).ok()) return false;
    for (const auto& e : page)
      if (e == *want) return true;
    if (page.empty()) break;
    last = page.back().id;
    after = &last;
  }
  return false;
}

}  // namespace loyalty::ledger
