// Metrics for store IT's monitoring, exposed by GET /metrics in the Prometheus text format
// (version 0.0.4, written by loyalty/base/prometheus.h). Counters and histograms are atomics
// updated on the hot paths; gauges are read from callbacks at scrape time. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "loyalty/base/prometheus.h"

namespace loyalty::agent {

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
    // Counters read at scrape time too: garbage per scanner and reason (Scanners::Garbage).
    struct ScannerGarbage {
      std::string scanner, reason;
      uint64_t count = 0;
    };
    std::vector<ScannerGarbage> scanner_garbage;
    // The POS API's connections (http::Server): open now, and closed or refused at the cap
    // since the agent started — a lane locked out shows here, not in the request counts.
    int64_t api_connections = 0;
    uint64_t api_connections_evicted = 0, api_connections_refused = 0;
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

}  // namespace loyalty::agent
