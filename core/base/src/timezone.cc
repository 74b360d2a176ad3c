#include "loyalty/base/timezone.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <utility>

namespace loyalty {
namespace {

constexpr char kCode[] = "timezone_invalid";
// RFC 8536 §3.2 recommends offsets within -89999..93599; anything beyond a day is corrupt.
constexpr int64_t kMaxTzifOffset = 26 * 3600;
constexpr int64_t kMaxFixedOffset = 18 * 3600;
// Zoneinfo files are a few KiB; a cap keeps a hostile $TZDIR from feeding us gigabytes.
constexpr std::streamsize kMaxTzifBytes = 256 * 1024;
// The documented domain of the public methods (about ±31,000 years); clamping keeps the
// calendar arithmetic far away from int64 overflow for any input.
constexpr int64_t kMaxUnix = 1'000'000'000'000;

int64_t Clamp(int64_t t) { return std::clamp<int64_t>(t, -kMaxUnix, kMaxUnix); }

Status Invalid(std::string message) { return Status::Error(kCode, std::move(message)); }

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int64_t FloorMod(int64_t a, int64_t m) {
  int64_t r = a % m;
  return r < 0 ? r + m : r;
}

std::string FormatOffset(int64_t offset_s) {
  char buf[48];
  int64_t a = offset_s < 0 ? -offset_s : offset_s;
  std::snprintf(buf, sizeof buf, "%c%02lld:%02lld", offset_s < 0 ? '-' : '+', static_cast<long long>(a / 3600),
                static_cast<long long>(a % 3600 / 60));
  return buf;
}

// "+HH:MM" / "-HH:MM"
std::optional<int64_t> ParseFixedOffset(std::string_view s) {
  if (s.size() != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':') return std::nullopt;
  for (size_t i : {1, 2, 4, 5}) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
  }
  int64_t h = (s[1] - '0') * 10 + (s[2] - '0');
  int64_t m = (s[4] - '0') * 10 + (s[5] - '0');
  if (m > 59) return std::nullopt;
  int64_t v = h * 3600 + m * 60;
  if (v > kMaxFixedOffset) return std::nullopt;
  return s[0] == '-' ? -v : v;
}

// Only names that are plain relative paths below the zoneinfo directory.
std::optional<std::string> CheckZoneName(std::string_view name) {
  if (name.empty()) return "the name is empty";
  if (name.size() > 255) return "the name is too long";
  if (name.front() == '/') return "the name must not be an absolute path";
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '+' || c == '-' || c == '.' || c == '/';
    if (!ok) return "the name contains a character not allowed in a zone name";
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return "the name must not contain empty, '.' or '..' parts";
    start = end + 1;
  }
  return std::nullopt;
}

class Reader {
 public:
  explicit Reader(std::string_view d) : d_(d) {}
  bool Has(uint64_t n) const { return n <= d_.size() - pos_; }
  size_t pos() const { return pos_; }
  void Skip(uint64_t n) { pos_ += static_cast<size_t>(n); }
  uint8_t U8() { return static_cast<uint8_t>(d_[pos_++]); }
  uint32_t U32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | U8();
    return v;
  }
  int64_t I64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | U8();
    return static_cast<int64_t>(v);
  }
  std::string_view Rest() const { return d_.substr(pos_); }

 private:
  std::string_view d_;
  size_t pos_ = 0;
};

