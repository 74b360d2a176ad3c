// The ledger file itself: schema and migrations, the hash chain and Verify, transactions,
// readers, idle checkpoints, fail-closed reads and damage. The other files of this folder
// cover the ledger's rows by kind.
#include "loyalty/ledger/ledger.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <tuple>

#include "ledger_test_util.h"
#include "loyalty/sqlite/sqlite.h"
#include "support/sqlite_damage.h"

namespace loyalty::ledger {
namespace {

TEST_F(LedgerTest, MigratesAnEmptyFileToTheCurrentSchema) {
  auto l = OpenWriter();
  ASSERT_TRUE(l);
  EXPECT_EQ(l->schema_version(), kSchemaVersion);
  EXPECT_EQ(l->EntryCount().value(), 0);
  auto mode = l->db().Prepare("PRAGMA journal_mode");
  ASSERT_TRUE(mode.ok());
  ASSERT_TRUE((*mode)->Step());
  EXPECT_EQ((*mode)->Text(0), "wal");
  auto sync = l->db().Prepare("PRAGMA synchronous");
  ASSERT_TRUE((*sync)->Step());
  EXPECT_EQ((*sync)->Int(0), 2);  // FULL
  auto page = l->db().Prepare("PRAGMA page_size");
  ASSERT_TRUE((*page)->Step());
  EXPECT_EQ((*page)->Int(0), 2048);  // a new file's pages (docs/ledger.md)
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

// The schema version of a file without opening it for use: none for a missing file or one
// that is not a database, the file's own for an older one (Open then migrates it).
TEST_F(LedgerTest, PeekSchemaVersionReadsAFileWithoutMigratingIt) {
  EXPECT_EQ(Ledger::PeekSchemaVersion(path_), std::nullopt);
  EXPECT_FALSE(std::filesystem::exists(path_));  // peeking creates nothing
  loyalty::testing::WriteFile(dir_ / "text.db", std::string(4096, 'x'));
  EXPECT_EQ(Ledger::PeekSchemaVersion((dir_ / "text.db").string()), std::nullopt);
  {
    auto db = Db::Open(path_, false);
    ASSERT_TRUE(db.ok());
    for (int v = 0; v < 3; ++v) ASSERT_TRUE((*db)->Exec(MigrationSql(v)).ok()) << v;
    ASSERT_TRUE((*db)->Exec("PRAGMA user_version=3").ok());
  }
  EXPECT_EQ(Ledger::PeekSchemaVersion(path_), 3);
  EXPECT_EQ(Ledger::PeekSchemaVersion(path_), 3);  // still: the peek migrated nothing
  { ASSERT_TRUE(OpenWriter()); }
  EXPECT_EQ(Ledger::PeekSchemaVersion(path_), kSchemaVersion);
  EXPECT_STREQ(MigrationSql(kSchemaVersion), "");
  EXPECT_STREQ(MigrationSql(-1), "");
}

// A reader refuses a file the writer has not migrated yet (it cannot migrate it itself).
TEST_F(LedgerTest, AReaderRefusesAFileOfAnOlderSchema) {
  {
    auto db = Db::Open(path_, false);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec(MigrationSql(0)).ok());
    ASSERT_TRUE((*db)->Exec("PRAGMA user_version=1").ok());
  }
  auto r = Ledger::Open(path_, Ledger::Mode::kReader, "T01");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.status().message().find("schema version 1"), std::string::npos)
      << r.status().message();
}

// The chain head (head_seq, head_hash) follows appends, goes back with a rollback, and is
// read again from the file by a new writer or a reader.
TEST_F(LedgerTest, TheChainHeadFollowsAppendsAndIsReadBackOnOpen) {
  EntryRow b;
  {
    auto l = OpenWriter();
    EXPECT_EQ(l->head_seq(), 0);
    EXPECT_EQ(l->head_hash(), std::string(32, '\0'));
    InTransaction(*l, [&] {
      Append(*l, "earn", 7, 100, 1000);
      b = Append(*l, "earn", 7, 5, 2000);
    });
    EXPECT_EQ(l->head_seq(), 2);
    EXPECT_EQ(l->head_hash(), b.hash);
    ASSERT_TRUE(l->Begin().ok());
    auto c = Append(*l, "earn", 7, 1, 3000);
    EXPECT_EQ(l->head_seq(), 3);
    EXPECT_EQ(l->head_hash(), c.hash);
    l->Rollback();
    EXPECT_EQ(l->head_seq(), 2);
    EXPECT_EQ(l->head_hash(), b.hash);
  }
  auto w = OpenWriter();
  EXPECT_EQ(w->head_seq(), 2);
  EXPECT_EQ(w->head_hash(), b.hash);
  auto r = OpenReader();
  EXPECT_EQ(r->head_seq(), 2);
  EXPECT_EQ(r->head_hash(), b.hash);
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
    EXPECT_EQ(b.hash, model::ChainHash(a.hash, model::CanonicalEntryBytes(b)));
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
  model::Lot lot;
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
  auto lots = l->Lots(42).value();
  ASSERT_EQ(lots.size(), 2u);
  EXPECT_LT(lots[0].lot_id, lots[1].lot_id);
}

// Interrupt stops what the connection runs from another thread (the daemon stops its
// start-up check with it); the connection goes on serving reads, and on an idle connection
// it does nothing.
TEST_F(LedgerTest, InterruptStopsARunningStatementAndLeavesTheConnectionUsable) {
  { auto w = OpenWriter(); }
  auto r = OpenReader();
  r->Interrupt();  // idle: no effect on what follows
  EXPECT_EQ(r->EntryCount().value(), 0);
  std::atomic<bool> done{false};
  Status endless_status;
  std::thread t([&] {
    // Runs until interrupted (a count over an endless sequence).
    auto st = r->db().Prepare(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c");
    if (st.ok()) {
      (*st)->Step();
      endless_status = (*st)->status();
    } else {
      endless_status = st.status();
    }
    done = true;
  });
  // An interrupt with no statement running is lost: sent until the statement ends.
  for (int i = 0; i < 10000 && !done; ++i) {
    r->Interrupt();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  t.join();
  ASSERT_TRUE(done);
  EXPECT_FALSE(endless_status.ok());
  EXPECT_EQ(r->EntryCount().value(), 0);
}

TEST_F(LedgerTest, ReaderSeesCommittedStateOnly) {
  auto w = OpenWriter();
  auto r = Ledger::Open(path_, Ledger::Mode::kReader, "T01");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(w->Begin().ok());
  Append(*w, "earn", 7, 100, 1000);
  EXPECT_EQ((*r)->EntryCount().value(), 0);
  ASSERT_TRUE(w->Commit().ok());
  EXPECT_EQ((*r)->EntryCount().value(), 1);
  EXPECT_EQ((*r)->EarnedSince(7, 999).value(), 100);
  EXPECT_EQ((*r)->EarnedSince(7, 1000).value(), 0);  // strictly after
}

// A file written by a program of schema 3 keeps every checkout's lines across the move of
// the lines into the checkout row (migration 4), and takes new checkouts afterwards.
TEST_F(LedgerTest, MigrationFourMovesCheckoutLinesIntoTheRow) {
  {
    auto db = Db::Open(path_, false);
    ASSERT_TRUE(db.ok());
    for (int v = 0; v < 3; ++v) ASSERT_TRUE((*db)->Exec(MigrationSql(v)).ok()) << v;
    ASSERT_TRUE((*db)->Exec("PRAGMA user_version=3").ok());
    const char* columns =
        "(checkout_id, request_hash, member_id, rules_version, committed_at_ms, subtotal_cents, "
        "total_due_cents, "
        "points_earned, redeemed_points, eligible_cents, redeemable_cents, request_json, "
        "response_json) ";
    ASSERT_TRUE(
        (*db)
            ->Exec(
                std::string("INSERT INTO checkouts ") + columns +
                "VALUES ('c1', 'h1', 7, 'r1', 1000, 900, 900, 9, 0, 900, 900, '{}', '{\"a\":1}')")
            .ok());
    ASSERT_TRUE((*db)
                    ->Exec(std::string("INSERT INTO checkouts ") + columns +
                           "VALUES ('c2', 'h2', NULL, 'r1', 2000, 0, 0, 0, 0, 0, 0, '{}', '{}')")
                    .ok());
    // Inserted out of order: the row keeps line order.
    ASSERT_TRUE((*db)
                    ->Exec("INSERT INTO checkout_lines VALUES ('c1', 1, '烟-\"2\"', 'tobacco', 2, "
                           "350, 0, 0, 0, 700, 700, 0, 0);"
                           "INSERT INTO checkout_lines VALUES ('c1', 0, 'SKU-1', 'grocery', 1, "
                           "200, 10, 5, 3, 182, 185, 1, 1);")
                    .ok());
    // Lots of two members, ids global as schema 3 gave them.
    ASSERT_TRUE((*db)
                    ->Exec("INSERT INTO lots VALUES (5, 7, 100, 60, 1000, 9000, 'e1');"
                           "INSERT INTO lots VALUES (6, 8, 50, 50, 1000, 9000, 'e2');"
                           "INSERT INTO lots VALUES (9, 7, 30, 30, 1100, 8000, 'e3');"
                           "INSERT INTO lots VALUES (12, 7, 10, 0, 1200, 8000, 'e4');")
                    .ok());
  }
  auto l = OpenWriter();
  ASSERT_TRUE(l);
  EXPECT_EQ(l->schema_version(), kSchemaVersion);  // 4, then 5 on top
  auto page = l->db().Prepare("PRAGMA page_size");
  ASSERT_TRUE((*page)->Step());
  EXPECT_EQ((*page)->Int(0), 4096);  // an existing file keeps its page size
  auto c1 = l->GetCheckout("c1", /*with_lines=*/true).value();
  ASSERT_TRUE(c1);
  ASSERT_EQ(c1->lines.size(), 2u);
  EXPECT_EQ(c1->lines[0].sku, "SKU-1");
  EXPECT_EQ(c1->lines[0].tier_discount_cents, 10);
  EXPECT_EQ(c1->lines[0].coupon_cents, 5);
  EXPECT_EQ(c1->lines[0].redeem_cents, 3);
  EXPECT_EQ(c1->lines[0].net_cents, 182);
  EXPECT_EQ(c1->lines[0].net_before_redeem_cents, 185);
  EXPECT_TRUE(c1->lines[0].points_eligible);
  EXPECT_TRUE(c1->lines[0].redeemable);
  EXPECT_EQ(c1->lines[1].line, 1);
  EXPECT_EQ(c1->lines[1].sku, "烟-\"2\"");
  EXPECT_EQ(c1->lines[1].category, "tobacco");
  EXPECT_EQ(c1->lines[1].qty, 2);
  EXPECT_EQ(c1->lines[1].unit_price_cents, 350);
  EXPECT_FALSE(c1->lines[1].points_eligible);
  EXPECT_EQ(c1->response_json, "{\"a\":1}");
  auto c2 = l->GetCheckout("c2", true).value();
  ASSERT_TRUE(c2);
  EXPECT_TRUE(c2->lines.empty());
  // Lots keep their ids and order (expiry, then creation); a new one follows the member's
  // highest id, whatever other members hold.
  auto lots = l->Lots(7).value();
  ASSERT_EQ(lots.size(), 2u);  // the spent one (remaining 0) is not returned
  EXPECT_EQ(lots[0].lot_id, 9);
  EXPECT_EQ(lots[0].expires_at_s, 8000);
  EXPECT_EQ(lots[1].lot_id, 5);
  EXPECT_EQ(lots[1].remaining, 60);
  EXPECT_EQ(lots[1].entry_id, "e1");
  ASSERT_TRUE(l->Begin().ok());
  model::Lot fresh{0, 7, 5, 5, 1300, 8000, "e5"};
  auto id = l->AddLot(fresh);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(*id, 13);
  model::Lot first{0, 99, 5, 5, 1300, 8000, "e6"};
  EXPECT_EQ(*l->AddLot(first), 1);
  ASSERT_TRUE(l->SetLotRemaining(7, 5, 1).ok());
  ASSERT_TRUE(l->Commit().ok());
  lots = l->Lots(7).value();
  ASSERT_EQ(lots.size(), 3u);
  EXPECT_EQ(lots[1].lot_id, 13);  // same expiry as lot 9, created after it
  EXPECT_EQ(lots[2].remaining, 1);
  EXPECT_EQ(l->Lots(8).value().size(), 1u);

  auto gone = l->db().Prepare(
      "SELECT count(*) FROM sqlite_schema WHERE name IN ('checkout_lines', 'entries_unacked', "
      "'entries_checkout', "
      "'checkouts_member', 'lots_by_member')");
  ASSERT_TRUE(gone.ok() && (*gone)->Step());
  EXPECT_EQ((*gone)->Int(0), 0);

  model::Checkout c3 = *c1;
  c3.checkout_id = "c3";
  ASSERT_TRUE(l->Begin().ok());
  ASSERT_TRUE(l->InsertCheckout(c3).ok());
  ASSERT_TRUE(l->Commit().ok());
  auto back = l->GetCheckout("c3", true).value();
  ASSERT_TRUE(back);
  ASSERT_EQ(back->lines.size(), 2u);
  EXPECT_EQ(back->lines[1].sku, c1->lines[1].sku);
  EXPECT_EQ(back->lines[0].net_before_redeem_cents, 185);
  EXPECT_TRUE(l->GetCheckout("c3", /*with_lines=*/false).value()->lines.empty());
}

TEST(CheckoutLines, EncodeDecodeRoundTripAndRefuseDamage) {
  std::vector<model::CheckoutLine> lines;
  for (int i = 0; i < 30; ++i) {
    model::CheckoutLine l;
    l.line = i;
    l.sku = i % 3 ? "SKU-" + std::to_string(i) : std::string("\"q\"\\/\x01\t饮料");
    l.category = i % 2 ? "grocery" : "香烟";
    l.qty = i + 1;
    l.unit_price_cents = 100000000 - i;
    l.tier_discount_cents = i * 7;
    l.coupon_cents = i;
    l.redeem_cents = i * 3;
    l.net_cents = -i;  // stored as given
    l.net_before_redeem_cents = INT64_MAX - i;
    l.points_eligible = i % 2 == 0;
    l.redeemable = i % 3 == 0;
    lines.push_back(l);
  }
  std::string text = model::EncodeCheckoutLines(lines);
  EXPECT_EQ(text, nlohmann::json::parse(text).dump());  // compact, the form dump() prints
  auto back = model::DecodeCheckoutLines(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto& a = lines[i];
    const auto& b = (*back)[i];
    EXPECT_EQ(b.line, a.line);
    EXPECT_EQ(b.sku, a.sku);
    EXPECT_EQ(b.category, a.category);
    EXPECT_EQ(
        std::tie(b.qty, b.unit_price_cents, b.tier_discount_cents, b.coupon_cents, b.redeem_cents,
                 b.net_cents, b.net_before_redeem_cents, b.points_eligible, b.redeemable),
        std::tie(a.qty, a.unit_price_cents, a.tier_discount_cents, a.coupon_cents, a.redeem_cents,
                 a.net_cents, a.net_before_redeem_cents, a.points_eligible, a.redeemable));
  }
  EXPECT_EQ(model::EncodeCheckoutLines({}), "[]");
  for (const char* bad :
       {"", "{}", "[1]", "[[\"a\",\"b\",1,2,3,4,5,6,7,8]]", "[[\"a\",\"b\",1,2,3,4,5,6,7,8,1.5]]",
        "[[1,\"b\",1,2,3,4,5,6,7,8,9]]", "[[\"a\",\"b\",1,2,3,4,5,6,7,8,9,10]]", "[[\"a\""})
    EXPECT_FALSE(model::DecodeCheckoutLines(bad).ok()) << bad;
}

// Entries HQ returned from an abandoned branch of this terminal's chain are found by id
// beside the chain's own, and an unknown id in the list does not hide the ids after it.
TEST_F(LedgerTest, EntriesByIdsFindsChainAndBranchEntries) {
  auto l = OpenWriter();
  ASSERT_TRUE(l->Begin().ok());
  EntryRow a = Append(*l, "earn", 7, 100, 1000);
  ASSERT_TRUE(l->Commit().ok());
  // An entry of another branch: same seq as `a`, another history.
  EntryRow b = a;
  b.entry_id = NewEntryId(1500);
  b.points = 40;
  b.prev_hash = std::string(32, '\x07');
  b.hash = model::ChainHash(b.prev_hash, model::CanonicalEntryBytes(b));
  ASSERT_TRUE(l->Begin().ok());
  auto outcome = l->RestoreEntry(b);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  ASSERT_EQ(*outcome, RestoreOutcome::kBranch);
  ASSERT_TRUE(l->Commit().ok());
  auto found = l->EntriesByIds({NewEntryId(1200), b.entry_id, a.entry_id}).value();
  ASSERT_EQ(found.size(), 2u);
  std::set<std::string> ids{found[0].entry_id, found[1].entry_id};
  EXPECT_TRUE(ids.count(a.entry_id));
  EXPECT_TRUE(ids.count(b.entry_id));
  for (const auto& e : found)
    if (e.entry_id == b.entry_id) {
      EXPECT_EQ(e.points, 40);
    }
}

TEST_F(LedgerTest, EntryIdsAreUniqueInTheDatabase) {
  auto l = OpenWriter();
  ASSERT_TRUE(l->Begin().ok());
  EntryDraft d{NewEntryId(1000), "earn", 7, 1, 1000, "", "", ""};
  ASSERT_TRUE(l->AppendEntry(d).ok());
  EXPECT_FALSE(l->AppendEntry(d).ok());
  l->Rollback();
}

// With idle checkpoints no COMMIT copies the WAL back (SQLite's own checkpoint would at
// 1,000 pages); CheckpointIfDue does it between jobs, after which the WAL starts over, and
// a writer that is never idle is held by the backstop.
TEST_F(LedgerTest, IdleCheckpointsKeepCheckpointsOutOfCommits) {
  auto wal_pages = [&] {
    auto size = std::filesystem::file_size(path_ + "-wal");
    return size <= 32 ? 0 : static_cast<int64_t>((size - 32) / (2048 + 24));
  };
  auto commit_some = [&](Ledger& l, int n, int64_t at) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(l.Begin().ok());
      // Members far apart: each commit dirties pages of its own.
      MemberRow m;
      m.member_id = static_cast<uint64_t>(at + i) * 7919;
      m.balance = i;
      ASSERT_TRUE(l.UpsertMember(m).ok());
      Append(l, "earn", m.member_id, 0, at + i);
      ASSERT_TRUE(l.Commit().ok());
    }
  };
  auto l = OpenWriter();
  ASSERT_TRUE(l);
  l->UseIdleCheckpoints(/*idle_pages=*/64, /*backstop_pages=*/2000);
  EXPECT_FALSE(l->CheckpointIfDue());  // nothing written yet
  commit_some(*l, 600, 1000);
  // Far past what SQLite would have let grow: the commits did not checkpoint.
  int64_t grown = wal_pages();
  EXPECT_GT(grown, 1000);
  ASSERT_TRUE(l->Begin().ok());
  EXPECT_FALSE(l->CheckpointIfDue());  // never inside a transaction
  l->Rollback();
  EXPECT_TRUE(l->CheckpointIfDue());
  EXPECT_EQ(l->idle_checkpoints(), 1);
  EXPECT_FALSE(l->CheckpointIfDue());  // not due again until the WAL grows
  // The WAL starts over from its beginning: written between checkpoints, it stays the size
  // it had.
  for (int round = 0; round < 20; ++round) {
    commit_some(*l, 30, 100000 + round * 30);
    l->CheckpointIfDue();
  }
  EXPECT_LE(wal_pages(), grown);
  EXPECT_GE(l->idle_checkpoints(), 10);
  // Everything committed is there for a reader.
  auto r = Ledger::Open(path_, Ledger::Mode::kReader, "T01");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->EntryCount().value(), 600 + 20 * 30);
}

