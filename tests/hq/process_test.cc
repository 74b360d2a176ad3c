// A real loyalty-hq process over loopback HTTP: configuration checks, the admin token, an
// enrolment, an upload and a restart that keeps everything.
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>
#include <utility>
#include <vector>

#include "hq_test_util.h"
#include "loyalty/hq/events.h"
#include "loyalty/http/client.h"
#include "support/api_record.h"
#include "support/event_catalogue.h"
#include "support/net.h"
#include "support/pki.h"
#include "support/prometheus.h"

namespace loyalty::hq::testing {
namespace {

using nlohmann::json;

const std::string kBinary = std::string(LOYALTY_BINARY_DIR) + "/hq/loyalty-hq";

using loyalty::testing::FreePort;

// An answer of loyalty-hq, recorded for the check against docs/openapi (support/api_record.h).
Result<http::Response> RecordedHttp(const std::string& method, const std::string& target,
                                    Result<http::Response> r) {
  loyalty::testing::RecordApiResponse(loyalty::testing::Api::kHq, method, target, r);
  return r;
}

void Write(const std::filesystem::path& p, const std::string& text, std::filesystem::perms perms) {
  std::ofstream(p) << text;
  std::filesystem::permissions(p, perms);
}

class HqProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir("process");
    port_ = FreePort();
    auto own = std::filesystem::perms::owner_read | std::filesystem::perms::owner_write;
    Write(dir_ / "admin.token", "e2e-token\n", own);
    ASSERT_EQ(std::system(("openssl genpkey -algorithm ed25519 -out " +
                           (dir_ / "hq-ed25519.pem").string() + " 2>/dev/null")
                              .c_str()),
              0);
    Write(dir_ / "hq.toml",
          "[log]\nformat = \"json\"\n\n[hq]\nlisten = \"127.0.0.1:" + std::to_string(port_) +
              "\"\ndatabase = \"hq.db\"\nadmin_token_file = \"admin.token\"\n"
              "signing_keys = { \"1\" = \"hq-ed25519.pem\" }\ncard_prefix = \"88\"\npii_key_file = "
              "\"pii.key\"\n",
          own);
  }
  void TearDown() override {
    Stop();
    // Whatever a test made HQ do, it logged only events of its catalogue.
    std::ifstream in(dir_ / "hq.log");
    loyalty::testing::ExpectLogCatalogued(std::string(std::istreambuf_iterator<char>(in), {}),
                                          kHqEventCatalogue, "loyalty/hq/events.h");
    std::filesystem::remove_all(dir_);
  }