struct TzifHeader {
  char version;
  uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

std::optional<TzifHeader> ReadHeader(Reader& r) {
  if (!r.Has(44)) return std::nullopt;
  std::string_view rest = r.Rest();
  if (rest.substr(0, 4) != "TZif") return std::nullopt;
  TzifHeader h{};
  h.version = rest[4];
  r.Skip(20);
  h.isutcnt = r.U32();
  h.isstdcnt = r.U32();
  h.leapcnt = r.U32();
  h.timecnt = r.U32();
  h.typecnt = r.U32();
  h.charcnt = r.U32();
  return h;
}

uint64_t BlockSize(const TzifHeader& h, int time_size) {
  return uint64_t{h.timecnt} * time_size + h.timecnt + uint64_t{h.typecnt} * 6 + h.charcnt +
         uint64_t{h.leapcnt} * (time_size + 4) + h.isstdcnt + h.isutcnt;
}

// "hh[:mm[:ss]]" with an optional sign; hours up to max_hours. Advances s.
std::optional<int64_t> ParsePosixTime(std::string_view& s, int max_hours) {
  int sign = 1;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    sign = s[0] == '-' ? -1 : 1;
    s.remove_prefix(1);
  }
  auto number = [&](int max_digits, int64_t& out) {
    size_t n = 0;
    out = 0;
    while (n < s.size() && n < static_cast<size_t>(max_digits) && s[n] >= '0' && s[n] <= '9') {
      out = out * 10 + (s[n] - '0');
      ++n;
    }
    s.remove_prefix(n);
    return n > 0;
  };
  int64_t h = 0, m = 0, sec = 0;
  if (!number(3, h) || h > max_hours) return std::nullopt;
  if (!s.empty() && s[0] == ':') {
    s.remove_prefix(1);
    if (!number(2, m) || m > 59) return std::nullopt;
    if (!s.empty() && s[0] == ':') {
      s.remove_prefix(1);
      if (!number(2, sec) || sec > 59) return std::nullopt;
    }
  }
  return sign * (h * 3600 + m * 60 + sec);
}

// A zone abbreviation: three or more letters, or "<...>" of letters, digits, '+' and '-'.
bool SkipPosixName(std::string_view& s) {
  if (!s.empty() && s[0] == '<') {
    size_t end = s.find('>');
    if (end == std::string_view::npos || end < 4) return false;
    for (size_t i = 1; i < end; ++i) {
      char c = s[i];
      bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-';
      if (!ok) return false;
    }
    s.remove_prefix(end + 1);
    return true;
  }
  size_t n = 0;
  while (n < s.size() && ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z'))) ++n;
  if (n < 3) return false;
  s.remove_prefix(n);
  return true;
}

bool ParseSmallInt(std::string_view& s, int lo, int hi, int& out) {
  size_t n = 0;
  int64_t v = 0;
  while (n < s.size() && n < 4 && s[n] >= '0' && s[n] <= '9') {
    v = v * 10 + (s[n] - '0');
    ++n;
  }
  if (n == 0 || v < lo || v > hi) return false;
  s.remove_prefix(n);
  out = static_cast<int>(v);
  return true;
}

}  // namespace

