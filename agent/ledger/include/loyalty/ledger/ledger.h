// The terminal's ledger: one SQLite file in WAL mode with synchronous=FULL.
//
// Ledger is persistence only: it stores entries (append-only, hash-chained), lots, members,
// identities, coupons, revocations, checkouts, refunds and code bindings, and answers the
// queries the checkout use cases need. The arithmetic lives in rules/; the use cases that
// combine the two live in checkout/.
//
// Threading: a Ledger wraps one connection and is used from one thread. The daemon opens
// exactly one writer (owned by the writer thread) and one reader per reading thread; WAL
// lets readers see the last committed state while the writer writes.
//
// Reads fail closed: every read returns Result<T>, and a statement that fails (I/O error,
// busy past the timeout, a damaged page) is that read's error — never "not found", 0,
// false or an empty list. "Not found" is an ok Result holding nullopt or an empty list.
// Errors carry the codes of SqliteError: "unavailable", or "ledger_damaged" when SQLite
// reports the file damaged, which also latches the file as damaged (damaged(), sqlite.h).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loyalty/base/hash.h"
#include "loyalty/base/status.h"
#include "loyalty/model/coupon.h"
#include "loyalty/model/entry.h"
#include "loyalty/model/lot.h"
#include "loyalty/model/sale.h"
#include "loyalty/recon/sqlite_store.h"
#include "loyalty/sqlite/sqlite.h"

namespace loyalty::ledger {

inline constexpr int kSchemaVersion = 7;
// The SQL of the migration from schema `from` to from + 1 (0 <= from < kSchemaVersion);
// tests build files of older versions with it.
const char* MigrationSql(int from);

// The reconciliation index (sync/PROTOCOL-recon.md) lives in the ledger file, in tables
// with this prefix, one scope per reconciled set:
//   "entries":  every entry of this terminal the ledger holds (its chain and abandoned
//               branches), item = (entry id bytes, chain hash);
//   "balances": every cached member, item = MemberBalanceItem(member id, balance without
//               the member's unacknowledged entries, 0).
// Both are updated by the ledger itself inside the transaction that changes them, so the
// index can never disagree with the rows it summarises.
inline constexpr const char* kReconTablePrefix = "recon_";
inline constexpr const char* kReconEntriesScope = "entries";
inline constexpr const char* kReconBalancesScope = "balances";
// meta key of the opaque download cursor HQ handed out last.
inline constexpr const char* kSyncCursorKey = "sync_cursor";
// HQ's time (unix s) at the start of the last sync run that ended ok: every member held then
// was delivered or confirmed by that run (ConfirmMembers).
inline constexpr const char* kMembersConfirmedKey = "members_confirmed_at_s";

// An entry as the ledger holds it: the shared model plus the ledger's own bookkeeping.
struct EntryRow : model::Entry {
  bool acked = false;  // HQ has acknowledged it
};

// What a caller supplies; the ledger adds seq, terminal id and the chain.
struct EntryDraft {
  std::string entry_id;  // from NewEntryId(), created before the commit
  std::string kind;
  uint64_t member_id = 0;
  int64_t points = 0;
  int64_t at_ms = 0;
  std::string checkout_id, refund_id, detail;
};

struct MemberRow {
  uint64_t member_id = 0;
  std::optional<std::string> display_name;  // masked, e.g. 张*
  std::optional<std::string> phone;         // masked, e.g. 138****5678
  // HMAC-SHA256(the store's phone look-up key phone_key_id, the phone's digits), hex, from
  // HQ for a member who consented to phone look-up; "" otherwise (docs/pos-api.md).
  std::string phone_hash;
  std::string tier = "member";
  std::string status = "active";
  std::string frozen_reason;
  int birthday_month = 0;  // 1..12, 0 unknown
  // HQ time of the last sync that delivered or confirmed the member (its own snapshot's, or
  // the last ok run's: ConfirmMembers); nullopt: HQ never sent the member.
  std::optional<int64_t> snapshot_at_s;
  int64_t snapshot_balance = 0;
  int64_t month_spend_cents = 0;  // HQ month-to-date qualifying spend
  int64_t unfrozen_at_ms = 0;     // latest unfreeze (velocity counts after it)
  int64_t balance = 0;            // cached: always equals the sum of the member's lots
  int64_t phone_key_id = 0;       // the store key phone_hash was made with; 0: none
};

// A coupon as the terminal holds it: the offer, and the checkout that used it ("" unused;
// "@hq" when HQ reported a use elsewhere).
struct CouponRow : model::Coupon {
  std::string used_by_checkout;
};

// One sync run as recorded in sync_runs.
struct SyncRunRow {
  std::string run_id;
  int64_t started_at_ms = 0;
  std::optional<int64_t> finished_at_ms;  // nullopt while running
  std::string result = "running";         // running | ok | failed
  int64_t uploaded = 0, downloaded = 0, repaired = 0, conflicts = 0;
  int64_t round_trips = 0, bytes_sent = 0, bytes_received = 0;
  std::string error;  // empty unless failed
};

// Where RestoreEntry put an entry HQ held.
enum class RestoreOutcome {
  kChained,  // it continued the local chain (seq = head + 1, prev_hash = head hash)
  kBranch,   // it belongs to a branch the local chain no longer follows: kept apart
  kPresent,  // the ledger already held it (same id, same hash)
};

// The last entry of the chain: its seq and hash (32 raw bytes).
struct ChainHead {
  int64_t seq = 0;
  std::string hash;
};

struct VerifyReport {
  int64_t entries = 0;
  std::vector<std::string> problems;  // empty: everything verified
  bool ok() const { return problems.empty(); }
};

class Ledger {
 public:
  enum class Mode { kWriter, kReader };

