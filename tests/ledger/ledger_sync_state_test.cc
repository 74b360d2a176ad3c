// What the ledger keeps for sync (schema 2 on): acknowledged entries and the balance index,
// entries HQ gives back (restore), checkouts and refunds still to upload, members by recon
// key, the reconciliation index, and the record of sync runs.
#include <gtest/gtest.h>

#include "ledger_test_util.h"
#include "loyalty/base/encoding.h"

namespace loyalty::ledger {
namespace {

class LedgerSyncStateTest : public LedgerTest {};

// An entry of this terminal's chain as HQ would hand it back: `seq` after `prev_hash`.
EntryRow ChainEntry(const std::string& terminal, int64_t seq, const std::string& prev_hash,
                    int64_t points, int64_t at_ms, uint64_t member = 7) {
  EntryRow e;
  e.seq = seq;
  e.entry_id = NewEntryId(at_ms);
  e.terminal_id = terminal;
  e.kind = "earn";
  e.member_id = member;
  e.points = points;
  e.at_ms = at_ms;
  e.checkout_id = "C" + std::to_string(seq);
  e.prev_hash = prev_hash;
  e.hash = model::ChainHash(e.prev_hash, model::CanonicalEntryBytes(e));
  return e;
}

recon::Item BalanceItem(uint64_t member, int64_t balance) {
  return recon::MemberBalanceItem(std::to_string(member), balance, 0);
}

recon::Item EntryItem(const EntryRow& e) {
  recon::Item item;
  item.id = *HexDecode(e.entry_id);
  std::copy(e.hash.begin(), e.hash.end(), item.hash.begin());
  return item;
}

TEST_F(LedgerSyncStateTest, UnackedEntriesAreListedAfterASeqInOrderUpToALimit) {
  auto l = OpenWriter();
  std::vector<EntryRow> e;
  InTransaction(*l, [&] {
    for (int i = 0; i < 5; ++i) e.push_back(Append(*l, "earn", 7 + i % 2, 10 + i, 1000 + i));
  });
  InTransaction(*l, [&] { ASSERT_TRUE(l->AckEntries({e[1].entry_id}).ok()); });
  EXPECT_EQ(Ids(l->UnackedEntries(0, 10).value(), &EntryRow::entry_id),
            (std::vector<std::string>{e[0].entry_id, e[2].entry_id, e[3].entry_id, e[4].entry_id}));
  EXPECT_EQ(Ids(l->UnackedEntries(2, 2).value(), &EntryRow::entry_id),
            (std::vector<std::string>{e[2].entry_id, e[3].entry_id}));
  EXPECT_TRUE(l->UnackedEntries(5, 10).value().empty());
  const auto unacked = l->UnackedEntries(0, 10).value();
  for (const auto& u : unacked) EXPECT_FALSE(u.acked);
}

TEST_F(LedgerSyncStateTest, MemberEntriesAfterASeqIncludeAcknowledgedOnes) {
  auto l = OpenWriter();
  std::vector<EntryRow> e;
  InTransaction(*l, [&] {
    e.push_back(Append(*l, "earn", 7, 10, 1000));
    e.push_back(Append(*l, "earn", 8, 20, 2000));
    e.push_back(Append(*l, "redeem", 7, -5, 3000));
    e.push_back(Append(*l, "earn", 7, 30, 4000));
  });
  InTransaction(*l, [&] { ASSERT_TRUE(l->AckEntries({e[2].entry_id}).ok()); });
  auto after = l->MemberEntriesAfter(7, 1).value();
  EXPECT_EQ(Ids(after, &EntryRow::entry_id),
            (std::vector<std::string>{e[2].entry_id, e[3].entry_id}));
  EXPECT_TRUE(after[0].acked);
  EXPECT_FALSE(after[1].acked);
  EXPECT_EQ(l->MemberEntriesAfter(7, 0).value().size(), 3u);
  EXPECT_TRUE(l->MemberEntriesAfter(7, 4).value().empty());
  EXPECT_TRUE(l->MemberEntriesAfter(9, 0).value().empty());
}

// The balance index holds each cached member's balance less its unacknowledged points (what
// HQ should hold); acknowledging entries moves it.
// Eviction (docs/sync.md): a member who left the store's scope is dropped — row, lots,
// identities, balance item — but only once HQ has every entry of theirs; entries stay.
TEST_F(LedgerSyncStateTest, DropMemberForgetsAMemberOnlyOnceHqHasTheirEntries) {
  auto l = OpenWriter();
  EntryRow earn;
  InTransaction(*l, [&] {
    earn = Append(*l, "earn", 7, 100, 1000);
    ASSERT_TRUE(l->UpsertMember(FullMember(7, 100)).ok());
    ASSERT_TRUE(l->AddLot(Lot(7, 100, 2000000000)).ok());
    ASSERT_TRUE(l->PutIdentity("wechat", "100000000007", 7).ok());
  });
  InTransaction(*l, [&] { EXPECT_FALSE(l->DropMember(7).value()); });  // not acknowledged yet
  EXPECT_TRUE(l->GetMember(7).value().has_value());
  InTransaction(*l, [&] { ASSERT_TRUE(l->AckEntries({earn.entry_id}).ok()); });
  EXPECT_TRUE(SetHolds(*l->balances_index(), BalanceItem(7, 100)));
  InTransaction(*l, [&] { EXPECT_TRUE(l->DropMember(7).value()); });
  EXPECT_FALSE(l->GetMember(7).value().has_value());
  EXPECT_TRUE(l->Lots(7).value().empty());
  EXPECT_EQ(l->LookupIdentity("wechat", "100000000007").value(), std::nullopt);
  EXPECT_FALSE(SetHolds(*l->balances_index(), BalanceItem(7, 100)));
  EXPECT_EQ(l->EntryCount().value(), 1);  // the ledger keeps its entries
  EXPECT_TRUE(l->Verify().ok());
  InTransaction(*l, [&] { EXPECT_TRUE(l->DropMember(7).value()); });  // again: nothing to do
}

TEST_F(LedgerSyncStateTest, AcknowledgingEntriesMovesTheirMembersBalanceItems) {
  auto l = OpenWriter();
  EntryRow earn, redeem;
  InTransaction(*l, [&] {
    earn = Append(*l, "earn", 7, 100, 1000);
    redeem = Append(*l, "redeem", 7, -30, 2000);
    Append(*l, "earn", 8, 5, 3000);  // a member not cached
    MemberRow m = FullMember(7, 70);
    ASSERT_TRUE(l->UpsertMember(m).ok());
    ASSERT_TRUE(l->AddLot(Lot(7, 70, 2000000000)).ok());
  });
  EXPECT_EQ(l->UnackedPoints(7).value(), 70);
  EXPECT_EQ(l->UnackedPoints(8).value(), 5);
  EXPECT_EQ(l->UnackedPoints(9).value(), 0);
  EXPECT_TRUE(SetHolds(*l->balances_index(), BalanceItem(7, 0)));

  InTransaction(*l, [&] { ASSERT_TRUE(l->AckEntries({earn.entry_id}).ok()); });
  EXPECT_EQ(l->UnackedPoints(7).value(), -30);
  EXPECT_TRUE(SetHolds(*l->balances_index(), BalanceItem(7, 100)));
  EXPECT_FALSE(SetHolds(*l->balances_index(), BalanceItem(7, 0)));

  InTransaction(*l, [&] { ASSERT_TRUE(l->AckEntries({redeem.entry_id, earn.entry_id}).ok()); });
  EXPECT_EQ(l->UnackedPoints(7).value(), 0);
  EXPECT_TRUE(SetHolds(*l->balances_index(), BalanceItem(7, 70)));
  // Member 8 is not cached: acknowledging its entry indexes nothing for it.
  auto pending = l->UnackedEntries(0, 10).value();
  ASSERT_EQ(pending.size(), 1u);
  InTransaction(*l, [&] { ASSERT_TRUE(l->AckEntries({pending[0].entry_id}).ok()); });
  EXPECT_EQ(l->balances_index()->Count().value(), 1u);
}

// An upsert that does not refresh the index (a checkout's commit) leaves the member's item
// as it was; one that does, moves it.
TEST_F(LedgerSyncStateTest, UpsertMemberFollowsTheBalanceIndexOnlyWhenAsked) {
  auto l = OpenWriter();
  InTransaction(*l, [&] { ASSERT_TRUE(l->UpsertMember(FullMember(7, 0)).ok()); });
  EXPECT_TRUE(SetHolds(*l->balances_index(), BalanceItem(7, 0)));
  InTransaction(*l, [&] {
    ASSERT_TRUE(l->AddLot(Lot(7, 40, 2000000000)).ok());
    ASSERT_TRUE(l->UpsertMember(FullMember(7, 40), /*refresh_balance_index=*/false).ok());
  });
  EXPECT_TRUE(SetHolds(*l->balances_index(), BalanceItem(7, 0)));
  InTransaction(*l, [&] { ASSERT_TRUE(l->UpsertMember(FullMember(7, 40)).ok()); });
  EXPECT_TRUE(SetHolds(*l->balances_index(), BalanceItem(7, 40)));
}

TEST_F(LedgerSyncStateTest, RestoreEntryChainsWhatContinuesTheChainAndRefusesWhatDoesNotMatch) {
  auto l = OpenWriter();
  const EntryRow first = ChainEntry("T01", 1, std::string(32, '\0'), 100, 1000);
  const EntryRow second = ChainEntry("T01", 2, first.hash, 50, 2000);
  InTransaction(*l, [&] {
    EXPECT_EQ(l->RestoreEntry(first).value(), RestoreOutcome::kChained);
    EXPECT_EQ(l->RestoreEntry(second).value(), RestoreOutcome::kChained);
    EXPECT_EQ(l->RestoreEntry(first).value(), RestoreOutcome::kPresent);
  });
  EXPECT_EQ(l->head_seq(), 2);
  EXPECT_EQ(l->head_hash(), second.hash);
  EXPECT_EQ(l->EntryCount().value(), 2);
  EXPECT_EQ(l->PendingEntryCount().value(), 0);  // HQ holds them: acknowledged
  EXPECT_EQ(l->BranchEntryCount().value(), 0);
  EXPECT_TRUE(SetHolds(*l->entries_index(), EntryItem(second)));
  EXPECT_TRUE(l->Verify().ok());

  // The same id with other content.
  EntryRow changed = second;
  changed.points = 51;
  changed.hash = model::ChainHash(changed.prev_hash, model::CanonicalEntryBytes(changed));
  auto conflict = l->RestoreEntry(changed);
  ASSERT_FALSE(conflict.ok());
  EXPECT_EQ(conflict.status().code(), ErrorCode::kConflict);
  // Content that does not match its hash.
  EntryRow tampered = ChainEntry("T01", 3, second.hash, 10, 3000);
  tampered.points = 1000;
  auto bad = l->RestoreEntry(tampered);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kBadRequest);
  // Another terminal's entry.
  auto foreign = l->RestoreEntry(ChainEntry("T02", 3, second.hash, 10, 3000));
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.status().code(), ErrorCode::kBadRequest);
  EXPECT_EQ(l->EntryCount().value(), 2);
  EXPECT_EQ(l->head_seq(), 2);

