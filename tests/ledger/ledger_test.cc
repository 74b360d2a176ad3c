#include "loyalty/ledger/ledger.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "loyalty/base/ids.h"

namespace loyalty::ledger {
namespace {

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("ledger_test_" + std::to_string(::getpid()) + "_" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "ledger.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Ledger> OpenWriter(const std::string& terminal = "T01") {
    auto l = Ledger::Open(path_, Ledger::Mode::kWriter, terminal);
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    return l.ok() ? std::move(*l) : nullptr;
  }

  EntryRow Append(Ledger& l, const std::string& kind, uint64_t member, int64_t points, int64_t at_ms) {
    EntryDraft d{NewEntryId(at_ms), kind, member, points, at_ms, "C1", "", ""};
    auto e = l.AppendEntry(d);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.ok() ? *e : EntryRow{};
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(LedgerTest, MigratesAnEmptyFileToTheCurrentSchema) {
  auto l = OpenWriter();
  ASSERT_TRUE(l);
  EXPECT_EQ(l->schema_version(), kSchemaVersion);
  EXPECT_EQ(l->EntryCount(), 0);
  auto mode = l->db().Prepare("PRAGMA journal_mode");
  ASSERT_TRUE(mode.ok());
  ASSERT_TRUE((*mode)->Step());
  EXPECT_EQ((*mode)->Text(0), "wal");
  auto sync = l->db().Prepare("PRAGMA synchronous");
  ASSERT_TRUE((*sync)->Step());
  EXPECT_EQ((*sync)->Int(0), 2);  // FULL
}

TEST_F(LedgerTest, RefusesALedgerOfAnotherTerminal) {
  { ASSERT_TRUE(OpenWriter("T01")); }
  auto other = Ledger::Open(path_, Ledger::Mode::kWriter, "T02");
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("T01"), std::string::npos);
}

TEST_F(LedgerTest, RefusesANewerSchema) {
  { ASSERT_TRUE(OpenWriter()); }
  {
    auto db = Db::Open(path_, false);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("PRAGMA user_version=99").ok());
  }
  auto l = Ledger::Open(path_, Ledger::Mode::kWriter, "T01");
  EXPECT_FALSE(l.ok());
}

TEST_F(LedgerTest, HashChainLinksAndVerifiesAcrossReopen) {
  {
    auto l = OpenWriter();
    ASSERT_TRUE(l->Begin().ok());
    auto a = Append(*l, "earn", 7, 100, 1000);
    auto b = Append(*l, "redeem", 7, -50, 2000);
    ASSERT_TRUE(l->Commit().ok());
    EXPECT_EQ(a.seq, 1);
    EXPECT_EQ(b.seq, 2);
    EXPECT_EQ(a.prev_hash, std::string(32, '\0'));
    EXPECT_EQ(b.prev_hash, a.hash);
    EXPECT_EQ(b.hash, ChainHash(a.hash, CanonicalEntryBytes(b)));
  }
  auto l = OpenWriter();
  ASSERT_TRUE(l->Begin().ok());
  auto c = Append(*l, "earn", 7, 10, 3000);
  ASSERT_TRUE(l->Commit().ok());
  EXPECT_EQ(c.seq, 3);
  auto rep = l->Verify();
  EXPECT_TRUE(rep.ok()) << rep.problems.front();
  EXPECT_EQ(rep.entries, 3);
}

TEST_F(LedgerTest, RollbackRestoresTheChainHead) {
  auto l = OpenWriter();
  ASSERT_TRUE(l->Begin().ok());
  Append(*l, "earn", 7, 100, 1000);
  l->Rollback();
  ASSERT_TRUE(l->Begin().ok());
  auto e = Append(*l, "earn", 7, 100, 1000);
  ASSERT_TRUE(l->Commit().ok());
  EXPECT_EQ(e.seq, 1);
  EXPECT_TRUE(l->Verify().ok());
}

TEST_F(LedgerTest, DetectsAChangedRowAndADeletedRow) {
  auto l = OpenWriter();
  ASSERT_TRUE(l->Begin().ok());
  for (int i = 0; i < 5; ++i) Append(*l, "earn", 7, 100 + i, 1000 + i);
  ASSERT_TRUE(l->Commit().ok());
  ASSERT_TRUE(l->Verify().ok());
  ASSERT_TRUE(l->db().Exec("UPDATE entries SET points = 9999 WHERE seq = 3").ok());
  auto rep = l->Verify();
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.problems[0].find("seq 3"), std::string::npos);
  ASSERT_TRUE(l->db().Exec("UPDATE entries SET points = 102 WHERE seq = 3").ok());
  EXPECT_TRUE(l->Verify().ok());
  ASSERT_TRUE(l->db().Exec("DELETE FROM entries WHERE seq = 2").ok());
  rep = l->Verify();
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.problems[0].find("gap"), std::string::npos);
}

TEST_F(LedgerTest, BalanceMustEqualTheSumOfLots) {
  auto l = OpenWriter();
  MemberRow m;
  m.member_id = 42;
  m.balance = 150;
  ASSERT_TRUE(l->UpsertMember(m).ok());
  LotRow lot;
  lot.member_id = 42;
  lot.points = lot.remaining = 100;
  lot.expires_at_s = 2000000000;
  ASSERT_TRUE(l->AddLot(lot).ok());
  auto rep = l->Verify();
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.problems[0].find("member 42"), std::string::npos);
  lot.points = lot.remaining = 50;
  ASSERT_TRUE(l->AddLot(lot).ok());
  EXPECT_TRUE(l->Verify().ok());
  auto lots = l->Lots(42);
  ASSERT_EQ(lots.size(), 2u);
  EXPECT_LT(lots[0].lot_id, lots[1].lot_id);
}

TEST_F(LedgerTest, ReaderSeesCommittedStateOnly) {
  auto w = OpenWriter();
  auto r = Ledger::Open(path_, Ledger::Mode::kReader, "T01");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(w->Begin().ok());
  Append(*w, "earn", 7, 100, 1000);
  EXPECT_EQ((*r)->EntryCount(), 0);
  ASSERT_TRUE(w->Commit().ok());
  EXPECT_EQ((*r)->EntryCount(), 1);
  EXPECT_EQ((*r)->EarnedSince(7, 999), 100);
  EXPECT_EQ((*r)->EarnedSince(7, 1000), 0);  // strictly after
}

TEST_F(LedgerTest, EntryIdsAreUniqueInTheDatabase) {
  auto l = OpenWriter();
  ASSERT_TRUE(l->Begin().ok());
  EntryDraft d{NewEntryId(1000), "earn", 7, 1, 1000, "", "", ""};
  ASSERT_TRUE(l->AppendEntry(d).ok());
  EXPECT_FALSE(l->AppendEntry(d).ok());
  l->Rollback();
}

}  // namespace
}  // namespace loyalty::ledger
