// The ledger's checkouts and refunds: stored whole and read back, listed by time, counted
// per hour, and a member's local spend.
#include <gtest/gtest.h>

#include "ledger_test_util.h"

namespace loyalty::ledger {
namespace {

class LedgerCheckoutsTest : public LedgerTest {};

TEST_F(LedgerCheckoutsTest, ACheckoutIsStoredWholeAndItsIdTakenOnce) {
  const model::Checkout with_member = MakeCheckout("C1", 42, 1000);
  const model::Checkout without = MakeCheckout("C2", std::nullopt, 2000);
  {
    auto l = OpenWriter();
    EXPECT_EQ(l->GetCheckout("C1").value(), std::nullopt);
    InTransaction(*l, [&] {
      ASSERT_TRUE(l->InsertCheckout(with_member).ok());
      ASSERT_TRUE(l->InsertCheckout(without).ok());
    });
    model::Checkout again = MakeCheckout("C1", 7, 9000);
    EXPECT_FALSE(l->InsertCheckout(again).ok());
  }
  auto r = OpenReader();
  auto c1 = r->GetCheckout("C1").value();
  ASSERT_TRUE(c1);
  ExpectSameCheckout(*c1, with_member);
  EXPECT_EQ(c1->lines[1].sku, "烟");
  EXPECT_EQ(c1->lines[1].category, "tobacco");
  EXPECT_FALSE(c1->lines[1].redeemable);
  auto c2 = r->GetCheckout("C2").value();
  ASSERT_TRUE(c2);
  ExpectSameCheckout(*c2, without);
  EXPECT_EQ(c2->member_id, std::nullopt);
  auto bare = r->GetCheckout("C1", /*with_lines=*/false).value();
  ASSERT_TRUE(bare);
  ExpectSameCheckout(*bare, with_member, /*with_lines=*/false);
  EXPECT_TRUE(bare->lines.empty());
}

// Lines that do not decode are a damaged row: an error with the lines, never a checkout
// without lines (a refund would refuse every line).
TEST_F(LedgerCheckoutsTest, ACheckoutWhoseLinesDoNotDecodeIsLedgerDamaged) {
  auto l = OpenWriter();
  InTransaction(*l, [&] { ASSERT_TRUE(l->InsertCheckout(MakeCheckout("C1", 42, 1000)).ok()); });
  ASSERT_TRUE(
      l->db().Exec("UPDATE checkouts SET lines_json = '[[\"a\"' WHERE checkout_id = 'C1'").ok());
  auto c = l->GetCheckout("C1");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), ErrorCode::kLedgerDamaged);
  EXPECT_NE(c.status().message().find("C1"), std::string::npos) << c.status().message();
  EXPECT_TRUE(l->GetCheckout("C1", /*with_lines=*/false).value());
}

TEST_F(LedgerCheckoutsTest, CheckoutsSinceAreInCommitOrderFromTheGivenTime) {
  auto l = OpenWriter();
  InTransaction(*l, [&] {
    for (auto [id, at] : std::vector<std::pair<std::string, int64_t>>{
             {"C-b", 2000}, {"C-a", 2000}, {"C-old", 999}, {"C-late", 5000}, {"C-c", 1000}})
      ASSERT_TRUE(l->InsertCheckout(MakeCheckout(id, 42, at)).ok());
  });
  auto since = l->CheckoutsSince(1000, 10).value();
  EXPECT_EQ(Ids(since, &model::Checkout::checkout_id),
            (std::vector<std::string>{"C-c", "C-a", "C-b", "C-late"}));
  for (const auto& c : since) EXPECT_TRUE(c.lines.empty());  // listed without their lines
  EXPECT_EQ(since[0].total_due_cents, 5000);
  EXPECT_EQ(Ids(l->CheckoutsSince(1000, 2).value(), &model::Checkout::checkout_id),
            (std::vector<std::string>{"C-c", "C-a"}));
  EXPECT_TRUE(l->CheckoutsSince(5001, 10).value().empty());
  EXPECT_EQ(l->CheckoutsSince(0, 10).value().size(), 5u);
}

