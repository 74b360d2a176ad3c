// HQ's store for a test, on the backend the run asks for: SQLite (<dir>/hq.db) by default,
// PostgreSQL when LOYALTY_TEST_HQ_BACKEND=postgres — then a database of the run's
// throwaway server (LOYALTY_TEST_PG_DIR, scripts/pg-test-server) named after `dir`, so that
// opening the same folder again opens the same database (a restart), and each test folder
// has a database of its own. ctest runs the HQ store, service and sync suites once per
// backend (tests/CMakeLists.txt, loyalty_add_test BOTH_BACKENDS).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "loyalty/base/status.h"
#include "loyalty/hq/store.h"

namespace loyalty::testing {

// Whether this run's HQ backend is PostgreSQL.
bool HqOnPostgres();
// "sqlite" or "postgres": for test names and messages.
const char* HqBackendName();

// Opens (creating on first use) the store of `dir` on this run's backend.
Result<std::unique_ptr<hq::Store>> OpenTestHqStore(const std::filesystem::path& dir);

// The hq.toml lines that make a loyalty-hq process use the store of `dir`: `database = ...`
// and, on PostgreSQL, `database_password_file = ...` (a 0600 copy of the password written
// into config_dir, the folder of that hq.toml; default: dir). Empty on failure, *why set.
std::string TestHqDatabaseToml(const std::filesystem::path& dir, std::string* why,
                               const std::filesystem::path& config_dir = {});

// SQL straight on the store's database, behind the store's back (a row an older version
// wrote, a damaged row, a count): in the dialect both engines share, `?` parameters bound
// as text, or as a blob when `blob`. QueryInt: the first column of the first row (-1: none).
struct SqlParam {
  std::string value;
  bool blob = false;
};
Status ExecOnTestHqStore(const std::filesystem::path& dir, const std::string& sql,
                         const std::vector<SqlParam>& params = {});
Result<int64_t> QueryIntOnTestHqStore(const std::filesystem::path& dir, const std::string& sql);

// Every byte the store's database keeps on disk, to search for what must never be there:
// the files of `dir` on SQLite; on PostgreSQL (after a CHECKPOINT) the database's table
// files and the server's write-ahead log.
Result<std::string> RawTestHqStoreBytes(const std::filesystem::path& dir);

// Drops the PostgreSQL database of `dir` (nothing on SQLite).
// Retried a few times (a DROP can meet a session still closing); the last error if it
// never went.
Status DropTestHqStore(const std::filesystem::path& dir);

}  // namespace loyalty::testing
