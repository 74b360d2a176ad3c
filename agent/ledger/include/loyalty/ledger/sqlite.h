// A thin RAII layer over the SQLite C API: a connection with a statement cache, and
// statements with typed binds and column reads. Not thread-safe: one Db per thread.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "loyalty/base/status.h"

namespace loyalty::ledger {

class Stmt {
 public:
  Stmt(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}
  Stmt(const Stmt&) = delete;
  ~Stmt() { Reset(); }

  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, int v) { return Bind(i, static_cast<int64_t>(v)); }
  Stmt& Bind(int i, uint64_t v) { return Bind(i, static_cast<int64_t>(v)); }
  Stmt& Bind(int i, std::string_view v);
  Stmt& Bind(int i, const char* v) { return Bind(i, std::string_view(v)); }
  Stmt& Bind(int i, const std::string& v) { return Bind(i, std::string_view(v)); }
  Stmt& BindBlob(int i, std::string_view v);
  Stmt& BindNull(int i);
  template <typename T>
  Stmt& Bind(int i, const std::optional<T>& v) {
    return v ? Bind(i, *v) : BindNull(i);
  }

  // true: a row is available; false: done. Errors are returned through status().
  bool Step();
  Status status() const { return status_; }
  // Runs to completion; returns the error, if any.
  Status Run();

  bool IsNull(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
  int64_t Int(int c) const { return sqlite3_column_int64(s_, c); }
  std::string Text(int c) const;
  std::optional<int64_t> OptInt(int c) const { return IsNull(c) ? std::nullopt : std::optional<int64_t>(Int(c)); }
  std::optional<std::string> OptText(int c) const { return IsNull(c) ? std::nullopt : std::optional<std::string>(Text(c)); }

  void Reset();

 private:
  sqlite3* db_;
  sqlite3_stmt* s_;
  Status status_;
};

class Db {
 public:
  static Result<std::unique_ptr<Db>> Open(const std::string& path, bool read_only);
  ~Db();
  Db(const Db&) = delete;

  Status Exec(std::string_view sql);
  // A cached prepared statement, reset when the returned Stmt goes out of scope.
  // Nested use of the same SQL text is not allowed.
  Result<std::unique_ptr<Stmt>> Prepare(const std::string& sql);
  // The same for SQL in a string literal (static storage: the cache is keyed by the
  // pointer), which spares the hot paths building and comparing the text at every call.
  Result<std::unique_ptr<Stmt>> Prepare(const char* literal_sql);
  sqlite3* raw() const { return db_; }
  int64_t LastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }
  int Changes() const { return sqlite3_changes(db_); }

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
  std::unordered_map<const char*, sqlite3_stmt*> by_literal_;
};

// Maps an SQLite result code to a Status: busy/locked/full/io errors are "unavailable"
// (the contract's 503); everything else "internal".
Status SqliteError(sqlite3* db, int rc, std::string_view what);

}  // namespace loyalty::ledger