  // Opens (creating and migrating when kWriter) the database at path. terminal_id is
  // recorded on first open; reopening with another terminal id is an error. So are a file
  // that is not SQLite's (it does not begin with SQLite's header), a schema newer than
  // kSchemaVersion, and a file that cannot be opened (unavailable).
  // A file SQLite reports damaged while it is opened (any read of it: the schema, a
  // migration, which is rolled back, the recon index, the terminal id, the chain head) is
  // not an error: it is returned latched damaged (damaged(); OnDamaged calls back at once),
  // with the rest of the opening undone, to be read only by what tolerates failed reads
  // and never written (Begin() refuses it). The daemon then starts degraded.
  static Result<std::unique_ptr<Ledger>> Open(const std::string& path, Mode mode,
                                              const std::string& terminal_id);
  // The schema version of the ledger at path without opening it for use (nullopt: no such
  // file or not readable). Open() migrates a file below kSchemaVersion.
  static std::optional<int> PeekSchemaVersion(const std::string& path);
  // What stops a writer's Open() for `terminal_id`, checked without opening the file for use
  // and without writing (for loyaltyd --check-config), as the user running the check: a
  // path that is a directory, a file or folder that user cannot read and write, a file that
  // is not SQLite's, a schema newer than kSchemaVersion, another terminal's ledger. A
  // missing file is a new ledger: ok when its folder is writable.
  static Status CheckFile(const std::string& path, const std::string& terminal_id);
  ~Ledger();

  int schema_version();
  sqlite::Db& db() { return *db_; }

  // Stops the statement this connection is running (a CheckIntegrity scan, a long read),
  // which then fails; the one method that is safe to call from another thread while the
  // connection is in use. No effect on an idle connection.
  void Interrupt();

  // Whether this file is latched as damaged (by any connection of this process: a
  // corruption error, or a failing CheckIntegrity), and why.
  bool damaged() const { return db_->damaged(); }
  std::string damage_reason() const { return db_->damage().reason(); }
  // Called once, on the latching thread, when the file is first latched (at once if it is).
  void OnDamaged(std::function<void(const std::string& reason)> f) {
    db_->damage().OnDamaged(std::move(f));
  }
  // SQLite's own check of the file: PRAGMA quick_check (b-tree structure, record formats,
  // NOT NULL; O(N)) or, with quick = false, PRAGMA integrity_check (also every index
  // against its table; O(N log N)). Returns the problems SQLite lists (empty: ok), at most
  // max_problems; any problem latches the file as damaged. Read-only; any connection.
  Result<std::vector<std::string>> CheckIntegrity(bool quick, int max_problems = 20);

