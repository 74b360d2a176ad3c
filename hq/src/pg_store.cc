// The PostgreSQL backend of hq::Store, for a chain: several loyalty-hq processes on one
// database. The store is sql_store.h's, shared with SQLite; what is PostgreSQL's own is here:
//
//   - the schema (the SQLite one in PostgreSQL types: BIGINT, BYTEA, BIGSERIAL; `rowid` a
//     BIGSERIAL column where rows are read in insertion order), versioned in
//     schema_version and migrated under a session advisory lock, so that processes
//     starting together migrate once;
//   - every write transaction takes one transaction-level advisory lock first
//     (kWriterLock): HQ's writes are serialised across processes exactly as SQLite's single
//     writer serialises them, so every check the service makes inside a write (a coupon
//     used once, a code at two terminals, an entry id stored once, the change sequence
//     committed in order) holds across processes with no other change to the service. Reads
//     (the `changes` feed, reconciliation, the admin GETs) take no lock;
//   - lock_timeout and idle_in_transaction_session_timeout bound how long one stuck
//     process can hold the others (a timed-out wait is `unavailable`: 503, retried by the
//     terminal's next run).
#include <iterator>
#include <memory>

#include "loyalty/hq/store.h"
#include "loyalty/pg/pg.h"
#include "loyalty/recon/pg_store.h"
#include "loyalty/sqlite/sqlite.h"
#include "sql_store.h"

