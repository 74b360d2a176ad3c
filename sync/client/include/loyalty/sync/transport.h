// How a sync run reaches HQ: one request, one response, within a deadline.
//
// The run (run.h) talks to a Transport so that tests can put faults between the terminal
// and HQ (cut connections, delays, duplicated requests) and so that the TLS client drops in
// without touching the run. Byte counts are body bytes only (no headers, before TLS), the
// figures GET /v1/sync reports.
//
// Thread-compatible: one run uses a Transport from one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
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
  // unavailable (cannot connect, connection lost), timeout, bad_response (not HTTP, too
  // large). Any HTTP status is a successful Exchange.
  virtual Result<Exchange> Send(std::string_view method, std::string_view target, std::string_view content_type,
                                std::string_view body, int timeout_ms) = 0;
  // Drops the kept connection after an error, so the next Send starts clean.
  virtual void Reset() {}
};

// Plain HTTP/1.1 with keep-alive (loyalty::http::Client). For HQ on loopback (demos,
// tests) until the TLS client is wired in; responses are limited to 8 MiB (PROTOCOL.md).
std::unique_ptr<Transport> NewHttpTransport(std::string host, uint16_t port, std::string base_path);

// Percent-encodes everything but RFC 3986 unreserved characters (for the cursor query).
std::string UrlEncode(std::string_view s);

}  // namespace loyalty::sync
