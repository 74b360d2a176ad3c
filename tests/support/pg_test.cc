// The suite's throwaway PostgreSQL server (scripts/pg-test-server, ctest fixture "postgres")
// and the fresh databases tests make on it (support/pg.h).
#include "support/pg.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <cstdlib>
#include <memory>
#include <string>

namespace loyalty::testing {
namespace {

struct ConnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, ConnCloser>;

// A connection with the URI as given (role loyalty over TCP) and `password`; `host` replaces
// the URI's host when given. No password file or PGPASSWORD is consulted.
Conn Open(const std::string& uri, const std::string& password, const std::string& host = "") {
  const char* keys[] = {
      "dbname", "password", "passfile", "connect_timeout", host.empty() ? nullptr : "host",
      nullptr};
  const char* values[] = {uri.c_str(), password.c_str(), "/nonexistent/pgpass",
                          "10",        host.c_str(),     nullptr};
  return Conn(PQconnectdbParams(keys, values, 1));
}

Conn Open(const TestDatabase& db) { return Open(db.uri, TestDatabasePassword(db)); }

// The first value of the first row of `sql`, or "ERROR: ..." when it fails.
std::string Scalar(PGconn* c, const std::string& sql) {
  PGresult* r = PQexec(c, sql.c_str());
  std::string out;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0) {
    out = PQgetisnull(r, 0, 0) ? "NULL" : PQgetvalue(r, 0, 0);
  } else {
    out = std::string("ERROR: ") + PQerrorMessage(c);
  }
  PQclear(r);
  return out;
}

void Exec(PGconn* c, const std::string& sql) {
  PGresult* r = PQexec(c, sql.c_str());
  EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << sql << ": " << PQerrorMessage(c);
  PQclear(r);
}

TEST(PgTestServer, TwoFreshDatabasesAreSeparateAndDropped) {
  TestDatabase a, b;
  LOYALTY_REQUIRE_POSTGRES(a);
  LOYALTY_REQUIRE_POSTGRES(b);
  EXPECT_NE(a.name, b.name);
  EXPECT_EQ(a.password_file, b.password_file);
  const std::string port_prefix = "postgresql://loyalty@127.0.0.1:";
  EXPECT_EQ(a.uri.rfind(port_prefix, 0), 0u) << a.uri;
  EXPECT_EQ(a.uri.substr(a.uri.size() - a.name.size() - 1), "/" + a.name);

  {
    Conn ca = Open(a), cb = Open(b);
    ASSERT_EQ(PQstatus(ca.get()), CONNECTION_OK) << PQerrorMessage(ca.get());
    ASSERT_EQ(PQstatus(cb.get()), CONNECTION_OK) << PQerrorMessage(cb.get());
    EXPECT_EQ(Scalar(ca.get(), "SELECT current_database()"), a.name);
    EXPECT_EQ(Scalar(cb.get(), "SELECT current_database()"), b.name);
    EXPECT_EQ(Scalar(ca.get(), "SELECT current_user"), "loyalty");

    Exec(ca.get(), "CREATE TABLE points (member text PRIMARY KEY, balance bigint NOT NULL)");
    Exec(ca.get(), "INSERT INTO points VALUES ('m1', 10), ('m2', 20)");
    // Not in the other database, which can have a table of the same name of its own.
    EXPECT_EQ(Scalar(cb.get(), "SELECT to_regclass('points') IS NULL"), "t");
    Exec(cb.get(), "CREATE TABLE points (member text PRIMARY KEY, balance bigint NOT NULL)");
    Exec(cb.get(), "INSERT INTO points VALUES ('m9', 5)");
    EXPECT_EQ(Scalar(ca.get(), "SELECT sum(balance) FROM points"), "30");
    EXPECT_EQ(Scalar(cb.get(), "SELECT sum(balance) FROM points"), "5");
  }
  {
    // A database dropped while a connection to it is open (WITH (FORCE)).
    Conn open_on_a = Open(a);
    ASSERT_EQ(PQstatus(open_on_a.get()), CONNECTION_OK);
    DropTestDatabase(a);
  }
  DropTestDatabase(b);
  DropTestDatabase(b);  // best effort: a second drop is harmless

  Conn gone = Open(a);
  EXPECT_EQ(PQstatus(gone.get()), CONNECTION_BAD);
  EXPECT_NE(std::string(PQerrorMessage(gone.get())).find("does not exist"), std::string::npos)
      << PQerrorMessage(gone.get());
  TestDatabase other;
  LOYALTY_REQUIRE_POSTGRES(other);
  Conn c = Open(other);
  ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK) << PQerrorMessage(c.get());
  EXPECT_EQ(Scalar(c.get(), "SELECT count(*) FROM pg_database WHERE datname IN ('" + a.name +
                                "', '" + b.name + "')"),
            "0");
  c.reset();
  DropTestDatabase(other);
}

