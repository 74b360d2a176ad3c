// The status page in a real headless Chromium: load GET /status from a running loyaltyd,
// check what the browser's DOM shows (terminal, scanner, chart with the day's checkouts,
// no personal data) and keep a screenshot in the test output folder.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "harness.h"

namespace loyalty::testing {
namespace {

std::string Chromium() {
  for (const char* c : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (::access(c, X_OK) == 0) return c;
  return "";
}

TEST(StatusPageBrowser, ShowsTheLaneInHeadlessChromium) {
  std::string chromium = Chromium();
  if (chromium.empty())
    GTEST_SKIP() << "chromium is not installed (scripts/install-deps installs it)";
  auto dir = FreshDir("status_page");
  AgentProcess a(dir, "\n[[scanners]]\nid = \"lane1\"\nkind = \"fifo\"\npath = \"scan.fifo\"\n");
  a.Start();
  nlohmann::json lines =
      nlohmann::json::array({{{"sku", "A"}, {"qty", 1}, {"unit_price_cents", 1000}}});
  ASSERT_EQ(
      a.Post("/v1/checkouts/commit",
             {{"checkout_id", "s1"}, {"member_code", MintCode(1234567890123)}, {"lines", lines}})
          .status,
      200);
  ASSERT_EQ(a.Post("/v1/checkouts/commit", {{"checkout_id", "s2"}, {"lines", lines}}).status, 200);
  // No token needed on loopback.
  auto page = a.Call("GET", "/status", "", /*auth=*/false);
  ASSERT_EQ(page.status, 200) << page.raw;

  std::string url = "http://127.0.0.1:" + std::to_string(a.port()) + "/status";
  std::string profile = (dir / "chromium-profile").string();
  std::string flags =
      " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
      "--disable-background-networking --disable-component-update --disable-sync "
      "--disable-dev-shm-usage --user-data-dir=" +
      profile + " ";
  std::string dom = ShellOutput(chromium + flags + "--dump-dom '" + url + "' 2>/dev/null");
  ASSERT_FALSE(dom.empty()) << "chromium printed no DOM";
  EXPECT_NE(dom.find("terminal T01"), std::string::npos) << dom;
  EXPECT_NE(dom.find("lane1"), std::string::npos);
  EXPECT_NE(dom.find("id=\"hourly-chart\""), std::string::npos);
  EXPECT_NE(dom.find("class=\"checkouts\" data-count=\"2\""), std::string::npos)
      << "the current hour's checkouts";
  EXPECT_EQ(dom.find("1234567890123"), std::string::npos) << "no member ids on the page";

  std::string out_dir = std::string(LOYALTY_BINARY_DIR) + "/test-output";
  std::filesystem::create_directories(out_dir);
  std::string png = out_dir + "/status-page.png";
  std::filesystem::remove(png);
  ShellOutput(chromium + flags + "--window-size=1000,900 --screenshot=" + png + " '" + url +
              "' 2>/dev/null");
  ASSERT_TRUE(std::filesystem::exists(png)) << "no screenshot";
  std::ifstream f(png, std::ios::binary);
  char magic[8] = {};
  f.read(magic, 8);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG");
  EXPECT_GT(std::filesystem::file_size(png), 5000u);
  // GET /metrics of the same daemon parses with a real Prometheus parser (Debian's
  // python3-prometheus-client) and counts what happened.
  auto metrics = a.Call("GET", "/metrics", "", /*auth=*/false);
  ASSERT_EQ(metrics.status, 200);
  if (::system("/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null") == 0) {
    std::string path = (dir / "metrics.txt").string();
    std::ofstream(path) << metrics.raw;
    std::string script = (dir / "parse.py").string();
    std::ofstream(script)
        << "import sys\n"
           "from prometheus_client.parser import text_string_to_metric_families as parse\n"
           "s = {(x.name, tuple(sorted(x.labels.items()))): x.value\n"
           "     for f in parse(open(sys.argv[1]).read()) for x in f.samples}\n"
           "print(int(s[('loyalty_checkouts_committed_total', ())]),\n"
           "      int(s[('loyalty_ledger_entries', ())]),\n"
           "      int(s[('loyalty_scanner_connected', (('scanner', 'lane1'),))]))\n";
    std::string out = ShellOutput("/usr/bin/python3 " + script + " " + path + " 2>&1");
    EXPECT_EQ(out, "2 1 1\n") << metrics.raw;
  }
  EXPECT_EQ(a.Stop(), 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace loyalty::testing