  // A restored chain takes appends after it.
  EntryRow next;
  InTransaction(*l, [&] { next = Append(*l, "earn", 7, 1, 4000); });
  EXPECT_EQ(next.seq, 3);
  EXPECT_EQ(next.prev_hash, second.hash);
  EXPECT_TRUE(l->Verify().ok());
}

// A restored checkout takes its id (a second restore of it changes nothing), counts as
// uploaded, and keeps its code bound so a replay is still refused.
TEST_F(LedgerSyncStateTest, RestoredCheckoutsAndRefundsAreInsertedOnceAndCountAsUploaded) {
  auto l = OpenWriter();
  model::Checkout with_member = MakeCheckout("C1", 42, 1000);
  model::Checkout without = MakeCheckout("C2", std::nullopt, 2000);
  model::Refund refund = MakeRefund("R1", "C2", 3000);
  InTransaction(*l, [&] {
    ASSERT_TRUE(l->BindCode("code-other", "C0", 42, 500).ok());
    EXPECT_TRUE(l->RestoreCheckout(with_member).value());
    EXPECT_TRUE(l->RestoreCheckout(without).value());
    EXPECT_TRUE(l->RestoreRefund(refund).value());
  });
  ExpectSameCheckout(*l->GetCheckout("C1").value(), with_member);
  ExpectSameRefund(refund, *l->GetRefund("R1").value());
  EXPECT_EQ(l->CodeBoundTo(with_member.code_hash).value(), "C1");
  EXPECT_TRUE(l->UnuploadedCheckoutsWithoutEntries(10).value().empty());
  EXPECT_TRUE(l->UnuploadedRefunds(10).value().empty());

  model::Checkout other = MakeCheckout("C1", 43, 9000);
  other.code_hash = "code-other";
  model::Refund other_refund = MakeRefund("R1", "C9", 9000);
  InTransaction(*l, [&] {
    EXPECT_FALSE(l->RestoreCheckout(other).value());
    EXPECT_FALSE(l->RestoreRefund(other_refund).value());
  });
  EXPECT_EQ(l->GetCheckout("C1").value()->member_id, 42u);  // the first one stays
  EXPECT_EQ(l->GetRefund("R1").value()->checkout_id, "C2");
  EXPECT_EQ(l->CodeBoundTo("code-other").value(), "C0");

  // A restored checkout whose code is bound already leaves the binding as it is.
  model::Checkout rebinding = MakeCheckout("C3", 42, 4000);
  rebinding.code_hash = "code-other";
  InTransaction(*l, [&] { EXPECT_TRUE(l->RestoreCheckout(rebinding).value()); });
  EXPECT_EQ(l->CodeBoundTo("code-other").value(), "C0");
}

