// TimeZone: the store's local time, for rules that speak in calendar terms (expiry at the
// end of a month, the birthday month) while everything stored is unix seconds UTC.
//
// Load() reads the system's compiled tz database (/usr/share/zoneinfo, or $TZDIR when that
// is set) through the cctz library (Debian: libcctz-dev): the transitions of the zone file
// and, after the last one, its POSIX TZ footer, so DST rules hold for any year. Leap-second
// records are ignored: unix time has none. A zone is read once per process (the library
// keeps it): a tzdata update takes effect when the process restarts.
//
// Also accepted without any file: "UTC" and fixed offsets "+HH:MM" / "-HH:MM" (up to ±18:00).
//
// A TimeZone is immutable after construction: every const method is thread-safe, and
// copies are independent. Offsets are whole seconds east of UTC. Methods are defined for
// unix seconds within ±10^12 (about ±31,000 years).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "loyalty/base/status.h"
#include "loyalty/base/time.h"

namespace cctz {
class time_zone;
}

namespace loyalty {

class TimeZone {
 public:
  // `name` is an IANA zone name ("Asia/Shanghai"), "UTC", or a fixed offset ("+08:00").
  // Names are restricted to [A-Za-z0-9_+-./] with no empty, "." or ".." component and no
  // leading '/', so a name never reads outside the zoneinfo directory. Errors (code
  // "timezone_invalid") say what is wrong with the name or the file.
  static Result<TimeZone> Load(std::string_view name);

  static TimeZone Utc();
  // seconds east of UTC, |offset_s| ≤ 18 h.
  static Result<TimeZone> Fixed(int64_t offset_s);

  const std::string& name() const { return name_; }

  // Seconds east of UTC in effect at `unix_s` (+28800 for Asia/Shanghai today).
  int64_t UtcOffsetAt(int64_t unix_s) const;
  // Whether daylight saving time is in effect at `unix_s`.
  bool IsDstAt(int64_t unix_s) const;

  // Local wall-clock time at `unix_s`.
  CivilTime ToLocal(int64_t unix_s) const;

  // The unix time at which the local wall clock shows `local` (fields must be in range:
  // month 1..12, day valid for the month, hour 0..23, minute and second 0..59).
  // A time shown twice (the hour repeated when clocks go back) gives the first (earlier)
  // instant. A time never shown (the hour skipped when clocks go forward) is read with the
  // offset in effect before the jump, so 02:30 on a spring-forward night in New York
  // (-05:00) gives 07:30 UTC, which is 03:30 local.
  int64_t FromLocal(const CivilTime& local) const;

 private:
  TimeZone() = default;

  std::string name_;
  // Immutable once loaded, so copies share it.
  std::shared_ptr<const cctz::time_zone> zone_;
};

}  // namespace loyalty
