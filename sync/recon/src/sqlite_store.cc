#include "loyalty/recon/sqlite_store.h"

#include "blocks.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>

namespace loyalty::recon {
namespace {

using namespace internal;

Status SqlError(sqlite3* db, std::string_view what) {
  return Status::Error(ErrorCode::kInternal, std::string(what) + ": " + sqlite3_errmsg(db));
}

// Resets a prepared statement when leaving scope, so no statement stays active across the
// caller's COMMIT.
class Use {
 public:
  explicit Use(sqlite3_stmt* s) : s_(s) {}
  ~Use() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  sqlite3_stmt* get() const { return s_; }

 private:
  sqlite3_stmt* s_;
};

bool ReadId(sqlite3_stmt* s, int col, ElementId* id) {
  if (sqlite3_column_bytes(s, col) != static_cast<int>(kIdSize)) return false;
  std::memcpy(id->data(), sqlite3_column_blob(s, col), kIdSize);
  return true;
}

// Returns false for a NULL column; *ok false for a malformed one.
bool ReadTag(sqlite3_stmt* s, int col, Tag* tag, bool* ok) {
  *ok = true;
  if (sqlite3_column_type(s, col) == SQLITE_NULL) return false;
  if (sqlite3_column_bytes(s, col) != static_cast<int>(kTagSize)) {
    *ok = false;
    return false;
  }
  std::memcpy(tag->data(), sqlite3_column_blob(s, col), kTagSize);
  return true;
}

}  // namespace

struct SqliteStore::Statements {
  sqlite3_stmt* journal_get = nullptr;
  sqlite3_stmt* journal_put = nullptr;
  sqlite3_stmt* journal_scope = nullptr;
  sqlite3_stmt* journal_after = nullptr;
  sqlite3_stmt* journal_count = nullptr;
  sqlite3_stmt* journal_clear = nullptr;
  sqlite3_stmt* item_get = nullptr;
  sqlite3_stmt* item_put = nullptr;
  sqlite3_stmt* item_del = nullptr;
  sqlite3_stmt* items_after = nullptr;
  sqlite3_stmt* items_first = nullptr;
  sqlite3_stmt* blocks_range = nullptr;
  sqlite3_stmt* block_put = nullptr;

