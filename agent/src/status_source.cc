#include "status_source.h"

#include <algorithm>
#include <vector>

#include "loyalty/base/time.h"

namespace loyalty::agent {

StatusData CollectStatusData(const StatusSources& src) {
  StatusData d;
  d.version = src.version;
  d.terminal_id = src.terminal_id;
  d.store_id = src.store_id;
  d.now_s = src.clock.now_s();
  d.clock_trusted = !src.trusted_time.untrusted(src.clock);
  auto count = src.reader.EntryCount();
  auto pending = src.reader.PendingEntryCount();
  d.ledger_entries = count.ok() ? std::max<int64_t>(0, *count) : 0;
  d.pending_entries = pending.ok() ? std::max<int64_t>(0, *pending) : 0;
  d.rules_version = src.service.rules()->version;
  for (const auto& sc : src.scanners)
    d.scanners.push_back(
        {sc["id"], sc["kind"], sc["state"],
         sc["last_scan_at"].is_string() ? sc["last_scan_at"].get<std::string>() : ""});
  auto runs_read = src.reader.RecentSyncRuns(10);
  std::vector<ledger::SyncRunRow> runs =
      runs_read.ok() ? std::move(*runs_read) : std::vector<ledger::SyncRunRow>();
  d.sync_state = runs.empty()                  ? "idle"
                 : runs[0].result == "failed"  ? "failing"
                 : runs[0].result == "running" ? "running"
                                               : "idle";
  if (!runs.empty()) {
    d.last_sync_attempt = FormatRfc3339(runs[0].started_at_ms / 1000);
    if (runs[0].result == "failed") d.last_sync_error = runs[0].error;
  }
  if (auto last = src.reader.LastSuccessfulSyncRun(); last.ok() && *last)
    d.last_sync_success =
        FormatRfc3339((*last)->finished_at_ms.value_or((*last)->started_at_ms) / 1000);
  for (const auto& r : runs)
    d.runs.push_back({FormatRfc3339(r.started_at_ms / 1000), r.result, r.error, r.uploaded,
                      r.downloaded, r.repaired});
  int64_t first_hour = d.now_s / 3600 - 23;
  auto per_hour = src.reader.CheckoutsPerHour(first_hour * 3600 * 1000);
  if (per_hour.ok())
    for (const auto& [hour, n] : *per_hour)
      if (hour >= first_hour && hour < first_hour + 24)
        d.checkouts_per_hour[static_cast<size_t>(hour - first_hour)] = static_cast<uint64_t>(n);
  d.scans_per_hour = src.scans_per_hour.Last24(d.now_s);
  return d;
}

}  // namespace loyalty::agent
