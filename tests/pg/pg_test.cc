// core/pg against the suite's throwaway PostgreSQL: the SQLite surface (binds, steps,
// NULLs, blobs with every byte), SQLite-style parameters, error codes, the fault seam, and
// a connection the server drops, reset at the next statement outside a transaction.
#include "loyalty/pg/pg.h"

#include <gtest/gtest.h>

#include "support/pg.h"

namespace loyalty::pg {
namespace {

TEST(PgParams, SqliteStyleParametersBecomePostgresOnes) {
  int n = 0;
  EXPECT_EQ(TranslateParams("SELECT ?, ?", &n), "SELECT $1, $2");
  EXPECT_EQ(n, 2);
  EXPECT_EQ(TranslateParams("WHERE a = ?2 AND b = ?1 OR c = ?2", &n),
            "WHERE a = $2 AND b = $1 OR c = $2");
  EXPECT_EQ(n, 2);
  // A bare ? after numbered ones is one past the largest, as in SQLite.
  EXPECT_EQ(TranslateParams("?3 ? ?", &n), "$3 $4 $5");
  EXPECT_EQ(n, 5);
  // Quoted text, quoted names and comments keep their question marks.
  EXPECT_EQ(TranslateParams("SELECT '?', \"a?\" -- why?\n, ?", &n),
            "SELECT '?', \"a?\" -- why?\n, $1");
  EXPECT_EQ(n, 1);
  EXPECT_EQ(TranslateParams("SELECT 1", &n), "SELECT 1");
  EXPECT_EQ(n, 0);
  EXPECT_EQ(TranslateParams("'unterminated ?", &n), "'unterminated ?");
}

TEST(PgErrors, SqlStatesMapToTheCodesOfTheSqliteLayer) {
  EXPECT_EQ(PgError("23505", "dup").code(), ErrorCode::kConstraint);
  EXPECT_EQ(PgError("23502", "null").code(), ErrorCode::kConstraint);
  for (const char* s : {"08006", "40001", "40P01", "53300", "55P03", "57P01", "58030", ""})
    EXPECT_EQ(PgError(s, "x").code(), ErrorCode::kUnavailable) << s;
  for (const char* s : {"42P01", "22021", "55000", "55006", "XX000", "XX001"})
    EXPECT_EQ(PgError(s, "x").code(), ErrorCode::kInternal) << s;
}

class PgDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LOYALTY_REQUIRE_POSTGRES(db_);
    auto d = Db::Open(db_.uri, loyalty::testing::TestDatabasePassword(db_));
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    conn_ = std::move(*d);
  }
  void TearDown() override {
    conn_.reset();
    ClearExecFaults();
    loyalty::testing::DropTestDatabase(db_);
  }
  loyalty::testing::TestDatabase db_;
  std::unique_ptr<Db> conn_;
};

TEST_F(PgDbTest, ValuesGoInAndComeBackAsTheyWere) {
  ASSERT_TRUE(conn_->Exec("CREATE TABLE t (i BIGINT, s TEXT, b BYTEA)").ok());
  std::string all_bytes;
  for (int c = 0; c < 256; ++c) all_bytes.push_back(static_cast<char>(c));
  struct Row {
    std::optional<int64_t> i;
    std::optional<std::string> s, b;
  };
  const std::vector<Row> rows = {
      {INT64_MIN, "", all_bytes},
      {INT64_MAX, "张三 ' \" ? $1", std::string()},
      {0, std::nullopt, std::nullopt},
      {std::nullopt, "x", std::string(70000, '\0')},
  };
  for (const auto& r : rows) {
    auto st = conn_->Prepare("INSERT INTO t (i, s, b) VALUES (?, ?, ?)");
    ASSERT_TRUE(st.ok());
    (*st)->Bind(1, r.i).Bind(2, r.s);
    r.b ? (*st)->BindBlob(3, *r.b) : (*st)->BindNull(3);
    ASSERT_TRUE((*st)->Run().ok()) << (*st)->status().ToString();
    EXPECT_EQ((*st)->Changes(), 1);
  }
  auto st = conn_->Prepare("SELECT i, s, b FROM t ORDER BY ctid");
  ASSERT_TRUE(st.ok());
  size_t n = 0;
  while ((*st)->Step()) {
    ASSERT_LT(n, rows.size());
    EXPECT_EQ((*st)->OptInt(0), rows[n].i) << n;
    EXPECT_EQ((*st)->OptText(1), rows[n].s) << n;
    EXPECT_EQ((*st)->OptText(2), rows[n].b) << n;
    ++n;
  }
  EXPECT_TRUE((*st)->status().ok());
  EXPECT_EQ(n, rows.size());
}