  // WAL checkpoints when the writer is idle instead of inside a commit (writer only; the
  // daemon's writer thread does this). SQLite's own checkpoint runs inside whichever COMMIT
  // takes the WAL past 1,000 pages: a thousand pages copied and fsynced while a cashier
  // waits. After this call CheckpointIfDue() does it between jobs once the WAL holds
  // idle_pages; a COMMIT checkpoints only if the WAL reaches backstop_pages, which takes a
  // writer that is never idle.
  void UseIdleCheckpoints(int idle_pages = 1000, int backstop_pages = 8000);
  // A PASSIVE checkpoint if the WAL has reached idle_pages since the last one. Outside a
  // transaction; never on a file latched damaged. Returns whether one ran.
  bool CheckpointIfDue();
  int64_t idle_checkpoints() const { return idle_checkpoints_; }
  // Before the writer closes (writer only, outside a transaction, never on a damaged file):
  // every WAL frame copied into the database and the WAL truncated to nothing, so the file
  // alone holds the ledger (operations.md: SIGTERM closes the database cleanly). SQLite
  // does this itself only when the last connection to close may write, and the daemon's
  // readers close after its writer. Returns whether it completed.
  bool CheckpointBeforeClose();

  // Write transactions (BEGIN IMMEDIATE … COMMIT). Writer only. Begin refuses a file
  // latched damaged (ledger_damaged): nothing is written to it.
  Status Begin();
  Status Commit();
  void Rollback();

  // --- entries
  Result<EntryRow> AppendEntry(const EntryDraft& d);
  Result<int64_t>
  EntryCount();  // the chain's length: its last seq (seq has no gaps; Verify checks that)
  Result<int64_t> PendingEntryCount();  // not yet acknowledged by HQ
  // The chain's last entry as the file holds it now (nullopt: no entry yet). Unlike
  // head_seq() / head_hash(), this connection's own view (loaded at open, moved by its
  // appends), it reads the file: on a reader, the writer's last commit. Any connection.
  Result<std::optional<ChainHead>> CommittedHead();
  Result<std::vector<EntryRow>> RecentEntries(uint64_t member_id, int limit);
  // HQ's own entries of a member as its last snapshot carried them (adjust, expire, unfreeze,
  // tier_change, freeze; schema 7): shown beside the terminal's own, never part of its chain
  // or its balance (the snapshot's balance already has their points). ReplaceHqEntries puts
  // a snapshot's list in place of the member's (at most kMaxHqEntriesPerMember kept: the
  // newest); RecentHqEntries reads them newest first, terminal_id "_hq", seq 0. Writer only.
  static constexpr size_t kMaxHqEntriesPerMember = 20;
  Status ReplaceHqEntries(uint64_t member_id, const std::vector<model::Entry>& entries);
  Result<std::vector<EntryRow>> RecentHqEntries(uint64_t member_id, int limit);
  Result<std::vector<EntryRow>> EntriesForCheckout(const std::string& checkout_id);
  // This terminal's entries of no checkout and no refund (a reconciliation's `correction`)
  // with at_ms >= since_ms, in seq order: what `loyaltyctl export` lists after the sales.
  Result<std::vector<EntryRow>> EntriesWithoutRecordSince(int64_t since_ms);
  // Sum of this terminal's earn entries for the member with at_ms > since_ms.
  Result<int64_t> EarnedSince(uint64_t member_id, int64_t since_ms);
  // Latest redeem entry time for the member on this terminal (0 if none).
  Result<int64_t> LastRedeemAtMs(uint64_t member_id);