std::optional<TimeZone::PosixTz> TimeZone::ParsePosixTz(std::string_view s) {
  // RFC 8536 §3.3: POSIX TZ with the extensions of TZif v3 (hours of a rule's time within
  // -167..167); the offsets themselves stay within 24 h.
  PosixTz tz{};
  if (!SkipPosixName(s)) return std::nullopt;
  auto std_off = ParsePosixTime(s, 24);
  if (!std_off) return std::nullopt;
  tz.std_offset = static_cast<int32_t>(-*std_off);  // POSIX counts west as positive
  if (s.empty()) return tz;

  if (!SkipPosixName(s)) return std::nullopt;
  tz.has_dst = true;
  tz.dst_offset = tz.std_offset + 3600;
  if (!s.empty() && s[0] != ',') {
    auto dst_off = ParsePosixTime(s, 24);
    if (!dst_off) return std::nullopt;
    tz.dst_offset = static_cast<int32_t>(-*dst_off);
  }
  auto parse_rule = [&](Rule& r) {
    if (s.empty()) return false;
    if (s[0] == 'J') {
      s.remove_prefix(1);
      r.kind = Rule::Kind::kJulianNoLeap;
      if (!ParseSmallInt(s, 1, 365, r.day)) return false;
    } else if (s[0] == 'M') {
      s.remove_prefix(1);
      r.kind = Rule::Kind::kMonthWeekDay;
      if (!ParseSmallInt(s, 1, 12, r.month) || s.empty() || s[0] != '.') return false;
      s.remove_prefix(1);
      if (!ParseSmallInt(s, 1, 5, r.week) || s.empty() || s[0] != '.') return false;
      s.remove_prefix(1);
      if (!ParseSmallInt(s, 0, 6, r.day)) return false;
    } else {
      r.kind = Rule::Kind::kZeroBasedDay;
      if (!ParseSmallInt(s, 0, 365, r.day)) return false;
    }
    r.time = 7200;
    if (!s.empty() && s[0] == '/') {
      s.remove_prefix(1);
      auto t = ParsePosixTime(s, 167);
      if (!t) return false;
      r.time = static_cast<int32_t>(*t);
    }
    return true;
  };
  if (s.empty()) {
    // POSIX leaves the default rule to the implementation; this is the US rule, as glibc does.
    tz.start = Rule{Rule::Kind::kMonthWeekDay, 0, 3, 2, 7200};
    tz.end = Rule{Rule::Kind::kMonthWeekDay, 0, 11, 1, 7200};
    return tz;
  }
  if (s[0] != ',') return std::nullopt;
  s.remove_prefix(1);
  if (!parse_rule(tz.start) || s.empty() || s[0] != ',') return std::nullopt;
  s.remove_prefix(1);
  if (!parse_rule(tz.end) || !s.empty()) return std::nullopt;
  return tz;
}

namespace {

// Days since the epoch of the local day a POSIX rule names in year y.
int64_t RuleDay(int64_t y, int kind, int day, int month, int week) {
  const int64_t jan1 = DaysFromCivil(y, 1, 1);
  switch (kind) {
    case 0:  // Jn: February 29 is never counted
      return jan1 + (day - 1) + (IsLeap(y) && day >= 60 ? 1 : 0);
    case 1:  // n: zero-based, leap days counted
      return jan1 + day;
    default: {
      const int64_t first = DaysFromCivil(y, static_cast<unsigned>(month), 1);
      const int64_t next = month == 12 ? DaysFromCivil(y + 1, 1, 1)
                                       : DaysFromCivil(y, static_cast<unsigned>(month + 1), 1);
      const int64_t first_weekday = FloorMod(first + 4, 7);  // 1970-01-01 was a Thursday
      int64_t d = first + FloorMod(day - first_weekday, 7) + int64_t{week - 1} * 7;
      while (d >= next) d -= 7;  // week 5 means the last such weekday
      return d;
    }
  }
}

}  // namespace

TimeZone::LocalType TimeZone::PosixTypeAt(const PosixTz& tz, int64_t unix_s) {
  if (!tz.has_dst) return {tz.std_offset, false};
  const int64_t t = Clamp(unix_s);
  const int64_t year = CivilFromUnix(t + tz.std_offset).year;
  // The year's two switches are computed for the neighbouring years too and the latest
  // one not after t wins: that handles southern-hemisphere rules (DST across New Year) and
  // rule times beyond 24 h alike.
  std::array<std::pair<int64_t, bool>, 6> events{};
  size_t n = 0;
  auto rule_day = [](const Rule& r, int64_t y) {
    return RuleDay(y, static_cast<int>(r.kind), r.day, r.month, r.week);
  };
  for (int64_t y = year - 1; y <= year + 1; ++y) {
    // A switch time is local time in the offset in force just before it.
    events[n++] = {rule_day(tz.start, y) * 86400 + tz.start.time - tz.std_offset, true};
    events[n++] = {rule_day(tz.end, y) * 86400 + tz.end.time - tz.dst_offset, false};
  }
  std::sort(events.begin(), events.end());
  bool dst = false;
  for (const auto& [at, is_dst] : events) {
    if (at <= t) dst = is_dst;
  }
  return dst ? LocalType{tz.dst_offset, true} : LocalType{tz.std_offset, false};
}