TEST_F(LedgerCheckoutsTest, CheckoutsPerHourCountsByUnixHourFromTheGivenTime) {
  constexpr int64_t kHour = 3600000;
  auto l = OpenWriter();
  EXPECT_TRUE(l->CheckoutsPerHour(0).value().empty());
  InTransaction(*l, [&] {
    int n = 0;
    for (int64_t at : {10 * kHour - 1, 10 * kHour, 10 * kHour + 5, 11 * kHour - 1, 12 * kHour + 1})
      ASSERT_TRUE(
          l->InsertCheckout(MakeCheckout("C" + std::to_string(++n), std::nullopt, at)).ok());
  });
  EXPECT_EQ(l->CheckoutsPerHour(0).value(), (std::map<int64_t, int64_t>{{9, 1}, {10, 3}, {12, 1}}));
  EXPECT_EQ(l->CheckoutsPerHour(10 * kHour).value(),
            (std::map<int64_t, int64_t>{{10, 3}, {12, 1}}));
  EXPECT_EQ(l->CheckoutsPerHour(10 * kHour + 1).value(),
            (std::map<int64_t, int64_t>{{10, 2}, {12, 1}}));
}

// A member's local spend: the total due of the member's checkouts committed at or after
// the time and not yet acknowledged by HQ, less what their refunds gave back. A checkout is
// the member's through its earn entry (one per checkout with a member, at the commit's
// time).
TEST_F(LedgerCheckoutsTest, LocalSpendIsTheMembersCheckoutsNetOfRefunds) {
  auto l = OpenWriter();
  std::string c1_earn;
  InTransaction(*l, [&] {
    ASSERT_TRUE(l->InsertCheckout(MakeCheckout("C1", 42, 1000, 5000)).ok());
    c1_earn = Append(*l, "earn", 42, 50, 1000, "C1").entry_id;
    ASSERT_TRUE(l->InsertCheckout(MakeCheckout("C2", 42, 2000, 3000)).ok());
    Append(*l, "earn", 42, 30, 2000, "C2");
    Append(*l, "redeem", 42, -10, 2000, "C2");  // not an earn: counts nothing more
    ASSERT_TRUE(l->InsertCheckout(MakeCheckout("C3", 43, 2500, 7000)).ok());
    Append(*l, "earn", 43, 70, 2500, "C3");
    ASSERT_TRUE(l->InsertRefund(MakeRefund("R1", "C2", 3000, 1000)).ok());
    ASSERT_TRUE(l->InsertRefund(MakeRefund("R2", "C2", 3100, 500)).ok());
  });
  EXPECT_EQ(l->LocalSpendSince(42, 0).value(), 5000 + 3000 - 1000 - 500);
  EXPECT_EQ(l->LocalSpendSince(42, 1000).value(), 5000 + 3000 - 1000 - 500);  // at or after
  EXPECT_EQ(l->LocalSpendSince(42, 1001).value(), 3000 - 1000 - 500);
  EXPECT_EQ(l->LocalSpendSince(42, 2001).value(), 0);
  EXPECT_EQ(l->LocalSpendSince(43, 0).value(), 7000);
  EXPECT_EQ(l->LocalSpendSince(44, 0).value(), 0);
  // Acknowledged by HQ: in HQ's month spend, so no longer counted here.
  ASSERT_TRUE(l->AckEntries({c1_earn}).ok());
  EXPECT_EQ(l->LocalSpendSince(42, 0).value(), 3000 - 1000 - 500);
}

TEST_F(LedgerCheckoutsTest, ARefundIsStoredWholeWithItsLinesInOrder) {
  const model::Refund refund = MakeRefund("R1", "C1", 3000);
  {
    auto l = OpenWriter();
    EXPECT_EQ(l->GetRefund("R1").value(), std::nullopt);
    InTransaction(*l, [&] {
      ASSERT_TRUE(l->InsertCheckout(MakeCheckout("C1", 42, 1000)).ok());
      ASSERT_TRUE(l->InsertRefund(refund).ok());
    });
    ASSERT_TRUE(l->Begin().ok());
    EXPECT_FALSE(l->InsertRefund(MakeRefund("R1", "C1", 4000)).ok());  // its id is taken
    l->Rollback();
  }
  auto r = OpenReader();
  auto back = r->GetRefund("R1").value();
  ASSERT_TRUE(back);
  ExpectSameRefund(refund, *back);
  EXPECT_EQ(back->lines, (std::vector<model::RefundLine>{{0, 2}, {1, 1}}));
}

