// GET /status: an HTML page for store IT on loopback. No personal data: scanners, sync,
// pending entries, clock trust, and a chart of checkouts and scans per hour over the last
// day (inline SVG, no scripts, no external resources).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace loyalty::agent {

// Counts events per hour for the last 24 hours. Thread-safe.
class HourlyCounter {
 public:
  void Add(int64_t at_s, uint64_t n = 1);
  // 24 counts, oldest hour first; the last is the hour containing now_s.
  std::array<uint64_t, 24> Last24(int64_t now_s) const;

 private:
  mutable std::mutex mu_;
  std::array<int64_t, 24> hour_{};  // which hour (unix_s / 3600) each slot holds
  std::array<uint64_t, 24> count_{};
};

struct StatusData {
  std::string version, terminal_id, store_id;
  int64_t now_s = 0;
  bool clock_trusted = true;
  int64_t ledger_entries = 0, pending_entries = 0;
  std::string rules_version;
  struct Scanner {
    std::string id, kind, state, last_scan_at;  // last_scan_at: RFC 3339 or ""
  };
  std::vector<Scanner> scanners;
  std::string sync_state, last_sync_success, last_sync_attempt, last_sync_error;
  struct Run {
    std::string started_at, result, error;
    int64_t uploaded = 0, downloaded = 0, repaired = 0;
  };
  std::vector<Run> runs;
  std::array<uint64_t, 24> checkouts_per_hour{}, scans_per_hour{};
};

std::string RenderStatusPage(const StatusData& d);
std::string HtmlEscape(const std::string& s);

}  // namespace loyalty::agent