TEST_F(LedgerTest, TheBackstopBoundsTheWalOfAWriterNeverIdle) {
  auto l = OpenWriter();
  ASSERT_TRUE(l);
  l->UseIdleCheckpoints(/*idle_pages=*/64, /*backstop_pages=*/300);
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(l->Begin().ok());
    MemberRow m;
    m.member_id = static_cast<uint64_t>(i) * 7919;
    ASSERT_TRUE(l->UpsertMember(m).ok());
    ASSERT_TRUE(l->Commit().ok());
  }
  auto size = std::filesystem::file_size(path_ + "-wal");
  EXPECT_LT(size, 400u * (2048 + 24) + 32);
  EXPECT_EQ(l->idle_checkpoints(), 0);
}

// Fail closed: every read whose statement fails returns the error, never "not found", 0,
// false or an empty list (the step fault seam fails every step of every statement).
TEST_F(LedgerTest, EveryReadReturnsItsErrorNeverAnEmptyAnswer) {
  auto l = OpenWriter();
  ASSERT_TRUE(l);
  InjectStepFault({"", 1, -1, SQLITE_IOERR});
  auto failed = [](const auto& r) {
    return !r.ok() && r.status().code() == ErrorCode::kUnavailable;
  };
  EXPECT_TRUE(failed(l->EntryCount()));
  EXPECT_TRUE(failed(l->PendingEntryCount()));
  EXPECT_TRUE(failed(l->RecentEntries(7, 10)));
  EXPECT_TRUE(failed(l->EarnedSince(7, 0)));
  EXPECT_TRUE(failed(l->LastRedeemAtMs(7)));
  EXPECT_TRUE(failed(l->GetMember(7)));
  EXPECT_TRUE(failed(l->LookupIdentity("card", "1")));
  EXPECT_TRUE(failed(l->Lots(7)));
  EXPECT_TRUE(failed(l->MemberCount()));
  EXPECT_TRUE(failed(l->GetCoupon("K")));
  EXPECT_TRUE(failed(l->IsRevoked(std::string(32, 'k'))));
  EXPECT_TRUE(failed(l->CodeBoundTo("h")));
  EXPECT_TRUE(failed(l->GetCheckout("c")));
  EXPECT_TRUE(failed(l->CheckoutsSince(0, 10)));
  EXPECT_TRUE(failed(l->CheckoutsPerHour(0)));
  EXPECT_TRUE(failed(l->LocalSpendSince(7, 0)));
  EXPECT_TRUE(failed(l->GetRefund("r")));
  EXPECT_TRUE(failed(l->RefundsSince(0)));
  EXPECT_TRUE(failed(l->RefundsForCheckout("c")));
  EXPECT_TRUE(failed(l->EntriesForCheckout("c")));
  EXPECT_TRUE(failed(l->GetMeta("terminal_id")));
  EXPECT_TRUE(failed(l->UnackedEntries(0, 10)));
  EXPECT_TRUE(failed(l->EntriesByIds({NewEntryId(1)})));
  EXPECT_TRUE(failed(l->MemberEntriesAfter(7, 0)));
  EXPECT_TRUE(failed(l->UnackedPoints(7)));
  EXPECT_TRUE(failed(l->BranchEntryCount()));
  EXPECT_TRUE(failed(l->UnuploadedCheckoutsWithoutEntries(10)));
  EXPECT_TRUE(failed(l->UnuploadedRefunds(10)));
  EXPECT_TRUE(failed(l->MembersByReconKey({"k"})));
  EXPECT_TRUE(failed(l->RecentSyncRuns(10)));
  EXPECT_TRUE(failed(l->LastSuccessfulSyncRun()));
  EXPECT_TRUE(failed(l->CheckIntegrity(true)));
  EXPECT_FALSE(l->damaged());  // an I/O error is not damage
  ClearStepFaults();
  // The same reads answer "not found" when there is nothing.
  EXPECT_FALSE(l->GetMember(7).value());
  EXPECT_FALSE(l->IsRevoked(std::string(32, 'k')).value());
  EXPECT_EQ(l->EarnedSince(7, 0).value(), 0);
  EXPECT_TRUE(l->CheckIntegrity(true).value().empty());
  EXPECT_TRUE(l->CheckIntegrity(false).value().empty());
}

