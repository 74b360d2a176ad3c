// The reconciliation algorithm over in-memory sets: exact differences, round trips, bytes.
#include <gtest/gtest.h>

#include <map>

#include "loyalty/base/encoding.h"
#include "loyalty/recon/protocol.h"
#include "loyalty/recon/recon.h"
#include "recon_test_util.h"

namespace loyalty::recon {
namespace {

using testing::MakeScenario;
using testing::Reconcile;
using testing::Scenario;

void Fill(MemoryStore* store, const std::vector<Item>& items) {
  for (const Item& i : items) ASSERT_TRUE(store->Add(i).ok());
}

// Builds both sides of a scenario as memory stores.
void Build(const Scenario& s, MemoryStore* a, MemoryStore* b) {
  Fill(a, s.common);
  Fill(b, s.common);
  Fill(a, s.only_a);
  Fill(a, s.mismatch_a);
  Fill(b, s.only_b);
  Fill(b, s.mismatch_b);
}

TEST(ElementTest, RejectsIdsOfOtherLengths) {
  EXPECT_EQ(MakeElement(Item{std::string(15, 'x'), {}}).status().code(), ErrorCode::kBadRequest);
  EXPECT_EQ(MakeElement(Item{std::string(17, 'x'), {}}).status().code(), ErrorCode::kBadRequest);
  EXPECT_TRUE(MakeElement(Item{std::string(16, 'x'), {}}).ok());
  MemoryStore m;
  EXPECT_EQ(m.Add(Item{"short", {}}).code(), ErrorCode::kBadRequest);
  EXPECT_EQ(m.Remove("short").code(), ErrorCode::kBadRequest);
}

TEST(ElementTest, TagDependsOnContent) {
  Item a{std::string(16, '\1'), Sha256("a")};
  Item b{a.id, Sha256("b")};
  EXPECT_NE(MakeElement(a)->tag, MakeElement(b)->tag);
  EXPECT_EQ(MakeElement(a)->tag, MakeElement(a)->tag);
}

// Fixed values so that another implementation of the protocol can check itself.
TEST(ElementTest, GoldenValues) {
  Item item{std::string(16, '\0'), Digest{}};
  auto e = MakeElement(item);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(HexEncode(std::string(e->tag.begin(), e->tag.end())), "ae2fc6808ad6cbb7");
  EXPECT_EQ(e->Check(), 14128095486071610184ULL);
  std::vector<uint64_t> idx;
  for (IndexSequence seq(e->Check()); idx.size() < 8; seq.Next()) idx.push_back(seq.index());
  EXPECT_EQ(idx, (std::vector<uint64_t>{0, 1, 2, 4, 5, 9, 14, 19}));
}

TEST(IndexSequenceTest, StrictlyIncreasingFromZero) {
  for (uint64_t seed : {0ULL, 1ULL, 0xffffffffffffffffULL, 12345ULL}) {
    IndexSequence seq(seed);
    EXPECT_EQ(seq.index(), 0u);
    uint64_t last = 0;
    for (int i = 0; i < 200 && seq.index() < kMaxSymbolIndex; ++i) {
      seq.Next();
      EXPECT_GT(seq.index(), last);
      last = seq.index();
    }
  }
}

TEST(IndexSequenceTest, DensityIsTwoOverIPlusTwo) {
  // Over 20,000 seeds, symbol i should hold about 2/(i+2) of the elements.
  const int n = 20000;
  std::map<uint64_t, int> hits;
  const std::vector<uint64_t> watch = {1, 2, 10, 100, 1000};
  for (int s = 0; s < n; ++s) {
    for (IndexSequence seq(static_cast<uint64_t>(s) * 0x9e3779b97f4a7c15ULL); seq.index() <= 1000;
         seq.Next()) {
      if (std::find(watch.begin(), watch.end(), seq.index()) != watch.end()) ++hits[seq.index()];
    }
  }
  for (uint64_t i : watch) {
    const double expected = 2.0 * n / static_cast<double>(i + 2);
    EXPECT_NEAR(hits[i], expected, 5 * std::sqrt(expected) + 1) << "symbol " << i;
  }
}

TEST(MemoryStoreTest, AddIsIdempotentAndConflictsOnOtherContent) {
  MemoryStore m;
  Item a{std::string(16, 'a'), Sha256("1")};
  ASSERT_TRUE(m.Add(a).ok());
  ASSERT_TRUE(m.Add(a).ok());
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m.Add(Item{a.id, Sha256("2")}).code(), ErrorCode::kConflict);
  EXPECT_EQ(m.size(), 1u);
}

TEST(MemoryStoreTest, RemoveRestoresSymbols) {
  MemoryStore m(1024);
  std::vector<Symbol> empty, before, after;
  ASSERT_TRUE(m.ReadSymbols(0, 1024, &empty).ok());
  Item a{std::string(16, 'a'), Sha256("1")};
  Item b{std::string(16, 'b'), Sha256("2")};
  ASSERT_TRUE(m.Add(a).ok());
  ASSERT_TRUE(m.ReadSymbols(0, 1024, &before).ok());
  ASSERT_TRUE(m.Add(b).ok());
  ASSERT_TRUE(m.Upsert(Item{b.id, Sha256("3")}).ok());
  ASSERT_TRUE(m.Remove(b.id).ok());
  ASSERT_TRUE(m.Remove(b.id).ok());  // absent: no-op
  ASSERT_TRUE(m.ReadSymbols(0, 1024, &after).ok());
  EXPECT_EQ(before, after);
  ASSERT_TRUE(m.Remove(a.id).ok());
  ASSERT_TRUE(m.ReadSymbols(0, 1024, &after).ok());
  EXPECT_EQ(empty, after);
  EXPECT_EQ(m.ReadSymbols(1000, 1025, &after).code(), ErrorCode::kBadRequest);
}

TEST(ReconcileTest, EmptySetsAreInSyncInOneRoundTrip) {
  MemoryStore a, b;
  auto o = Reconcile(a, b);
  EXPECT_EQ(o.round_trips, 1);
  EXPECT_TRUE(o.have.empty() && o.need.empty() && o.mismatched.empty());
  EXPECT_LE(o.bytes, 32u);
}

// The main property: random sets with random differences on both sides and conflicting
// contents; the computed differences are exactly the true ones.
TEST(ReconcileTest, RandomDifferencesAreExact) {
  struct Case {
    size_t common, a, b, m;
  };
  const std::vector<Case> cases = {
      {0, 0, 0, 0},        {0, 1, 0, 0},           {0, 0, 1, 0},        {0, 0, 0, 1},
      {1, 0, 0, 0},        {10, 3, 2, 1},          {100, 0, 0, 0},      {1000, 1, 0, 0},
      {1000, 0, 1, 0},     {1000, 0, 0, 1},        {1000, 5, 5, 0},     {1000, 40, 50, 10},
      {5000, 300, 200, 0}, {5000, 900, 1000, 100}, {20000, 0, 2000, 0}, {0, 50, 0, 0},
      {0, 0, 3000, 0},     {300, 0, 0, 300},
  };
  uint64_t seed = 1000;
  for (const Case& c : cases) {
    for (int rep = 0; rep < 3; ++rep, ++seed) {
      SCOPED_TRACE("seed " + std::to_string(seed) + " common " + std::to_string(c.common) + " a " +
                   std::to_string(c.a) + " b " + std::to_string(c.b) + " m " + std::to_string(c.m));
      Scenario s = MakeScenario(seed, c.common, c.a, c.b, c.m);
      MemoryStore a, b;
      Build(s, &a, &b);
      testing::ExpectExact(s, Reconcile(a, b));
      // And the other way round.
      auto back = Reconcile(b, a);
      EXPECT_EQ(back.have, s.Ids(s.only_b));
      EXPECT_EQ(back.need, s.Ids(s.only_a));
      EXPECT_EQ(back.mismatched, s.Ids(s.mismatch_a));
    }
  }
}

TEST(ReconcileTest, LargeSetSmallDifferences) {
  const uint64_t seed = 77;
  SCOPED_TRACE("seed " + std::to_string(seed));
  Scenario base = MakeScenario(seed, 100000, 0, 0, 0);
  MemoryStore a, b;
  Fill(&a, base.common);
  Fill(&b, base.common);
  for (size_t d : {0u, 1u, 10u, 100u, 1000u, 2000u}) {
    SCOPED_TRACE("d " + std::to_string(d));
    Scenario diff = MakeScenario(seed + d + 1, 0, d / 2, d - d / 2 - d / 10, d / 10);
    MemoryStore a2 = a, b2 = b;
    Fill(&a2, diff.only_a);
    Fill(&a2, diff.mismatch_a);
    Fill(&b2, diff.only_b);
    Fill(&b2, diff.mismatch_b);
    auto o = Reconcile(a2, b2);
    testing::ExpectExact(diff, o);
    EXPECT_FALSE(o.listed);
    EXPECT_LE(o.round_trips, d == 0 ? 1 : 3);
  }
}

// Round trips and bytes for small d, over many seeds (the targets: ≤ 3 round trips).
TEST(ReconcileTest, RoundTripsForSmallDifferences) {
  for (size_t d : {1u, 2u, 5u, 10u, 50u, 200u}) {
    int worst = 0;
    uint64_t worst_bytes = 0;
    for (uint64_t seed = 0; seed < 40; ++seed) {
      SCOPED_TRACE("seed " + std::to_string(seed) + " d " + std::to_string(d));
      Scenario s = MakeScenario(seed * 1000 + d, 2000, d / 2, d - d / 2, 0);
      MemoryStore a, b;
      Build(s, &a, &b);
      auto o = Reconcile(a, b);
      testing::ExpectExact(s, o);
      worst = std::max(worst, o.round_trips);
      worst_bytes = std::max(worst_bytes, o.bytes);
    }
    EXPECT_LE(worst, d == 1 ? 1 : 3) << "d " << d;
    // The targets of hq-and-sync.md (2.3 KiB at d = 1, 16 KiB at d = 10); elsewhere coded
    // symbols of ~35 bytes, at most ~4 per difference in the rare third round trip.
    const uint64_t bound = d == 1 ? 2355 : d == 10 ? 16384 : 1000 + 450 * d;
    EXPECT_LE(worst_bytes, bound) << "d " << d;
  }
}

TEST(ReconcileTest, HugeDifferenceFallsBackToListing) {
  // 64 stored symbols decode at most ~40 differences: 500 must be listed, still exactly.
  Scenario s = MakeScenario(9, 3000, 250, 200, 50);
  MemoryStore a(64), b(64);
  Build(s, &a, &b);
  auto o = Reconcile(a, b);
  testing::ExpectExact(s, o);
  EXPECT_TRUE(o.listed);
}

TEST(ReconcileTest, ListingSpansSeveralPages) {
  // More than one ITEMS page (65,536 items each) on the responder side.
  Scenario s = MakeScenario(10, 0, 3, 70000, 0);
  MemoryStore a(64), b(64);
  Build(s, &a, &b);
  auto o = Reconcile(a, b);
  testing::ExpectExact(s, o);
  EXPECT_TRUE(o.listed);
  EXPECT_GE(o.round_trips, 3);
}

// A responder whose set changes between two rounds (HQ's balance set while other
// terminals' uploads commit): the later symbols do not decode with the first ones. The
// exchange does not fail: it lists, and the listing is exact against the set as it is then.
TEST(ReconcileTest, ASetChangedBetweenRoundsIsListedNotRefused) {
  constexpr size_t kChanged = 5;
  int relisted = 0;
  for (uint64_t seed = 0; seed < 30; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    // Enough differences for a second round of symbols.
    Scenario s = MakeScenario(500 + seed, 3000, 60, 60, 20);
    MemoryStore a, b;
    Build(s, &a, &b);
    Initiator ini(a);
    Responder resp(b);
    std::vector<std::string> have, need, mismatched;
    auto msg = ini.Start();
    ASSERT_TRUE(msg.ok());
    std::optional<std::string> next = *msg;
    int round = 0;
    Scenario changed = MakeScenario(900 + seed, 0, 0, 0, 0);
    for (; next && round < 100; ++round) {
      auto reply = resp.Reply(*next);
      ASSERT_TRUE(reply.ok());
      if (round == 0) {
        // After the first reply: a few balances change in b and a few members arrive.
        for (size_t i = 0; i < kChanged; ++i)
          ASSERT_TRUE(b.Upsert(Item{s.common[i].id, Sha256("later " + std::to_string(i))}).ok());
        changed = MakeScenario(900 + seed, 0, 0, 3, 0);
        Fill(&b, changed.only_b);
      }
      auto n = ini.Next(*reply, &have, &need, &mismatched);
      ASSERT_TRUE(n.ok()) << n.status().ToString();
      next = *n;
    }
    ASSERT_FALSE(next.has_value());
    if (!ini.relisted()) continue;
    ++relisted;
    EXPECT_TRUE(ini.listed_items());
    // Exact against b as it is now: the changed items mismatched, b's new items needed.
    std::vector<std::string> want_need = s.Ids(s.only_b), extra = changed.Ids(changed.only_b);
    want_need.insert(want_need.end(), extra.begin(), extra.end());
    std::sort(want_need.begin(), want_need.end());
    std::vector<std::string> want_mismatched = s.Ids(s.mismatch_a);
    for (size_t i = 0; i < kChanged; ++i) want_mismatched.push_back(s.common[i].id);
    std::sort(want_mismatched.begin(), want_mismatched.end());
    EXPECT_EQ(have, s.Ids(s.only_a));
    EXPECT_EQ(need, want_need);
    EXPECT_EQ(mismatched, want_mismatched);
  }
  EXPECT_GT(relisted, 0);
}

TEST(ReconcileTest, DifferentStoredSymbolCountsInteroperate) {
  Scenario s = MakeScenario(11, 2000, 30, 20, 5);
  MemoryStore a(4096), b(256);
  Build(s, &a, &b);
  testing::ExpectExact(s, Reconcile(a, b));
  auto back = Reconcile(b, a);
  EXPECT_EQ(back.have, s.Ids(s.only_b));
  EXPECT_EQ(back.mismatched, s.Ids(s.mismatch_a));
}

TEST(BalancesTest, DifferingBalanceIsAMismatchedMemberKey) {
  MemoryStore terminal, hq;
  for (int m = 0; m < 500; ++m) {
    const std::string id = std::to_string(100000 + m);
    ASSERT_TRUE(terminal.Upsert(MemberBalanceItem(id, 1000 + m, 3)).ok());
    ASSERT_TRUE(hq.Upsert(MemberBalanceItem(id, 1000 + m, 3)).ok());
  }
  EXPECT_EQ(Reconcile(terminal, hq).round_trips, 1);
  // HQ applied an adjustment to one member; the terminal caches a member HQ dropped.
  ASSERT_TRUE(hq.Upsert(MemberBalanceItem("100042", 1500, 4)).ok());
  ASSERT_TRUE(terminal.Upsert(MemberBalanceItem("999", 5, 1)).ok());
  auto o = Reconcile(terminal, hq);
  EXPECT_EQ(o.mismatched, std::vector<std::string>{MemberKey("100042")});
  EXPECT_EQ(o.have, std::vector<std::string>{MemberKey("999")});
  EXPECT_TRUE(o.need.empty());
  EXPECT_EQ(MemberKey("1").size(), kIdSize);
  EXPECT_NE(MemberBalanceItem("1", 5, 1).hash, MemberBalanceItem("1", 5, 2).hash);
}

}  // namespace
}  // namespace loyalty::recon
