#include "loyalty/base/timezone.h"

#include <cctz/civil_time.h>
#include <cctz/time_zone.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <utility>

namespace loyalty {
namespace {

constexpr ErrorCode kCode = ErrorCode::kTimezoneInvalid;
constexpr int64_t kMaxFixedOffset = 18 * 3600;
// The documented domain of the public methods (about ±31,000 years); clamping keeps the
// calendar arithmetic far away from int64 overflow for any input.
constexpr int64_t kMaxUnix = 1'000'000'000'000;
constexpr int64_t kMaxYear = 30000;

using Seconds = cctz::time_point<cctz::seconds>;

int64_t Clamp(int64_t t) { return std::clamp<int64_t>(t, -kMaxUnix, kMaxUnix); }

Seconds ToPoint(int64_t unix_s) { return Seconds(cctz::seconds(Clamp(unix_s))); }

Status Invalid(std::string message) { return Status::Error(kCode, std::move(message)); }

std::string FormatOffset(int64_t offset_s) {
  char buf[48];
  int64_t a = offset_s < 0 ? -offset_s : offset_s;
  std::snprintf(buf, sizeof buf, "%c%02lld:%02lld", offset_s < 0 ? '-' : '+',
                static_cast<long long>(a / 3600), static_cast<long long>(a % 3600 / 60));
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

// Only names that are plain relative paths below the zoneinfo directory. This also keeps
// out the library's own name forms ("file:...", "Fixed/UTC+hh:mm:ss").
std::optional<std::string> CheckZoneName(std::string_view name) {
  if (name.empty()) return "the name is empty";
  if (name.size() > 255) return "the name is too long";
  if (name.front() == '/') return "the name must not be an absolute path";
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '+' || c == '-' || c == '.' || c == '/';
    if (!ok) return "the name contains a character not allowed in a zone name";
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == "..")
      return "the name must not contain empty, '.' or '..' parts";
    start = end + 1;
  }
  return std::nullopt;
}

}  // namespace

int64_t TimeZone::UtcOffsetAt(int64_t unix_s) const {
  return zone_->lookup(ToPoint(unix_s)).offset;
}

bool TimeZone::IsDstAt(int64_t unix_s) const { return zone_->lookup(ToPoint(unix_s)).is_dst; }

CivilTime TimeZone::ToLocal(int64_t unix_s) const {
  const cctz::civil_second cs = zone_->lookup(ToPoint(unix_s)).cs;
  return CivilTime{cs.year(), cs.month(), cs.day(), cs.hour(), cs.minute(), cs.second()};
}

int64_t TimeZone::FromLocal(const CivilTime& local) const {
  const cctz::civil_second cs(std::clamp<int64_t>(local.year, -kMaxYear, kMaxYear), local.month,
                              local.day, local.hour, local.minute, local.second);
  // `pre` reads the wall clock with the offset in force before any transition at that
  // time: the earlier instant of a repeated hour, and the pre-jump offset for a skipped one.
  return zone_->lookup(cs).pre.time_since_epoch().count();
}

TimeZone TimeZone::Utc() {
  TimeZone tz;
  tz.name_ = "UTC";
  tz.zone_ = std::make_shared<const cctz::time_zone>(cctz::utc_time_zone());
  return tz;
}

Result<TimeZone> TimeZone::Fixed(int64_t offset_s) {
  if (offset_s < -kMaxFixedOffset || offset_s > kMaxFixedOffset) {
    return Invalid("a fixed UTC offset must be within -18:00..+18:00");
  }
  TimeZone tz;
  tz.name_ = FormatOffset(offset_s);
  tz.zone_ =
      std::make_shared<const cctz::time_zone>(cctz::fixed_time_zone(cctz::seconds(offset_s)));
  return tz;
}

Result<TimeZone> TimeZone::Load(std::string_view name) {
  if (name == "UTC") return Utc();
  if (!name.empty() && (name[0] == '+' || name[0] == '-')) {
    auto off = ParseFixedOffset(name);
    if (!off)
      return Invalid("'" + std::string(name) +
                     "' is not a UTC offset of the form +HH:MM (within ±18:00)");
    return Fixed(*off);
  }
  if (auto why = CheckZoneName(name))
    return Invalid("'" + std::string(name) + "' is not a time zone name: " + *why);

  // The library looks in the same place; checking first gives the operator the path.
  const char* dir_env = std::getenv("TZDIR");
  const std::string dir = dir_env != nullptr && *dir_env != '\0' ? dir_env : "/usr/share/zoneinfo";
  const std::string file = dir + "/" + std::string(name);
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Invalid("unknown time zone '" + std::string(name) + "' (no file " + file + ")");
  }
  cctz::time_zone zone;
  if (!cctz::load_time_zone(std::string(name), &zone)) {
    return Invalid("cannot read time zone '" + std::string(name) + "': " + file +
                   " is not a valid zoneinfo (TZif) file");
  }
  TimeZone tz;
  tz.name_ = std::string(name);
  tz.zone_ = std::make_shared<const cctz::time_zone>(zone);
  return tz;
}

}  // namespace loyalty
