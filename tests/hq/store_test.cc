// HQ's SQLite store below the service: the compact form of stored checkouts, the month's
// spend it keeps per window, the fleet's terminals and counts, and what an upload does when a
// read fails under it (the fault seam, InjectStoreFault).
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "hq_test_util.h"
#include "loyalty/hq/record_codec.h"

namespace loyalty::hq::testing {
namespace {

using nlohmann::json;

sync::Checkout FullCheckout() {
  sync::Checkout c = MakeCheckout("c-全-1", 9'007'199'254'740'993ull, 123456, 1773547200123,
                                  std::string(64, 'f'), "CP-1");
  c.request_hash = std::string(64, '0');
  c.rules_version = "2026-11";
  c.points_earned = sync::kMaxPoints;
  c.redeemed_points = 0;
  c.subtotal_cents = sync::kMaxCents;
  c.request_json = R"({"lines":[{"sku":"a\"b","qty":1}],"note":"\u0000 ok"})";
  c.response_json = std::string(70000, 'x');
  c.lines.push_back({1, "", "", 10000, sync::kMaxUnitPriceCents, sync::kMaxCents, 0, 7, 0,
                     sync::kMaxCents, false, true});
  c.lines.push_back({499, std::string(256, 's'), "烟草", 1, 0, 0, 0, 0, 0, 0, true, false});
  return c;
}

TEST(RecordCodec, EveryFieldSurvivesTheCompactForm) {
  for (sync::Checkout c :
       {FullCheckout(), MakeCheckout("c2", std::nullopt, 0, 0), MakeCheckout("c3", 0, 1, 1)}) {
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
  EXPECT_EQ(bad.status().code(), ErrorCode::kInternal);
}

TEST(RecordCodec, VersionTwoKeepsTheCashierAndVersionOneBodiesReadWithout) {
  sync::Checkout c = FullCheckout();
  c.cashier_id = "cashier-07";
  std::string body = EncodeCheckout(c);
  ASSERT_EQ(body[0], 2);
  auto back = DecodeCheckout(body);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, c);
  // Version 1 (older HQs): the same bytes up to the lines, no cashier.
  sync::Checkout old = c;
  old.cashier_id.clear();
  std::string v1 = EncodeCheckout(old);
  v1.pop_back();  // the empty cashier's length byte
  v1[0] = 1;
  auto read = DecodeCheckout(v1);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(*read, old);
  EXPECT_FALSE(DecodeCheckout(v1 + '\0').ok());
  c.cashier_id = std::string(65, 'x');
  EXPECT_FALSE(DecodeCheckout(EncodeCheckout(c)).ok());
}

TEST(RecordCodec, ABodyThatIsNotWholeOrPastALimitIsAnError) {
  std::string body = EncodeCheckout(FullCheckout());
  // Every truncation, and a byte too many.
  for (size_t n = 0; n < body.size(); ++n) {
    auto r = DecodeCheckout(std::string_view(body).substr(0, n));
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.status().code(), ErrorCode::kInternal);
  }
  EXPECT_FALSE(DecodeCheckout(body + '\0').ok());
  // Another version byte.
  std::string v3 = body;
  v3[0] = 3;
  EXPECT_FALSE(DecodeCheckout(v3).ok());
  // Values the sync codec would refuse are refused here too.
  auto refused = [](auto change) {
    sync::Checkout c = MakeCheckout("c1", 1, 100, 1);
    change(c);
    auto r = DecodeCheckout(EncodeCheckout(c));
    return !r.ok() && r.status().code() == ErrorCode::kInternal;
  };
  EXPECT_TRUE(refused([](sync::Checkout& c) { c.points_earned = sync::kMaxPoints + 1; }));
  EXPECT_TRUE(refused([](sync::Checkout& c) { c.total_due_cents = -1; }));
  EXPECT_TRUE(refused([](sync::Checkout& c) { c.committed_at_ms = sync::kMaxTimeMs + 1; }));
  EXPECT_TRUE(refused([](sync::Checkout& c) { c.checkout_id.clear(); }));
  EXPECT_TRUE(refused([](sync::Checkout& c) { c.checkout_id = std::string(65, 'c'); }));
  EXPECT_TRUE(refused([](sync::Checkout& c) { c.code_hash = std::string(64, 'G'); }));
  EXPECT_TRUE(refused([](sync::Checkout& c) { c.request_hash = "abc"; }));
  // As the sync codec, a line's qty and unit price are any integer: a record past the rules'
  // limits is stored refused (value_out_of_range), and must read back.
  EXPECT_FALSE(refused([](sync::Checkout& c) { c.lines[0].qty = 0; }));
  EXPECT_FALSE(refused([](sync::Checkout& c) {
    c.lines[0].qty = std::numeric_limits<int64_t>::min();
    c.lines[0].unit_price_cents = std::numeric_limits<int64_t>::max();
  }));
  EXPECT_TRUE(refused([](sync::Checkout& c) { c.lines[0].net_cents = -1; }));
  EXPECT_TRUE(refused([](sync::Checkout& c) { c.lines[0].line = 500; }));
  EXPECT_TRUE(refused([](sync::Checkout& c) { c.lines.resize(501, c.lines[0]); }));
  EXPECT_TRUE(refused(
      [](sync::Checkout& c) { c.request_json = std::string(sync::kMaxDocumentBytes + 1, ' '); }));
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
  Status put = loyalty::testing::ExecOnTestHqStore(
      dir_,
      "INSERT INTO checkouts (terminal_id, checkout_id, member_id, committed_at_ms, "
      "total_due_cents, code_hash, coupon_id, body) VALUES ('T01', 'c-old', 7, 1773547200000, "
      "500, '', '', ?)",
      {{sync::SerializeMessage(old), /*blob=*/true}});
  ASSERT_TRUE(put.ok()) << put.ToString();
  got = store_->GetCheckout("T01", "c-old");
  ASSERT_TRUE(got.ok() && *got) << got.status().ToString();
  EXPECT_EQ(**got, old);
}

// Chain hashes are stored as hex text and held raw: a stored hash that is not 64 hex
// characters is a damaged row, read as an error, never as an empty hash.
TEST_F(HqStoreTest, AStoredHashThatIsNotHexIsAnErrorNotAnEmptyHash) {
  FakeTerminal t{"T01"};
  sync::Entry e = t.Make("earn", 1, 10, 1773547200000);
  ASSERT_TRUE(store_->InsertEntry(e, true, 1773547200000).ok());
  auto good = store_->GetEntry(e.entry_id);
  ASSERT_TRUE(good.ok() && *good) << good.status().ToString();
  EXPECT_EQ((*good)->hash, e.hash);
  EXPECT_EQ((*good)->prev_hash, e.prev_hash);
  for (const char* column : {"hash", "prev_hash"}) {
    for (const std::string& text : {std::string(63, 'a'), std::string(64, 'g'), std::string()}) {
      Status put = loyalty::testing::ExecOnTestHqStore(
          dir_, std::string("UPDATE entries SET ") + column + " = ?", {{text}});
      ASSERT_TRUE(put.ok()) << put.ToString();
      auto got = store_->GetEntry(e.entry_id);
      ASSERT_FALSE(got.ok()) << column << " '" << text << "'";
      EXPECT_EQ(got.status().code(), ErrorCode::kInternal);
      auto at_seq = store_->EntriesAtSeq("T01", e.seq);
      EXPECT_FALSE(at_seq.ok()) << column << " '" << text << "'";
    }
    // Put the row back for the next column.
    ASSERT_TRUE(loyalty::testing::ExecOnTestHqStore(
                    dir_, "UPDATE entries SET hash = '" + HexEncode(e.hash) + "', prev_hash = '" +
                              HexEncode(e.prev_hash) + "'")
                    .ok());
    ASSERT_TRUE(store_->GetEntry(e.entry_id).ok());
  }
}

// On PostgreSQL nothing reads members by change_seq, and the column is in no index there:
// a balance change, which gives the member a new change_seq, can then update the row in
// place (a heap-only tuple, with room left on each page). SQLite's changes page reads by it.
TEST_F(HqStoreTest, OnPostgresTheChangeSequenceIsInNoIndexOfMembers) {
  auto q = [&](const std::string& sql) {
    auto n = loyalty::testing::QueryIntOnTestHqStore(dir_, sql);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    return n.ok() ? *n : -1;
  };
  if (!loyalty::testing::HqOnPostgres()) {
    EXPECT_EQ(q("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
                "name = 'members_by_change'"),
              1);
    return;
  }
  EXPECT_EQ(q("SELECT count(*) FROM pg_indexes WHERE tablename = 'members' AND "
              "indexdef LIKE '%change_seq%'"),
            0);
  EXPECT_EQ(q("SELECT count(*) FROM pg_class WHERE relname = 'members' AND "
              "'fillfactor=85' = ANY(reloptions)"),
            1);
  EXPECT_EQ(q("SELECT max(version) FROM schema_version"), 7);
}

// The month's spend is kept per window once asked inside a transaction; whatever happens to
// the checkouts and refunds after that, it must read as the sum of the rows.
constexpr int64_t kMonth = 1772294400000;  // 2026-03-01T00:00:00+08:00
constexpr int64_t kNext = 1774972800000;   // 2026-04-01T00:00:00+08:00

TEST_F(HqStoreTest, KeptSpendIsAlwaysTheSumOfTheRows) {
  auto row_count = [&] {
    auto n = loyalty::testing::QueryIntOnTestHqStore(dir_, "SELECT count(*) FROM spend_totals");
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    return n.ok() ? *n : -1;
  };
  auto spend = [&](uint64_t m, int64_t from = kMonth, int64_t to = kNext) {
    int64_t out = -1;
    EXPECT_TRUE(store_
                    ->Transaction([&]() -> Status {
                      auto s = store_->MemberSpend(m, from, to);
                      if (!s.ok()) return s.status();
                      out = *s;
                      return Status::Ok();
                    })
                    .ok());
    return out;
  };
  auto insert = [&](const sync::Checkout& c) {
    ASSERT_TRUE(store_
                    ->Transaction([&]() -> Status {
                      auto r = store_->InsertCheckout("T01", c);
                      return r.ok() ? Status::Ok() : r.status();
                    })
                    .ok());
  };
  insert(MakeCheckout("a", 7, 1000, kMonth + 10));
  // Outside a transaction nothing is kept (a GET writes nothing).
  auto outside = store_->MemberSpend(7, kMonth, kNext);
  ASSERT_TRUE(outside.ok());
  EXPECT_EQ(*outside, 1000);
  EXPECT_EQ(row_count(), 0);
  EXPECT_EQ(spend(7), 1000);
  EXPECT_EQ(row_count(), 1);
  // Later checkouts: in the window, before it, after it, another member, no member.
  insert(MakeCheckout("b", 7, 250, kNext - 1));
  insert(MakeCheckout("c", 7, 9999, kMonth - 1));
  insert(MakeCheckout("d", 7, 9999, kNext));
  insert(MakeCheckout("e", 8, 9999, kMonth + 20));
  insert(MakeCheckout("f", std::nullopt, 9999, kMonth + 30));
  EXPECT_EQ(spend(7), 1250);
  EXPECT_EQ(spend(8), 9999);
  // Another window (another calendar) is its own sum, kept up to date alike.
  EXPECT_EQ(spend(7, kMonth - 3600000, kNext - 3600000), 1000 + 9999);
  insert(MakeCheckout("g", 7, 1, kMonth + 40));
  EXPECT_EQ(spend(7), 1251);
  EXPECT_EQ(spend(7, kMonth - 3600000, kNext - 3600000), 1000 + 9999 + 1);
  // A checkout refused after it was stored counts nowhere.
  ASSERT_TRUE(store_->Transaction([&] { return store_->MarkCheckoutRefused("T01", "b"); }).ok());
  EXPECT_EQ(spend(7), 1001);
  // Refunds: an accepted one comes off, a refused one does not.
  sync::Refund r1{"r1", "a", "", "return", kMonth + 100, 400, 0, 0, "{}", {{0, 1}}};
  sync::Refund r2{"r2", "g", "", "return", kMonth + 100, 1, 0, 0, "{}", {{0, 1}}};
  ASSERT_TRUE(store_
                  ->Transaction([&]() -> Status {
                    for (const auto* r : {&r1, &r2}) {
                      auto ok = store_->InsertRefund("T01", *r);
                      if (!ok.ok()) return ok.status();
                    }
                    return store_->MarkRefundRefused("T01", "r2");
                  })
                  .ok());
  EXPECT_EQ(spend(7), 601);
  // The checkouts' own total (a provisional upgrade's check): refunds not netted, refused
  // checkouts left out, any window, nothing kept for it.
  const int64_t rows_before = row_count();
  auto total = store_->MemberCheckoutTotal(7, kMonth, kNext);
  ASSERT_TRUE(total.ok()) << total.status().ToString();
  EXPECT_EQ(*total, 1000 + 1);
  auto early = store_->MemberCheckoutTotal(7, kMonth - 3600000, kMonth + 41);
  ASSERT_TRUE(early.ok());
  EXPECT_EQ(*early, 9999 + 1000 + 1);
  EXPECT_EQ(*store_->MemberCheckoutTotal(7, kMonth - 3600000, kMonth + 40), 9999 + 1000);
  EXPECT_EQ(row_count(), rows_before);
  // A transaction that fails takes its changes to the kept sum with it.
  EXPECT_FALSE(store_
                   ->Transaction([&]() -> Status {
                     auto r =
                         store_->InsertCheckout("T01", MakeCheckout("h", 7, 5000, kMonth + 50));
                     if (!r.ok()) return r.status();
                     auto s = store_->MemberSpend(7, kMonth, kNext);
                     EXPECT_TRUE(s.ok() && *s == 5601);
                     return Status::Error(ErrorCode::kInternal, "rolled back on purpose");
                   })
                   .ok());
  EXPECT_EQ(spend(7), 601);
  // The daily job forgets windows that ended before the month it is in.
  ASSERT_TRUE(store_->Transaction([&] { return store_->PruneSpendTotals(kNext); }).ok());
  EXPECT_EQ(row_count(), 0);
  EXPECT_EQ(spend(7), 601);
}

