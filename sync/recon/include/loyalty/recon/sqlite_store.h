// A reconciliation set kept inside the caller's SQLite database.
//
// Tables (created if missing; <p> is the table prefix):
//   <p>meta(name, value)               format version and the number of stored symbols
//   <p>scopes(scope_id, name)          one row per set; HQ keeps one set per terminal
//   <p>items(scope_id, id, tag)        the folded elements, by id
//   <p>blocks(scope_id, block, data)   symbols [64·block, 64·block + 64) of the folded set
//   <p>journal(scope_id, id, tag, old_tag)  changes not yet folded: id → new tag (NULL:
//                                      removed) and the folded tag it replaces (NULL: none)
//
// Why a journal: a durable commit here costs ~130 µs and every extra B-tree page it dirties
// adds ~14 µs, while an element lands in ~20 of the stored symbols spread over ~10 blocks.
// Add() therefore writes one journal row (one hot page) and reads fold the journal in on
// the fly, so every read is exact at all times; Flush() moves the journal into items and
// blocks in one savepoint. Both happen in the caller's transaction, so a rollback undoes
// them together with the caller's own writes, and the set is never out of step with it.
//
// Thread-safety: none beyond the connection's; use a store only from the thread that owns
// `db`. `db` must outlive the store. Several stores (scopes, prefixes) may share one
// connection. Reads never write.
#pragma once

#include <sqlite3.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loyalty/base/status.h"
#include "loyalty/recon/recon.h"

namespace loyalty::recon {
namespace internal {
template <class S>
struct JournalOps;
}  // namespace internal

class SqliteStore final : public FingerprintStore {
 public:
  struct Options {
    // Symbols kept for a table set created by this Open; an existing set keeps its own.
    uint64_t stored_symbols = kDefaultStoredSymbols;
    // Add/Upsert/Remove fold the journal into the blocks once it holds more rows than this
    // for the scope (checked every 1,024 changes). The owner should rather call Flush() at a
    // quiet moment (e.g. after each sync run); this only bounds the read cost if it forgets.
    size_t auto_flush_rows = 4096;
    // Open tables and a scope that exist already, writing nothing (the tables are not
    // created, the scope not added): for a read-only connection. The store's changes then
    // fail with SQLite's read-only error.
    bool existing_only = false;
  };

  // Creates the tables and the scope if missing. table_prefix: [A-Za-z0-9_]{0,32};
  // scope: any non-empty string (e.g. the terminal id, "entries", "balances").
  static Result<std::unique_ptr<SqliteStore>> Open(sqlite3* db, std::string table_prefix,
                                                   std::string scope);
  static Result<std::unique_ptr<SqliteStore>> Open(sqlite3* db, std::string table_prefix,
                                                   std::string scope, const Options& options);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // Same contracts as MemoryStore. Each is atomic on its own and runs inside the caller's
  // open transaction if there is one (the ledger calls Add in the transaction that inserts
  // the entry). Errors: bad_request (id not 16 bytes), conflict (Add of an id present
  // with another hash), internal (SQLite).
  Status Add(const Item& item);
  // Add of an id the caller knows the set has never held (a ledger entry appended just now,
  // whose id the entries table's unique key has just accepted): the look-up Add makes
  // first is skipped.
  Status AddNew(const Item& item);
  Status Upsert(const Item& item);
  Status Remove(std::string_view id);

  // Folds this scope's journal into items and blocks (one savepoint).
  Status Flush();
  // Journal rows of this scope not yet folded.
  Result<size_t> PendingChanges() const;
  // Number of items in the set (from symbol 0: O(pending), no scan).
  Result<uint64_t> Count() const;

  uint64_t stored_symbols() const override { return stored_symbols_; }
  Status ReadSymbols(uint64_t begin, uint64_t end, std::vector<Symbol>* out) const override;
  Status ListElements(const ElementId* after, size_t limit, std::vector<Element>* out,
                      bool* more) const override;

 private:
  template <class S>
  friend struct internal::JournalOps;
  struct Statements;
  SqliteStore(sqlite3* db, std::string prefix, int64_t scope_id, uint64_t stored_symbols,
              size_t auto_flush_rows);

  Status Prepare();
  // The tag the set holds for id now and the one folded into items (nullopt: absent).
  Status Lookup(const ElementId& id, std::optional<Tag>* current, std::optional<Tag>* folded) const;
  Status FoldedTag(const ElementId& id, bool* present, Tag* tag) const;
  Status WriteJournal(const ElementId& id, const std::optional<Tag>& tag,
                      const std::optional<Tag>& folded);
  Status MaybeAutoFlush();
  // The element changes the journal makes relative to the folded state.
  Status PendingDeltas(std::vector<std::pair<Element, int64_t>>* deltas) const;
  Status FlushLocked();

  sqlite3* db_;
  std::string prefix_;
  int64_t scope_id_;
  uint64_t stored_symbols_;
  size_t auto_flush_rows_;
  unsigned changes_since_check_ = 0;
  std::unique_ptr<Statements> st_;
};

}  // namespace loyalty::recon