TEST_F(PgDbTest, ErrorsCarryTheirCodeAndAStatementRunsAgainAfterOne) {
  ASSERT_TRUE(conn_->Exec("CREATE TABLE u (k TEXT PRIMARY KEY)").ok());
  auto put = [&](const std::string& k) {
    auto st = conn_->Prepare("INSERT INTO u (k) VALUES (?)");
    EXPECT_TRUE(st.ok());
    (*st)->Bind(1, k);
    return (*st)->Run();
  };
  EXPECT_TRUE(put("a").ok());
  EXPECT_EQ(put("a").code(), ErrorCode::kConstraint);
  EXPECT_TRUE(put("b").ok());
  EXPECT_EQ(conn_->Exec("SELECT * FROM no_such_table").code(), ErrorCode::kInternal);
  // Injected: the nth matching execution fails as the server would, then they pass again.
  InjectExecFault({"INSERT INTO u", 2, 1, "08006"});
  EXPECT_TRUE(put("c").ok());
  EXPECT_EQ(put("d").code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(put("e").ok());
  EXPECT_EQ(ExecFaultsFired(), 1);
}

TEST_F(PgDbTest, ALockWaitPastLockTimeoutIsUnavailableNotAnInternalError) {
  auto other = Db::Open(db_.uri, loyalty::testing::TestDatabasePassword(db_));
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  ASSERT_TRUE((*other)->Exec("BEGIN; SELECT pg_advisory_xact_lock(42)").ok());
  ASSERT_TRUE(conn_->Exec("SET lock_timeout = '50ms'").ok());
  Status waited = conn_->Exec("BEGIN; SELECT pg_advisory_xact_lock(42)");
  EXPECT_EQ(waited.code(), ErrorCode::kUnavailable) << waited.ToString();
  (void)conn_->Exec("ROLLBACK");
  ASSERT_TRUE((*other)->Exec("COMMIT").ok());
  // Free now: the same statement goes through.
  EXPECT_TRUE(conn_->Exec("BEGIN; SELECT pg_advisory_xact_lock(42); COMMIT").ok());
}

TEST_F(PgDbTest, ADroppedConnectionIsResetAtTheNextStatement) {
  ASSERT_TRUE(conn_->Exec("CREATE TABLE v (k BIGINT)").ok());
  auto pid = conn_->Prepare("SELECT pg_backend_pid()");
  ASSERT_TRUE(pid.ok() && (*pid)->Step());
  const int64_t backend = (*pid)->Int(0);
  (*pid)->Reset();
  // Another session ends this one, as a server restart or a failover would.
  auto other = Db::Open(db_.uri, loyalty::testing::TestDatabasePassword(db_));
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->Exec("SELECT pg_terminate_backend(" + std::to_string(backend) + ")").ok());
  // The statement that meets the dead connection fails `unavailable`; the next reconnects,
  // and prepared statements are prepared again on the new session.
  auto first = conn_->Prepare("INSERT INTO v (k) VALUES (?)");
  (*first)->Bind(1, int64_t{1});
  EXPECT_EQ((*first)->Run().code(), ErrorCode::kUnavailable);
  bool ok = false;
  for (int i = 0; i < 3 && !ok; ++i) {
    auto again = conn_->Prepare("INSERT INTO v (k) VALUES (?)");
    (*again)->Bind(1, int64_t{2});
    ok = (*again)->Run().ok();
  }
  EXPECT_TRUE(ok);
  auto count = conn_->Prepare("SELECT count(*) FROM v");
  ASSERT_TRUE((*count)->Step());
  EXPECT_EQ((*count)->Int(0), 1);
}

// A statement that changes nothing (a read, BEGIN) and meets a session the server ended is
// sent once more on a new session: the first request after a restart or a failover does not
// fail (docs/hq.md). Writes outside a transaction are not resent (above).
TEST_F(PgDbTest, AReadOrABeginThatMeetsADroppedConnectionIsSentAgainOnANewOne) {
  auto backend_of = [&] {
    auto pid = conn_->Prepare("SELECT pg_backend_pid()");
    EXPECT_TRUE(pid.ok() && (*pid)->Step());
    return (*pid)->Int(0);
  };
  auto other = Db::Open(db_.uri, loyalty::testing::TestDatabasePassword(db_));
  ASSERT_TRUE(other.ok());
  auto end_session = [&](int64_t backend) {
    ASSERT_TRUE(
        (*other)->Exec("SELECT pg_terminate_backend(" + std::to_string(backend) + ")").ok());
  };
  const int64_t first = backend_of();
  end_session(first);
  auto read = conn_->Prepare("SELECT 41 + 1");
  ASSERT_TRUE((*read)->Step()) << (*read)->status().ToString();
  EXPECT_EQ((*read)->Int(0), 42);
  const int64_t second = backend_of();
  EXPECT_NE(second, first);  // a new session
  end_session(second);
  EXPECT_TRUE(conn_->Exec("BEGIN").ok());
  EXPECT_TRUE(conn_->in_transaction());
  EXPECT_TRUE(conn_->Exec("COMMIT").ok());
}

TEST_F(PgDbTest, TransactionsAreTheCallersAndAnUnreachableServerIsUnavailable) {
  ASSERT_TRUE(conn_->Exec("CREATE TABLE w (k BIGINT)").ok());
  EXPECT_FALSE(conn_->in_transaction());
  ASSERT_TRUE(conn_->Exec("BEGIN").ok());
  EXPECT_TRUE(conn_->in_transaction());
  auto st = conn_->Prepare("INSERT INTO w VALUES (?)");
  (*st)->Bind(1, int64_t{7});
  ASSERT_TRUE((*st)->Run().ok());
  ASSERT_TRUE(conn_->Exec("ROLLBACK").ok());
  auto count = conn_->Prepare("SELECT count(*) FROM w");
  ASSERT_TRUE((*count)->Step());
  EXPECT_EQ((*count)->Int(0), 0);
  EXPECT_GE(conn_->server_major(), 12);
  auto none = Db::Open("postgresql://loyalty@127.0.0.1:1/x?connect_timeout=2", "pw");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace loyalty::pg
