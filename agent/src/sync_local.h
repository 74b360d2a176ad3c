// The terminal's ledger as a sync run sees it (sync::LocalLedger): reads on the run's own
// connections, every write posted to the single ledger writer as one short transaction,
// and the conversions between ledger rows and protocol messages.
//
// Threading: the read methods use connections this object opens on first use, from the
// thread that runs the sync (one run at a time); writes block that thread until the writer
// has committed them. Never call from the writer thread (it would wait on itself).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "loyalty/base/clock.h"
#include "loyalty/base/timezone.h"
#include "loyalty/checkout/service.h"
#include "loyalty/checkout/writer.h"
#include "loyalty/ledger/ledger.h"
#include "loyalty/sync/run.h"

namespace loyalty::agent {

struct SyncLocalOptions {
  std::string database;  // the ledger file
  std::string terminal_id, store_id, agent_version;
};

// Applies one HQ snapshot to a member on the writer's ledger (inside the caller's
// transaction): fields replaced, lots replaced by HQ's, then this terminal's entries with
// seq > terminal_seq applied again on top (PROTOCOL.md §3). Exposed for tests.
Status ApplySnapshot(ledger::Ledger& w, const sync::Snapshot& snap, const TimeZone& tz,
                     int64_t validity_months);

// A run as the ledger records it (sync_runs).
ledger::SyncRunRow ToSyncRunRow(const sync::RunRecord& r);

class SyncLocal final : public sync::LocalLedger {
 public:
  // `writer`, `service` and `clock` must outlive this object. on_rules is called (on the
  // writer thread, after the commit) with rules HQ pushed.
  SyncLocal(SyncLocalOptions options, checkout::LedgerWriter& writer,
            checkout::CheckoutService& service, const Clock& clock, TimeZone tz,
            std::function<void(const nlohmann::json& rules)> on_rules = {});
  ~SyncLocal() override;

  Result<sync::HelloRequest> Hello() override;
  Result<bool> HasCheckouts() override;
  Result<std::string> Cursor() override;
  Result<sync::UploadBatch> NextUploadBatch(int64_t after_seq, size_t max_entries) override;
  Result<sync::UploadRequest> EntriesForUpload(const std::vector<std::string>& entry_ids) override;
  Result<std::unique_ptr<ReconView>> OpenReconView() override;
  Result<std::vector<uint64_t>> MembersForKeys(const std::vector<std::string>& keys) override;

  Status Acknowledge(const sync::UploadRequest& sent, const sync::UploadResponse& results) override;
  Status ApplyChanges(const sync::ChangesResponse& page) override;
  Result<int64_t> Restore(const sync::FetchResponse& fetched) override;
  Result<int64_t> RepairBalances(const sync::MembersResponse& members) override;
  // What an online look-up brought (member_lookup.h): the snapshots and identities of
  // members this terminal did not hold, in one transaction. No correction entry: there was
  // no balance here to correct.
  Status AdoptMembers(const sync::MembersResponse& found);
  Status RecordRun(const sync::RunRecord& record) override;
  Status ConfirmMembers(int64_t hq_time_s) override;
  Status Finish() override;
  Result<std::vector<uint64_t>> Evict(const std::vector<uint64_t>& member_ids) override;
  Result<std::vector<uint64_t>> MembersToRehash(size_t limit) override;
  Status ApplySnapshots(const sync::MembersResponse& members) override {
    return AdoptMembers(members);
  }
  // The store's phone look-up keys kept in the ledger, handed to the checkout service (at
  // start; a sync run hands on what it receives).
  Status LoadPhoneKeys();
  // The receipt key (docs/sync.md, "Receipt keys"): a seed made once and kept in the
  // ledger's meta table; a certificate is asked for when there is none, when it names
  // another key or terminal, or when less than a third of its 90 days is left.
  Result<std::optional<std::string>> ReceiptKeyToCertify(int64_t hq_now_s) override;
  Status StoreReceiptKeyCert(const std::string& certificate, int64_t hq_now_s) override;
  // At start: hands a kept key with a certificate still valid at now_s to the service.
  Status LoadReceiptKey(int64_t now_s);
  // Trusted time across restarts (docs/member-codes.md, "Trusted time"): HQ's time at the
  // last successful run, the monotonic clock then and the boot it was read in, kept in the
  // ledger's meta table. The monotonic clock runs on across a restart of the process, not
  // across a reboot: a record of another boot is not offered back.
  Status RememberHqTime(int64_t hq_ms, int64_t mono_ms, const std::string& boot_id);
  // The kept record when it is of this boot: {hq_ms, mono_ms}; nullopt otherwise.
  Result<std::optional<std::pair<int64_t, int64_t>>> KeptHqTime(const std::string& boot_id);

 private:
  Result<ledger::Ledger*> Reader();
  // Runs fn in one transaction on the writer thread and waits for it.
  Status OnWriter(std::function<Status(ledger::Ledger&)> fn);
  Result<sync::UploadRequest> WithRecords(std::vector<ledger::EntryRow> entries);

  SyncLocalOptions opt_;
  checkout::LedgerWriter& writer_;
  checkout::CheckoutService& service_;
  const Clock& clock_;
  TimeZone tz_;
  std::function<void(const nlohmann::json&)> on_rules_;
  std::unique_ptr<ledger::Ledger> reader_;
};

}  // namespace loyalty::agent
