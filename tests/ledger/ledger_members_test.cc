// The ledger's cached members and what hangs off them: identities, lots, coupons, revoked
// devices, code bindings, and the meta table.
#include <gtest/gtest.h>

#include "ledger_test_util.h"

namespace loyalty::ledger {
namespace {

class LedgerMembersTest : public LedgerTest {};

void ExpectSameMember(const MemberRow& a, const MemberRow& b) {
  EXPECT_EQ(a.member_id, b.member_id);
  EXPECT_EQ(a.display_name, b.display_name);
  EXPECT_EQ(a.phone, b.phone);
  EXPECT_EQ(a.phone_hash, b.phone_hash);
  EXPECT_EQ(a.tier, b.tier);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.frozen_reason, b.frozen_reason);
  EXPECT_EQ(a.birthday_month, b.birthday_month);
  EXPECT_EQ(a.snapshot_at_s, b.snapshot_at_s);
  EXPECT_EQ(a.snapshot_balance, b.snapshot_balance);
  EXPECT_EQ(a.month_spend_cents, b.month_spend_cents);
  EXPECT_EQ(a.unfrozen_at_ms, b.unfrozen_at_ms);
  EXPECT_EQ(a.balance, b.balance);
}

TEST_F(LedgerMembersTest, AMemberIsStoredWithEveryFieldAndReplacedWhole) {
  const MemberRow full = FullMember(42, 0);
  {
    auto l = OpenWriter();
    EXPECT_FALSE(l->GetMember(42).value());
    ASSERT_TRUE(l->UpsertMember(full).ok());
    ExpectSameMember(*l->GetMember(42).value(), full);
  }
  auto r = OpenReader();
  ExpectSameMember(*r->GetMember(42).value(), full);  // on disk, for another connection
  r.reset();
  // An upsert replaces every field: absent masked values and snapshot time become absent.
  auto l = OpenWriter();
  MemberRow bare;
  bare.member_id = 42;
  ASSERT_TRUE(l->UpsertMember(bare).ok());
  auto back = l->GetMember(42).value();
  ASSERT_TRUE(back);
  ExpectSameMember(*back, bare);
  EXPECT_FALSE(back->display_name);
  EXPECT_FALSE(back->snapshot_at_s);
  EXPECT_EQ(back->tier, "member");
  EXPECT_EQ(back->status, "active");
}

// ConfirmMembers (after an ok sync run): a held member's snapshot_at_s reads as the later of
// its own snapshot and the confirmation; a member HQ never sent stays without one; the
// confirmation never moves back; and the data itself is not rewritten.
TEST_F(LedgerMembersTest, AConfirmationIsTheSnapshotTimeOfEveryMemberWithAnOlderOne) {
  auto l = OpenWriter();
  MemberRow old_one = FullMember(1, 0), new_one = FullMember(2, 0), never;
  old_one.snapshot_at_s = 1000;
  new_one.snapshot_at_s = 5000;
  never.member_id = 3;
  for (const auto& m : {old_one, new_one, never}) ASSERT_TRUE(l->UpsertMember(m).ok());
  EXPECT_EQ(l->GetMember(1).value()->snapshot_at_s, 1000);

  ASSERT_TRUE(l->ConfirmMembers(3000).ok());
  EXPECT_EQ(l->GetMember(1).value()->snapshot_at_s, 3000);
  EXPECT_EQ(l->GetMember(2).value()->snapshot_at_s, 5000);
  EXPECT_FALSE(l->GetMember(3).value()->snapshot_at_s);
  EXPECT_EQ(l->GetMeta(kMembersConfirmedKey).value(), "3000");

  ASSERT_TRUE(l->ConfirmMembers(2000).ok());  // earlier: ignored
  EXPECT_EQ(l->GetMember(1).value()->snapshot_at_s, 3000);
  ASSERT_TRUE(l->ConfirmMembers(6000).ok());
  EXPECT_EQ(l->GetMember(2).value()->snapshot_at_s, 6000);
  auto r = OpenReader();  // another connection reads the same
  EXPECT_EQ(r->GetMember(1).value()->snapshot_at_s, 6000);

  // A damaged value refuses rather than guessing.
  ASSERT_TRUE(l->PutMeta(kMembersConfirmedKey, "12x").ok());
  EXPECT_EQ(l->ConfirmMembers(7000).code(), ErrorCode::kLedgerDamaged);
}

// A confirmation in a new month forgets the month spends of snapshots from before it (they
// are an earlier month's); a snapshot of this month keeps its spend, and so does a member
// HQ never sent.
TEST_F(LedgerMembersTest, SpendsOfSnapshotsBeforeTheMonthAreForgotten) {
  auto l = OpenWriter();
  MemberRow last_month = FullMember(1, 0), this_month = FullMember(2, 0);
  last_month.snapshot_at_s = 1000;
  last_month.month_spend_cents = 45000;
  this_month.snapshot_at_s = 5000;
  this_month.month_spend_cents = 7000;
  for (const auto& m : {last_month, this_month}) ASSERT_TRUE(l->UpsertMember(m).ok());
  ASSERT_TRUE(l->ForgetSpendsBefore(5000).ok());
  EXPECT_EQ(l->GetMember(1).value()->month_spend_cents, 0);
  EXPECT_EQ(l->GetMember(2).value()->month_spend_cents, 7000);
  EXPECT_EQ(l->GetMember(1).value()->tier, last_month.tier);  // nothing else changes
  // Once this month's first confirmation is recorded, the month's spends are settled: later
  // runs of the month do not read the members again.
  ASSERT_TRUE(l->ConfirmMembers(6000).ok());
  last_month.member_id = 3;
  ASSERT_TRUE(l->UpsertMember(last_month).ok());  // written directly, as no run would
  ASSERT_TRUE(l->ForgetSpendsBefore(5000).ok());
  EXPECT_EQ(l->GetMember(3).value()->month_spend_cents, 45000);
  ASSERT_TRUE(l->ForgetSpendsBefore(7000).ok());  // a new month: done again
  EXPECT_EQ(l->GetMember(3).value()->month_spend_cents, 0);
}

// HQ's own entries of a member (schema 7) as a snapshot carries them: each snapshot's list
// replaces the member's, at most kMaxHqEntriesPerMember kept (the newest), read newest first;
// they are not the terminal's chain, and eviction forgets them with the member.
TEST_F(LedgerMembersTest, HqEntriesAreTheLastSnapshotsNewestFirstAndGoWithTheMember) {
  auto l = OpenWriter();
  ASSERT_TRUE(l->UpsertMember(FullMember(5, 0)).ok());
  auto entry = [](int i, const char* kind, int64_t points) {
    model::Entry e;
    e.entry_id = std::string(30, '0') + (i < 10 ? "0" : "") + std::to_string(i);
    e.kind = kind;
    e.points = points;
    e.at_ms = 1000 * i;
    return e;
  };
  ASSERT_TRUE(l->ReplaceHqEntries(5, {entry(1, "adjust", 300), entry(2, "tier_change", 0)}).ok());
  auto got = l->RecentHqEntries(5, 20).value();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].kind, "tier_change");
  EXPECT_EQ(got[1].kind, "adjust");
  EXPECT_EQ(got[1].points, 300);
  EXPECT_EQ(got[1].at_ms, 1000);
  EXPECT_EQ(got[1].terminal_id, "_hq");
  EXPECT_EQ(got[1].member_id, 5u);
  EXPECT_EQ(l->EntryCount().value(), 0);  // not the terminal's chain
  EXPECT_TRUE(l->RecentHqEntries(6, 20).value().empty());

  std::vector<model::Entry> many;
  for (int i = 1; i <= 25; ++i) many.push_back(entry(i, "expire", -i));
  ASSERT_TRUE(l->ReplaceHqEntries(5, many).ok());
  got = l->RecentHqEntries(5, 100).value();
  ASSERT_EQ(got.size(), Ledger::kMaxHqEntriesPerMember);
  EXPECT_EQ(got.front().points, -25);  // the newest kept
  EXPECT_EQ(got.back().points, -6);
  EXPECT_EQ(l->RecentHqEntries(5, 3).value().size(), 3u);

  ASSERT_TRUE(l->ReplaceHqEntries(5, {}).ok());  // a snapshot without any
  EXPECT_TRUE(l->RecentHqEntries(5, 20).value().empty());

  ASSERT_TRUE(l->ReplaceHqEntries(5, {entry(3, "unfreeze", 0)}).ok());
  ASSERT_TRUE(l->DropMember(5).value());
  EXPECT_TRUE(l->RecentHqEntries(5, 20).value().empty());
}

