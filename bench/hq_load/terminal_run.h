// One terminal's sync run against one loyalty-hq process, over the real protocol
// (sync/PROTOCOL.md) with mutual TLS and the project's HTTP client (loyalty/http/client.h):
//
//   POST hello → POST entries (each pending batch, ≤ 500 entries) → GET changes (every page)
//   → POST recon/entries → POST recon/balances (→ POST members for balances that differ,
//   with RunSetup::repair_balances)
//
// as a till's hourly run does after a busy hour. The terminal's sets are its own entries and
// the balances of the members it holds as it holds them (Terminal::held: those it was sent,
// plus its own entries since, and those it wrote entries for). A request is retried as the
// terminal's sync client retries it (sync/client/src/run.cc: transport errors, 5xx, 408 and 429, at
// most 6 attempts, backoff from 200 ms doubling to 5 s with full jitter); one that still fails ends
// the run, and the terminal's next run (possibly through another HQ process) sends what is still
// pending.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "chain.h"

namespace loyalty::hqload {

struct HqEndpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string ca_file;
};

enum class RunKind {
  kUploadOnly,  // hello and upload (the ingest figure)
  kFull,        // the whole hourly run
};

struct RunStats {
  bool ok = false;
  std::string error;             // "step: why" when !ok
  int64_t uploaded_entries = 0;  // entries sent whose answer arrived
  int64_t created = 0, exists = 0, other = 0;
  int64_t changes_members = 0;  // in all its pages
  int64_t changes_pages = 0;
  int round_trips = 0;
  int retries = 0;       // attempts after the first, over the run's requests
  int lost_answers = 0;  // uploads whose answer the run gave up on (RunSetup)
  int recon_entries_round_trips = 0, recon_balances_round_trips = 0;
  int64_t entry_differences = 0, balance_differences = 0;
  int64_t bytes_sent = 0, bytes_received = 0;
  // Wall time of each step, in microseconds: connect+hello, upload, changes, recon entries,
  // recon balances (with members when they differ).
  int64_t step_us[5] = {0, 0, 0, 0, 0};
};

struct RunSetup {
  // The run starts on endpoints[first]; a retry goes to the next one not marked down, as
  // through a load balancer (with one endpoint: the same process again).
  std::vector<HqEndpoint> endpoints;
  size_t first = 0;
  const std::atomic<bool>* down = nullptr;  // one flag per endpoint; may be null
  RunKind kind = RunKind::kFull;
  int changes_limit = 1000;
  int request_timeout_ms = 120000;
  // > 0: the first attempt of each upload gives up waiting after this long, as when a
  // store's link drops while HQ works: HQ commits, the answer is lost, the retry (or the
  // next run) gets `exists`.
  int lose_upload_answer_ms = 0;
  // Ask HQ for the members whose balances differ (POST members), as a terminal does. Off by
  // default: the hourly run reconciles in sync, and the differences here come from
  // uploads HQ committed while this run's request waited in its queue (BalanceView is
  // updated when their answers arrive), not from anything the terminal lacks.
  bool repair_balances = false;
  std::atomic<int>* step = nullptr;  // set to the step under way (1 hello .. 5), 0 after
  const std::function<void(int)>* after_step = nullptr;  // called as each step ends
};

RunStats RunTerminal(Chain& chain, Terminal& t, const RunSetup& setup);

}  // namespace loyalty::hqload
