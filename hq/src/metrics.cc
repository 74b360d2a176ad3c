#include "metrics.h"

namespace loyalty::hq::internal {

namespace {

// 250 µs … 10 s: an upload of a full batch, or a transaction waiting for PostgreSQL's
// writer lock, can take seconds.
constexpr int64_t kBoundsUs[] = {250,    500,    1000,   2500,    5000,    10000,   25000,   50000,
                                 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};

constexpr const char* kResults[] = {"ok", "refused", "failed"};
constexpr const char* kUploadStatuses[] = {"created", "exists", "conflict", "invalid", "refused"};
constexpr const char* kConflictKinds[] = {"chain_fork",  "chain_gap",     "entry_mismatch",
                                          "code_reused", "coupon_reused", "entry_refused"};

std::string RouteLabel(std::string_view route) {
  for (auto r : kSyncRoutes)
    if (r == route) return std::string(r);
  return "other";
}

const char* ResultOf(int status) {
  return status < 400 ? "ok" : status < 500 ? "refused" : "failed";
}

}  // namespace

HqMetrics::HqMetrics() : store_transactions_(kBoundsUs), queue_waits_(kBoundsUs) {
  for (auto route : kSyncRoutes) {
    for (const char* result : kResults) requests_[{std::string(route), result}] = 0;
    request_latency_.try_emplace(std::string(route), kBoundsUs);
  }
  for (const char* s : kUploadStatuses) upload_entries_[s] = 0;
}

void HqMetrics::SyncRequest(std::string_view route, const http::Response& r,
                            std::optional<int64_t> us,
                            const std::map<std::string, uint64_t>& statuses) {
  const std::string label = RouteLabel(route);
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{label, ResultOf(r.status)}];
  if (us) request_latency_.try_emplace(label, kBoundsUs).first->second.Observe(*us);
  if (label != "entries" || r.status != 200) return;
  for (const auto& [status, n] : statuses) upload_entries_[status] += n;
}

std::string HqMetrics::Render(const Result<FleetCounts>& fleet, int workers) const {
  std::lock_guard<std::mutex> lock(mu_);
  MetricsText o;
  o.Family("loyalty_hq_sync_requests_total", "counter",
           "Terminal (sync) requests answered by this process, by route and result.");
  for (const auto& [key, n] : requests_)
    o.Sample("loyalty_hq_sync_requests_total",
             Label("route", key.first) + "," + Label("result", key.second), n);
  o.Family("loyalty_hq_sync_request_duration_seconds", "histogram",
           "Time this process took to answer a terminal request, by route.");
  for (const auto& [route, h] : request_latency_)
    o.Histogram("loyalty_hq_sync_request_duration_seconds", Label("route", route), h.Read());
  o.Family("loyalty_hq_upload_entries_total", "counter",
           "Uploaded entries answered by this process, by the status HQ gave each.");
  for (const auto& [status, n] : upload_entries_)
    o.Sample("loyalty_hq_upload_entries_total", Label("status", status), n);
  o.Family("loyalty_hq_store_transaction_duration_seconds", "histogram",
           "Duration of this process's store transactions, committed or rolled back.");
  o.Histogram("loyalty_hq_store_transaction_duration_seconds", "", store_transactions_.Read());
  o.Family("loyalty_hq_workers", "gauge",
           "Threads of this process that answer requests, each with its own database "
           "connection (hq.toml workers).");
  o.Sample("loyalty_hq_workers", "", static_cast<int64_t>(workers));
  o.Family("loyalty_hq_requests_waiting", "gauge",
           "Requests of this process read and waiting for a free worker.");
  o.Sample("loyalty_hq_requests_waiting", "", waiting_);
  o.Family("loyalty_hq_request_wait_seconds", "histogram",
           "Time a request of this process waited for a free worker.");
  o.Histogram("loyalty_hq_request_wait_seconds", "", queue_waits_.Read());
  o.Family("loyalty_hq_database_ok", "gauge",
           "1 when this scrape read the fleet counts from the database, 0 when it could not.");
  o.Sample("loyalty_hq_database_ok", "", fleet.ok() ? "1" : "0");
  if (!fleet.ok()) return o.Take();
  o.Family("loyalty_hq_terminals", "gauge", "Terminals HQ has seen (from the database).");
  o.Sample("loyalty_hq_terminals", "", fleet->terminals);
  o.Family("loyalty_hq_terminals_active", "gauge",
           "Terminals whose last sync request was within the last 5 minutes (from the database).");
  o.Sample("loyalty_hq_terminals_active", "", fleet->synced_since);
  o.Family("loyalty_hq_terminals_silent", "gauge",
           "Terminals whose last sync request was more than 2 hours ago (from the database).");
  o.Sample("loyalty_hq_terminals_silent", "", fleet->synced_before);
  o.Family("loyalty_hq_conflicts", "gauge",
           "Conflicts HQ has recorded, by kind (from the database).");
  std::map<std::string, int64_t> kinds = fleet->conflicts;
  for (const char* k : kConflictKinds) kinds.try_emplace(k, 0);
  for (const auto& [kind, n] : kinds) o.Sample("loyalty_hq_conflicts", Label("kind", kind), n);
  return o.Take();
}

}  // namespace loyalty::hq::internal