  ~Statements() {
    for (sqlite3_stmt* s :
         {journal_get, journal_put, journal_scope, journal_after, journal_count, journal_clear,
          item_get, item_put, item_del, items_after, items_first, blocks_range, block_put}) {
      sqlite3_finalize(s);
    }
  }
};

SqliteStore::SqliteStore(sqlite3* db, std::string prefix, int64_t scope_id, uint64_t stored_symbols,
                         size_t auto_flush_rows)
    : db_(db),
      prefix_(std::move(prefix)),
      scope_id_(scope_id),
      stored_symbols_(stored_symbols),
      auto_flush_rows_(auto_flush_rows),
      st_(std::make_unique<Statements>()) {}

SqliteStore::~SqliteStore() = default;

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(sqlite3* db, std::string table_prefix,
                                                       std::string scope) {
  return Open(db, std::move(table_prefix), std::move(scope), Options());
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(sqlite3* db, std::string p,
                                                       std::string scope, const Options& options) {
  if (db == nullptr) return Status::Error(ErrorCode::kBadRequest, "no database connection");
  if (!ValidPrefix(p))
    return Status::Error(ErrorCode::kBadRequest, "table prefix must match [A-Za-z0-9_]{0,32}");
  if (scope.empty()) return Status::Error(ErrorCode::kBadRequest, "scope must not be empty");
  if (options.stored_symbols < kBlockSymbols || options.stored_symbols > kMaxSymbolIndex ||
      options.stored_symbols % kBlockSymbols != 0) {
    return Status::Error(ErrorCode::kBadRequest,
                         "stored_symbols must be a multiple of 64 in [64, 2^24]");
  }
  const std::string ddl = "CREATE TABLE IF NOT EXISTS " + p +
                          "meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
                          "CREATE TABLE IF NOT EXISTS " +
                          p +
                          "scopes(scope_id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
                          "CREATE TABLE IF NOT EXISTS " +
                          p +
                          "items(scope_id INTEGER NOT NULL, id BLOB NOT NULL, tag BLOB NOT NULL,"
                          " PRIMARY KEY(scope_id, id)) WITHOUT ROWID;"
                          "CREATE TABLE IF NOT EXISTS " +
                          p +
                          "blocks(scope_id INTEGER NOT NULL, block INTEGER NOT NULL,"
                          " data BLOB NOT NULL, PRIMARY KEY(scope_id, block)) WITHOUT ROWID;"
                          "CREATE TABLE IF NOT EXISTS " +
                          p +
                          "journal(scope_id INTEGER NOT NULL, id BLOB NOT NULL, tag BLOB,"
                          " old_tag BLOB, PRIMARY KEY(scope_id, id)) WITHOUT ROWID;"
                          "INSERT OR IGNORE INTO " +
                          p + "meta(name, value) VALUES('format', " + std::to_string(kFormat) +
                          ");"
                          "INSERT OR IGNORE INTO " +
                          p + "meta(name, value) VALUES('stored_symbols', " +
                          std::to_string(options.stored_symbols) + ");";
  char* err = nullptr;
  if (!options.existing_only &&
      sqlite3_exec(db, ddl.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown";
    sqlite3_free(err);
    return Status::Error(ErrorCode::kInternal, "creating reconciliation tables: " + msg);
  }

  int64_t format = 0, stored = 0, scope_id = 0;
  {
    sqlite3_stmt* s = nullptr;
    std::string q = "SELECT name, value FROM " + p + "meta";
    if (sqlite3_prepare_v2(db, q.c_str(), -1, &s, nullptr) != SQLITE_OK)
      return SqlError(db, "reading meta");
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      std::string_view name(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)),
                            sqlite3_column_bytes(s, 0));
      if (name == "format") format = sqlite3_column_int64(s, 1);
      if (name == "stored_symbols") stored = sqlite3_column_int64(s, 1);
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) return SqlError(db, "reading meta");
  }
  if (format != kFormat)
    return Status::Error(ErrorCode::kInternal,
                         "unknown reconciliation table format " + std::to_string(format));
  if (stored < static_cast<int64_t>(kBlockSymbols) ||
      stored > static_cast<int64_t>(kMaxSymbolIndex) || stored % kBlockSymbols != 0) {
    return Status::Error(ErrorCode::kInternal, "corrupt stored_symbols in meta");
  }
  {
    sqlite3_stmt* s = nullptr;
    std::string q;
    int rc;
    if (!options.existing_only) {
      q = "INSERT INTO " + p + "scopes(name) VALUES(?1) ON CONFLICT(name) DO NOTHING";
      if (sqlite3_prepare_v2(db, q.c_str(), -1, &s, nullptr) != SQLITE_OK)
        return SqlError(db, "adding scope");
      sqlite3_bind_text(s, 1, scope.data(), static_cast<int>(scope.size()), SQLITE_TRANSIENT);
      rc = sqlite3_step(s);
      sqlite3_finalize(s);
      if (rc != SQLITE_DONE) return SqlError(db, "adding scope");
    }
    q = "SELECT scope_id FROM " + p + "scopes WHERE name = ?1";
    if (sqlite3_prepare_v2(db, q.c_str(), -1, &s, nullptr) != SQLITE_OK)
      return SqlError(db, "reading scope");
    sqlite3_bind_text(s, 1, scope.data(), static_cast<int>(scope.size()), SQLITE_TRANSIENT);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) scope_id = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    if (rc == SQLITE_DONE)
      return Status::Error(ErrorCode::kInternal,
                           "no reconciliation scope '" + scope + "' in this database");
    if (rc != SQLITE_ROW) return SqlError(db, "reading scope");
  }

  std::unique_ptr<SqliteStore> store(new SqliteStore(
      db, std::move(p), scope_id, static_cast<uint64_t>(stored), options.auto_flush_rows));
  if (Status s = store->Prepare(); !s.ok()) return s;
  return store;
}