namespace loyalty::hq {
namespace {

// Advisory lock keys (one 64-bit space per database).
constexpr int64_t kWriterLock = 0x4c6f79616c747901;     // every write (and the daily job)
constexpr int64_t kMigrationLock = 0x4c6f79616c747902;  // schema migrations

constexpr int kPgSchemaVersion = 7;

constexpr const char* kPgMigrations[] = {
    // 1: the SQLite schema 4 in PostgreSQL's types.
    R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE change_counter (id BIGINT PRIMARY KEY CHECK (id = 1), value BIGINT NOT NULL);
INSERT INTO change_counter VALUES (1, 0);
CREATE TABLE members (
  member_id BIGINT PRIMARY KEY, name_enc BYTEA, phone_enc BYTEA, birthday_enc BYTEA,
  display_name TEXT, phone_masked TEXT, phone_hash TEXT NOT NULL, birthday_month BIGINT NOT NULL,
  card_number TEXT NOT NULL, tier TEXT NOT NULL, status TEXT NOT NULL, frozen_reason TEXT NOT NULL,
  unfrozen_at_ms BIGINT NOT NULL, balance BIGINT NOT NULL, created_at_ms BIGINT NOT NULL,
  change_seq BIGINT NOT NULL);
CREATE INDEX members_by_change ON members(change_seq);
CREATE TABLE identities (
  channel TEXT NOT NULL, external_id TEXT NOT NULL, member_id BIGINT NOT NULL,
  PRIMARY KEY (channel, external_id));
CREATE INDEX identities_by_member ON identities(member_id);
CREATE TABLE entries (
  entry_id TEXT NOT NULL UNIQUE, terminal_id TEXT NOT NULL, seq BIGINT NOT NULL, kind TEXT NOT NULL,
  member_id BIGINT NOT NULL, points BIGINT NOT NULL, at_ms BIGINT NOT NULL, checkout_id TEXT NOT NULL,
  refund_id TEXT NOT NULL, detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,
  applied BIGINT NOT NULL DEFAULT 1, received_at_ms BIGINT NOT NULL DEFAULT 0);
CREATE INDEX entries_by_terminal ON entries(terminal_id, seq);
CREATE INDEX entries_by_member_kind ON entries(member_id, kind, applied, at_ms, points);
CREATE INDEX entries_by_checkout ON entries(terminal_id, checkout_id) WHERE checkout_id <> '';
CREATE TABLE lots (
  lot_id BIGSERIAL PRIMARY KEY, member_id BIGINT NOT NULL, points BIGINT NOT NULL,
  remaining BIGINT NOT NULL, earned_at_s BIGINT NOT NULL, expires_at_s BIGINT NOT NULL,
  entry_id TEXT NOT NULL);
CREATE INDEX lots_by_member ON lots(member_id, expires_at_s, lot_id);
CREATE INDEX lots_by_expiry ON lots(expires_at_s) WHERE remaining > 0;
CREATE INDEX lots_debt ON lots(member_id, expires_at_s, lot_id) WHERE remaining < 0;
CREATE TABLE checkouts (
  rowid BIGSERIAL, terminal_id TEXT NOT NULL, checkout_id TEXT NOT NULL, member_id BIGINT,
  committed_at_ms BIGINT NOT NULL, total_due_cents BIGINT NOT NULL, code_hash TEXT NOT NULL,
  coupon_id TEXT NOT NULL, body BYTEA NOT NULL, refused BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (terminal_id, checkout_id));
CREATE INDEX checkouts_by_member ON checkouts(member_id, committed_at_ms, refused, total_due_cents,
  terminal_id, checkout_id);
CREATE INDEX checkouts_by_code ON checkouts(code_hash, rowid) WHERE code_hash <> '';
CREATE INDEX checkouts_by_coupon ON checkouts(coupon_id, rowid) WHERE coupon_id <> '';
CREATE TABLE refunds (
  terminal_id TEXT NOT NULL, refund_id TEXT NOT NULL, checkout_id TEXT NOT NULL,
  refund_cents BIGINT NOT NULL, body TEXT NOT NULL, refused BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (terminal_id, refund_id));
CREATE INDEX refunds_by_checkout ON refunds(terminal_id, checkout_id);
CREATE TABLE coupons (
  coupon_id TEXT PRIMARY KEY, member_id BIGINT NOT NULL, kind TEXT NOT NULL, value_cents BIGINT NOT NULL,
  bp BIGINT NOT NULL, min_spend_cents BIGINT NOT NULL, valid_from_s BIGINT NOT NULL,
  valid_to_s BIGINT NOT NULL, body_hash TEXT NOT NULL, used_by_terminal TEXT NOT NULL,
  used_by_checkout TEXT NOT NULL, change_seq BIGINT NOT NULL);
CREATE INDEX coupons_by_change ON coupons(change_seq);
CREATE TABLE devices (
  device_public_key TEXT PRIMARY KEY, member_id BIGINT NOT NULL, key_id BIGINT NOT NULL,
  not_after_s BIGINT NOT NULL, issued_at_ms BIGINT NOT NULL);
CREATE TABLE revocations (
  device_public_key TEXT PRIMARY KEY, at_ms BIGINT NOT NULL, change_seq BIGINT NOT NULL);
CREATE INDEX revocations_by_change ON revocations(change_seq);
CREATE TABLE adjustments (
  adjustment_id TEXT PRIMARY KEY, member_id BIGINT NOT NULL, points BIGINT NOT NULL,
  reason TEXT NOT NULL, entry_id TEXT NOT NULL, at_ms BIGINT NOT NULL);
CREATE TABLE conflicts (
  id BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, at_ms BIGINT NOT NULL, terminal_id TEXT NOT NULL,
  other_terminal_id TEXT NOT NULL, member_id BIGINT NOT NULL, detail TEXT NOT NULL,
  dedupe_key TEXT NOT NULL UNIQUE);
CREATE INDEX conflicts_by_member ON conflicts(member_id);
CREATE INDEX conflicts_by_terminal ON conflicts(terminal_id);
CREATE INDEX conflicts_by_other ON conflicts(other_terminal_id);
CREATE TABLE terminals (
  terminal_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, first_seen_ms BIGINT NOT NULL,
  last_sync_ms BIGINT NOT NULL, head_seq BIGINT NOT NULL, head_hash TEXT NOT NULL);
CREATE TABLE member_states (
  rowid BIGSERIAL PRIMARY KEY, member_id BIGINT NOT NULL, at_ms BIGINT NOT NULL, tier TEXT NOT NULL,
  status TEXT NOT NULL);
CREATE INDEX member_states_by_member ON member_states(member_id, at_ms, rowid);
CREATE TABLE terminal_downloads (
  terminal_id TEXT NOT NULL, at_ms BIGINT NOT NULL, PRIMARY KEY (terminal_id, at_ms));
CREATE TABLE spend_totals (
  member_id BIGINT NOT NULL, from_ms BIGINT NOT NULL, to_ms BIGINT NOT NULL, cents BIGINT NOT NULL,
  PRIMARY KEY (member_id, from_ms, to_ms));
CREATE TABLE store_members (
  store_id TEXT NOT NULL, member_id BIGINT NOT NULL, reason TEXT NOT NULL, last_at_ms BIGINT NOT NULL,
  PRIMARY KEY (store_id, member_id));
CREATE INDEX store_members_by_member ON store_members(member_id);
CREATE TABLE terminal_members (
  terminal_id TEXT NOT NULL, member_id BIGINT NOT NULL, PRIMARY KEY (terminal_id, member_id));
CREATE INDEX terminal_members_by_member ON terminal_members(member_id, terminal_id);
)sql",
    // 2: returns anywhere and who did it (docs/pos-api.md). A refund names the terminal
    // that sold the checkout (sold_at: the refunding terminal's own for every refund before
    // this version), so that the refunds of one sale at several terminals add up; refunds
    // and checkouts keep their cashier; the receipt keys HQ certified, by terminal.
    R"sql(
ALTER TABLE refunds ADD COLUMN sold_at TEXT NOT NULL DEFAULT '';
ALTER TABLE refunds ADD COLUMN cashier_id TEXT NOT NULL DEFAULT '';
ALTER TABLE refunds ADD COLUMN at_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE checkouts ADD COLUMN cashier_id TEXT NOT NULL DEFAULT '';
UPDATE refunds SET sold_at = terminal_id;
CREATE INDEX refunds_by_sale ON refunds(sold_at, checkout_id);
CREATE INDEX refunds_by_cashier ON refunds(cashier_id, at_ms) WHERE cashier_id <> '';
CREATE TABLE receipt_keys (
  terminal_id TEXT NOT NULL, public_key TEXT NOT NULL, certified_at_ms BIGINT NOT NULL,
  PRIMARY KEY (terminal_id, public_key));
)sql",
    // 3: phone look-up with consent (docs/pos-api.md, "Phone look-up"): the member's
    // consent, and HQ's own index of the chain-keyed phone hash for online look-ups.
    R"sql(
ALTER TABLE members ADD COLUMN phone_consent BIGINT NOT NULL DEFAULT 0;
CREATE INDEX members_by_phone ON members(phone_hash) WHERE phone_hash <> '';
)sql",
    // 4: sign-up at the till (docs/hq.md, "Claims"): a member's claim to the points of a
    // sale made without one, once per sale (terminal, checkout), and what became of it.
    R"sql(
