#include "harness.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <mutex>
#include <set>

#include "loyalty/base/encoding.h"
#include "loyalty/base/hash.h"
#include "loyalty/codes/mint.h"
#include "support/api_record.h"

namespace loyalty::testing {

std::string MintCode(uint64_t member_id, std::optional<int64_t> code_time) {
  std::string hq_seed = *HexDecode(kHqSeedHex);
  std::string dev_seed = *HexDecode(kDeviceSeedHex);
  std::string cert = codes::MakeCertificate(hq_seed, 1, member_id,
                                            codes::Ed25519PublicFromSeed(dev_seed), 1893456000);
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

AgentProcess::AgentProcess(std::filesystem::path dir, std::string extra_toml,
                           std::string rules_toml)
    : dir_(std::move(dir)) {
  token_ = HexEncode(RandomBytes(16));
  port_ = FreePort();
  WriteConfig(extra_toml, rules_toml);
}

AgentProcess::~AgentProcess() {
  if (pid_ > 0) Kill();
}

void AgentProcess::WriteConfig(const std::string& extra_toml, const std::string& rules_toml) {
  WriteFile(dir_ / "api.token", token_ + "\n", 0640);
  std::ofstream c(dir_ / "agent.toml");
  c << "[agent]\nterminal_id = \"T01\"\nstore_id = \"S001\"\ntimezone = \"Asia/Shanghai\"\n"
    << "database = \"ledger.db\"\n";
  if (!rules_toml.empty()) {
    WriteFile(dir_ / "rules.toml", rules_toml);
    c << "rules_file = \"rules.toml\"\n";
  }
  c << "\n[api]\nlisten = \"127.0.0.1:" << port_ << "\"\ntoken_file = \"api.token\"\n"
    << "\n[codes]\nhq_public_keys = { \"1\" = \"" << kHqPublicB64 << "\" }\n"
    << "channels = [ { name = \"wechat\", pattern = \"^[0-9]{12}$\" } ]\n"
    << "\n[log]\nlevel = \"info\"\nformat = \"json\"\n"
    << extra_toml;
}

void AgentProcess::Start() {
  std::vector<std::string> argv = wrapper_;
  argv.insert(argv.end(),
              {std::string(LOYALTY_BINARY_DIR) + "/agent/loyaltyd", "--config", config_path()});
  pid_ = Spawn(argv, log_path(), env_);
  client_ = std::make_unique<http::Client>("127.0.0.1", port_);
  auto healthy = [this] {
    auto r = client_->Request("GET", "/v1/health", "", {}, 1000);
    RecordApiResponse(Api::kPos, "GET", "/v1/health", r);
    return r.ok() && r->status == 200;
  };
  switch (WaitUntilReady(&pid_, healthy, 10000, 10)) {
    case StartOutcome::kReady:
      return;
    case StartOutcome::kExited:
      FAIL() << "loyaltyd exited during start-up:\n" << ReadLog();
    case StartOutcome::kTimedOut:
      FAIL() << "loyaltyd did not answer /v1/health within 10 s:\n" << ReadLog();
  }
}

int AgentProcess::Stop() {
  if (pid_ <= 0) return -1;
  int st = SignalAndReap(pid_, SIGTERM);
  pid_ = -1;
  client_.reset();
  return st;
}

void AgentProcess::Kill() {
  if (pid_ <= 0) return;
  SignalAndReap(pid_, SIGKILL);
  pid_ = -1;
  client_.reset();
}

HttpReply CallWith(http::Client& client, const std::string& token, const std::string& method,
                   const std::string& target, const std::string& body, bool auth) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (auth) headers.emplace_back("Authorization", "Bearer " + token);
  headers.emplace_back("Content-Type", "application/json");
  return RecordedReply(Api::kPos, method, target,
                       client.Request(method, target, body, headers, 10000));
}

HttpReply AgentProcess::Call(const std::string& method, const std::string& target,
                             const std::string& body, bool auth) {
  if (!client_) client_ = std::make_unique<http::Client>("127.0.0.1", port_);
  return CallWith(*client_, token_, method, target, body, auth);
}

std::string AgentProcess::ReadLog() const { return ReadFile(log_path()); }

std::unique_ptr<ledger::Ledger> AgentProcess::OpenLedger(ledger::Ledger::Mode mode) {
  auto l = ledger::Ledger::Open(db_path(), mode, "T01");
  EXPECT_TRUE(l.ok()) << l.status().ToString();
  return l.ok() ? std::move(*l) : nullptr;
}

void SeedMember(ledger::Ledger& l, uint64_t member_id, const std::string& tier, int64_t points,
                int64_t snapshot_at_s, int birthday_month) {
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
