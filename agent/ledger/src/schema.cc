// The ledger file: opening, schema migrations, transactions, WAL checkpoints.
#include "internal.h"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "loyalty/base/encoding.h"
#include "loyalty/base/file.h"
#include "loyalty/base/json.h"
#include "loyalty/base/json_writer.h"
#include "loyalty/recon/recon.h"
#include "loyalty/recon/sqlite_store.h"

namespace loyalty::ledger {
using namespace internal;
namespace {

// Each migration moves the schema from version i to i+1. Never edit a released one:
// append a new one.
const char* const kMigrations[] = {
    // 0 -> 1
    R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE entries (
  seq INTEGER PRIMARY KEY,
  entry_id TEXT NOT NULL UNIQUE,
  terminal_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  member_id INTEGER NOT NULL,
  points INTEGER NOT NULL,
  at_ms INTEGER NOT NULL,
  checkout_id TEXT NOT NULL DEFAULT '',
  refund_id TEXT NOT NULL DEFAULT '',
  detail TEXT NOT NULL DEFAULT '',
  prev_hash BLOB NOT NULL,
  hash BLOB NOT NULL,
  acked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX entries_member_kind_at ON entries(member_id, kind, at_ms);
CREATE INDEX entries_checkout ON entries(checkout_id) WHERE checkout_id <> '';
CREATE INDEX entries_unacked ON entries(seq) WHERE acked = 0;
CREATE TABLE members (
  member_id INTEGER PRIMARY KEY,
  display_name TEXT, phone TEXT, phone_hash TEXT NOT NULL DEFAULT '',
  tier TEXT NOT NULL DEFAULT 'member',
  status TEXT NOT NULL DEFAULT 'active',
  frozen_reason TEXT NOT NULL DEFAULT '',
  birthday_month INTEGER NOT NULL DEFAULT 0,
  snapshot_at_s INTEGER,
  snapshot_balance INTEGER NOT NULL DEFAULT 0,
  month_spend_cents INTEGER NOT NULL DEFAULT 0,
  unfrozen_at_ms INTEGER NOT NULL DEFAULT 0,
  balance INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX members_phone_hash ON members(phone_hash) WHERE phone_hash <> '';
CREATE TABLE identities (
  channel TEXT NOT NULL, external_id TEXT NOT NULL, member_id INTEGER NOT NULL,
  PRIMARY KEY (channel, external_id)) WITHOUT ROWID;
CREATE TABLE lots (
  lot_id INTEGER PRIMARY KEY,
  member_id INTEGER NOT NULL,
  points INTEGER NOT NULL,
  remaining INTEGER NOT NULL,
  earned_at_s INTEGER NOT NULL,
  expires_at_s INTEGER NOT NULL,
  entry_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX lots_member ON lots(member_id, expires_at_s, lot_id);
CREATE TABLE coupons (
  coupon_id TEXT PRIMARY KEY, member_id INTEGER NOT NULL DEFAULT 0, kind TEXT NOT NULL,
  value_cents INTEGER NOT NULL DEFAULT 0, bp INTEGER NOT NULL DEFAULT 0,
  min_spend_cents INTEGER NOT NULL DEFAULT 0, valid_from_s INTEGER NOT NULL DEFAULT 0,
  valid_to_s INTEGER NOT NULL DEFAULT 0, used_by_checkout TEXT NOT NULL DEFAULT '') WITHOUT ROWID;
CREATE TABLE revoked_devices (device_pk BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE code_bindings (
  code_hash TEXT PRIMARY KEY, checkout_id TEXT NOT NULL, member_id INTEGER NOT NULL,
  bound_at_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE checkouts (
  checkout_id TEXT PRIMARY KEY,
  request_hash TEXT NOT NULL,
  member_id INTEGER,
  rules_version TEXT NOT NULL,
  committed_at_ms INTEGER NOT NULL,
  subtotal_cents INTEGER NOT NULL, total_due_cents INTEGER NOT NULL,
  points_earned INTEGER NOT NULL, redeemed_points INTEGER NOT NULL,
  eligible_cents INTEGER NOT NULL, redeemable_cents INTEGER NOT NULL,
  code_hash TEXT NOT NULL DEFAULT '', tender TEXT NOT NULL DEFAULT '', coupon_id TEXT NOT NULL DEFAULT '',
  request_json TEXT NOT NULL, response_json TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX checkouts_committed ON checkouts(committed_at_ms);
CREATE INDEX checkouts_member ON checkouts(member_id, committed_at_ms);
CREATE TABLE checkout_lines (
  checkout_id TEXT NOT NULL, line INTEGER NOT NULL, sku TEXT NOT NULL, category TEXT NOT NULL,
  qty INTEGER NOT NULL, unit_price_cents INTEGER NOT NULL,
  tier_discount_cents INTEGER NOT NULL, coupon_cents INTEGER NOT NULL, redeem_cents INTEGER NOT NULL,
  net_cents INTEGER NOT NULL, net_before_redeem_cents INTEGER NOT NULL,
  points_eligible INTEGER NOT NULL, redeemable INTEGER NOT NULL,
  PRIMARY KEY (checkout_id, line)) WITHOUT ROWID;
CREATE TABLE refunds (
  refund_id TEXT PRIMARY KEY, checkout_id TEXT NOT NULL, request_hash TEXT NOT NULL,
  reason TEXT NOT NULL, at_ms INTEGER NOT NULL, refund_cents INTEGER NOT NULL,
  points_clawed_back INTEGER NOT NULL, points_restored INTEGER NOT NULL,
  response_json TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX refunds_checkout ON refunds(checkout_id);
CREATE TABLE refund_lines (
  refund_id TEXT NOT NULL, line INTEGER NOT NULL, qty INTEGER NOT NULL,
  PRIMARY KEY (refund_id, line)) WITHOUT ROWID;
)sql",
    // 1 -> 2: sync. The reconciliation index tables (recon_*) are created and filled from
    // the existing rows by BuildReconIndex in the same transaction.
    R"sql(
CREATE TABLE sync_runs (
  run_id TEXT PRIMARY KEY,
  started_at_ms INTEGER NOT NULL,
  finished_at_ms INTEGER,
  result TEXT NOT NULL,
  uploaded INTEGER NOT NULL DEFAULT 0, downloaded INTEGER NOT NULL DEFAULT 0,
  repaired INTEGER NOT NULL DEFAULT 0, conflicts INTEGER NOT NULL DEFAULT 0,
  round_trips INTEGER NOT NULL DEFAULT 0,
  bytes_sent INTEGER NOT NULL DEFAULT 0, bytes_received INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX sync_runs_started ON sync_runs(started_at_ms);
CREATE TABLE branch_entries (
  entry_id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  terminal_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  member_id INTEGER NOT NULL,
  points INTEGER NOT NULL,
  at_ms INTEGER NOT NULL,
  checkout_id TEXT NOT NULL DEFAULT '',
  refund_id TEXT NOT NULL DEFAULT '',
  detail TEXT NOT NULL DEFAULT '',
  prev_hash BLOB NOT NULL,
  hash BLOB NOT NULL
) WITHOUT ROWID;
ALTER TABLE checkouts ADD COLUMN uploaded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE refunds ADD COLUMN uploaded INTEGER NOT NULL DEFAULT 0;
CREATE INDEX checkouts_pending_upload ON checkouts(committed_at_ms) WHERE uploaded = 0 AND member_id IS NULL;
CREATE INDEX refunds_pending_upload ON refunds(at_ms) WHERE uploaded = 0;
)sql",
    // 2 -> 3: every member update asks for the member's unacknowledged points (the
    // balance index counts without them); this keeps that look-up to the few entries since
    // the last sync instead of the member's whole history.
    R"sql(
CREATE INDEX entries_member_unacked ON entries(member_id, points) WHERE acked = 0;
)sql",
    // 3 -> 4: fewer b-trees written by a checkout commit, each one a page in the commit's
    // WAL frames (a write and a checksum each, and bytes to fsync):
    // - a checkout's lines move into its row as one compact JSON array
    //   (model::EncodeCheckoutLines): a 20-line commit wrote 20 rows into a b-tree of its own, for
    //   lines that are only ever read whole;
    // - entries_unacked goes: entries_member_unacked (v3) covers the same rows, and the
    //   few queries over all unacknowledged entries name it;
    // - entries_checkout goes: a checkout's entries are the ones its stored response and
    //   its refunds' responses name (EntriesForCheckout);
    // - checkouts_member goes: a member's local spend is found through the member's earn
    //   entries (one per checkout with a member, at the commit's time);
    // - lots are stored by member (WITHOUT ROWID, key (member_id, lot_id)) instead of in a
    //   rowid table with an index by member: one b-tree instead of two, and a member's lots
    //   are read without a look-up per lot. lot_id stays ascending in creation order within
    //   a member (existing ids are kept; a new lot takes the member's highest + 1).
    R"sql(
DROP INDEX entries_unacked;
DROP INDEX entries_checkout;
DROP INDEX checkouts_member;
CREATE TABLE lots_by_member (
  member_id INTEGER NOT NULL,
  lot_id INTEGER NOT NULL,
  points INTEGER NOT NULL,
  remaining INTEGER NOT NULL,
  earned_at_s INTEGER NOT NULL,
  expires_at_s INTEGER NOT NULL,
  entry_id TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (member_id, lot_id)
) WITHOUT ROWID;
INSERT INTO lots_by_member (member_id, lot_id, points, remaining, earned_at_s, expires_at_s, entry_id)
  SELECT member_id, lot_id, points, remaining, earned_at_s, expires_at_s, entry_id FROM lots;
DROP TABLE lots;
ALTER TABLE lots_by_member RENAME TO lots;
ALTER TABLE checkouts ADD COLUMN lines_json TEXT NOT NULL DEFAULT '[]';
UPDATE checkouts SET lines_json = coalesce((
  SELECT json_group_array(json_array(sku, category, qty, unit_price_cents, tier_discount_cents, coupon_cents,
                                     redeem_cents, net_cents, net_before_redeem_cents, points_eligible, redeemable))
  FROM (SELECT * FROM checkout_lines l WHERE l.checkout_id = checkouts.checkout_id ORDER BY l.line)), '[]');
DROP TABLE checkout_lines;
)sql",
    // 4 -> 5: who did it, and returns of other terminals' sales (docs/pos-api.md):
    // - the cashier of a checkout or refund (pos-api.md "cashier_id"), '' when none;
    // - a refund of a checkout sold at another terminal names that terminal (sold_at; ''
    //   for this terminal's own checkouts, every refund before this version) and keeps the
    //   receipt's return token it was made from ('' when none, or when made online);
    // - the coupons a member may use are listed in every member view (coupons_usable).
    R"sql(
ALTER TABLE checkouts ADD COLUMN cashier_id TEXT NOT NULL DEFAULT '';
ALTER TABLE refunds ADD COLUMN cashier_id TEXT NOT NULL DEFAULT '';
ALTER TABLE refunds ADD COLUMN sold_at TEXT NOT NULL DEFAULT '';
ALTER TABLE refunds ADD COLUMN receipt TEXT NOT NULL DEFAULT '';
CREATE INDEX coupons_usable ON coupons(member_id, valid_to_s) WHERE used_by_checkout = '';
)sql",
    // 5 -> 6: phone look-up with consent (docs/pos-api.md, "Phone look-up"): phone_hash is
    // the store-keyed look-up hash of a consenting member, made with the store key
    // phone_key_id. Hashes kept before were HQ's chain-keyed ones, which no till can
    // compute: cleared, the next snapshots bring the look-up hashes.
    R"sql(
ALTER TABLE members ADD COLUMN phone_key_id INTEGER NOT NULL DEFAULT 0;
UPDATE members SET phone_hash = '';
DROP INDEX members_phone_hash;
CREATE INDEX members_phone_lookup ON members(phone_hash, phone_key_id) WHERE phone_hash <> '';
)sql",
    // 6 -> 7: HQ's own entries of a member (adjustments, expiries, unfreezes, tier changes,
    // HQ's freezes) as the member's snapshot carries them, shown in the member's recent
    // entries beside the terminal's own. Not the terminal's chain: replaced by each snapshot.
    R"sql(
CREATE TABLE hq_entries (
  member_id INTEGER NOT NULL, entry_id TEXT NOT NULL, kind TEXT NOT NULL, points INTEGER NOT NULL,
  at_ms INTEGER NOT NULL, PRIMARY KEY (member_id, entry_id)) WITHOUT ROWID;
)sql",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kSchemaVersion);

}  // namespace

const char* MigrationSql(int from) {
  return from >= 0 && from < kSchemaVersion ? kMigrations[from] : "";
}

namespace {

// What every SQLite database file begins with (https://www.sqlite.org/fileformat2.html).
constexpr char kSqliteHeader[] = "SQLite format 3";  // and its NUL: 16 bytes

// An error when the file holds bytes but does not begin with SQLite's header: not a ledger,
// damaged or otherwise (the wrong file named, or its first page lost), so not opened. An
// empty file is a new ledger; one whose header cannot be read is left to SQLite's reads.
// The header is read through the connection's own handle of the file (Db::ReadFileHead),
// never through a descriptor of ours: closing one would release the POSIX locks the
// process's other connections to the ledger hold (core/sqlite/src/db_file.cc).
Status CheckIsSqliteFile(Db& db, const std::string& path) {
  auto head = db.ReadFileHead(sizeof kSqliteHeader);
  if (!head.ok() || head->empty()) return Status::Ok();
  if (head->size() == sizeof kSqliteHeader && std::equal(head->begin(), head->end(), kSqliteHeader))
    return Status::Ok();
  return Status::Error(
      ErrorCode::kUnavailable,
      path + " is not an SQLite database (it does not begin with SQLite's header)");
}

}  // namespace

Result<std::unique_ptr<Ledger>> Ledger::Open(const std::string& path, Mode mode,
                                             const std::string& terminal_id) {
  auto db = Db::Open(path, mode == Mode::kReader);
  if (!db.ok()) return db.status();
  if (Status s = CheckIsSqliteFile(**db, path); !s.ok()) return s;
  std::unique_ptr<Ledger> l(new Ledger(std::move(*db), terminal_id));
  Status s;
  if (mode == Mode::kWriter) {
    // WAL with synchronous=FULL: a commit is on disk when COMMIT returns, and readers
    // never block the writer.
    // A new file gets 2 KiB pages (an existing one keeps its own: SQLite cannot change the
    // page size of a WAL database). A checkout commit writes about a dozen b-trees, a page
    // or more each: about 16 pages of WAL frames per sale. 2 KiB pages halve the bytes
    // (about 33 KB instead of 70 KB at the 4 KiB default), what every sale writes to the
    // terminal's flash and the fsync the cashier waits for (docs/performance.md).
    s = l->db_->Exec(
        "PRAGMA page_size=2048; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA "
        "foreign_keys=ON;");
    if (s.ok()) s = l->Migrate();
    if (s.ok()) s = l->OpenReconIndex();
    if (s.ok()) {
      auto stored = l->GetMeta("terminal_id");
      if (!stored.ok()) {
        s = stored.status();
      } else if (!*stored) {
        s = l->PutMeta("terminal_id", terminal_id);
      } else if (**stored != terminal_id) {
        s = Status::Error(ErrorCode::kConfigInvalid, "ledger " + path + " belongs to terminal '" +
                                                         **stored + "', not '" + terminal_id + "'");
      }
    }
  } else {
    s = l->db_->Exec("PRAGMA query_only=ON;");
    // A reader that cannot read the file at all says why: SQLite's reason, and what a reader
    // of a WAL file needs (its -wal and -shm, which the daemon keeps, or a folder it may
    // create them in), not a schema version of -1.
    if (s.ok() && l->schema_version() < 0 && !l->damaged()) {
      std::string why = "SQLite could not read it";
      if (auto st = l->db_->Prepare("PRAGMA user_version"); !st.ok())
        why = st.status().message();
      else if (!(*st)->Step() && !(*st)->status().ok())
        why = (*st)->status().message();
      s = Status::Error(ErrorCode::kUnavailable,
                        "cannot read ledger " + path + ": " + why +
                            " (a reader needs the ledger's -wal and -shm files, which the daemon "
                            "keeps, or write access to the ledger's folder)");
    }
    // A file the writer found damaged may have been left at an older schema (its migration
    // rolled back): that is the damage to report, below.
    if (s.ok() && l->schema_version() != kSchemaVersion && !l->damaged())
      s = Status::Error(ErrorCode::kUnavailable, "ledger " + path + " has schema version " +
                                                     std::to_string(l->schema_version()) +
                                                     ", expected " +
                                                     std::to_string(kSchemaVersion));
  }
  if (s.ok()) s = l->LoadChainHead();
  // A file SQLite reports damaged while it is being opened (reading the schema, a
  // migration, the recon index, the terminal id, the chain head), or one another
  // connection of this process has latched, is returned latched damaged rather than as an
  // error: the caller starts degraded (operations.md, a damaged ledger). What opening had
  // left to do is not done, and nothing more is written: Begin() refuses a damaged file.
  if (!s.ok() && l->damaged()) return l;
  if (!s.ok()) return s;
  return l;
}

void Ledger::Interrupt() { sqlite3_interrupt(db_->raw()); }

Ledger::~Ledger() {
  if (in_txn_) Rollback();
  if (wal_) sqlite3_wal_hook(db_->raw(), nullptr, nullptr);
}

// The writer's WAL hook, after every commit: notes the WAL's size, and checkpoints only as
// the backstop.
int Ledger::OnWalCommit(void* arg, sqlite3* db, const char* name, int pages) {
  auto* w = static_cast<WalState*>(arg);
  w->pages = pages;
  if (pages >= w->backstop_pages)
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  return SQLITE_OK;
}

void Ledger::UseIdleCheckpoints(int idle_pages, int backstop_pages) {
  if (!wal_) wal_ = std::make_unique<WalState>();
  wal_->idle_pages = std::max(1, idle_pages);
  wal_->backstop_pages = std::max(wal_->idle_pages, backstop_pages);
  // Replaces SQLite's own hook, the automatic checkpoint.
  sqlite3_wal_hook(db_->raw(), OnWalCommit, wal_.get());
}

bool Ledger::CheckpointIfDue() {
  // A damaged file is never written, not even with the WAL's pages (they stay in the WAL).
  if (!wal_ || in_txn_ || wal_->pages < wal_->idle_pages || damaged()) return false;
  // PASSIVE copies what no reader still needs and waits for no one. With every frame
  // copied, the next write starts the WAL over from its beginning, so the file keeps the
  // size it has. An error (a full disk, say) leaves the data safe in the WAL; the next
  // commit sets pages again and the next idle moment retries.
  int log = 0, copied = 0;
  int rc = sqlite3_wal_checkpoint_v2(db_->raw(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
  if (IsCorruption(rc))
    (void)db_->Error(rc, "checkpoint");  // latches the file; the data is the WAL's
  wal_->pages = 0;
  ++idle_checkpoints_;
  return true;
}

bool Ledger::CheckpointBeforeClose() {
  if (in_txn_ || damaged()) return false;
  // A reader in a transaction (loyaltyctl, say) can keep the WAL from being emptied; the stop
  // does not wait for it (the connection closes next: the timeout need not be restored).
  sqlite3_busy_timeout(db_->raw(), 0);
  int rc =
      sqlite3_wal_checkpoint_v2(db_->raw(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  if (IsCorruption(rc)) (void)db_->Error(rc, "checkpoint");
  return rc == SQLITE_OK;
}

std::optional<int> Ledger::PeekSchemaVersion(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  auto db = Db::Open(path, /*read_only=*/true);
  if (!db.ok()) return std::nullopt;
  auto st = (*db)->Prepare("PRAGMA user_version");
  if (!st.ok() || !(*st)->Step()) return std::nullopt;
  return static_cast<int>((*st)->Int(0));
}

Status Ledger::CheckFile(const std::string& path, const std::string& terminal_id) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  // The writer makes the file, its WAL and its shared-memory file in its folder (and the
  // start makes a missing folder).
  auto folder_writable = [&]() -> Status {
    std::string why = WhyNoFileCanBeMadeAt(path);
    if (why.empty()) return Status::Ok();
    return Status::Error(ErrorCode::kUnavailable, "ledger folder " + why);
  };
  if (!fs::exists(st)) return folder_writable();  // a new ledger, made at the start
  if (fs::is_directory(st))
    return Status::Error(ErrorCode::kUnavailable, "ledger " + path + " is a directory");
  if (::access(path.c_str(), R_OK | W_OK) != 0)
    return Status::Error(ErrorCode::kUnavailable,
                         "cannot open ledger " + path + ": " + std::strerror(errno));
  if (Status s = folder_writable(); !s.ok()) return s;
  auto db = Db::Open(path, /*read_only=*/true);
  if (!db.ok())
    return Status::Error(ErrorCode::kUnavailable,
                         "cannot open ledger " + path + ": " + db.status().message());
  if (Status s = CheckIsSqliteFile(**db, path); !s.ok()) return s;
  auto version = (*db)->Prepare("PRAGMA user_version");
  if (version.ok() && (*version)->Step() && (*version)->Int(0) > kSchemaVersion)
    return Status::Error(ErrorCode::kUnavailable, "ledger " + path + " has schema version " +
                                                      std::to_string((*version)->Int(0)) +
                                                      ", newer than this program (" +
                                                      std::to_string(kSchemaVersion) + ")");
  // A ledger is one terminal's: another terminal id is refused at the start.
  auto owner = (*db)->Prepare("SELECT value FROM meta WHERE key = 'terminal_id'");
  if (owner.ok() && (*owner)->Step() && (*owner)->Text(0) != terminal_id)
    return Status::Error(ErrorCode::kConfigInvalid, "ledger " + path + " belongs to terminal '" +
                                                        (*owner)->Text(0) + "', not '" +
                                                        terminal_id + "'");
  return Status::Ok();
}

int Ledger::schema_version() {
  auto st = db_->Prepare("PRAGMA user_version");
  if (!st.ok()) return -1;
  return (*st)->Step() ? static_cast<int>((*st)->Int(0)) : -1;
}

Status Ledger::Migrate() {
  int v = schema_version();
  if (v < 0)
    return Status::Error(ErrorCode::kUnavailable, "cannot read the ledger's schema version");
  if (v > kSchemaVersion)
    return Status::Error(ErrorCode::kUnavailable, "ledger schema version " + std::to_string(v) +
                                                      " is newer than this program (" +
                                                      std::to_string(kSchemaVersion) + ")");
  for (; v < kSchemaVersion; ++v) {
    Status s = db_->Exec("BEGIN IMMEDIATE");
    if (s.ok()) s = db_->Exec(kMigrations[v]);
    if (s.ok() && v + 1 == 2) s = BuildReconIndex();
    if (s.ok()) s = db_->Exec("PRAGMA user_version=" + std::to_string(v + 1));
    if (s.ok()) s = db_->Exec("COMMIT");
    if (!s.ok()) {
      (void)db_->Exec("ROLLBACK");  // the step's own error is the one to report
      return Status::Error(s.code(),
                           "migration to schema " + std::to_string(v + 1) + ": " + s.message());
    }
  }
  return Status::Ok();
}

static Status RunCached(Db& db, const char* sql) {
  auto st = db.Prepare(sql);
  if (!st.ok()) return st.status();
  return (*st)->Run();
}

Status Ledger::Begin() {
  // Nothing is written to a file latched damaged: its pages are not trusted, and a damage
  // found while opening it left the chain head and the recon index unread.
  if (damaged())
    return Status::Error(ErrorCode::kLedgerDamaged,
                         "the ledger file is damaged (" + damage_reason() + "): not written");
  Status s = RunCached(*db_, "BEGIN IMMEDIATE");
  if (s.ok()) {
    in_txn_ = true;
    txn_head_seq_ = head_seq_;
    txn_head_hash_ = head_hash_;
  }
  return s;
}

Status Ledger::Commit() {
  Status s = RunCached(*db_, "COMMIT");
  if (!s.ok()) {
    Rollback();
    return s;
  }
  in_txn_ = false;
  return s;
}

void Ledger::Rollback() {
  (void)RunCached(*db_, "ROLLBACK");
  if (in_txn_) {
    head_seq_ = txn_head_seq_;
    head_hash_ = txn_head_hash_;
  }
  in_txn_ = false;
}

}  // namespace loyalty::ledger
