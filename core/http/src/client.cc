#include "loyalty/http/client.h"

#include <poll.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>

#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "loyalty/base/secret_file.h"
#include "loyalty/http/tls_profile.h"

namespace loyalty::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint32_t kResponseHeaderLimit = 64 * 1024;
constexpr auto kCancelSlice = std::chrono::milliseconds(50);

Status CancelledStatus() {
  return Status::Error(ErrorCode::kCancelled, "the request was cancelled");
}

// Beast in Boost 1.74 speaks boost::string_view.
beast::string_view Bv(std::string_view s) { return {s.data(), s.size()}; }

bool HasHeader(const HeaderList& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, Bv(name))) return true;
  }
  return false;
}

bool IsHttpError(const error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category();
}

Result<std::unique_ptr<ssl::context>> MakeClientContext(const ClientTlsOptions& o) {
  auto bad = [](const std::string& what, const std::string& file, const error_code& ec) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "TLS " + what + " " + file + ": " + PemFileReason(file, ec.message()));
  };
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  if (!ApplyIntermediateProfile(ctx->native_handle()))
    return Status::Error(ErrorCode::kInternal, "TLS profile refused");
  error_code ec;
  if (o.ca_file.empty()) {
    if (ctx->set_default_verify_paths(ec); ec) return bad("system trust store", "", ec);
  } else if (ctx->load_verify_file(o.ca_file, ec); ec) {
    return bad("CA", o.ca_file, ec);
  }
  ctx->set_verify_mode(ssl::verify_peer);
  // A terminal's client certificate, signed by the same CA, must not pass for HQ.
  SSL_CTX_set_purpose(ctx->native_handle(), X509_PURPOSE_SSL_SERVER);
  if (o.cert_file.empty() != o.key_file.empty()) {
    return Status::Error(ErrorCode::kInvalidArgument, "TLS client certificate and key go together");
  }
  if (!o.cert_file.empty()) {
    if (ctx->use_certificate_chain_file(o.cert_file, ec); ec)
      return bad("certificate", o.cert_file, ec);
    // The key goes through the secret-file check (owner only, no link) and OpenSSL is given
    // the bytes that were checked, not the path again.
    auto key_pem = ReadSecretFile(o.key_file);
    if (!key_pem.ok())
      return Status::Error(ErrorCode::kInvalidArgument, "TLS key " + key_pem.status().message());
    ctx->use_private_key(net::buffer(*key_pem), ssl::context::pem, ec);
    OPENSSL_cleanse(key_pem->data(), key_pem->size());
    if (ec) return bad("key", o.key_file, ec);
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
      return Status::Error(ErrorCode::kInvalidArgument,
                           "TLS key " + o.key_file + " does not match " + o.cert_file);
    }
  }
  return ctx;
}

}  // namespace

struct Client::Impl {
  using TlsStream = beast::ssl_stream<beast::tcp_stream>;

  std::string host;
  uint16_t port;
  size_t response_limit = 64u << 20;
  const std::atomic<bool>* cancel = nullptr;  // set_cancel
  bool cancelled = false;                     // Run() abandoned the operations
  net::io_context ioc{1};
  Status status;                            // why the TLS options could not be loaded
  std::unique_ptr<ssl::context> ssl_ctx;    // set for HTTPS
  std::string server_name;                  // HTTPS: what the certificate must name
  std::optional<beast::tcp_stream> stream;  // plain: engaged while a connection is kept
  std::optional<TlsStream> tls_stream;      // HTTPS: engaged while a connection is kept
  beast::flat_buffer buffer;
  Counters counters;

  bool connected() const { return stream.has_value() || tls_stream.has_value(); }

  beast::tcp_stream& Lowest() {
    return tls_stream ? beast::get_lowest_layer(*tls_stream) : *stream;
  }

  // Calls f with the kept connection's stream, whatever its type.
  template <class F>
  void WithStream(F&& f) {
    if (tls_stream) {
      f(*tls_stream);
    } else {
      f(*stream);
    }
  }