// The daily job keeps each terminal's downloads from its last changes page before the cutoff
// on: every moment after that page has the same last download as before.
TEST_F(HqStoreTest, DownloadsBeforeTheLastPageBeforeTheCutoffAreForgotten) {
  auto write = [&](const std::function<Status()>& body) {
    ASSERT_TRUE(store_->Transaction(body).ok());
  };
  write([&]() -> Status {
    int64_t cursor = 0;
    for (int64_t at : {1000, 2000, 3000, 5000})
      if (Status s = store_->AddTerminalDownload("T01", at, ++cursor); !s.ok()) return s;
    if (Status s = store_->AddTerminalDownload("T02", 1500, 1); !s.ok()) return s;
    if (Status s = store_->AddTerminalDownload("T03", 6000, 1); !s.ok()) return s;
    for (int64_t at : {1200, 2500, 4000})
      if (Status s = store_->AddMemberDownloads("T01", {7}, at); !s.ok()) return s;
    return store_->AddMemberDownloads("T02", {7}, 1000);
  });
  auto around = [&](const std::string& tid, int64_t at) {
    auto d = store_->DownloadsAround(tid, at);
    EXPECT_TRUE(d.ok());
    return std::make_pair(d->at_or_before, d->after);
  };
  auto members = [&](const std::string& tid) {
    auto m = store_->MemberDownloads(tid, {7});
    EXPECT_TRUE(m.ok());
    return m->count(7) ? (*m)[7] : std::vector<int64_t>();
  };
  auto prune = [&](int64_t before_ms) {
    int64_t removed = -1;
    write([&]() -> Status {
      auto r = store_->PruneDownloads(before_ms);
      if (!r.ok()) return r.status();
      removed = *r;
      return Status::Ok();
    });
    return removed;
  };
  using P = std::pair<std::optional<int64_t>, std::optional<int64_t>>;
  ASSERT_EQ(around("T01", 2500), (P{2000, 3000}));
  // T01: pages 1000 and 2000, members sent at 1200 and 2500; T02: its member sent before its
  // page. T03's only page is after the cutoff.
  EXPECT_EQ(prune(3500), 5);
  EXPECT_EQ(around("T01", 3000), (P{3000, 5000}));
  EXPECT_EQ(around("T01", 4500), (P{3000, 5000}));
  EXPECT_EQ(around("T01", 9000), (P{5000, std::nullopt}));
  EXPECT_EQ(around("T01", 2500), (P{std::nullopt, 3000}));  // older than any sale judged
  EXPECT_EQ(members("T01"), std::vector<int64_t>{4000});
  EXPECT_EQ(around("T02", 1500), (P{1500, std::nullopt}));
  EXPECT_TRUE(members("T02").empty());
  EXPECT_EQ(around("T03", 6000), (P{6000, std::nullopt}));
  EXPECT_EQ(prune(3500), 0);
}

TEST_F(HqStoreTest, TheDailyJobForgetsDownloadsNoSaleIsJudgedBy) {
  ASSERT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);
  clock_.advance_ms(1000);
  ASSERT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);
  auto before = [&](int64_t at) {
    auto d = store_->DownloadsAround("T01", at);
    EXPECT_TRUE(d.ok());
    return d->at_or_before;
  };
  ASSERT_EQ(before(kNowMs), kNowMs);
  const int64_t day_s = 86'400;
  // 89 days on, nothing is older than the page before the cutoff; 91 days on, the first is.
  ASSERT_EQ(
      Call("POST", "/v1/admin/expire?now=" + std::to_string(kNowMs / 1000 + 89 * day_s)).status,
      200);
  EXPECT_EQ(before(kNowMs), kNowMs);
  ASSERT_EQ(
      Call("POST", "/v1/admin/expire?now=" + std::to_string(kNowMs / 1000 + 91 * day_s)).status,
      200);
  EXPECT_EQ(before(kNowMs), std::nullopt);
  EXPECT_EQ(before(kNowMs + 1000), kNowMs + 1000);
}

TEST_F(HqStoreTest, ASpendPastTwoToTheSixtySecondIsSummedNotKept) {
  constexpr int64_t kFrom = kMonth, kTo = kNext;
  constexpr int64_t kLimit = int64_t{1} << 62;
  const int64_t n = kLimit / sync::kMaxCents;  // still within the limit
  ASSERT_TRUE(store_
                  ->Transaction([&]() -> Status {
                    for (int64_t i = 0; i < n; ++i) {
                      auto r = store_->InsertCheckout(
                          "T01",
                          MakeCheckout("c" + std::to_string(i), 7, sync::kMaxCents, kFrom + i));
                      if (!r.ok()) return r.status();
                    }
                    return Status::Ok();
                  })
                  .ok());
  auto in_tx = [&] {
    int64_t out = -1;
    EXPECT_TRUE(store_
                    ->Transaction([&]() -> Status {
                      auto s = store_->MemberSpend(7, kFrom, kTo);
                      if (!s.ok()) return s.status();
                      out = *s;
                      return Status::Ok();
                    })
                    .ok());
    return out;
  };
  EXPECT_EQ(in_tx(), n * sync::kMaxCents);  // kept
  // One more passes the limit: the kept sum is dropped and the rows give the answer.
  ASSERT_TRUE(store_
                  ->Transaction([&]() -> Status {
                    auto r = store_->InsertCheckout(
                        "T01", MakeCheckout("last", 7, sync::kMaxCents, kFrom + n));
                    return r.ok() ? Status::Ok() : r.status();
                  })
                  .ok());
  EXPECT_EQ(in_tx(), (n + 1) * sync::kMaxCents);
  EXPECT_EQ(in_tx(), (n + 1) * sync::kMaxCents);
}

