// A thin RAII layer over the SQLite C API: a connection with a statement cache, and
// statements with typed binds and column reads. Not thread-safe: one Db per thread.
//
// Damage: SQLite reports a damaged file as SQLITE_CORRUPT or SQLITE_NOTADB. Whichever
// connection sees one first latches the file as damaged (Db::damaged()), for every
// connection of this process to the same file, until all of them are closed; the error
// itself becomes the status code "ledger_damaged". The latch never clears while the file
// is open: a damaged file is moved aside and replaced (docs/operations.md).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "loyalty/base/status.h"

namespace loyalty::sqlite {

// The damage latch of one database file, shared by its connections. Thread-safe.
class DamageLatch {
 public:
  bool damaged() const;
  std::string reason() const;  // empty while not damaged
  // Latches with this reason unless already latched; the first latch calls the callback
  // (on the latching thread). Returns whether this call latched.
  bool Latch(const std::string& reason);
  // Called once when the file is first latched, or at once if it is already.
  void OnDamaged(std::function<void(const std::string& reason)> f);

 private:
  mutable std::mutex mu_;
  bool damaged_ = false;
  std::string reason_;
  std::function<void(const std::string&)> on_damaged_;
};

// Test seam, in the manner of LevelDB's ErrorEnv: makes a statement step fail as SQLite
// would, so tests drive the real ledger code on a real file through each failing read.
// A fault matches statements whose SQL text contains `sql_contains`; the `nth` matching
// step (1 = the next) and the `count - 1` after it fail with `rc` (SQLITE_IOERR,
// SQLITE_CORRUPT, SQLITE_FULL, …); count < 0 fails every one from the nth on.
// Process-wide; costs one relaxed atomic load per step while none is armed.
struct StepFault {
  std::string sql_contains;
  int nth = 1;
  int count = 1;
  int rc = SQLITE_IOERR;
};
void InjectStepFault(StepFault f);
void ClearStepFaults();
// How many injected faults have fired since the last ClearStepFaults().
int StepFaultsFired();

class Stmt {
 public:
  Stmt(sqlite3* db, sqlite3_stmt* s, DamageLatch* damage = nullptr)
      : db_(db), s_(s), damage_(damage) {}
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
  std::optional<int64_t> OptInt(int c) const {
    return IsNull(c) ? std::nullopt : std::optional<int64_t>(Int(c));
  }
  std::optional<std::string> OptText(int c) const {
    return IsNull(c) ? std::nullopt : std::optional<std::string>(Text(c));
  }

  void Reset();

 private:
  sqlite3* db_;
  sqlite3_stmt* s_;
  DamageLatch* damage_;
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

  // The first `n` bytes of the main database file (fewer when it is shorter), read through
  // SQLite's own handle of it: never through a descriptor of this program's, whose close
  // would release the POSIX locks SQLite holds on the file (see db_file.cc).
  Result<std::string> ReadFileHead(size_t n);

  // The file's damage latch (see the top of this file).
  bool damaged() const { return damage_->damaged(); }
  DamageLatch& damage() { return *damage_; }
  // The status of an SQLite error on this connection (SqliteError), latching the file as
  // damaged when rc is a corruption.
  Status Error(int rc, std::string_view what);

 private:
  Db(sqlite3* db, std::shared_ptr<DamageLatch> damage) : db_(db), damage_(std::move(damage)) {}
  sqlite3* db_;
  std::shared_ptr<DamageLatch> damage_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
  std::unordered_map<const char*, sqlite3_stmt*> by_literal_;
};

// Maps an SQLite result code to a Status: busy/locked/full/io errors are "unavailable"
// (the contract's 503), corrupt/notadb "ledger_damaged" (also 503), a constraint
// "constraint"; everything else "internal".
Status SqliteError(sqlite3* db, int rc, std::string_view what);
// Whether rc (primary or extended) says the file is damaged.
bool IsCorruption(int rc);

}  // namespace loyalty::sqlite
