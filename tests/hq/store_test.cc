// HQ's SQLite store below the service: the compact form of stored checkouts.
#include <sqlite3.h>

#include "hq_test_util.h"
#include "loyalty/hq/record_codec.h"

namespace loyalty::hq::testing {
namespace {

using nlohmann::json;

sync::Checkout FullCheckout() {
  sync::Checkout c = MakeCheckout("c-全-1", 9'007'199'254'740'993ull, 123456, 1773547200123, std::string(64, 'f'),
                                  "CP-1");
  c.request_hash = std::string(64, '0');
  c.rules_version = "2026-11";
  c.points_earned = sync::kMaxPoints;
  c.redeemed_points = 0;
  c.subtotal_cents = sync::kMaxCents;
  c.request_json = R"({"lines":[{"sku":"a\"b","qty":1}],"note":"\u0000 ok"})";
  c.response_json = std::string(70000, 'x');
  c.lines.push_back({1, "", "", 10000, sync::kMaxUnitPriceCents, sync::kMaxCents, 0, 7, 0, sync::kMaxCents, false, true});
  c.lines.push_back({499, std::string(256, 's'), "烟草", 1, 0, 0, 0, 0, 0, 0, true, false});
  return c;
}

TEST(RecordCodec, EveryFieldSurvivesTheCompactForm) {
  for (sync::Checkout c : {FullCheckout(), MakeCheckout("c2", std::nullopt, 0, 0), MakeCheckout("c3", 0, 1, 1)}) {
    std::string body = EncodeCheckout(c);
    auto back = DecodeCheckout(body);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, c);
    // Smaller than the JSON text it replaces.
    EXPECT_LT(body.size(), sync::SerializeMessage(c).size());
  }
  sync::Checkout none = MakeCheckout("c4", std::nullopt, 0, 0);
  none.lines.clear();
  auto back = DecodeCheckout(EncodeCheckout(none));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, none);
}

TEST(RecordCodec, JsonBodiesOfOlderVersionsAreStillRead) {
  sync::Checkout c = FullCheckout();
  auto back = DecodeCheckout(sync::SerializeMessage(c));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, c);
  auto bad = DecodeCheckout(R"({"checkout_id":"x"})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), "internal");
}

TEST(RecordCodec, ABodyThatIsNotWholeOrPastALimitIsAnError) {
  std::string body = EncodeCheckout(FullCheckout());
  // Every truncation, and a byte too many.
  for (size_t n = 0; n < body.size(); ++n) {
    auto r = DecodeCheckout(std::string_view(body).substr(0, n));
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.status().code(), "internal");
  }
  EXPECT_FALSE(DecodeCheckout(body + '\0').ok());
  // Another version byte.
  std::string v2 = body;
  v2[0] = 2;
  EXPECT_FALSE(DecodeCheckout(v2).ok());
  // Values the sync codec would refuse are refused here too.
  auto refused = [](auto change) {
    sync::Checkout c = MakeCheckout("c1", 1, 100, 1);
    change(c);
    auto r = DecodeCheckout(EncodeCheckout(c));
    return !r.ok() && r.status().code() == "internal";
  };
  EXPECT_TRUE(refused([](sync::Checkout& c) { c.points_earned = sync::kMaxPoints + 1; }));
  EXPECT_TRUE(refused([](sync::Checkout& c) { c.total_due_cents = -1; }));
  EXPECT_TRUE(refused([](sync::Checkout& c) { c.committed_at_ms = sync::kMaxTimeMs + 1; }));
  EXPECT_TRUE(refused([](sync::Checkout& c) { c.checkout_id.clear(); }));
  EXPECT_TRUE(refused([](sync::Checkout& c) { c.checkout_id = std::string(65, 'c'); }));
  EXPECT_TRUE(refused([](sync::Checkout& c) { c.code_hash = std::string(64, 'G'); }));
  EXPECT_TRUE(refused([](sync::Checkout& c) { c.request_hash = "abc"; }));
  EXPECT_TRUE(refused([](sync::Checkout& c) { c.lines[0].qty = 0; }));
  EXPECT_TRUE(refused([](sync::Checkout& c) { c.lines[0].line = 500; }));
  EXPECT_TRUE(refused([](sync::Checkout& c) { c.lines.resize(501, c.lines[0]); }));
  EXPECT_TRUE(refused([](sync::Checkout& c) { c.request_json = std::string(sync::kMaxDocumentBytes + 1, ' '); }));
  EXPECT_FALSE(refused([](sync::Checkout& c) { c.lines.resize(500, c.lines[0]); }));
  // A varint past 64 bits.
  std::string big = body.substr(0, 1) + std::string(10, '\xff') + '\x01';
  EXPECT_FALSE(DecodeCheckout(big).ok());
}

class HqStoreTest : public HqFixture {};

TEST_F(HqStoreTest, CheckoutsAreStoredCompactAndOlderJsonRowsAreStillRead) {
  sync::Checkout c = FullCheckout();
  auto ins = store_->InsertCheckout("T01", c);
  ASSERT_TRUE(ins.ok() && *ins);
  auto got = store_->GetCheckout("T01", c.checkout_id);
  ASSERT_TRUE(got.ok() && *got);
  EXPECT_EQ(**got, c);
  // A row an older version wrote as JSON text.
  sync::Checkout old = MakeCheckout("c-old", 7, 500, 1773547200000);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "hq.db").string().c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "INSERT INTO checkouts (terminal_id, checkout_id, member_id, committed_at_ms, "
                               "total_due_cents, code_hash, coupon_id, body) VALUES ('T01', 'c-old', 7, 1773547200000, "
                               "500, '', '', ?)",
                               -1, &st, nullptr),
            SQLITE_OK);
  std::string text = sync::SerializeMessage(old);
  sqlite3_bind_text(st, 1, text.c_str(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  ASSERT_EQ(sqlite3_step(st), SQLITE_DONE);
  sqlite3_finalize(st);
  sqlite3_close(db);
  got = store_->GetCheckout("T01", "c-old");
  ASSERT_TRUE(got.ok() && *got) << got.status().ToString();
  EXPECT_EQ(**got, old);
}

}  // namespace
}  // namespace loyalty::hq::testing