TEST_F(LedgerMembersTest, MemberCountCountsEachMemberOnce) {
  auto l = OpenWriter();
  EXPECT_EQ(l->MemberCount().value(), 0);
  InTransaction(*l, [&] {
    for (uint64_t id : {7u, 8u, 9u, 7u}) ASSERT_TRUE(l->UpsertMember(FullMember(id, 0)).ok());
  });
  EXPECT_EQ(l->MemberCount().value(), 3);
}

TEST_F(LedgerMembersTest, AnIdentityNamesOneMemberPerChannelAndExternalId) {
  auto l = OpenWriter();
  EXPECT_EQ(l->LookupIdentity("wechat", "100000000042").value(), std::nullopt);
  ASSERT_TRUE(l->PutIdentity("wechat", "100000000042", 42).ok());
  ASSERT_TRUE(l->PutIdentity("alipay", "100000000042", 43).ok());
  ASSERT_TRUE(l->PutIdentity("card", "8800000001", 42).ok());
  EXPECT_EQ(l->LookupIdentity("wechat", "100000000042").value(), 42u);
  EXPECT_EQ(l->LookupIdentity("alipay", "100000000042").value(),
            43u);  // the channel is part of the key
  EXPECT_EQ(l->LookupIdentity("card", "8800000001").value(), 42u);
  EXPECT_EQ(l->LookupIdentity("wechat", "100000000043").value(), std::nullopt);
  // HQ moved the number to another member: the identity follows.
  ASSERT_TRUE(l->PutIdentity("wechat", "100000000042", 44).ok());
  l.reset();
  EXPECT_EQ(OpenReader()->LookupIdentity("wechat", "100000000042").value(), 44u);
}