  void CloseConnection() {
    if (connected()) {
      // No TLS close_notify: the server treats an end of stream after a complete answer
      // as the end of the connection, and waiting for its reply could only delay us.
      error_code ec;
      Lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
      Lowest().close();
      tls_stream.reset();
      stream.reset();
    }
    buffer.consume(buffer.size());
  }

  // A kept connection the server has closed (idle timeout, shutdown) reads as EOF; any
  // other unsolicited byte means the connection is out of step. Either way, start afresh.
  bool KeptConnectionUsable() {
    if (!connected() || !Lowest().socket().is_open() || buffer.size() != 0) return false;
    pollfd p{};
    p.fd = Lowest().socket().native_handle();
    p.events = POLLIN;
    int n = ::poll(&p, 1, 0);
    return n == 0;
  }

  bool Cancelled() const { return cancel != nullptr && cancel->load(); }

  // Runs the queued operations to completion. With a cancel flag, in slices: when the flag
  // is set the connection is closed (its operations complete aborted), `cancelled` is
  // latched for the caller, and the operations' own results are to be ignored.
  void Run() {
    ioc.restart();
    if (cancel == nullptr) {
      ioc.run();
      return;
    }
    while (!ioc.stopped()) {
      ioc.run_for(kCancelSlice);
      if (!ioc.stopped() && Cancelled()) {
        if (connected()) {
          error_code ec;
          Lowest().socket().close(ec);
        }
        ioc.run();  // the aborted handlers
        cancelled = true;
        return;
      }
    }
  }

  // After Run(): whether the request was abandoned; if so the connection is dropped.
  bool TakeCancelled() {
    if (!cancelled && !Cancelled()) return false;
    cancelled = false;
    CloseConnection();
    return true;
  }

  Status Connect(Clock::time_point deadline) {
    CloseConnection();
    std::string where = host + ":" + std::to_string(port);
    error_code ec;
    std::vector<tcp::endpoint> endpoints;
    net::ip::address address = net::ip::make_address(host, ec);
    if (!ec) {
      endpoints.emplace_back(address, port);
    } else {
      tcp::resolver resolver(ioc);
      auto results = resolver.resolve(host, std::to_string(port), ec);
      if (ec)
        return Status::Error(ErrorCode::kUnavailable,
                             "cannot resolve " + where + ": " + ec.message());
      for (const auto& r : results) endpoints.push_back(r.endpoint());
    }
    stream.emplace(ioc);
    stream->expires_at(deadline);
    error_code connect_ec;
    stream->async_connect(endpoints, [&](error_code e, const tcp::endpoint&) { connect_ec = e; });
    Run();
    if (TakeCancelled()) return CancelledStatus();
    if (connect_ec) {
      stream.reset();
      if (connect_ec == beast::error::timeout)
        return Status::Error(ErrorCode::kTimeout, "connecting to " + where + " timed out");
      return Status::Error(ErrorCode::kUnavailable,
                           "cannot connect to " + where + ": " + connect_ec.message());
    }
    stream->socket().set_option(tcp::no_delay(true), ec);
    ++counters.connections;
    if (!ssl_ctx) return Status::Ok();
    return Handshake(deadline);
  }