TEST_F(LedgerCheckoutsTest, RefundsAreListedByTimeSinceAndPerCheckout) {
  auto l = OpenWriter();
  InTransaction(*l, [&] {
    ASSERT_TRUE(l->InsertRefund(MakeRefund("R-b", "C1", 2000)).ok());
    ASSERT_TRUE(l->InsertRefund(MakeRefund("R-a", "C2", 2000)).ok());
    ASSERT_TRUE(l->InsertRefund(MakeRefund("R-old", "C1", 500)).ok());
    ASSERT_TRUE(l->InsertRefund(MakeRefund("R-c", "C1", 3000)).ok());
  });
  auto since = l->RefundsSince(2000).value();
  EXPECT_EQ(Ids(since, &model::Refund::refund_id), (std::vector<std::string>{"R-a", "R-b", "R-c"}));
  ASSERT_EQ(since[0].lines.size(), 2u);  // whole refunds, with their lines
  EXPECT_TRUE(l->RefundsSince(3001).value().empty());
  EXPECT_EQ(Ids(l->RefundsForCheckout("C1").value(), &model::Refund::refund_id),
            (std::vector<std::string>{"R-old", "R-b", "R-c"}));
  EXPECT_EQ(Ids(l->RefundsForCheckout("C2").value(), &model::Refund::refund_id),
            (std::vector<std::string>{"R-a"}));
  EXPECT_TRUE(l->RefundsForCheckout("C3").value().empty());
}

}  // namespace
}  // namespace loyalty::ledger

namespace loyalty::ledger {
namespace {

// Schema 5: who did it, and refunds of other terminals' sales. Checkout ids are the POS's,
// so another terminal's sale may share an id with one of ours: a refund is of the sale
// (sold_at, checkout_id), and our own checkout's refunds and spend never count it.
TEST_F(LedgerCheckoutsTest, RefundsOfAnotherTerminalsSaleAreKeptApartFromOurs) {
  model::Checkout ours = MakeCheckout("C1", 42, 1000, 5000);
  ours.cashier_id = "k-1";
  model::Refund own = MakeRefund("R-own", "C1", 2000, 1000);
  own.cashier_id = "k-2";
  model::Refund other = MakeRefund("R-other", "C1", 2100, 700);
  other.sold_at = "T09";
  other.receipt = "LR1:token";
  other.cashier_id = "k-3";
  {
    auto l = OpenWriter();
    InTransaction(*l, [&] {
      ASSERT_TRUE(l->InsertCheckout(ours).ok());
      Append(*l, "earn", 42, 50, 1000, "C1");
      ASSERT_TRUE(l->InsertRefund(own).ok());
      ASSERT_TRUE(l->InsertRefund(other).ok());
    });
    EXPECT_EQ(l->LocalSpendSince(42, 0).value(), 5000 - 1000);  // ours only
  }
  auto r = OpenReader();
  EXPECT_EQ(r->GetCheckout("C1").value()->cashier_id, "k-1");
  auto back = r->GetRefund("R-other").value();
  ASSERT_TRUE(back);
  EXPECT_EQ(back->sold_at, "T09");
  EXPECT_EQ(back->receipt, "LR1:token");
  EXPECT_EQ(back->cashier_id, "k-3");
  EXPECT_EQ(r->GetRefund("R-own").value()->cashier_id, "k-2");
  auto mine = r->RefundsForCheckout("C1").value();
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_EQ(mine[0].refund_id, "R-own");
  auto theirs = r->RefundsForSale("T09", "C1").value();
  ASSERT_EQ(theirs.size(), 1u);
  EXPECT_EQ(theirs[0].refund_id, "R-other");
  EXPECT_TRUE(r->RefundsForSale("T08", "C1").value().empty());
}

}  // namespace
}  // namespace loyalty::ledger