Status SqliteStore::Prepare() {
  const std::string& p = prefix_;
  struct Def {
    sqlite3_stmt** slot;
    std::string sql;
  } defs[] = {
      {&st_->journal_get,
       "SELECT tag, old_tag FROM " + p + "journal WHERE scope_id = ?1 AND id = ?2"},
      // old_tag is the folded tag when the id first entered the journal; later changes
      // keep it, so the journal alone gives the delta against the folded state.
      {&st_->journal_put, "INSERT INTO " + p +
                              "journal(scope_id, id, tag, old_tag) VALUES(?1, ?2, ?3, ?4)"
                              " ON CONFLICT(scope_id, id) DO UPDATE SET tag = excluded.tag"},
      {&st_->journal_scope,
       "SELECT id, tag, old_tag FROM " + p + "journal WHERE scope_id = ?1 ORDER BY id"},
      {&st_->journal_after,
       "SELECT id, tag FROM " + p + "journal WHERE scope_id = ?1 AND id > ?2 ORDER BY id"},
      {&st_->journal_count, "SELECT count(*) FROM " + p + "journal WHERE scope_id = ?1"},
      {&st_->journal_clear, "DELETE FROM " + p + "journal WHERE scope_id = ?1"},
      {&st_->item_get, "SELECT tag FROM " + p + "items WHERE scope_id = ?1 AND id = ?2"},
      {&st_->item_put,
       "INSERT OR REPLACE INTO " + p + "items(scope_id, id, tag) VALUES(?1, ?2, ?3)"},
      {&st_->item_del, "DELETE FROM " + p + "items WHERE scope_id = ?1 AND id = ?2"},
      {&st_->items_after,
       "SELECT id, tag FROM " + p + "items WHERE scope_id = ?1 AND id > ?2 ORDER BY id"},
      {&st_->items_first, "SELECT id, tag FROM " + p + "items WHERE scope_id = ?1 ORDER BY id"},
      {&st_->blocks_range,
       "SELECT block, data FROM " + p + "blocks WHERE scope_id = ?1 AND block BETWEEN ?2 AND ?3"},
      {&st_->block_put,
       "INSERT OR REPLACE INTO " + p + "blocks(scope_id, block, data) VALUES(?1, ?2, ?3)"},
  };
  for (auto& d : defs) {
    if (sqlite3_prepare_v3(db_, d.sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, d.slot, nullptr) !=
        SQLITE_OK) {
      return SqlError(db_, "preparing reconciliation statement");
    }
  }
  return Status::Ok();
}

Status SqliteStore::FoldedTag(const ElementId& id, bool* present, Tag* tag) const {
  Use u(st_->item_get);
  sqlite3_bind_int64(u.get(), 1, scope_id_);
  sqlite3_bind_blob(u.get(), 2, id.data(), kIdSize, SQLITE_STATIC);
  int rc = sqlite3_step(u.get());
  *present = false;
  if (rc == SQLITE_ROW) {
    bool ok;
    *present = ReadTag(u.get(), 0, tag, &ok);
    if (!ok || !*present)
      return Status::Error(ErrorCode::kInternal, "malformed reconciliation item row");
    return Status::Ok();
  }
  if (rc != SQLITE_DONE) return SqlError(db_, "reading reconciliation item");
  return Status::Ok();
}