TimeZone::LocalType TimeZone::TypeAt(int64_t unix_s) const {
  if (transitions_.empty()) return footer_ ? PosixTypeAt(*footer_, unix_s) : types_[0];
  if (unix_s < transitions_.front()) return types_[0];
  if (unix_s > transitions_.back() && footer_) return PosixTypeAt(*footer_, unix_s);
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), unix_s);
  size_t i = static_cast<size_t>(std::distance(transitions_.begin(), it)) - 1;
  return types_[transition_type_[i]];
}

int64_t TimeZone::UtcOffsetAt(int64_t unix_s) const { return TypeAt(unix_s).utc_offset; }

bool TimeZone::IsDstAt(int64_t unix_s) const { return TypeAt(unix_s).is_dst; }

CivilTime TimeZone::ToLocal(int64_t unix_s) const {
  const int64_t t = Clamp(unix_s);
  return CivilFromUnix(t + UtcOffsetAt(t));
}

int64_t TimeZone::FromLocal(const CivilTime& local) const {
  CivilTime c = local;
  c.year = std::clamp<int64_t>(c.year, -30000, 30000);
  const int64_t l = UnixFromCivil(c);  // the wall clock read as if it were UTC
  // Every offset that could be in force near l: no zone has changed its offset twice
  // within a few hours, so probing ±2 days in half-day steps finds them all.
  std::array<int64_t, 9> candidates{};
  for (int k = -4; k <= 4; ++k) candidates[k + 4] = UtcOffsetAt(l + int64_t{k} * 43200);
  std::optional<int64_t> best;
  int64_t max_offset = candidates[0];
  for (int64_t off : candidates) {
    max_offset = std::max(max_offset, off);
    const int64_t u = l - off;
    if (UtcOffsetAt(u) == off && (!best || u < *best)) best = u;
  }
  if (best) return *best;
  // Skipped wall time: the instant l - max_offset lies before the jump, so its offset is
  // the one in force before it.
  return l - UtcOffsetAt(l - max_offset);
}

TimeZone TimeZone::Utc() {
  TimeZone tz;
  tz.name_ = "UTC";
  tz.types_.push_back({0, false});
  return tz;
}

Result<TimeZone> TimeZone::Fixed(int64_t offset_s) {
  if (offset_s < -kMaxFixedOffset || offset_s > kMaxFixedOffset) {
    return Invalid("a fixed UTC offset must be within -18:00..+18:00");
  }
  TimeZone tz;
  tz.name_ = FormatOffset(offset_s);
  tz.types_.push_back({static_cast<int32_t>(offset_s), false});
  return tz;
}

