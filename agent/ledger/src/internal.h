// What the ledger's source files share: the statement macros and the row readers. Not
// part of the ledger's interface.
#pragma once

#include "loyalty/ledger/ledger.h"
#include "loyalty/model/entry_columns.h"
#include "loyalty/sqlite/sqlite.h"

namespace loyalty::ledger {
using sqlite::Db;
using sqlite::IsCorruption;
using sqlite::SqliteError;
using sqlite::Stmt;

namespace internal {

#define LEDGER_PREPARE(var, sql)              \
  auto var##_r = db_->Prepare(sql);           \
  if (!var##_r.ok()) return var##_r.status(); \
  Stmt& var = **var##_r

// A read's end: a step that failed is the read's error, never "nothing found" (pos-api.md:
// a ledger read that fails is an error, never an answer).
#define LEDGER_CHECK_STEP(st) \
  if (!(st).status().ok()) return (st).status()

// The shared entry columns (loyalty/model/entry_columns.h), then the ledger's acked flag.
inline EntryRow ReadEntry(const Stmt& s) {
  return EntryRow{model::ReadEntryColumns(s), s.Int(model::kEntryColumnCount) != 0};
}
#define LEDGER_ENTRY_COLS LOYALTY_ENTRY_COLUMNS ", acked"

inline MemberRow ReadMember(const Stmt& s) {
  MemberRow m;
  m.member_id = static_cast<uint64_t>(s.Int(0));
  m.display_name = s.OptText(1);
  m.phone = s.OptText(2);
  m.phone_hash = s.Text(3);
  m.tier = s.Text(4);
  m.status = s.Text(5);
  m.frozen_reason = s.Text(6);
  m.birthday_month = static_cast<int>(s.Int(7));
  m.snapshot_at_s = s.OptInt(8);
  m.snapshot_balance = s.Int(9);
  m.month_spend_cents = s.Int(10);
  m.unfrozen_at_ms = s.Int(11);
  m.balance = s.Int(12);
  m.phone_key_id = s.Int(13);
  return m;
}

inline model::Checkout ReadCheckout(const Stmt& s) {
  model::Checkout c;
  c.checkout_id = s.Text(0);
  c.request_hash = s.Text(1);
  if (!s.IsNull(2)) c.member_id = static_cast<uint64_t>(s.Int(2));
  c.rules_version = s.Text(3);
  c.committed_at_ms = s.Int(4);
  c.subtotal_cents = s.Int(5);
  c.total_due_cents = s.Int(6);
  c.points_earned = s.Int(7);
  c.redeemed_points = s.Int(8);
  c.eligible_cents = s.Int(9);
  c.redeemable_cents = s.Int(10);
  c.code_hash = s.Text(11);
  c.tender = s.Text(12);
  c.coupon_id = s.Text(13);
  c.request_json = s.Text(14);
  c.response_json = s.Text(15);
  c.cashier_id = s.Text(17);
  return c;
}

// Written by InsertCheckout or migration 4 only: lines that do not decode are a damaged
// row, an error rather than a checkout without lines (a refund would refuse every line).
inline Status ReadCheckoutLines(const Stmt& s, model::Checkout& c) {
  auto lines = model::DecodeCheckoutLines(s.Text(16));
  if (!lines.ok())
    return Status::Error(ErrorCode::kLedgerDamaged,
                         "checkout " + c.checkout_id + ": " + lines.status().message());
  c.lines = std::move(*lines);
  return Status::Ok();
}
#define LEDGER_CHECKOUT_COLS                                                               \
  "checkout_id, request_hash, member_id, rules_version, committed_at_ms, subtotal_cents, " \
  "total_due_cents, "                                                                      \
  "points_earned, redeemed_points, eligible_cents, redeemable_cents, code_hash, tender, "  \
  "coupon_id, request_json, "                                                              \
  "response_json, lines_json, cashier_id"

}  // namespace internal
}  // namespace loyalty::ledger
