#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <set>
#include <fstream>
#include <sstream>
#include <thread>

#include "loyalty/base/encoding.h"
#include "loyalty/base/hash.h"
#include "loyalty/codes/mint.h"

namespace loyalty::testing {

std::string MintCode(uint64_t member_id, std::optional<int64_t> code_time) {
  std::string hq_seed = *HexDecode(kHqSeedHex);
  std::string dev_seed = *HexDecode(kDeviceSeedHex);
  std::string cert = codes::MakeCertificate(hq_seed, 1, member_id, codes::Ed25519PublicFromSeed(dev_seed), 1893456000);
  int64_t t = code_time ? *code_time : static_cast<int64_t>(::time(nullptr));
  // A phone never shows the same code twice: two codes minted within one second (or for
  // "now" and "now - 1" across a second boundary) get different times, the newest free one.
  static std::mutex mu;
  static std::set<std::pair<uint64_t, int64_t>> used;
  {
    std::lock_guard<std::mutex> g(mu);
    while (used.count({member_id, t})) --t;
    used.insert({member_id, t});
  }
  return codes::MakeDynamicCode(cert, dev_seed, static_cast<uint32_t>(t));
}

uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::filesystem::path FreshDir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("loyalty_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

AgentProcess::AgentProcess(std::filesystem::path dir, std::string extra_toml, std::string rules_toml)
    : dir_(std::move(dir)) {
  token_ = HexEncode(RandomBytes(16));
  port_ = FreePort();
  WriteConfig(extra_toml, rules_toml);
}

AgentProcess::~AgentProcess() {
  if (pid_ > 0) Kill();
}

void AgentProcess::WriteConfig(const std::string& extra_toml, const std::string& rules_toml) {
  {
    std::ofstream t(dir_ / "api.token");
    t << token_ << "\n";
  }
  ::chmod((dir_ / "api.token").c_str(), 0640);
  std::ofstream c(dir_ / "agent.toml");
  c << "[agent]\nterminal_id = \"T01\"\nstore_id = \"S001\"\ntimezone = \"Asia/Shanghai\"\n"
    << "database = \"ledger.db\"\n";
  if (!rules_toml.empty()) {
    std::ofstream r(dir_ / "rules.toml");
    r << rules_toml;
    c << "rules_file = \"rules.toml\"\n";
  }
  c << "\n[api]\nlisten = \"127.0.0.1:" << port_ << "\"\ntoken_file = \"api.token\"\n"
    << "\n[codes]\nhq_public_keys = { \"1\" = \"" << kHqPublicB64 << "\" }\n"
    << "channels = [ { name = \"wechat\", pattern = \"^[0-9]{12}$\" } ]\n"
    << "\n[log]\nlevel = \"info\"\nformat = \"json\"\n"
    << extra_toml;
}

void AgentProcess::Start() {
  std::string exe = std::string(LOYALTY_BINARY_DIR) + "/agent/loyaltyd";
  std::string cfg = config_path();
  std::string log = log_path();
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    for (const auto& e : env_) ::putenv(const_cast<char*>(e.c_str()));
    std::vector<std::string> args = wrapper_;
    args.insert(args.end(), {exe, "--config", cfg});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  pid_ = pid;
  client_ = std::make_unique<http::Client>("127.0.0.1", port_);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = client_->Request("GET", "/v1/health", "", {}, 1000);
    if (r.ok() && r->status == 200) return;
    int st;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      FAIL() << "loyaltyd exited during start-up:\n" << ReadLog();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FAIL() << "loyaltyd did not answer /v1/health within 10 s:\n" << ReadLog();
}

int AgentProcess::Stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int st = 0;
  ::waitpid(pid_, &st, 0);
  pid_ = -1;
  client_.reset();
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void AgentProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int st = 0;
  ::waitpid(pid_, &st, 0);
  pid_ = -1;
  client_.reset();
}

HttpResult CallWith(http::Client& client, const std::string& token, const std::string& method,
                    const std::string& target, const std::string& body, bool auth) {
  HttpResult out;
  std::vector<std::pair<std::string, std::string>> headers;
  if (auth) headers.emplace_back("Authorization", "Bearer " + token);
  headers.emplace_back("Content-Type", "application/json");
  auto r = client.Request(method, target, body, headers, 10000);
  if (!r.ok()) {
    out.status = -1;
    out.raw = r.status().ToString();
    return out;
  }
  out.status = r->status;
  out.raw = r->body;
  out.body = nlohmann::json::parse(r->body, nullptr, false);
  return out;
}

HttpResult AgentProcess::Call(const std::string& method, const std::string& target, const std::string& body,
                              bool auth) {
  if (!client_) client_ = std::make_unique<http::Client>("127.0.0.1", port_);
  return CallWith(*client_, token_, method, target, body, auth);
}

std::string AgentProcess::ReadLog() const {
  std::ifstream f(log_path());
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::unique_ptr<ledger::Ledger> AgentProcess::OpenLedger(ledger::Ledger::Mode mode) {
  auto l = ledger::Ledger::Open(db_path(), mode, "T01");
  EXPECT_TRUE(l.ok()) << l.status().ToString();
  return l.ok() ? std::move(*l) : nullptr;
}

void SeedMember(ledger::Ledger& l, uint64_t member_id, const std::string& tier, int64_t points, int64_t snapshot_at_s,
                int birthday_month) {
  ASSERT_TRUE(l.Begin().ok());
  ledger::MemberRow m;
  m.member_id = member_id;
  m.display_name = "张*";
  m.phone = "138****5678";
  m.phone_hash = KeyedHashHex("test-key", "13812345678");
  m.tier = tier;
  m.birthday_month = birthday_month;
  m.snapshot_at_s = snapshot_at_s;
  m.snapshot_balance = points;
  m.balance = points;
  ASSERT_TRUE(l.UpsertMember(m).ok());
  if (points > 0) {
    model::Lot lot;
    lot.member_id = member_id;
    lot.points = lot.remaining = points;
    lot.earned_at_s = snapshot_at_s;
    lot.expires_at_s = snapshot_at_s + 300 * 86400;
    ASSERT_TRUE(l.AddLot(lot).ok());
  }
  ASSERT_TRUE(l.Commit().ok());
}

}  // namespace loyalty::testing