TEST_F(LedgerMembersTest, LotsKeepTheirFieldsAndSpentLotsAreLeftOut) {
  auto l = OpenWriter();
  EXPECT_TRUE(l->Lots(7).value().empty());
  int64_t a = 0, b = 0, debt = 0;
  InTransaction(*l, [&] {
    a = l->AddLot(Lot(7, 100, 2000000000, "e-a")).value();
    b = l->AddLot(Lot(7, 30, 1900000000, "e-b")).value();
    model::Lot d = Lot(7, 0, model::kNeverExpires);
    d.remaining = -25;  // the debt lot
    debt = l->AddLot(d).value();
    ASSERT_EQ(l->AddLot(Lot(8, 5, 1900000000)).value(), 1);  // ids are per member
  });
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 2);
  EXPECT_EQ(debt, 3);
  auto lots = l->Lots(7).value();
  ASSERT_EQ(lots.size(), 3u);
  EXPECT_EQ(lots[0].lot_id, b);  // soonest expiry first, the debt lot last
  EXPECT_EQ(lots[0].entry_id, "e-b");
  EXPECT_EQ(lots[0].member_id, 7u);
  EXPECT_EQ(lots[0].earned_at_s, 1795000000);
  EXPECT_EQ(lots[1].lot_id, a);
  EXPECT_EQ(lots[1].points, 100);
  EXPECT_EQ(lots[2].lot_id, debt);
  EXPECT_EQ(lots[2].remaining, -25);
  EXPECT_EQ(lots[2].expires_at_s, model::kNeverExpires);

  InTransaction(*l, [&] {
    ASSERT_TRUE(l->SetLotRemaining(7, b, 0).ok());   // spent
    ASSERT_TRUE(l->SetLotRemaining(7, a, 60).ok());  // partly spent
    ASSERT_TRUE(l->SetLotRemaining(9, a, 1).ok());   // another member's key: no lot of member 7
  });
  lots = l->Lots(7).value();
  ASSERT_EQ(lots.size(), 2u);
  EXPECT_EQ(lots[0].lot_id, a);
  EXPECT_EQ(lots[0].remaining, 60);
  EXPECT_EQ(lots[0].points, 100);  // as created
  EXPECT_TRUE(l->Lots(9).value().empty());
}

TEST_F(LedgerMembersTest, DeleteLotsEmptiesOneMemberAndItsIdsStartOver) {
  auto l = OpenWriter();
  InTransaction(*l, [&] {
    l->AddLot(Lot(7, 10, 2000000000)).value();
    l->AddLot(Lot(7, 20, 2000000000)).value();
    l->AddLot(Lot(8, 30, 2000000000)).value();
  });
  InTransaction(*l, [&] { ASSERT_TRUE(l->DeleteLots(7).ok()); });
  EXPECT_TRUE(l->Lots(7).value().empty());
  ASSERT_EQ(l->Lots(8).value().size(), 1u);
  EXPECT_EQ(l->Lots(8).value()[0].points, 30);
  InTransaction(*l, [&] { EXPECT_EQ(l->AddLot(Lot(7, 5, 2000000000)).value(), 1); });
  ASSERT_TRUE(l->DeleteLots(99).ok());  // none: nothing to do
}

