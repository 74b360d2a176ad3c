// TimeZone: the store's local time, for rules that speak in calendar terms (expiry at the
// end of a month, the birthday month) while everything stored is unix seconds UTC.
//
// Load() reads a compiled tz database file (TZif, RFC 8536) from /usr/share/zoneinfo, or
// from $TZDIR when that is set. The 64-bit section of TZif v2+ files is used (v1 files fall
// back to their 32-bit section); times after the last transition follow the file's POSIX TZ
// footer, fixed offsets ("<+08>-8") and DST rules ("EST5EDT,M3.2.0,M11.1.0", "Jn", "n",
// "/time" including negative and >24 h times) alike. Leap-second records are ignored: unix
// time has none.
//
// Also accepted without any file: "UTC" and fixed offsets "+HH:MM" / "-HH:MM" (up to ±18:00).
//
// A TimeZone is immutable after construction: every const method is thread-safe, and
// copies are independent. Offsets are whole seconds east of UTC. Methods are defined for
// unix seconds within ±10^12 (about ±31,000 years).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loyalty/base/status.h"
#include "loyalty/base/time.h"

namespace loyalty {

class TimeZone {
 public:
  // `name` is an IANA zone name ("Asia/Shanghai"), "UTC", or a fixed offset ("+08:00").
  // Names are restricted to [A-Za-z0-9_+-./] with no empty, "." or ".." component and no
  // leading '/', so a name never reads outside the zoneinfo directory. Errors (code
  // "timezone_invalid") say what is wrong with the name or the file.
  static Result<TimeZone> Load(std::string_view name);

  // Parses TZif bytes (the content of a zoneinfo file); `name` is only recorded. Input is
  // untrusted: every count, index and offset is checked. Error code "timezone_invalid".
  static Result<TimeZone> FromTzif(std::string_view name, std::string_view data);

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
  struct LocalType {
    int32_t utc_offset;
    bool is_dst;
  };
  // The POSIX TZ rule used after the last transition (RFC 8536 §3.3).
  struct Rule {
    enum class Kind { kJulianNoLeap, kZeroBasedDay, kMonthWeekDay };
    Kind kind;
    int day = 0;  // Jn: 1..365; n: 0..365; M: weekday 0..6 (Sunday = 0)
    int month = 0, week = 0;  // M only: 1..12, 1..5 (5 = last)
    int32_t time = 7200;  // local seconds after midnight, -167 h .. 167 h
  };
  struct PosixTz {
    int32_t std_offset;  // seconds east of UTC
    bool has_dst = false;
    int32_t dst_offset = 0;
    Rule start, end;
  };

  TimeZone() = default;
  static std::optional<PosixTz> ParsePosixTz(std::string_view s);
  static LocalType PosixTypeAt(const PosixTz& tz, int64_t unix_s);
  LocalType TypeAt(int64_t unix_s) const;

  std::string name_;
  std::vector<int64_t> transitions_;     // ascending unix seconds
  std::vector<uint8_t> transition_type_;  // index into types_, one per transition
  std::vector<LocalType> types_;          // at least one; types_[0] before the first transition
  std::optional<PosixTz> footer_;
};

}  // namespace loyalty