CREATE TABLE claims (
  terminal_id TEXT NOT NULL, checkout_id TEXT NOT NULL, member_id BIGINT NOT NULL,
  committed_at_ms BIGINT NOT NULL, expires_at_s BIGINT NOT NULL, claimed_at_ms BIGINT NOT NULL,
  status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', points BIGINT NOT NULL DEFAULT 0,
  entry_id TEXT NOT NULL DEFAULT '', credited_at_ms BIGINT NOT NULL DEFAULT 0,
  clawed_back BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (terminal_id, checkout_id));
CREATE INDEX claims_by_member ON claims(member_id, claimed_at_ms);
CREATE INDEX claims_pending ON claims(terminal_id) WHERE status = 'pending';
)sql",
    // 5: a member's row changed in place. Every balance change gives the member a new
    // change_seq; while that column was indexed, each was a new row version with an entry in
    // every index of members. Nothing reads members by change_seq on PostgreSQL (a changes
    // page reads its store's scope, then each member by its key; the monthly tier walk goes
    // by member id), so without the index an update that leaves phone_hash alone is a
    // heap-only tuple, given room on its page.
    R"sql(
DROP INDEX members_by_change;
ALTER TABLE members SET (fillfactor = 85);
)sql",
    // 6: HQ's own entries of a member, read for every snapshot a terminal downloads
    // (hq-and-sync.md, "Download": adjustments, expiries, unfreezes, tier changes).
    R"sql(
