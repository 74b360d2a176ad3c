#include "loyalty/ctl/format.h"

#include <cstdio>
#include <optional>

#include "loyalty/base/time.h"

namespace loyalty::ctl {
namespace {

using nlohmann::json;

// The daemon's JSON is read defensively: a renderer must not throw on an older or newer
// daemon's answer, so every field goes through these.
std::string Str(const json& j, const char* key, const char* absent = "-") {
  if (!j.is_object()) return absent;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absent;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_boolean()) return it->get<bool>() ? "true" : "false";
  if (it->is_number()) return it->dump();
  return absent;
}

std::optional<int64_t> Int(const json& j, const char* key) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(key);
  if (it == j.end()) return std::nullopt;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number_unsigned()) return static_cast<int64_t>(it->get<uint64_t>());
  return std::nullopt;
}

std::string IntStr(const json& j, const char* key) {
  auto v = Int(j, key);
  return v ? std::to_string(*v) : "-";
}

const json& Sub(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

bool ParseDigits(std::string_view s, int* out) {
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return !s.empty();
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int64_t y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

std::string Label(const char* label) {
  std::string s = std::string(label) + ":";
  if (s.size() < 11) s.resize(11, ' ');
  return s;
}

void MemberLines(const json& m, std::string& out) {
  out += "member " + Str(m, "member_id") + ": ";
  std::string name = Str(m, "display_name", ""), phone = Str(m, "phone", "");
  if (name.empty() && phone.empty()) {
    out += "(not yet sent by HQ)";
  } else {
    out += name.empty() ? "-" : name;
    out += " " + (phone.empty() ? std::string("-") : phone);
  }
  out += ", tier " + Str(m, "tier") + ", " + Str(m, "status");
  std::string reason = Str(m, "frozen_reason", "");
  if (!reason.empty()) out += " (" + reason + ")";
  out += "\n";
  out += Label("balance") + IntStr(m, "balance") + " points, " + IntStr(m, "available_balance") +
         " available\n";
  const json& snap = Sub(m, "snapshot_at");
  out += Label("snapshot") +
         (snap.is_string() ? snap.get<std::string>() : std::string("never sent by HQ"));
  if (Sub(m, "stale") == json(true)) out += " (stale)";
  out += "\n";
  const json& lots = Sub(m, "lots");
  if (lots.is_array() && !lots.empty()) {
    bool first = true;
    for (const auto& lot : lots) {
      out += first ? Label("lots") : std::string(11, ' ');
      first = false;
      out += IntStr(lot, "points") + " points, expire " + Str(lot, "expires_at", "never") + "\n";
    }
  } else {
    out += Label("lots") + "none\n";
  }
  const json& recent = Sub(m, "recent_entries");
  if (recent.is_array()) {
    if (recent.empty()) out += Label("recent") + "no entries\n";
    bool first = true;
    for (const auto& e : recent) {
      out += first ? Label("recent") : std::string(11, ' ');
      first = false;
      auto pts = Int(e, "points");
      std::string p = pts ? ((*pts > 0 ? "+" : "") + std::to_string(*pts)) : "-";
      out += Str(e, "at") + "  " + Str(e, "kind") + " " + p;
      std::string co = Str(e, "checkout_id", "");
      if (!co.empty()) out += "  checkout " + co;
      out += "  (" + Str(e, "entry_id") + ")\n";
    }
  }
}

}  // namespace

std::string CsvField(std::string_view v) {
  if (v.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string CsvRow(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ',';
    out += CsvField(fields[i]);
  }
  out += "\r\n";
  return out;
}

Result<int64_t> ParseSince(std::string_view text, const TimeZone& tz) {
  auto bad = [&]() {
    return Status::Error(ErrorCode::kBadRequest,
                         "--since '" + std::string(text.substr(0, 64)) +
                             "' is neither an RFC 3339 time (2026-11-22T06:12:26Z) nor a date "
                             "(2026-11-22, midnight in the store's time zone)");
  };
  if (text.size() == 10 && text[4] == '-' && text[7] == '-') {
    int y, m, d;
    if (!ParseDigits(text.substr(0, 4), &y) || !ParseDigits(text.substr(5, 2), &m) ||
        !ParseDigits(text.substr(8, 2), &d))
      return bad();
    if (m < 1 || m > 12 || d < 1 || d > DaysInMonth(y, m)) return bad();
    return tz.FromLocal(CivilTime{y, m, d, 0, 0, 0}) * 1000;
  }
  auto s = ParseRfc3339(text);
  if (!s) return bad();
  return *s * 1000;
}

std::string FormatTimeMs(int64_t unix_ms) {
  int64_t s = unix_ms >= 0 ? unix_ms / 1000 : -((-unix_ms + 999) / 1000);
  int64_t ms = unix_ms - s * 1000;
  std::string t = FormatRfc3339(s);  // ends in 'Z'
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03d", static_cast<int>(ms));
  t.insert(t.size() - 1, frac);
  return t;
}

std::string FormatCents(int64_t cents) {
  // Work in unsigned so INT64_MIN has a magnitude.
  uint64_t mag = cents < 0 ? 0 - static_cast<uint64_t>(cents) : static_cast<uint64_t>(cents);
  std::string frac = std::to_string(mag % 100);
  if (frac.size() < 2) frac.insert(0, 1, '0');
  return (cents < 0 ? "-" : "") + std::to_string(mag / 100) + "." + frac;
}

std::string FormatHealth(const json& h) {
  std::string out;
  out += "loyaltyd " + Str(h, "version") + " on terminal " + Str(h, "terminal_id") + " (store " +
         Str(h, "store_id") + "): " + Str(h, "status") + "\n";
  const json& ledger = Sub(h, "ledger");
  out += Label("ledger") + (Sub(ledger, "ok") == json(true) ? "ok" : "NOT OK") + ", " +
         IntStr(ledger, "entries") + " entries\n";
  const json& scanners = Sub(h, "scanners");
  if (!scanners.is_array() || scanners.empty()) {
    out += Label("scanners") + "none configured\n";
  } else {
    bool first = true;
    for (const auto& s : scanners) {
      out += first ? Label("scanners") : std::string(11, ' ');
      first = false;
      out += Str(s, "id") + " (" + Str(s, "kind") + ") " + Str(s, "state") + ", last scan " +
             Str(s, "last_scan_at", "never") + "\n";
    }
  }
  const json& sync = Sub(h, "sync");
  out += Label("sync") + Str(sync, "state") + ", " + IntStr(sync, "pending_entries") +
         " entries pending, last success " + Str(sync, "last_success_at", "never") +
         ", last attempt " + Str(sync, "last_attempt_at", "never");
  std::string last_error = Str(sync, "last_error", "");
  if (!last_error.empty()) out += ", last error: " + last_error;
  out += "\n";
  const json& clock = Sub(h, "clock");
  if (clock.is_object()) {
    const json& trusted = Sub(clock, "trusted");
    out +=
        Label("clock") +
        (trusted == json(true)    ? "trusted"
         : trusted == json(false) ? "NOT trusted (member codes are judged by the last trusted time)"
                                  : "-") +
        "\n";
  }
  if (h.is_object() && h.contains("rules_version"))
    out += Label("rules") + Str(h, "rules_version") + "\n";
  return out;
}

std::string FormatMember(const json& m) {
  std::string out;
  MemberLines(m, out);
  return out;
}

std::string FormatIdentify(const json& r) {
  const json& id = Sub(r, "identification");
  std::string out = "identified: " + Str(id, "kind") + " code";
  std::string channel = Str(id, "channel", "");
  if (!channel.empty()) out += " (" + channel + ")";
  out += ", identification " + Str(id, "id") + ", usable until " + Str(id, "expires_at") + "\n";
  MemberLines(Sub(r, "member"), out);
  return out;
}

std::string FormatSyncRun(const json& run) {
  std::string out = "sync run " + Str(run, "run_id") + " " + Str(run, "result", "running");
  if (Str(run, "result", "") == "failed") {
    out += ": " + Str(run, "error", "no reason given");
    return out;
  }
  out += ": uploaded " + IntStr(run, "uploaded") + ", downloaded " + IntStr(run, "downloaded") +
         ", repaired " + IntStr(run, "repaired") + ", " + IntStr(run, "round_trips") +
         " round trips, " + IntStr(run, "bytes_sent") + " bytes sent, " +
         IntStr(run, "bytes_received") + " received";
  return out;
}

std::string FormatApiError(int http_status, const json& body, std::string_view raw) {
  const json& e = Sub(body, "error");
  std::string code = Str(e, "code", ""), message = Str(e, "message", "");
  std::string what;
  if (!code.empty()) {
    what = code + (message.empty() ? "" : ": " + message);
  } else {
    std::string r(raw.substr(0, 200));
    for (char& c : r)
      if (c == '\n' || c == '\r') c = ' ';
    what = r.empty() ? "no body" : r;
  }
  return what + " (HTTP " + std::to_string(http_status) + ")";
}

std::string EncodePathSegment(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    bool alnum = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    if (alnum || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace loyalty::ctl