  // --- members, identities, lots
  Result<std::optional<MemberRow>> GetMember(uint64_t member_id);
  // After a sync run that ended ok (its download complete, its balances reconciled): every
  // member held now is as HQ had it at hq_time_s, the run's start by HQ's clock, so a member
  // whose own snapshot is older reads snapshot_at_s = hq_time_s (docs/sync.md, "Staleness").
  // One meta row, however many members are held; it never moves back. Writer only.
  Status ConfirmMembers(int64_t hq_time_s);
  // A confirmation in a new calendar month (month_start_s: its first second, store local
  // time): the month spend HQ sent before then is of an earlier month, so it is set to 0
  // for every member whose snapshot is older (HQ sends the new month's with the next
  // snapshot of the member). Used by the provisional upgrade (loyalty-rules.md, "Tiers").
  // Nothing to do (and nothing read) once a confirmation of this month is recorded.
  Status ForgetSpendsBefore(int64_t month_start_s);
  // refresh_balance_index: follow the member's balance in the reconciliation index (its
  // value is the balance less this terminal's unacknowledged points). A checkout commit
  // passes false: each of its point changes is an unacknowledged entry of the member, so
  // that value cannot change.
  Status UpsertMember(const MemberRow& m, bool refresh_balance_index = true);
  Result<std::optional<uint64_t>> LookupIdentity(const std::string& channel,
                                                 const std::string& external_id);
  Status PutIdentity(const std::string& channel, const std::string& external_id,
                     uint64_t member_id);
  Result<std::vector<model::Lot>> Lots(uint64_t member_id);  // by expiry, then creation
  // Lots are keyed by (member_id, lot_id); lot ids ascend in creation order within a
  // member. AddLot ignores lot.lot_id and returns the new lot's.
  Result<int64_t> AddLot(const model::Lot& lot);
  Status SetLotRemaining(uint64_t member_id, int64_t lot_id, int64_t remaining);
  Result<int64_t> MemberCount();
  // Phone look-up (docs/pos-api.md): the members whose look-up hash under store key
  // `key_id` is `hash` (at most `limit`), and the members whose hash was made with another
  // key than `key_id` (after a rotation: asked of HQ again).
  Result<std::vector<uint64_t>> MembersByPhoneHash(int64_t key_id, const std::string& hash,
                                                   size_t limit);
  Result<std::vector<uint64_t>> MembersWithOtherPhoneKey(int64_t key_id, size_t limit);

  // --- coupons, revocations, code bindings
  Result<std::optional<CouponRow>> GetCoupon(const std::string& coupon_id);
  Status PutCoupon(const CouponRow& c);
  // Eviction (docs/sync.md): forgets a member that left the store's scope — the member
  // row, lots, identities, unused coupons and balance-index item; entries stay (they are
  // the ledger). False, changing nothing, while the member has entries HQ has not
  // acknowledged. Writer only, in the caller's transaction.
  Result<bool> DropMember(uint64_t member_id);
  // The coupons `member_id` may use at now_s (theirs and those for anyone, unused, inside
  // their validity), soonest-ending first, then open-ended ones, at most `limit`.
  Result<std::vector<CouponRow>> UsableCoupons(uint64_t member_id, int64_t now_s, int limit);
  Status MarkCouponUsed(const std::string& coupon_id, const std::string& checkout_id);
  Result<bool> IsRevoked(std::string_view device_public_key);
  Status PutRevocation(std::string_view device_public_key);
  Result<std::optional<std::string>> CodeBoundTo(const std::string& code_hash);  // checkout id
  Status BindCode(const std::string& code_hash, const std::string& checkout_id, uint64_t member_id,
                  int64_t at_ms);

