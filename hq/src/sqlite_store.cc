// The SQLite backend of hq::Store: one file, WAL, synchronous=FULL, migrations by
// user_version. The store itself is sql_store.h's, shared with PostgreSQL.
#include <iterator>
#include <memory>

#include "loyalty/hq/store.h"
#include "loyalty/recon/sqlite_store.h"
#include "loyalty/sqlite/sqlite.h"
#include "sql_store.h"

namespace loyalty::hq {
namespace {

constexpr int kSchemaVersion = 9;

constexpr const char* kMigrations[] = {
    // 1: everything.
    R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE change_counter (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
INSERT INTO change_counter VALUES (1, 0);
CREATE TABLE members (
  member_id INTEGER PRIMARY KEY, name_enc BLOB, phone_enc BLOB, birthday_enc BLOB,
  display_name TEXT, phone_masked TEXT, phone_hash TEXT NOT NULL, birthday_month INTEGER NOT NULL,
  card_number TEXT NOT NULL, tier TEXT NOT NULL, status TEXT NOT NULL, frozen_reason TEXT NOT NULL,
  unfrozen_at_ms INTEGER NOT NULL, balance INTEGER NOT NULL, created_at_ms INTEGER NOT NULL,
  change_seq INTEGER NOT NULL);
CREATE INDEX members_by_change ON members(change_seq);
CREATE TABLE identities (
  channel TEXT NOT NULL, external_id TEXT NOT NULL, member_id INTEGER NOT NULL,
  PRIMARY KEY (channel, external_id));
CREATE INDEX identities_by_member ON identities(member_id);
CREATE TABLE entries (
  entry_id TEXT NOT NULL UNIQUE, terminal_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
  member_id INTEGER NOT NULL, points INTEGER NOT NULL, at_ms INTEGER NOT NULL, checkout_id TEXT NOT NULL,
  refund_id TEXT NOT NULL, detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE INDEX entries_by_terminal ON entries(terminal_id, seq);
CREATE INDEX entries_by_member ON entries(member_id);
CREATE TABLE lots (
  lot_id INTEGER PRIMARY KEY AUTOINCREMENT, member_id INTEGER NOT NULL, points INTEGER NOT NULL,
  remaining INTEGER NOT NULL, earned_at_s INTEGER NOT NULL, expires_at_s INTEGER NOT NULL,
  entry_id TEXT NOT NULL);
CREATE INDEX lots_by_member ON lots(member_id, expires_at_s, lot_id);
CREATE INDEX lots_by_expiry ON lots(expires_at_s) WHERE remaining > 0;
CREATE TABLE checkouts (
  terminal_id TEXT NOT NULL, checkout_id TEXT NOT NULL, member_id INTEGER, committed_at_ms INTEGER NOT NULL,
  total_due_cents INTEGER NOT NULL, code_hash TEXT NOT NULL, coupon_id TEXT NOT NULL, body TEXT NOT NULL,
  PRIMARY KEY (terminal_id, checkout_id));
CREATE INDEX checkouts_by_member ON checkouts(member_id, committed_at_ms);
CREATE INDEX checkouts_by_code ON checkouts(code_hash) WHERE code_hash <> '';
CREATE INDEX checkouts_by_coupon ON checkouts(coupon_id) WHERE coupon_id <> '';
CREATE TABLE refunds (
  terminal_id TEXT NOT NULL, refund_id TEXT NOT NULL, checkout_id TEXT NOT NULL, refund_cents INTEGER NOT NULL,
  body TEXT NOT NULL, PRIMARY KEY (terminal_id, refund_id));
CREATE INDEX refunds_by_checkout ON refunds(terminal_id, checkout_id);
CREATE TABLE coupons (
  coupon_id TEXT PRIMARY KEY, member_id INTEGER NOT NULL, kind TEXT NOT NULL, value_cents INTEGER NOT NULL,
  bp INTEGER NOT NULL, min_spend_cents INTEGER NOT NULL, valid_from_s INTEGER NOT NULL, valid_to_s INTEGER NOT NULL,
  body_hash TEXT NOT NULL, used_by_terminal TEXT NOT NULL, used_by_checkout TEXT NOT NULL,
  change_seq INTEGER NOT NULL);
CREATE TABLE devices (
  device_public_key TEXT PRIMARY KEY, member_id INTEGER NOT NULL, key_id INTEGER NOT NULL,
  not_after_s INTEGER NOT NULL, issued_at_ms INTEGER NOT NULL);
CREATE TABLE revocations (
  device_public_key TEXT PRIMARY KEY, at_ms INTEGER NOT NULL, change_seq INTEGER NOT NULL);
CREATE TABLE adjustments (
  adjustment_id TEXT PRIMARY KEY, member_id INTEGER NOT NULL, points INTEGER NOT NULL, reason TEXT NOT NULL,
  entry_id TEXT NOT NULL, at_ms INTEGER NOT NULL);
CREATE TABLE conflicts (
  id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, at_ms INTEGER NOT NULL, terminal_id TEXT NOT NULL,
  other_terminal_id TEXT NOT NULL, member_id INTEGER NOT NULL, detail TEXT NOT NULL, dedupe_key TEXT NOT NULL UNIQUE);
CREATE INDEX conflicts_by_member ON conflicts(member_id);
CREATE INDEX conflicts_by_terminal ON conflicts(terminal_id);
CREATE INDEX conflicts_by_other ON conflicts(other_terminal_id);
CREATE TABLE terminals (
  terminal_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, first_seen_ms INTEGER NOT NULL,
  last_sync_ms INTEGER NOT NULL, head_seq INTEGER NOT NULL, head_hash TEXT NOT NULL);
)sql",
    // 2: what HQ trusts: refused entries, checkouts and refunds; what terminals could know.
    R"sql(
ALTER TABLE entries ADD COLUMN applied INTEGER NOT NULL DEFAULT 1;
ALTER TABLE entries ADD COLUMN received_at_ms INTEGER NOT NULL DEFAULT 0;
CREATE INDEX entries_by_member_kind ON entries(member_id, kind, at_ms);
CREATE INDEX entries_by_checkout ON entries(terminal_id, checkout_id) WHERE checkout_id <> '';
ALTER TABLE checkouts ADD COLUMN refused INTEGER NOT NULL DEFAULT 0;
ALTER TABLE refunds ADD COLUMN refused INTEGER NOT NULL DEFAULT 0;
CREATE TABLE member_states (
  member_id INTEGER NOT NULL, at_ms INTEGER NOT NULL, tier TEXT NOT NULL, status TEXT NOT NULL);
CREATE INDEX member_states_by_member ON member_states(member_id, at_ms);
CREATE TABLE terminal_downloads (
  terminal_id TEXT NOT NULL, at_ms INTEGER NOT NULL, PRIMARY KEY (terminal_id, at_ms)) WITHOUT ROWID;
)sql",
    // 3: what every uploaded checkout and entry asks, read from indexes alone: the month's
    // spend (MemberSpend, at every accepted checkout and snapshot), the chain-wide velocity
    // sum (EarnedBetween, at every applied earn), and a member's debt lots (DebtLots, at
    // every credit). Not partial where a statement binds the condition's column to a
    // parameter (`kind` here): SQLite would prepare it again at every new value. The new
    // entries index begins with member_id: the old one on member_id alone only cost writes.
    R"sql(
DROP INDEX checkouts_by_member;
CREATE INDEX checkouts_by_member ON checkouts(member_id, committed_at_ms, refused, total_due_cents, terminal_id,
  checkout_id);
DROP INDEX entries_by_member_kind;
DROP INDEX entries_by_member;
CREATE INDEX entries_by_member_kind ON entries(member_id, kind, applied, at_ms, points);
CREATE INDEX lots_debt ON lots(member_id, expires_at_s, lot_id) WHERE remaining < 0;
CREATE TABLE spend_totals (
  member_id INTEGER NOT NULL, from_ms INTEGER NOT NULL, to_ms INTEGER NOT NULL, cents INTEGER NOT NULL,
  PRIMARY KEY (member_id, from_ms, to_ms)) WITHOUT ROWID;
)sql",
    // 4: member scope. A store's terminals hold the members enrolled there, that shopped
    // there or were asked for there lately (store_members); each terminal's balance set
    // covers the members it holds (terminal_members). Terminals that synced before this
    // version were sent every member: they hold them all, their stores keep them in scope
    // as if asked for now, and their balance sets are made at the next start.
    R"sql(
CREATE TABLE store_members (
  store_id TEXT NOT NULL, member_id INTEGER NOT NULL, reason TEXT NOT NULL, last_at_ms INTEGER NOT NULL,
  PRIMARY KEY (store_id, member_id)) WITHOUT ROWID;
CREATE INDEX store_members_by_member ON store_members(member_id);
CREATE TABLE terminal_members (
  terminal_id TEXT NOT NULL, member_id INTEGER NOT NULL, PRIMARY KEY (terminal_id, member_id)) WITHOUT ROWID;
CREATE INDEX terminal_members_by_member ON terminal_members(member_id, terminal_id);
INSERT INTO terminal_members SELECT t.terminal_id, m.member_id FROM terminals t CROSS JOIN members m;
INSERT OR IGNORE INTO store_members SELECT DISTINCT t.store_id, m.member_id, 'asked',
  CAST(strftime('%s', 'now') AS INTEGER) * 1000 FROM terminals t CROSS JOIN members m;
INSERT INTO meta SELECT 'rebuild_balance_sets', '1' WHERE EXISTS (SELECT 1 FROM terminals);
)sql",
    // 5: returns anywhere and who did it (docs/pos-api.md). A refund names the terminal
    // that sold the checkout (sold_at: the refunding terminal's own for every refund before
    // this version), so that the refunds of one sale at several terminals add up; refunds
    // and checkouts keep their cashier; the receipt keys HQ certified, by terminal.
    R"sql(
ALTER TABLE refunds ADD COLUMN sold_at TEXT NOT NULL DEFAULT '';
ALTER TABLE refunds ADD COLUMN cashier_id TEXT NOT NULL DEFAULT '';
ALTER TABLE refunds ADD COLUMN at_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE checkouts ADD COLUMN cashier_id TEXT NOT NULL DEFAULT '';
UPDATE refunds SET sold_at = terminal_id;
CREATE INDEX refunds_by_sale ON refunds(sold_at, checkout_id);
CREATE INDEX refunds_by_cashier ON refunds(cashier_id, at_ms) WHERE cashier_id <> '';
CREATE TABLE receipt_keys (
  terminal_id TEXT NOT NULL, public_key TEXT NOT NULL, certified_at_ms INTEGER NOT NULL,
  PRIMARY KEY (terminal_id, public_key));
)sql",
    // 6: phone look-up with consent (docs/pos-api.md, "Phone look-up"): the member's
    // consent, and HQ's own index of the chain-keyed phone hash for online look-ups.
    R"sql(
