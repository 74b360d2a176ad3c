// A small blocking HTTP/1.1 client for tests, the command line and benchmarks.
//
// It keeps one keep-alive connection and opens a new one when the server closed the old
// (checked before each request; a request whose reused connection turns out closed before
// any byte of the answer arrived is sent once more on a fresh connection, so non-idempotent
// requests should carry their own idempotency key, as the POS API's do).
//
// Thread-compatible: one thread at a time per Client. Errors are Status values:
// `unavailable` (cannot resolve or connect, connection lost), `timeout` (no complete answer
// within timeout_ms), `bad_response` (not HTTP, or larger than the response limit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "loyalty/base/status.h"
#include "loyalty/http/message.h"

namespace loyalty::http {

class Client {
 public:
  Client(std::string host, uint16_t port);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends one request and waits for its response, at most timeout_ms for everything
  // (connect, send, receive). Host, Content-Length and, for a body, a default Content-Type
  // of application/json are added unless `headers` names them. On success `Response` holds
  // the status, Content-Type, body and every other header.
  Result<Response> Request(std::string_view method, std::string_view target, std::string_view body = {},
                           HeaderList headers = {}, int timeout_ms = 10000);

  // Closes the kept connection, if any; the next request opens a new one.
  void Close();

  // Largest response body accepted (default 64 MiB).
  void set_response_limit(size_t bytes);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace loyalty::http
