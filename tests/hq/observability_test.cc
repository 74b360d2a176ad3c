// The fleet view (GET /v1/terminals), in process over the run's backend: its rows, filters
// and pages, and the silent flag by HQ's clock.
#include <string>
#include <vector>

#include "hq_test_util.h"

namespace loyalty::hq::testing {
namespace {

using nlohmann::json;

constexpr int64_t kHourMs = 3600 * 1000;

class HqObservabilityTest : public HqFixture {
 protected:
  http::Response Hello(const std::string& tid, const std::string& store_id) {
    return Call("POST", "/v1/sync/" + tid + "/hello",
                json{{"protocol", 1},
                     {"store_id", store_id},
                     {"agent_version", "test"},
                     {"head", {{"seq", 0}, {"hash", ""}}},
                     {"entries", 0}},
                false);
  }
  // The terminal ids of a page of GET /v1/terminals, and its next_cursor ("" when null).
  std::pair<std::vector<std::string>, std::string> Page(const std::string& query) {
    auto r = Call("GET", "/v1/terminals" + query);
    EXPECT_EQ(r.status, 200) << query << ": " << r.body;
    if (r.status != 200) return {};
    json j = J(r);
    std::vector<std::string> ids;
    for (const auto& t : j["terminals"]) ids.push_back(t["terminal_id"]);
    return {ids, j["next_cursor"].is_null() ? "" : j["next_cursor"].get<std::string>()};
  }
};

// Four terminals at two stores, synced at different times; T03 and T04 share a dynamic code
// (code_reused, pending at both), and T04's chain forks.
TEST_F(HqObservabilityTest, FleetViewFiltersPagesAndFlagsSilentTerminals) {
  uint64_t m = std::stoull(CreateMember());
  clock_.set_now_ms(kNowMs - 3 * kHourMs);
  ASSERT_EQ(Hello("T01", "S001").status, 200);
  clock_.set_now_ms(kNowMs - 2 * kHourMs);  // exactly two hours before now: not silent yet
  ASSERT_EQ(Hello("T02", "S001").status, 200);
  clock_.set_now_ms(kNowMs);
  ASSERT_EQ(Hello("T03", "S002").status, 200);
  ASSERT_EQ(Hello("T04", "S002").status, 200);
  const std::string code(64, 'c');
  FakeTerminal t3{"T03"}, t4{"T04"};
  Sale s3 = PricedSale(t3, m, "c3", Basket(10000), kNowMs - 5000, 0, code);
  Sale s4 = PricedSale(t4, m, "c4", Basket(20000), kNowMs - 4000, 0, code);
  Upload("T03", {s3.entries, {s3.checkout}, {}});
  Upload("T04", {s4.entries, {s4.checkout}, {}});
  FakeTerminal restored{"T04"};  // the same seq 1 again, other content: a fork
  Sale fork = PricedSale(restored, m, "c5", Basket(3000), kNowMs - 3000);
  Upload("T04", {fork.entries, {fork.checkout}, {}});

  auto all = Call("GET", "/v1/terminals");
  ASSERT_EQ(all.status, 200) << all.body;
  json list = J(all);
  ASSERT_EQ(list["terminals"].size(), 4u) << all.body;
  EXPECT_TRUE(list["next_cursor"].is_null());
  // Each row says what the terminal view says, with the count of its conflicts.
  for (const auto& row : list["terminals"]) {
    json view = J(Call("GET", "/v1/terminals/" + row["terminal_id"].get<std::string>()));
    for (const char* key : {"terminal_id", "store_id", "entries", "checkouts", "last_seq",
                            "last_sync_at", "chain_ok"})
      EXPECT_EQ(row[key], view[key]) << row.dump() << " " << view.dump();
    EXPECT_EQ(row["pending_conflicts"], view["conflicts"].size()) << row.dump();
  }
  const json& t1 = list["terminals"][0];
  EXPECT_EQ(t1, json({{"terminal_id", "T01"},
                      {"store_id", "S001"},
                      {"entries", 0},
                      {"checkouts", 0},
                      {"last_seq", 0},
                      {"last_sync_at", "2026-03-15T01:00:00Z"},
                      {"chain_ok", true},
                      {"pending_conflicts", 0},
                      {"silent", true}}));
  EXPECT_EQ(list["terminals"][1]["silent"], false);  // two hours exactly
  const json& t3_row = list["terminals"][2];
  EXPECT_EQ(t3_row["entries"], 1);
  EXPECT_EQ(t3_row["checkouts"], 1);
  EXPECT_EQ(t3_row["chain_ok"], true);
  EXPECT_EQ(t3_row["pending_conflicts"], 1);  // code_reused, revealed by T04's upload
  const json& t4_row = list["terminals"][3];
  EXPECT_EQ(t4_row["entries"], 2);
  EXPECT_EQ(t4_row["checkouts"], 2);
  EXPECT_EQ(t4_row["chain_ok"], false);
  EXPECT_EQ(t4_row["pending_conflicts"], 2);  // code_reused, chain_fork

  using Ids = std::vector<std::string>;
  EXPECT_EQ(Page("?store_id=S001").first, (Ids{"T01", "T02"}));
  EXPECT_EQ(Page("?silent=true").first, (Ids{"T01"}));
  EXPECT_EQ(Page("?silent=false").first, (Ids{"T02", "T03", "T04"}));
  EXPECT_EQ(Page("?store_id=S002&silent=true").first, Ids{});
  EXPECT_EQ(Page("?store_id=S009").first, Ids{});
  // Pages of two, by terminal id; the cursor is the last id of the page before.
  EXPECT_EQ(Page("?limit=2"), std::make_pair(Ids{"T01", "T02"}, std::string("T02")));
  EXPECT_EQ(Page("?limit=2&cursor=T02"), std::make_pair(Ids{"T03", "T04"}, std::string()));
  EXPECT_EQ(Page("?limit=1&cursor=T01&silent=false"),
            std::make_pair(Ids{"T02"}, std::string("T02")));
  EXPECT_EQ(Page("?limit=1&cursor=T02&silent=false&store_id=S001"),
            std::make_pair(Ids{}, std::string()));
  EXPECT_EQ(Page("?limit=1000").first.size(), 4u);

  // An hour later T02 has been silent for three hours; a sync makes T01 active again.
  clock_.advance_ms(kHourMs);
  EXPECT_EQ(Page("?silent=true").first, (Ids{"T01", "T02"}));
  ASSERT_EQ(Hello("T01", "S001").status, 200);
  EXPECT_EQ(Page("?silent=true").first, (Ids{"T02"}));

  for (const char* bad : {"?limit=0", "?limit=1001", "?limit=two", "?limit=", "?cursor=T%2001",
                          "?cursor=", "?silent=yes", "?silent=", "?store_id="}) {
    auto r = Call("GET", std::string("/v1/terminals") + bad);
    EXPECT_EQ(r.status, 400) << bad << ": " << r.body;
    EXPECT_EQ(J(r)["error"]["code"], "bad_request") << bad;
  }
  auto r = Call("GET", "/v1/terminals", "", /*admin=*/false);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(J(r)["error"]["code"], "unauthorized");
}

TEST_F(HqObservabilityTest, AnEmptyFleetIsAnEmptyPage) {
  EXPECT_EQ(J(Call("GET", "/v1/terminals")),
            json({{"terminals", json::array()}, {"next_cursor", nullptr}}));
}

}  // namespace
}  // namespace loyalty::hq::testing