// Checkouts without a member (no entry carries them) and refunds travel on their own until
// HQ has them; MarkUploaded takes them off the lists.
TEST_F(LedgerSyncStateTest, CheckoutsWithoutEntriesAndRefundsWaitForUploadUntilMarked) {
  auto l = OpenWriter();
  InTransaction(*l, [&] {
    ASSERT_TRUE(l->InsertCheckout(MakeCheckout("C-late", std::nullopt, 3000)).ok());
    ASSERT_TRUE(l->InsertCheckout(MakeCheckout("C-early", std::nullopt, 1000)).ok());
    ASSERT_TRUE(l->InsertCheckout(MakeCheckout("C-member", 42, 500)).ok());  // its entries carry it
    ASSERT_TRUE(l->InsertCheckout(MakeCheckout("C-mid", std::nullopt, 2000)).ok());
    ASSERT_TRUE(l->InsertRefund(MakeRefund("R-2", "C-member", 5000)).ok());
    ASSERT_TRUE(l->InsertRefund(MakeRefund("R-1", "C-late", 4000)).ok());
  });
  auto pending = l->UnuploadedCheckoutsWithoutEntries(10).value();
  EXPECT_EQ(Ids(pending, &model::Checkout::checkout_id),
            (std::vector<std::string>{"C-early", "C-mid", "C-late"}));
  ASSERT_EQ(pending[0].lines.size(), 2u);  // whole, with lines
  EXPECT_EQ(Ids(l->UnuploadedCheckoutsWithoutEntries(2).value(), &model::Checkout::checkout_id),
            (std::vector<std::string>{"C-early", "C-mid"}));
  EXPECT_EQ(Ids(l->UnuploadedRefunds(10).value(), &model::Refund::refund_id),
            (std::vector<std::string>{"R-1", "R-2"}));
  EXPECT_EQ(Ids(l->UnuploadedRefunds(1).value(), &model::Refund::refund_id),
            (std::vector<std::string>{"R-1"}));

  InTransaction(*l, [&] { ASSERT_TRUE(l->MarkUploaded({"C-early", "C-unknown"}, {"R-1"}).ok()); });
  EXPECT_EQ(Ids(l->UnuploadedCheckoutsWithoutEntries(10).value(), &model::Checkout::checkout_id),
            (std::vector<std::string>{"C-mid", "C-late"}));
  EXPECT_EQ(Ids(l->UnuploadedRefunds(10).value(), &model::Refund::refund_id),
            (std::vector<std::string>{"R-2"}));
  InTransaction(*l, [&] { ASSERT_TRUE(l->MarkUploaded({"C-mid", "C-late"}, {"R-2"}).ok()); });
  l.reset();
  auto r = OpenReader();
  EXPECT_TRUE(r->UnuploadedCheckoutsWithoutEntries(10).value().empty());
  EXPECT_TRUE(r->UnuploadedRefunds(10).value().empty());
}

