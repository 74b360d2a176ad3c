// What the load generator runs against: loyalty-hq processes (on a SQLite file or on a
// database of a PostgreSQL server made by scripts/pg-test-server), and the measures taken
// of them: CPU time of each process (and of the whole PostgreSQL server), the load average,
// statement counts from pg_stat_statements, and the holders and waiters of HQ's writer lock.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "loyalty/base/status.h"
#include "loyalty/pg/pg.h"

namespace loyalty::hqload {

// user + system CPU time of a process so far, ms (-1: gone).
double ProcessCpuMs(pid_t pid);
// This process's CPU time (every thread), ms.
double SelfCpuMs();
std::string LoadAverage();  // "1.23 1.10 0.98"
double LoadAverage1();

// The throwaway server of scripts/pg-test-server in `dir`.
struct PgServer {
  std::filesystem::path dir;
  uint16_t port = 0;
  std::string loyalty_password, superuser_password;
  pid_t postmaster = -1;

  static Result<PgServer> Open(const std::filesystem::path& dir);
  std::string Uri(const std::string& db, const std::string& user = "loyalty") const;
  Result<std::unique_ptr<pg::Db>> Connect(const std::string& db, bool superuser = false) const;
  // The server's CPU time so far: the postmaster, its live children and those it reaped.
  double CpuMs() const;
  // Each statement on its own (DDL such as CREATE DATABASE refuses a transaction block).
  Status Admin(const std::vector<std::string>& statements,
               const std::string& db = "postgres") const;
};

// A loyalty-hq process with a folder of its own (hq.toml, keys, log).
class HqProcess {
 public:
  struct Tls {
    std::string cert_file, key_file, client_ca_file, ca_file;
  };
  // `database_toml`: the `database = …` line(s) of hq.toml.
  HqProcess(std::filesystem::path dir, std::string database_toml, Tls tls);
  ~HqProcess();
  // Starts it and waits until GET /v1/health answers 200 (at most timeout_ms).
  Status Start(int timeout_ms = 30000);
  int Stop();   // SIGTERM; the exit status
  void Kill();  // SIGKILL, reaped
  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  const std::filesystem::path& dir() const { return dir_; }
  std::string ReadLog() const;
  // The admin API (bearer token, TLS without a client certificate): status and body.
  Result<std::pair<int, std::string>> Admin(const std::string& method, const std::string& target,
                                            const std::string& body = "") const;

 private:
  std::filesystem::path dir_;
  Tls tls_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

std::string AdminToken();
uint16_t FreePort();

// Samples pg_locks every `period_ms` on a connection of its own: whether HQ's writer lock
// (hq/src/pg_store.cc, kWriterLock) is held and how many wait for it.
class WriterLockSampler {
 public:
  WriterLockSampler(const PgServer& server, const std::string& db, int period_ms);
  ~WriterLockSampler();
  void Stop();
  struct Figures {
    int64_t samples = 0;
    double held_fraction = 0;  // samples where a transaction held it
    double mean_waiters = 0;   // transactions waiting for it, on average
    int64_t max_waiters = 0;
  };
  Figures figures() const;

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> samples_{0}, held_{0}, waiters_{0}, max_waiters_{0};
  std::thread thread_;
};

// pg_stat_statements of one database, when the server loads it (scripts/hq-load sets
// shared_preload_libraries): reset before a phase, read after.
class StatementStats {
 public:
  StatementStats(const PgServer& server, const std::string& db);
  bool available() const { return available_; }
  void Reset();
  struct Row {
    std::string query;
    int64_t calls = 0;
    double total_ms = 0;
    int64_t rows = 0;
  };
  // Every statement run in the database since Reset, most total time first.
  std::vector<Row> Read();
  // Statements run so far and their time inside PostgreSQL (one query on a kept
  // connection: cheap enough to take between the steps of a run).
  std::pair<int64_t, double> Totals();

 private:
  const PgServer& server_;
  std::string db_;
  bool available_ = false;
  std::unique_ptr<pg::Db> kept_;
};

// Round trips of a prepared `SELECT 1` on one connection, as loyalty-hq makes them (libpq,
// extended protocol, one at a time): microseconds, sorted.
std::vector<double> PgRoundTrips(const PgServer& server, const std::string& db, int n);

// pg_stat_wal and pg_stat_database of the server: WAL syncs and bytes, commits.
struct WalFigures {
  int64_t wal_records = 0, wal_bytes = 0, wal_sync = 0;
  double wal_sync_ms = 0;
  int64_t xact_commit = 0;
  WalFigures& operator+=(const WalFigures& o) {
    wal_records += o.wal_records;
    wal_bytes += o.wal_bytes;
    wal_sync += o.wal_sync;
    wal_sync_ms += o.wal_sync_ms;
    xact_commit += o.xact_commit;
    return *this;
  }
};
std::optional<WalFigures> ReadWal(const PgServer& server, const std::string& db);
// What grew from `before` to `after`.
WalFigures WalGrowth(const WalFigures& before, const WalFigures& after);

}  // namespace loyalty::hqload