TEST(PgTestServer, AWrongOrMissingPasswordIsRefused) {
  TestDatabase db;
  LOYALTY_REQUIRE_POSTGRES(db);
  {
    Conn wrong = Open(db.uri, TestDatabasePassword(db) + "x");
    EXPECT_EQ(PQstatus(wrong.get()), CONNECTION_BAD);
    EXPECT_NE(std::string(PQerrorMessage(wrong.get())).find("password authentication failed"),
              std::string::npos)
        << PQerrorMessage(wrong.get());
  }
  {
    const char* saved = std::getenv("PGPASSWORD");
    std::string saved_value = saved ? saved : "";
    ::unsetenv("PGPASSWORD");
    Conn none = Open(db.uri, "");
    if (saved) ::setenv("PGPASSWORD", saved_value.c_str(), 1);
    EXPECT_EQ(PQstatus(none.get()), CONNECTION_BAD);
    EXPECT_NE(std::string(PQerrorMessage(none.get())).find("no password supplied"),
              std::string::npos)
        << PQerrorMessage(none.get());
    // Closed here: until then its backend waits in authentication, where it holds up DROP
    // DATABASE (up to the server's authentication_timeout).
  }
  Conn right = Open(db);
  EXPECT_EQ(PQstatus(right.get()), CONNECTION_OK) << PQerrorMessage(right.get());
  right.reset();
  DropTestDatabase(db);
}

TEST(PgTestServer, ServesLoopbackAndItsOwnSocketWithDurableSettings) {
  TestDatabase db;
  LOYALTY_REQUIRE_POSTGRES(db);
  const std::string dir = std::getenv("LOYALTY_TEST_PG_DIR");
  {
    Conn c = Open(db);
    ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK) << PQerrorMessage(c.get());
    EXPECT_EQ(Scalar(c.get(), "SHOW listen_addresses"), "127.0.0.1");
    EXPECT_EQ(Scalar(c.get(), "SHOW fsync"), "on");
    EXPECT_EQ(Scalar(c.get(), "SHOW synchronous_commit"), "on");
    EXPECT_EQ(Scalar(c.get(), "SHOW password_encryption"), "scram-sha-256");
    EXPECT_EQ(Scalar(c.get(), "SELECT current_setting('server_version_num')::int / 10000"), "15");
    // The tests' role makes databases and nothing more.
    EXPECT_EQ(Scalar(c.get(),
                     "SELECT rolsuper::text || rolcreatedb::text || rolcreaterole::text "
                     "FROM pg_roles WHERE rolname = current_user"),
              "falsetruefalse");
  }
  // The unix socket lives in the server's folder and also asks for the password.
  Conn over_socket = Open(db.uri, TestDatabasePassword(db), dir);
  ASSERT_EQ(PQstatus(over_socket.get()), CONNECTION_OK) << PQerrorMessage(over_socket.get());
  EXPECT_EQ(Scalar(over_socket.get(), "SELECT inet_server_addr() IS NULL"), "t");
  EXPECT_EQ(PQstatus(Open(db.uri, "wrong", dir).get()), CONNECTION_BAD);
  over_socket.reset();
  DropTestDatabase(db);
}

// Without the variable there is no server: the helper says how to get one, and the macro
// fails the test (fatally) rather than skipping it.
void RequirePostgresIntoStatic() {
  static TestDatabase db;
  LOYALTY_REQUIRE_POSTGRES(db);
}

TEST(PgTestServerMissing, WithoutTheVariableTheTestFailsAndSaysHowToRunIt) {
  const char* saved = std::getenv("LOYALTY_TEST_PG_DIR");
  std::string saved_value = saved ? saved : "";
  ::unsetenv("LOYALTY_TEST_PG_DIR");
  std::string why;
  EXPECT_FALSE(FreshTestDatabase(&why).has_value());
  EXPECT_NE(why.find("LOYALTY_TEST_PG_DIR is not set"), std::string::npos) << why;
  EXPECT_NE(why.find("ctest"), std::string::npos) << why;
  EXPECT_NE(why.find("scripts/pg-test-server start DIR"), std::string::npos) << why;
  EXPECT_FATAL_FAILURE(RequirePostgresIntoStatic(), "LOYALTY_TEST_PG_DIR is not set");

  ::setenv("LOYALTY_TEST_PG_DIR", "/nonexistent/loyalty-pg", 1);
  EXPECT_FALSE(FreshTestDatabase(&why).has_value());
  EXPECT_NE(why.find("no PostgreSQL test server in /nonexistent/loyalty-pg"), std::string::npos)
      << why;
  EXPECT_FATAL_FAILURE(RequirePostgresIntoStatic(), "no PostgreSQL test server");

  if (saved) {
    ::setenv("LOYALTY_TEST_PG_DIR", saved_value.c_str(), 1);
  } else {
    ::unsetenv("LOYALTY_TEST_PG_DIR");
  }
}

}  // namespace
}  // namespace loyalty::testing