Status SqliteStore::Lookup(const ElementId& id, std::optional<Tag>* current,
                           std::optional<Tag>* folded) const {
  {
    Use u(st_->journal_get);
    sqlite3_bind_int64(u.get(), 1, scope_id_);
    sqlite3_bind_blob(u.get(), 2, id.data(), kIdSize, SQLITE_STATIC);
    int rc = sqlite3_step(u.get());
    if (rc == SQLITE_ROW) {
      Tag tag{}, old{};
      bool ok_new, ok_old;
      const bool has_new = ReadTag(u.get(), 0, &tag, &ok_new);
      const bool has_old = ReadTag(u.get(), 1, &old, &ok_old);
      if (!ok_new || !ok_old)
        return Status::Error(ErrorCode::kInternal, "malformed reconciliation journal row");
      *current = has_new ? std::optional<Tag>(tag) : std::nullopt;
      *folded = has_old ? std::optional<Tag>(old) : std::nullopt;
      return Status::Ok();
    }
    if (rc != SQLITE_DONE) return SqlError(db_, "reading reconciliation journal");
  }
  bool present = false;
  Tag tag{};
  if (Status s = FoldedTag(id, &present, &tag); !s.ok()) return s;
  *folded = present ? std::optional<Tag>(tag) : std::nullopt;
  *current = *folded;
  return Status::Ok();
}

Status SqliteStore::WriteJournal(const ElementId& id, const std::optional<Tag>& tag,
                                 const std::optional<Tag>& folded) {
  {
    Use u(st_->journal_put);
    sqlite3_bind_int64(u.get(), 1, scope_id_);
    sqlite3_bind_blob(u.get(), 2, id.data(), kIdSize, SQLITE_STATIC);
    if (tag) {
      sqlite3_bind_blob(u.get(), 3, tag->data(), kTagSize, SQLITE_STATIC);
    } else {
      sqlite3_bind_null(u.get(), 3);
    }
    if (folded) {
      sqlite3_bind_blob(u.get(), 4, folded->data(), kTagSize, SQLITE_STATIC);
    } else {
      sqlite3_bind_null(u.get(), 4);
    }
    if (sqlite3_step(u.get()) != SQLITE_DONE)
      return SqlError(db_, "writing reconciliation journal");
  }
  return MaybeAutoFlush();
}

Status SqliteStore::MaybeAutoFlush() {
  // Counting the journal costs ~40 µs at a few thousand rows: rare enough to stay out of
  // the commit latency's 99th percentile.
  if (++changes_since_check_ < kAutoFlushCheckEvery) return Status::Ok();
  changes_since_check_ = 0;
  auto pending = PendingChanges();
  if (!pending.ok()) return pending.status();
  if (*pending > auto_flush_rows_) return Flush();
  return Status::Ok();
}

Status SqliteStore::Add(const Item& item) { return JournalOps<SqliteStore>::Add(*this, item); }
Status SqliteStore::AddNew(const Item& item) {
  return JournalOps<SqliteStore>::AddNew(*this, item);
}
Status SqliteStore::Upsert(const Item& item) {
  return JournalOps<SqliteStore>::Upsert(*this, item);
}
Status SqliteStore::Remove(std::string_view id) {
  return JournalOps<SqliteStore>::Remove(*this, id);
}

Result<size_t> SqliteStore::PendingChanges() const {
  Use u(st_->journal_count);
  sqlite3_bind_int64(u.get(), 1, scope_id_);
  if (sqlite3_step(u.get()) != SQLITE_ROW) return SqlError(db_, "counting reconciliation journal");
  return static_cast<size_t>(sqlite3_column_int64(u.get(), 0));
}

Status SqliteStore::PendingDeltas(std::vector<std::pair<Element, int64_t>>* deltas) const {
  deltas->clear();
  Use u(st_->journal_scope);
  sqlite3_bind_int64(u.get(), 1, scope_id_);
  int rc;
  while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) {
    ElementId id;
    Tag tag{}, old{};
    bool ok_new, ok_old;
    if (!ReadId(u.get(), 0, &id))
      return Status::Error(ErrorCode::kInternal, "malformed reconciliation journal row");
    const bool has_new = ReadTag(u.get(), 1, &tag, &ok_new);
    const bool has_old = ReadTag(u.get(), 2, &old, &ok_old);
    if (!ok_new || !ok_old)
      return Status::Error(ErrorCode::kInternal, "malformed reconciliation journal row");
    if (has_new && has_old && tag == old) continue;
    if (has_old) deltas->emplace_back(Element{id, old}, -1);
    if (has_new) deltas->emplace_back(Element{id, tag}, +1);
  }
  if (rc != SQLITE_DONE) return SqlError(db_, "reading reconciliation journal");
  return Status::Ok();
}

