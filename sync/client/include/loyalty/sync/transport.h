// How a sync run reaches HQ: one request, one response, within a deadline.
//
// The run (run.h) talks to a Transport so that tests can put faults between the terminal
// and HQ (cut connections, delays, duplicated requests) and so that the TLS client drops in
// without touching the run. Byte counts are body bytes only (no headers, before TLS), the
// figures GET /v1/sync reports.
//
// Thread-compatible: one run uses a Transport from one thread at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "loyalty/base/status.h"

namespace loyalty::sync {

struct Exchange {
  int status = 0;
  std::string content_type;
  std::string body;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Sends one request to HQ (target relative to HQ's base URL, e.g.
  // "/v1/sync/T01/hello") and waits at most timeout_ms for the whole answer. Errors:
  // unavailable (cannot connect, connection lost, TLS handshake failed or HQ's
  // certificate refused), timeout, bad_response (not HTTP, too large), cancelled (the
  // transport's cancel flag was set while the request was in flight). Any HTTP status is
  // a successful Exchange.
  virtual Result<Exchange> Send(std::string_view method, std::string_view target,
                                std::string_view content_type, std::string_view body,
                                int timeout_ms) = 0;
  // Drops the kept connection after an error, so the next Send starts clean.
  virtual void Reset() {}
  // The request body bytes this transport has written to HQ in full so far (a request whose
  // connection or handshake failed wrote none), for a run's bytes_sent; nullopt when the
  // transport cannot tell (then every attempt's body counts).
  virtual std::optional<int64_t> BodyBytesWritten() const { return std::nullopt; }
};

// Where HQ is and how to trust it (agent.toml [hq]).
struct HqEndpoint {
  std::string host;  // IP literal (without brackets) or DNS name
  uint16_t port = 443;
  std::string base_path;  // "" or "/prefix" without a trailing slash
  bool tls = true;        // false: plain HTTP (config allows it to loopback only)
  // TLS: HQ's certificate must chain to ca_file (empty: the system's trust store) and name
  // `host` (a DNS name in subjectAltName, or an IP address as an iPAddress entry).
  std::string ca_file;
  // TLS: this terminal's client certificate and key (both or neither). HQ requires one
  // whose CN is the terminal id; the transport does not check the CN itself. key_file is
  // read with ReadSecretFile (loyalty/base/secret_file.h): owner-only, no symbolic link.
  std::string cert_file, key_file;
};

// HTTP/1.1 with keep-alive over plain TCP or TLS 1.2+, responses limited to 8 MiB
// (PROTOCOL.md). The TLS files are loaded here: invalid_argument names the file that could
// not be used.
//
// `cancel` (may be null; must outlive the transport): when it becomes true, a request in
// flight is abandoned within about 50 ms (its connection closed) and Send returns
// `cancelled`; so does every later Send. This is how a stopping daemon ends a run that is
// waiting on HQ.
Result<std::unique_ptr<Transport>> NewHqTransport(HqEndpoint endpoint,
                                                  const std::atomic<bool>* cancel = nullptr);

// Plain HTTP to host:port (no cancellation): NewHqTransport with tls = false.
std::unique_ptr<Transport> NewHttpTransport(std::string host, uint16_t port, std::string base_path);

}  // namespace loyalty::sync