// The fleet view's rows and the metrics' counts, straight from the store: each filter, the
// bounds of the time filters, pages by terminal id, and the counts of each terminal's rows.
// PrefetchSpends: the rows of a write's members read at once, changed in memory and written
// back at the commit. Every answer inside the transaction, and every row after it, must be
// what the statement-per-change path gives: the sum of the checkouts and refunds.
TEST_F(HqStoreTest, PrefetchedSpendsAnswerAndKeepWhatTheRowsSum) {
  constexpr int64_t kOtherFrom = kMonth - 3600000, kOtherTo = kNext - 3600000;
  constexpr int64_t kLimit = int64_t{1} << 62;
  // The truth, from the rows themselves.
  auto truth = [&](uint64_t m, int64_t from, int64_t to) {
    const std::string w = " AND c.committed_at_ms >= " + std::to_string(from) +
                          " AND c.committed_at_ms < " + std::to_string(to) +
                          " AND c.refused = 0 AND c.member_id = " + std::to_string(m);
    auto in = loyalty::testing::QueryIntOnTestHqStore(
        dir_, "SELECT coalesce(sum(c.total_due_cents), 0) FROM checkouts c WHERE 1 = 1" + w);
    auto out = loyalty::testing::QueryIntOnTestHqStore(
        dir_,
        "SELECT coalesce(sum(r.refund_cents), 0) FROM refunds r JOIN checkouts c ON "
        "c.terminal_id = r.sold_at AND c.checkout_id = r.checkout_id WHERE r.refused = 0" +
            w);
    EXPECT_TRUE(in.ok() && out.ok());
    return in.ok() && out.ok() ? *in - *out : -1;
  };
  auto kept = [&](uint64_t m, int64_t from, int64_t to) -> std::optional<int64_t> {
    auto k = store_->KeptMemberSpends({m}, from, to);
    EXPECT_TRUE(k.ok());
    if (!k.ok() || k->count(m) == 0) return std::nullopt;
    return k->at(m);
  };
  auto spend = [&](uint64_t m, int64_t from = kMonth, int64_t to = kNext) {
    auto s = store_->MemberSpend(m, from, to);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : -1;
  };
  auto put = [&](const sync::Checkout& c) -> Status {
    auto r = store_->InsertCheckout("T01", c);
    return r.ok() ? Status::Ok() : r.status();
  };
  // Before: member 7 has a kept row for the other window, member 8 none, member 9 one of
  // this window (kept by a transaction that asked).
  ASSERT_TRUE(store_
                  ->Transaction([&]() -> Status {
                    for (const auto& c : {MakeCheckout("a", 7, 1000, kMonth + 10),
                                          MakeCheckout("b", 9, 300, kMonth + 10),
                                          MakeCheckout("c", 8, 50, kMonth + 5)}) {
                      if (Status s = put(c); !s.ok()) return s;
                    }
                    if (auto s = store_->MemberSpend(7, kOtherFrom, kOtherTo); !s.ok())
                      return s.status();
                    return store_->MemberSpend(9, kMonth, kNext).status();
                  })
                  .ok());
  ASSERT_EQ(kept(7, kOtherFrom, kOtherTo), 1000);
  ASSERT_EQ(kept(9, kMonth, kNext), 300);
  ASSERT_FALSE(kept(8, kMonth, kNext));

  sync::Refund r1{"r1", "a", "", "return", kMonth + 100, 400, 0, 0, "{}", {{0, 1}}};
  Status s = store_->Transaction([&]() -> Status {
    if (Status p = store_->PrefetchSpends({7, 8, 9, 10, 7}, kMonth, kNext); !p.ok()) return p;
    EXPECT_EQ(spend(7), 1000);
    EXPECT_EQ(spend(8), 50);
    EXPECT_EQ(spend(10), 0);
    // In the window, before, after, refused, with a refund, another window.
    for (const auto& c :
         {MakeCheckout("d", 7, 250, kNext - 1), MakeCheckout("e", 7, 9999, kMonth - 1),
          MakeCheckout("f", 7, 9999, kNext), MakeCheckout("g", 8, 70, kMonth + 1),
          MakeCheckout("h", 9, 5, kMonth + 2), MakeCheckout("i", 10, 1, kMonth + 3)}) {
      if (Status p = put(c); !p.ok()) return p;
    }
    EXPECT_EQ(spend(7), 1250);
    EXPECT_EQ(spend(7, kOtherFrom, kOtherTo), 1000 + 9999);
    EXPECT_EQ(spend(8), 120);
    EXPECT_EQ(spend(9), 305);
    EXPECT_EQ(spend(10), 1);
    if (Status p = store_->MarkCheckoutRefused("T01", "g"); !p.ok()) return p;
    EXPECT_EQ(spend(8), 50);
    auto r = store_->InsertRefund("T01", r1);
    if (!r.ok()) return r.status();
    EXPECT_EQ(spend(7), 850);
    EXPECT_EQ(spend(7, kOtherFrom, kOtherTo), 1000 + 9999 - 400);
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  // After the commit: every kept row is its window's sum.
  for (uint64_t m : {7, 8, 9, 10}) {
    for (auto [from, to] : {std::pair{kMonth, kNext}, std::pair{kOtherFrom, kOtherTo}}) {
      auto k = kept(m, from, to);
      if (k) EXPECT_EQ(*k, truth(m, from, to)) << m << " " << from;
      EXPECT_EQ(spend(m, from, to), truth(m, from, to)) << m << " " << from;
    }
  }
  EXPECT_EQ(kept(9, kMonth, kNext), 305);
  EXPECT_EQ(kept(10, kMonth, kNext), 1);

  // A transaction that fails leaves the rows as they were.
  const auto before = kept(9, kMonth, kNext);
  EXPECT_FALSE(store_
                   ->Transaction([&]() -> Status {
                     if (Status p = store_->PrefetchSpends({9}, kMonth, kNext); !p.ok()) return p;
                     if (Status p = put(MakeCheckout("j", 9, 5000, kMonth + 50)); !p.ok()) return p;
                     EXPECT_EQ(spend(9), 5305);
                     return Status::Error(ErrorCode::kInternal, "rolled back on purpose");
                   })
                   .ok());
  EXPECT_EQ(kept(9, kMonth, kNext), before);
  EXPECT_EQ(spend(9), 305);

  // A kept window dropped in a transaction (its checkout refused) and not asked again is
  // gone from the table at the commit, not left at its old sum.
  ASSERT_TRUE(store_
                  ->Transaction([&]() -> Status {
                    if (Status p = store_->PrefetchSpends({9}, kMonth, kNext); !p.ok()) return p;
                    return store_->MarkCheckoutRefused("T01", "h");
                  })
                  .ok());
  EXPECT_FALSE(kept(9, kMonth, kNext));
  EXPECT_EQ(truth(9, kMonth, kNext), 300);
  EXPECT_EQ(spend(9), 300);

  // Written in the middle of a transaction (a read of the kept rows) and then dropped: gone
  // at the commit too; and one written then grown: its last sum.
  ASSERT_TRUE(store_
                  ->Transaction([&]() -> Status {
                    if (Status p = store_->PrefetchSpends({13, 14}, kMonth, kNext); !p.ok())
                      return p;
                    if (Status p = put(MakeCheckout("m1", 13, 70, kMonth + 1)); !p.ok()) return p;
                    if (Status p = put(MakeCheckout("n1", 14, 20, kMonth + 1)); !p.ok()) return p;
                    auto k = store_->KeptMemberSpends({13, 14}, kMonth, kNext);
                    if (!k.ok()) return k.status();
                    EXPECT_EQ(k->count(13), 1u);
                    if (Status p = store_->MarkCheckoutRefused("T01", "m1"); !p.ok()) return p;
                    return put(MakeCheckout("n2", 14, 3, kMonth + 2));
                  })
                  .ok());
  EXPECT_FALSE(kept(13, kMonth, kNext));
  EXPECT_EQ(spend(13), 0);
  EXPECT_EQ(kept(14, kMonth, kNext), 23);

  // Past 2^62 the kept row goes and the rows are summed, prefetched or not.
  const int64_t n = kLimit / sync::kMaxCents;
  ASSERT_TRUE(store_
                  ->Transaction([&]() -> Status {
                    if (Status p = store_->PrefetchSpends({11}, kMonth, kNext); !p.ok()) return p;
                    for (int64_t i = 0; i <= n; ++i) {
                      if (Status p = put(MakeCheckout("big" + std::to_string(i), 11,
                                                      sync::kMaxCents, kMonth + i));
                          !p.ok())
                        return p;
                    }
                    EXPECT_EQ(spend(11), (n + 1) * sync::kMaxCents);
                    return Status::Ok();
                  })
                  .ok());
  EXPECT_FALSE(kept(11, kMonth, kNext));
  EXPECT_EQ(spend(11), (n + 1) * sync::kMaxCents);
  // Outside a transaction the prefetch does nothing and nothing is kept.
  ASSERT_TRUE(store_->PrefetchSpends({12}, kMonth, kNext).ok());
  ASSERT_TRUE(put(MakeCheckout("k", 12, 10, kMonth + 1)).ok());
  EXPECT_EQ(spend(12), 10);
  EXPECT_FALSE(kept(12, kMonth, kNext));
}

// Inside a write transaction checkouts read as absent, entries and lots are queued and
// written many to a statement: every read in the transaction sees them as if written one by
// one, lot ids are the stored ones and only grow, and a rollback leaves none of them.
TEST_F(HqStoreTest, RowsQueuedByAWriteAreReadInItAndWrittenAtItsEnd) {
  FakeTerminal t{"T01"};
  std::vector<int64_t> lot_ids;
  std::vector<sync::Entry> entries;
  Status s = store_->Transaction([&]() -> Status {
    std::vector<std::string> ids;
    for (int i = 0; i < 600; ++i) ids.push_back("q" + std::to_string(i));
    auto verdicts = store_->CheckoutVerdicts("T01", ids);
    if (!verdicts.ok()) return verdicts.status();
    EXPECT_TRUE(verdicts->empty());
    for (int i = 0; i < 600; ++i) {  // past one statement's 500 rows, and two lot-id blocks
      auto in = store_->InsertCheckout("T01", MakeCheckout(ids[static_cast<size_t>(i)], 7, 10,
                                                           kMonth + i, std::string(64, 'a')));
      if (!in.ok()) return in.status();
      EXPECT_TRUE(*in);
      entries.push_back(t.Make("earn", 7, 1, kMonth + i, ids[static_cast<size_t>(i)]));
      if (Status e = store_->InsertEntry(entries.back(), true, kMonth); !e.ok()) return e;
      auto lot = store_->AddLot({0, 7, 1, 1, 100, 500 + i, entries.back().entry_id});
      if (!lot.ok()) return lot.status();
      lot_ids.push_back(*lot);
    }
    // The same checkout again: already stored (queued), so not inserted twice.
    auto again = store_->InsertCheckout("T01", MakeCheckout("q0", 7, 10, kMonth));
    if (!again.ok()) return again.status();
    EXPECT_FALSE(*again);
    // Read back inside the transaction.
    auto got = store_->GetEntry(entries[599].entry_id);
    EXPECT_TRUE(got.ok() && *got && (*got)->hash == entries[599].hash);
    auto lots = store_->Lots(7);
    EXPECT_TRUE(lots.ok() && lots->size() == 600u);
    auto with_code = store_->CheckoutsWithCode(std::string(64, 'a'));
    EXPECT_TRUE(with_code.ok() && with_code->size() == 600u);
    auto spend = store_->MemberSpend(7, kMonth, kNext);
    EXPECT_TRUE(spend.ok() && *spend == 6000);
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  for (size_t i = 1; i < lot_ids.size(); ++i) EXPECT_LT(lot_ids[i - 1], lot_ids[i]);
  auto lots = store_->Lots(7);
  ASSERT_TRUE(lots.ok());
  ASSERT_EQ(lots->size(), 600u);
  for (size_t i = 0; i < 600; ++i) {  // by expiry: the order they were added in
    EXPECT_EQ((*lots)[i].lot_id, lot_ids[i]);
    EXPECT_EQ((*lots)[i].entry_id, entries[i].entry_id);
  }
  auto n = loyalty::testing::QueryIntOnTestHqStore(dir_, "SELECT count(*) FROM checkouts");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 600);
  // A lot added outside a transaction takes the next id, after every reserved one.
  auto outside = store_->AddLot({0, 8, 1, 1, 100, 200, "x"});
  ASSERT_TRUE(outside.ok());
  EXPECT_GT(*outside, lot_ids.back());
  // A transaction that fails writes none of what it queued.
  EXPECT_FALSE(store_
                   ->Transaction([&]() -> Status {
                     auto v = store_->CheckoutVerdicts("T01", {"r1"});
                     if (!v.ok()) return v.status();
                     auto in = store_->InsertCheckout("T01", MakeCheckout("r1", 9, 10, kMonth));
                     if (!in.ok()) return in.status();
                     if (Status e = store_->InsertEntry(t.Make("earn", 9, 1, kMonth), true, kMonth);
                         !e.ok())
                       return e;
                     if (auto l = store_->AddLot({0, 9, 1, 1, 100, 200, "y"}); !l.ok())
                       return l.status();
                     return Status::Error(ErrorCode::kInternal, "rolled back on purpose");
                   })
                   .ok());
  auto nine = store_->Lots(9);
  ASSERT_TRUE(nine.ok());
  EXPECT_TRUE(nine->empty());
  auto r1 = store_->GetCheckout("T01", "r1");
  ASSERT_TRUE(r1.ok());
  EXPECT_FALSE(*r1);
  n = loyalty::testing::QueryIntOnTestHqStore(dir_, "SELECT count(*) FROM entries");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 600);
  // A duplicate entry id queued in a write fails the write at its end, and writes nothing.
  const auto before = loyalty::testing::QueryIntOnTestHqStore(dir_, "SELECT count(*) FROM lots");
  EXPECT_FALSE(store_
                   ->Transaction([&]() -> Status {
                     if (auto l = store_->AddLot({0, 9, 1, 1, 100, 200, "z"}); !l.ok())
                       return l.status();
                     return store_->InsertEntry(entries[0], true, kMonth);
                   })
                   .ok());
  const auto after = loyalty::testing::QueryIntOnTestHqStore(dir_, "SELECT count(*) FROM lots");
  ASSERT_TRUE(before.ok() && after.ok());
  EXPECT_EQ(*after, *before);
}

// The debts and the applied earnings of many members at once, as one member at a time.
TEST_F(HqStoreTest, DebtLotsAndAppliedEarnsOfManyMembersAsOneAtATime) {
  FakeTerminal t{"T01"};
  std::vector<uint64_t> ids;
  ASSERT_TRUE(store_
                  ->Transaction([&]() -> Status {
                    for (uint64_t m = 1; m <= 1100; ++m) {  // past one statement's 1,000
                      ids.push_back(m);
                      if (m % 3 == 0) {
                        model::Lot debt{0, m, -5, -5, 100, 200, "d" + std::to_string(m)};
                        if (auto id = store_->AddLot(debt); !id.ok()) return id.status();
                        model::Lot paid{0, m, 10, 0, 100, 300, "p" + std::to_string(m)};
                        if (auto id = store_->AddLot(paid); !id.ok()) return id.status();
                      }
                      model::Lot open{0, m, 10, 10, 100, 400, "o" + std::to_string(m)};
                      if (auto id = store_->AddLot(open); !id.ok()) return id.status();
                      if (m % 2 == 0) {
                        for (int k = 0; k < 3; ++k) {
                          sync::Entry e = t.Make("earn", m, 10 + k, kMonth + 1000 * k + m);
                          if (Status s = store_->InsertEntry(e, k != 1, kMonth); !s.ok()) return s;
                        }
                        sync::Entry r = t.Make("redeem", m, -3, kMonth + 500);
                        if (Status s = store_->InsertEntry(r, true, kMonth); !s.ok()) return s;
                      }
                    }
                    return Status::Ok();
                  })
                  .ok());
  auto debts = store_->DebtLotsOfMembers(ids);
  ASSERT_TRUE(debts.ok()) << debts.status().ToString();
  auto earns = store_->AppliedEarnsAfter(ids, kMonth + 1);
  ASSERT_TRUE(earns.ok()) << earns.status().ToString();
  size_t with_debts = 0, with_earns = 0;
  for (uint64_t m : ids) {
    auto one = store_->DebtLots(m);
    ASSERT_TRUE(one.ok());
    auto it = debts->find(m);
    EXPECT_EQ(it == debts->end() ? std::vector<model::Lot>() : it->second, *one) << m;
    with_debts += it != debts->end();
    // Every window starting at or after `after` sums the same.
    auto e = earns->find(m);
    const int64_t k = static_cast<int64_t>(m);
    for (auto [from, to] : {std::pair<int64_t, int64_t>{kMonth + 1, kMonth + 5000},
                            {kMonth + 1000, kMonth + 1000 + k},
                            {kMonth + 2000 + k, kNext}}) {
      auto sum = store_->EarnedBetween(m, from, to);
      ASSERT_TRUE(sum.ok());
      int64_t mine = 0;
      if (e != earns->end())
        for (auto [at, points] : e->second)
          if (at > from && at <= to) mine += points;
      EXPECT_EQ(mine, *sum) << m << " " << from << " " << to;
    }
    if (e != earns->end()) {
      ++with_earns;
      EXPECT_TRUE(std::is_sorted(e->second.begin(), e->second.end()));
      EXPECT_EQ(e->second.size(), 2u);  // applied earns only, after kMonth + 1
    }
  }
  EXPECT_EQ(with_debts, 1100u / 3);
  EXPECT_EQ(with_earns, 1100u / 2);
}

TEST_F(HqStoreTest, TerminalsAreListedByIdWithTheirCountsAndCountedForTheFleet) {
  for (const auto& [tid, store_id, last] :
       std::vector<std::tuple<std::string, std::string, int64_t>>{
           {"T03", "S2", 3000}, {"T01", "S1", 1000}, {"T02", "S1", 2000}, {"T04", "S2", 4000}}) {
    ASSERT_TRUE(store_->PutTerminal({tid, store_id, 500, last, 0, ""}).ok());
  }
  FakeTerminal t{"T02"};
  ASSERT_TRUE(store_->InsertEntry(t.Make("earn", 1, 1, 1000, "c1")).ok());
  ASSERT_TRUE(store_->InsertEntry(t.Make("earn", 1, 1, 1001, "c2")).ok());
  ASSERT_TRUE(*store_->InsertCheckout("T02", MakeCheckout("c1", 1, 100, 1000)));
  for (const ConflictRecord& c : {ConflictRecord{"chain_gap", 1, "T02", "", 0, "{}", "a"},
                                  ConflictRecord{"code_reused", 2, "T04", "T02", 1, "{}", "b"},
                                  ConflictRecord{"code_reused", 3, "T04", "T03", 1, "{}", "c"}})
    ASSERT_TRUE(store_->AddConflict(c).ok());

  // The ids ListTerminals gives for a filter `set` fills in.
  auto ids = [&](const std::function<void(TerminalFilter&)>& set) {
    TerminalFilter f;
    set(f);
    std::vector<std::string> out;
    auto rows = store_->ListTerminals(f);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    if (rows.ok())
      for (const auto& r : *rows) out.push_back(r.terminal.terminal_id);
    return out;
  };
  using Ids = std::vector<std::string>;
  using F = TerminalFilter;
  EXPECT_EQ(ids([](F&) {}), (Ids{"T01", "T02", "T03", "T04"}));
  EXPECT_EQ(ids([](F& f) { f.store_id = "S1"; }), (Ids{"T01", "T02"}));
  EXPECT_EQ(ids([](F& f) { f.synced_before_ms = 2000; }), (Ids{"T01"}));        // strictly before
  EXPECT_EQ(ids([](F& f) { f.synced_since_ms = 3000; }), (Ids{"T03", "T04"}));  // at or after
  EXPECT_EQ(ids([](F& f) {
              f.store_id = "S2";
              f.synced_before_ms = 4000;
            }),
            (Ids{"T03"}));
  EXPECT_EQ(ids([](F& f) {
              f.after = "T02";
              f.limit = 1;
            }),
            (Ids{"T03"}));
  EXPECT_EQ(ids([](F& f) { f.after = "T04"; }), Ids{});

  TerminalFilter s1;
  s1.store_id = "S1";
  s1.after = "T01";
  auto rows = store_->ListTerminals(s1);
  ASSERT_TRUE(rows.ok() && rows->size() == 1u);
  const TerminalSummary& t2 = rows->front();
  EXPECT_EQ(t2.terminal.store_id, "S1");
  EXPECT_EQ(t2.terminal.last_sync_ms, 2000);
  EXPECT_EQ(t2.entries, 2);
  EXPECT_EQ(t2.checkouts, 1);
  EXPECT_EQ(t2.conflicts, 2);        // its gap, and the reuse naming it as the other side
  EXPECT_EQ(t2.chain_conflicts, 1);  // the gap only

  auto fleet = store_->CountFleet(/*since_ms=*/3000, /*before_ms=*/2000);
  ASSERT_TRUE(fleet.ok()) << fleet.status().ToString();
  EXPECT_EQ(fleet->terminals, 4);
  EXPECT_EQ(fleet->synced_since, 2);
  EXPECT_EQ(fleet->synced_before, 1);
  EXPECT_EQ(fleet->conflicts,
            (std::map<std::string, int64_t>{{"chain_gap", 1}, {"code_reused", 2}}));
}

// A read that fails in the middle of an upload fails the whole upload — 503, the terminal
// retries — and leaves nothing of it behind: no entry, checkout, lot, balance, tier,
// conflict or change. The same upload then goes through.
// The calls that take many rows at once (an upload's and a `changes` page's) answer as the
// one-row calls would, past one statement's worth of ids, and with ids that need quoting.
MemberRecord PlainMember(uint64_t id, int64_t balance) {
  MemberRecord m;
  m.member_id = id;
  m.card_number = "88" + std::to_string(id);
  m.balance = balance;
  m.created_at_ms = 1773547200000;
  return m;
}

// The balance set a terminal should have: these members' balances.
std::vector<recon::Symbol> BalanceSymbols(const std::map<uint64_t, int64_t>& balances,
                                          uint64_t stored) {
  recon::MemoryStore mem(stored);
  for (const auto& [id, balance] : balances)
    EXPECT_TRUE(mem.Upsert(recon::MemberBalanceItem(std::to_string(id), balance, 0)).ok());
  std::vector<recon::Symbol> out;
  EXPECT_TRUE(mem.ReadSymbols(0, stored, &out).ok());
  return out;
}

std::vector<recon::Symbol> SymbolsOf(const recon::FingerprintStore& set) {
  std::vector<recon::Symbol> out;
  EXPECT_TRUE(set.ReadSymbols(0, set.stored_symbols(), &out).ok());
  return out;
}

TEST_F(HqStoreTest, HoldingsAndBalancesWrittenInATransactionReachTheSetsAtItsCommit) {
  constexpr uint64_t kMembers = 1203;  // past one statement's 1,000 ids
  std::map<uint64_t, int64_t> balances;
  ASSERT_TRUE(store_
                  ->Transaction([&]() -> Status {
                    for (uint64_t id = 1; id <= kMembers; ++id) {
                      balances[id] = static_cast<int64_t>(id) * 3;
                      if (Status s = store_->InsertMember(PlainMember(id, balances[id])); !s.ok())
                        return s;
                    }
                    return Status::Ok();
                  })
                  .ok());
  std::vector<std::pair<uint64_t, int64_t>> hold;
  for (const auto& [id, balance] : balances) hold.emplace_back(id, balance);
  hold.emplace_back(7, balances[7]);  // named twice: held once
  ASSERT_TRUE(store_
                  ->Transaction([&]() -> Status {
                    return store_->HoldMembers("T01", hold, Store::Holding::kWrote);
                  })
                  .ok());
  auto set = store_->BalanceSet("T01");  // valid until a transaction fails
  ASSERT_TRUE(set.ok());
  const uint64_t stored = (*set)->stored_symbols();
  EXPECT_EQ(SymbolsOf(**set), BalanceSymbols(balances, stored));
  // Entries written for a member held already leave its balance as it was last sent; a
  // member new to the terminal joins at the balance given.
  balances[1204] = 55;
  ASSERT_TRUE(
      store_
          ->Transaction([&]() -> Status {
            if (Status s = store_->InsertMember(PlainMember(1204, 55)); !s.ok()) return s;
            return store_->HoldMembers("T01", {{9, 123456}, {1204, 55}}, Store::Holding::kWrote);
          })
          .ok());
  EXPECT_EQ(SymbolsOf(**store_->BalanceSet("T01")), BalanceSymbols(balances, stored));
  // A snapshot sent sets the balance, held before or not, and a later one in the same
  // transaction stands.
  balances[5] = -40;
  balances[1200] = 1'000'000'000'000;
  ASSERT_TRUE(store_
                  ->Transaction([&]() -> Status {
                    if (Status s = store_->SendMember("T01", 5, 99); !s.ok()) return s;
                    return store_->HoldMembers("T01", {{5, balances[5]}, {1200, balances[1200]}},
                                               Store::Holding::kSent);
                  })
                  .ok());
  EXPECT_EQ(SymbolsOf(**store_->BalanceSet("T01")), BalanceSymbols(balances, stored));
  // Another terminal's snapshot of the same member changes only that terminal's set.
  ASSERT_TRUE(store_->SendMember("T04", 6, 1).ok());
  EXPECT_EQ(SymbolsOf(**store_->BalanceSet("T01")), BalanceSymbols(balances, stored));
  EXPECT_EQ(SymbolsOf(**store_->BalanceSet("T04")), BalanceSymbols({{6, 1}}, stored));
  // A transaction that fails leaves nothing behind, not even for the next one to write.
  EXPECT_FALSE(store_
                   ->Transaction([&]() -> Status {
                     if (Status s = store_->SendMember("T01", 3, 999); !s.ok()) return s;
                     if (Status s = store_->SendMember("T02", 3, 999); !s.ok()) return s;
                     return Status::Error(ErrorCode::kInternal, "the body fails");
                   })
                   .ok());
  ASSERT_TRUE(
      store_->Transaction([&]() -> Status { return store_->SendMember("T01", 4, 12); }).ok());
  balances[4] = 12;
  EXPECT_EQ(SymbolsOf(**store_->BalanceSet("T01")), BalanceSymbols(balances, stored));
  std::vector<recon::Symbol> s0;
  ASSERT_TRUE((*store_->BalanceSet("T02"))->ReadSymbols(0, 1, &s0).ok());
  EXPECT_EQ(s0[0].count, 0);
  // Outside a transaction a write goes at once, as before.
  ASSERT_TRUE(
      store_->HoldMembers("T03", {{1, balances[1]}, {2, balances[2]}}, Store::Holding::kWrote)
          .ok());
  EXPECT_EQ(SymbolsOf(**store_->BalanceSet("T03")),
            BalanceSymbols({{1, balances[1]}, {2, balances[2]}}, stored));
}

TEST_F(HqStoreTest, ManyMembersIdentitiesAndChangeSequenceAtOnceAsOneAtATime) {
  constexpr uint64_t kMembers = 1105;
  std::vector<MemberRecord> members;
  for (uint64_t id = 1; id <= kMembers; ++id) members.push_back(PlainMember(id, 0));
  ASSERT_TRUE(store_
                  ->Transaction([&]() -> Status {
                    for (const auto& m : members) {
                      if (Status s = store_->InsertMember(m); !s.ok()) return s;
                      if (m.member_id % 2 == 0) continue;  // odd members have two identities
                      for (const char* ch : {"wechat", "alipay"}) {
                        if (Status s = store_->PutIdentity(
                                ch, std::string(ch) + "-\"q\\\\" + std::to_string(m.member_id),
                                m.member_id);
                            !s.ok())
                          return s;
                      }
                    }
                    return Status::Ok();
                  })
                  .ok());
  std::vector<uint64_t> ask;
  for (uint64_t id = kMembers; id >= 1; --id) ask.push_back(id);  // any order
  ask.push_back(kMembers + 7);                                    // no such member
  auto many = store_->IdentitiesOfMembers(ask);
  ASSERT_TRUE(many.ok()) << many.status().ToString();
  std::vector<sync::Identity> one_by_one;
  for (uint64_t id : ask) {
    auto ids = store_->IdentitiesOf(id);
    ASSERT_TRUE(ids.ok());
    one_by_one.insert(one_by_one.end(), ids->begin(), ids->end());
  }
  ASSERT_EQ(many->size(), one_by_one.size());
  EXPECT_EQ(many->size(), 2 * ((kMembers + 1) / 2));
  for (size_t i = 0; i < many->size(); ++i) {
    EXPECT_EQ((*many)[i].channel, one_by_one[i].channel);
    EXPECT_EQ((*many)[i].external_id, one_by_one[i].external_id);
    EXPECT_EQ((*many)[i].member_id, one_by_one[i].member_id);
  }
  EXPECT_TRUE(store_->IdentitiesOfMembers({})->empty());

  // UpdateMembers: written members replaced, touched ones only moved, change_seq in order.
  auto max = store_->MaxChangeSeq();
  ASSERT_TRUE(max.ok());
  std::vector<MemberRecord> changed;
  for (uint64_t id = 1; id <= 250; ++id) {  // past one statement's 100 rows
    MemberRecord m = members[id - 1];
    m.balance = static_cast<int64_t>(id) * 10;
    m.tier = id % 3 ? "vip" : "black";
    changed.push_back(m);
  }
  std::vector<Store::MemberWrite> writes;
  for (uint64_t i = 0; i < changed.size(); ++i) {
    MemberRecord& m = changed[changed.size() - 1 - i];  // the order given is the order kept
    m.balance = i % 5 == 0 ? 0 : m.balance;
    writes.push_back({&m, i % 5 != 0});  // every fifth: a touch, its row left as it was
  }
  ASSERT_TRUE(store_->Transaction([&] { return store_->UpdateMembers(writes); }).ok());
  for (size_t i = 0; i < writes.size(); ++i) {
    const MemberRecord& w = *writes[i].m;
    auto got = store_->GetMember(w.member_id);
    ASSERT_TRUE(got.ok() && *got);
    EXPECT_EQ((*got)->change_seq, *max + 1 + static_cast<int64_t>(i)) << w.member_id;
    if (writes[i].write) {
      EXPECT_EQ((*got)->balance, w.balance);
      EXPECT_EQ((*got)->tier, w.tier);
    } else {
      EXPECT_EQ((*got)->balance, 0);  // as inserted
      EXPECT_EQ((*got)->tier, members[w.member_id - 1].tier);
    }
  }
  EXPECT_EQ(*store_->MaxChangeSeq(), *max + static_cast<int64_t>(writes.size()));
  EXPECT_TRUE(store_->Transaction([&] { return store_->UpdateMembers({}); }).ok());
}

// A write given the row as stored sends only the ledger's fields when nothing else changed:
// what the row holds besides (here changed under it in the same transaction, as no write
// should) is left alone; a write that changes anything else is written whole.
TEST_F(HqStoreTest, AWriteOfTheLedgersFieldsAloneLeavesTheRestOfTheRowAsStored) {
  constexpr uint64_t kMembers = 1030;  // past one statement's 500 rows (InsertRows), twice
  std::vector<MemberRecord> stored;
  for (uint64_t id = 1; id <= kMembers; ++id) {
    MemberRecord m = PlainMember(id, 100);
    m.name_enc = "name-" + std::to_string(id);
    m.phone_enc = "phone-" + std::to_string(id);
    m.display_name = "D" + std::to_string(id);
    m.phone_masked = "138****0000";
    m.phone_hash = "ab" + std::to_string(id);
    m.phone_lookup_consent = true;
    stored.push_back(m);
  }
  ASSERT_TRUE(store_
                  ->Transaction([&]() -> Status {
                    for (const auto& m : stored)
                      if (Status s = store_->InsertMember(m); !s.ok()) return s;
                    return Status::Ok();
                  })
                  .ok());
  auto max = store_->MaxChangeSeq();
  ASSERT_TRUE(max.ok());
  std::vector<MemberRecord> changed = stored;
  std::vector<Store::MemberWrite> writes;
  for (uint64_t i = 0; i < kMembers; ++i) {
    MemberRecord& m = changed[i];
    m.balance = 100 + static_cast<int64_t>(i) * 7;
    m.tier = i % 2 ? "vip" : "black";
    m.status = i % 3 ? "active" : "frozen";
    m.frozen_reason = i % 3 ? "" : "velocity";
    m.unfrozen_at_ms = static_cast<int64_t>(i);
    if (i % 10 == 9) m.display_name = "New" + std::to_string(i);  // not the ledger's: whole
    writes.push_back({&m, i % 11 != 10, &stored[i]});             // every eleventh: a touch
  }
  ASSERT_TRUE(store_
                  ->Transaction([&]() -> Status {
                    // The rows' name blobs changed under the writes (as by another path).
                    for (auto m : stored) {
                      m.name_enc = "other-" + std::to_string(m.member_id);
                      if (Status s = store_->UpdateMember(m); !s.ok()) return s;
                    }
                    return store_->UpdateMembers(writes);
                  })
                  .ok());
  for (uint64_t i = 0; i < kMembers; ++i) {
    const MemberRecord& w = changed[i];
    auto got = store_->GetMember(w.member_id);
    ASSERT_TRUE(got.ok() && *got);
    const MemberRecord& g = **got;
    EXPECT_EQ(g.change_seq, *max + static_cast<int64_t>(kMembers + 1 + i)) << w.member_id;
    if (!writes[i].write) {  // a touch: the row as UpdateMember left it
      EXPECT_EQ(g.balance, 100);
      EXPECT_EQ(g.name_enc, "other-" + std::to_string(w.member_id));
      continue;
    }
    EXPECT_EQ(g.balance, w.balance) << w.member_id;
    EXPECT_EQ(g.tier, w.tier);
    EXPECT_EQ(g.status, w.status);
    EXPECT_EQ(g.frozen_reason, w.frozen_reason);
    EXPECT_EQ(g.unfrozen_at_ms, w.unfrozen_at_ms);
    EXPECT_EQ(g.display_name, w.display_name);
    EXPECT_EQ(g.phone_enc, w.phone_enc);
    EXPECT_EQ(g.phone_hash, w.phone_hash);
    EXPECT_TRUE(g.phone_lookup_consent);
    // Narrow: the blob as the row had it; whole: the record's own.
    EXPECT_EQ(g.name_enc, i % 10 == 9 ? w.name_enc : "other-" + std::to_string(w.member_id))
        << w.member_id;
  }
}

// HqEntriesOfMembers (what a snapshot carries of HQ's own entries): per member, HQ's entries
// only (never a terminal's), newest first, at most per_member; members past one statement's
// 1,000 ids; a member without any is absent.
TEST_F(HqStoreTest, HqEntriesOfMembersAreHqsOwnNewestFirstAndBounded) {
  constexpr uint64_t kMembers = 1003;
  FakeTerminal hq{"_hq"}, t{"T01"};
  std::map<uint64_t, std::vector<std::string>> want;  // newest first
  ASSERT_TRUE(store_
                  ->Transaction([&]() -> Status {
                    for (uint64_t id = 1; id <= kMembers; ++id) {
                      const int n = id % 7 == 0 ? 22 : static_cast<int>(id % 3);
                      for (int k = 0; k < n; ++k) {
                        const int64_t at = kMonth + static_cast<int64_t>(id * 100 + k);
                        sync::Entry e =
                            hq.Make(k % 2 ? "adjust" : "expire", id, k % 2 ? 5 : -5, at);
                        want[id].insert(want[id].begin(), e.entry_id);
                        if (Status s = store_->InsertEntry(e, true, kMonth); !s.ok()) return s;
                        if (Status s = store_->InsertEntry(t.Make("earn", id, 1, at), true, kMonth);
                            !s.ok())
                          return s;
                      }
                    }
                    return Status::Ok();
                  })
                  .ok());
  std::vector<uint64_t> ids;
  for (uint64_t id = kMembers + 2; id >= 1; --id) ids.push_back(id);
  auto got = store_->HqEntriesOfMembers(ids, 20);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  for (uint64_t id : ids) {
    auto it = got->find(id);
    auto w = want.find(id);
    if (w == want.end()) {
      EXPECT_EQ(it, got->end()) << id;
      continue;
    }
    ASSERT_NE(it, got->end()) << id;
    std::vector<std::string> ids_got;
    for (const auto& e : it->second) {
      ids_got.push_back(e.entry_id);
      EXPECT_TRUE(sync::IsHqEntryKind(e.kind)) << e.kind;
      EXPECT_EQ(e.points, e.kind == "adjust" ? 5 : -5);
    }
    std::vector<std::string> expect = w->second;
    if (expect.size() > 20) expect.resize(20);
    EXPECT_EQ(ids_got, expect) << id;
  }
  auto few = store_->HqEntriesOfMembers({7}, 3);
  ASSERT_TRUE(few.ok());
  ASSERT_EQ((*few)[7].size(), 3u);
  EXPECT_EQ((*few)[7][0].entry_id, want[7][0]);
  EXPECT_TRUE(store_->HqEntriesOfMembers({}, 20).value().empty());
}

TEST_F(HqStoreTest, WhatAnUploadAndAPageReadOfManyMembersAtOnceIsWhatOneAtATimeReads) {
  constexpr uint64_t kMembers = 1020;  // past one statement's 1,000 ids
  FakeTerminal t{"T01"}, u{"T02"};
  ASSERT_TRUE(
      store_
          ->Transaction([&]() -> Status {
            for (uint64_t id = 1; id <= kMembers; ++id) {
              if (id % 10 == 0) continue;  // no such member
              if (Status s = store_->InsertMember(PlainMember(id, 0)); !s.ok()) return s;
              for (uint64_t k = 0; k < id % 4; ++k) {
                const int64_t at = kMonth + static_cast<int64_t>(id * 1000 + (3 - k));
                if (Status s = store_->AddMemberState(id, at, k ? "vip" : "black", "active");
                    !s.ok())
                  return s;
                model::Lot l{0,    id,
                             10,   static_cast<int64_t>(k % 2 ? 10 : 0),
                             1000, 2000 + static_cast<int64_t>(k),
                             "e"};
                if (auto lot = store_->AddLot(l); !lot.ok()) return lot.status();
              }
              if (id % 3 == 0) {
                for (const char* kind : {"freeze", "tier_upgrade", "earn"}) {
                  FakeTerminal& who = id % 2 ? t : u;
                  const int64_t at = kMonth + static_cast<int64_t>(id);
                  for (int64_t d : {5, 2}) {
                    if (Status s = store_->InsertEntry(who.Make(kind, id, 1, at + d), true, kMonth);
                        !s.ok())
                      return s;
                  }
                }
              }
              if (id % 7 == 0) {  // a spend kept for the month
                if (auto spend = store_->MemberSpend(id, kMonth, kNext); !spend.ok())
                  return spend.status();
              }
            }
            return Status::Ok();
          })
          .ok());
  std::vector<uint64_t> ids;
  for (uint64_t id = kMembers + 3; id >= 1; --id) ids.push_back(id);
  auto members = store_->GetMembers(ids);
  auto states = store_->MemberStateHistories(ids);
  auto lots = store_->LotsOfMembers(ids);
  auto firsts = store_->TerminalMarksOf("T01", ids, {"freeze", "tier_upgrade"});
  auto kept = store_->KeptMemberSpends(ids, kMonth, kNext);
  ASSERT_TRUE(members.ok() && states.ok() && lots.ok() && firsts.ok() && kept.ok());
  std::map<uint64_t, MemberRecord> by_id;
  for (const auto& m : *members) by_id.emplace(m.member_id, m);
  size_t held = 0;
  for (uint64_t id : ids) {
    auto one = store_->GetMember(id);
    ASSERT_TRUE(one.ok());
    ASSERT_EQ(by_id.count(id) > 0, one->has_value()) << id;
    if (*one) {
      ++held;
      EXPECT_EQ(by_id[id].card_number, (*one)->card_number);
      EXPECT_EQ(by_id[id].change_seq, (*one)->change_seq);
    }
    auto h = store_->MemberStateHistory(id);
    ASSERT_TRUE(h.ok());
    auto hs = states->find(id);
    EXPECT_EQ(hs == states->end() ? 0u : hs->second.size(), h->size()) << id;
    for (size_t i = 0; hs != states->end() && i < h->size(); ++i) {
      EXPECT_EQ(hs->second[i].at_ms, (*h)[i].at_ms);
      EXPECT_EQ(hs->second[i].tier, (*h)[i].tier);
    }
    auto l = store_->Lots(id);
    ASSERT_TRUE(l.ok());
    auto ls = lots->find(id);
    EXPECT_EQ(ls == lots->end() ? std::vector<model::Lot>() : ls->second, *l) << id;
    for (const char* kind : {"freeze", "tier_upgrade"}) {
      auto f = store_->TerminalMarksOf("T01", {id}, {kind});
      ASSERT_TRUE(f.ok());
      auto fs = firsts->find({id, kind});
      auto one = f->find({id, kind});
      EXPECT_EQ(fs == firsts->end() ? std::vector<TerminalMark>() : fs->second,
                one == f->end() ? std::vector<TerminalMark>() : one->second)
          << id << kind;
    }
    if (auto k = kept->find(id); k != kept->end()) {
      EXPECT_EQ(id % 7, 0u) << id;
      EXPECT_EQ(k->second, *store_->MemberSpend(id, kMonth, kNext));
    }
  }
  EXPECT_EQ(held, kMembers - kMembers / 10);
  EXPECT_FALSE(firsts->empty());
  EXPECT_FALSE(kept->empty());
  EXPECT_TRUE(store_->TerminalMarksOf("T01", ids, {})->empty());
  EXPECT_TRUE(store_->GetMembers({})->empty());
}

// A terminal's freezes count applied or not (it priced its sales frozen either way); its tier
// upgrades only when HQ applied them: a refused one promotes no one. Each with its time and
// its place in the chain, in the chain's order.
TEST_F(HqStoreTest, ARefusedUpgradeIsNoUpgradeARefusedFreezeStillAFreeze) {
  FakeTerminal t{"T01"};
  ASSERT_TRUE(store_
                  ->Transaction([&]() -> Status {
                    for (const auto& [kind, at, applied] :
                         std::vector<std::tuple<std::string, int64_t, bool>>{
                             {"tier_upgrade", 1000, false},
                             {"freeze", 1500, false},
                             {"tier_upgrade", 2000, true},
                             {"freeze", 900, true}}) {  // a clock stepped back
                      if (Status s = store_->InsertEntry(t.Make(kind, 5, 0, at), applied, at);
                          !s.ok())
                        return s;
                    }
                    return Status::Ok();
                  })
                  .ok());
  auto marks = store_->TerminalMarksOf("T01", {5}, {"freeze", "tier_upgrade"});
  ASSERT_TRUE(marks.ok());
  EXPECT_EQ(marks->at({5, "tier_upgrade"}), (std::vector<TerminalMark>{{2000, 3}}));
  EXPECT_EQ(marks->at({5, "freeze"}), (std::vector<TerminalMark>{{1500, 2}, {900, 4}}));
  EXPECT_TRUE(store_->TerminalMarksOf("T02", {5}, {"freeze"})->empty());
}

// A till writing freeze after freeze for one member: HQ reads its first one and the latest
// Store::kMaxTerminalMarks, never all of them.
TEST_F(HqStoreTest, ATerminalsMarksAreItsFirstAndItsLatestSixtyFour) {
  FakeTerminal t{"T01"};
  const int64_t n = static_cast<int64_t>(Store::kMaxTerminalMarks);
  for (int64_t total : {n, n + 1, n + 2, n + 40}) {
    ASSERT_TRUE(store_
                    ->Transaction([&]() -> Status {
                      while (t.seq < total)
                        if (Status s = store_->InsertEntry(t.Make("freeze", 7, 0, 1000 + t.seq),
                                                           true, 1000);
                            !s.ok())
                          return s;
                      return Status::Ok();
                    })
                    .ok());
    auto marks = store_->TerminalMarksOf("T01", {7, 8}, {"freeze"});
    ASSERT_TRUE(marks.ok());
    ASSERT_EQ(marks->size(), 1u);
    const auto& m = marks->at({7, "freeze"});
    // All of them up to the limit; past it the first and the latest n.
    ASSERT_EQ(static_cast<int64_t>(m.size()), std::min(total, n + 1)) << total;
    EXPECT_EQ(m.front(), (TerminalMark{1000, 1}));
    for (size_t i = 1; i < m.size(); ++i) {
      const int64_t seq = total - static_cast<int64_t>(m.size()) + 1 + static_cast<int64_t>(i);
      EXPECT_EQ(m[i], (TerminalMark{1000 + seq - 1, seq})) << total << " " << i;
    }
  }
}

// A scope row keeps the day of its moment (docs/hq.md, "Member scope"): the member stays in
// the store's scope to the end of that day past the window, never less, and another sale
// there the same day is no news.
TEST_F(HqStoreTest, AScopeRowKeepsTheEndOfItsDay) {
  constexpr int64_t D = 86'400'000;
  ASSERT_TRUE(store_->InsertMember(PlainMember(1, 0)).ok());
  auto in_scope = [&](int64_t since) {
    auto m = store_->StoreMembersChangedAfter("S1", since, 0, 10);
    EXPECT_TRUE(m.ok());
    return m.ok() && m->size() == 1;
  };
  auto first = store_->AddStoreMember("S1", 1, "shopped", 100 * D + 1000, 0);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(*first);
  EXPECT_TRUE(in_scope(100 * D + 1000));
  EXPECT_TRUE(in_scope(101 * D - 1));  // the end of the sale's day
  EXPECT_FALSE(in_scope(101 * D));
  auto again = store_->AddStoreMember("S1", 1, "shopped", 100 * D + 7'200'000, 100 * D);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);  // in the scope already
  auto many = store_->AddStoreMembers("S1", {{1, 100 * D + 9'000'000}}, "shopped", 100 * D);
  ASSERT_TRUE(many.ok());
  EXPECT_TRUE(many->empty());
  EXPECT_FALSE(in_scope(101 * D));
  // The next day moves it on; an earlier moment never moves it back.
  ASSERT_TRUE(store_->AddStoreMembers("S1", {{1, 101 * D + 5}, {1, 50 * D}}, "shopped", 0).ok());
  EXPECT_TRUE(in_scope(102 * D - 1));
  EXPECT_FALSE(in_scope(102 * D));
}

// AddStoreMembers answers and leaves the rows as AddStoreMember of each in turn would, on a
// twin store, members repeated and past one statement's rows; CheckoutVerdicts as
// CheckoutRefused of each.
TEST_F(HqStoreTest, ScopeRowsAndCheckoutVerdictsAtOnceAsOneAtATime) {
  constexpr int64_t D = 86'400'000;  // scope rows keep days: the moments are whole days
  constexpr int64_t kSince = 1'000'000 * D;
  std::vector<std::pair<uint64_t, int64_t>> calls;
  for (uint64_t id = 1; id <= 1100; ++id)
    calls.emplace_back(id, (2'000'000 + static_cast<int64_t>(id)) * D);
  for (uint64_t id = 1; id <= 1100; id += 7) calls.emplace_back(id, 500'000 * D);  // older, again
  ASSERT_TRUE(store_
                  ->Transaction([&]() -> Status {
                    for (uint64_t id = 1; id <= 1100; ++id)
                      if (Status s = store_->InsertMember(PlainMember(id, 0)); !s.ok()) return s;
                    // Rows before: enrolled, shopped long ago (out of scope), shopped lately.
                    for (const char* st : {"S1", "S2"}) {
                      for (uint64_t id = 1; id <= 1100; id += 3) {
                        const bool enrolled = id % 2 == 1;
                        auto r =
                            store_->AddStoreMember(st, id, enrolled ? "enrolled" : "shopped",
                                                   id % 4 == 0 ? 10 * D : 1'500'000 * D, kSince);
                        if (!r.ok()) return r.status();
                      }
                    }
                    return Status::Ok();
                  })
                  .ok());
  std::set<uint64_t> one_by_one;
  Result<std::set<uint64_t>> many = std::set<uint64_t>();
  ASSERT_TRUE(store_
                  ->Transaction([&]() -> Status {
                    for (const auto& [id, at] : calls) {
                      auto r = store_->AddStoreMember("S1", id, "shopped", at, kSince);
                      if (!r.ok()) return r.status();
                      if (*r) one_by_one.insert(id);
                    }
                    many = store_->AddStoreMembers("S2", calls, "shopped", kSince);
                    return many.status();
                  })
                  .ok());
  ASSERT_TRUE(many.ok());
  EXPECT_EQ(*many, one_by_one);
  EXPECT_GT(one_by_one.size(), 500u);
  EXPECT_LT(one_by_one.size(), 1100u);
  for (int64_t since : {kSince, 2'000'500 * D, 9'000'000 * D}) {
    auto a = store_->StoreMembersChangedAfter("S1", since, 0, 100000);
    auto b = store_->StoreMembersChangedAfter("S2", since, 0, 100000);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->size(), b->size()) << since;
    EXPECT_GT(a->size(), 0u) << since;
  }
  auto rows = [&](const std::string& st) {
    auto r = store_->AddStoreMembers(st, {}, "shopped", kSince);  // nothing: no statement fails
    EXPECT_TRUE(r.ok() && r->empty());
    std::vector<uint64_t> out;
    auto held = store_->StoreMembersChangedAfter(st, 0, 0, 100000);
    for (const auto& m : *held) out.push_back(m.member_id);
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(rows("S1"), rows("S2"));
  EXPECT_EQ(rows("S1").size(), 1100u);

  sync::Checkout a = MakeCheckout("co-\"a\\", 7, 500, kMonth + 1);
  sync::Checkout b = MakeCheckout("co-b", 8, 700, kMonth + 2);
  ASSERT_TRUE(store_
                  ->Transaction([&]() -> Status {
                    if (auto r = store_->InsertCheckout("T01", a); !r.ok()) return r.status();
                    if (auto r = store_->InsertCheckout("T01", b); !r.ok()) return r.status();
                    return store_->MarkCheckoutRefused("T01", "co-b");
                  })
                  .ok());
  auto v = store_->CheckoutVerdicts("T01", {"co-\"a\\", "co-b", "co-none", "{x,y}"});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, (std::map<std::string, bool>{{"co-\"a\\", false}, {"co-b", true}}));
  EXPECT_TRUE(store_->CheckoutVerdicts("T02", {"co-b"})->empty());
}

TEST_F(HqStoreTest, EntriesByIdAndBySeqRangeAsOneAtATime) {
  FakeTerminal t{"T01"}, u{"T02"};
  std::vector<sync::Entry> made;
  ASSERT_TRUE(store_
                  ->Transaction([&]() -> Status {
                    for (int i = 0; i < 1010; ++i) {
                      FakeTerminal& who = i % 4 == 3 ? u : t;
                      made.push_back(who.Make("earn", 1 + i % 7, 10 + i, 1773547200000 + i));
                      if (Status s = store_->InsertEntry(made.back(), true, 1773547200000); !s.ok())
                        return s;
                    }
                    return Status::Ok();
                  })
                  .ok());
  std::vector<std::string> ids;
  for (const auto& e : made) ids.push_back(e.entry_id);
  for (const char* odd : {"", "not\"hex\\", "\x01\x1f", "{a,b}", "'); DROP TABLE entries; --"})
    ids.push_back(odd);  // no such entries, and text that needs quoting in either engine
  auto got = store_->EntriesByIds(ids);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  std::map<std::string, sync::Entry> by_id;
  for (const auto& e : *got) by_id.emplace(e.entry_id, e);
  ASSERT_EQ(by_id.size(), made.size());
  for (const auto& e : made) {
    ASSERT_TRUE(by_id.count(e.entry_id));
    EXPECT_EQ(by_id[e.entry_id].hash, e.hash);
    EXPECT_EQ(by_id[e.entry_id].prev_hash, e.prev_hash);
    EXPECT_EQ(by_id[e.entry_id].seq, e.seq);
  }
  EXPECT_TRUE(store_->EntriesByIds({})->empty());
  auto range = store_->TerminalEntriesBetween("T01", 100, 140);
  ASSERT_TRUE(range.ok());
  std::vector<sync::Entry> expect;
  for (int64_t seq = 100; seq <= 140; ++seq) {
    auto at = store_->EntriesAtSeq("T01", seq);
    ASSERT_TRUE(at.ok());
    expect.insert(expect.end(), at->begin(), at->end());
  }
  ASSERT_EQ(range->size(), expect.size());
  EXPECT_EQ(range->size(), 41u);
  for (size_t i = 0; i < expect.size(); ++i) EXPECT_EQ((*range)[i].entry_id, expect[i].entry_id);
  EXPECT_TRUE(store_->TerminalEntriesBetween("T01", 5000, 6000)->empty());
  EXPECT_TRUE(store_->TerminalEntriesBetween("T09", 1, 10)->empty());
}

TEST_F(HqStoreTest, AReadThatFailsDuringAnUploadFailsItWholeAndARetrySucceeds) {
  const std::vector<std::string> ids = {"1001", "1002"};
  // HQ as the upload finds it; again after an upload a fault did not stop.
  auto setup = [&] {
    service_.reset();
    store_.reset();
    Status dropped = loyalty::testing::DropTestHqStore(dir_);
    ASSERT_TRUE(dropped.ok()) << dropped.ToString();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    clock_.set_now_ms(kNowMs);
    Open();
    for (const auto& id : ids) {
      CreateMember({{"member_id", id}, {"name", "张三"}});
      ASSERT_EQ(Call("POST", "/v1/members/" + id + "/adjustments",
                     json{{"adjustment_id", "seed-" + id}, {"points", 3000}, {"reason", "seed"}})
                    .status,
                201);
    }
    ASSERT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);
    clock_.advance_ms(1000);
  };
  setup();
  FakeTerminal t{"T01"};
  const std::string code(64, 'c');
  sync::UploadRequest up;
  for (size_t i = 0; i < 6; ++i) {
    uint64_t m = std::stoull(ids[i % 2]);
    // A redemption in the first sale of each member, then earns (one a tier's worth).
    Sale s = PricedSale(t, m, "c" + std::to_string(i), Basket(i == 4 ? 6'000'000 : 10000),
                        kNowMs + 2000 + static_cast<int64_t>(i) * 1000, i < 2 ? 1000 : 0, code);
    up.entries.insert(up.entries.end(), s.entries.begin(), s.entries.end());
    up.checkouts.push_back(s.checkout);
  }
  sync::Refund r{"r1", "c2", "", "return", kNowMs + 9000, 10000, 100, 0, "{}", {{0, 1}}};
  up.entries.push_back(
      t.MakeFull("clawback", std::stoull(ids[0]), -100, kNowMs + 9000, "c2", "r1", ""));
  up.refunds.push_back(r);

  // What an upload could change, read around the service.
  auto state = [&] {
    json out;
    for (const auto& id : ids) {
      json v = Member(id);
      auto lots = store_->Lots(std::stoull(id));
      EXPECT_TRUE(lots.ok());
      json l = json::array();
      for (const auto& lot : *lots) l.push_back({lot.remaining, lot.expires_at_s});
      out[id] = {
          v["balance"],          v["tier"], v["status"], v["entries"], v["month_spend_cents"],
          v["conflicts"].size(), l};
    }
    json term = J(Call("GET", "/v1/terminals/T01"));
    out["terminal"] = {term["entries"], term["checkouts"], term["last_seq"],
                       term["conflicts"].size()};
    auto seq = store_->MaxChangeSeq();
    EXPECT_TRUE(seq.ok());
    out["change_seq"] = *seq;
    return out;
  };
  const json before = state();
  const std::string body = sync::SerializeMessage(up);

  // Every read the upload makes, failing from its first step or from a later one.
  const std::vector<std::string> reads = {
      "FROM members WHERE member_id",                // the members (at once)
      "FROM checkouts WHERE terminal_id",            // a checkout's verdict, a refund's checkout
      "FROM member_states",                          // what the terminal could have priced with
      "FROM terminal_downloads",                     // its last download
      "FROM member_downloads",                       // its members sent alone since
      "ORDER BY seq, at_ms) AS early",               // its own freezes / upgrades
      "FROM spend_totals",                           // the month's spend (tier)
      "FROM lots WHERE member_id",                   // lots to credit and debit
      "FROM entries WHERE entry_id",                 // a resent entry
      "FROM entries WHERE terminal_id = ? AND seq",  // the chain
      "max(at_ms) FROM entries",                     // the redemption cooldown
      "SELECT points FROM entries WHERE member_id = ?1",  // what the terminal could know
      "kind = 'earn' AND applied = 1",                    // chain-wide velocity
      "applied = 1 AND terminal_id = ?2",                 // its own velocity rule
      "kind = 'chain_fork'",                              // ... below its first fork
      "FROM refunds WHERE terminal_id",                   // earlier refunds
  };
  for (const auto& sql : reads) {
    for (int nth : {1, 2, 5}) {
      ClearStoreFaults();
      InjectStoreFault({sql, nth, -1, SQLITE_IOERR});
      auto r = Call("POST", "/v1/sync/T01/entries", body, false);
      int fired = StoreFaultsFired();
      ClearStoreFaults();
      if (nth == 1) {
        EXPECT_GT(fired, 0) << sql << " is not read by this upload";
      }
      if (fired == 0) {  // fewer steps of it than nth in this upload, which went through
        EXPECT_EQ(r.status, 200) << sql << " #" << nth << ": " << r.body;
        setup();
        ASSERT_EQ(state(), before);
        continue;
      }
      EXPECT_EQ(r.status, 503) << sql << " #" << nth << ": " << r.body;
      EXPECT_EQ(J(r)["error"]["code"], "unavailable") << sql;
      EXPECT_EQ(state(), before) << sql << " #" << nth;
    }
  }
  // A single failing step, not the first: the same (a checkout's verdict is read for each).
  ClearStoreFaults();
  InjectStoreFault({"FROM checkouts WHERE terminal_id", 2, 1, SQLITE_IOERR});
  EXPECT_EQ(Call("POST", "/v1/sync/T01/entries", body, false).status, 503);
  EXPECT_EQ(StoreFaultsFired(), 1);
  ClearStoreFaults();
  EXPECT_EQ(state(), before);

  // The retry goes through, once.
  auto res = Upload("T01", up);
  ASSERT_EQ(res.results.size(), up.entries.size());
  for (const auto& e : res.results) EXPECT_EQ(e.status, "created") << e.entry_id;
  EXPECT_NE(state(), before);
  EXPECT_EQ(Member(ids[0])["tier"], "black");  // 60,000 yuan this month
  for (const auto& id : ids) {
    auto sum = store_->SumMemberPoints(std::stoull(id));
    ASSERT_TRUE(sum.ok());
    EXPECT_EQ(*sum, Member(id)["balance"].get<int64_t>());
  }
  res = Upload("T01", up);
  for (const auto& e : res.results) EXPECT_EQ(e.status, "exists");
}

