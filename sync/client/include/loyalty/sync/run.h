// One sync run of a terminal against HQ (sync/PROTOCOL.md, docs/sync.md):
//
//   hello → (restore: reconcile entries, fetch, when the ledger is empty and HQ holds
//   history) → upload unacknowledged entries in batches → download changes page by page →
//   reconcile the entry sets (re-upload what HQ lacks, fetch what the terminal lacks) →
//   reconcile balances (fresh snapshots and `correction` entries for those that differ) →
//   record.
//
// The run holds no ledger state of its own: every read and write goes through a
// LocalLedger, every byte to HQ through a Transport. Each write is one short transaction
// that leaves the ledger consistent, and every HQ route is idempotent, so a run may be
// killed at any byte and simply run again. Requests that fail for transport reasons or
// with 5xx/429 are retried with exponential backoff and full jitter; nothing takes longer
// than the run's deadline.
//
// Thread-compatible: Execute runs on the caller's thread (never the ledger's writer).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loyalty/base/clock.h"
#include "loyalty/base/status.h"
#include "loyalty/recon/recon.h"
#include "loyalty/sync/messages.h"
#include "loyalty/sync/transport.h"

namespace loyalty::sync {

// The record of one run (what GET /v1/sync reports and sync_runs stores).
struct RunRecord {
  std::string run_id;
  int64_t started_at_ms = 0;
  std::optional<int64_t> finished_at_ms;
  std::string result = "running";  // running | ok | failed
  int64_t uploaded = 0;    // entries HQ created from this run's uploads (re-uploads included)
  int64_t downloaded = 0;  // member snapshots and entries received
  int64_t repaired = 0;    // entries re-uploaded or restored by reconciliation, balances corrected
  int64_t conflicts = 0;   // conflict / invalid upload results and mismatched entries
  int64_t round_trips = 0;
  int64_t bytes_sent = 0, bytes_received = 0;
  std::string error;  // "code: message" when failed
};

struct UploadBatch {
  UploadRequest request;
  int64_t last_seq = 0;  // highest entry seq in request (0 when it carries no entries)
};

// What a run needs of the terminal's ledger. Reads may run on the run's thread; each write
// is one transaction on the ledger's single writer and returns when it has committed.
class LocalLedger {
 public:
  virtual ~LocalLedger() = default;

  // A consistent view of both reconciliation sets, valid while the object lives.
  class ReconView {
   public:
    virtual ~ReconView() = default;
    virtual const recon::FingerprintStore& entries() = 0;
    virtual const recon::FingerprintStore& balances() = 0;
  };

  // --- reads
  virtual Result<HelloRequest> Hello() = 0;
  // Whether the ledger holds any checkout at all. A ledger that holds none, of a terminal HQ
  // knows, was restored from an empty disk (or never sold): the run fetches back the
  // checkouts HQ holds that no entry brings (made without a member).
  virtual Result<bool> HasCheckouts() { return true; }
  virtual Result<std::string> Cursor() = 0;
  // Up to max_entries unacknowledged entries with seq > after_seq, with their checkouts
  // and refunds; once none remain, checkouts and refunds that have no entries.
  virtual Result<UploadBatch> NextUploadBatch(int64_t after_seq, size_t max_entries) = 0;
  // These entries (hex ids) with their checkouts and refunds, for a re-upload.
  virtual Result<UploadRequest> EntriesForUpload(const std::vector<std::string>& entry_ids) = 0;
  virtual Result<std::unique_ptr<ReconView>> OpenReconView() = 0;
  // Cached members whose recon::MemberKey is one of keys.
  virtual Result<std::vector<uint64_t>> MembersForKeys(const std::vector<std::string>& keys) = 0;