Result<uint64_t> SqliteStore::Count() const {
  std::vector<Symbol> s0;
  if (Status s = ReadSymbols(0, 1, &s0); !s.ok()) return s;
  if (s0[0].count < 0) return Status::Error(ErrorCode::kInternal, "negative reconciliation count");
  return static_cast<uint64_t>(s0[0].count);
}

Status SqliteStore::ReadSymbols(uint64_t begin, uint64_t end, std::vector<Symbol>* out) const {
  if (begin > end || end > stored_symbols_)
    return Status::Error(ErrorCode::kBadRequest, "symbol range out of bounds");
  out->assign(end - begin, Symbol());
  if (begin == end) return Status::Ok();
  {
    Use u(st_->blocks_range);
    sqlite3_bind_int64(u.get(), 1, scope_id_);
    sqlite3_bind_int64(u.get(), 2, static_cast<int64_t>(begin / kBlockSymbols));
    sqlite3_bind_int64(u.get(), 3, static_cast<int64_t>((end - 1) / kBlockSymbols));
    Symbol block[kBlockSymbols];
    int rc;
    while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) {
      const uint64_t b = static_cast<uint64_t>(sqlite3_column_int64(u.get(), 0));
      if (!DecodeBlock(sqlite3_column_blob(u.get(), 1), sqlite3_column_bytes(u.get(), 1), block)) {
        return Status::Error(ErrorCode::kInternal, "malformed reconciliation block");
      }
      for (uint64_t i = 0; i < kBlockSymbols; ++i) {
        const uint64_t idx = b * kBlockSymbols + i;
        if (idx >= begin && idx < end) (*out)[idx - begin] = block[i];
      }
    }
    if (rc != SQLITE_DONE) return SqlError(db_, "reading reconciliation blocks");
  }
  std::vector<std::pair<Element, int64_t>> deltas;
  if (Status s = PendingDeltas(&deltas); !s.ok()) return s;
  for (const auto& [e, sign] : deltas) ApplyToRange(e, sign, begin, out);
  return Status::Ok();
}

Status SqliteStore::ListElements(const ElementId* after, size_t limit, std::vector<Element>* out,
                                 bool* more) const {
  out->clear();
  *more = false;
  // The journal overlay past `after`: small (bounded by auto_flush_rows), so held in memory.
  std::map<ElementId, std::optional<Tag>> overlay;
  {
    Use u(after ? st_->journal_after : st_->journal_scope);
    sqlite3_bind_int64(u.get(), 1, scope_id_);
    if (after) sqlite3_bind_blob(u.get(), 2, after->data(), kIdSize, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) {
      ElementId id;
      Tag tag{};
      bool ok;
      if (!ReadId(u.get(), 0, &id))
        return Status::Error(ErrorCode::kInternal, "malformed reconciliation journal row");
      bool has = ReadTag(u.get(), 1, &tag, &ok);
      if (!ok) return Status::Error(ErrorCode::kInternal, "malformed reconciliation journal row");
      overlay.emplace(id, has ? std::optional<Tag>(tag) : std::nullopt);
    }
    if (rc != SQLITE_DONE) return SqlError(db_, "reading reconciliation journal");
  }
  auto ov = overlay.begin();
  // Emits overlay additions that sort before `bound` (all of them when bound is null).
  auto drain_overlay = [&](const ElementId* bound) {
    while (ov != overlay.end() && (!bound || ov->first < *bound)) {
      if (ov->second) {
        if (out->size() == limit) {
          *more = true;
          return false;
        }
        out->push_back(Element{ov->first, *ov->second});
      }
      ++ov;
    }
    return true;
  };

  Use u(after ? st_->items_after : st_->items_first);
  sqlite3_bind_int64(u.get(), 1, scope_id_);
  if (after) sqlite3_bind_blob(u.get(), 2, after->data(), kIdSize, SQLITE_STATIC);
  int rc;
  while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) {
    ElementId id;
    Tag tag{};
    bool ok;
    if (!ReadId(u.get(), 0, &id) || !ReadTag(u.get(), 1, &tag, &ok)) {
      return Status::Error(ErrorCode::kInternal, "malformed reconciliation item row");
    }
    if (!drain_overlay(&id)) return Status::Ok();
    std::optional<Tag> effective = tag;
    if (ov != overlay.end() && ov->first == id) {
      effective = ov->second;
      ++ov;
    }
    if (!effective) continue;
    if (out->size() == limit) {
      *more = true;
      return Status::Ok();
    }
    out->push_back(Element{id, *effective});
  }
  if (rc != SQLITE_DONE) return SqlError(db_, "listing reconciliation items");
  drain_overlay(nullptr);
  return Status::Ok();
}

