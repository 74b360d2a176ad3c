// recon::PgStore against the suite's throwaway PostgreSQL: the same symbols and elements as
// MemoryStore (and so as the SQLite store) before and after a flush, in the caller's
// transactions, and a reader that never sees half of another connection's flush.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "../recon/recon_test_util.h"
#include "loyalty/recon/pg_store.h"
#include "support/pg.h"

namespace loyalty::recon {
namespace {

using testing::MakeScenario;
using testing::Scenario;

class ReconPgTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LOYALTY_REQUIRE_POSTGRES(db_);
    conn_ = Connect();
    auto ddl = PgStore::TablesSql("recon_", 1024);
    ASSERT_TRUE(ddl.ok());
    ASSERT_TRUE(conn_->Exec(*ddl).ok());
  }
  void TearDown() override {
    conn_.reset();
    loyalty::testing::DropTestDatabase(db_);
  }
  std::unique_ptr<pg::Db> Connect() {
    auto d = pg::Db::Open(db_.uri, loyalty::testing::TestDatabasePassword(db_));
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() ? std::move(*d) : nullptr;
  }
  std::unique_ptr<PgStore> Open(pg::Db& db, const std::string& scope, size_t flush_rows) {
    PgStore::Options o;
    o.auto_flush_rows = flush_rows;
    auto s = PgStore::Open(db, "recon_", scope, o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }
  loyalty::testing::TestDatabase db_;
  std::unique_ptr<pg::Db> conn_;
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
  for (int guard = 0; more && guard < 100000; ++guard) {
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

TEST_F(ReconPgTest, MatchesMemoryStoreBeforeAndAfterFlush) {
  auto pg = Open(*conn_, "entries", 1'000'000);
  ASSERT_TRUE(pg);
  EXPECT_EQ(pg->stored_symbols(), 1024u);
  MemoryStore mem(1024);
  Scenario s = MakeScenario(1, 1500, 0, 0, 0);
  ASSERT_TRUE(conn_->Exec("BEGIN").ok());
  for (size_t i = 0; i < s.common.size(); ++i) {
    ASSERT_TRUE(pg->Add(s.common[i]).ok());
    ASSERT_TRUE(mem.Add(s.common[i]).ok());
    if (i == 500) ASSERT_TRUE(pg->Flush().ok());  // folded and pending items mixed
  }
  ASSERT_TRUE(conn_->Exec("COMMIT").ok());
  EXPECT_EQ(*pg->PendingChanges(), 999u);
  EXPECT_EQ(All(*pg), All(mem));
  EXPECT_EQ(Elements(*pg, 7), Elements(mem, 100000));
  for (size_t i = 0; i < s.common.size(); i += 97) {
    Item changed{s.common[i].id, Sha256(std::to_string(i))};
    ASSERT_TRUE(pg->Upsert(changed).ok());
    ASSERT_TRUE(mem.Upsert(changed).ok());
  }
  for (size_t i = 5; i < s.common.size(); i += 131) {
    ASSERT_TRUE(pg->Remove(s.common[i].id).ok());
    ASSERT_TRUE(mem.Remove(s.common[i].id).ok());
  }
  EXPECT_EQ(All(*pg), All(mem));
  EXPECT_EQ(Elements(*pg, 13), Elements(mem, 100000));
  ASSERT_TRUE(pg->Flush().ok());
  EXPECT_EQ(*pg->PendingChanges(), 0u);
  EXPECT_EQ(All(*pg), All(mem));
  EXPECT_EQ(Elements(*pg, 1000), Elements(mem, 100000));
  EXPECT_EQ(*pg->Count(), mem.size());
  // Conflicts and bad ids as the SQLite store.
  EXPECT_EQ(pg->Add(Item{s.common[1].id, Sha256("other")}).code(), ErrorCode::kConflict);
  EXPECT_EQ(pg->Add(Item{"short", {}}).code(), ErrorCode::kBadRequest);
  EXPECT_EQ(PgStore::Open(*conn_, "bad prefix;", "t").status().code(), ErrorCode::kBadRequest);
}

// UpsertMany of items over several sets — some folded already, some pending in the journal,
// some named twice, more than one statement's worth — leaves each set as Upsert of each in
// turn leaves a MemoryStore, before and after a flush; auto-flush still happens.
TEST_F(ReconPgTest, UpsertManyIsUpsertOfEachInTurnAcrossSets) {
  auto a = Open(*conn_, "balances:a", 1'000'000);
  auto b = Open(*conn_, "balances:b", 1'000'000);
  auto c = Open(*conn_, "balances:c", 50);  // a small journal: UpsertMany's writes flush it
  ASSERT_TRUE(a && b && c);
  MemoryStore ma(1024), mb(1024), mc(1024);
  Scenario s = MakeScenario(3, 1500, 0, 0, 0);
  for (size_t i = 0; i < 300; ++i) {  // folded
    ASSERT_TRUE(a->Upsert(s.common[i]).ok());
    ASSERT_TRUE(ma.Upsert(s.common[i]).ok());
  }
  ASSERT_TRUE(a->Flush().ok());
  for (size_t i = 300; i < 400; ++i) {  // pending in a's journal
    ASSERT_TRUE(a->Upsert(s.common[i]).ok());
    ASSERT_TRUE(ma.Upsert(s.common[i]).ok());
  }
  std::vector<std::pair<PgStore*, Item>> batch;
  auto put = [&](PgStore* set, MemoryStore& mem, const Item& item) {
    batch.emplace_back(set, item);
    ASSERT_TRUE(mem.Upsert(item).ok());
  };
  for (size_t i = 0; i < 1500; i += 2) {  // over folded, pending and new ids: changed tags
    put(a.get(), ma, Item{s.common[i].id, Sha256("a" + std::to_string(i))});
  }
  for (size_t i = 0; i < 1200; ++i) put(b.get(), mb, s.common[i]);
  for (size_t i = 0; i < 1200; i += 3) {  // named twice in one batch: the later one stands
    put(b.get(), mb, Item{s.common[i].id, Sha256("b" + std::to_string(i))});
  }
  for (size_t i = 0; i < 1100; ++i) put(c.get(), mc, s.common[i]);
  put(a.get(), ma, s.common[2]);  // back to its folded tag
  ASSERT_TRUE(conn_->Exec("BEGIN").ok());
  ASSERT_TRUE(PgStore::UpsertMany(batch).ok());
  ASSERT_TRUE(conn_->Exec("COMMIT").ok());
  EXPECT_EQ(All(*a), All(ma));
  EXPECT_EQ(All(*b), All(mb));
  EXPECT_EQ(All(*c), All(mc));
  EXPECT_EQ(Elements(*a, 17), Elements(ma, 100000));
  EXPECT_EQ(Elements(*b, 17), Elements(mb, 100000));
  EXPECT_EQ(*c->PendingChanges(), 0u);  // past 50 rows: flushed
  EXPECT_EQ(Elements(*c, 1000), Elements(mc, 100000));
  for (auto* set : {a.get(), b.get(), c.get()}) ASSERT_TRUE(set->Flush().ok());
  EXPECT_EQ(All(*a), All(ma));
  EXPECT_EQ(All(*b), All(mb));
  EXPECT_EQ(All(*c), All(mc));
  EXPECT_EQ(*a->Count(), ma.size());
  // Nothing to do, and a bad id refused before anything is written.
  EXPECT_TRUE(PgStore::UpsertMany({}).ok());
  EXPECT_EQ(PgStore::UpsertMany({{a.get(), Item{"short", {}}}}).code(), ErrorCode::kBadRequest);
}

// A flush writes the items 10,000 to a statement, removals before new tags: past one
// statement's rows both ways, the set is still the memory store's.
TEST_F(ReconPgTest, AFlushPastOneStatementsRowsKeepsTheSet) {
  auto pg = Open(*conn_, "balances:big", 1'000'000);
  ASSERT_TRUE(pg);
  MemoryStore mem(1024);
  Scenario s = MakeScenario(21, 12'500, 0, 0, 0);
  std::vector<std::pair<PgStore*, Item>> batch;
  for (const Item& i : s.common) {
    batch.emplace_back(pg.get(), i);
    ASSERT_TRUE(mem.Upsert(i).ok());
  }
  ASSERT_TRUE(PgStore::UpsertMany(batch).ok());
  ASSERT_TRUE(pg->Flush().ok());
  EXPECT_EQ(*pg->PendingChanges(), 0u);
  EXPECT_EQ(*pg->Count(), 12'500u);
  EXPECT_EQ(All(*pg), All(mem));
  batch.clear();
  for (size_t i = 0; i < 10'100; ++i) {  // 10,100 removed, 2,000 changed: both past a statement
    ASSERT_TRUE(pg->Remove(s.common[i].id).ok());
    ASSERT_TRUE(mem.Remove(s.common[i].id).ok());
  }
  for (size_t i = 10'100; i < 12'100; ++i) {
    Item changed{s.common[i].id, Sha256("changed " + std::to_string(i))};
    ASSERT_TRUE(pg->Upsert(changed).ok());
    ASSERT_TRUE(mem.Upsert(changed).ok());
  }
  ASSERT_TRUE(pg->Flush().ok());
  EXPECT_EQ(*pg->Count(), mem.size());
  EXPECT_EQ(All(*pg), All(mem));
  EXPECT_EQ(Elements(*pg, 997), Elements(mem, 100000));
}

TEST_F(ReconPgTest, ARolledBackTransactionTakesItsChangesAndItsFlushWithIt) {
  auto pg = Open(*conn_, "entries", 1'000'000);
  Scenario s = MakeScenario(2, 200, 50, 0, 0);
  for (const Item& i : s.common) ASSERT_TRUE(pg->Add(i).ok());
  ASSERT_TRUE(pg->Flush().ok());
  const auto before = All(*pg);
  ASSERT_TRUE(conn_->Exec("BEGIN").ok());
  for (const Item& i : s.only_a) ASSERT_TRUE(pg->Add(i).ok());
  ASSERT_TRUE(pg->Flush().ok());  // a savepoint inside the caller's transaction
  EXPECT_NE(All(*pg), before);
  ASSERT_TRUE(conn_->Exec("ROLLBACK").ok());
  EXPECT_EQ(All(*pg), before);
}

// A reader on another connection while a writer adds and flushes: every read is a set the
// writer committed (its count is one of the committed counts, its symbols those of a
// MemoryStore with that many items), never half of a flush.
TEST_F(ReconPgTest, AReaderNeverSeesHalfAFlush) {
  auto writer = Open(*conn_, "balances", 40);
  Scenario s = MakeScenario(3, 600, 0, 0, 0);
  std::vector<std::vector<Symbol>> committed;  // symbols after each commit of 30 items
  {
    MemoryStore mem(1024);
    committed.push_back(All(mem));
    for (size_t i = 0; i < s.common.size(); ++i) {
      ASSERT_TRUE(mem.Add(s.common[i]).ok());
      if ((i + 1) % 30 == 0) committed.push_back(All(mem));
    }
  }
  auto rconn = Connect();
  auto reader = Open(*rconn, "balances", 40);
  std::atomic<bool> done{false};
  std::atomic<int> bad{0}, reads{0};
  std::thread t([&] {
    while (!done.load()) {
      auto got = All(*reader);
      if (std::find(committed.begin(), committed.end(), got) == committed.end()) ++bad;
      ++reads;
    }
  });
  for (size_t i = 0; i < s.common.size(); i += 30) {
    ASSERT_TRUE(conn_->Exec("BEGIN").ok());
    for (size_t k = i; k < i + 30; ++k) ASSERT_TRUE(writer->Add(s.common[k]).ok());
    ASSERT_TRUE(writer->Flush().ok());
    ASSERT_TRUE(conn_->Exec("COMMIT").ok());
  }
  done = true;
  t.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(All(*reader), committed.back());
}

}  // namespace
}  // namespace loyalty::recon
