// SqliteStore over real SQLite files: same symbols as MemoryStore, transactions, mixed peers.
#include "loyalty/recon/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

#include "recon_test_util.h"
#include "support/files.h"

namespace loyalty::recon {
namespace {

using testing::MakeScenario;
using testing::Reconcile;
using testing::Scenario;

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { db_ = OpenDb(); }
  void TearDown() override { sqlite3_close(db_); }
  sqlite3* OpenDb() {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open((dir_ / "ledger.db").c_str(), &db), SQLITE_OK);
    Exec(db, "PRAGMA journal_mode=WAL");
    return db;
  }
  static void Exec(sqlite3* db, const char* sql) {
    ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  }
  std::unique_ptr<SqliteStore> Open(const std::string& scope, SqliteStore::Options o = {}) {
    auto s = SqliteStore::Open(db_, "recon_", scope, o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  loyalty::testing::TempDir dir_{"recon_test"};
  sqlite3* db_ = nullptr;
};

std::vector<Symbol> All(const FingerprintStore& s) {
  std::vector<Symbol> out;
  EXPECT_TRUE(s.ReadSymbols(0, s.stored_symbols(), &out).ok());
  return out;
}

std::vector<Element> Elements(const FingerprintStore& s, size_t chunk) {
  std::vector<Element> all, page;
  bool more = true;
  std::optional<ElementId> after;
  while (more) {
    EXPECT_TRUE(s.ListElements(after ? &*after : nullptr, chunk, &page, &more).ok());
    all.insert(all.end(), page.begin(), page.end());
    if (!page.empty()) after = page.back().id;
    if (page.empty() && more) {
      ADD_FAILURE() << "empty page with more";
      break;
    }
  }
  return all;
}

TEST_F(SqliteStoreTest, OpenValidatesArguments) {
  EXPECT_EQ(SqliteStore::Open(nullptr, "recon_", "t").status().code(), ErrorCode::kBadRequest);
  EXPECT_EQ(SqliteStore::Open(db_, "bad prefix;", "t").status().code(), ErrorCode::kBadRequest);
  EXPECT_EQ(SqliteStore::Open(db_, "recon_", "").status().code(), ErrorCode::kBadRequest);
  SqliteStore::Options o;
  o.stored_symbols = 100;  // not a multiple of 64
  EXPECT_EQ(SqliteStore::Open(db_, "recon_", "t", o).status().code(), ErrorCode::kBadRequest);
}

TEST_F(SqliteStoreTest, MatchesMemoryStoreBeforeAndAfterFlush) {
  SqliteStore::Options o;
  o.stored_symbols = 1024;
  o.auto_flush_rows = 1'000'000;
  auto sql = Open("entries", o);
  MemoryStore mem(1024);
  Scenario s = MakeScenario(1, 3000, 0, 0, 0);
  Exec(db_, "BEGIN");
  for (size_t i = 0; i < s.common.size(); ++i) {
    ASSERT_TRUE(sql->Add(s.common[i]).ok());
    ASSERT_TRUE(mem.Add(s.common[i]).ok());
    if (i == 1000) {
      ASSERT_TRUE(sql->Flush().ok());  // a mix of folded and pending items
    }
  }
  Exec(db_, "COMMIT");
  EXPECT_EQ(*sql->PendingChanges(), 1999u);
  EXPECT_EQ(All(*sql), All(mem));
  EXPECT_EQ(Elements(*sql, 7), Elements(mem, 100000));
  EXPECT_EQ(*sql->Count(), 3000u);
  // Upserts and removals, some of folded items and some of pending ones.
  for (size_t i = 0; i < 3000; i += 97) {
    Item changed{s.common[i].id, Sha256(std::to_string(i))};
    ASSERT_TRUE(sql->Upsert(changed).ok());
    ASSERT_TRUE(mem.Upsert(changed).ok());
  }
  for (size_t i = 5; i < 3000; i += 131) {
    ASSERT_TRUE(sql->Remove(s.common[i].id).ok());
    ASSERT_TRUE(mem.Remove(s.common[i].id).ok());
  }
  EXPECT_EQ(All(*sql), All(mem));
  EXPECT_EQ(Elements(*sql, 13), Elements(mem, 100000));
  ASSERT_TRUE(sql->Flush().ok());
  EXPECT_EQ(*sql->PendingChanges(), 0u);
  EXPECT_EQ(All(*sql), All(mem));
  EXPECT_EQ(Elements(*sql, 1000), Elements(mem, 100000));
  EXPECT_EQ(*sql->Count(), mem.size());
}

TEST_F(SqliteStoreTest, AddConflictsAndIdempotence) {
  auto sql = Open("entries");
  Item a{std::string(16, 'a'), Sha256("1")};
  ASSERT_TRUE(sql->Add(a).ok());
  EXPECT_TRUE(sql->Add(a).ok());
  EXPECT_EQ(sql->Add(Item{a.id, Sha256("2")}).code(), ErrorCode::kConflict);
  ASSERT_TRUE(sql->Flush().ok());
  EXPECT_TRUE(sql->Add(a).ok());
  EXPECT_EQ(sql->Add(Item{a.id, Sha256("2")}).code(), ErrorCode::kConflict);
  EXPECT_EQ(sql->Add(Item{"short", {}}).code(), ErrorCode::kBadRequest);
  EXPECT_EQ(*sql->Count(), 1u);
}

TEST_F(SqliteStoreTest, RolledBackAddLeavesFingerprintsUnchanged) {
  auto sql = Open("entries");
  Scenario s = MakeScenario(2, 200, 50, 0, 0);
  for (const Item& i : s.common) ASSERT_TRUE(sql->Add(i).ok());
  ASSERT_TRUE(sql->Flush().ok());
  const auto before = All(*sql);
  const auto before_items = Elements(*sql, 1000);

  Exec(db_, "BEGIN");
  for (const Item& i : s.only_a) ASSERT_TRUE(sql->Add(i).ok());
  ASSERT_TRUE(sql->Upsert(Item{s.common[0].id, Sha256("x")}).ok());
  EXPECT_NE(All(*sql), before);
  ASSERT_TRUE(sql->Flush().ok());  // even a fold inside the transaction
  Exec(db_, "ROLLBACK");
  EXPECT_EQ(All(*sql), before);
  EXPECT_EQ(Elements(*sql, 1000), before_items);

  // And without a flush.
  Exec(db_, "BEGIN");
  for (const Item& i : s.only_a) ASSERT_TRUE(sql->Add(i).ok());
  Exec(db_, "ROLLBACK");
  EXPECT_EQ(All(*sql), before);
  EXPECT_EQ(*sql->PendingChanges(), 0u);
}

TEST_F(SqliteStoreTest, PersistsAcrossReopenAndKeepsScopesApart) {
  Scenario s = MakeScenario(3, 500, 20, 30, 0);
  {
    auto t1 = Open("terminal-1");
    auto t2 = Open("terminal-2");
    for (const Item& i : s.common) {
      ASSERT_TRUE(t1->Add(i).ok());
      ASSERT_TRUE(t2->Add(i).ok());
    }
    for (const Item& i : s.only_a) ASSERT_TRUE(t1->Add(i).ok());
    ASSERT_TRUE(t1->Flush().ok());
    for (const Item& i : s.only_b) ASSERT_TRUE(t2->Add(i).ok());
  }
  sqlite3_close(db_);
  db_ = OpenDb();
  SqliteStore::Options o;
  o.stored_symbols = 64;  // ignored: the table set keeps the count it was created with
  auto t1 = Open("terminal-1", o);
  auto t2 = Open("terminal-2", o);
  EXPECT_EQ(t1->stored_symbols(), kDefaultStoredSymbols);
  EXPECT_EQ(*t1->Count(), 520u);
  EXPECT_EQ(*t2->Count(), 530u);
  testing::ExpectExact(s, Reconcile(*t1, *t2));
}

// AddNew (an id the set has never held, without the look-up) leaves the same symbols as Add.
TEST_F(SqliteStoreTest, AddNewOfFreshIdsEqualsAdd) {
  Scenario s = MakeScenario(5, 800, 0, 0, 0);
  auto a = Open("by-add");
  auto b = Open("by-add-new");
  for (size_t i = 0; i < s.common.size(); ++i) {
    ASSERT_TRUE(a->Add(s.common[i]).ok());
    ASSERT_TRUE(b->AddNew(s.common[i]).ok());
    if (i == 400) {
      ASSERT_TRUE(a->Flush().ok());
      ASSERT_TRUE(b->Flush().ok());
    }
  }
  EXPECT_EQ(All(*a), All(*b));
  EXPECT_EQ(*a->Count(), *b->Count());
}

// A read-only connection opens a set that exists, reads the same symbols, writes nothing,
// and is refused a scope that does not exist.
TEST_F(SqliteStoreTest, ExistingOnlyOpensOnAReadOnlyConnection) {
  Scenario s = MakeScenario(6, 300, 0, 0, 0);
  auto w = Open("entries");
  for (const Item& i : s.common) ASSERT_TRUE(w->Add(i).ok());
  sqlite3* ro = nullptr;
  ASSERT_EQ(sqlite3_open_v2((dir_ / "ledger.db").c_str(), &ro, SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  {
    SqliteStore::Options o;
    o.existing_only = true;
    auto r = SqliteStore::Open(ro, "recon_", "entries", o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(All(**r), All(*w));
    EXPECT_EQ(*(*r)->Count(), 300u);
    EXPECT_FALSE((*r)->Add(MakeScenario(7, 1, 0, 0, 0).common[0]).ok());
    auto missing = SqliteStore::Open(ro, "recon_", "no-such-scope", o);
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.status().message().find("no-such-scope"), std::string::npos);
    // Without existing_only the read-only connection cannot create what it needs.
    EXPECT_FALSE(SqliteStore::Open(ro, "recon_", "entries").ok());
  }
  sqlite3_close(ro);
}

TEST_F(SqliteStoreTest, AutoFlushBoundsTheJournal) {
  SqliteStore::Options o;
  o.auto_flush_rows = 100;
  auto sql = Open("entries", o);
  Scenario s = MakeScenario(4, 2500, 0, 0, 0);
  for (const Item& i : s.common) ASSERT_TRUE(sql->Add(i).ok());
  // Checked every 1,024 changes: folded at 1,024 and 2,048.
  EXPECT_EQ(*sql->PendingChanges(), 2500u - 2048u);
  MemoryStore mem;
  for (const Item& i : s.common) ASSERT_TRUE(mem.Add(i).ok());
  EXPECT_EQ(All(*sql), All(mem));
}

// The HQ layout (two scopes in one database) and mixed peers, with random differences.
TEST_F(SqliteStoreTest, RandomDifferencesSqliteAndMixed) {
  struct Case {
    size_t common, a, b, m;
  };
  const std::vector<Case> cases = {{0, 0, 0, 0},       {0, 5, 0, 0},      {2000, 1, 0, 0},
                                   {2000, 0, 0, 1},    {5000, 20, 30, 5}, {3000, 600, 700, 100},
                                   {20000, 1000, 0, 0}};
  uint64_t seed = 500;
  for (const Case& c : cases) {
    ++seed;
    SCOPED_TRACE("seed " + std::to_string(seed));
    Scenario s = MakeScenario(seed, c.common, c.a, c.b, c.m);
    const std::string tag = std::to_string(seed);
    auto a = Open("a" + tag);
    auto b = Open("b" + tag);
    MemoryStore ma, mb;
    Exec(db_, "BEGIN");
    for (const Item& i : s.common) {
      ASSERT_TRUE(a->Add(i).ok());
      ASSERT_TRUE(b->Add(i).ok());
      ASSERT_TRUE(ma.Add(i).ok());
      ASSERT_TRUE(mb.Add(i).ok());
    }
    ASSERT_TRUE(a->Flush().ok());
    for (const auto* v : {&s.only_a, &s.mismatch_a}) {
      for (const Item& i : *v) {
        ASSERT_TRUE(a->Add(i).ok());
        ASSERT_TRUE(ma.Add(i).ok());
      }
    }
    for (const auto* v : {&s.only_b, &s.mismatch_b}) {
      for (const Item& i : *v) {
        ASSERT_TRUE(b->Add(i).ok());
        ASSERT_TRUE(mb.Add(i).ok());
      }
    }
    Exec(db_, "COMMIT");
    testing::ExpectExact(s, Reconcile(*a, *b));
    testing::ExpectExact(s, Reconcile(*a, mb));
    testing::ExpectExact(s, Reconcile(ma, *b));
  }
}

}  // namespace
}  // namespace loyalty::recon