ALTER TABLE members ADD COLUMN phone_consent INTEGER NOT NULL DEFAULT 0;
CREATE INDEX members_by_phone ON members(phone_hash) WHERE phone_hash <> '';
)sql",
    // 7: sign-up at the till (docs/hq.md, "Claims"): a member's claim to the points of a
    // sale made without one, once per sale (terminal, checkout), and what became of it.
    R"sql(
CREATE TABLE claims (
  terminal_id TEXT NOT NULL, checkout_id TEXT NOT NULL, member_id INTEGER NOT NULL,
  committed_at_ms INTEGER NOT NULL, expires_at_s INTEGER NOT NULL, claimed_at_ms INTEGER NOT NULL,
  status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', points INTEGER NOT NULL DEFAULT 0,
  entry_id TEXT NOT NULL DEFAULT '', credited_at_ms INTEGER NOT NULL DEFAULT 0,
  clawed_back INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (terminal_id, checkout_id));
CREATE INDEX claims_by_member ON claims(member_id, claimed_at_ms);
CREATE INDEX claims_pending ON claims(terminal_id) WHERE status = 'pending';
)sql",
    // 8: HQ's own entries of a member, read for every snapshot a terminal downloads
    // (hq-and-sync.md, "Download": adjustments, expiries, unfreezes, tier changes).
    R"sql(
