// Metrics exposition and the status page, as units: the exposition parses with a real
// Prometheus parser (python3-prometheus-client) and carries the families store IT scrapes;
// the status page escapes what it shows and charts the last 24 hours.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "events.h"
#include "metrics.h"
#include "status_page.h"
#include "support/event_catalogue.h"
#include "support/process.h"

namespace loyalty::agent {
namespace {

using loyalty::testing::ShellOutput;

TEST(Metrics, ExpositionParsesWithPrometheusClient) {
  Metrics m;
  m.ScanResult("member");
  m.ScanResult("rejected");
  m.ScanResult("not_a_member_code");
  m.ScanResult("member");
  m.CheckoutCommitted(240, 3000);
  m.RefundCommitted(10, 100);
  m.SyncRun(true);
  m.SyncRun(false);
  m.ApiRequest("POST /v1/checkouts/commit", 200, 420);
  m.ApiRequest("POST /v1/checkouts/commit", 422, 90);
  m.set_gauges([] {
    Metrics::Gauges g;
    g.ledger_entries = 12;
    g.pending_entries = 3;
    g.last_sync_success_s = 1795000000;
    g.clock_trusted = false;
    g.scanners = {{"lane1", true}, {"lane\"2", false}};
    g.scanner_garbage = {{"lane1", "invalid_utf8", 3}, {"lane1", "cut_off", 0}};
    g.api_connections = 7;
    g.api_connections_evicted = 2;
    g.api_connections_refused = 5;
    return g;
  });
  std::string text = m.Render();
  EXPECT_NE(text.find("\nloyalty_api_connections 7\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nloyalty_api_connections_evicted_total 2\n"), std::string::npos);
  EXPECT_NE(text.find("\nloyalty_api_connections_refused_total 5\n"), std::string::npos);
  // Debian's parser (python3-prometheus-client), whatever python3 is first on PATH.
  EXPECT_NE(text.find("loyalty_scans_total{result=\"member\"} 2"), std::string::npos) << text;
  EXPECT_NE(
      text.find("# TYPE loyalty_scanner_garbage_total counter\n"
                "loyalty_scanner_garbage_total{scanner=\"lane1\",reason=\"invalid_utf8\"} 3\n"),
      std::string::npos)
      << text;
  if (::system("/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null") != 0)
    GTEST_SKIP() << "python3-prometheus-client is not installed";
  std::string path = "/tmp/metrics_" + std::to_string(::getpid()) + ".txt";
  std::ofstream(path) << text;
  std::string script =
      "import sys\n"
      "from prometheus_client.parser import text_string_to_metric_families\n"
      "fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}\n"
      "s = {(x.name, tuple(sorted(x.labels.items()))): x.value for f in fams.values() for x in "
      "f.samples}\n"
      "print(fams['loyalty_scans'].type, s[('loyalty_scans_total', (('result','member'),))])\n"
      "print(fams['loyalty_api_request_duration_seconds'].type)\n"
      "print(s[('loyalty_api_request_duration_seconds_count', (('route','POST "
      "/v1/checkouts/commit'),))])\n"
      "print(s[('loyalty_scanner_connected', (('scanner','lane\"2'),))], "
      "s[('loyalty_clock_trusted', ())])\n"
      "print(s[('loyalty_points_earned_total', ())], "
      "s[('loyalty_sync_last_success_timestamp_seconds', ())])\n"
      "print(fams['loyalty_scanner_garbage'].type, s[('loyalty_scanner_garbage_total', "
      "(('reason','invalid_utf8'),('scanner','lane1')))])\n";
  std::ofstream(path + ".py") << script;
  std::string out = ShellOutput("/usr/bin/python3 " + path + ".py " + path + " 2>&1");
  ::unlink(path.c_str());
  ::unlink((path + ".py").c_str());
  EXPECT_EQ(out, "counter 2.0\nhistogram\n2.0\n0.0 0.0\n240.0 1795000000.0\ncounter 3.0\n");
}

TEST(StatusPage, HourlyCounterKeepsTheLastDay) {
  HourlyCounter c;
  int64_t now = 1795000000;
  c.Add(now);
  c.Add(now - 3600, 5);
  c.Add(now - 25 * 3600, 7);  // older than a day: not shown
  auto last = c.Last24(now);
  EXPECT_EQ(last[23], 1u);
  EXPECT_EQ(last[22], 5u);
  uint64_t sum = 0;
  for (auto v : last) sum += v;
  EXPECT_EQ(sum, 6u);
  c.Add(now + 24 * 3600);  // the same slot a day later replaces the old count
  EXPECT_EQ(c.Last24(now + 24 * 3600)[23], 1u);
}

TEST(StatusPage, EscapesAndCharts) {
  StatusData d;
  d.terminal_id = "T01";
  d.store_id = "S<001>";
  d.now_s = 1795000000;
  d.scanners.push_back({"lane1", "fifo", "connected", ""});
  d.sync_state = "failing";
  d.last_sync_error = "HQ said <bad>";
  d.checkouts_per_hour[23] = 4;
  d.scans_per_hour[23] = 9;
  std::string html = RenderStatusPage(d);
  EXPECT_NE(html.find("S&lt;001&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<bad>"), std::string::npos);
  EXPECT_NE(html.find("data-count=\"9\""), std::string::npos);
  EXPECT_NE(html.find("<svg id=\"hourly-chart\""), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
}

TEST(EventCatalogue, DocsListEveryEventAndNothingElse) {
  loyalty::testing::ExpectDocsListCatalogue(
      std::string(LOYALTY_FIXTURES_DIR) + "/../../docs/operations.md", "### The event catalogue",
      kEventCatalogue, "agent/src/events.h");
}

}  // namespace
}  // namespace loyalty::agent
