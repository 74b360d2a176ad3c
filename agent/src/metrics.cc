#include "metrics.h"

namespace loyalty::agent {

void Metrics::ScanResult(const std::string& result) {
  if (result == "member")
    scans_member_++;
  else if (result == "rejected")
    scans_rejected_++;
  else
    scans_other_++;
}

void Metrics::CheckoutCommitted(int64_t earned, int64_t redeemed) {
  checkouts_++;
  if (earned > 0) points_earned_ += static_cast<uint64_t>(earned);
  if (redeemed > 0) points_redeemed_ += static_cast<uint64_t>(redeemed);
}

void Metrics::RefundCommitted(int64_t clawed, int64_t restored) {
  refunds_++;
  if (clawed > 0) points_clawed_back_ += static_cast<uint64_t>(clawed);
  if (restored > 0) points_restored_ += static_cast<uint64_t>(restored);
}

void Metrics::SyncRun(bool ok) { (ok ? sync_ok_ : sync_failed_)++; }

void Metrics::ApiRequest(const std::string& route, int status, int64_t duration_us) {
  std::lock_guard<std::mutex> g(mu_);
  latency_[route].Observe(duration_us);
  requests_[{route, status / 100}]++;
}

std::string Metrics::Render() const {
  MetricsText o;
  o.Family("loyalty_scans_total", "counter", "Scans read by the agent's scanners, by result.");
  o.Sample("loyalty_scans_total", Label("result", "member"), scans_member_.load());
  o.Sample("loyalty_scans_total", Label("result", "rejected"), scans_rejected_.load());
  o.Sample("loyalty_scans_total", Label("result", "not_a_member_code"), scans_other_.load());
  o.Family("loyalty_checkouts_committed_total", "counter", "Checkouts committed to the ledger.");
  o.Sample("loyalty_checkouts_committed_total", "", checkouts_.load());
  o.Family("loyalty_refunds_committed_total", "counter",
           "Refunds and voids committed to the ledger.");
  o.Sample("loyalty_refunds_committed_total", "", refunds_.load());
  o.Family("loyalty_points_earned_total", "counter", "Points earned by committed checkouts.");
  o.Sample("loyalty_points_earned_total", "", points_earned_.load());
  o.Family("loyalty_points_redeemed_total", "counter", "Points redeemed by committed checkouts.");
  o.Sample("loyalty_points_redeemed_total", "", points_redeemed_.load());
  o.Family("loyalty_points_clawed_back_total", "counter", "Points clawed back by refunds.");
  o.Sample("loyalty_points_clawed_back_total", "", points_clawed_back_.load());
  o.Family("loyalty_points_restored_total", "counter", "Redeemed points restored by refunds.");
  o.Sample("loyalty_points_restored_total", "", points_restored_.load());
  o.Family("loyalty_sync_runs_total", "counter", "Sync runs with HQ, by result.");
  o.Sample("loyalty_sync_runs_total", Label("result", "ok"), sync_ok_.load());
  o.Sample("loyalty_sync_runs_total", Label("result", "failed"), sync_failed_.load());
  {
    std::lock_guard<std::mutex> g(mu_);
    o.Family("loyalty_api_requests_total", "counter",
             "POS API requests, by route and status class.");
    for (const auto& [key, n] : requests_)
      o.Sample("loyalty_api_requests_total",
               Label("route", key.first) + "," + Label("code", std::to_string(key.second) + "xx"),
               n);
    o.Family("loyalty_api_request_duration_seconds", "histogram",
             "POS API request latency, by route.");
    for (const auto& [route, h] : latency_)
      o.Histogram("loyalty_api_request_duration_seconds", Label("route", route), h.Read());
  }
  Gauges g = gauges_ ? gauges_() : Gauges{};
  o.Family("loyalty_ledger_entries", "gauge", "Entries in this terminal's ledger.");
  o.Sample("loyalty_ledger_entries", "", g.ledger_entries);
  o.Family("loyalty_ledger_ok", "gauge",
           "1 while the ledger reads and is not damaged, 0 otherwise.");
  o.Sample("loyalty_ledger_ok", "", g.ledger_ok ? "1" : "0");
  o.Family("loyalty_sync_pending_entries", "gauge", "Ledger entries HQ has not acknowledged yet.");
  o.Sample("loyalty_sync_pending_entries", "", g.pending_entries);
  o.Family("loyalty_sync_last_success_timestamp_seconds", "gauge",
           "Unix time of the last successful sync run (0: never).");
  o.Sample("loyalty_sync_last_success_timestamp_seconds", "", g.last_sync_success_s);
  o.Family("loyalty_clock_trusted", "gauge",
           "1 when the wall clock agrees with HQ's time, 0 when it does not.");
  o.Sample("loyalty_clock_trusted", "", g.clock_trusted ? "1" : "0");
  o.Family("loyalty_scanner_connected", "gauge", "1 when the scanner is connected.");
  for (const auto& [id, up] : g.scanners)
    o.Sample("loyalty_scanner_connected", Label("scanner", id), up ? "1" : "0");
  o.Family("loyalty_api_connections", "gauge", "POS API connections open.");
  o.Sample("loyalty_api_connections", "", g.api_connections);
  o.Family("loyalty_api_connections_evicted_total", "counter",
           "POS API connections closed idle to admit a new one at max_connections.");
  o.Sample("loyalty_api_connections_evicted_total", "", g.api_connections_evicted);
  o.Family("loyalty_api_connections_refused_total", "counter",
           "POS API connections refused (503) because every open one had a request in progress.");
  o.Sample("loyalty_api_connections_refused_total", "", g.api_connections_refused);
  o.Family("loyalty_scanner_garbage_total", "counter",
           "Unreadable input from a scanner, by scanner and reason.");
  for (const auto& sg : g.scanner_garbage)
    o.Sample("loyalty_scanner_garbage_total",
             Label("scanner", sg.scanner) + "," + Label("reason", sg.reason), sg.count);
  return o.Take();
}

}  // namespace loyalty::agent
