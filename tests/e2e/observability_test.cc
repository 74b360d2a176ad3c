// HQ observable like the agent, end to end: a real loyaltyd syncs with a real loyalty-hq over
// mutual TLS (on SQLite, or PostgreSQL as `_pg`), and another presents a certificate that is
// not its own. HQ's GET /metrics, read as Prometheus reads it, counts the run's requests by
// route and result, the entries it uploaded and the transactions they took, and the fleet
// from the database; GET /v1/terminals lists the terminal as its own view shows it.
#include <gtest/gtest.h>

#include "e2e_fixture.h"
#include "support/api_record.h"
#include "support/prometheus.h"

namespace loyalty::e2e {
namespace {

const char* kA = "T-A";
const char* kB = "T-B";

class HqObservabilityE2eTest : public E2eFixture {
 protected:
  HqObservabilityE2eTest() : E2eFixture({kA, kB}) {}
};

TEST_F(HqObservabilityE2eTest, ARealSyncIsCountedAndTheFleetViewShowsIt) {
  StartHq();
  Member m = Enrol(*hq_, 1);
  auto& a = AddTerminal(Options(kA, hq_->port()));
  ExpectOk(a.Sync());  // the member reaches the terminal
  json sale{{"checkout_id", "sale-1"},
            {"member_code", m.card_number},
            {"lines", Basket(5000)},
            {"tender", "cash"}};
  ASSERT_EQ(a.Call("POST", "/v1/checkouts/commit", sale).status, 200);
  ExpectOk(a.Sync());
  const int64_t entries = a.LedgerEntries();
  ASSERT_GT(entries, 0);
  auto wrong = Options(kB, hq_->port());
  wrong.cert = pki_->client(kA);  // refused at HQ's door: the certificate names T-A
  auto& b = AddTerminal(wrong);
  EXPECT_EQ(b.Sync()["result"], "failed");

  auto metrics = hq_->Admin("GET", "/metrics");
  ASSERT_EQ(metrics.status, 200) << metrics.raw;
  auto s = testing::MetricSamples(metrics.raw);
  auto requests = [&](const std::string& route, const std::string& result) {
    return testing::MetricValue(
        s, "loyalty_hq_sync_requests_total{route=\"" + route + "\",result=\"" + result + "\"}");
  };
  EXPECT_EQ(requests("hello", "ok"), 2) << metrics.raw;  // A's two runs
  EXPECT_GE(requests("hello", "refused"), 1) << metrics.raw;
  for (const char* route : {"entries", "changes", "recon/entries", "recon/balances"})
    EXPECT_GE(requests(route, "ok"), 1) << route << "\n" << metrics.raw;
  for (const char* route :
       {"hello", "entries", "changes", "recon/entries", "recon/balances", "fetch", "members"})
    EXPECT_EQ(requests(route, "failed"), 0) << route;
  EXPECT_EQ(testing::MetricValue(s, "loyalty_hq_upload_entries_total{status=\"created\"}"),
            entries);
  EXPECT_EQ(testing::MetricValue(s, "loyalty_hq_upload_entries_total{status=\"refused\"}"), 0);
  EXPECT_GE(
      testing::MetricValue(s, "loyalty_hq_sync_request_duration_seconds_count{route=\"entries\"}"),
      1);
  EXPECT_GE(testing::MetricValue(s, "loyalty_hq_store_transaction_duration_seconds_count"), 3);
  EXPECT_EQ(testing::MetricValue(s, "loyalty_hq_database_ok"), 1);
  EXPECT_EQ(testing::MetricValue(s, "loyalty_hq_terminals"), 1);  // T-B never got in
  EXPECT_EQ(testing::MetricValue(s, "loyalty_hq_terminals_active"), 1);
  EXPECT_EQ(testing::MetricValue(s, "loyalty_hq_terminals_silent"), 0);
  EXPECT_EQ(testing::MetricValue(s, "loyalty_hq_conflicts{kind=\"chain_fork\"}"), 0);
  testing::ExpectPrometheusClientParses(metrics.raw);

  auto fleet = hq_->Admin("GET", "/v1/terminals");
  ASSERT_EQ(fleet.status, 200) << fleet.raw;
  ASSERT_EQ(fleet.body["terminals"].size(), 1u) << fleet.raw;
  const json& row = fleet.body["terminals"][0];
  auto view = hq_->Admin("GET", std::string("/v1/terminals/") + kA);
  ASSERT_EQ(view.status, 200) << view.raw;
  for (const char* key :
       {"terminal_id", "store_id", "entries", "checkouts", "last_seq", "last_sync_at", "chain_ok"})
    EXPECT_EQ(row[key], view.body[key]) << key << ": " << fleet.raw << " " << view.raw;
  EXPECT_EQ(row["entries"], entries);
  EXPECT_EQ(row["checkouts"], 1);
  EXPECT_EQ(row["chain_ok"], true);
  EXPECT_EQ(row["pending_conflicts"], 0);
  EXPECT_EQ(row["silent"], false);
  EXPECT_TRUE(fleet.body["next_cursor"].is_null());

  // Without the token: the fleet view is refused; the metrics are not, from loopback.
  http::ClientTlsOptions tls;
  tls.ca_file = pki_->ca_file();
  http::Client anonymous("127.0.0.1", hq_->port(), tls);
  auto r = anonymous.Request("GET", "/v1/terminals", "", {}, 10000);
  testing::RecordApiResponse(testing::Api::kHq, "GET", "/v1/terminals", r);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 401);
  r = anonymous.Request("GET", "/metrics", "", {}, 10000);
  testing::RecordApiResponse(testing::Api::kHq, "GET", "/metrics", r);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
}

}  // namespace
}  // namespace loyalty::e2e
