#include "metrics.h"

#include <cstdio>

namespace loyalty::agent {

void LatencyHistogram::Observe(int64_t us) {
  size_t i = 0;
  while (i < kBoundsUs.size() && us > kBoundsUs[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(us, std::memory_order_relaxed);
}

LatencyHistogram::Snapshot LatencyHistogram::Read() const {
  Snapshot s;
  uint64_t run = 0;
  for (size_t i = 0; i < kBoundsUs.size(); ++i) {
    run += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = run;
  }
  s.count = count_.load(std::memory_order_relaxed);
  s.sum_us = sum_us_.load(std::memory_order_relaxed);
  return s;
}

std::string MicrosAsSeconds(int64_t us) {
  bool neg = us < 0;
  uint64_t a = neg ? static_cast<uint64_t>(-us) : static_cast<uint64_t>(us);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s%llu.%06llu", neg ? "-" : "",
                static_cast<unsigned long long>(a / 1000000),
                static_cast<unsigned long long>(a % 1000000));
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

std::string EscapeLabel(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

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

namespace {

void Family(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void Sample(std::string& out, const std::string& name, const std::string& labels,
            const std::string& value) {
  out += name;
  if (!labels.empty()) out += "{" + labels + "}";
  out += ' ';
  out += value;
  out += '\n';
}

}  // namespace

std::string Metrics::Render() const {
  std::string o;
  Family(o, "loyalty_scans_total", "counter", "Scans read by the agent's scanners, by result.");
  Sample(o, "loyalty_scans_total", "result=\"member\"", std::to_string(scans_member_.load()));
  Sample(o, "loyalty_scans_total", "result=\"rejected\"", std::to_string(scans_rejected_.load()));
  Sample(o, "loyalty_scans_total", "result=\"not_a_member_code\"",
         std::to_string(scans_other_.load()));
  Family(o, "loyalty_checkouts_committed_total", "counter", "Checkouts committed to the ledger.");
  Sample(o, "loyalty_checkouts_committed_total", "", std::to_string(checkouts_.load()));
  Family(o, "loyalty_refunds_committed_total", "counter",
         "Refunds and voids committed to the ledger.");
  Sample(o, "loyalty_refunds_committed_total", "", std::to_string(refunds_.load()));
  Family(o, "loyalty_points_earned_total", "counter", "Points earned by committed checkouts.");
  Sample(o, "loyalty_points_earned_total", "", std::to_string(points_earned_.load()));
  Family(o, "loyalty_points_redeemed_total", "counter", "Points redeemed by committed checkouts.");
  Sample(o, "loyalty_points_redeemed_total", "", std::to_string(points_redeemed_.load()));
  Family(o, "loyalty_points_clawed_back_total", "counter", "Points clawed back by refunds.");
  Sample(o, "loyalty_points_clawed_back_total", "", std::to_string(points_clawed_back_.load()));
  Family(o, "loyalty_points_restored_total", "counter", "Redeemed points restored by refunds.");
  Sample(o, "loyalty_points_restored_total", "", std::to_string(points_restored_.load()));
  Family(o, "loyalty_sync_runs_total", "counter", "Sync runs with HQ, by result.");
  Sample(o, "loyalty_sync_runs_total", "result=\"ok\"", std::to_string(sync_ok_.load()));
  Sample(o, "loyalty_sync_runs_total", "result=\"failed\"", std::to_string(sync_failed_.load()));
  {
    std::lock_guard<std::mutex> g(mu_);
    Family(o, "loyalty_api_requests_total", "counter",
           "POS API requests, by route and status class.");
    for (const auto& [key, n] : requests_)
      Sample(
          o, "loyalty_api_requests_total",
          "route=\"" + EscapeLabel(key.first) + "\",code=\"" + std::to_string(key.second) + "xx\"",
          std::to_string(n));
    Family(o, "loyalty_api_request_duration_seconds", "histogram",
           "POS API request latency, by route.");
    for (const auto& [route, h] : latency_) {
      auto s = h.Read();
      std::string r = "route=\"" + EscapeLabel(route) + "\"";
      for (size_t i = 0; i < LatencyHistogram::kBoundsUs.size(); ++i)
        Sample(o, "loyalty_api_request_duration_seconds_bucket",
               r + ",le=\"" + MicrosAsSeconds(LatencyHistogram::kBoundsUs[i]) + "\"",
               std::to_string(s.cumulative[i]));
      Sample(o, "loyalty_api_request_duration_seconds_bucket", r + ",le=\"+Inf\"",
             std::to_string(s.count));
      Sample(o, "loyalty_api_request_duration_seconds_sum", r, MicrosAsSeconds(s.sum_us));
      Sample(o, "loyalty_api_request_duration_seconds_count", r, std::to_string(s.count));
    }
  }
  Gauges g = gauges_ ? gauges_() : Gauges{};
  Family(o, "loyalty_ledger_entries", "gauge", "Entries in this terminal's ledger.");
  Sample(o, "loyalty_ledger_entries", "", std::to_string(g.ledger_entries));
  Family(o, "loyalty_ledger_ok", "gauge",
         "1 while the ledger reads and is not damaged, 0 otherwise.");
  Sample(o, "loyalty_ledger_ok", "", g.ledger_ok ? "1" : "0");
  Family(o, "loyalty_sync_pending_entries", "gauge", "Ledger entries HQ has not acknowledged yet.");
  Sample(o, "loyalty_sync_pending_entries", "", std::to_string(g.pending_entries));
  Family(o, "loyalty_sync_last_success_timestamp_seconds", "gauge",
         "Unix time of the last successful sync run (0: never).");
  Sample(o, "loyalty_sync_last_success_timestamp_seconds", "",
         std::to_string(g.last_sync_success_s));
  Family(o, "loyalty_clock_trusted", "gauge",
         "1 when the wall clock agrees with HQ's time, 0 when it does not.");
  Sample(o, "loyalty_clock_trusted", "", g.clock_trusted ? "1" : "0");
  Family(o, "loyalty_scanner_connected", "gauge", "1 when the scanner is connected.");
  for (const auto& [id, up] : g.scanners)
    Sample(o, "loyalty_scanner_connected", "scanner=\"" + EscapeLabel(id) + "\"", up ? "1" : "0");
  return o;
}

}  // namespace loyalty::agent
