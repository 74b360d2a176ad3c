// An HTTP/1.1 server on Boost.Beast: keep-alive, pipelined requests answered in order, and a
// limit or a deadline on everything a client controls (docs/http.md).
//
// Threading: the server and all its connections run on the io_context passed in, which the
// owner runs on one thread (the event loop). The Handler is called on that thread. Each
// request gets a Responder that must be called exactly once, from any thread, now or later
// (long-poll, work finished on another thread); the connection stays open until then and
// the response is written on the event loop. Later calls of a Responder are ignored; a
// Responder dropped without being called answers 500 `internal`. A Responder must not
// outlive the io_context. A Handler that throws
// gets 500 `internal` (nothing is logged here: errors are the caller's to log).
//
// Lifetime: construct, Listen(), run the io_context. Stop() then wait for on_drained
// before stopping the io_context. Destroy the Server on the event-loop thread or after the
// io_context has stopped running; connections still open then are closed when the
// io_context is destroyed or run again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "loyalty/base/status.h"
#include "loyalty/http/message.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace loyalty::http {
namespace internal {
struct ServerCore;
}  // namespace internal

using Responder = std::function<void(Response)>;
using Handler = std::function<void(Request&&, Responder)>;

// Whether a TLS listener asks clients for a certificate (docs/tls.md).
enum class ClientCertMode {
  kNone,     // not asked; Request::peer_cn is always empty
  kRequest,  // asked, not required: the handshake succeeds without one or with one that
             // fails verification; then peer_cn is empty (and peer_cert_error says why).
             // For a listener where some routes take a token instead (HQ's admin routes).
  kRequire,  // a certificate verified against client_ca_file is required: the handshake
             // fails without one, or with an untrusted, expired or unusable one
};

struct TlsServerOptions {
  std::string cert_chain_file;  // PEM: the server certificate, then any intermediates
  std::string key_file;         // PEM private key of that certificate
  std::string client_ca_file;   // PEM CA certificate(s) client certificates must chain to
  ClientCertMode client_certs = ClientCertMode::kRequest;  // kNone needs no client_ca_file
  // PEM certificate revocation lists, one per CA of client_ca_file, each signed by its CA
  // and not past its nextUpdate. Set: a client certificate on a list is refused at the
  // handshake, in kRequest mode too (other verification failures there still only leave
  // peer_cn empty). Loaded by Listen(), again by Server::ReloadCrl(). Empty: no CRL.
  std::string crl_file = {};
};

struct ServerOptions {
  std::string host = "127.0.0.1";   // an IP literal or a name resolved once at Listen()
  uint16_t port = 8787;             // 0 → an ephemeral port, see Server::port()
  size_t body_limit = 1 << 20;      // larger → 413 body_too_large, then close
  size_t header_limit = 16 * 1024;  // request line + headers; larger → 400 bad_request, close
  int read_timeout_ms = 10000;      // from a request's first byte to its last; then dropped
  int write_timeout_ms = 10000;     // to write one response; then dropped
  int idle_timeout_ms = 30000;      // keep-alive connection between requests; then closed
  // Before a connection has sent anything useful it gets little (docs/http.md, "Deadlines"):
  // TLS: from accept to the end of the handshake; then dropped without an answer.
  int handshake_timeout_ms = 5000;
  // To a complete request head (request line and headers): for a connection's first
  // request from accept (plain) or the end of the handshake (TLS), for a later one from its
  // first byte. Then dropped without an answer (a client dribbling its head byte by byte).
  int header_timeout_ms = 5000;
  // At the cap, a new connection closes the connection idle longest that has no request in
  // progress (docs/http.md, "At the connection cap"); only when every connection has a
  // request in progress is it answered 503 unavailable and closed.
  size_t max_connections = 256;
  // At most this many connections from one client (0: no limit): an IPv4 address, or an
  // IPv6 /64 (ConnectionLimitKey in address.h). A new one beyond it closes that client's
  // own longest-idle connection, or is refused with 503.
  size_t max_connections_per_address = 0;
  // After Stop(), connections still busy this long after are closed without an answer and
  // on_drained is called anyway; 0 waits forever. The daemon must exit within 5 s of
  // SIGTERM, so handlers that hold a request (long-poll) should answer early on Stop.
  int drain_timeout_ms = 4000;
  // Called when a request's head is complete and a body is to come. False: the handler is
  // given the request without its body at once (to refuse it: a missing token), the body
  // is never read and the connection closes after the answer — a client without
  // credentials cannot hold a request in progress by trickling a body (docs/http.md, "At
  // the connection cap"). Unset: every body is read.
  std::function<bool(const Request& head)> may_read_body;
  // Set: the listener speaks only TLS (1.2 or 1.3, the profile of tls_profile.h), the files
  // are loaded by Listen(). The handshake runs under handshake_timeout_ms from accept; TLS
  // sessions are not resumed, so every connection's client certificate is verified afresh
  // (against the CRL loaded last). Unset: plain HTTP.
  std::optional<TlsServerOptions> tls;
};

class Server {
 public:
  // `ioc` must outlive the Server and every connection it accepted.
  Server(boost::asio::io_context& ioc, ServerOptions options, Handler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens, then accepts on the io_context. `unavailable` if the address cannot
  // be resolved or bound (e.g. already in use); `invalid_argument` if options.tls names a
  // file that cannot be read, is not PEM, or a key that does not match its certificate.
  // Call once, before running the io_context or on its thread.
  Status Listen();

  // The bound port (the ephemeral one when options.port was 0); 0 before Listen().
  uint16_t port() const;

  // Stops accepting (new connections are refused by the OS), lets requests in flight finish
  // and be written (with `Connection: close`), closes idle keep-alive connections, then
  // calls on_drained on the io_context. Safe from any thread; a second call only adds its
  // callback.
  void Stop(std::function<void()> on_drained);

  // True once Stop() has been called (any thread). Lets handlers end long-polls early.
  bool stopping() const;

  // Re-reads TlsServerOptions::crl_file (and client_ca_file) and, when both are valid,
  // verifies the handshakes that start from now on against them; otherwise keeps the lists
  // in use and returns `invalid_argument` naming the file and the reason. The number of
  // revoked certificates listed on success. Call on the event loop (e.g. from SIGHUP).
  Result<size_t> ReloadCrl();

  // Connections accepted and not yet closed, not counting those refused over the cap.
  // Safe from any thread.
  size_t active_connections() const;

  // Connections closed so far to admit a new one (over max_connections or
  // max_connections_per_address). Safe from any thread.
  uint64_t evicted_connections() const;

  // Connections refused so far because every open one had a request in progress (answered
  // 503, or closed at once past as many refusals in flight). Safe from any thread.
  uint64_t refused_connections() const;

 private:
  std::shared_ptr<internal::ServerCore> core_;  // shared with the connections it accepted
};

}  // namespace loyalty::http