Result<TimeZone> TimeZone::FromTzif(std::string_view name, std::string_view data) {
  Reader r(data);
  auto h1 = ReadHeader(r);
  if (!h1) return Invalid("'" + std::string(name) + "' is not a TZif file");
  const bool v2 = h1->version != '\0';
  if (v2 && (h1->version < '2' || h1->version > '9')) {
    return Invalid("'" + std::string(name) + "': unknown TZif version");
  }
  TzifHeader h = *h1;
  int time_size = 4;
  const uint64_t v1_size = BlockSize(*h1, 4);
  if (!r.Has(v1_size)) return Invalid("'" + std::string(name) + "': truncated TZif data");
  if (v2) {
    // RFC 8536: v2+ readers skip the 32-bit block and use the second header's 64-bit data.
    r.Skip(v1_size);
    auto h2 = ReadHeader(r);
    if (!h2) return Invalid("'" + std::string(name) + "': missing the TZif v2 header");
    h = *h2;
    time_size = 8;
  }
  const std::string who = "'" + std::string(name) + "': ";
  if (h.typecnt == 0 || h.typecnt > 256) return Invalid(who + "bad local time type count");
  if ((h.isutcnt != 0 && h.isutcnt != h.typecnt) || (h.isstdcnt != 0 && h.isstdcnt != h.typecnt)) {
    return Invalid(who + "inconsistent TZif counts");
  }
  if (!r.Has(BlockSize(h, time_size))) return Invalid(who + "truncated TZif data");

  TimeZone tz;
  tz.name_ = std::string(name);
  tz.transitions_.reserve(h.timecnt);
  for (uint32_t i = 0; i < h.timecnt; ++i) {
    int64_t t = time_size == 8 ? r.I64() : static_cast<int64_t>(static_cast<int32_t>(r.U32()));
    if (!tz.transitions_.empty() && t <= tz.transitions_.back()) {
      return Invalid(who + "transition times are not ascending");
    }
    tz.transitions_.push_back(t);
  }
  tz.transition_type_.reserve(h.timecnt);
  for (uint32_t i = 0; i < h.timecnt; ++i) {
    uint8_t idx = r.U8();
    if (idx >= h.typecnt) return Invalid(who + "transition names an unknown local time type");
    tz.transition_type_.push_back(idx);
  }
  for (uint32_t i = 0; i < h.typecnt; ++i) {
    const int64_t off = static_cast<int32_t>(r.U32());
    const uint8_t is_dst = r.U8();
    const uint8_t desig = r.U8();
    if (off < -kMaxTzifOffset || off > kMaxTzifOffset) return Invalid(who + "UTC offset out of range");
    if (is_dst > 1) return Invalid(who + "bad DST flag");
    if (desig >= h.charcnt && h.charcnt != 0) return Invalid(who + "bad abbreviation index");
    tz.types_.push_back({static_cast<int32_t>(off), is_dst == 1});
  }
  // Abbreviations, leap seconds (unix time has none) and the std/wall and UT/local
  // indicators (only meaningful for POSIX-rule fallbacks we do not use) are not needed.
  r.Skip(uint64_t{h.charcnt} + uint64_t{h.leapcnt} * (time_size + 4) + h.isstdcnt + h.isutcnt);

  if (v2) {
    std::string_view rest = r.Rest();
    if (!rest.empty()) {
      if (rest[0] != '\n') return Invalid(who + "malformed TZif footer");
      size_t end = rest.find('\n', 1);
      if (end == std::string_view::npos) return Invalid(who + "malformed TZif footer");
      std::string_view footer = rest.substr(1, end - 1);
      if (!footer.empty()) {
        tz.footer_ = ParsePosixTz(footer);
        if (!tz.footer_) return Invalid(who + "unsupported TZ rule '" + std::string(footer) + "' in the TZif footer");
      }
    }
  }
  return tz;
}

Result<TimeZone> TimeZone::Load(std::string_view name) {
  if (name == "UTC") return Utc();
  if (!name.empty() && (name[0] == '+' || name[0] == '-')) {
    auto off = ParseFixedOffset(name);
    if (!off) return Invalid("'" + std::string(name) + "' is not a UTC offset of the form +HH:MM (within ±18:00)");
    return Fixed(*off);
  }
  if (auto why = CheckZoneName(name)) return Invalid("'" + std::string(name) + "' is not a time zone name: " + *why);

  const char* dir_env = std::getenv("TZDIR");
  const std::string dir = dir_env != nullptr && *dir_env != '\0' ? dir_env : "/usr/share/zoneinfo";
  const std::string file = dir + "/" + std::string(name);
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Invalid("unknown time zone '" + std::string(name) + "' (no file " + file + ")");
  }
  std::ifstream in(file, std::ios::binary);
  std::string data;
  if (in) {
    data.resize(static_cast<size_t>(kMaxTzifBytes) + 1);
    in.read(data.data(), kMaxTzifBytes + 1);
    data.resize(static_cast<size_t>(in.gcount()));
  }
  if (!in.eof() || in.bad()) {
    return Invalid("cannot read time zone file " + file + (data.size() > static_cast<size_t>(kMaxTzifBytes) ? " (too large)" : ""));
  }
  return FromTzif(name, data);
}

}  // namespace loyalty
