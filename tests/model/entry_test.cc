// The chain rule both ends compute: the terminal when it appends, HQ when it checks an
// upload. Pinned against the canonical form of sync/PROTOCOL.md.
#include "loyalty/model/entry.h"

#include <gtest/gtest.h>

#include "loyalty/base/encoding.h"
#include "loyalty/model/entry_columns.h"
#include "loyalty/model/lot.h"
#include "loyalty/model/sale.h"
#include "loyalty/sqlite/sqlite.h"
#include "support/files.h"

namespace loyalty::model {
namespace {

Entry Sample() {
  Entry e;
  e.seq = 7;
  e.entry_id = "0123456789abcdef0123456789abcdef";
  e.terminal_id = "T01";
  e.kind = "earn";
  e.member_id = 900001;
  e.points = -15;
  e.at_ms = 1795000000123;
  e.checkout_id = "c-1";
  e.detail = R"({"why":"é"})";
  e.prev_hash = ZeroHash();
  return e;
}

// The one reader of an entry's stored columns (loyalty/model/entry_columns.h), used by
// the terminal's ledger and HQ's store alike: every field, selected as
// LOYALTY_ENTRY_COLUMNS from a real SQLite row, is read back from its column, and a
// store's own columns follow at kEntryColumnCount.
TEST(EntryTest, EveryFieldIsReadBackFromItsStoredColumn) {
  Entry e = Sample();
  e.member_id = 18446744073709551615u;  // stored as its int64 bit pattern
  e.refund_id = "r-1";
  e.prev_hash = std::string(32, '\x01');
  e.hash = std::string(31, '\xfe') + '\0';
  loyalty::testing::TempDir dir("entry_columns");
  auto db = sqlite::Db::Open((dir / "e.db").string(), /*read_only=*/false);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_TRUE((*db)->Exec("CREATE TABLE entries (" LOYALTY_ENTRY_COLUMNS ", extra)").ok());
  {
    auto st = (*db)->Prepare("INSERT INTO entries (" LOYALTY_ENTRY_COLUMNS
                             ", extra) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)");
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    BindEntryFields(**st, e);
    (*st)->BindBlob(11, e.prev_hash).BindBlob(12, e.hash).Bind(13, int64_t{7});
    ASSERT_TRUE((*st)->Run().ok());
  }
  auto st = (*db)->Prepare("SELECT " LOYALTY_ENTRY_COLUMNS ", extra FROM entries");
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  ASSERT_TRUE((*st)->Step()) << (*st)->status().ToString();
  EXPECT_EQ(ReadEntryColumns(**st), e);
  EXPECT_EQ((*st)->Int(kEntryColumnCount), 7);
}

// A lot is kept in the same columns at both ends; a store that assigns lot ids binds NULL.
TEST(LotTest, EveryFieldIsBoundAndReadBackFromItsColumn) {
  const Lot lot{0, 18446744073709551615u, -40, -15, 1790000000, kNeverExpires, "e-1"};
  loyalty::testing::TempDir dir("lot_columns");
  auto db = sqlite::Db::Open((dir / "l.db").string(), /*read_only=*/false);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_TRUE((*db)
                  ->Exec("CREATE TABLE lots (lot_id INTEGER PRIMARY KEY, member_id, points, "
                         "remaining, earned_at_s, expires_at_s, entry_id)")
                  .ok());
  for (std::optional<int64_t> id : {std::optional<int64_t>(7), std::optional<int64_t>()}) {
    auto st = (*db)->Prepare("INSERT INTO lots (" LOYALTY_LOT_COLUMNS ") VALUES (?,?,?,?,?,?,?)");
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    BindLotColumns(**st, lot, id);
    ASSERT_TRUE((*st)->Run().ok());
  }
  auto st = (*db)->Prepare("SELECT " LOYALTY_LOT_COLUMNS " FROM lots ORDER BY lot_id");
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  for (int64_t want_id : {7, 8}) {
    ASSERT_TRUE((*st)->Step()) << (*st)->status().ToString();
    Lot want = lot;
    want.lot_id = want_id;
    EXPECT_EQ(ReadLotColumns(**st), want);
  }
  EXPECT_FALSE((*st)->Step());
}

TEST(EntryTest, CanonicalBytesAreTheProtocolArray) {
  EXPECT_EQ(
      model::CanonicalEntryBytes(Sample()),
      R"([1,"0123456789abcdef0123456789abcdef","T01",7,"earn",900001,-15,1795000000123,"c-1","","{\"why\":\"é\"}"])");
}

TEST(EntryTest, HashCoversPrevHashAndEveryField) {
  Entry e = Sample();
  const std::string h = EntryHash(e);
  ASSERT_EQ(h.size(), kHashBytes);
  EXPECT_EQ(h, model::ChainHash(ZeroHash(), model::CanonicalEntryBytes(e)));
  Entry f = e;
  f.points = -16;
  EXPECT_NE(EntryHash(f), h);
  f = e;
  f.prev_hash[31] = 1;
  EXPECT_NE(EntryHash(f), h);
  f = e;
  f.hash = "anything";  // the hash itself is not covered
  EXPECT_EQ(EntryHash(f), h);
}

TEST(SaleTest, CheckoutLinesRoundTripAndRejectMalformedText) {
  std::vector<CheckoutLine> lines(2);
  lines[0] = {0, "sku-1", "food", 2, 1500, 100, 0, 50, 2850, 2900, true, true};
  lines[1] = {1, "sku-2", "", 1, 99, 0, 0, 0, 99, 99, false, false};
  auto back = model::DecodeCheckoutLines(model::EncodeCheckoutLines(lines));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, lines);
  EXPECT_EQ(model::EncodeCheckoutLines({}), "[]");
  for (const char* bad :
       {"", "{}", "[[]]", R"([["a","b",1,2,3,4,5,6,7,8]])", R"([["a","b",1,2,3,4,5,6,7,8,"9"]])"}) {
    EXPECT_FALSE(model::DecodeCheckoutLines(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace loyalty::model