// A ledger file (closed again) with members 1..n, enough of them to fill many pages.
class LedgerDamageTest : public LedgerTest {
 protected:
  void AddMembers(uint64_t n) {
    auto l = OpenWriter();
    ASSERT_TRUE(l);
    InTransaction(*l, [&] {
      for (uint64_t id = 1; id <= n; ++id) ASSERT_TRUE(l->UpsertMember(FullMember(id, 0)).ok());
    });
  }
};

TEST_F(LedgerDamageTest, ADamagedPageIsLedgerDamagedAndLatchesEveryConnection) {
  AddMembers(2000);
  auto page = testing::DamageRowPage(path_, "members", 1000);
  ASSERT_TRUE(page);
  auto l = OpenWriter();  // opening reads no member
  ASSERT_TRUE(l);
  auto r = Ledger::Open(path_, Ledger::Mode::kReader, "T01");
  ASSERT_TRUE(r.ok());
  int said = 0;
  l->OnDamaged([&](const std::string&) { ++said; });
  EXPECT_TRUE((*r)->GetMember(1).value());  // another page
  EXPECT_FALSE(l->damaged());
  auto m = (*r)->GetMember(1000);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), ErrorCode::kLedgerDamaged);
  EXPECT_TRUE(l->damaged());
  EXPECT_TRUE((*r)->damaged());
  EXPECT_EQ(said, 1);
  EXPECT_FALSE((*r)->GetMember(1000).ok());
  EXPECT_EQ(said, 1);
  auto rep = l->Verify();
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.problems[0].find("integrity_check"), std::string::npos) << rep.problems[0];
}