  // --- checkouts and refunds
  // with_lines: also decode the lines (a row whose lines do not decode is ledger_damaged).
  Result<std::optional<model::Checkout>> GetCheckout(const std::string& checkout_id,
                                                     bool with_lines = true);
  Status InsertCheckout(const model::Checkout& c);
  // Whether the ledger holds any checkout (this terminal's or restored).
  Result<bool> HasCheckouts();
  Result<std::vector<model::Checkout>> CheckoutsSince(int64_t since_ms,
                                                      int limit);  // without lines
  // Checkouts committed at or after since_ms, counted per hour: hour (unix_ms / 3600000) → count.
  Result<std::map<int64_t, int64_t>> CheckoutsPerHour(int64_t since_ms);
  // Local spend (total due net of refunds) of a member's checkouts committed at or after
  // since_ms whose earn entry HQ has not acknowledged (HQ's month spend holds the others).
  Result<int64_t> LocalSpendSince(uint64_t member_id, int64_t since_ms);
  Result<std::optional<model::Refund>> GetRefund(const std::string& refund_id);
  // Refunds made at or after since_ms, by time then id (any checkout's).
  Result<std::vector<model::Refund>> RefundsSince(int64_t since_ms);
  // This terminal's own checkout's refunds (made here; sold_at "").
  Result<std::vector<model::Refund>> RefundsForCheckout(const std::string& checkout_id);
  // The refunds made here of a checkout sold at terminal `sold_at` ("" for this one).
  Result<std::vector<model::Refund>> RefundsForSale(const std::string& sold_at,
                                                    const std::string& checkout_id);
  Status InsertRefund(const model::Refund& r);

  // --- meta
  Result<std::optional<std::string>> GetMeta(const std::string& key);
  Status PutMeta(const std::string& key, const std::string& value);

  // --- sync (schema 2). Reads work on any connection; writes are writer-only and run in
  // the caller's transaction when one is open.
  int64_t head_seq() const { return head_seq_; }
  const std::string& head_hash() const { return head_hash_; }  // 32 raw bytes
  // Unacknowledged entries with seq > after_seq, in seq order.
  Result<std::vector<EntryRow>> UnackedEntries(int64_t after_seq, int limit);
  // Entries with these ids, from the chain or from an abandoned branch (acked = true for
  // the latter); absent ids are skipped. In seq order.
  Result<std::vector<EntryRow>> EntriesByIds(const std::vector<std::string>& entry_ids);
  // The member's chain entries with seq > after_seq, in seq order.
  Result<std::vector<EntryRow>> MemberEntriesAfter(uint64_t member_id, int64_t after_seq);
  // Σ points of the member's unacknowledged entries.
  Result<int64_t> UnackedPoints(uint64_t member_id);
  Result<int64_t> BranchEntryCount();
  // Marks entries acknowledged by HQ and updates the balance items of their members.
  Status AckEntries(const std::vector<std::string>& entry_ids);
  // Puts an entry of this terminal that HQ holds into the ledger: onto the chain if it
  // continues it, else apart (a branch this chain abandoned), both acknowledged and
  // indexed. Fails with bad_request if its hash does not match its content or it names
  // another terminal, conflict if the ledger holds the id with another hash.
  Result<RestoreOutcome> RestoreEntry(const EntryRow& e);
  // Inserts a checkout / refund HQ holds unless one with its id exists (its id stays taken).
  // Returns whether it was inserted.
  Result<bool> RestoreCheckout(const model::Checkout& c);
  Result<bool> RestoreRefund(const model::Refund& r);
  // Checkouts and refunds that travel without entries and were not uploaded yet.
  Result<std::vector<model::Checkout>> UnuploadedCheckoutsWithoutEntries(int limit);
  Result<std::vector<model::Refund>> UnuploadedRefunds(int limit);
  // The refunds of one sale (`sold_at` "" for this terminal's own) not uploaded yet, by
  // (at_ms, refund_id): they travel together, so that HQ checks each against the ones before.
  Result<std::vector<model::Refund>> UnuploadedRefundsOfSale(const std::string& sold_at,
                                                             const std::string& checkout_id);
  Status MarkUploaded(const std::vector<std::string>& checkout_ids,
                      const std::vector<std::string>& refund_ids);
  Status DeleteLots(uint64_t member_id);
  // Cached members whose recon key (recon::MemberKey of the decimal id) is in keys.
  Result<std::vector<uint64_t>> MembersByReconKey(const std::vector<std::string>& keys);
  // The reconciliation index (writer only; null on a reader).
  recon::SqliteStore* entries_index() { return entries_index_.get(); }
  recon::SqliteStore* balances_index() { return balances_index_.get(); }
  // Folds the index journals (call at a quiet moment, e.g. after a sync run).
  Status FlushReconIndex();

