// The daemon's sync runs: one at a time on a thread of their own, started by
// POST /v1/sync (a request during a run joins it), by the daemon's own schedule
// (sync.interval_s with random jitter, for hosts without the systemd timer), or by
// loyaltyctl through the API. Network I/O happens on that thread; ledger writes go to the
// single writer in short transactions (sync_local.h).
//
// Thread-safety: Trigger, Snapshot and Stop may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "loyalty/base/clock.h"
#include "loyalty/sync/run.h"
#include "loyalty/sync/transport.h"
#include "sync_local.h"

namespace loyalty::agent {

struct SyncServiceOptions {
  std::string terminal_id;
  // HQ: empty host = none configured (runs fail saying so).
  std::string hq_host;
  uint16_t hq_port = 0;
  std::string hq_base_path;
  bool hq_tls = true;
  // TLS ([hq] ca_file, cert_file, key_file): HQ's certificate must chain to hq_ca_file
  // (empty: the system's trust store) and name hq_host; the client certificate (CN =
  // terminal id) is presented to HQ. Loaded afresh for every run, so replaced files take
  // effect at the next run.
  std::string hq_ca_file, hq_cert_file, hq_key_file;
  int64_t interval_s = 3600;  // 0: no schedule of our own
  int64_t run_timeout_s = 60;
  // Makes the transport for a run; default: HTTPS with the files above, or plain HTTP for
  // an http:// URL (loopback only, config checked), both cancelled by Stop(). Tests plug in
  // faulty transports here.
  std::function<Result<std::unique_ptr<sync::Transport>>()> make_transport;
};

class SyncService {
 public:
  // `local` and `clock` must outlive the service. on_hq_time: trusted time.
  SyncService(SyncServiceOptions options, sync::LocalLedger& local, const Clock& clock,
              std::function<void(int64_t hq_time_ms, int64_t local_mono_ms)> on_hq_time);
  ~SyncService();

  void Start();
  // Cancels a run in progress, including a request waiting on HQ (the run fails with
  // `cancelled` within about 100 ms), and joins the thread.
  void Stop();

  // A transport to HQ as a run makes it (make_transport, or HTTPS/HTTP with the options'
  // files), cancelled by Stop(); for the online member look-up (member_lookup.h) too.
  Result<std::unique_ptr<sync::Transport>> MakeTransport();

  // Starts a run now, or joins the one running or already requested; returns its id. The
  // run's sync_started event names what asked for it: "api" (POST /v1/sync: loyaltyctl
  // sync, loyalty-sync.timer, the POS) or "interval" (the daemon's own [sync] interval_s).
  std::string Trigger();

  struct State {
    bool running = false;
    std::string current_run_id;
    // The last kMaxKeptRuns runs this process finished, the latest first, as they ended
    // (empty: none since start):
    // the ledger's record of a run can fail to be written (a full disk), and the run must
    // still be reported (GET /v1/sync, health).
    std::vector<sync::RunRecord> finished;
  };
  static constexpr size_t kMaxKeptRuns = 20;
  State Snapshot() const;

 private:
  void Loop();
  sync::RunRecord RunOnce(const std::string& run_id, const std::string& trigger);

  SyncServiceOptions opt_;
  sync::LocalLedger& local_;
  const Clock& clock_;
  std::function<void(int64_t, int64_t)> on_hq_time_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::string requested_;     // a run asked for and not started yet
  std::string requested_by_;  // its trigger: "api" or "interval"
  State state_;
  std::atomic<bool> cancel_{false};
  std::thread thread_;
};

}  // namespace loyalty::agent
