#include "support/hq_store.h"

#include "loyalty/pg/pg.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <thread>

namespace loyalty::testing {
namespace {

struct Server {
  std::string conninfo;  // postgresql://loyalty@127.0.0.1:PORT/postgres
  std::string password;
  std::string password_file;
};

std::string ReadLine(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  return line;
}

Result<Server> TheServer() {
  const char* dir = std::getenv("LOYALTY_TEST_PG_DIR");
  if (!dir || !*dir)
    return Status::Error(ErrorCode::kUnavailable,
                         "LOYALTY_TEST_PG_DIR is not set: run the PostgreSQL tests through ctest "
                         "(its postgres fixture starts the server), or start one with "
                         "scripts/pg-test-server start DIR and set LOYALTY_TEST_PG_DIR=DIR");
  Server s;
  s.conninfo = ReadLine(std::filesystem::path(dir) / "conninfo");
  s.password_file = (std::filesystem::path(dir) / "loyalty.password").string();
  s.password = ReadLine(s.password_file);
  if (s.conninfo.empty())
    return Status::Error(ErrorCode::kUnavailable,
                         std::string("no conninfo in ") + dir + ": is the test server running?");
  return s;
}

// The URI of database `name` on the server (the conninfo names database "postgres").
std::string WithDatabase(const std::string& conninfo, const std::string& name) {
  const size_t slash = conninfo.rfind('/');
  return conninfo.substr(0, slash + 1) + name;
}

// Named after the folder and this process (a folder name a test reuses from run to run
// never meets a database an earlier run left behind).
std::string DatabaseName(const std::filesystem::path& dir) {
  std::ostringstream o;
  o << "hqt_" << ::getpid() << "_" << std::hex
    << std::hash<std::string>{}(std::filesystem::absolute(dir).string());
  return o.str();
}

Status OnServer(const Server& s, const std::string& sql, bool ignore_duplicate) {
  const char* keys[] = {"dbname", "password", nullptr};
  const char* vals[] = {s.conninfo.c_str(), s.password.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keys, vals, 1);
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c);
    PQfinish(c);
    return Status::Error(ErrorCode::kUnavailable, "test PostgreSQL: " + msg);
  }
  PGresult* r = PQexec(c, sql.c_str());
  Status st;
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (!(ignore_duplicate && state && std::string(state) == "42P04"))
      st = Status::Error(ErrorCode::kInternal, sql + ": " + PQresultErrorMessage(r));
  }
  PQclear(r);
  PQfinish(c);
  return st;
}

}  // namespace

bool HqOnPostgres() {
  const char* b = std::getenv("LOYALTY_TEST_HQ_BACKEND");
  return b && std::string(b) == "postgres";
}

const char* HqBackendName() { return HqOnPostgres() ? "postgres" : "sqlite"; }

Result<std::unique_ptr<hq::Store>> OpenTestHqStore(const std::filesystem::path& dir) {
  if (!HqOnPostgres()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    return hq::OpenSqliteStore((dir / "hq.db").string());
  }
  auto s = TheServer();
  if (!s.ok()) return s.status();
  const std::string name = DatabaseName(dir);
  if (Status st = OnServer(*s, "CREATE DATABASE " + name, /*ignore_duplicate=*/true); !st.ok())
    return st;
  return hq::OpenPgStore(WithDatabase(s->conninfo, name), s->password);
}

std::string TestHqDatabaseToml(const std::filesystem::path& dir, std::string* why,
                               const std::filesystem::path& config_dir) {
  if (!HqOnPostgres()) return "database = \"hq.db\"\n";
  auto s = TheServer();
  if (!s.ok()) {
    *why = s.status().message();
    return {};
  }
  const std::string name = DatabaseName(dir);
  if (Status st = OnServer(*s, "CREATE DATABASE " + name, true); !st.ok()) {
    *why = st.message();
    return {};
  }
  const auto pw = (config_dir.empty() ? dir : config_dir) / "pg.password";
  {
    std::ofstream out(pw);
    out << s->password << "\n";
  }
  ::chmod(pw.c_str(), 0600);
  return "database = \"" + WithDatabase(s->conninfo, name) +
         "\"\ndatabase_password_file = \"pg.password\"\n";
}

