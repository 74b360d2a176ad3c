// Test harness: a real loyaltyd process on loopback with a real SQLite file.
//
// AgentProcess writes a config (terminal T01, the test vectors' HQ key, a 0640 token
// file), starts the daemon from the build tree, waits until /v1/health answers, and
// can stop it with SIGTERM or kill it with SIGKILL. Member codes are minted with the
// vectors' seeds at the current time (the daemon reads the system clock).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "loyalty/http/client.h"
#include "loyalty/ledger/ledger.h"
#include "support/files.h"
#include "support/http_reply.h"
#include "support/net.h"
#include "support/process.h"

namespace loyalty::testing {

inline constexpr char kHqSeedHex[] =
    "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";
inline constexpr char kHqPublicB64[] = "ebVWLo_mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ";
inline constexpr char kDeviceSeedHex[] =
    "65666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f8081828384";

// A fresh dynamic code for member_id at code_time (default: now).
std::string MintCode(uint64_t member_id, std::optional<int64_t> code_time = std::nullopt);

// One request over the given client (each thread keeps its own client).
HttpReply CallWith(http::Client& client, const std::string& token, const std::string& method,
                   const std::string& target, const std::string& body = "", bool auth = true);

class AgentProcess {
 public:
  // dir: a fresh folder for config, token, ledger and logs. extra_toml is appended to the
  // config; rules_toml, when non-empty, becomes the rules file.
  explicit AgentProcess(std::filesystem::path dir, std::string extra_toml = "",
                        std::string rules_toml = "");
  ~AgentProcess();

  void Start();  // fails the test if the daemon does not come up in 10 s
  // Runs the daemon under a wrapper command (e.g. umockdev-run … --), with extra
  // environment variables.
  void set_wrapper(std::vector<std::string> argv, std::vector<std::string> env = {}) {
    wrapper_ = std::move(argv);
    env_ = std::move(env);
  }
  int Stop();   // SIGTERM; returns the exit status
  void Kill();  // SIGKILL, no waiting for anything but the reap
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  HttpReply Call(const std::string& method, const std::string& target, const std::string& body = "",
                 bool auth = true);
  HttpReply Post(const std::string& target, const nlohmann::json& body) {
    return Call("POST", target, body.dump());
  }
  HttpReply Get(const std::string& target) { return Call("GET", target); }

  const std::filesystem::path& dir() const { return dir_; }
  std::string db_path() const { return (dir_ / "ledger.db").string(); }
  std::string config_path() const { return (dir_ / "agent.toml").string(); }
  std::string log_path() const { return (dir_ / "agent.log").string(); }
  std::string token() const { return token_; }
  uint16_t port() const { return port_; }
  std::string ReadLog() const;

  // Opens the ledger file directly (the daemon must not be running for writes).
  std::unique_ptr<ledger::Ledger> OpenLedger(
      ledger::Ledger::Mode mode = ledger::Ledger::Mode::kWriter);

 private:
  void WriteConfig(const std::string& extra_toml, const std::string& rules_toml);

  std::filesystem::path dir_;
  std::string token_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  std::unique_ptr<http::Client> client_;
  std::vector<std::string> wrapper_, env_;
};

// Seeds a member as an HQ snapshot would: masked name/phone, tier, a lot, a fresh snapshot.
void SeedMember(ledger::Ledger& l, uint64_t member_id, const std::string& tier, int64_t points,
                int64_t snapshot_at_s, int birthday_month = 0);

}  // namespace loyalty::testing
