// loyalty-hq's metrics, exposed by GET /metrics in the Prometheus text format (docs/hq.md,
// "Metrics"). Counters and histograms are this process's: several HQ processes on one
// PostgreSQL database each count their own requests, and Prometheus sums them. The fleet
// gauges (terminals, silent terminals, conflicts) are read from the database at each
// scrape, so every process reports the same values. Thread-safe: a process's workers
// (hq.toml `workers`) count into one.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "loyalty/base/prometheus.h"
#include "loyalty/base/status.h"
#include "loyalty/hq/store.h"
#include "loyalty/http/message.h"

namespace loyalty::hq::internal {

// The terminal routes as metrics label them; any other is "other".
inline constexpr std::array<std::string_view, 10> kSyncRoutes = {
    "hello", "entries", "changes", "recon/entries", "recon/balances",
    "fetch", "members", "sale",    "evicted",       "receipt-key"};

class HqMetrics {
 public:
  HqMetrics();

  // A terminal route answered (`route` as ParseTerminalRoute gives it) in `us` microseconds;
  // nullopt: refused by the listener before the service, counted but not timed. An upload
  // answered 200 also counts its entries by the status HQ gave each (`statuses`: status ->
  // entries, what its answer lists).
  void SyncRequest(std::string_view route, const http::Response& r, std::optional<int64_t> us,
                   const std::map<std::string, uint64_t>& statuses = {});
  // One Store::Transaction, committed or rolled back.
  void StoreTransaction(int64_t us) {
    std::lock_guard<std::mutex> lock(mu_);
    store_transactions_.Observe(us);
  }
  // The process's request queue (hq.toml workers): a request queued for a worker, and one a
  // worker took after `waited_us`.
  void RequestQueued() {
    std::lock_guard<std::mutex> lock(mu_);
    ++waiting_;
  }
  void RequestTaken(int64_t waited_us) {
    std::lock_guard<std::mutex> lock(mu_);
    --waiting_;
    queue_waits_.Observe(waited_us);
  }

  // The whole exposition; `fleet` is what the database said, or why it could not be read;
  // `workers`, the process's (HqOptions::workers).
  std::string Render(const Result<FleetCounts>& fleet, int workers) const;

 private:
  mutable std::mutex mu_;                                             // guards everything below
  std::map<std::pair<std::string, std::string>, uint64_t> requests_;  // (route, result)
  std::map<std::string, LatencyHistogram> request_latency_;           // by route
  std::map<std::string, uint64_t> upload_entries_;                    // by status
  LatencyHistogram store_transactions_;
  LatencyHistogram queue_waits_;
  int64_t waiting_ = 0;
};

}  // namespace loyalty::hq::internal