TEST_F(LedgerSyncStateTest, MembersAreFoundByTheirReconKeys) {
  auto l = OpenWriter();
  InTransaction(*l, [&] {
    for (uint64_t id : {9u, 7u, 8u}) ASSERT_TRUE(l->UpsertMember(FullMember(id, 0)).ok());
  });
  EXPECT_EQ(
      l->MembersByReconKey({recon::MemberKey("9"), recon::MemberKey("7"), recon::MemberKey("123")})
          .value(),
      (std::vector<uint64_t>{7, 9}));
  EXPECT_TRUE(l->MembersByReconKey({}).value().empty());
  EXPECT_TRUE(l->MembersByReconKey({"7"}).value().empty());  // a member id is not its key
}

// The reconciliation index is the writer's: it follows every appended entry in the same
// transaction (a rollback takes it back too), and FlushReconIndex folds its journal.
TEST_F(LedgerSyncStateTest, TheReconIndexFollowsTheChainAndIsTheWritersOnly) {
  auto l = OpenWriter();
  ASSERT_NE(l->entries_index(), nullptr);
  ASSERT_NE(l->balances_index(), nullptr);
  EntryRow kept, dropped;
  InTransaction(*l, [&] { kept = Append(*l, "earn", 7, 1, 1000); });
  ASSERT_TRUE(l->Begin().ok());
  dropped = Append(*l, "earn", 7, 2, 2000);
  EXPECT_TRUE(SetHolds(*l->entries_index(), EntryItem(dropped)));
  l->Rollback();
  EXPECT_TRUE(SetHolds(*l->entries_index(), EntryItem(kept)));
  EXPECT_FALSE(SetHolds(*l->entries_index(), EntryItem(dropped)));
  EXPECT_EQ(l->entries_index()->Count().value(), 1u);
  EXPECT_GT(l->entries_index()->PendingChanges().value(), 0u);

  InTransaction(*l, [&] { ASSERT_TRUE(l->FlushReconIndex().ok()); });
  EXPECT_EQ(l->entries_index()->PendingChanges().value(), 0u);
  EXPECT_EQ(l->balances_index()->PendingChanges().value(), 0u);
  EXPECT_TRUE(SetHolds(*l->entries_index(), EntryItem(kept)));

  auto r = OpenReader();
  EXPECT_EQ(r->entries_index(), nullptr);
  EXPECT_EQ(r->balances_index(), nullptr);
  auto flush = r->FlushReconIndex();
  ASSERT_FALSE(flush.ok());
  EXPECT_EQ(flush.code(), ErrorCode::kInternal);
}

