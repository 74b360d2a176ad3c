#include "loyalty/base/time.h"

#include <algorithm>

#include <cstdio>

namespace loyalty {

// Howard Hinnant's days_from_civil / civil_from_days (public domain algorithms).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

static void CivilFromDays(int64_t z, int64_t& y, int& m, int& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  y += m <= 2;
}

CivilTime CivilFromUnix(int64_t unix_s) {
  int64_t days = unix_s >= 0 ? unix_s / 86400 : -((-unix_s + 86399) / 86400);
  int64_t secs = unix_s - days * 86400;
  CivilTime t{};
  CivilFromDays(days, t.year, t.month, t.day);
  t.hour = static_cast<int>(secs / 3600);
  t.minute = static_cast<int>((secs % 3600) / 60);
  t.second = static_cast<int>(secs % 60);
  return t;
}

int64_t UnixFromCivil(const CivilTime& t) {
  return DaysFromCivil(t.year, static_cast<unsigned>(t.month), static_cast<unsigned>(t.day)) *
             86400 +
         t.hour * 3600 + t.minute * 60 + t.second;
}

std::string_view FormatRfc3339(int64_t unix_s, Rfc3339Buffer& buf) {
  CivilTime t = CivilFromUnix(unix_s);
  if (t.year >= 0 && t.year <= 9999) {
    // Written digit by digit: snprintf's format parsing was the larger part of the cost
    // of a checkout response's timestamps.
    char* out = buf.data();
    auto two = [&out](int pos, int v) {
      out[pos] = static_cast<char>('0' + v / 10);
      out[pos + 1] = static_cast<char>('0' + v % 10);
    };
    int y = static_cast<int>(t.year);
    two(0, y / 100);
    two(2, y % 100);
    out[4] = '-';
    two(5, t.month);
    out[7] = '-';
    two(8, t.day);
    out[10] = 'T';
    two(11, t.hour);
    out[13] = ':';
    two(14, t.minute);
    out[16] = ':';
    two(17, t.second);
    out[19] = 'Z';
    return std::string_view(out, 20);
  }
  int n = std::snprintf(buf.data(), buf.size(), "%04lld-%02d-%02dT%02d:%02d:%02dZ",
                        static_cast<long long>(t.year), t.month, t.day, t.hour, t.minute, t.second);
  return std::string_view(buf.data(), n > 0 ? std::min(static_cast<size_t>(n), buf.size() - 1) : 0);
}

std::string FormatRfc3339(int64_t unix_s) {
  Rfc3339Buffer buf;
  return std::string(FormatRfc3339(unix_s, buf));
}

std::optional<int64_t> ParseRfc3339(std::string_view s) {
  auto digits = [&](size_t pos, size_t n, int& out) -> bool {
    if (pos + n > s.size()) return false;
    int v = 0;
    for (size_t i = 0; i < n; ++i) {
      char c = s[pos + i];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    out = v;
    return true;
  };
  int y, mo, d, h, mi, se;
  if (!digits(0, 4, y) || s.size() < 20 || s[4] != '-' || !digits(5, 2, mo) || s[7] != '-' ||
      !digits(8, 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(11, 2, h) ||
      s[13] != ':' || !digits(14, 2, mi) || s[16] != ':' || !digits(17, 2, se))
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return std::nullopt;
  static const int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (d > kDays[mo - 1] || (mo == 2 && d == 29 && !leap)) return std::nullopt;
  size_t pos = 19;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    size_t start = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
    if (pos == start) return std::nullopt;
  }
  if (pos >= s.size()) return std::nullopt;
  int64_t offset = 0;
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    int oh, om;
    if (!digits(pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(pos + 4, 2, om) || oh > 23 || om > 59)
      return std::nullopt;
    offset = (oh * 3600 + om * 60) * (s[pos] == '+' ? 1 : -1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  CivilTime t{y, mo, d, h, mi, se > 59 ? 59 : se};
  return UnixFromCivil(t) - offset;
}

}  // namespace loyalty
