#include "e2e.h"

#include "support/hq_store.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>

#include "e2e_fixture.h"
#include "loyalty/base/encoding.h"
#include "loyalty/base/hash.h"
#include "loyalty/codes/mint.h"
#include "loyalty/hq/events.h"
#include "support/api_record.h"
#include "support/event_catalogue.h"
#include "support/process.h"

namespace loyalty::e2e {
namespace {

const std::string kHqBinary = std::string(LOYALTY_BINARY_DIR) + "/hq/loyalty-hq";
const std::string kAgentBinary = std::string(LOYALTY_BINARY_DIR) + "/agent/loyaltyd";
constexpr char kAdminToken[] = "e2e-admin-token";

using testing::ReadFile;
using testing::WriteFile;

// PKCS#8 PEM of a raw Ed25519 seed, as `openssl genpkey -algorithm ed25519` writes it.
std::string Ed25519Pem(const std::string& seed) {
  std::string der = *HexDecode("302e020100300506032b657004220420") + seed;
  static const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string b;
  for (size_t i = 0; i < der.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(der[i]) << 16;
    if (i + 1 < der.size()) v |= static_cast<uint8_t>(der[i + 1]) << 8;
    if (i + 2 < der.size()) v |= static_cast<uint8_t>(der[i + 2]);
    b += kB64[(v >> 18) & 63];
    b += kB64[(v >> 12) & 63];
    b += i + 1 < der.size() ? kB64[(v >> 6) & 63] : '=';
    b += i + 2 < der.size() ? kB64[v & 63] : '=';
  }
  return "-----BEGIN PRIVATE KEY-----\n" + b + "\n-----END PRIVATE KEY-----\n";
}

pid_t Spawn(const std::string& exe, const std::string& config, const std::string& log) {
  return testing::Spawn({exe, "--config", config}, log);
}

int64_t QueryInt(const std::string& db, const std::string& sql, const std::string& arg) {
  sqlite3* h = nullptr;
  int64_t out = -1;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(h, 5000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) == SQLITE_OK) {
      if (!arg.empty()) sqlite3_bind_text(st, 1, arg.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(st) == SQLITE_ROW) out = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(h);
  return out;
}

}  // namespace

std::string HqSigningSeed() { return std::string(32, '\x2a'); }

// ---------------------------------------------------------------------------- fixture

void E2eFixture::SetUp() {
  dir_ = FreshDir("e2e_" +
                  std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
  auto pki = testing::TestPki::Create(terminal_ids_);
  ASSERT_TRUE(pki.ok()) << pki.status().ToString();
  pki_ = std::move(*pki);
}

void E2eFixture::TearDown() {
  terminals_.clear();
  hq_.reset();
  // Whatever a test made HQ do, it logged only events of its catalogue.
  if (std::filesystem::exists(dir_ / "hq" / "hq.log")) {
    testing::ExpectLogCatalogued(ReadFile(dir_ / "hq" / "hq.log"), hq::kHqEventCatalogue,
                                 "loyalty/hq/events.h");
  }
  if (!HasFailure()) std::filesystem::remove_all(dir_);
}

HqProcess& E2eFixture::StartHq(bool tls, const std::string& rules_toml) {
  hq_ = std::make_unique<HqProcess>(dir_ / "hq", *pki_, tls);
  if (!rules_toml.empty()) hq_->SetRules(rules_toml);
  hq_->Start();
  return *hq_;
}

TerminalOptions E2eFixture::Options(const std::string& terminal_id, uint16_t hq_port) const {
  TerminalOptions o;
  o.terminal_id = terminal_id;
  o.store_id = "S001";  // lanes of one store; a test of member scope picks its own stores
  o.hq_port = hq_port;
  o.tls = true;
  o.ca_file = pki_->ca_file();
  o.cert = pki_->client(terminal_id);
  return o;
}

TerminalProcess& E2eFixture::AddTerminal(TerminalOptions options) {
  auto dir = dir_ / options.terminal_id;
  terminals_.push_back(std::make_unique<TerminalProcess>(dir, std::move(options)));
  terminals_.back()->Start();
  return *terminals_.back();
}

// ---------------------------------------------------------------------------- HQ

HqProcess::HqProcess(std::filesystem::path dir, const testing::TestPki& pki, bool tls)
    : dir_(std::move(dir)), pki_(pki), tls_(tls), port_(FreePort()) {
  std::filesystem::create_directories(dir_);
  WriteFile(dir_ / "admin.token", std::string(kAdminToken) + "\n", 0600);
  WriteFile(dir_ / "hq-ed25519.pem", Ed25519Pem(HqSigningSeed()), 0600);
  std::string why;
  const std::string database = testing::TestHqDatabaseToml(dir_, &why);
  if (database.empty()) ADD_FAILURE() << "HQ database: " << why;
  // [log] first: AddConfig appends [hq] keys at the end. JSON lines, which the tests read.
  std::string toml =
      "[log]\nformat = \"json\"\n\n[hq]\nlisten = \"127.0.0.1:" + std::to_string(port_) + "\"\n" +
      database +
      "admin_token_file = \"admin.token\"\n"
      "signing_keys = { \"1\" = \"hq-ed25519.pem\" }\ncard_prefix = "
      "\"88\"\npii_key_file = \"pii.key\"\n";
  if (tls) {
    toml += "tls_cert_file = \"" + pki.server().cert_file + "\"\ntls_key_file = \"" +
            pki.server().key_file + "\"\nclient_ca_file = \"" + pki.ca_file() + "\"\n";
  }
  WriteFile(dir_ / "hq.toml", toml, 0600);
}

HqProcess::~HqProcess() { Kill(); }

void HqProcess::ShareStoreOf(const HqProcess& first) {
  std::string why;
  const std::string database = testing::TestHqDatabaseToml(first.dir(), &why, dir_);
  ASSERT_FALSE(database.empty()) << "HQ database: " << why;
  std::string toml;
  std::istringstream in(ReadFile(dir_ / "hq.toml"));
  for (std::string line; std::getline(in, line);)
    if (line.rfind("database", 0) != 0) toml += line + "\n";
  WriteFile(dir_ / "hq.toml", toml + database, 0600);
  WriteFile(dir_ / "pii.key", ReadFile(first.dir() / "pii.key"), 0600);
}

void HqProcess::SetRules(const std::string& toml) {
  WriteFile(dir_ / "rules.toml", toml, 0644);
  WriteFile(dir_ / "hq.toml", ReadFile(dir_ / "hq.toml") + "rules_file = \"rules.toml\"\n", 0600);
}

void HqProcess::Start() {
  pid_ = Spawn(kHqBinary, (dir_ / "hq.toml").string(), (dir_ / "hq.log").string());
  switch (testing::WaitUntilReady(
      &pid_, [this] { return Admin("GET", "/v1/health").status == 200; }, 10000, 25)) {
    case testing::StartOutcome::kReady:
      return;
    case testing::StartOutcome::kExited:
      FAIL() << "loyalty-hq exited during start-up:\n" << ReadLog();
    case testing::StartOutcome::kTimedOut:
      FAIL() << "loyalty-hq did not start:\n" << ReadLog();
  }
}

int HqProcess::StartExpectingExit(int ms) {
  pid_ = Spawn(kHqBinary, (dir_ / "hq.toml").string(), (dir_ / "hq.log").string());
  int st = testing::ReapWithin(pid_, ms);
  if (st == -2) {
    Kill();
    return -2;
  }
  pid_ = -1;
  return st;
}

void HqProcess::AddConfig(const std::string& toml) {
  std::ofstream(dir_ / "hq.toml", std::ios::app) << toml;
}

int HqProcess::Stop() {
  if (pid_ <= 0) return -1;
  int st = testing::SignalAndReap(pid_, SIGTERM);
  pid_ = -1;
  return st;
}

void HqProcess::Kill() {
  if (pid_ <= 0) return;
  testing::SignalAndReap(pid_, SIGKILL);
  pid_ = -1;
}

std::string HqProcess::ReadLog() const { return ReadFile(dir_ / "hq.log"); }

Reply HqProcess::Admin(const std::string& method, const std::string& target, const json& body) {
  std::unique_ptr<http::Client> c;
  if (tls_) {
    http::ClientTlsOptions o;
    o.ca_file = pki_.ca_file();
    c = std::make_unique<http::Client>("127.0.0.1", port_, o);
  } else {
    c = std::make_unique<http::Client>("127.0.0.1", port_);
  }
  return testing::RecordedReply(
      testing::Api::kHq, method, target,
      c->Request(method, target, body.is_null() ? "" : body.dump(),
                 {{"Authorization", std::string("Bearer ") + kAdminToken}}, 10000));
}

Reply HqProcess::AsTerminal(const std::string& method, const std::string& target,
                            const std::string& body, std::optional<testing::CertAndKey> cert,
                            const std::string& ca_file) {
  http::ClientTlsOptions o;
  o.ca_file = ca_file;
  if (cert) {
    o.cert_file = cert->cert_file;
    o.key_file = cert->key_file;
  }
  http::Client c("127.0.0.1", port_, o);
  return testing::RecordedReply(testing::Api::kHq, method, target,
                                c.Request(method, target, body, {}, 10000));
}

// ---------------------------------------------------------------------------- terminal

TerminalProcess::TerminalProcess(std::filesystem::path dir, TerminalOptions options)
    : dir_(std::move(dir)),
      opt_(std::move(options)),
      token_(HexEncode(RandomBytes(16))),
      port_(FreePort()) {
  std::filesystem::create_directories(dir_);
  WriteConfig();
}

TerminalProcess::~TerminalProcess() { Kill(); }

void TerminalProcess::WriteConfig() {
  WriteFile(dir_ / "api.token", token_ + "\n", 0640);
  if (!opt_.rules_toml.empty()) WriteFile(dir_ / "rules.toml", opt_.rules_toml, 0644);
  std::ostringstream c;
  c << "[agent]\nterminal_id = \"" << opt_.terminal_id << "\"\nstore_id = \"" << opt_.store_id
    << "\"\ntimezone = \"Asia/Shanghai\"\ndatabase = \"ledger.db\"\n"
    << (opt_.rules_toml.empty() ? "" : "rules_file = \"rules.toml\"\n")
    << "\n[api]\nlisten = \"127.0.0.1:" << port_ << "\"\ntoken_file = \"api.token\"\n"
    << opt_.api_toml << "\n[codes]\nhq_public_keys = { \"1\" = \""
    << Base64UrlEncode(codes::Ed25519PublicFromSeed(HqSigningSeed())) << "\" }\n"
    << "\n[hq]\nurl = \"" << (opt_.tls ? "https" : "http") << "://127.0.0.1:" << opt_.hq_port
    << "\"\n";
  if (!opt_.ca_file.empty()) c << "ca_file = \"" << opt_.ca_file << "\"\n";
  if (opt_.cert)
    c << "cert_file = \"" << opt_.cert->cert_file << "\"\nkey_file = \"" << opt_.cert->key_file
      << "\"\n";
  c << "\n[sync]\ninterval_s = 0\nrun_timeout_s = " << opt_.run_timeout_s << "\n"
    << "\n[log]\nlevel = \"info\"\nformat = \"json\"\n"
    << opt_.extra_toml;
  WriteFile(dir_ / "agent.toml", c.str(), 0644);
}

void TerminalProcess::Start() {
  pid_ = Spawn(kAgentBinary, (dir_ / "agent.toml").string(), (dir_ / "agent.log").string());
  client_ = std::make_unique<http::Client>("127.0.0.1", port_);
  auto healthy = [this] {
    auto r = client_->Request("GET", "/v1/health", "", {}, 1000);
    testing::RecordApiResponse(testing::Api::kPos, "GET", "/v1/health", r);
    return r.ok() && r->status == 200;
  };
  switch (testing::WaitUntilReady(&pid_, healthy, 12000, 20)) {
    case testing::StartOutcome::kReady:
      return;
    case testing::StartOutcome::kExited:
      FAIL() << "loyaltyd exited during start-up:\n" << ReadLog();
    case testing::StartOutcome::kTimedOut:
      FAIL() << "loyaltyd did not start:\n" << ReadLog();
  }
}

int TerminalProcess::Stop() {
  if (pid_ <= 0) return -1;
  int st = testing::SignalAndReap(pid_, SIGTERM);
  pid_ = -1;
  client_.reset();
  return st;
}

int TerminalProcess::StopWithin(int ms) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int st = testing::ReapWithin(pid_, ms);
  if (st == -2) {
    Kill();
    return -2;
  }
  pid_ = -1;
  client_.reset();
  return st;
}

void TerminalProcess::Kill() {
  if (pid_ <= 0) return;
  testing::SignalAndReap(pid_, SIGKILL);
  pid_ = -1;
  client_.reset();
}

std::string TerminalProcess::ReadLog() const { return ReadFile(dir_ / "agent.log"); }

Reply TerminalProcess::Call(const std::string& method, const std::string& target,
                            const json& body) {
  if (!client_) client_ = std::make_unique<http::Client>("127.0.0.1", port_);
  return testing::RecordedReply(
      testing::Api::kPos, method, target,
      client_->Request(
          method, target, body.is_null() ? "" : body.dump(),
          {{"Authorization", "Bearer " + token_}, {"Content-Type", "application/json"}}, 10000));
}

json TerminalProcess::Sync() {
  auto started = Call("POST", "/v1/sync");
  if (started.status != 202) return json{{"result", "not_started"}, {"error", started.raw}};
  std::string run_id = started.body.value("run_id", "");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(opt_.run_timeout_s + 10);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = Call("GET", "/v1/sync");
    if (r.status == 200 && r.body.contains("last_runs")) {
      for (const auto& run : r.body["last_runs"]) {
        if (run.value("run_id", "") == run_id && run.value("result", "") != "running" &&
            run.contains("finished_at") && !run["finished_at"].is_null()) {
          return run;
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return json{{"result", "timeout"}, {"run_id", run_id}};
}

int64_t TerminalProcess::LedgerEntries() {
  return QueryInt(db_path(), "SELECT count(*) FROM entries WHERE terminal_id = ?",
                  opt_.terminal_id);
}

int64_t TerminalProcess::MemberBalance(const std::string& member_id) {
  auto r = Call("GET", "/v1/members/" + member_id);
  return r.status == 200 ? r.body.value("balance", int64_t{-1}) : INT64_MIN;
}

// ---------------------------------------------------------------------------- members

Member Enrol(HqProcess& hq, int device_index, const std::string& store_id) {
  Member m;
  json body{{"name", "张三"}, {"phone", "1381234" + std::to_string(1000 + device_index)}};
  if (!store_id.empty()) body["store_id"] = store_id;
  auto r = hq.Admin("POST", "/v1/members", body);
  EXPECT_EQ(r.status, 201) << r.raw;
  m.id = r.body.value("member_id", "");
  m.card_number = r.body.value("card_number", "");
  m.device_seed = std::string(31, '\x11') + static_cast<char>(device_index);
  m.device_public_b64 = Base64UrlEncode(codes::Ed25519PublicFromSeed(m.device_seed));
  auto d = hq.Admin("POST", "/v1/members/" + m.id + "/devices",
                    json{{"device_public_key", m.device_public_b64}});
  EXPECT_EQ(d.status, 201) << d.raw;
  m.certificate = Base64UrlDecode(d.body.value("certificate", "")).value_or("");
  return m;
}

std::string DynamicCode(Member& m) {
  int64_t t = static_cast<int64_t>(::time(nullptr));
  if (m.last_code_time != 0 && t >= m.last_code_time) t = m.last_code_time - 1;
  m.last_code_time = t;
  return codes::MakeDynamicCode(m.certificate, m.device_seed, static_cast<uint32_t>(t));
}

json Basket(int64_t cents) {
  return json::array(
      {{{"sku", "A"}, {"qty", 1}, {"unit_price_cents", cents}, {"category", "grocery"}}});
}

int64_t HqEntrySum(const HqProcess& hq, const std::string& member_id) {
  EXPECT_TRUE(!member_id.empty() && member_id.find_first_not_of("0123456789") == std::string::npos);
  auto sum = testing::QueryIntOnTestHqStore(
      hq.dir(), "SELECT coalesce(sum(points), 0) FROM entries WHERE member_id = " + member_id +
                    " AND applied = 1");
  EXPECT_TRUE(sum.ok()) << sum.status().ToString();
  return sum.ok() ? *sum : -1;
}

// ---------------------------------------------------------------------------- proxy

FaultProxy::FaultProxy(uint16_t upstream_port, uint64_t seed)
    : upstream_(upstream_port), rng_(seed) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(listen_fd_, 64);
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

FaultProxy::~FaultProxy() {
  stop_.store(true);
  acceptor_.join();
  ::close(listen_fd_);
  std::lock_guard<std::mutex> g(mu_);
  for (auto& t : threads_) t.join();
}

void FaultProxy::AcceptLoop() {
  while (!stop_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    std::lock_guard<std::mutex> g(mu_);
    threads_.emplace_back([this, fd] { Serve(fd); });
  }
}

namespace {
int ConnectLoopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}
}  // namespace

void FaultProxy::Serve(int client_fd) {
  // This connection's faults, drawn once from the seeded generator.
  int64_t cut_up = -1, cut_down = -1, delay_ms = 0;
  bool duplicate = false;
  if (faults_.load()) {
    std::lock_guard<std::mutex> g(mu_);
    switch (rng_() % 5) {
      case 0:
        cut_up = static_cast<int64_t>(rng_() % 6000);
        break;
      case 1:
        cut_down = static_cast<int64_t>(rng_() % 6000);
        break;
      case 2:
        delay_ms = static_cast<int64_t>(rng_() % 40);
        break;
      case 3:
        duplicate = true;
        break;
      default:
        break;  // a clean connection now and then
    }
  }
  int up_fd = ConnectLoopback(upstream_);
  if (up_fd < 0) {
    ::close(client_fd);
    return;
  }
  std::string sent_up;
  int64_t n_up = 0, n_down = 0;
  char buf[16384];
  bool open = true;
  while (open && !stop_.load()) {
    pollfd p[2] = {{client_fd, POLLIN, 0}, {up_fd, POLLIN, 0}};
    if (::poll(p, 2, 20) <= 0) continue;
    for (int i = 0; i < 2 && open; ++i) {
      if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      int from = i == 0 ? client_fd : up_fd, to = i == 0 ? up_fd : client_fd;
      ssize_t r = ::recv(from, buf, sizeof buf, 0);
      if (r <= 0) {
        open = false;
        break;
      }
      size_t n = static_cast<size_t>(r);
      int64_t& count = i == 0 ? n_up : n_down;
      int64_t cut = i == 0 ? cut_up : cut_down;
      if (cut >= 0 && count + static_cast<int64_t>(n) > cut) {
        WriteAll(to, buf, static_cast<size_t>(cut - count));
        cuts_.fetch_add(1);
        open = false;
        break;
      }
      if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      if (i == 0 && duplicate) sent_up.append(buf, n);
      count += static_cast<int64_t>(n);
      if (!WriteAll(to, buf, n)) open = false;
    }
  }
  ::shutdown(client_fd, SHUT_RDWR);
  ::shutdown(up_fd, SHUT_RDWR);
  ::close(client_fd);
  ::close(up_fd);
  if (duplicate && !sent_up.empty() && !stop_.load()) {
    // The same bytes once more on a new connection; the answer goes nowhere.
    int fd = ConnectLoopback(upstream_);
    if (fd >= 0) {
      WriteAll(fd, sent_up.data(), sent_up.size());
      ::shutdown(fd, SHUT_WR);
      for (int i = 0; i < 100; ++i) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 20) > 0 && ::recv(fd, buf, sizeof buf, 0) <= 0) break;
      }
      ::close(fd);
    }
  }
}

}  // namespace loyalty::e2e
