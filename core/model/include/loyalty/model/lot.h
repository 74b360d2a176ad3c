// A member's points lots: what was earned when, what remains, when it expires. A lot with a
// negative remainder is the member's debt (points clawed back after they were spent).
#pragma once

#include <cstdint>
#include <string>

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

}  // namespace loyalty::model