CREATE INDEX entries_hq_by_member ON entries(member_id, seq) WHERE terminal_id = '_hq';
)sql",
    // 7: what a terminal could know (docs/hq.md): a changes page's download keeps the
    // cursor it gave, so that one the terminal never received is forgotten at its next
    // hello, and one HQ has no record of giving is refused; a look-up's or a repair's
    // counts for the members it carried only.
    R"sql(
ALTER TABLE terminal_downloads ADD COLUMN cursor_seq BIGINT;
CREATE INDEX terminal_downloads_by_cursor ON terminal_downloads(terminal_id, cursor_seq);
CREATE TABLE member_downloads (
  terminal_id TEXT NOT NULL, member_id BIGINT NOT NULL, at_ms BIGINT NOT NULL,
  PRIMARY KEY (terminal_id, member_id, at_ms));
)sql",
};
static_assert(std::size(kPgMigrations) == kPgSchemaVersion);

std::string LockSql(const char* fn, int64_t key) {
  return std::string("SELECT ") + fn + "(" + std::to_string(key) + ")";
}

struct PgBackend {
  using Db = pg::Db;
  using Stmt = pg::Stmt;
  using Set = recon::PgStore;

  static Status Migrate(Db& db) {
    if (Status s = db.Exec("SET lock_timeout = '30s'; SET idle_in_transaction_session_timeout = "
                           "'120s'");
        !s.ok())
      return s;
    if (db.server_major() < 12)
      return Status::Error(ErrorCode::kUnavailable, "PostgreSQL 12 or newer is required");
    if (Status s = db.Exec(LockSql("pg_advisory_lock", kMigrationLock)); !s.ok()) return s;
    Status s = MigrateLocked(db);
    (void)db.Exec(LockSql("pg_advisory_unlock", kMigrationLock));  // also freed at disconnect
    return s;
  }

  static Status MigrateLocked(Db& db) {
    if (Status s = db.Exec("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)");
        !s.ok())
      return s;
    int64_t v = 0;
    {
      auto st = db.Prepare("SELECT max(version) FROM schema_version");
      if (!st.ok()) return st.status();
      if ((*st)->Step()) v = (*st)->Int(0);
      if (!(*st)->status().ok()) return (*st)->status();
    }
    if (v > kPgSchemaVersion) {
      return Status::Error(ErrorCode::kUnavailable, "database schema version " + std::to_string(v) +
                                                        " is newer than this program (" +
                                                        std::to_string(kPgSchemaVersion) + ")");
    }
    for (; v < kPgSchemaVersion; ++v) {
      std::string sql = kPgMigrations[v];
      if (v == 0) {
        auto recon = recon::PgStore::TablesSql("recon_");
        if (!recon.ok()) return recon.status();
        sql += *recon;
      }
      Status s = db.Exec("BEGIN");
      if (s.ok()) s = db.Exec(sql);
      if (s.ok())
        s = db.Exec("DELETE FROM schema_version; INSERT INTO schema_version VALUES (" +
                    std::to_string(v + 1) + ")");
      if (s.ok()) s = db.Exec("COMMIT");
      if (!s.ok()) {
        (void)db.Exec("ROLLBACK");
        return Status::Error(s.code(),
                             "migration to schema " + std::to_string(v + 1) + ": " + s.message());
      }
    }
    return Status::Ok();
  }

