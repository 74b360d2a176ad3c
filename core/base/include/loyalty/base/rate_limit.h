// A sliding-hour limit on something a caller may do (a till's phone look-ups, a terminal's
// sale or phone look-ups at HQ). Header-only; not thread-safe: the caller holds its lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

namespace loyalty {

// True, and now_ms recorded, when fewer than `per_hour` of `times` (oldest first, ms on any
// one clock) fall in the hour before now_ms; false (nothing recorded) otherwise.
inline bool TakeHourlySlot(std::deque<int64_t>& times, size_t per_hour, int64_t now_ms) {
  while (!times.empty() && times.front() <= now_ms - 3'600'000) times.pop_front();
  if (times.size() >= per_hour) return false;
  times.push_back(now_ms);
  return true;
}

}  // namespace loyalty
