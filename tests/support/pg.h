// A fresh PostgreSQL database per test, on the throwaway server of the suite.
//
// ctest starts the server once (test postgres_start, fixture "postgres": scripts/pg-test-server
// start build/<dir>/pg) and sets LOYALTY_TEST_PG_DIR for every test added with
// loyalty_add_test(... POSTGRES). Each test then makes databases of its own:
//
//   TEST(Store, Something) {
//     loyalty::testing::TestDatabase db;
//     LOYALTY_REQUIRE_POSTGRES(db);  // fails the test when there is no server
//     ... connect to db.uri with the password in db.password_file ...
//     loyalty::testing::DropTestDatabase(db);
//   }
//
// By hand: scripts/pg-test-server start /tmp/pg && LOYALTY_TEST_PG_DIR=/tmp/pg ./the_test
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace loyalty::testing {

struct TestDatabase {
  // postgresql://loyalty@127.0.0.1:<port>/<name>: role loyalty over TCP, no password in it.
  std::string uri;
  // The file holding the password of role loyalty (just the password, no newline; 0600).
  std::string password_file;
  // The database's name (lower case letters, digits and '_'; unique per call).
  std::string name;
};

// A new, empty database owned by role loyalty on the server in $LOYALTY_TEST_PG_DIR, named from
// the pid, a counter and random bits. nullopt, with the reason in *why, when the variable is
// unset or the server cannot be reached or refuses.
std::optional<TestDatabase> FreshTestDatabase(std::string* why);

// Drops the database, closing any connection still open to it (DROP DATABASE ... WITH (FORCE)).
// Best effort: errors are ignored (the whole server is thrown away at the end of the run).
void DropTestDatabase(const TestDatabase& db);

// The password of role loyalty, read from db.password_file (trailing whitespace removed; ""
// when it cannot be read).
std::string TestDatabasePassword(const TestDatabase& db);

}  // namespace loyalty::testing

// Makes a fresh database and assigns it to `db` (an lvalue TestDatabase: a local, or a member
// in SetUp). Without a server it FAILS the test (fatal, not a skip): under ctest the server is
// always there, so its absence is a real failure. Use it where ASSERT_* may be used.
#define LOYALTY_REQUIRE_POSTGRES(db)                                                \
  do {                                                                              \
    std::string loyalty_require_postgres_why;                                       \
    std::optional<::loyalty::testing::TestDatabase> loyalty_require_postgres_db =   \
        ::loyalty::testing::FreshTestDatabase(&loyalty_require_postgres_why);       \
    if (!loyalty_require_postgres_db) GTEST_FAIL() << loyalty_require_postgres_why; \
    (db) = std::move(*loyalty_require_postgres_db);                                 \
  } while (0)
