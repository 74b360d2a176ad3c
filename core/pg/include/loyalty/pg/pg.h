// A thin RAII layer over libpq with the surface of loyalty/sqlite/sqlite.h, so that a store
// written against sqlite::Db and sqlite::Stmt is written against these too (HQ's store is
// one template over both: hq/src/sql_store.h).
//
// SQL is written once, in the dialect both engines share (ON CONFLICT … DO NOTHING/UPDATE,
// RETURNING), with SQLite's parameters: `?N` is $N here, and a bare `?` is one past the
// largest number seen so far, as in SQLite. Each distinct SQL text becomes one named
// prepared statement of the connection (PQprepare once, PQexecPrepared after).
//
// Values: integers and text travel as text, blobs as binary; a bytea column reads back as
// its raw bytes through Text(). Errors map to the codes the SQLite layer gives:
// unique/foreign-key/check violations are `constraint`; a lost connection, a serialisation
// failure, a deadlock, an administrator shutdown or too many connections are `unavailable`
// (the contract's 503: the caller may retry); anything else is `internal`. A connection
// found broken before a statement outside a transaction is reset once.
//
// Thread-safety: none. One Db per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "loyalty/base/status.h"

typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

namespace loyalty::pg {

// Test seam, as sqlite::InjectStepFault: makes the execution of statements whose SQL text
// contains `sql_contains` fail as PostgreSQL would with `sqlstate` ("08006": connection
// failure, `unavailable`; "23505": unique violation, `constraint`; "XX000": internal).
// The `nth` matching execution (1 = the next) and the `count - 1` after it fail; count < 0
// fails every one from the nth on. Process-wide.
struct ExecFault {
  std::string sql_contains;
  int nth = 1;
  int count = 1;
  std::string sqlstate = "08006";
};
void InjectExecFault(ExecFault f);
void ClearExecFaults();
int ExecFaultsFired();

// The Status of an SQLSTATE (five characters; "" for a connection-level failure).
Status PgError(std::string_view sqlstate, std::string_view message);

// SQLite-style parameters (`?`, `?N`) as PostgreSQL's ($N); *count: the largest number.
// Quoted strings, quoted identifiers and comments pass through unchanged.
std::string TranslateParams(std::string_view sql, int* count);

class Db;

class Stmt {
 public:
  Stmt(Db* db, const std::string* name, const std::string* sql, int nparams);
  Stmt(const Stmt&) = delete;
  ~Stmt();

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

  // The first call runs the statement; true while a row is available. Errors: status().
  bool Step();
  Status status() const { return status_; }
  Status Run();

  bool IsNull(int c) const;
  int64_t Int(int c) const;  // 0 for NULL, as SQLite
  std::string Text(int c) const;
  std::optional<int64_t> OptInt(int c) const {
    return IsNull(c) ? std::nullopt : std::optional<int64_t>(Int(c));
  }
  std::optional<std::string> OptText(int c) const {
    return IsNull(c) ? std::nullopt : std::optional<std::string>(Text(c));
  }

  // Rows the statement changed (INSERT/UPDATE/DELETE), once run.
  int64_t Changes() const { return changes_; }
  // Forgets the result and the values bound: the statement can run again.
  void Reset();

 private:
  // Execute: ExecuteOnce, and once more on a new session when a statement that changes
  // nothing (SELECT, BEGIN, SET) met a dead session outside a transaction.
  bool Execute();
  bool ExecuteOnce();

  Db* db_;
  const std::string* name_;
  const std::string* sql_;
  std::vector<std::optional<std::string>> values_;
  std::vector<int> formats_;
  PGresult* res_ = nullptr;
  int row_ = -1;
  int rows_ = 0;
  int64_t changes_ = 0;
  Status status_;
};

class Db {
 public:
  // conninfo: a libpq URI or key=value string; password: "" for none (then libpq's own
  // sources: PGPASSWORD, ~/.pgpass). `unavailable` when the server cannot be reached.
  static Result<std::unique_ptr<Db>> Open(const std::string& conninfo, const std::string& password);
  ~Db();
  Db(const Db&) = delete;

  // One or more statements with no parameters (DDL, BEGIN, COMMIT…). One that changes
  // nothing by itself (BEGIN, SELECT, SET) and meets a dead session outside a transaction is
  // sent once more on a new session; anything else fails `unavailable` and the next
  // statement reconnects.
  Status Exec(std::string_view sql);
  Result<std::unique_ptr<Stmt>> Prepare(const std::string& sql);
  Result<std::unique_ptr<Stmt>> Prepare(const char* literal_sql) {
    return Prepare(std::string(literal_sql));
  }
  // Rows the last statement run through Stmt::Run or Step changed.
  int64_t Changes() const { return changes_; }
  PGconn* raw() const { return conn_; }
  // Whether a transaction is open (BEGIN seen, not yet ended).
  bool in_transaction() const;
  // The server's major version (e.g. 15).
  int server_major() const;

 private:
  friend class Stmt;
  Db(PGconn* conn, std::string conninfo, std::string password)
      : conn_(conn), conninfo_(std::move(conninfo)), password_(std::move(password)) {}
  // Resets a broken connection when no transaction is open; false when still broken.
  bool EnsureConnected();
  Status ExecOnce(std::string_view sql);

  struct Prepared {
    std::string name, sql;
    int nparams = 0;
    bool ready = false;  // PQprepare done on this connection
  };
  PGconn* conn_;
  std::string conninfo_, password_;
  std::unordered_map<std::string, std::unique_ptr<Prepared>> cache_;
  int64_t changes_ = 0;
};

}  // namespace loyalty::pg