// A changes page beside uploads locks its members, so on PostgreSQL it ends after
// kMaxSharedWriteKeys - 1 of them (with `more`) however large the limit; on SQLite, where
// writes run one at a time, it runs to the limit. Either way the pages add up to every
// member once.
TEST_F(HqStoreTest, ChangesPagesBesideUploadsStopAtTheKeyLimitOnPostgresOnly) {
  constexpr int kMembers = 600;
  std::set<std::string> made;
  for (int i = 0; i < kMembers; ++i) {
    char phone[16];
    std::snprintf(phone, sizeof phone, "139%08d", i);
    made.insert(CreateMember({{"name", "会员"}, {"phone", phone}}));
  }
  std::set<std::string> seen;
  std::string cursor;
  std::vector<size_t> sizes;
  for (int pages = 0; pages < 5; ++pages) {
    auto r =
        Call("GET", "/v1/sync/T1/changes?limit=1000" + (cursor.empty() ? "" : "&cursor=" + cursor),
             "", false);
    ASSERT_EQ(r.status, 200) << r.body;
    auto page = sync::ParseMessage<sync::ChangesResponse>(r.body);
    ASSERT_TRUE(page.ok()) << r.body;
    sizes.push_back(page->members.size());
    for (const auto& m : page->members)
      EXPECT_TRUE(seen.insert(std::to_string(m.member_id)).second);
    cursor = page->cursor;
    if (!page->more) break;
  }
  EXPECT_EQ(seen, made);
  if (loyalty::testing::HqOnPostgres()) {
    EXPECT_EQ(sizes,
              (std::vector<size_t>{kMaxSharedWriteKeys - 1, kMembers - (kMaxSharedWriteKeys - 1)}));
  } else {
    EXPECT_EQ(sizes, (std::vector<size_t>{kMembers}));
  }
}