namespace {

// Runs sql on the store's database; *out: the first column of the first row, if any.
Status RunOnStore(const std::filesystem::path& dir, const std::string& sql,
                  const std::vector<SqlParam>& params, std::optional<int64_t>* out) {
  if (!HqOnPostgres()) {
    sqlite3* db = nullptr;
    if (sqlite3_open((dir / "hq.db").string().c_str(), &db) != SQLITE_OK) {
      sqlite3_close(db);
      return Status::Error(ErrorCode::kUnavailable, "cannot open hq.db");
    }
    sqlite3_stmt* st = nullptr;
    Status result;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      result = Status::Error(ErrorCode::kInternal, sqlite3_errmsg(db));
    } else {
      for (size_t i = 0; i < params.size(); ++i) {
        const auto& p = params[i];
        if (p.blob)
          sqlite3_bind_blob(st, static_cast<int>(i + 1), p.value.data(),
                            static_cast<int>(p.value.size()), SQLITE_TRANSIENT);
        else
          sqlite3_bind_text(st, static_cast<int>(i + 1), p.value.data(),
                            static_cast<int>(p.value.size()), SQLITE_TRANSIENT);
      }
      int rc = sqlite3_step(st);
      if (rc == SQLITE_ROW && out) *out = sqlite3_column_int64(st, 0);
      while (rc == SQLITE_ROW) rc = sqlite3_step(st);
      if (rc != SQLITE_DONE) result = Status::Error(ErrorCode::kInternal, sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return result;
  }
  auto s = TheServer();
  if (!s.ok()) return s.status();
  auto db = pg::Db::Open(WithDatabase(s->conninfo, DatabaseName(dir)), s->password);
  if (!db.ok()) return db.status();
  auto st = (*db)->Prepare(sql);
  if (!st.ok()) return st.status();
  for (size_t i = 0; i < params.size(); ++i) {
    if (params[i].blob)
      (*st)->BindBlob(static_cast<int>(i + 1), params[i].value);
    else
      (*st)->Bind(static_cast<int>(i + 1), params[i].value);
  }
  if ((*st)->Step() && out) *out = (*st)->Int(0);
  return (*st)->Run();
}

}  // namespace

Status ExecOnTestHqStore(const std::filesystem::path& dir, const std::string& sql,
                         const std::vector<SqlParam>& params) {
  return RunOnStore(dir, sql, params, nullptr);
}

Result<int64_t> QueryIntOnTestHqStore(const std::filesystem::path& dir, const std::string& sql) {
  std::optional<int64_t> v;
  if (Status s = RunOnStore(dir, sql, {}, &v); !s.ok()) return s;
  return v.value_or(-1);
}

Result<std::string> RawTestHqStoreBytes(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  if (!HqOnPostgres()) {
    for (const auto& f : std::filesystem::directory_iterator(dir)) files.push_back(f.path());
  } else {
    auto s = TheServer();
    if (!s.ok()) return s.status();
    const std::filesystem::path server_dir = std::getenv("LOYALTY_TEST_PG_DIR");
    // CHECKPOINT needs the superuser; the database's files are named by its oid.
    Server su = *s;
    su.conninfo.replace(su.conninfo.find("loyalty@"), 8, "postgres@");
    su.password = ReadLine(server_dir / "superuser.password");
    if (Status st = OnServer(su, "CHECKPOINT", false); !st.ok()) return st;
    auto oid = QueryIntOnTestHqStore(dir,
                                     "SELECT oid FROM pg_database WHERE datname = "
                                     "current_database()");
    if (!oid.ok()) return oid.status();
    for (const auto& sub :
         {server_dir / "data" / "base" / std::to_string(*oid), server_dir / "data" / "pg_wal"}) {
      for (const auto& f : std::filesystem::directory_iterator(sub))
        if (f.is_regular_file()) files.push_back(f.path());
    }
  }
  std::string all;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    all.append(std::istreambuf_iterator<char>(in), {});
  }
  return all;
}

Status DropTestHqStore(const std::filesystem::path& dir) {
  if (!HqOnPostgres()) return Status::Ok();
  auto s = TheServer();
  if (!s.ok()) return s.status();
  Status last;
  for (int attempt = 0; attempt < 10; ++attempt) {
    last = OnServer(*s, "DROP DATABASE IF EXISTS " + DatabaseName(dir) + " WITH (FORCE)", false);
    if (last.ok()) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return last;
}

}  // namespace loyalty::testing