// A snapshot holds one state of both sets while the writer goes on: what was committed
// when it opened, not what came after; a new snapshot sees the rest.
TEST_F(LedgerSyncStateTest, AReconSnapshotHoldsOneStateOfBothSets) {
  auto l = OpenWriter();
  EntryRow first, second;
  InTransaction(*l, [&] {
    first = Append(*l, "earn", 7, 30, 1000);
    ASSERT_TRUE(l->UpsertMember(FullMember(7, 30)).ok());
    ASSERT_TRUE(l->FlushReconIndex().ok());
  });
  auto snap = ReconSnapshot::Open(path_);
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  EXPECT_TRUE(SetHolds((*snap)->entries(), EntryItem(first)));
  EXPECT_TRUE(SetHolds((*snap)->balances(), BalanceItem(7, 0)));  // 30, all of it unacknowledged

  InTransaction(*l, [&] {
    second = Append(*l, "earn", 7, 5, 2000);
    ASSERT_TRUE(l->AckEntries({first.entry_id}).ok());
    ASSERT_TRUE(l->FlushReconIndex().ok());
  });
  EXPECT_FALSE(SetHolds((*snap)->entries(), EntryItem(second)));
  EXPECT_TRUE(SetHolds((*snap)->balances(), BalanceItem(7, 0)));

  auto later = ReconSnapshot::Open(path_);
  ASSERT_TRUE(later.ok()) << later.status().ToString();
  EXPECT_TRUE(SetHolds((*later)->entries(), EntryItem(first)));
  EXPECT_TRUE(SetHolds((*later)->entries(), EntryItem(second)));
  EXPECT_TRUE(SetHolds((*later)->balances(), BalanceItem(7, 25)));  // 30 less the unacknowledged 5
  snap->reset();
  later->reset();
  // Read-only and without a writer's index: a file no writer made is refused.
  EXPECT_FALSE(ReconSnapshot::Open((dir_ / "none.db").string()).ok());
}

