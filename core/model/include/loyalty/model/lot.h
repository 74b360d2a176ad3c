// A member's points lots: what was earned when, what remains, when it expires. A lot with a
// negative remainder is the member's debt (points clawed back after they were spent).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

// A lot's columns in both ends' stores, in the order ReadLotColumns reads and
// BindLotColumns binds them.
#define LOYALTY_LOT_COLUMNS \
  "lot_id, member_id, points, remaining, earned_at_s, expires_at_s, entry_id"

namespace loyalty::model {

inline constexpr int64_t kNeverExpires = INT64_MAX;

struct Lot {
  int64_t lot_id = 0;
  uint64_t member_id = 0;
  int64_t points = 0;     // as created; a debt lot's is its first shortfall, negative
  int64_t remaining = 0;  // negative only for the debt lot
  int64_t earned_at_s = 0;
  int64_t expires_at_s = 0;  // kNeverExpires for the debt lot
  std::string entry_id;      // the entry that created it
  bool operator==(const Lot&) const = default;
};

inline constexpr int kLotColumnCount = 7;

// The lot in columns [0, kLotColumnCount) of a row selected as LOYALTY_LOT_COLUMNS; a
// template over the row (loyalty::sqlite::Stmt) so that the model needs no SQLite.
template <class Row>
Lot ReadLotColumns(const Row& row) {
  return Lot{
      row.Int(0), static_cast<uint64_t>(row.Int(1)), row.Int(2), row.Int(3), row.Int(4), row.Int(5),
      row.Text(6)};
}

// Binds the lot to parameters 1..kLotColumnCount with `lot_id` in place of the lot's own
// (std::nullopt binds NULL: the store assigns one).
template <class Stmt>
void BindLotColumns(Stmt& st, const Lot& lot, std::optional<int64_t> lot_id) {
  st.Bind(1, lot_id).Bind(2, lot.member_id).Bind(3, lot.points).Bind(4, lot.remaining);
  st.Bind(5, lot.earned_at_s).Bind(6, lot.expires_at_s).Bind(7, lot.entry_id);
}

}  // namespace loyalty::model