TEST_F(LedgerDamageTest, QuickCheckFindsADamagedPageNoReadHasTouched) {
  AddMembers(2000);
  ASSERT_TRUE(testing::DamageRowPage(path_, "members", 1500));
  auto r = Ledger::Open(path_, Ledger::Mode::kReader, "T01");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE((*r)->damaged());
  auto problems = (*r)->CheckIntegrity(/*quick=*/true);
  // SQLite lists the problem, or fails the pragma with SQLITE_CORRUPT: either latches.
  EXPECT_TRUE(!problems.ok() ? problems.status().code() == ErrorCode::kLedgerDamaged
                             : !problems->empty());
  EXPECT_TRUE((*r)->damaged());
  EXPECT_FALSE((*r)->damage_reason().empty());
}

// A file SQLite reports damaged while Open reads it is returned latched damaged, not as an
// error (the daemon starts degraded on it), and nothing more is written to it.
TEST_F(LedgerDamageTest, AFileDamagedWhereOpeningReadsIsReturnedDamagedAndNeverWritten) {
  AddMembers(200);
  {
    auto l = OpenWriter();
    ASSERT_TRUE(l);
    InTransaction(*l, [&] { Append(*l, "earn", 7, 100, 1000); });
  }
  ASSERT_TRUE(testing::DamageRootPage(path_, "entries"));  // the chain head's table
  const std::string before = testing::ReadFile(path_);
  {
    auto w = Ledger::Open(path_, Ledger::Mode::kWriter, "T01");
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    EXPECT_TRUE((*w)->damaged());
    EXPECT_NE((*w)->damage_reason().find("malformed"), std::string::npos) << (*w)->damage_reason();
    int said = 0;
    (*w)->OnDamaged([&](const std::string&) { ++said; });
    EXPECT_EQ(said, 1);  // at once: it is already latched
    auto r = Ledger::Open(path_, Ledger::Mode::kReader, "T01");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE((*r)->damaged());
    EXPECT_EQ(said, 1);
    // Nothing is written to it: no transaction begins, no checkpoint runs.
    Status begun = (*w)->Begin();
    EXPECT_EQ(begun.code(), ErrorCode::kLedgerDamaged) << begun.ToString();
    (*w)->UseIdleCheckpoints(1, 1);
    EXPECT_FALSE((*w)->CheckpointIfDue());
    EXPECT_TRUE((*w)->GetMember(7).value());  // an intact page still reads
    EXPECT_FALSE((*r)->EntryCount().ok());
  }
  EXPECT_EQ(testing::ReadFile(path_), before);
  // Closed and opened again, the file is found damaged again.
  auto again = Ledger::Open(path_, Ledger::Mode::kWriter, "T01");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE((*again)->damaged());
}

