// HQ observable like the agent, in process over the run's backend: the fleet view
// (GET /v1/terminals: filters, pages, the silent flag by HQ's clock) and GET /metrics (who
// may read it, what a sync's requests count, the fleet gauges read from the database, and
// an answer when the database cannot be read).
#include <string>
#include <vector>

#include "hq_test_util.h"
#include "support/prometheus.h"

namespace loyalty::hq::testing {
namespace {

using loyalty::testing::ExpectPrometheusClientParses;
using loyalty::testing::MetricSamples;
using loyalty::testing::MetricValue;
using nlohmann::json;

constexpr int64_t kHourMs = 3600 * 1000;

class HqObservabilityTest : public HqFixture {
 protected:
  // The terminal's hello, naming its store (the fixture then sends none of its own).
  http::Response Hello(const std::string& tid, const std::string& store_id) {
    greeted_.insert(tid);
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
  std::map<std::string, std::string> Scrape() {
    auto r = Call("GET", "/metrics");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    return MetricSamples(r.body);
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

// Who may read /metrics: a client on loopback, or anyone with the admin or the metrics token.
TEST_F(HqObservabilityTest, MetricsNeedTheTokenOffLoopback) {
  for (const char* remote : {"", "192.0.2.7", "2001:db8::1"}) {
    remote_ = remote;
    auto r = Call("GET", "/metrics", "", /*admin=*/false);
    EXPECT_EQ(r.status, 401) << remote;
    EXPECT_EQ(J(r)["error"]["code"], "unauthorized") << remote;
    EXPECT_EQ(Call("GET", "/metrics").status, 200) << remote;
  }
  for (const char* remote : {"127.0.0.1", "::1"}) {
    remote_ = remote;
    EXPECT_EQ(Call("GET", "/metrics", "", /*admin=*/false).status, 200) << remote;
  }
  remote_ = "192.0.2.7";
  http::Request wrong;
  wrong.method = "GET";
  wrong.target = wrong.path = "/metrics";
  wrong.remote_address = remote_;
  wrong.authorization = "Bearer not-the-token";
  EXPECT_EQ(Recorded(wrong, service_->Handle(wrong, std::nullopt)).status, 401);
  // The read-only metrics token (hq.toml metrics_token_file): /metrics, and nothing else.
  http::Request scrape = wrong;
  scrape.authorization = "Bearer scrape-token";
  EXPECT_EQ(Recorded(scrape, service_->Handle(scrape, std::nullopt)).status, 200);
  for (const char* target : {"/v1/terminals", "/v1/refunds", "/v1/members/1"}) {
    http::Request admin = scrape;
    admin.target = admin.path = target;
    auto r = Recorded(admin, service_->Handle(admin, std::nullopt));
    EXPECT_EQ(r.status, 401) << target;
  }
}

// The routes of a sync, as a terminal calls them, each counted by route and result with its
// time; the upload's entries by the status HQ gave each; every store transaction timed.
TEST_F(HqObservabilityTest, MetricsCountASyncsRequestsUploadsAndTransactions) {
  auto before = Scrape();
  EXPECT_EQ(MetricValue(before, "loyalty_hq_sync_requests_total{route=\"hello\",result=\"ok\"}"),
            0);
  EXPECT_EQ(MetricValue(before, "loyalty_hq_upload_entries_total{status=\"created\"}"), 0);
  EXPECT_EQ(MetricValue(before, "loyalty_hq_terminals"), 0);
  EXPECT_EQ(MetricValue(before, "loyalty_hq_database_ok"), 1);
  const long long tx_before =
      MetricValue(before, "loyalty_hq_store_transaction_duration_seconds_count");

  uint64_t m = std::stoull(CreateMember());
  ASSERT_EQ(Hello("T01", "S001").status, 200);
  FakeTerminal t{"T01"};
  Sale s1 = PricedSale(t, m, "c1", Basket(10000), kNowMs - 5000);
  Sale s2 = PricedSale(t, m, "c2", Basket(5000), kNowMs - 4000);
  sync::Entry unbacked = t.Make("earn", m, 500, kNowMs - 3000, "c-none");  // no checkout: refused
  sync::Entry changed = t.Make("earn", m, 1, kNowMs - 2000);  // not its hash: invalid, a mismatch
  changed.points = 1000;
  sync::Entry stranger = FakeTerminal{"T02"}.Make("earn", m, 1, kNowMs - 1000);  // invalid here
  auto res = Upload("T01", {{s1.entries[0], s2.entries[0], unbacked, changed, stranger},
                            {s1.checkout, s2.checkout},
                            {}});
  ASSERT_EQ(res.results.size(), 5u);
  Upload("T01", {{s1.entries[0]}, {s1.checkout}, {}});  // a resend: exists
  EXPECT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);
  EXPECT_EQ(Call("POST", "/v1/sync/T01/recon/entries", "not a recon message", false).status, 400);
  EXPECT_EQ(Call("POST", "/v1/sync/T01/fetch", json{{"entry_ids", json::array()}}, false).status,
            200);
  EXPECT_EQ(
      Call("POST", "/v1/sync/T01/members", json{{"member_ids", {std::to_string(m)}}}, false).status,
      200);
  EXPECT_EQ(Call("POST", "/v1/sync/T01/evicted", json{{"member_ids", json::array()}}, false).status,
            200);
  EXPECT_EQ(Call("POST", "/v1/sync/T01/nothing", "", false).status, 404);
  // The listener's own refusal (a certificate for another terminal) counts as well.
  http::Request refused;
  refused.method = "POST";
  refused.target = refused.path = "/v1/sync/T01/hello";
  auto r = service_->RefuseTerminal(
      refused, Status::Error(ErrorCode::kForbidden, "the client certificate names T09"));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(J(r)["error"]["code"], "forbidden");

  auto after = Scrape();
  auto requests = [&](const char* route, const char* result) {
    return MetricValue(after, std::string("loyalty_hq_sync_requests_total{route=\"") + route +
                                  "\",result=\"" + result + "\"}");
  };
  EXPECT_EQ(requests("hello", "ok"), 1);
  EXPECT_EQ(requests("hello", "refused"), 1);
  EXPECT_EQ(MetricValue(after, "loyalty_hq_sync_request_duration_seconds_count{route=\"hello\"}"),
            1);  // the refusal at the door is counted, not timed
  EXPECT_EQ(requests("entries", "ok"), 2);
  EXPECT_EQ(requests("changes", "ok"), 1);
  EXPECT_EQ(requests("recon/entries", "refused"), 1);
  EXPECT_EQ(requests("recon/balances", "ok"), 0);
  EXPECT_EQ(requests("fetch", "ok"), 1);
  EXPECT_EQ(requests("members", "ok"), 1);
  EXPECT_EQ(requests("evicted", "ok"), 1);  // every route has its own label
  EXPECT_EQ(requests("sale", "ok"), 0);
  EXPECT_EQ(requests("other", "refused"), 1);
  EXPECT_EQ(requests("hello", "failed"), 0);
  EXPECT_EQ(MetricValue(after, "loyalty_hq_sync_request_duration_seconds_count{route=\"entries\"}"),
            2);
  EXPECT_EQ(MetricValue(after,
                        "loyalty_hq_sync_request_duration_seconds_bucket{route=\"entries\","
                        "le=\"+Inf\"}"),
            2);
  EXPECT_EQ(MetricValue(after, "loyalty_hq_upload_entries_total{status=\"created\"}"), 2);
  EXPECT_EQ(MetricValue(after, "loyalty_hq_upload_entries_total{status=\"invalid\"}"), 2);
  EXPECT_EQ(MetricValue(after, "loyalty_hq_upload_entries_total{status=\"refused\"}"), 1);
  EXPECT_EQ(MetricValue(after, "loyalty_hq_upload_entries_total{status=\"exists\"}"), 1);
  EXPECT_EQ(MetricValue(after, "loyalty_hq_upload_entries_total{status=\"conflict\"}"), 0);
  // Member creation, hello, two uploads and changes: a transaction each at least.
  EXPECT_GE(MetricValue(after, "loyalty_hq_store_transaction_duration_seconds_count"),
            tx_before + 5);
  // From the database: one terminal, active; the changed entry's and the stranger's
  // mismatches and the refusal.
  EXPECT_EQ(MetricValue(after, "loyalty_hq_terminals"), 1);
  EXPECT_EQ(MetricValue(after, "loyalty_hq_terminals_active"), 1);
  EXPECT_EQ(MetricValue(after, "loyalty_hq_terminals_silent"), 0);
  EXPECT_EQ(MetricValue(after, "loyalty_hq_conflicts{kind=\"entry_mismatch\"}"), 2);
  EXPECT_EQ(MetricValue(after, "loyalty_hq_conflicts{kind=\"entry_refused\"}"), 1);
  EXPECT_EQ(MetricValue(after, "loyalty_hq_conflicts{kind=\"chain_fork\"}"), 0);
  ExpectPrometheusClientParses(Call("GET", "/metrics").body);

  // Six minutes on, the terminal is no longer active; two hours and more, it is silent.
  clock_.advance_ms(6 * 60 * 1000);
  EXPECT_EQ(MetricValue(Scrape(), "loyalty_hq_terminals_active"), 0);
  clock_.advance_ms(2 * kHourMs);
  auto later = Scrape();
  EXPECT_EQ(MetricValue(later, "loyalty_hq_terminals_silent"), 1);
  EXPECT_EQ(MetricValue(later, "loyalty_hq_terminals"), 1);
}

// A scrape when the database cannot be read still answers: this process's counters, and
// loyalty_hq_database_ok 0 in place of the fleet's gauges.
TEST_F(HqObservabilityTest, MetricsAnswerWhenTheDatabaseCannotBeRead) {
  ASSERT_EQ(Hello("T01", "S001").status, 200);
  ClearStoreFaults();
  InjectStoreFault({"FROM terminals", 1, -1, 10});
  auto r = Call("GET", "/metrics");
  int fired = StoreFaultsFired();
  ClearStoreFaults();
  ASSERT_GT(fired, 0);
  ASSERT_EQ(r.status, 200) << r.body;
  auto samples = MetricSamples(r.body);
  EXPECT_EQ(MetricValue(samples, "loyalty_hq_database_ok"), 0);
  EXPECT_EQ(MetricValue(samples, "loyalty_hq_terminals"), -1);
  EXPECT_EQ(MetricValue(samples, "loyalty_hq_sync_requests_total{route=\"hello\",result=\"ok\"}"),
            1);
  EXPECT_EQ(MetricValue(Scrape(), "loyalty_hq_database_ok"), 1);
}

TEST(TerminalRoute, PathsOfTerminalRoutesOnly) {
  auto r = ParseTerminalRoute("/v1/sync/T01/recon/entries");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->terminal_id, "T01");
  EXPECT_EQ(r->route, "recon/entries");
  r = ParseTerminalRoute("//v1/sync//T-2/hello/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->terminal_id, "T-2");
  EXPECT_EQ(r->route, "hello");
  for (const char* other :
       {"/v1/sync/T01", "/v1/terminals/T01", "/metrics", "/v2/sync/T01/hello", "/v1/health", ""})
    EXPECT_FALSE(ParseTerminalRoute(other)) << other;
}

}  // namespace
}  // namespace loyalty::hq::testing
