// The ledger's entries as the checkout use cases read them: what is pending, a member's
// recent entries, a checkout's entries, the last redeem and the earnings since a time.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ledger_test_util.h"

namespace loyalty::ledger {
namespace {

class LedgerEntriesTest : public LedgerTest {};

TEST_F(LedgerEntriesTest, AnAppendedEntryIsReadBackWithEveryField) {
  auto l = OpenWriter();
  EntryRow a;
  InTransaction(*l,
                [&] { a = Append(*l, "redeem", 7, -40, 1234, "C9", "R3", R"({"why":"test"})"); });
  EXPECT_EQ(a.terminal_id, "T01");
  l.reset();
  auto r = OpenReader();
  auto back = r->RecentEntries(7, 1).value();
  ASSERT_EQ(back.size(), 1u);
  const EntryRow& e = back[0];
  EXPECT_EQ(e.seq, 1);
  EXPECT_EQ(e.entry_id, a.entry_id);
  EXPECT_EQ(e.terminal_id, "T01");
  EXPECT_EQ(e.kind, "redeem");
  EXPECT_EQ(e.member_id, 7u);
  EXPECT_EQ(e.points, -40);
  EXPECT_EQ(e.at_ms, 1234);
  EXPECT_EQ(e.checkout_id, "C9");
  EXPECT_EQ(e.refund_id, "R3");
  EXPECT_EQ(e.detail, R"({"why":"test"})");
  EXPECT_EQ(e.prev_hash, std::string(32, '\0'));
  EXPECT_EQ(e.hash, a.hash);
  EXPECT_EQ(e.hash, model::ChainHash(e.prev_hash, model::CanonicalEntryBytes(e)));
  EXPECT_FALSE(e.acked);
}

// The committed head is read from the file: a reader sees the writer's commits (its own
// head_seq() stays what it loaded at open), an open transaction's appends are not seen.
TEST_F(LedgerEntriesTest, TheCommittedHeadIsTheFilesLastEntryOnAnyConnection) {
  auto w = OpenWriter();
  auto r = OpenReader();
  EXPECT_EQ(r->CommittedHead().value(), std::nullopt);
  EXPECT_EQ(w->CommittedHead().value(), std::nullopt);
  EntryRow b;
  InTransaction(*w, [&] {
    Append(*w, "earn", 7, 100, 1000);
    b = Append(*w, "earn", 8, 5, 2000);
  });
  auto head = r->CommittedHead().value();
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->seq, 2);
  EXPECT_EQ(head->hash, b.hash);
  EXPECT_EQ(r->head_seq(), 0);  // the reader's own view, from its open
  ASSERT_TRUE(w->Begin().ok());
  Append(*w, "earn", 7, 1, 3000);
  EXPECT_EQ(r->CommittedHead().value()->seq, 2);
  w->Rollback();
  EXPECT_EQ(w->CommittedHead().value()->hash, b.hash);
}

TEST_F(LedgerEntriesTest, PendingEntriesAreThoseHqHasNotAcknowledged) {
  auto l = OpenWriter();
  EXPECT_EQ(l->PendingEntryCount().value(), 0);
  EntryRow a, b, c;
  InTransaction(*l, [&] {
    a = Append(*l, "earn", 7, 100, 1000);
    b = Append(*l, "earn", 8, 50, 2000);
    c = Append(*l, "redeem", 7, -20, 3000);
  });
  EXPECT_EQ(l->PendingEntryCount().value(), 3);
  InTransaction(*l, [&] { ASSERT_TRUE(l->AckEntries({b.entry_id, NewEntryId(9999)}).ok()); });
  EXPECT_EQ(l->PendingEntryCount().value(), 2);
  InTransaction(*l, [&] { ASSERT_TRUE(l->AckEntries({b.entry_id, a.entry_id, c.entry_id}).ok()); });
  EXPECT_EQ(l->PendingEntryCount().value(), 0);
  EXPECT_EQ(l->EntryCount().value(), 3);  // acknowledged entries stay on the chain
  l.reset();
  EXPECT_EQ(OpenReader()->PendingEntryCount().value(), 0);
}

TEST_F(LedgerEntriesTest, RecentEntriesAreTheMembersNewestFirstUpToTheLimit) {
  auto l = OpenWriter();
  InTransaction(*l, [&] {
    Append(*l, "earn", 7, 1, 1000);
    Append(*l, "earn", 8, 2, 2000);
    Append(*l, "redeem", 7, -3, 3000);
    Append(*l, "earn", 7, 4, 4000);
  });
  auto two = l->RecentEntries(7, 2).value();
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].seq, 4);
  EXPECT_EQ(two[0].points, 4);
  EXPECT_EQ(two[1].seq, 3);
  EXPECT_EQ(two[1].kind, "redeem");
  auto all = l->RecentEntries(7, 10).value();
  ASSERT_EQ(all.size(), 3u);
  for (const auto& e : all) EXPECT_EQ(e.member_id, 7u);
  EXPECT_EQ(all[2].seq, 1);
  EXPECT_TRUE(l->RecentEntries(99, 10).value().empty());
  EXPECT_TRUE(l->RecentEntries(7, 0).value().empty());
}

