// The project's blocking HTTP/1.1 client: the sync run's transport to HQ (sync/client),
// loyaltyctl, the tests and the benchmarks all use it.
//
// It keeps one keep-alive connection and opens a new one when the server closed the old
// (checked before each request; a request whose reused connection turns out closed before
// any byte of the answer arrived is sent once more on a fresh connection, so non-idempotent
// requests should carry their own idempotency key, as the POS API's do).
//
// Over TLS (the second constructor) it verifies the server's certificate chain against
// `ca_file` and that the certificate is for the expected host name or IP address, and
// presents a client certificate when one is given (docs/tls.md).
//
// A client key is read as a secret file (owner only, no symbolic link; base/secret_file.h).
//
// Cancellation (set_cancel): when the flag becomes true, a request in flight is abandoned
// within about 50 ms (its connection closed) and returns `cancelled`; so does every later
// request. This is how a stopping daemon ends a sync run that is waiting on HQ.
//
// Thread-compatible: one thread at a time per Client. Errors are Status values:
// `unavailable` (cannot resolve or connect, TLS handshake failed or the server's
// certificate was refused, connection lost), `timeout` (no complete answer within
// timeout_ms), `bad_response` (not HTTP, or larger than the response limit),
// `invalid_argument` (the TLS files could not be loaded; see status()).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "loyalty/base/status.h"
#include "loyalty/http/message.h"

namespace loyalty::http {

struct ClientTlsOptions {
  // PEM CA certificate(s) the server's chain must end in; empty: the system's trust store.
  std::string ca_file;
  // PEM client certificate (then any intermediates) and its key, presented when the server
  // asks; both empty: none.
  std::string cert_file;
  std::string key_file;
  // The DNS name or IP address the server's certificate must carry (subjectAltName); empty:
  // the host given to the constructor. A name is also sent as SNI; an IP address is not.
  std::string server_name;
};

class Client {
 public:
  // Plain HTTP.
  Client(std::string host, uint16_t port);
  // HTTPS. The files are read here; if one cannot be loaded, status() says why and every
  // Request returns that error.
  Client(std::string host, uint16_t port, ClientTlsOptions tls);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends one request and waits for its response, at most timeout_ms for everything
  // (connect, send, receive). Host, Content-Length and, for a body, a default Content-Type
  // of application/json are added unless `headers` names them. On success `Response` holds
  // the status, Content-Type, body and every other header.
  Result<Response> Request(std::string_view method, std::string_view target,
                           std::string_view body = {}, HeaderList headers = {},
                           int timeout_ms = 10000);

  // Closes the kept connection, if any; the next request opens a new one.
  void Close();

  // Largest response body accepted (default 64 MiB).
  void set_response_limit(size_t bytes);

  // The flag that cancels requests (null: none). Must outlive the client's requests.
  void set_cancel(const std::atomic<bool>* flag);

  // Ok, or why the TLS options could not be loaded.
  const Status& status() const;

  // What went over the wire since construction or ResetCounters(). Body bytes only (not
  // headers, chunk framing or TLS records): the request body counts each time it was
  // sent in full (a resend on a fresh connection counts again), a response body when the
  // whole response was read.
  struct Counters {
    uint64_t connections = 0;          // TCP connections opened (and, over TLS, handshaken)
    uint64_t responses = 0;            // complete responses received
    uint64_t request_body_bytes = 0;   // sent
    uint64_t response_body_bytes = 0;  // received
  };
  Counters counters() const;
  void ResetCounters();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace loyalty::http