  static Result<std::unique_ptr<Set>> OpenSet(Db& db, const std::string& scope) {
    return recon::PgStore::Open(db, "recon_", scope);
  }
  static Status Begin(Db& db) {
    Status s = db.Exec("BEGIN; " + LockSql("pg_advisory_xact_lock", kWriterLock));
    if (!s.ok() && db.in_transaction()) (void)db.Exec("ROLLBACK");
    return s;
  }
  // A write beside others (SqlStore::SharedTransaction): the writer lock shared, then each
  // key's lock in the order given, in one statement (a function in a select list runs row by
  // row, in the order unnest gives the array's elements).
  static constexpr bool kSharedWrites = true;
  static std::string KeyLocksSql(const std::vector<int64_t>& keys) {
    std::string sql = "SELECT count(pg_advisory_xact_lock(k)) FROM unnest('{";
    for (size_t i = 0; i < keys.size(); ++i) sql += (i ? "," : "") + std::to_string(keys[i]);
    return sql + "}'::bigint[]) AS k";
  }
  static Status BeginShared(Db& db, const std::vector<int64_t>& keys) {
    std::string sql = "BEGIN; " + LockSql("pg_advisory_xact_lock_shared", kWriterLock);
    if (!keys.empty()) sql += "; " + KeyLocksSql(keys);
    Status s = db.Exec(sql);
    if (!s.ok() && db.in_transaction()) (void)db.Exec("ROLLBACK");
    return s;
  }
  static bool IsReservedLock(int64_t key) { return key == kWriterLock || key == kMigrationLock; }
  static Status FoldIfDue(Set& set) { return set.FlushIfDue(); }
  static Result<bool> FoldDue(Set& set) { return set.FlushDue(); }
  static Status LockKeys(Db& db, const std::vector<int64_t>& keys) {
    return keys.empty() ? Status::Ok() : db.Exec(KeyLocksSql(keys));
  }
  static bool InTransaction(Db& db) { return db.in_transaction(); }
  // Lot ids for rows written later in the transaction (SqlStore::AddLot): the sequence's
  // next ?1, never handed out again; those the transaction leaves unused are a gap.
  static constexpr const char* kReserveLotIds =
      "SELECT nextval('lots_lot_id_seq') FROM generate_series(1, ?1)";
  static Status UpsertMany(const std::vector<std::pair<Set*, recon::Item>>& items, bool may_fold) {
    return recon::PgStore::UpsertMany(items, may_fold);
  }
  // A list parameter is a JSON array (SqlStore::ListText), as SQLite takes it. A membership
  // test is `= ANY(ARRAY(…))`: the array is built once (an InitPlan) and becomes an index
  // condition. `IN (SELECT json_array_elements_text(…))` let the planner, when it guessed a
  // table side of one row, run a nested loop that took the JSON apart again for every row
  // (360 ms for 1,000 ids against 1,165 spend_totals rows, 1 ms this way).
  static std::string InTexts(int n) {
    return "= ANY(ARRAY(SELECT json_array_elements_text(?" + std::to_string(n) + "::json)))";
  }
  static std::string InInts(int n) {
    return "= ANY(ARRAY(SELECT json_array_elements_text(?" + std::to_string(n) +
           "::json)::bigint))";
  }
  static std::string IntRows(int n) {
    return "(SELECT json_array_elements_text(?" + std::to_string(n) + "::json)::bigint)";
  }
  // A `changes` page reads the store's scope first (SqlStore::StoreMembersChangedAfter).
  static constexpr bool kLateralPages = true;
};

}  // namespace

// The fault seam arms both backends' statement layers with the same SQL fragment: the
// SQLite result code becomes the SQLSTATE PostgreSQL would give for the same failure.
void InjectStoreFault(const StoreFault& f) {
  sqlite::InjectStepFault({f.sql_contains, f.nth, f.count, f.rc});
  const int primary = f.rc & 0xff;
  const char* state = primary == SQLITE_CONSTRAINT                            ? "23505"
                      : primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB ? "XX001"
                      : primary == SQLITE_INTERNAL || primary == SQLITE_ERROR ? "XX000"
                                                                              : "58030";
  pg::InjectExecFault({f.sql_contains, f.nth, f.count, state});
}
void ClearStoreFaults() {
  sqlite::ClearStepFaults();
  pg::ClearExecFaults();
}
int StoreFaultsFired() { return sqlite::StepFaultsFired() + pg::ExecFaultsFired(); }

bool IsPostgresUri(const std::string& database) {
  return database.rfind("postgresql://", 0) == 0 || database.rfind("postgres://", 0) == 0;
}

Result<std::unique_ptr<Store>> OpenPgStore(const std::string& conninfo,
                                           const std::string& password) {
  auto db = pg::Db::Open(conninfo, password);
  if (!db.ok()) return db.status();
  auto store = std::make_unique<internal::SqlStore<PgBackend>>(std::move(*db));
  if (Status s = store->Init(); !s.ok()) return s;
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace loyalty::hq