CREATE INDEX entries_hq_by_member ON entries(member_id, seq) WHERE terminal_id = '_hq';
)sql",
    // 9: what a terminal could know (docs/hq.md): a changes page's download keeps the
    // cursor it gave, so that one the terminal never received is forgotten at its next
    // hello, and one HQ has no record of giving is refused; a look-up's or a repair's
    // counts for the members it carried only.
    R"sql(
ALTER TABLE terminal_downloads ADD COLUMN cursor_seq INTEGER;
CREATE INDEX terminal_downloads_by_cursor ON terminal_downloads(terminal_id, cursor_seq);
CREATE TABLE member_downloads (
  terminal_id TEXT NOT NULL, member_id INTEGER NOT NULL, at_ms INTEGER NOT NULL,
  PRIMARY KEY (terminal_id, member_id, at_ms)) WITHOUT ROWID;
)sql",
};
static_assert(std::size(kMigrations) == kSchemaVersion);

struct SqliteBackend {
  using Db = sqlite::Db;
  using Stmt = sqlite::Stmt;
  using Set = recon::SqliteStore;

  static Status Migrate(Db& db) {
    if (Status s = db.Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"); !s.ok()) return s;
    int64_t v = -1;
    {
      auto st = db.Prepare("PRAGMA user_version");
      if (!st.ok()) return st.status();
      if ((*st)->Step()) v = (*st)->Int(0);
    }
    if (v < 0)
      return Status::Error(ErrorCode::kUnavailable, "cannot read the database's schema version");
    if (v > kSchemaVersion) {
      return Status::Error(ErrorCode::kUnavailable, "database schema version " + std::to_string(v) +
                                                        " is newer than this program (" +
                                                        std::to_string(kSchemaVersion) + ")");
    }
    for (; v < kSchemaVersion; ++v) {
      Status s = db.Exec("BEGIN IMMEDIATE");
      if (s.ok()) s = db.Exec(kMigrations[v]);
      if (s.ok()) s = db.Exec("PRAGMA user_version=" + std::to_string(v + 1));
      if (s.ok()) s = db.Exec("COMMIT");
      if (!s.ok()) {
        (void)db.Exec("ROLLBACK");  // the migration's own error is the one to report
        return Status::Error(s.code(),
                             "migration to schema " + std::to_string(v + 1) + ": " + s.message());
      }
    }
    return Status::Ok();
  }

  static Result<std::unique_ptr<Set>> OpenSet(Db& db, const std::string& scope) {
    return recon::SqliteStore::Open(db.raw(), "recon_", scope);
  }
  static Status Begin(Db& db) { return db.Exec("BEGIN IMMEDIATE"); }
  static bool InTransaction(Db& db) { return !sqlite3_get_autocommit(db.raw()); }
  // One writer at a time: a SharedTransaction is a Transaction, and the sets fold on their own.
  static constexpr bool kSharedWrites = false;
  static Status BeginShared(Db& db, const std::vector<int64_t>&) { return Begin(db); }
  static bool IsReservedLock(int64_t) { return false; }
  static Status FoldIfDue(Set&) { return Status::Ok(); }
  static Result<bool> FoldDue(Set&) { return false; }
  static Status LockKeys(Db&, const std::vector<int64_t>&) { return Status::Ok(); }
  static Status UpsertMany(const std::vector<std::pair<Set*, recon::Item>>& items, bool) {
    for (const auto& [set, item] : items)  // in order: a later item for the same id wins
      if (Status s = set->Upsert(item); !s.ok()) return s;
    return Status::Ok();
  }
  // A list parameter is a JSON array (SqlStore::ListText).
  // Lot ids for rows written later in the transaction (SqlStore::AddLot): ?1 after both the
  // highest lot id and AUTOINCREMENT's high-water mark. The write holds the database, and
  // reserves again only after its queued lots are written.
  static constexpr const char* kReserveLotIds =
      "WITH RECURSIVE ids(v) AS (SELECT max(coalesce((SELECT max(lot_id) FROM lots), 0), "
      "coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'lots'), 0)) + 1 UNION ALL SELECT "
      "v + 1 FROM ids LIMIT ?1) SELECT v FROM ids";
  static std::string InTexts(int n) {
    return "IN (SELECT value FROM json_each(?" + std::to_string(n) + "))";
  }
  static std::string InInts(int n) { return InTexts(n); }
  static std::string IntRows(int n) {
    return "(SELECT value FROM json_each(?" + std::to_string(n) + "))";
  }
  // A `changes` page as written (SqlStore::StoreMembersChangedAfter).
  static constexpr bool kLateralPages = false;
};

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path) {
  auto db = sqlite::Db::Open(path, /*read_only=*/false);
  if (!db.ok()) return db.status();
  auto store = std::make_unique<internal::SqlStore<SqliteBackend>>(std::move(*db));
  if (Status s = store->Init(); !s.ok()) return s;
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace loyalty::hq
