#include "status_page.h"

#include <algorithm>

#include "loyalty/base/time.h"

namespace loyalty::agent {

void HourlyCounter::Add(int64_t at_s, uint64_t n) {
  int64_t hour = at_s / 3600;
  size_t slot = static_cast<size_t>(((hour % 24) + 24) % 24);
  std::lock_guard<std::mutex> g(mu_);
  if (hour < hour_[slot]) return;  // a day older than what the slot holds: off the chart
  if (hour > hour_[slot]) {
    hour_[slot] = hour;
    count_[slot] = 0;
  }
  count_[slot] += n;
}

std::array<uint64_t, 24> HourlyCounter::Last24(int64_t now_s) const {
  std::array<uint64_t, 24> out{};
  int64_t now_hour = now_s / 3600;
  std::lock_guard<std::mutex> g(mu_);
  for (int i = 0; i < 24; ++i) {
    int64_t hour = now_hour - 23 + i;
    size_t slot = static_cast<size_t>(((hour % 24) + 24) % 24);
    out[static_cast<size_t>(i)] = hour_[slot] == hour ? count_[slot] : 0;
  }
  return out;
}

std::string HtmlEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

namespace {

std::string Chart(const StatusData& d) {
  // 24 groups of two bars (checkouts, scans); the tallest bar is 120 px.
  uint64_t max = 1;
  for (int i = 0; i < 24; ++i) max = std::max({max, d.checkouts_per_hour[i], d.scans_per_hour[i]});
  const int w = 24 * 26 + 40, h = 170, base = 140;
  std::string s =
      "<svg id=\"hourly-chart\" role=\"img\" aria-label=\"Checkouts and scans per hour, last 24 "
      "hours\" "
      "width=\"" +
      std::to_string(w) + "\" height=\"" + std::to_string(h) + "\" viewBox=\"0 0 " +
      std::to_string(w) + " " + std::to_string(h) + "\" xmlns=\"http://www.w3.org/2000/svg\">";
  s += "<line x1=\"30\" y1=\"" + std::to_string(base) + "\" x2=\"" + std::to_string(w - 5) +
       "\" y2=\"" + std::to_string(base) + "\" stroke=\"#888\"/>";
  s += "<text x=\"2\" y=\"20\" font-size=\"11\">" + std::to_string(max) + "</text>";
  int64_t first_hour = d.now_s / 3600 - 23;
  for (int i = 0; i < 24; ++i) {
    int x = 32 + i * 26;
    auto bar = [&](uint64_t v, int dx, const char* color, const char* what) {
      int bh = static_cast<int>(v * 120 / max);
      s += "<rect class=\"" + std::string(what) + "\" data-count=\"" + std::to_string(v) +
           "\" x=\"" + std::to_string(x + dx) + "\" y=\"" + std::to_string(base - bh) +
           "\" width=\"10\" height=\"" + std::to_string(bh) + "\" fill=\"" + color + "\"><title>" +
           std::to_string(v) + " " + what + "</title></rect>";
    };
    bar(d.checkouts_per_hour[static_cast<size_t>(i)], 0, "#2b7bb9", "checkouts");
    bar(d.scans_per_hour[static_cast<size_t>(i)], 11, "#e8a33d", "scans");
    if (i % 4 == 3) {
      CivilTime t = CivilFromUnix((first_hour + i) * 3600);
      char label[8];
      std::snprintf(label, sizeof label, "%02d:00", t.hour);
      s += "<text x=\"" + std::to_string(x - 6) + "\" y=\"" + std::to_string(base + 14) +
           "\" font-size=\"10\">" + label + "</text>";
    }
  }
  s += "<rect x=\"40\" y=\"155\" width=\"10\" height=\"10\" fill=\"#2b7bb9\"/><text x=\"54\" "
       "y=\"164\" font-size=\"11\">checkouts</text>";
  s += "<rect x=\"130\" y=\"155\" width=\"10\" height=\"10\" fill=\"#e8a33d\"/><text x=\"144\" "
       "y=\"164\" font-size=\"11\">scans</text>";
  s += "</svg>";
  return s;
}

}  // namespace

std::string RenderStatusPage(const StatusData& d) {
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>loyaltyd " +
       HtmlEscape(d.terminal_id) +
       "</title><meta http-equiv=\"refresh\" content=\"30\"><style>"
       "body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:."
       "5em 0 1.5em}"
       "td,th{border:1px solid #ccc;padding:.25em "
       ".6em;text-align:left}.ok{color:#1a7f37}.bad{color:#c62828;font-weight:bold}"
       "</style></head><body>\n";
  h += "<h1>loyaltyd — terminal " + HtmlEscape(d.terminal_id) + ", store " +
       HtmlEscape(d.store_id) + "</h1>\n";
  h += "<p>Version " + HtmlEscape(d.version) + " · rules " + HtmlEscape(d.rules_version) +
       " · page generated " + FormatRfc3339(d.now_s) + " (refreshes every 30 s)</p>\n";
  h += "<h2>Health</h2><table id=\"health\">";
  h += "<tr><th>Clock</th><td id=\"clock\" class=\"" +
       std::string(d.clock_trusted ? "ok\">trusted" : "bad\">untrusted: judged by HQ's time") +
       "</td></tr>";
  h += "<tr><th>Ledger entries</th><td id=\"entries\">" + std::to_string(d.ledger_entries) +
       "</td></tr>";
  h += "<tr><th>Pending entries (not yet at HQ)</th><td id=\"pending\">" +
       std::to_string(d.pending_entries) + "</td></tr>";
  h += "</table>\n";
  h += "<h2>Scanners</h2><table "
       "id=\"scanners\"><tr><th>Scanner</th><th>Kind</th><th>State</th><th>Last scan</th></tr>";
  if (d.scanners.empty()) h += "<tr><td colspan=\"4\">none configured</td></tr>";
  for (const auto& s : d.scanners)
    h += "<tr><td>" + HtmlEscape(s.id) + "</td><td>" + HtmlEscape(s.kind) + "</td><td class=\"" +
         (s.state == "connected" ? "ok" : "bad") + "\">" + HtmlEscape(s.state) + "</td><td>" +
         HtmlEscape(s.last_scan_at.empty() ? "never" : s.last_scan_at) + "</td></tr>";
  h += "</table>\n";
  h += "<h2>Sync with HQ</h2><table id=\"sync\">";
  h += "<tr><th>State</th><td id=\"sync-state\" class=\"" +
       std::string(d.sync_state == "failing" ? "bad" : "ok") + "\">" + HtmlEscape(d.sync_state) +
       "</td></tr>";
  h += "<tr><th>Last success</th><td>" +
       HtmlEscape(d.last_sync_success.empty() ? "never" : d.last_sync_success) + "</td></tr>";
  h += "<tr><th>Last attempt</th><td>" +
       HtmlEscape(d.last_sync_attempt.empty() ? "never" : d.last_sync_attempt) + "</td></tr>";
  if (!d.last_sync_error.empty())
    h += "<tr><th>Last error</th><td class=\"bad\">" + HtmlEscape(d.last_sync_error) + "</td></tr>";
  h += "</table>\n";
  h += "<table id=\"runs\"><tr><th>Run "
       "started</th><th>Result</th><th>Uploaded</th><th>Downloaded</th><th>Repaired</th><th>Error</"
       "th></tr>";
  if (d.runs.empty()) h += "<tr><td colspan=\"6\">no runs yet</td></tr>";
  for (const auto& r : d.runs)
    h += "<tr><td>" + HtmlEscape(r.started_at) + "</td><td class=\"" +
         (r.result == "ok" ? "ok" : "bad") + "\">" + HtmlEscape(r.result) + "</td><td>" +
         std::to_string(r.uploaded) + "</td><td>" + std::to_string(r.downloaded) + "</td><td>" +
         std::to_string(r.repaired) + "</td><td>" + HtmlEscape(r.error) + "</td></tr>";
  h += "</table>\n";
  h += "<h2>Last 24 hours (hours in UTC)</h2>\n" + Chart(d) + "\n";
  h += "</body></html>\n";
  return h;
}

}  // namespace loyalty::agent
