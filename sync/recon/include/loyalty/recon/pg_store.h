// A reconciliation set kept inside the caller's PostgreSQL database: the tables and the
// journal design of sqlite_store.h (Add writes one journal row; reads fold the journal in;
// Flush folds it into items and blocks), on a pg::Db.
//
// What differs from SQLite: several HQ processes share the database, so every read is one
// statement (blocks and journal, or items and journal, in one snapshot), and a read never
// sees half of another process's Flush. Writes run in the caller's transaction (HQ's, which
// serialises writers); Flush outside one opens its own.
//
// The tables are made by CreateTables (HQ's migrations), never by Open: DDL from several
// processes at start would race.
//
// Thread-safety: none; use a store only from the thread that owns `db`, which must outlive it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loyalty/base/status.h"
#include "loyalty/pg/pg.h"
#include "loyalty/recon/recon.h"

namespace loyalty::recon {
namespace internal {
template <class S>
struct JournalOps;
}  // namespace internal

class PgStore final : public FingerprintStore {
 public:
  struct Options {
    uint64_t stored_symbols = kDefaultStoredSymbols;  // for tables CreateTables makes
    size_t auto_flush_rows = 4096;
  };

  // The DDL of the tables under `table_prefix` ([A-Za-z0-9_]{0,32}), for a migration.
  static Result<std::string> TablesSql(const std::string& table_prefix,
                                       uint64_t stored_symbols = kDefaultStoredSymbols);
  // Opens the set `scope` (added if missing) of tables TablesSql made.
  static Result<std::unique_ptr<PgStore>> Open(pg::Db& db, std::string table_prefix,
                                               std::string scope);
  static Result<std::unique_ptr<PgStore>> Open(pg::Db& db, std::string table_prefix,
                                               std::string scope, const Options& options);
  PgStore(const PgStore&) = delete;
  PgStore& operator=(const PgStore&) = delete;

  // The contracts of SqliteStore.
  Status Add(const Item& item);
  Status AddNew(const Item& item);
  Status Upsert(const Item& item);
  Status Remove(std::string_view id);
  // Upsert of many items into many sets of one database and table prefix, in two
  // statements per 1,000 items however many sets they touch (the journal row of each, its
  // folded tag read in the same statement): what Upsert of each in turn leaves, for a writer
  // that changes thousands of items in one transaction. A later item for the same set and
  // id wins.
  // With may_fold false, no set is folded however long its journal grows (for a writer that
  // may run beside another writing the same sets: a fold then would fold the other's rows
  // wrongly); FlushIfDue folds it later.
  static Status UpsertMany(const std::vector<std::pair<PgStore*, Item>>& items,
                           bool may_fold = true);
  Status Flush();
  // Flush when the journal holds more than the auto-flush size.
  Status FlushIfDue();
  Result<bool> FlushDue() const;  // whether FlushIfDue would flush
  Result<size_t> PendingChanges() const;
  Result<uint64_t> Count() const;

  uint64_t stored_symbols() const override { return stored_symbols_; }
  Status ReadSymbols(uint64_t begin, uint64_t end, std::vector<Symbol>* out) const override;
  Status ListElements(const ElementId* after, size_t limit, std::vector<Element>* out,
                      bool* more) const override;

 private:
  template <class S>
  friend struct internal::JournalOps;
  PgStore(pg::Db& db, std::string prefix, int64_t scope_id, uint64_t stored_symbols,
          size_t auto_flush_rows);
  std::string Sql(const char* fmt) const;  // "{p}" replaced by the prefix
  Status Lookup(const ElementId& id, std::optional<Tag>* current, std::optional<Tag>* folded) const;
  Status WriteJournal(const ElementId& id, const std::optional<Tag>& tag,
                      const std::optional<Tag>& folded);
  Status PendingDeltas(std::vector<std::pair<Element, int64_t>>* deltas) const;
  Status FlushLocked();
  Status NoteWrites(size_t n);  // the auto-flush check of WriteJournal, for n rows at once

  pg::Db& db_;
  std::string prefix_;
  int64_t scope_id_;
  uint64_t stored_symbols_;
  size_t auto_flush_rows_;
  unsigned changes_since_check_ = 0;
  // Statement texts, built once.
  std::string journal_get_, journal_put_, journal_scope_, journal_count_, journal_clear_, item_get_,
      items_put_many_, items_del_many_, symbols_, elements_, block_put_;
};

}  // namespace loyalty::recon