  void Start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      std::string out = (dir_ / "hq.log").string();
      FILE* f = std::freopen(out.c_str(), "a", stdout);
      (void)f;
      ::execl(kBinary.c_str(), kBinary.c_str(), "--config", (dir_ / "hq.toml").c_str(), nullptr);
      ::_exit(127);
    }
    http::Client probe("127.0.0.1", port_);
    for (int i = 0; i < 200; ++i) {
      auto r = RecordedHttp("GET", "/v1/health", probe.Request("GET", "/v1/health", {}, {}, 1000));
      if (r.ok() && r->status == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    FAIL() << "loyalty-hq did not start";
  }
  int Stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  Result<http::Response> Admin(const std::string& method, const std::string& target,
                               const json& body = nullptr) {
    http::Client c("127.0.0.1", port_);
    return RecordedHttp(method, target,
                        c.Request(method, target, body.is_null() ? "" : body.dump(),
                                  {{"Authorization", "Bearer e2e-token"}}));
  }

  std::filesystem::path dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

TEST_F(HqProcessTest, CheckConfigRefusesAWorldReadableToken) {
  std::string cmd =
      kBinary + " --check-config --config " + (dir_ / "hq.toml").string() + " >/dev/null 2>&1";
  EXPECT_EQ(WEXITSTATUS(std::system(cmd.c_str())), 0);
  std::filesystem::permissions(dir_ / "admin.token", std::filesystem::perms::others_read,
                               std::filesystem::perm_options::add);
  EXPECT_NE(WEXITSTATUS(std::system(cmd.c_str())), 0);
  EXPECT_NE(WEXITSTATUS(std::system((kBinary + " --bogus >/dev/null 2>&1").c_str())), 0);
}

// hq.toml's timezone is the chain's calendar: a zone that does not load is refused before
// anything starts, and the one in force is in hq_started.
TEST_F(HqProcessTest, TheChainTimeZoneComesFromHqToml) {
  std::string toml;
  {
    std::ifstream in(dir_ / "hq.toml");
    toml.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto own = std::filesystem::perms::owner_read | std::filesystem::perms::owner_write;
  Write(dir_ / "hq.toml", toml + "timezone = \"Mars/Olympus\"\n", own);
  std::string check = kBinary + " --check-config --config " + (dir_ / "hq.toml").string() + " 2>" +
                      (dir_ / "check.err").string() + " >" + (dir_ / "check.out").string();
  EXPECT_NE(WEXITSTATUS(std::system(check.c_str())), 0);
  std::string err, out;
  {
    std::ifstream in(dir_ / "check.err");
    err.assign(std::istreambuf_iterator<char>(in), {});
    std::ifstream o(dir_ / "check.out");
    out.assign(std::istreambuf_iterator<char>(o), {});
  }
  EXPECT_NE(err.find("hq.timezone"), std::string::npos) << err;
  // The log says it too, as the catalogue's config_invalid (operations.md).
  EXPECT_NE(out.find("config_invalid"), std::string::npos) << out;
  EXPECT_NE(out.find("hq.timezone"), std::string::npos) << out;
  Write(dir_ / "hq.toml", toml + "timezone = \"UTC\"\n", own);
  Start();
  std::string log;
  {
    std::ifstream in(dir_ / "hq.log");
    log.assign(std::istreambuf_iterator<char>(in), {});
  }
  EXPECT_NE(log.find("\"timezone\":\"UTC\""), std::string::npos) << log;
}

// A refused hq.toml is logged in the format the file names ([log] format), whichever key was
// refused -- the format is otherwise learnt only from a valid file.
TEST_F(HqProcessTest, ARefusedConfigIsLoggedInTheFormatItNames) {
  std::string toml;
  {
    std::ifstream in(dir_ / "hq.toml");
    toml.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string json_format = "[log]\nformat = \"json\"\n";
  ASSERT_EQ(toml.rfind(json_format, 0), 0u) << toml;
  auto own = std::filesystem::perms::owner_read | std::filesystem::perms::owner_write;
  for (const char* format : {"json", "text"}) {
    for (const char* bad : {"timezone = \"Mars/Olympus\"", "not_a_key = 1"}) {
      Write(dir_ / "hq.toml",
            "[log]\nformat = \"" + std::string(format) + "\"\n" + toml.substr(json_format.size()) +
                bad + "\n",
            own);
      std::string check = kBinary + " --check-config --config " + (dir_ / "hq.toml").string() +
                          " 2>/dev/null >" + (dir_ / "check.out").string();
      EXPECT_NE(WEXITSTATUS(std::system(check.c_str())), 0) << bad;
      std::string out;
      {
        std::ifstream o(dir_ / "check.out");
        std::getline(o, out);
      }
      auto line = nlohmann::json::parse(out, nullptr, false);
      if (std::string(format) == "json") {
        ASSERT_TRUE(line.is_object()) << bad << ": " << out;
        EXPECT_EQ(line["event"], "config_invalid") << out;
      } else {
        EXPECT_TRUE(line.is_discarded()) << bad << ": " << out;
        EXPECT_NE(out.find("config_invalid"), std::string::npos) << out;
      }
    }
  }
}

// A rules file that does not load is said like any other bad key: the config file, the key
// and the reason (operations.md), by --check-config and at start.
TEST_F(HqProcessTest, ARulesFileThatDoesNotLoadNamesTheConfigAndTheKey) {
  std::string toml;
  {
    std::ifstream in(dir_ / "hq.toml");
    toml.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto own = std::filesystem::perms::owner_read | std::filesystem::perms::owner_write;
  Write(dir_ / "bad-rules.toml", "version = \"r1\"\nbogus = 1\n", own);
  for (const char* rules : {"no-such-rules.toml", "bad-rules.toml"}) {
    Write(dir_ / "hq.toml", toml + "rules_file = \"" + rules + "\"\n", own);
    for (const char* mode : {"--check-config ", ""}) {
      std::string cmd = kBinary + " " + mode + "--config " + (dir_ / "hq.toml").string() + " 2>" +
                        (dir_ / "check.err").string() + " >/dev/null";
      EXPECT_NE(WEXITSTATUS(std::system(cmd.c_str())), 0) << rules << " " << mode;
      std::string err;
      std::ifstream in(dir_ / "check.err");
      err.assign(std::istreambuf_iterator<char>(in), {});
      EXPECT_NE(err.find((dir_ / "hq.toml").string() + ": hq.rules_file: "), std::string::npos)
          << rules << " " << mode << ": " << err;
      EXPECT_NE(err.find(rules), std::string::npos) << err;
    }
  }
}

// operations.md, "Logs": HQ writes in the format [log] format names, from the level [log]
// level names: text lines ("<time> <level> <event> key=value"), info events left out at
// "warn", and JSON lines again with format = "json".
TEST_F(HqProcessTest, TheLogFollowsLogFormatAndLevel) {
  std::string toml;
  {
    std::ifstream in(dir_ / "hq.toml");
    toml.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto own = std::filesystem::perms::owner_read | std::filesystem::perms::owner_write;
  auto read_log = [&] {
    std::ifstream in(dir_ / "hq.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string hq_part = toml.substr(toml.find("[hq]"));
  Write(dir_ / "hq.toml", "[log]\nformat = \"text\"\nlevel = \"info\"\n\n" + hq_part, own);
  Start();
  ASSERT_EQ(Stop(), 0);
  std::string log = read_log();
  EXPECT_NE(log.find(" info hq_started "), std::string::npos) << log;
  EXPECT_NE(log.find(" timezone="), std::string::npos) << log;
  EXPECT_EQ(log.find("{\""), std::string::npos) << "a JSON line in a text log:\n" << log;

  std::filesystem::remove(dir_ / "hq.log");
  Write(dir_ / "hq.toml", "[log]\nformat = \"text\"\nlevel = \"warn\"\n\n" + hq_part, own);
  Start();
  ASSERT_EQ(Stop(), 0);
  log = read_log();
  EXPECT_EQ(log.find("hq_started"), std::string::npos) << log;  // info, below warn
  EXPECT_EQ(log.find("hq_stopped"), std::string::npos) << log;

  std::filesystem::remove(dir_ / "hq.log");
  Write(dir_ / "hq.toml", toml, own);  // format = "json"
  Start();
  ASSERT_EQ(Stop(), 0);
  log = read_log();
  EXPECT_NE(log.find("\"event\":\"hq_started\""), std::string::npos) << log;
}

// The admin request nested 400,000 deep that used to kill loyalty-hq, and a 200 KB body
// nested 100,000 deep, to every admin route (with the token) and every terminal route (plain
// HTTP on loopback): each is 400 bad_request and HQ still answers health afterwards.
TEST_F(HqProcessTest, DeepJsonIsBadRequestOnEveryRouteAndHqLives) {
  Start();
  auto created = Admin("POST", "/v1/members", json{{"name", "张三"}, {"phone", "13812345678"}});
  ASSERT_TRUE(created.ok() && created->status == 201) << (created.ok() ? created->body : "");
  const std::string m = json::parse(created->body)["member_id"];
  const auto routes = HqRoutes(m);
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
  const std::string bodies[] = {
      std::string(100000, '[') + std::string(100000, ']'),  // 200 KB, balanced
      std::string(400000, '['), objects};
  for (const std::string& body : bodies) {
    ASSERT_LE(body.size(), size_t{1} << 20);  // under HQ's body limit: the parser decides
    for (const auto& [method, target] : routes) {
      http::Client c("127.0.0.1", port_);
      auto r = RecordedHttp(
          method, target,
          c.Request(method, target, body, {{"Authorization", "Bearer e2e-token"}}, 10000));
      ASSERT_TRUE(r.ok()) << method << " " << target << " (" << body.size()
                          << " bytes): " << r.status().ToString();
      EXPECT_EQ(r->status, 400) << method << " " << target << ": " << r->body;
      EXPECT_EQ(json::parse(r->body, nullptr, false)["error"]["code"], "bad_request")
          << method << " " << target;
    }
  }
  http::Client probe("127.0.0.1", port_);
  auto health = RecordedHttp("GET", "/v1/health", probe.Request("GET", "/v1/health", {}, {}, 5000));
  ASSERT_TRUE(health.ok()) << health.status().ToString();
  EXPECT_EQ(health->status, 200);
  int status = 0;
  EXPECT_EQ(::waitpid(pid_, &status, WNOHANG), 0) << "loyalty-hq exited";
  auto member = Admin("GET", "/v1/members/" + m);
  ASSERT_TRUE(member.ok());
  EXPECT_EQ(json::parse(member->body)["balance"], 0);  // nothing applied
}

TEST_F(HqProcessTest, EnrolUploadRestart) {
  Start();
  auto r = Admin("POST", "/v1/members", json{{"name", "张三"}, {"phone", "13812345678"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->status, 201) << r->body;
  std::string id = json::parse(r->body)["member_id"];
  uint64_t m = std::stoull(id);
  EXPECT_EQ(std::filesystem::status(dir_ / "pii.key").permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);

  http::Client terminal("127.0.0.1", port_);
  FakeTerminal t{"T01"};
  sync::UploadRequest up;
  // Two honest sales: 120 points, then a redemption of 100 (within what the terminal knew:
  // its own earlier earn) on a 1,000-yuan basket.
  Sale s1 = PricedSale(t, m, "c1", Basket(12000), 1773547200000);
  Sale s2 = PricedSale(t, m, "c2", Basket(100000), 1773547201000, 100, std::string(64, 'd'));
  up.entries = {s1.entries[0], s2.entries[0], s2.entries[1]};
  up.checkouts = {s1.checkout, s2.checkout};
  auto u = terminal.Request("POST", "/v1/sync/T01/entries", sync::SerializeMessage(up));
  ASSERT_TRUE(u.ok());
  ASSERT_EQ(u->status, 200) << u->body;
  auto res = sync::ParseMessage<sync::UploadResponse>(u->body);
  ASSERT_TRUE(res.ok());
  ASSERT_EQ(res->results.size(), 3u);
  for (const auto& x : res->results) EXPECT_EQ(x.status, "created");

  EXPECT_EQ(Stop(), 0);  // SIGTERM: a clean exit
  Start();
  r = Admin("GET", "/v1/members/" + id);
  ASSERT_TRUE(r.ok());
  json v = json::parse(r->body);
  EXPECT_EQ(v["balance"], 120 + s2.checkout.points_earned - 100);
  EXPECT_EQ(v["entries"], 3);
  u = terminal.Request("POST", "/v1/sync/T01/entries", sync::SerializeMessage(up));
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(sync::ParseMessage<sync::UploadResponse>(u->body)->results[1].status, "exists");
  r = Admin("GET", "/v1/terminals/T01");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(json::parse(r->body)["chain_ok"], true);
  auto unauth =
      RecordedHttp("GET", "/v1/terminals/T01", terminal.Request("GET", "/v1/terminals/T01"));
  ASSERT_TRUE(unauth.ok());
  EXPECT_EQ(unauth->status, 401);
}

// Stopping (SIGTERM) drops the requests still waiting for a worker: the one a worker holds
// finishes, the others change nothing and do not keep the process alive. Here the only
// worker (SQLite) waits for the database's write lock, which another connection holds
// throughout (each write gives up after SQLite's 5 s busy timeout), and three more
// enrolments queue behind it: stopping takes the drain (4 s) and that one wait, not four.
TEST_F(HqProcessTest, StoppingDropsTheRequestsWaitingForAWorker) {
  Start();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "hq.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([this, i] {
      http::Client c("127.0.0.1", port_);
      const json body{{"name", "张三"}, {"phone", "1381234567" + std::to_string(i)}};
      (void)c.Request("POST", "/v1/members", body.dump(), {{"Authorization", "Bearer e2e-token"}},
                      60000);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto t0 = std::chrono::steady_clock::now();
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_LT(seconds, 14.0) << "the queued enrolments were run after the drain";
  sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM members", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(st, 0), 0);  // the lock was never released to HQ
  sqlite3_finalize(st);
  sqlite3_close(db);
  for (auto& t : clients) t.join();
}

// GET /metrics and GET /v1/terminals of a real loyalty-hq over loopback HTTP after a
// terminal's hello and upload: the exposition parses with a real Prometheus parser and counts
// them; loopback needs no token for the metrics, the fleet view always does.
TEST_F(HqProcessTest, MetricsAndTheFleetViewOverHttp) {
  Start();
  auto r = Admin("POST", "/v1/members", json{{"name", "张三"}, {"phone", "13812345678"}});
  ASSERT_TRUE(r.ok() && r->status == 201) << (r.ok() ? r->body : r.status().ToString());
  uint64_t m = std::stoull(json::parse(r->body)["member_id"].get<std::string>());
  http::Client terminal("127.0.0.1", port_);
  auto hello = terminal.Request(
      "POST", "/v1/sync/T01/hello",
      R"({"protocol":1,"store_id":"S001","agent_version":"t","head":{"seq":0,"hash":""},"entries":0})");
  ASSERT_TRUE(hello.ok() && hello->status == 200) << (hello.ok() ? hello->body : "");
  FakeTerminal t{"T01"};
  Sale s = PricedSale(t, m, "c1", Basket(12000), 1773547200000);
  auto u =
      terminal.Request("POST", "/v1/sync/T01/entries",
                       sync::SerializeMessage(sync::UploadRequest{s.entries, {s.checkout}, {}}));
  ASSERT_TRUE(u.ok() && u->status == 200) << (u.ok() ? u->body : "");

  // No token: a loopback client.
  auto metrics = RecordedHttp("GET", "/metrics", terminal.Request("GET", "/metrics"));
  ASSERT_TRUE(metrics.ok()) << metrics.status().ToString();
  ASSERT_EQ(metrics->status, 200) << metrics->body;
  EXPECT_EQ(metrics->content_type, "text/plain; version=0.0.4; charset=utf-8");
  auto samples = loyalty::testing::MetricSamples(metrics->body);
  using loyalty::testing::MetricValue;
  EXPECT_EQ(MetricValue(samples, "loyalty_hq_sync_requests_total{route=\"hello\",result=\"ok\"}"),
            1);
  EXPECT_EQ(MetricValue(samples, "loyalty_hq_sync_requests_total{route=\"entries\",result=\"ok\"}"),
            1);
  EXPECT_EQ(MetricValue(samples, "loyalty_hq_upload_entries_total{status=\"created\"}"), 1);
  EXPECT_GE(MetricValue(samples, "loyalty_hq_store_transaction_duration_seconds_count"), 3);
  EXPECT_EQ(MetricValue(samples, "loyalty_hq_terminals"), 1);
  EXPECT_EQ(MetricValue(samples, "loyalty_hq_terminals_active"), 1);
  EXPECT_EQ(MetricValue(samples, "loyalty_hq_terminals_silent"), 0);
  EXPECT_EQ(MetricValue(samples, "loyalty_hq_database_ok"), 1);
  // Every request waited for the worker (SQLite: one) once, this scrape's included.
  EXPECT_EQ(MetricValue(samples, "loyalty_hq_workers"), 1);
  EXPECT_EQ(MetricValue(samples, "loyalty_hq_requests_waiting"), 0);
  EXPECT_GE(MetricValue(samples, "loyalty_hq_request_wait_seconds_count"), 4);
  loyalty::testing::ExpectPrometheusClientParses(metrics->body);

  auto refused = RecordedHttp("GET", "/v1/terminals", terminal.Request("GET", "/v1/terminals"));
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 401);
  auto fleet = Admin("GET", "/v1/terminals?store_id=S001&silent=false");
  ASSERT_TRUE(fleet.ok());
  ASSERT_EQ(fleet->status, 200) << fleet->body;
  json list = json::parse(fleet->body);
  ASSERT_EQ(list["terminals"].size(), 1u) << fleet->body;
  EXPECT_EQ(list["terminals"][0]["terminal_id"], "T01");
  EXPECT_EQ(list["terminals"][0]["entries"], 1);
  EXPECT_EQ(list["terminals"][0]["checkouts"], 1);
  EXPECT_EQ(list["terminals"][0]["silent"], false);
  EXPECT_TRUE(list["next_cursor"].is_null());
}

// operations.md, "Secrets and data on disk": every private key and token hq.toml names is
// refused at 0644 by --check-config and by a real start alike, the message naming the
// config key and the file; 0600 is accepted.
class HqSecretFilesTest : public HqProcessTest {
 protected:
  struct ProcessRun {
    int exit = -1;
    std::string err;
    std::string out;  // the log (HQ logs to stdout)
  };
  // After timeout_s loyalty-hq is killed (exit 124, from timeout(1)).
  ProcessRun RunHq(const std::string& args, int timeout_s = 20) {
    const std::string err_file = (dir_ / "run.err").string();
    const std::string out_file = (dir_ / "run.out").string();
    const int status = std::system(("timeout " + std::to_string(timeout_s) + " " + kBinary + " " +
                                    args + " >" + out_file + " 2>" + err_file)
                                       .c_str());
    ProcessRun r;
    r.exit = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream in(err_file);
    r.err.assign(std::istreambuf_iterator<char>(in), {});
    std::ifstream log(out_file);
    r.out.assign(std::istreambuf_iterator<char>(log), {});
    return r;
  }
  std::string Toml() const { return (dir_ / "hq.toml").string(); }
  // Adds TLS (a self-signed certificate that is also the client CA) and a PII key file.
  void UseTlsAndAPiiKey() {
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt "
        "ec_paramgen_curve:P-256 -nodes -keyout " +
        (dir_ / "hq.key").string() + " -out " + (dir_ / "hq.pem").string() +
        " -subj /CN=127.0.0.1 -days 2 2>/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    ASSERT_EQ(::chmod((dir_ / "hq.key").c_str(), 0600), 0);
    std::string toml;
    {
      std::ifstream in(Toml());
      toml.assign(std::istreambuf_iterator<char>(in), {});
    }
    auto own = std::filesystem::perms::owner_read | std::filesystem::perms::owner_write;
    Write(Toml(),
          toml +
              "tls_cert_file = \"hq.pem\"\ntls_key_file = "
              "\"hq.key\"\nclient_ca_file = \"hq.pem\"\n",
          own);
    Write(dir_ / "pii.key", std::string(32, 'k'), own);
  }
};

TEST_F(HqSecretFilesTest, EveryKeyAndTokenAt0644IsRefusedNamingTheFile) {
  UseTlsAndAPiiKey();
  {
    // A PostgreSQL database and its password file (--check-config makes no connection; a
    // start refused for a file stops before connecting).
    std::string toml;
    std::ifstream in(Toml());
    toml.assign(std::istreambuf_iterator<char>(in), {});
    const std::string sqlite = "database = \"hq.db\"";
    toml.replace(toml.find(sqlite), sqlite.size(),
                 "database = \"postgresql://loyalty@127.0.0.1:9/loyalty\"");
    auto own = std::filesystem::perms::owner_read | std::filesystem::perms::owner_write;
    Write(dir_ / "pg.password", "secret\n", own);
    Write(Toml(), toml + "database_password_file = \"pg.password\"\n", own);
  }
  const std::string check = "--check-config --config " + Toml();
  const std::string start = "--config " + Toml();
  ProcessRun ok = RunHq(check);
  ASSERT_EQ(ok.exit, 0) << ok.err;
  const std::pair<std::string, std::string> files[] = {
      {"hq.signing_keys.\"1\"", "hq-ed25519.pem"},
      {"hq.tls_key_file", "hq.key"},
      {"hq.pii_key_file", "pii.key"},
      {"hq.admin_token_file", "admin.token"},
      {"hq.database_password_file", "pg.password"}};
  for (const auto& [key, name] : files) {
    const std::string file = (dir_ / name).string();
    for (mode_t mode : {0644, 0640}) {
      ASSERT_EQ(::chmod(file.c_str(), mode), 0);
      for (const std::string& args : {check, start}) {
        ProcessRun r = RunHq(args);
        EXPECT_NE(r.exit, 0) << key << " " << args;
        char m[8];
        std::snprintf(m, sizeof m, "%04o", static_cast<unsigned>(mode));
        EXPECT_NE(r.err.find(Toml() + ": " + key + ": " + file + ": has mode " + m),
                  std::string::npos)
            << r.err;
      }
    }
    ASSERT_EQ(::chmod(file.c_str(), 0600), 0);
    ProcessRun back = RunHq(check);
    EXPECT_EQ(back.exit, 0) << back.err;
  }
}

// A TLS file that cannot be opened is said with its key, its file and the system's reason,
// by --check-config and the start alike.
TEST_F(HqSecretFilesTest, AMissingTlsFileIsNamedWithItsKeyAndReason) {
  UseTlsAndAPiiKey();
  {
    std::ofstream out(Toml(), std::ios::app);
    out << "crl_file = \"missing.crl\"\n";
  }
  const std::string crl = (dir_ / "missing.crl").string();
  for (const std::string& args : {"--check-config --config " + Toml(), "--config " + Toml()}) {
    ProcessRun r = RunHq(args);
    EXPECT_NE(r.exit, 0) << args;
    EXPECT_NE(
        r.err.find(Toml() + ": hq.crl_file: " + crl + ": cannot open: No such file or directory"),
        std::string::npos)
        << r.err;
  }
  // One that opens but holds no CRL is named with its key too, by the check and the start.
  Write(dir_ / "missing.crl", "not a CRL\n", std::filesystem::perms(0644));
  ProcessRun check = RunHq("--check-config --config " + Toml());
  EXPECT_NE(check.exit, 0);
  EXPECT_NE(check.err.find(Toml() + ": hq.crl_file: TLS CRL " + crl), std::string::npos)
      << check.err;
  ProcessRun start = RunHq("--config " + Toml());
  EXPECT_NE(start.exit, 0);
  EXPECT_NE(start.out.find("hq.crl_file: TLS CRL " + crl), std::string::npos) << start.out;
}

// A file hq.toml names that is not a regular file (a fifo, which would block its open for
// ever, a folder, a device such as /dev/zero) stops --check-config and the start at once,
// naming the config, the key, the path and the reason.
TEST_F(HqSecretFilesTest, AFifoOrADeviceNamedAsAFileStopsCheckConfigAndTheStartAtOnce) {
  UseTlsAndAPiiKey();
  const std::string fifo = (dir_ / "pipe").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string folder = (dir_ / "folder").string();
  std::filesystem::create_directory(folder);
  std::string base;
  {
    std::ifstream in(Toml());
    base.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto own = std::filesystem::perms::owner_read | std::filesystem::perms::owner_write;
  // Replaces `key = "<what it was>"` in hq.toml by `key = "<path>"`, or adds the line.
  auto with = [&](const std::string& key, const std::string& path) {
    std::string text = base;
    const size_t at = text.find("\n" + key + " = ");
    if (at == std::string::npos) {
      text += key + " = \"" + path + "\"\n";
    } else {
      const size_t end = text.find('\n', at + 1);
      text.replace(at + 1, end - at - 1, key + " = \"" + path + "\"");
    }
    return text;
  };
  const std::pair<std::string, std::string> cases[] = {
      {"tls_cert_file", fifo}, {"client_ca_file", fifo}, {"crl_file", fifo},
      {"database", fifo},      {"database", folder},     {"database", "/dev/zero"}};
  for (const auto& [key, path] : cases) {
    Write(Toml(), with(key, path), own);
    const std::string want = Toml() + ": hq." + key + ": " + path + ": not a regular file";
    for (const std::string& args : {"--check-config --config " + Toml(), "--config " + Toml()}) {
      const auto t0 = std::chrono::steady_clock::now();
      ProcessRun r = RunHq(args, 5);
      EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5)) << args;
      EXPECT_EQ(r.exit, 1) << key << " = " << path << ": " << args << "\n" << r.err;
      EXPECT_NE(r.err.find(want), std::string::npos) << "want \"" << want << "\" in: " << r.err;
    }
  }
  EXPECT_FALSE(std::filesystem::exists("/dev/zero-journal"));
  EXPECT_FALSE(std::filesystem::exists("/dev/zero-wal"));
  Write(Toml(), base, own);
  ProcessRun ok = RunHq("--check-config --config " + Toml());
  EXPECT_EQ(ok.exit, 0) << ok.err;
}

TEST_F(HqSecretFilesTest, ASymlinkedSigningKeyIsRefused) {
  const std::string key = (dir_ / "hq-ed25519.pem").string();
  std::filesystem::rename(key, dir_ / "real.pem");
  ASSERT_EQ(::symlink((dir_ / "real.pem").c_str(), key.c_str()), 0);
  for (const std::string& args : {"--check-config --config " + Toml(), "--config " + Toml()}) {
    ProcessRun r = RunHq(args);
    EXPECT_NE(r.exit, 0);
    EXPECT_NE(r.err.find(Toml() + ": hq.signing_keys.\"1\": " + key + ": is a symbolic link"),
              std::string::npos)
        << r.err;
  }
}

// hq.db and its -wal/-shm are 0600 after a real start and one write, with a umask that
// would leave SQLite's own default at 0644; the PII key it creates is 0600.
TEST_F(HqSecretFilesTest, HqDbAndItsWalAndShmAreCreated0600) {
  const mode_t old_umask = ::umask(022);
  Start();
  ::umask(old_umask);
  auto r = Admin("POST", "/v1/members", json{{"name", "张三"}, {"phone", "13812345678"}});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 201) << r->body;
  auto mode = [](const std::filesystem::path& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0u;
  };
  EXPECT_EQ(mode(dir_ / "hq.db"), 0600u);
  ASSERT_TRUE(std::filesystem::exists(dir_ / "hq.db-wal"));
  ASSERT_TRUE(std::filesystem::exists(dir_ / "hq.db-shm"));
  EXPECT_EQ(mode(dir_ / "hq.db-wal"), 0600u);
  EXPECT_EQ(mode(dir_ / "hq.db-shm"), 0600u);
  EXPECT_EQ(mode(dir_ / "pii.key"), 0600u);
}

// --check-config loads the TLS files as the listener does at start, the CRL included: one
// HQ could not use fails the check, naming the file and the reason, instead of the start.
TEST_F(HqSecretFilesTest, CheckConfigLoadsTheCrlAsTheStartDoes) {
  auto pki = loyalty::testing::TestPki::Create({"T-0001"});
  ASSERT_TRUE(pki.ok()) << pki.status().ToString();
  std::string base;
  {
    std::ifstream in(Toml());
    base.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto own = std::filesystem::perms::owner_read | std::filesystem::perms::owner_write;
  auto check = [&](const std::string& client_ca, const std::string& crl) {
    Write(Toml(),
          base + "tls_cert_file = \"" + (*pki)->server().cert_file + "\"\ntls_key_file = \"" +
              (*pki)->server().key_file + "\"\nclient_ca_file = \"" + client_ca +
              "\"\ncrl_file = \"" + crl + "\"\n",
          own);
    return RunHq("--check-config --config " + Toml());
  };
  auto crl = (*pki)->MakeCrl("crl", {(*pki)->client("T-0001").cert_file});
  ASSERT_TRUE(crl.ok()) << crl.status().ToString();
  ProcessRun ok = check((*pki)->ca_file(), *crl);
  EXPECT_EQ(ok.exit, 0) << ok.err;

  const std::string not_a_crl = (dir_ / "not-a-crl.pem").string();  // PEM, but a certificate
  std::filesystem::copy_file((*pki)->ca_file(), not_a_crl);
  const std::string missing = (dir_ / "missing.pem").string();
  struct Case {
    std::string client_ca, crl, says;
  };
  for (const Case& c :
       {Case{(*pki)->ca_file(), not_a_crl, "no CRL"}, Case{(*pki)->ca_file(), missing, ""},
        Case{(*pki)->other_ca_file(), *crl, ""}}) {  // a CRL of a CA HQ does not trust
    ProcessRun r = check(c.client_ca, c.crl);
    EXPECT_NE(r.exit, 0) << c.crl;
    EXPECT_NE(r.err.find(c.crl), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace loyalty::hq::testing