// The same for the other tables opening the writer reads: the terminal id's meta and the
// recon index's own tables, and the schema on page 1.
TEST_F(LedgerDamageTest, EveryTableOpeningReadsReturnsTheFileDamaged) {
  for (const char* table : {"meta", "recon_meta", "recon_scopes", "sqlite_schema"}) {
    SCOPED_TRACE(table);
    std::filesystem::remove(path_);
    AddMembers(10);
    ASSERT_TRUE(testing::DamageRootPage(path_, table));
    const std::string before = testing::ReadFile(path_);
    {
      auto w = Ledger::Open(path_, Ledger::Mode::kWriter, "T01");
      ASSERT_TRUE(w.ok()) << w.status().ToString();
      EXPECT_TRUE((*w)->damaged());
      EXPECT_FALSE((*w)->Begin().ok());
    }
    EXPECT_EQ(testing::ReadFile(path_), before);
  }
}

// A migration that meets a damaged page is rolled back: the file stays at its schema, and
// is returned damaged to the writer and to a reader (which would refuse the old schema).
TEST_F(LedgerDamageTest, AMigrationThatMeetsDamageIsRolledBackAndTheFileReturnedDamaged) {
  {
    auto db = Db::Open(path_, false);
    ASSERT_TRUE(db.ok());
    for (int v = 0; v < 5; ++v) ASSERT_TRUE((*db)->Exec(MigrationSql(v)).ok()) << v;
    ASSERT_TRUE((*db)->Exec("PRAGMA user_version=5").ok());
    std::string insert = "BEGIN;";
    for (int id = 1; id <= 2000; ++id)
      insert += "INSERT INTO members (member_id, display_name, phone) VALUES (" +
                std::to_string(id) + ", '张*', '138****5678');";
    ASSERT_TRUE((*db)->Exec(insert + "COMMIT;").ok());
  }
  ASSERT_TRUE(testing::DamageRowPage(path_, "members", 1000));  // 5 -> 6 updates every member
  {
    auto w = Ledger::Open(path_, Ledger::Mode::kWriter, "T01");
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    EXPECT_TRUE((*w)->damaged());
    EXPECT_EQ((*w)->schema_version(), 5);
    auto r = Ledger::Open(path_, Ledger::Mode::kReader, "T01");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE((*r)->damaged());
  }
  EXPECT_EQ(Ledger::PeekSchemaVersion(path_), 5);
}