  Status Handshake(Clock::time_point deadline) {
    std::string where = host + ":" + std::to_string(port);
    tls_stream.emplace(std::move(*stream), *ssl_ctx);
    stream.reset();
    SSL* ssl = tls_stream->native_handle();
    error_code ec;
    net::ip::make_address(server_name, ec);
    if (!ec) {
      // An IP address is checked against the certificate's iPAddress names; SNI carries
      // host names only (RFC 6066).
      if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name.c_str()) != 1) {
        CloseConnection();
        return Status::Error(ErrorCode::kInvalidArgument,
                             "cannot verify against address " + server_name);
      }
    } else if (SSL_set1_host(ssl, server_name.c_str()) != 1 ||
               SSL_set_tlsext_host_name(ssl, server_name.c_str()) != 1) {
      CloseConnection();
      return Status::Error(ErrorCode::kInvalidArgument,
                           "cannot verify against name " + server_name);
    }
    beast::get_lowest_layer(*tls_stream).expires_at(deadline);
    error_code hs_ec;
    tls_stream->async_handshake(ssl::stream_base::client, [&](error_code e) { hs_ec = e; });
    Run();
    if (TakeCancelled()) return CancelledStatus();
    if (hs_ec) {
      long verify = SSL_get_verify_result(ssl);
      std::string why = verify != X509_V_OK ? std::string("server certificate refused: ") +
                                                  X509_verify_cert_error_string(verify)
                                            : hs_ec.message();
      CloseConnection();
      if (hs_ec == beast::error::timeout)
        return Status::Error(ErrorCode::kTimeout, "TLS handshake with " + where + " timed out");
      return Status::Error(ErrorCode::kUnavailable,
                           "TLS handshake with " + where + " failed: " + why);
    }
    return Status::Ok();
  }

  // Writes the request and reads the answer at the same time: a server may answer before
  // it has read the whole body (413) and close; the answer must still be seen.
  Result<Response> Exchange(bhttp::request<bhttp::string_body>& req, Clock::time_point deadline,
                            bool* nothing_received) {
    *nothing_received = true;
    std::optional<bhttp::response_parser<bhttp::string_body>> parser;
    bool head = req.method() == bhttp::verb::head;
    bool write_done = false;
    bool read_done = false;
    error_code write_ec;
    error_code read_ec;

    Lowest().expires_at(deadline);
    WithStream([&](auto& s) {
      auto finish = [&](error_code ec) {
        read_done = true;
        read_ec = ec;
        if (!ec && !write_done) Lowest().cancel();  // answered early: stop sending
      };
      std::function<void()> read_one = [&]() {
        parser.emplace();
        parser->header_limit(kResponseHeaderLimit);
        parser->body_limit(response_limit);
        if (head) parser->skip(true);
        // The head first: Beast 1.74 does not apply body_limit to a response whose
        // Content-Length arrives in the same read as body bytes, so the declared length is
        // checked here, before any of the body is taken.
        bhttp::async_read_header(s, buffer, *parser, [&](error_code ec, size_t) {
          if (!ec && parser->get().result_int() < 200 && parser->get().result_int() != 101) {
            read_one();  // an interim answer (100 Continue): the real one follows
            return;
          }
          if (!ec) {
            auto length = parser->content_length();
            if (length && *length > response_limit) ec = bhttp::error::body_limit;
          }
          if (ec || parser->is_done()) {
            finish(ec);
            return;
          }
          bhttp::async_read(s, buffer, *parser, [&](error_code ec2, size_t) { finish(ec2); });
        });
      };
      bhttp::async_write(s, req, [&](error_code ec, size_t) {
        write_done = true;
        write_ec = ec;
      });
      read_one();
      Run();
    });
    if (TakeCancelled()) return CancelledStatus();
    if (write_done && !write_ec) counters.request_body_bytes += req.body().size();

    std::string where = host + ":" + std::to_string(port);
    if (read_ec) {
      *nothing_received = !parser->got_some() && buffer.size() == 0;
      CloseConnection();
      if (read_ec == beast::error::timeout)
        return Status::Error(ErrorCode::kTimeout, "no answer from " + where + " in time");
      if (read_ec == bhttp::error::body_limit)
        return Status::Error(ErrorCode::kBadResponse, "response body too large");
      if (IsHttpError(read_ec) && read_ec != bhttp::error::end_of_stream &&
          read_ec != bhttp::error::partial_message) {
        return Status::Error(ErrorCode::kBadResponse,
                             "malformed response from " + where + ": " + read_ec.message());
      }
      return Status::Error(ErrorCode::kUnavailable,
                           "connection to " + where + " lost: " + read_ec.message());
    }
    *nothing_received = false;
    bhttp::response<bhttp::string_body> msg = parser->release();
    Response out;
    out.status = static_cast<int>(msg.result_int());
    out.content_type = std::string(msg[bhttp::field::content_type]);
    for (const auto& f : msg) {
      if (f.name() == bhttp::field::content_type) continue;
      out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    out.body = std::move(msg.body());
    ++counters.responses;
    counters.response_body_bytes += out.body.size();
    // A request cut short, or a server that will close: this connection is done.
    if (!write_done || write_ec || !msg.keep_alive()) CloseConnection();
    return out;
  }
};