// --- writers in parallel (docs/hq.md, "Writers in parallel")

// Polls pred every millisecond for up to 20 s: a bound for a test that would otherwise hang,
// not a measure of anything.
bool WaitFor(const std::function<bool()>& pred) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

class HqParallelWritesTest : public HqStoreTest {
 protected:
  void SetUp() override {
    HqStoreTest::SetUp();
    if (!loyalty::testing::HqOnPostgres()) GTEST_SKIP() << "SQLite has one writer at a time";
    auto s = loyalty::testing::OpenTestHqStore(dir_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    other_ = std::move(*s);
  }
  void TearDown() override {
    other_.reset();
    HqStoreTest::TearDown();
  }

  // Sessions of this test's database waiting for a lock (other tests share the server).
  int64_t Waiting() {
    auto n = loyalty::testing::QueryIntOnTestHqStore(
        dir_,
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid IN (SELECT pid FROM "
        "pg_stat_activity WHERE datname = current_database())");
    return n.ok() ? *n : -1;
  }

  struct Beside {
    bool finished_inside = false;  // the second write committed while the first was open
    bool seen_waiting = false;     // it was seen waiting for a lock meanwhile
  };
  // `first` opens a transaction (on store_) whose body starts `second` (a transaction on
  // other_) and waits until it has committed or is seen waiting for a lock; then both end.
  Beside RunBeside(const std::function<Status(const std::function<Status()>&)>& first,
                   const std::function<Status()>& second) {
    std::atomic<bool> inside{false}, done{false};
    Status second_status;
    std::thread t([&] {
      WaitFor([&] { return inside.load(); });
      second_status = second();
      done = true;
    });
    Beside out;
    Status s = first([&]() -> Status {
      inside = true;
      EXPECT_TRUE(WaitFor([&] {
        if (done) return true;
        out.seen_waiting = Waiting() > 0;
        return out.seen_waiting;
      }));
      out.finished_inside = done;
      return Status::Ok();
    });
    inside = true;
    t.join();
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_TRUE(second_status.ok()) << second_status.ToString();
    return out;
  }

  std::unique_ptr<Store> other_;
};

TEST_F(HqParallelWritesTest, SharedWritesOfOtherKeysRunTogetherAndOfTheSameKeyInTurn) {
  auto shared = [&](Store& st, std::vector<std::string> keys) {
    return [&st, keys](const std::function<Status()>& body) {
      return st.SharedTransaction(keys, body);
    };
  };
  auto touch = [&](Store& st, const std::string& tid, std::vector<std::string> keys) {
    return [&st, tid, keys]() -> Status {
      return st.SharedTransaction(keys, [&]() -> Status {
        return st.PutTerminal(TerminalRecord{tid, "S1", 1, 2, 0, ""});
      });
    };
  };
  // Other keys: the second commits while the first is open.
  Beside apart = RunBeside(shared(*store_, {"t:T1", "m:1", "m:7"}),
                           touch(*other_, "T2", {"t:T2", "m:2", "c:CP-1"}));
  EXPECT_TRUE(apart.finished_inside);
  EXPECT_FALSE(apart.seen_waiting);
  // One key in common (among others, given in another order): it waits for the commit.
  Beside same = RunBeside(shared(*store_, {"m:9", "t:T1", "m:1"}),
                          touch(*other_, "T3", {"m:1", "t:T3", "m:8"}));
  EXPECT_FALSE(same.finished_inside);
  EXPECT_TRUE(same.seen_waiting);
  // Both wrote, each once.
  for (const char* tid : {"T2", "T3"}) {
    auto t = store_->GetTerminal(tid);
    ASSERT_TRUE(t.ok());
    EXPECT_TRUE(t->has_value()) << tid;
  }
}

TEST_F(HqParallelWritesTest, PastTheKeyLimitASharedWriteRunsAlone) {
  auto keys = [](size_t n) {
    std::vector<std::string> k{"t:T1"};
    for (size_t i = 1; k.size() < n; ++i) k.push_back("m:" + std::to_string(i));
    k.push_back("m:1");  // named twice: one key
    return k;
  };
  auto other = [&]() {
    return other_->SharedTransaction({"t:T2"}, [&] {
      return other_->PutTerminal(TerminalRecord{"T2", "S1", 1, 2, 0, ""});
    });
  };
  Beside at_limit = RunBeside(
      [&](const std::function<Status()>& body) {
        return store_->SharedTransaction(keys(kMaxSharedWriteKeys), body);
      },
      other);
  EXPECT_TRUE(at_limit.finished_inside);
  EXPECT_FALSE(at_limit.seen_waiting);
  Beside past = RunBeside(
      [&](const std::function<Status()>& body) {
        return store_->SharedTransaction(keys(kMaxSharedWriteKeys + 1), body);
      },
      other);
  EXPECT_FALSE(past.finished_inside);
  EXPECT_TRUE(past.seen_waiting);
}

TEST_F(HqParallelWritesTest, AnExclusiveWriteAndASharedOneWaitForEachOther) {
  auto put = [](Store& st, const std::string& tid) {
    return st.PutTerminal(TerminalRecord{tid, "S1", 1, 2, 0, ""});
  };
  Beside after_shared = RunBeside(
      [&](const std::function<Status()>& body) {
        return store_->SharedTransaction({"t:T1"}, body);
      },
      [&]() { return other_->Transaction([&] { return put(*other_, "T2"); }); });
  EXPECT_FALSE(after_shared.finished_inside);
  EXPECT_TRUE(after_shared.seen_waiting);
  Beside after_exclusive = RunBeside(
      [&](const std::function<Status()>& body) { return store_->Transaction(body); },
      [&]() { return other_->SharedTransaction({"t:T3"}, [&] { return put(*other_, "T3"); }); });
  EXPECT_FALSE(after_exclusive.finished_inside);
  EXPECT_TRUE(after_exclusive.seen_waiting);
}

TEST_F(HqParallelWritesTest, HqsChainAndTheChangeSequenceAreOneWriterAtATime) {
  // Two shared writes of disjoint keys: the second to ask for HQ's chain waits for the first's
  // commit, and so does one that takes a change-sequence value meanwhile.
  Beside chain = RunBeside(
      [&](const std::function<Status()>& body) {
        return store_->SharedTransaction({"m:1"}, [&]() -> Status {
          if (Status s = store_->LockHqChain(); !s.ok()) return s;
          return body();
        });
      },
      [&]() { return other_->SharedTransaction({"m:2"}, [&] { return other_->LockHqChain(); }); });
  EXPECT_FALSE(chain.finished_inside);
  EXPECT_TRUE(chain.seen_waiting);
  ASSERT_TRUE(store_->Transaction([&] { return store_->InsertMember(PlainMember(5, 0)); }).ok());
  Beside counter = RunBeside(
      [&](const std::function<Status()>& body) {
        return store_->SharedTransaction({"m:1"}, [&]() -> Status {
          if (Status s = store_->LockHqChain(); !s.ok()) return s;
          return body();
        });
      },
      [&]() { return other_->SharedTransaction({"m:5"}, [&] { return other_->TouchMember(5); }); });
  EXPECT_FALSE(counter.finished_inside);
  EXPECT_TRUE(counter.seen_waiting);
  // In an exclusive write the writer lock is enough: nothing more to wait for.
  ASSERT_TRUE(store_->Transaction([&] { return store_->LockHqChain(); }).ok());
}

// A changes page beside an upload of one of its members, through two services (two
// processes) on one database: the page, having read the member, waits for the upload's
// commit (the member's key) and sends the member as it is after it — balance and lots of one
// moment — and its cursor lets the next page send it again.
TEST_F(HqParallelWritesTest, AChangesPageWaitsForAnUploadOfItsMemberAndSendsItWhole) {
  const std::string id = CreateMember();
  const uint64_t member = std::stoull(id);
  FakeTerminal t2{"T2"};
  int n = 0;
  auto sale = [&]() {
    ++n;
    Sale s = PricedSale(t2, member, "T2-" + std::to_string(n), Basket(10000 * n), kNowMs + n);
    sync::UploadRequest up;
    up.entries = s.entries;
    up.checkouts.push_back(s.checkout);
    return up;
  };
  auto page = [](HqService& service, const std::string& cursor) {
    http::Request r;
    r.method = "GET";
    r.path = "/v1/sync/T1/changes";
    r.target = r.path + "?cursor=" + cursor;
    if (!cursor.empty()) r.query["cursor"] = cursor;
    http::Response resp = service.Handle(r, std::nullopt);
    EXPECT_EQ(resp.status, 200) << resp.body;
    auto out = sync::ParseMessage<sync::ChangesResponse>(resp.body);
    EXPECT_TRUE(out.ok()) << resp.body;
    return out.ok() ? *out : sync::ChangesResponse{};
  };
  Upload("T2", sale());
  Call("POST", "/v1/sync/T1/hello", Hello("T1"), false);
  const sync::ChangesResponse first = page(*service_, "");
  ASSERT_EQ(first.members.size(), 1u);
  for (const auto& e : Upload("T2", sale()).results)  // the member changed since T1's cursor
    EXPECT_EQ(e.status, "created");
  // Another process, and a third session holding the member's key for a while.
  HqOptions o;
  o.admin_token = "secret-token";
  o.signing_seeds[1] = std::string(32, '\x01');
  o.signing_seeds[3] = HqSeed();
  o.card_prefix = "88";
  o.timezone = *TimeZone::Fixed(8 * 3600);
  HqService second(*other_, clock_, PiiCipher::FromKey(std::string(32, 'k')), o);
  {
    // Its first request publishes its rules (an exclusive write): before the key is held.
    http::Request h;
    h.method = "POST";
    h.target = h.path = "/v1/sync/T2/hello";
    h.body = Hello("T2");
    ASSERT_EQ(second.Handle(h, std::nullopt).status, 200);
  }
  auto held = loyalty::testing::OpenTestHqStore(dir_);
  ASSERT_TRUE(held.ok());
  std::atomic<bool> release{false}, holding{false};
  std::thread holder([&] {
    EXPECT_TRUE((*held)
                    ->SharedTransaction({"m:" + id},
                                        [&]() -> Status {
                                          holding = true;
                                          WaitFor([&] { return release.load(); });
                                          return Status::Ok();
                                        })
                    .ok());
  });
  ASSERT_TRUE(WaitFor([&] { return holding.load(); }));
  // The upload waits for the member's key; then the page reads the member and waits too.
  const sync::UploadRequest third = sale();
  std::atomic<bool> uploaded{false};
  std::thread uploader([&] {
    http::Request r;
    r.method = "POST";
    r.target = r.path = "/v1/sync/T2/entries";
    r.body = sync::SerializeMessage(third);
    http::Response resp = second.Handle(r, std::nullopt);
    EXPECT_EQ(resp.status, 200) << resp.body;
    auto res = sync::ParseMessage<sync::UploadResponse>(resp.body);
    EXPECT_TRUE(res.ok()) << resp.body;
    if (res.ok())
      for (const auto& e : res->results) EXPECT_EQ(e.status, "created") << resp.body;
    uploaded = true;
  });
  ASSERT_TRUE(WaitFor([&] { return Waiting() >= 1; }));
  sync::ChangesResponse during;
  std::atomic<bool> paged{false};
  std::thread pager([&] {
    during = page(*service_, first.cursor);
    paged = true;
  });
  const bool both_waited = WaitFor([&] { return Waiting() >= 2 || paged; }) && !paged;
  release = true;
  holder.join();
  uploader.join();
  pager.join();
  EXPECT_TRUE(both_waited) << "the page did not wait for the member's key";
  EXPECT_TRUE(uploaded);
  const int64_t balance = Member(id)["balance"].get<int64_t>();
  ASSERT_EQ(during.members.size(), 1u);
  const sync::Snapshot& m = during.members[0];
  EXPECT_EQ(m.balance, balance);  // as the upload left it
  int64_t lots = 0;
  for (const auto& l : m.lots) lots += l.points;
  EXPECT_EQ(lots, m.balance);  // of the same moment
  // The upload committed after the page's cursor was taken: the next page sends it again.
  const sync::ChangesResponse next = page(*service_, during.cursor);
  ASSERT_EQ(next.members.size(), 1u);
  EXPECT_EQ(next.members[0].balance, balance);
}

TEST_F(HqParallelWritesTest, ASharedWriteLeavesTheJournalUnfoldedAndFoldSetsFoldsIt) {
  // More items than the auto-fold size (4,096), into two terminals' sets: T1's in a shared
  // write, T2's in an exclusive one.
  std::vector<recon::Item> items;
  for (int i = 0; i < 5000; ++i) {
    recon::Item item;
    item.id = std::string(12, 'e') + std::string(reinterpret_cast<const char*>(&i), 4);
    item.hash[0] = static_cast<uint8_t>(i);
    item.hash[1] = static_cast<uint8_t>(i >> 8);
    items.push_back(item);
  }
  auto add = [&](const std::string& tid) {
    return [&, tid]() -> Status {
      for (const auto& item : items)
        if (Status s = store_->AddToTerminalSet(tid, item); !s.ok()) return s;
      return Status::Ok();
    };
  };
  Status shared_add = store_->SharedTransaction({"t:T1"}, add("T1"));
  ASSERT_TRUE(shared_add.ok()) << shared_add.ToString();
  ASSERT_TRUE(store_->Transaction(add("T2")).ok());
  auto journal = [&](const std::string& tid) {
    auto n = loyalty::testing::QueryIntOnTestHqStore(
        dir_,
        "SELECT count(*) FROM recon_journal j JOIN recon_scopes s ON s.scope_id = j.scope_id "
        "WHERE s.name = 'terminal:" +
            tid + "'");
    EXPECT_TRUE(n.ok());
    return n.ok() ? *n : -1;
  };
  EXPECT_EQ(journal("T1"), 5000);
  EXPECT_EQ(journal("T2"), 0);  // folded at its write
  // The same set either way, folded or not.
  const auto t2 = SymbolsOf(**store_->TerminalSet("T2"));
  EXPECT_EQ(SymbolsOf(**store_->TerminalSet("T1")), t2);
  ASSERT_TRUE(store_->Transaction([&] { return store_->FoldSets("T1"); }).ok());
  EXPECT_EQ(journal("T1"), 0);
  EXPECT_EQ(SymbolsOf(**store_->TerminalSet("T1")), t2);
  // A journal below the auto-fold size stays as it is.
  ASSERT_TRUE(store_
                  ->SharedTransaction({"t:T1"},
                                      [&]() -> Status {
                                        recon::Item one;
                                        one.id = std::string(16, 'l');
                                        return store_->AddToTerminalSet("T1", one);
                                      })
                  .ok());
  ASSERT_TRUE(store_->Transaction([&] { return store_->FoldSets("T1"); }).ok());
  EXPECT_EQ(journal("T1"), 1);
}

}  // namespace
}  // namespace loyalty::hq::testing