  // --- writes (one transaction each)
  // Marks the sent entries whose result is not `invalid` acknowledged and the sent
  // checkouts and refunds uploaded.
  virtual Status Acknowledge(const UploadRequest& sent, const UploadResponse& results) = 0;
  // Applies one page of changes and stores page.cursor in the same transaction.
  virtual Status ApplyChanges(const ChangesResponse& page) = 0;
  // Puts entries, checkouts and refunds HQ holds for this terminal into the ledger;
  // returns the number of entries added.
  virtual Result<int64_t> Restore(const FetchResponse& fetched) = 0;
  // Replaces the snapshots of these members; returns the `correction` entries written
  // (one per member whose balance differed).
  virtual Result<int64_t> RepairBalances(const MembersResponse& members) = 0;
  virtual Status RecordRun(const RunRecord& record) = 0;
  // Drops the members HQ named in `evict` (out of the store's scope) that have no entry HQ
  // has not acknowledged, with their lots, identities and balance item, in one
  // transaction; returns the ones dropped.
  virtual Result<std::vector<uint64_t>> Evict(const std::vector<uint64_t>& /*member_ids*/) {
    return std::vector<uint64_t>();
  }
  // Phone look-up (docs/pos-api.md): members whose look-up hash was made with another store
  // key than the one the last changes page delivered (at most `limit`): the run asks HQ for
  // them again and applies what it sends with ApplySnapshots, as a changes page's.
  virtual Result<std::vector<uint64_t>> MembersToRehash(size_t /*limit*/) {
    return std::vector<uint64_t>();
  }
  virtual Status ApplySnapshots(const MembersResponse& /*members*/) { return Status::Ok(); }
  // The receipt key (docs/pos-api.md, "Returns anywhere"): its raw public key when it has
  // no certificate from HQ valid for a while yet (the run then asks HQ for one), nullopt
  // when nothing is to be done. StoreReceiptKeyCert checks and keeps what HQ sent.
  virtual Result<std::optional<std::string>> ReceiptKeyToCertify(int64_t /*hq_now_s*/) {
    return std::optional<std::string>();
  }
  virtual Status StoreReceiptKeyCert(const std::string& /*certificate*/, int64_t /*hq_now_s*/) {
    return Status::Ok();
  }
  // After a run whose steps all succeeded (its download complete, its balances reconciled):
  // every member the terminal holds was delivered or confirmed by HQ as of hq_time_s, the
  // time HQ gave at the run's hello (before any of its pages), so none reads as stale for
  // want of a change to send (pos-api.md, snapshot_at).
  virtual Status ConfirmMembers(int64_t /*hq_time_s*/) { return Status::Ok(); }
  // After a successful run: fold the index journals and the like.
  virtual Status Finish() = 0;
};

struct RunOptions {
  std::string terminal_id;
  int64_t run_timeout_ms = 60000;  // the whole run, ok or failed, within this
  int request_timeout_ms = 15000;  // one request (capped by what the run has left)
  int max_attempts = 6;            // per request
  int64_t backoff_base_ms = 200;   // first retry after up to this (full jitter)
  int64_t backoff_max_ms = 5000;
  uint64_t jitter_seed = 0;  // 0: random
  int64_t changes_limit = kDefaultChangesLimit;
  // Waits between attempts; tests inject one. Default: sleeps, waking early on cancel.
  std::function<void(int64_t ms)> sleep;
  // Set to stop the run early (shutdown): it fails with `cancelled` at the next step.
  const std::atomic<bool>* cancel = nullptr;
  // Log events decided here (sync_conflict); fields are JSON.
  std::function<void(const std::string& event, const nlohmann::json& fields)> log;
  // HQ's time from hello (unix ms) and the local monotonic time its answer arrived;
  // reported once the run has succeeded (trusted time, member-codes.md).
  std::function<void(int64_t hq_time_ms, int64_t local_mono_ms)> on_hq_time;
};

class SyncRun {
 public:
  // `local`, `transport` and `clock` must outlive the SyncRun.
  SyncRun(LocalLedger& local, Transport& transport, const Clock& clock, RunOptions options);
  ~SyncRun();

  // Runs once; records the run (start and end) through local.RecordRun.
  RunRecord Execute(const std::string& run_id);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace loyalty::sync
