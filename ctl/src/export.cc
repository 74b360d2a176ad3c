#include "loyalty/ctl/export.h"

#include <set>

#include "loyalty/ctl/format.h"

namespace loyalty::ctl {

ExportRecord EntryRecord(const ledger::EntryRow& e) {
  ExportRecord r;
  r.record = "entry";
  r.at_ms = e.at_ms;
  r.checkout_id = e.checkout_id;
  r.refund_id = e.refund_id;
  r.entry_id = e.entry_id;
  r.seq = e.seq;
  r.member_id = e.member_id;
  r.kind = e.kind;
  r.points = e.points;
  return r;
}

namespace {

std::string Opt(const std::optional<int64_t>& v) { return v ? std::to_string(*v) : std::string(); }

// A refund and the units it took back from each line.
void AppendRefund(std::vector<ExportRecord>& out, const model::Checkout& c,
                  const model::Refund& rf) {
  ExportRecord r;
  r.record = "refund";
  r.at_ms = rf.at_ms;
  r.checkout_id = rf.checkout_id;
  r.refund_id = rf.refund_id;
  if (c.member_id) r.member_id = *c.member_id;
  r.refund_cents = rf.refund_cents;
  r.reason = rf.reason;
  r.cashier_id = rf.cashier_id;
  r.sold_at = rf.sold_at;
  out.push_back(r);
  for (const auto& [line, qty] : rf.lines) {
    ExportRecord rl;
    rl.record = "refund_line";
    rl.at_ms = rf.at_ms;
    rl.checkout_id = rf.checkout_id;
    rl.refund_id = rf.refund_id;
    rl.line = line;
    rl.qty = qty;
    // The sku and category of the refunded line, so a spreadsheet needs no look-up.
    for (const auto& cl : c.lines) {
      if (cl.line != line) continue;
      rl.sku = cl.sku;
      rl.category = cl.category;
      rl.unit_price_cents = cl.unit_price_cents;
    }
    out.push_back(rl);
  }
}

}  // namespace

std::vector<ExportRecord> RecordsForCheckout(const model::Checkout& c,
                                             const std::vector<ledger::EntryRow>& entries,
                                             const std::vector<model::Refund>& refunds) {
  std::vector<ExportRecord> out;
  std::set<size_t> emitted;
  auto add_entries = [&](const std::string& refund_id) {
    for (size_t i = 0; i < entries.size(); ++i) {
      if (entries[i].refund_id != refund_id || emitted.count(i)) continue;
      emitted.insert(i);
      out.push_back(EntryRecord(entries[i]));
    }
  };

  ExportRecord head;
  head.record = "checkout";
  head.at_ms = c.committed_at_ms;
  head.checkout_id = c.checkout_id;
  if (c.member_id) head.member_id = *c.member_id;
  head.subtotal_cents = c.subtotal_cents;
  head.total_due_cents = c.total_due_cents;
  head.points_earned = c.points_earned;
  head.redeemed_points = c.redeemed_points;
  head.tender = c.tender;
  head.rules_version = c.rules_version;
  head.cashier_id = c.cashier_id;
  out.push_back(head);
  for (const auto& l : c.lines) {
    ExportRecord r;
    r.record = "line";
    r.at_ms = c.committed_at_ms;
    r.checkout_id = c.checkout_id;
    r.line = l.line;
    r.sku = l.sku;
    r.category = l.category;
    r.qty = l.qty;
    r.unit_price_cents = l.unit_price_cents;
    r.net_cents = l.net_cents;
    out.push_back(r);
  }
  add_entries("");

  for (const auto& rf : refunds) {
    AppendRefund(out, c, rf);
    if (!rf.refund_id.empty()) add_entries(rf.refund_id);
  }

  for (size_t i = 0; i < entries.size(); ++i)
    if (!emitted.count(i)) out.push_back(EntryRecord(entries[i]));
  return out;
}

std::vector<ExportRecord> RecordsForRefund(const model::Checkout& checkout,
                                           const model::Refund& refund,
                                           const std::vector<ledger::EntryRow>& entries) {
  std::vector<ExportRecord> out;
  AppendRefund(out, checkout, refund);
  for (const auto& e : entries) out.push_back(EntryRecord(e));
  return out;
}

std::string ExportCsvHeader() {
  return CsvRow(std::vector<std::string>(kExportColumns.begin(), kExportColumns.end()));
}

std::string ExportCsvRow(const ExportRecord& r) {
  return CsvRow({r.record,
                 FormatTimeMs(r.at_ms),
                 r.checkout_id,
                 r.refund_id,
                 r.entry_id,
                 Opt(r.seq),
                 r.member_id ? std::to_string(*r.member_id) : std::string(),
                 r.kind,
                 Opt(r.points),
                 Opt(r.line),
                 r.sku,
                 r.category,
                 Opt(r.qty),
                 Opt(r.unit_price_cents),
                 Opt(r.net_cents),
                 Opt(r.subtotal_cents),
                 Opt(r.total_due_cents),
                 Opt(r.refund_cents),
                 Opt(r.points_earned),
                 Opt(r.redeemed_points),
                 r.tender,
                 r.reason,
                 r.rules_version,
                 r.cashier_id,
                 r.sold_at});
}

nlohmann::ordered_json ExportJson(const ExportRecord& r) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  auto str = [&](const char* k, const std::string& v) {
    if (!v.empty()) j[k] = v;
  };
  auto num = [&](const char* k, const std::optional<int64_t>& v) {
    if (v) j[k] = *v;
  };
  j["record"] = r.record;
  j["at"] = FormatTimeMs(r.at_ms);
  str("checkout_id", r.checkout_id);
  str("refund_id", r.refund_id);
  str("entry_id", r.entry_id);
  num("seq", r.seq);
  if (r.member_id) j["member_id"] = std::to_string(*r.member_id);
  str("kind", r.kind);
  num("points", r.points);
  num("line", r.line);
  // A line's sku and category are kept even when empty: they belong to the record.
  if (r.record == "line" || r.record == "refund_line") {
    j["sku"] = r.sku;
    j["category"] = r.category;
  }
  num("qty", r.qty);
  num("unit_price_cents", r.unit_price_cents);
  num("net_cents", r.net_cents);
  num("subtotal_cents", r.subtotal_cents);
  num("total_due_cents", r.total_due_cents);
  num("refund_cents", r.refund_cents);
  num("points_earned", r.points_earned);
  num("redeemed_points", r.redeemed_points);
  str("tender", r.tender);
  str("reason", r.reason);
  str("rules_version", r.rules_version);
  str("cashier_id", r.cashier_id);
  str("sold_at", r.sold_at);
  return j;
}

}  // namespace loyalty::ctl