SyncRunRow RunRow(const std::string& id, int64_t started_at_ms, const std::string& result) {
  SyncRunRow r;
  r.run_id = id;
  r.started_at_ms = started_at_ms;
  r.result = result;
  if (result != "running") r.finished_at_ms = started_at_ms + 500;
  r.uploaded = 1;
  r.downloaded = 2;
  r.repaired = 3;
  r.conflicts = 4;
  r.round_trips = 5;
  r.bytes_sent = 6;
  r.bytes_received = 7;
  if (result == "failed") r.error = "unavailable: HQ did not answer";
  return r;
}

TEST_F(LedgerSyncStateTest, SyncRunsAreRecordedNewestFirstAndReplacedById) {
  auto l = OpenWriter();
  EXPECT_TRUE(l->RecentSyncRuns(10).value().empty());
  EXPECT_EQ(l->LastSuccessfulSyncRun().value(), std::nullopt);
  ASSERT_TRUE(l->PutSyncRun(RunRow("run-1", 1000, "ok")).ok());
  ASSERT_TRUE(l->PutSyncRun(RunRow("run-2", 2000, "failed")).ok());
  ASSERT_TRUE(l->PutSyncRun(RunRow("run-3", 3000, "running")).ok());
  auto runs = l->RecentSyncRuns(10).value();
  EXPECT_EQ(Ids(runs, &SyncRunRow::run_id), (std::vector<std::string>{"run-3", "run-2", "run-1"}));
  EXPECT_EQ(runs[0].finished_at_ms, std::nullopt);
  EXPECT_EQ(runs[1].error, "unavailable: HQ did not answer");
  const SyncRunRow& ok = runs[2];
  EXPECT_EQ(ok.finished_at_ms, 1500);
  EXPECT_EQ(std::vector<int64_t>({ok.uploaded, ok.downloaded, ok.repaired, ok.conflicts,
                                  ok.round_trips, ok.bytes_sent, ok.bytes_received}),
            (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(Ids(l->RecentSyncRuns(1).value(), &SyncRunRow::run_id),
            (std::vector<std::string>{"run-3"}));
  EXPECT_EQ(l->LastSuccessfulSyncRun().value()->run_id, "run-1");

  // A run's end replaces its start.
  ASSERT_TRUE(l->PutSyncRun(RunRow("run-3", 3000, "ok")).ok());
  EXPECT_EQ(l->RecentSyncRuns(10).value().size(), 3u);
  EXPECT_EQ(l->LastSuccessfulSyncRun().value()->run_id, "run-3");
  l.reset();
  auto r = OpenReader();
  EXPECT_EQ(r->LastSuccessfulSyncRun().value()->finished_at_ms, 3500);
}

TEST_F(LedgerSyncStateTest, RunsInterruptedByAStopBecomeFailedOnce) {
  {
    auto l = OpenWriter();
    ASSERT_TRUE(l->PutSyncRun(RunRow("run-1", 1000, "ok")).ok());
    ASSERT_TRUE(l->PutSyncRun(RunRow("run-2", 2000, "running")).ok());
    ASSERT_TRUE(l->PutSyncRun(RunRow("run-3", 3000, "running")).ok());
  }
  auto l = OpenWriter();  // the agent starts again
  EXPECT_EQ(l->FailInterruptedSyncRuns(9000).value(), 2);
  EXPECT_EQ(l->FailInterruptedSyncRuns(9500).value(), 0);
  const auto runs = l->RecentSyncRuns(10).value();
  ASSERT_EQ(runs.size(), 3u);
  for (const auto& run : runs) {
    if (run.run_id == "run-1") {
      EXPECT_EQ(run.result, "ok");
      EXPECT_EQ(run.finished_at_ms, 1500);
      continue;
    }
    EXPECT_EQ(run.result, "failed") << run.run_id;
    EXPECT_EQ(run.finished_at_ms, 9000) << run.run_id;
    EXPECT_NE(run.error.find("interrupted"), std::string::npos) << run.error;
  }
  EXPECT_EQ(l->LastSuccessfulSyncRun().value()->run_id, "run-1");
}

}  // namespace
}  // namespace loyalty::ledger
