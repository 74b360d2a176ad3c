// End-to-end harness: a real loyalty-hq and real loyaltyd processes on loopback, mutual TLS
// with a throwaway PKI (support/pki.h), and a fault-injecting TCP proxy between them.
//
// HqProcess and TerminalProcess write their configs into a folder of their own, start the
// program from the build tree, wait for /v1/health, and stop it with SIGTERM or SIGKILL.
// FaultProxy forwards loopback TCP connections to HQ and, when faults are on, cuts them
// after a seeded number of bytes in either direction (a cut on the way back is a response
// lost after HQ committed), delays chunks, and replays a connection's request bytes on a
// second connection (a duplicated request; effective on plain HTTP only, a replayed TLS
// stream fails its handshake).
//
// Thread-compatible except FaultProxy, whose connections run on threads of its own.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "loyalty/http/client.h"
#include "support/files.h"
#include "support/http_reply.h"
#include "support/net.h"
#include "support/pki.h"

namespace loyalty::e2e {

using nlohmann::json;
using testing::FreePort;
using testing::FreshDir;

// The HQ signing seed (key id 1) both sides use; the terminals trust its public key.
std::string HqSigningSeed();

using Reply = testing::HttpReply;

class HqProcess {
 public:
  // tls: listen with the PKI's server certificate and its CA as client_ca_file.
  HqProcess(std::filesystem::path dir, const testing::TestPki& pki, bool tls);
  ~HqProcess();
  // hq.toml's rules_file: the chain's rules (TOML, the agent's rules-file format). Before Start.
  void SetRules(const std::string& toml);
  void Start();
  // Starts it and waits for it to exit on its own (a start that must fail): the exit
  // status, or -2 (and SIGKILL) if it still runs after `ms`.
  int StartExpectingExit(int ms);
  int Stop();  // SIGTERM; the exit status
  void Kill();
  // Appends `toml` (keys of [hq], one per line) to hq.toml; before Start().
  void AddConfig(const std::string& toml);
  // Makes this HQ a second process of `first`'s chain: the same database (PostgreSQL; on
  // SQLite the same file would have two writers, which loyalty-hq is not built for) and the
  // same PII key. Before Start(), after `first` has started (it creates the key).
  void ShareStoreOf(const HqProcess& first);
  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  bool tls() const { return tls_; }
  // Its folder: the store's too (support/hq_store.h: hq.db there, or the PostgreSQL database
  // named after it).
  const std::filesystem::path& dir() const { return dir_; }
  std::string ReadLog() const;
  // Admin API with the bearer token (over TLS without a client certificate when tls).
  Reply Admin(const std::string& method, const std::string& target, const json& body = nullptr);
  // A terminal route with the given client certificate (nullopt: none).
  Reply AsTerminal(const std::string& method, const std::string& target, const std::string& body,
                   std::optional<testing::CertAndKey> cert, const std::string& ca_file);

 private:
  std::filesystem::path dir_;
  const testing::TestPki& pki_;
  bool tls_;
  uint16_t port_;
  pid_t pid_ = -1;
};

struct TerminalOptions {
  std::string terminal_id;
  std::string store_id = "S001";
  uint16_t hq_port = 0;
  bool tls = true;
  std::string ca_file;                      // [hq] ca_file
  std::optional<testing::CertAndKey> cert;  // [hq] cert_file / key_file
  int run_timeout_s = 30;
  std::string rules_toml;  // non-empty: a local rules file (the fallback before a first sync)
  std::string extra_toml;  // appended to agent.toml (more sections, e.g. [enrolment])
  std::string api_toml;    // more [api] keys, one per line
};

class TerminalProcess {
 public:
  TerminalProcess(std::filesystem::path dir, TerminalOptions options);
  ~TerminalProcess();
  void Start();
  int Stop();
  // SIGTERM, then waits at most ms: the exit status, or -2 (and SIGKILL) if still running.
  int StopWithin(int ms);
  void Kill();
  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  const TerminalOptions& options() const { return opt_; }
  std::string db_path() const { return (dir_ / "ledger.db").string(); }
  std::string config_path() const { return (dir_ / "agent.toml").string(); }
  std::string ReadLog() const;

  Reply Call(const std::string& method, const std::string& target, const json& body = nullptr);
  // POST /v1/sync, then polls GET /v1/sync until that run is no longer running (at most
  // run_timeout_s + 10 s). Returns the run's record (its "result" is "ok" or "failed").
  json Sync();
  // Entries of this terminal in its ledger (read-only connection; the daemon may run).
  int64_t LedgerEntries();
  int64_t MemberBalance(const std::string& member_id);

 private:
  void WriteConfig();
  std::filesystem::path dir_;
  TerminalOptions opt_;
  std::string token_;
  uint16_t port_;
  pid_t pid_ = -1;
  std::unique_ptr<http::Client> client_;
};

// A member enrolled at HQ with one device.
struct Member {
  std::string id;
  std::string card_number;
  std::string device_seed;  // raw 32 bytes
  std::string device_public_b64;
  std::string certificate;  // raw 110 bytes
  int64_t last_code_time = 0;
};

// POST /v1/members and /devices. device_index makes the device key; store_id: where the
// member enrolled ("": none), whose terminals hold the member.
Member Enrol(HqProcess& hq, int device_index, const std::string& store_id = "S001");
// A fresh dynamic code (never the same one twice for this member).
std::string DynamicCode(Member& m);

json Basket(int64_t cents);

// HQ's balance for a member computed from its database: the sum of the points of every
// applied entry (terminals' and HQ's own; refused entries count in no balance). Read-only;
// HQ may be running.
int64_t HqEntrySum(const HqProcess& hq, const std::string& member_id);

class FaultProxy {
 public:
  FaultProxy(uint16_t upstream_port, uint64_t seed);
  ~FaultProxy();
  uint16_t port() const { return port_; }
  void set_faults(bool on) { faults_.store(on); }
  // Where new connections go from now on (a load balancer moving a terminal to another HQ
  // process); connections already open stay where they are.
  void set_upstream(uint16_t port) { upstream_.store(port); }
  int64_t cuts() const { return cuts_.load(); }

 private:
  void AcceptLoop();
  void Serve(int client_fd);

  std::atomic<uint16_t> upstream_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false}, faults_{false};
  std::atomic<int64_t> cuts_{0};
  std::mutex mu_;  // rng_ and threads_
  std::mt19937_64 rng_;
  std::thread acceptor_;
  std::vector<std::thread> threads_;
};

}  // namespace loyalty::e2e
