// Calendar arithmetic on unix seconds (proleptic Gregorian, UTC) and RFC 3339.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace loyalty {

struct CivilTime {
  int64_t year;
  int month;  // 1..12
  int day;    // 1..31
  int hour, minute, second;
};

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d);
CivilTime CivilFromUnix(int64_t unix_s);    // UTC
int64_t UnixFromCivil(const CivilTime& t);  // UTC

// "2026-11-22T06:12:26Z"
std::string FormatRfc3339(int64_t unix_s);
// The same into a buffer of the caller's, for hot paths that write many timestamps.
using Rfc3339Buffer = std::array<char, 48>;
std::string_view FormatRfc3339(int64_t unix_s, Rfc3339Buffer& buf);
// Accepts "YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)"; returns unix seconds.
std::optional<int64_t> ParseRfc3339(std::string_view s);

}  // namespace loyalty