TEST_F(LedgerMembersTest, ACouponIsStoredReplacedAndMarkedUsed) {
  auto l = OpenWriter();
  EXPECT_EQ(l->GetCoupon("CP1").value(), std::nullopt);
  CouponRow c;
  c.coupon_id = "CP1";
  c.member_id = 42;
  c.kind = "percent_off";
  c.value_cents = 0;
  c.bp = 1500;
  c.min_spend_cents = 10000;
  c.valid_from_s = 1790000000;
  c.valid_to_s = 1800000000;
  ASSERT_TRUE(l->PutCoupon(c).ok());
  auto back = l->GetCoupon("CP1").value();
  ASSERT_TRUE(back);
  EXPECT_EQ(back->coupon_id, "CP1");
  EXPECT_EQ(back->member_id, 42u);
  EXPECT_EQ(back->kind, "percent_off");
  EXPECT_EQ(back->bp, 1500);
  EXPECT_EQ(back->min_spend_cents, 10000);
  EXPECT_EQ(back->valid_from_s, 1790000000);
  EXPECT_EQ(back->valid_to_s, 1800000000);
  EXPECT_EQ(back->used_by_checkout, "");

  ASSERT_TRUE(l->MarkCouponUsed("CP1", "C7").ok());
  EXPECT_EQ(l->GetCoupon("CP1").value()->used_by_checkout, "C7");
  ASSERT_TRUE(l->MarkCouponUsed("CP-unknown", "C7").ok());  // no row, none made
  EXPECT_EQ(l->GetCoupon("CP-unknown").value(), std::nullopt);

  // HQ sends the coupon again, changed: the row is replaced whole.
  c.kind = "amount_off";
  c.value_cents = 500;
  c.bp = 0;
  c.member_id = 0;
  ASSERT_TRUE(l->PutCoupon(c).ok());
  l.reset();
  back = OpenReader()->GetCoupon("CP1").value();
  ASSERT_TRUE(back);
  EXPECT_EQ(back->kind, "amount_off");
  EXPECT_EQ(back->value_cents, 500);
  EXPECT_EQ(back->member_id, 0u);
  EXPECT_EQ(back->used_by_checkout, "");
}

TEST_F(LedgerMembersTest, ARevokedDeviceStaysRevokedAndKeysAreCompared) {
  auto l = OpenWriter();
  std::string key(32, '\0');
  key[31] = '\x01';
  std::string other(32, '\0');  // differs from key only in its last byte
  EXPECT_FALSE(l->IsRevoked(key).value());
  ASSERT_TRUE(l->PutRevocation(key).ok());
  ASSERT_TRUE(l->PutRevocation(key).ok());  // again: still one, no error
  EXPECT_TRUE(l->IsRevoked(key).value());
  EXPECT_FALSE(l->IsRevoked(other).value());
  EXPECT_FALSE(l->IsRevoked(key.substr(0, 31)).value());
  l.reset();
  EXPECT_TRUE(OpenReader()->IsRevoked(key).value());
}

TEST_F(LedgerMembersTest, ACodeIsBoundToOneCheckoutOnly) {
  auto l = OpenWriter();
  EXPECT_EQ(l->CodeBoundTo("h1").value(), std::nullopt);
  ASSERT_TRUE(l->BindCode("h1", "C1", 42, 1000).ok());
  EXPECT_EQ(l->CodeBoundTo("h1").value(), "C1");
  auto again = l->BindCode("h1", "C2", 42, 2000);
  EXPECT_FALSE(again.ok());  // a replayed code never moves to another checkout
  EXPECT_EQ(l->CodeBoundTo("h1").value(), "C1");
  ASSERT_TRUE(l->BindCode("h2", "C2", 42, 2000).ok());
  l.reset();
  auto r = OpenReader();
  EXPECT_EQ(r->CodeBoundTo("h1").value(), "C1");
  EXPECT_EQ(r->CodeBoundTo("h2").value(), "C2");
}

TEST_F(LedgerMembersTest, MetaValuesAreStoredReplacedAndKept) {
  {
    auto l = OpenWriter();
    EXPECT_EQ(l->GetMeta("terminal_id").value(), "T01");  // recorded on first open
    EXPECT_EQ(l->GetMeta(kSyncCursorKey).value(), std::nullopt);
    ASSERT_TRUE(l->PutMeta(kSyncCursorKey, "c-1").ok());
    ASSERT_TRUE(l->PutMeta(kSyncCursorKey, "c-2").ok());
    ASSERT_TRUE(l->PutMeta("hq_rules", "").ok());
    EXPECT_EQ(l->GetMeta(kSyncCursorKey).value(), "c-2");
  }
  auto r = OpenReader();
  EXPECT_EQ(r->GetMeta(kSyncCursorKey).value(), "c-2");
  EXPECT_EQ(r->GetMeta("hq_rules").value(), "");  // empty is a value, not absent
}

}  // namespace
}  // namespace loyalty::ledger