Status SqliteStore::Flush() {
  if (sqlite3_exec(db_, "SAVEPOINT recon_flush", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return SqlError(db_, "opening savepoint");
  }
  Status s = FlushLocked();
  if (!s.ok()) sqlite3_exec(db_, "ROLLBACK TO recon_flush", nullptr, nullptr, nullptr);
  if (sqlite3_exec(db_, "RELEASE recon_flush", nullptr, nullptr, nullptr) != SQLITE_OK && s.ok()) {
    return SqlError(db_, "releasing savepoint");
  }
  return s;
}

Status SqliteStore::FlushLocked() {
  std::vector<std::pair<Element, int64_t>> deltas;
  if (Status s = PendingDeltas(&deltas); !s.ok()) return s;
  if (deltas.empty()) {
    Use u(st_->journal_clear);
    sqlite3_bind_int64(u.get(), 1, scope_id_);
    if (sqlite3_step(u.get()) != SQLITE_DONE)
      return SqlError(db_, "clearing reconciliation journal");
    return Status::Ok();
  }
  // Fold into the whole stored prefix, then write back every block that changed.
  std::vector<Symbol> symbols;
  if (Status s = ReadSymbols(0, stored_symbols_, &symbols); !s.ok()) return s;
  std::vector<Symbol> folded;
  {
    // ReadSymbols already applied the journal; compare with the bare blocks to find the
    // blocks that changed.
    folded.assign(stored_symbols_, Symbol());
    for (const auto& [e, sign] : deltas) ApplyToRange(e, -sign, 0, &folded);
  }
  std::string blob;
  for (uint64_t b = 0; b < stored_symbols_ / kBlockSymbols; ++b) {
    bool changed = false;
    for (uint64_t i = b * kBlockSymbols; i < (b + 1) * kBlockSymbols && !changed; ++i)
      changed = !folded[i].IsZero();
    if (!changed) continue;
    EncodeBlock(&symbols[b * kBlockSymbols], &blob);
    Use u(st_->block_put);
    sqlite3_bind_int64(u.get(), 1, scope_id_);
    sqlite3_bind_int64(u.get(), 2, static_cast<int64_t>(b));
    sqlite3_bind_blob(u.get(), 3, blob.data(), static_cast<int>(blob.size()), SQLITE_STATIC);
    if (sqlite3_step(u.get()) != SQLITE_DONE) return SqlError(db_, "writing reconciliation block");
  }
  for (const auto& [e, sign] : deltas) {
    Use u(sign > 0 ? st_->item_put : st_->item_del);
    sqlite3_bind_int64(u.get(), 1, scope_id_);
    sqlite3_bind_blob(u.get(), 2, e.id.data(), kIdSize, SQLITE_STATIC);
    if (sign > 0) sqlite3_bind_blob(u.get(), 3, e.tag.data(), kTagSize, SQLITE_STATIC);
    if (sqlite3_step(u.get()) != SQLITE_DONE) return SqlError(db_, "writing reconciliation item");
  }
  Use u(st_->journal_clear);
  sqlite3_bind_int64(u.get(), 1, scope_id_);
  if (sqlite3_step(u.get()) != SQLITE_DONE) return SqlError(db_, "clearing reconciliation journal");
  return Status::Ok();
}

}  // namespace loyalty::recon
