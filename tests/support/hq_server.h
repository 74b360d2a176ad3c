// HQ in process: the real HqService over a real SQLite file, served by the real HTTP server
// on a loopback port from a thread of its own, wired as loyalty-hq wires them (hq/src/main.cc):
// a 1 MiB body limit and, with TLS, client certificates asked for and a terminal route
// refused unless one verified for that terminal was presented. For tests of the terminal's
// sync client against HQ over real HTTP(S), with HQ's state in reach.
//
// Thread-safety: the service runs on the server's thread; Admin() may be called from any
// one thread at a time (it goes over HTTP like any client).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "loyalty/base/clock.h"
#include "loyalty/rules/rules.h"
#include "support/http_reply.h"
#include "support/pki.h"

namespace loyalty::testing {

struct InProcessHqOptions {
  // Set: HTTPS with the PKI's server certificate, its CA trusted for client certificates.
  // Null: plain HTTP, where a terminal route trusts the terminal id it names.
  const TestPki* pki = nullptr;
  // HQ's clock (must outlive the HQ; read from the server's thread). Null: the system clock.
  const Clock* clock = nullptr;
  std::string admin_token = "test-admin-token";
  std::optional<rules::Rules> rules;  // nullopt: the default rules
};

class InProcessHq {
 public:
  // Opens (or creates) <dir>/hq.db and starts serving; fails the test if it cannot.
  InProcessHq(std::filesystem::path dir, InProcessHqOptions options);
  // Stops the server (requests in flight are answered) and closes the database.
  ~InProcessHq();
  InProcessHq(const InProcessHq&) = delete;
  InProcessHq& operator=(const InProcessHq&) = delete;

  uint16_t port() const;
  bool tls() const { return opt_.pki != nullptr; }
  std::string db_path() const { return (dir_ / "hq.db").string(); }

  // An admin route with the bearer token (over TLS: no client certificate, as an operator).
  HttpReply Admin(const std::string& method, const std::string& target,
                  const nlohmann::json& body = nullptr);
  // POST /v1/members; the new member's id.
  std::string CreateMember(const std::string& phone = "13812345678");
  // GET /v1/members/{id} (200 expected).
  nlohmann::json Member(const std::string& member_id);
  // GET /v1/terminals/{id}; an empty object when HQ never saw the terminal (404).
  nlohmann::json Terminal(const std::string& terminal_id);

 private:
  struct Loop;
  std::filesystem::path dir_;
  InProcessHqOptions opt_;
  std::unique_ptr<Loop> loop_;
};

}  // namespace loyalty::testing