Client::Client(std::string host, uint16_t port) : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
}

Client::Client(std::string host, uint16_t port, ClientTlsOptions tls)
    : Client(std::move(host), port) {
  impl_->server_name = tls.server_name.empty() ? impl_->host : tls.server_name;
  auto ctx = MakeClientContext(tls);
  if (ctx.ok()) {
    impl_->ssl_ctx = std::move(*ctx);
  } else {
    impl_->status = ctx.status();
  }
}

Client::~Client() { impl_->CloseConnection(); }

const Status& Client::status() const { return impl_->status; }

Client::Counters Client::counters() const { return impl_->counters; }

void Client::ResetCounters() { impl_->counters = Counters{}; }

void Client::Close() { impl_->CloseConnection(); }

void Client::set_response_limit(size_t bytes) { impl_->response_limit = bytes; }

void Client::set_cancel(const std::atomic<bool>* flag) { impl_->cancel = flag; }

Result<Response> Client::Request(std::string_view method, std::string_view target,
                                 std::string_view body, HeaderList headers, int timeout_ms) {
  if (!impl_->status.ok()) return impl_->status;
  if (impl_->Cancelled()) return CancelledStatus();
  if (method.empty() || target.empty() ||
      target.find_first_of(std::string_view(" \t\r\n\0", 5)) != std::string_view::npos) {
    return Status::Error(ErrorCode::kBadRequest, "invalid method or target");
  }
  bhttp::request<bhttp::string_body> req;
  req.version(11);
  bhttp::verb verb = bhttp::string_to_verb(Bv(method));
  if (verb == bhttp::verb::unknown) {
    req.method_string(Bv(method));
  } else {
    req.method(verb);
  }
  req.target(Bv(target));
  for (auto& [name, value] : headers) {
    if (name.empty() || name.find_first_of(":\r\n") != std::string::npos ||
        value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return Status::Error(ErrorCode::kBadRequest, "invalid header " + name);
    }
    if (beast::iequals(name, "content-length") || beast::iequals(name, "transfer-encoding"))
      continue;
    req.insert(name, value);
  }
  if (!HasHeader(headers, "host")) {
    bool v6 = impl_->host.find(':') != std::string::npos;
    req.set(bhttp::field::host,
            (v6 ? "[" + impl_->host + "]" : impl_->host) + ":" + std::to_string(impl_->port));
  }
  if (!body.empty() && !HasHeader(headers, "content-type"))
    req.set(bhttp::field::content_type, "application/json");
  req.body() = std::string(body);
  if (!body.empty() || verb == bhttp::verb::post || verb == bhttp::verb::put ||
      verb == bhttp::verb::patch) {
    req.content_length(body.size());
  }
  req.keep_alive(true);

  auto deadline = Clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 1));
  bool reused = impl_->KeptConnectionUsable();
  if (!reused) {
    if (Status s = impl_->Connect(deadline); !s.ok()) return s;
  }
  bool nothing_received = false;
  auto r = impl_->Exchange(req, deadline, &nothing_received);
  // The server may close a kept connection just as we reuse it; then the request never got
  // an answer and is worth one more try on a new connection.
  if (!r.ok() && reused && nothing_received && r.status().code() == ErrorCode::kUnavailable) {
    if (Status s = impl_->Connect(deadline); !s.ok()) return s;
    r = impl_->Exchange(req, deadline, &nothing_received);
  }
  return r;
}

}  // namespace loyalty::http
