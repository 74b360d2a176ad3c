// Metrics for store IT's monitoring, exposed by GET /metrics in the Prometheus text format
// (version 0.0.4). Counters and histograms are atomics updated on the hot paths; gauges
// are read from callbacks at scrape time. Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace loyalty::agent {

// A latency histogram in microseconds with fixed buckets; exposed in seconds.
class LatencyHistogram {
 public:
  static constexpr std::array<int64_t, 12> kBoundsUs = {
      100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000};
  void Observe(int64_t us);
  struct Snapshot {
    std::array<uint64_t, kBoundsUs.size()> cumulative{};
    uint64_t count = 0;
    int64_t sum_us = 0;
  };
  Snapshot Read() const;

 private:
  std::array<std::atomic<uint64_t>, kBoundsUs.size() + 1> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<int64_t> sum_us_{0};
};

class Metrics {
 public:
  // Counters.
  void ScanResult(const std::string& result);  // member | rejected | not_a_member_code
  void CheckoutCommitted(int64_t points_earned, int64_t points_redeemed);
  void RefundCommitted(int64_t points_clawed_back, int64_t points_restored);
  void SyncRun(bool ok);
  void ApiRequest(const std::string& route, int status, int64_t duration_us);

  // Gauges, read when scraped.
  struct Gauges {
    int64_t ledger_entries = 0;
    bool ledger_ok = true;  // false: the ledger cannot be read or is latched damaged
    int64_t pending_entries = 0;
    int64_t last_sync_success_s = 0;  // 0: never
    bool clock_trusted = true;
    std::vector<std::pair<std::string, bool>> scanners;  // id, connected
  };
  void set_gauges(std::function<Gauges()> f) { gauges_ = std::move(f); }

  // The whole exposition.
  std::string Render() const;

  uint64_t checkouts() const { return checkouts_.load(); }

 private:
  std::atomic<uint64_t> scans_member_{0}, scans_rejected_{0}, scans_other_{0};
  std::atomic<uint64_t> checkouts_{0}, refunds_{0};
  std::atomic<uint64_t> points_earned_{0}, points_redeemed_{0}, points_clawed_back_{0},
      points_restored_{0};
  std::atomic<uint64_t> sync_ok_{0}, sync_failed_{0};
  mutable std::mutex mu_;
  std::map<std::string, LatencyHistogram> latency_;           // by route
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // (route, status class) → count
  std::function<Gauges()> gauges_;
};

// Formats microseconds as seconds for the exposition ("0.00025"), without floating point.
std::string MicrosAsSeconds(int64_t us);
// Escapes a label value (backslash, double quote, newline).
std::string EscapeLabel(const std::string& v);

}  // namespace loyalty::agent
