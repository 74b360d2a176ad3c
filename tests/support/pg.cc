#include "support/pg.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>

namespace loyalty::testing {
namespace {

constexpr const char* kDirVariable = "LOYALTY_TEST_PG_DIR";

struct ConnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, ConnCloser>;
struct ResultClearer {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultClearer>;

bool ReadTrimmed(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  *out = s.str();
  while (!out->empty() && std::isspace(static_cast<unsigned char>(out->back()))) out->pop_back();
  return true;
}

// Connects to database `dbname` with the parameters of `uri` (whose own database is replaced)
// and `password`.
Conn Connect(const std::string& uri, const std::string& dbname, const std::string& password,
             std::string* why) {
  // With expand_dbname, the first dbname is the URI; the second one overrides its database.
  const char* keys[] = {"dbname",          "dbname",           "password",
                        "connect_timeout", "application_name", nullptr};
  const char* values[] = {uri.c_str(), dbname.c_str(),    password.c_str(),
                          "10",        "loyalty_test_pg", nullptr};
  Conn c(PQconnectdbParams(keys, values, 1));
  if (!c || PQstatus(c.get()) != CONNECTION_OK) {
    if (why) *why = c ? PQerrorMessage(c.get()) : "out of memory";
    return nullptr;
  }
  return c;
}

bool Exec(PGconn* c, const std::string& sql, std::string* why) {
  Result r(PQexec(c, sql.c_str()));
  if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
    if (why) *why = PQerrorMessage(c);
    return false;
  }
  return true;
}

std::string Quoted(PGconn* c, const std::string& name) {
  char* q = PQescapeIdentifier(c, name.c_str(), name.size());
  if (!q) return "\"" + name + "\"";
  std::string out(q);
  PQfreemem(q);
  return out;
}

std::string UniqueName() {
  static std::mutex mu;
  static unsigned counter = 0;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  uint32_t bits = static_cast<uint32_t>(rng());
  char tail[16];
  std::snprintf(tail, sizeof tail, "%08x", bits);
  return "loyalty_test_" + std::to_string(::getpid()) + "_" + std::to_string(++counter) + "_" +
         tail;
}

}  // namespace

std::optional<TestDatabase> FreshTestDatabase(std::string* why) {
  std::string ignored;
  if (!why) why = &ignored;
  const char* dir_env = std::getenv(kDirVariable);
  if (!dir_env || !*dir_env) {
    *why = std::string(kDirVariable) +
           " is not set, so there is no PostgreSQL server for this test. Run it through ctest "
           "(its fixture \"postgres\" starts a throwaway server and sets the variable), or by "
           "hand: scripts/pg-test-server start DIR, then run the test with " +
           kDirVariable + "=DIR (and scripts/pg-test-server stop DIR after).";
    return std::nullopt;
  }
  const std::string dir = dir_env;
  const std::string hint = " (" + std::string(kDirVariable) + "=" + dir +
                           "; under ctest see the output of the test postgres_start, by hand "
                           "run scripts/pg-test-server start " +
                           dir + ")";
  std::string conninfo, port, password;
  if (!ReadTrimmed(dir + "/conninfo", &conninfo) || !ReadTrimmed(dir + "/port", &port)) {
    *why = "no PostgreSQL test server in " + dir + ": cannot read its conninfo and port" + hint;
    return std::nullopt;
  }
  TestDatabase db;
  db.password_file = dir + "/loyalty.password";
  if (!ReadTrimmed(db.password_file, &password) || password.empty()) {
    *why = "cannot read the password of role loyalty from " + db.password_file + hint;
    return std::nullopt;
  }
  std::string error;
  Conn c = Connect(conninfo, "postgres", password, &error);
  if (!c) {
    *why = "cannot connect to the PostgreSQL test server at " + conninfo + ": " + error + hint;
    return std::nullopt;
  }
  db.name = UniqueName();
  if (!Exec(c.get(), "CREATE DATABASE " + Quoted(c.get(), db.name), &error)) {
    *why = "CREATE DATABASE " + db.name + " failed on " + conninfo + ": " + error;
    return std::nullopt;
  }
  db.uri = "postgresql://loyalty@127.0.0.1:" + port + "/" + db.name;
  return db;
}

void DropTestDatabase(const TestDatabase& db) {
  if (db.name.empty()) return;
  Conn c = Connect(db.uri, "postgres", TestDatabasePassword(db), nullptr);
  if (!c) return;
  Exec(c.get(), "DROP DATABASE IF EXISTS " + Quoted(c.get(), db.name) + " WITH (FORCE)", nullptr);
}

std::string TestDatabasePassword(const TestDatabase& db) {
  std::string password;
  if (!ReadTrimmed(db.password_file, &password)) return "";
  return password;
}

}  // namespace loyalty::testing
