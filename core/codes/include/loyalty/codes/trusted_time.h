// TrustedTime: the time code windows are judged by, robust to a terminal clock set wrong.
//
// At each successful sync the agent records HQ's time against its monotonic clock. From
// then on the trusted estimate is hq_time + (mono_now - mono_at_record). When the wall
// clock disagrees with that estimate by more than clock_skew_s, the wall clock is
// "untrusted" and NowS() returns the estimate instead. With no HQ time recorded yet, the
// wall clock is used and is considered trusted.
//
// The record lives in memory only: monotonic time has no meaning across a reboot, so
// after a restart the wall clock is trusted until the next sync records HQ time again.
//
// Thread-safe: every method may be called concurrently.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>

#include "loyalty/base/clock.h"

namespace loyalty::codes {

class TrustedTime {
 public:
  explicit TrustedTime(int64_t clock_skew_s = 60) : clock_skew_s_(clock_skew_s) {}

  // HQ's time (unix ms, from a successful sync) observed at local monotonic time
  // local_mono_ms (Clock::mono_ms()). Replaces any earlier record.
  void RecordHqTime(int64_t hq_now_ms, int64_t local_mono_ms);

  bool has_hq_time() const;

  // The trusted estimate of unix ms now, if an HQ time was recorded.
  std::optional<int64_t> EstimateMs(const Clock& clock) const;

  // Unix seconds to judge codes by: the wall clock, unless it is untrusted.
  int64_t NowS(const Clock& clock) const;

  // The wall clock disagrees with the trusted estimate by more than clock_skew_s.
  bool untrusted(const Clock& clock) const;

  // Transitions of untrusted(), for logging `clock_untrusted` exactly once per change.
  // Each call compares the current state with the state the previous call observed
  // (initially trusted) and reports the change; both functions share that observation.
  enum class Transition { kNone, kBecameUntrusted, kBecameTrusted };
  Transition TakeTransition(const Clock& clock);
  // True exactly when TakeTransition would report kBecameUntrusted.
  bool TakeUntrustedTransition(const Clock& clock) {
    return TakeTransition(clock) == Transition::kBecameUntrusted;
  }

 private:
  bool UntrustedLocked(const Clock& clock, int64_t* estimate_ms) const;

  const int64_t clock_skew_s_;
  mutable std::mutex mu_;
  bool has_record_ = false;          // guarded by mu_
  int64_t hq_ms_ = 0;                // guarded by mu_
  int64_t mono_ms_ = 0;              // guarded by mu_
  bool observed_untrusted_ = false;  // guarded by mu_
};

}  // namespace loyalty::codes