// A checkout's entries are the ones its stored answer and its refunds' answers name (and
// that belong to it): an entry of the checkout that no answer names is not among them.
TEST_F(LedgerEntriesTest, ACheckoutsEntriesAreTheOnesItsAnswersName) {
  auto l = OpenWriter();
  EntryRow earn, redeem, clawback, unnamed, other;
  InTransaction(*l, [&] {
    earn = Append(*l, "earn", 7, 50, 1000, "C1");
    redeem = Append(*l, "redeem", 7, -10, 1000, "C1");
    other = Append(*l, "earn", 7, 5, 1500, "C2");
    unnamed = Append(*l, "earn", 7, 1, 1600, "C1");
    clawback = Append(*l, "clawback", 7, -20, 2000, "C1", "R1");
  });
  nlohmann::json sale{{"entries", nlohmann::json::array({redeem.entry_id, earn.entry_id,
                                                         other.entry_id, NewEntryId(1)})}};
  nlohmann::json refund{{"entries", nlohmann::json::array({clawback.entry_id})}};
  InTransaction(*l, [&] {
    ASSERT_TRUE(l->InsertCheckout(MakeCheckout("C1", 7, 1000, 5000, sale.dump())).ok());
    ASSERT_TRUE(l->InsertRefund(MakeRefund("R1", "C1", 2000, 1990, refund.dump())).ok());
    ASSERT_TRUE(l->InsertCheckout(MakeCheckout("C3", 7, 3000, 100, "not json")).ok());
  });
  auto entries = l->EntriesForCheckout("C1").value();
  EXPECT_EQ(Ids(entries, &EntryRow::entry_id),
            (std::vector<std::string>{earn.entry_id, redeem.entry_id,
                                      clawback.entry_id}));  // in seq order
  EXPECT_TRUE(l->EntriesForCheckout("C2").value().empty());  // no checkout row: no answer names it
  EXPECT_TRUE(
      l->EntriesForCheckout("C3").value().empty());  // an answer that is not JSON names nothing
  EXPECT_TRUE(l->EntriesForCheckout("nope").value().empty());
}

TEST_F(LedgerEntriesTest, LastRedeemIsTheMembersLatestRedeemEntry) {
  auto l = OpenWriter();
  EXPECT_EQ(l->LastRedeemAtMs(7).value(), 0);
  InTransaction(*l, [&] {
    Append(*l, "redeem", 7, -10, 5000);
    Append(*l, "redeem", 7, -10, 3000);  // the latest by time, not by seq
    Append(*l, "earn", 7, 10, 9000);
    Append(*l, "redeem", 8, -10, 8000);
  });
  EXPECT_EQ(l->LastRedeemAtMs(7).value(), 5000);
  EXPECT_EQ(l->LastRedeemAtMs(8).value(), 8000);
  EXPECT_EQ(l->LastRedeemAtMs(9).value(), 0);
}

TEST_F(LedgerEntriesTest, EarnedSinceSumsTheMembersEarnEntriesStrictlyAfter) {
  auto l = OpenWriter();
  InTransaction(*l, [&] {
    Append(*l, "earn", 7, 100, 1000);
    Append(*l, "earn", 7, 30, 2000);
    Append(*l, "redeem", 7, -50, 2500);
    Append(*l, "clawback", 7, -10, 2600);
    Append(*l, "earn", 8, 70, 3000);
  });
  EXPECT_EQ(l->EarnedSince(7, 0).value(), 130);
  EXPECT_EQ(l->EarnedSince(7, 1000).value(), 30);
  EXPECT_EQ(l->EarnedSince(7, 2000).value(), 0);
  EXPECT_EQ(l->EarnedSince(8, 0).value(), 70);
}

}  // namespace
}  // namespace loyalty::ledger
