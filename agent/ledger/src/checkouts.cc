// Checkouts and refunds.
#include "internal.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "loyalty/base/encoding.h"
#include "loyalty/base/json.h"
#include "loyalty/base/json_writer.h"
#include "loyalty/recon/recon.h"
#include "loyalty/recon/sqlite_store.h"

namespace loyalty::ledger {
using namespace internal;

Result<std::optional<model::Checkout>> Ledger::GetCheckout(const std::string& checkout_id,
                                                           bool with_lines) {
  LEDGER_PREPARE(st, "SELECT " LEDGER_CHECKOUT_COLS " FROM checkouts WHERE checkout_id = ?");
  st.Bind(1, checkout_id);
  if (!st.Step()) {
    LEDGER_CHECK_STEP(st);
    return std::optional<model::Checkout>();
  }
  model::Checkout c = ReadCheckout(st);
  if (with_lines) {
    if (Status s = ReadCheckoutLines(st, c); !s.ok()) return s;
  }
  return std::optional<model::Checkout>(std::move(c));
}

Status Ledger::InsertCheckout(const model::Checkout& c) {
  LEDGER_PREPARE(st, "INSERT INTO checkouts (" LEDGER_CHECKOUT_COLS
                     ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  st.Bind(1, c.checkout_id).Bind(2, c.request_hash).Bind(3, c.member_id).Bind(4, c.rules_version);
  st.Bind(5, c.committed_at_ms)
      .Bind(6, c.subtotal_cents)
      .Bind(7, c.total_due_cents)
      .Bind(8, c.points_earned);
  st.Bind(9, c.redeemed_points)
      .Bind(10, c.eligible_cents)
      .Bind(11, c.redeemable_cents)
      .Bind(12, c.code_hash);
  st.Bind(13, c.tender).Bind(14, c.coupon_id).Bind(15, c.request_json).Bind(16, c.response_json);
  st.Bind(17, model::EncodeCheckoutLines(c.lines)).Bind(18, c.cashier_id);
  return st.Run();
}

Result<std::vector<model::Checkout>> Ledger::CheckoutsSince(int64_t since_ms, int limit) {
  std::vector<model::Checkout> out;
  LEDGER_PREPARE(
      st,
      "SELECT " LEDGER_CHECKOUT_COLS
      " FROM checkouts WHERE committed_at_ms >= ? ORDER BY committed_at_ms, checkout_id LIMIT ?");
  st.Bind(1, since_ms).Bind(2, limit);
  while (st.Step()) out.push_back(ReadCheckout(st));
  LEDGER_CHECK_STEP(st);
  return out;
}

Result<std::map<int64_t, int64_t>> Ledger::CheckoutsPerHour(int64_t since_ms) {
  std::map<int64_t, int64_t> out;
  LEDGER_PREPARE(
      st,
      "SELECT committed_at_ms / 3600000, count(*) FROM checkouts WHERE committed_at_ms >= ? "
      "GROUP BY committed_at_ms / 3600000");
  st.Bind(1, since_ms);
  while (st.Step()) out[st.Int(0)] = st.Int(1);
  LEDGER_CHECK_STEP(st);
  return out;
}

Result<int64_t> Ledger::LocalSpendSince(uint64_t member_id, int64_t since_ms) {
  // Each checkout with a member has one earn entry, written at the commit's time: the
  // member's earn entries lead to the checkouts (by primary key) and their refunds, without
  // an index of checkouts by member. Only entries HQ has not acknowledged count: HQ's month
  // spend holds the others (a clock, the terminal's or HQ's, cannot tell which those are).
  return SelectInt(
      "SELECT coalesce(sum(c.total_due_cents), 0) - coalesce(sum((SELECT sum(r.refund_cents) FROM "
      "refunds r "
      "WHERE r.checkout_id = c.checkout_id AND r.sold_at = '')), 0) FROM entries e JOIN checkouts "
      "c ON "
      "c.checkout_id = e.checkout_id WHERE e.member_id = ?1 AND e.kind = 'earn' AND e.at_ms >= ?2 "
      "AND e.acked = 0 AND c.member_id = ?1",
      [&](Stmt& st) { st.Bind(1, member_id).Bind(2, since_ms); });
}

Result<std::optional<model::Refund>> Ledger::GetRefund(const std::string& refund_id) {
  std::optional<model::Refund> r;
  {
    LEDGER_PREPARE(
        st,
        "SELECT refund_id, checkout_id, request_hash, reason, at_ms, refund_cents, "
        "points_clawed_back, "
        "points_restored, response_json, sold_at, receipt, cashier_id FROM refunds WHERE "
        "refund_id = ?");
    st.Bind(1, refund_id);
    if (!st.Step()) {
      LEDGER_CHECK_STEP(st);
      return r;
    }
    r.emplace();
    r->refund_id = st.Text(0);
    r->checkout_id = st.Text(1);
    r->request_hash = st.Text(2);
    r->reason = st.Text(3);
    r->at_ms = st.Int(4);
    r->refund_cents = st.Int(5);
    r->points_clawed_back = st.Int(6);
    r->points_restored = st.Int(7);
    r->response_json = st.Text(8);
    r->sold_at = st.Text(9);
    r->receipt = st.Text(10);
    r->cashier_id = st.Text(11);
  }
  LEDGER_PREPARE(ls, "SELECT line, qty FROM refund_lines WHERE refund_id = ? ORDER BY line");
  ls.Bind(1, refund_id);
  while (ls.Step()) r->lines.push_back({ls.Int(0), ls.Int(1)});
  LEDGER_CHECK_STEP(ls);
  return r;
}

Result<std::vector<std::string>> Ledger::SelectIds(const char* sql,
                                                   const std::function<void(Stmt&)>& bind) {
  std::vector<std::string> ids;
  LEDGER_PREPARE(st, sql);
  bind(st);
  while (st.Step()) ids.push_back(st.Text(0));
  LEDGER_CHECK_STEP(st);
  return ids;
}

Result<std::vector<model::Refund>> Ledger::RefundsSelected(const char* sql,
                                                           const std::function<void(Stmt&)>& bind) {
  auto ids = SelectIds(sql, bind);
  if (!ids.ok()) return ids.status();
  std::vector<model::Refund> out;
  for (const auto& id : *ids) {
    auto r = GetRefund(id);
    if (!r.ok()) return r.status();
    if (*r) out.push_back(std::move(**r));
  }
  return out;
}

Result<std::vector<model::Refund>> Ledger::RefundsSince(int64_t since_ms) {
  // Refunds are a small share of checkouts: a scan, no index written by every refund.
  return RefundsSelected("SELECT refund_id FROM refunds WHERE at_ms >= ? ORDER BY at_ms, refund_id",
                         [since_ms](Stmt& st) { st.Bind(1, since_ms); });
}

Result<std::vector<model::Refund>> Ledger::RefundsForCheckout(const std::string& checkout_id) {
  return RefundsForSale("", checkout_id);
}

Result<std::vector<model::Refund>> Ledger::RefundsForSale(const std::string& sold_at,
                                                          const std::string& checkout_id) {
  return RefundsSelected(
      "SELECT refund_id FROM refunds WHERE checkout_id = ? AND sold_at = ? ORDER BY at_ms, "
      "refund_id",
      [&](Stmt& st) { st.Bind(1, checkout_id).Bind(2, sold_at); });
}

Status Ledger::InsertRefund(const model::Refund& r) {
  {
    LEDGER_PREPARE(
        st,
        "INSERT INTO refunds (refund_id, checkout_id, request_hash, reason, at_ms, refund_cents, "
        "points_clawed_back, points_restored, response_json, sold_at, receipt, cashier_id) VALUES "
        "(?,?,?,?,?,?,?,?,?,?,?,?)");
    st.Bind(1, r.refund_id)
        .Bind(2, r.checkout_id)
        .Bind(3, r.request_hash)
        .Bind(4, r.reason)
        .Bind(5, r.at_ms);
    st.Bind(6, r.refund_cents)
        .Bind(7, r.points_clawed_back)
        .Bind(8, r.points_restored)
        .Bind(9, r.response_json);
    st.Bind(10, r.sold_at).Bind(11, r.receipt).Bind(12, r.cashier_id);
    if (Status s = st.Run(); !s.ok()) return s;
  }
  LEDGER_PREPARE(ls, "INSERT INTO refund_lines (refund_id, line, qty) VALUES (?,?,?)");
  for (const auto& [line, qty] : r.lines) {
    ls.Bind(1, r.refund_id).Bind(2, line).Bind(3, qty);
    if (Status s = ls.Run(); !s.ok()) return s;
    ls.Reset();
  }
  return Status::Ok();
}

}  // namespace loyalty::ledger
