#include "sync_service.h"

#include <random>

#include "events.h"
#include "log.h"
#include "loyalty/base/ids.h"
#include "loyalty/base/time.h"

namespace loyalty::agent {

SyncService::SyncService(SyncServiceOptions options, sync::LocalLedger& local, const Clock& clock,
                         std::function<void(int64_t, int64_t)> on_hq_time)
    : opt_(std::move(options)), local_(local), clock_(clock), on_hq_time_(std::move(on_hq_time)) {}

SyncService::~SyncService() { Stop(); }

void SyncService::Start() {
  std::lock_guard<std::mutex> g(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Loop(); });
}

void SyncService::Stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = true;
  }
  cancel_.store(true);
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string SyncService::Trigger() {
  std::lock_guard<std::mutex> g(mu_);
  if (state_.running) return state_.current_run_id;
  if (requested_.empty()) {
    requested_ = NewEntryId(clock_.now_ms());
    requested_by_ = "api";
  }
  cv_.notify_all();
  return requested_;
}

SyncService::State SyncService::Snapshot() const {
  std::lock_guard<std::mutex> g(mu_);
  return state_;
}

void SyncService::Loop() {
  std::mt19937_64 rng(std::random_device{}());
  // The first scheduled run comes after a random part of the interval, so a chain's
  // terminals started together do not all call HQ at once.
  auto next_delay_ms = [&](bool first) -> int64_t {
    int64_t interval_ms = opt_.interval_s * 1000;
    if (interval_ms <= 0) return -1;
    int64_t jitter =
        static_cast<int64_t>(rng() % static_cast<uint64_t>(std::max<int64_t>(interval_ms / 10, 1)));
    return first ? jitter + static_cast<int64_t>(rng() % static_cast<uint64_t>(interval_ms))
                 : interval_ms + jitter;
  };
  int64_t due_mono = -1;
  if (int64_t d = next_delay_ms(true); d >= 0) due_mono = clock_.mono_ms() + d;
  for (;;) {
    std::string run_id, trigger;
    {
      std::unique_lock<std::mutex> lk(mu_);
      for (;;) {
        if (stopping_) return;
        if (!requested_.empty()) break;
        if (due_mono >= 0 && clock_.mono_ms() >= due_mono) {
          requested_ = NewEntryId(clock_.now_ms());
          requested_by_ = "interval";
          break;
        }
        if (due_mono >= 0) {
          cv_.wait_for(
              lk, std::chrono::milliseconds(std::min<int64_t>(due_mono - clock_.mono_ms(), 60000)));
        } else {
          cv_.wait(lk);
        }
      }
      run_id = std::move(requested_);
      trigger = std::move(requested_by_);
      requested_.clear();
      requested_by_.clear();
      state_.running = true;
      state_.current_run_id = run_id;
    }
    sync::RunRecord rec = RunOnce(run_id, trigger);
    {
      std::lock_guard<std::mutex> g(mu_);
      state_.running = false;
      state_.finished.insert(state_.finished.begin(), rec);
      if (state_.finished.size() > kMaxKeptRuns) state_.finished.pop_back();
    }
    if (int64_t d = next_delay_ms(false); d >= 0) due_mono = clock_.mono_ms() + d;
  }
}

Result<std::unique_ptr<sync::Transport>> SyncService::MakeTransport() {
  if (opt_.make_transport) return opt_.make_transport();
  if (opt_.hq_host.empty())
    return Status::Error(ErrorCode::kHqUnconfigured, "no [hq] url is configured");
  sync::HqEndpoint ep;
  ep.host = opt_.hq_host;
  ep.port = opt_.hq_port;
  ep.base_path = opt_.hq_base_path;
  ep.tls = opt_.hq_tls;
  ep.ca_file = opt_.hq_ca_file;
  ep.cert_file = opt_.hq_cert_file;
  ep.key_file = opt_.hq_key_file;
  return sync::NewHqTransport(std::move(ep), &cancel_);
}

sync::RunRecord SyncService::RunOnce(const std::string& run_id, const std::string& trigger) {
  LogEvent(Level::kInfo, "sync_started", {{"run_id", run_id}, {"trigger", trigger}});
  sync::RunRecord rec;
  std::unique_ptr<sync::Transport> transport;
  Status ts;
  if (auto t = MakeTransport(); t.ok())
    transport = std::move(*t);
  else
    ts = t.status();
  if (!transport) {
    rec.run_id = run_id;
    rec.started_at_ms = clock_.now_ms();
    rec.finished_at_ms = rec.started_at_ms;
    rec.result = "failed";
    rec.error = ts.ToString();
    (void)local_.RecordRun(rec);
  } else {
    sync::RunOptions ro;
    ro.terminal_id = opt_.terminal_id;
    ro.run_timeout_ms = opt_.run_timeout_s * 1000;
    ro.request_timeout_ms = static_cast<int>(std::min<int64_t>(15000, ro.run_timeout_ms));
    ro.cancel = &cancel_;
    ro.on_hq_time = on_hq_time_;
    ro.log = [](const std::string& event, const nlohmann::json& fields) {
      // At the catalogue's level (sync_conflict and sync_cursor_reset are warnings).
      const EventInfo* info = FindEvent(event);
      const bool warn = info != nullptr && info->level == "warn";
      LogEvent(warn ? Level::kWarn : Level::kInfo, event, fields);
    };
    sync::SyncRun run(local_, *transport, clock_, ro);
    rec = run.Execute(run_id);
  }
  nlohmann::json fields{
      {"run_id", rec.run_id},
      {"uploaded", rec.uploaded},
      {"downloaded", rec.downloaded},
      {"repaired", rec.repaired},
      {"conflicts", rec.conflicts},
      {"round_trips", rec.round_trips},
      {"bytes_sent", rec.bytes_sent},
      {"bytes_received", rec.bytes_received},
      {"duration_ms", rec.finished_at_ms.value_or(rec.started_at_ms) - rec.started_at_ms}};
  if (rec.result == "ok") {
    LogEvent(Level::kInfo, "sync_finished", fields);
  } else {
    fields["error"] = rec.error;
    LogEvent(Level::kError, "sync_failed", fields);
  }
  return rec;
}

}  // namespace loyalty::agent