  // Sync run records, newest first.
  Status PutSyncRun(const SyncRunRow& r);
  Result<std::vector<SyncRunRow>> RecentSyncRuns(int limit);
  Result<std::optional<SyncRunRow>> LastSuccessfulSyncRun();
  // Runs still "running" (the process died mid-run) become failed; returns how many.
  Result<int> FailInterruptedSyncRuns(int64_t now_ms);

  // Full check: SQLite's integrity_check, the hash chain from the first entry, and every
  // member's cached balance against the sum of its lots; a ledger latched as damaged is
  // a problem too. Read-only; usable on a reader.
  VerifyReport Verify();

 private:
  Ledger(std::unique_ptr<sqlite::Db> db, std::string terminal_id)
      : db_(std::move(db)), terminal_id_(std::move(terminal_id)) {}
  Status Migrate();
  Status OpenReconIndex();
  Status BuildReconIndex();
  // s, or ledger_damaged (latched) when the recon store failed on a corruption.
  Status ReconError(Status s);
  Status RefreshBalanceItem(uint64_t member_id, int64_t balance);
  // fresh: an entry appended just now (its id new to the index: no look-up first).
  Status IndexEntry(const EntryRow& e, bool fresh = false);
  Status LoadChainHead();
  // The ids `sql` (a literal selecting one text column) selects, in its order; `bind` binds
  // its parameters.
  Result<std::vector<std::string>> SelectIds(const char* sql,
                                             const std::function<void(sqlite::Stmt&)>& bind);
  // The refunds whose ids `sql` selects, as SelectIds.
  Result<std::vector<model::Refund>> RefundsSelected(
      const char* sql, const std::function<void(sqlite::Stmt&)>& bind);
  // The one integer a single-row aggregate (a literal) selects; bind may be empty.
  Result<int64_t> SelectInt(const char* sql, const std::function<void(sqlite::Stmt&)>& bind);

  std::unique_ptr<sqlite::Db> db_;
  std::string terminal_id_;
  int64_t head_seq_ = 0;
  std::string head_hash_;
  bool in_txn_ = false;
  int64_t txn_head_seq_ = 0;
  std::string txn_head_hash_;
  std::unique_ptr<recon::SqliteStore> entries_index_;
  std::unique_ptr<recon::SqliteStore> balances_index_;
  // Idle checkpoints (UseIdleCheckpoints): the WAL's size after the last commit.
  struct WalState {
    int pages = 0;
    int idle_pages = 0;
    int backstop_pages = 0;
  };
  std::unique_ptr<WalState> wal_;
  static int OnWalCommit(void* arg, sqlite3* db, const char* name, int pages);
  int64_t idle_checkpoints_ = 0;
};

// One snapshot of the reconciliation index (both sets: entries and balances) for as long
// as it lives: a read transaction on a read-only connection of its own, so a sync run's
// exchange sees one state of both while checkouts go on committing on the writer. Opens
// only a ledger whose writer has created the index. Used from one thread.
class ReconSnapshot {
 public:
  static Result<std::unique_ptr<ReconSnapshot>> Open(const std::string& path);
  ~ReconSnapshot();  // ends the read transaction
  ReconSnapshot(const ReconSnapshot&) = delete;
  ReconSnapshot& operator=(const ReconSnapshot&) = delete;

  const recon::FingerprintStore& entries() const { return *entries_; }
  const recon::FingerprintStore& balances() const { return *balances_; }

 private:
  ReconSnapshot() = default;
  std::unique_ptr<sqlite::Db> db_;
  std::unique_ptr<recon::SqliteStore> entries_, balances_;
  bool open_ = false;
};

}  // namespace loyalty::ledger