// What is not a damaged ledger is still an error: a file that is not SQLite's at all
// (untouched), and one of a newer schema (RefusesANewerSchema).
TEST_F(LedgerTest, AFileThatIsNotSQLitesIsRefusedUntouched) {
  loyalty::testing::WriteFile(path_, std::string(4096, 'x'), 0600);
  for (auto mode : {Ledger::Mode::kWriter, Ledger::Mode::kReader}) {
    auto l = Ledger::Open(path_, mode, "T01");
    ASSERT_FALSE(l.ok());
    EXPECT_EQ(l.status().code(), ErrorCode::kUnavailable);
    EXPECT_NE(l.status().message().find("is not an SQLite database"), std::string::npos)
        << l.status().message();
  }
  EXPECT_EQ(loyalty::testing::ReadFile(path_), std::string(4096, 'x'));
  EXPECT_FALSE(std::filesystem::exists(path_ + "-wal"));
  // A few bytes are no database either; an empty file is a new ledger.
  loyalty::testing::WriteFile(path_, "SQLite", 0600);
  EXPECT_FALSE(Ledger::Open(path_, Ledger::Mode::kWriter, "T01").ok());
  loyalty::testing::WriteFile(path_, "", 0600);
  EXPECT_TRUE(OpenWriter());
}

}  // namespace
}  // namespace loyalty::ledger
