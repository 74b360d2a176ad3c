// The records `loyaltyctl export` writes, one per line: a committed checkout, each of its
// lines, each ledger entry, each refund and each refunded line. CSV and JSON carry the
// same records with the same column names.
//
// Plain values and pure functions; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loyalty/ledger/ledger.h"

namespace loyalty::ctl {

// The CSV header, in order. A column that does not apply to a record is empty (CSV) or
// absent (JSON).
inline constexpr std::array<std::string_view, 25> kExportColumns = {"record",
                                                                    "at",
                                                                    "checkout_id",
                                                                    "refund_id",
                                                                    "entry_id",
                                                                    "seq",
                                                                    "member_id",
                                                                    "kind",
                                                                    "points",
                                                                    "line",
                                                                    "sku",
                                                                    "category",
                                                                    "qty",
                                                                    "unit_price_cents",
                                                                    "net_cents",
                                                                    "subtotal_cents",
                                                                    "total_due_cents",
                                                                    "refund_cents",
                                                                    "points_earned",
                                                                    "redeemed_points",
                                                                    "tender",
                                                                    "reason",
                                                                    "rules_version",
                                                                    "cashier_id",
                                                                    "sold_at"};

struct ExportRecord {
  std::string record;  // checkout | line | refund | refund_line | entry
  int64_t at_ms = 0;  // commit time (checkout, line), refund time (refund, refund_line), entry time
  std::string checkout_id, refund_id, entry_id;
  std::optional<int64_t> seq;
  std::optional<uint64_t> member_id;
  std::string kind;  // entry kind
  std::optional<int64_t> points, line;
  std::string sku, category;
  std::optional<int64_t> qty, unit_price_cents, net_cents;
  std::optional<int64_t> subtotal_cents, total_due_cents, refund_cents, points_earned,
      redeemed_points;
  std::string tender, reason, rules_version;
  std::string cashier_id;  // checkout, refund: who did it ("" when the POS named none)
  std::string sold_at;     // refund of another terminal's sale: that terminal
};

// A checkout (with its lines loaded) as records, in this order: the checkout, its lines,
// the entries it wrote, then for each refund (in the order given) the refund, its lines and
// the entries it wrote. `entries` are the checkout's entries (any order; refund entries are
// matched by refund_id); an entry that matches neither the checkout nor a given refund comes
// last, so nothing given is dropped.
std::vector<ExportRecord> RecordsForCheckout(const model::Checkout& checkout,
                                             const std::vector<ledger::EntryRow>& entries,
                                             const std::vector<model::Refund>& refunds);
// One refund on its own (of a checkout exported earlier): the refund, its refunded lines
// (named from `checkout`'s lines) and `entries`, the entries it wrote, in their order.
std::vector<ExportRecord> RecordsForRefund(const model::Checkout& checkout,
                                           const model::Refund& refund,
                                           const std::vector<ledger::EntryRow>& entries);

// One ledger entry as its `entry` record (an entry of no checkout or refund: a correction).
ExportRecord EntryRecord(const ledger::EntryRow& e);

// The header row and one record, CSV (RFC 4180, CRLF).
std::string ExportCsvHeader();
std::string ExportCsvRow(const ExportRecord& r);
// One record as a JSON object: the columns that apply; member_id as a decimal string (as in
// the POS API), `at` as RFC 3339 UTC with milliseconds, counts and amounts as integers;
// keys in the order of kExportColumns.
nlohmann::ordered_json ExportJson(const ExportRecord& r);

}  // namespace loyalty::ctl
