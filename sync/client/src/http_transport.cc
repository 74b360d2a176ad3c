// The transport to HQ on Boost.Beast, plain or TLS. It has its own small client rather than
// loyalty::http::Client because a stopping daemon must be able to abandon a request in
// flight: the I/O runs in 50 ms slices on a private io_context and the cancel flag is
// looked at between slices, so no other thread ever touches the socket.
#include <poll.h>

#include <chrono>
#include <optional>
#include <utility>
#include <vector>

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
#include "loyalty/sync/transport.h"

namespace loyalty::sync {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

constexpr size_t kMaxResponseBytes = 8 << 20;  // PROTOCOL.md: responses ≤ 8 MiB
constexpr uint32_t kHeaderLimit = 64 * 1024;
constexpr auto kCancelSlice = std::chrono::milliseconds(50);

beast::string_view Bv(std::string_view s) { return {s.data(), s.size()}; }

Result<std::unique_ptr<ssl::context>> MakeContext(const HqEndpoint& e) {
  auto bad = [](const std::string& what, const std::string& file, const error_code& ec) {
    return Status::Error("invalid_argument", "TLS " + what + " " + file + ": " + ec.message());
  };
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  // The same TLS profile as HQ's listener (docs/tls.md).
  if (!http::ApplyIntermediateProfile(ctx->native_handle())) return Status::Error("internal", "TLS profile refused");
  error_code ec;
  if (e.ca_file.empty()) {
    if (ctx->set_default_verify_paths(ec); ec) return bad("system trust store", "", ec);
  } else if (ctx->load_verify_file(e.ca_file, ec); ec) {
    return bad("CA file", e.ca_file, ec);
  }
  ctx->set_verify_mode(ssl::verify_peer);
  // A terminal certificate signed by the same CA must not pass for HQ.
  SSL_CTX_set_purpose(ctx->native_handle(), X509_PURPOSE_SSL_SERVER);
  if (e.cert_file.empty() != e.key_file.empty()) {
    return Status::Error("invalid_argument", "TLS client certificate and key go together");
  }
  if (!e.cert_file.empty()) {
    if (ctx->use_certificate_chain_file(e.cert_file, ec); ec) return bad("certificate", e.cert_file, ec);
    // The key goes through the secret-file check (owner only, no link) on every load, and
    // OpenSSL is given the bytes that were checked, not the path again.
    auto key_pem = ReadSecretFile(e.key_file);
    if (!key_pem.ok()) return Status::Error("invalid_argument", "TLS key " + key_pem.status().message());
    ctx->use_private_key(net::buffer(*key_pem), ssl::context::pem, ec);
    OPENSSL_cleanse(key_pem->data(), key_pem->size());
    if (ec) return bad("key", e.key_file, ec);
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
      return Status::Error("invalid_argument", "TLS key " + e.key_file + " does not match " + e.cert_file);
    }
  }
  return ctx;
}

class BeastTransport final : public Transport {
 public:
  BeastTransport(HqEndpoint endpoint, std::unique_ptr<ssl::context> ctx, const std::atomic<bool>* cancel)
      : ep_(std::move(endpoint)), ctx_(std::move(ctx)), cancel_(cancel), where_(ep_.host + ":" + std::to_string(ep_.port)) {}

  ~BeastTransport() override { Close(); }

  Result<Exchange> Send(std::string_view method, std::string_view target, std::string_view content_type,
                        std::string_view body, int timeout_ms) override {
    if (Cancelled()) return CancelledStatus();
    bhttp::request<bhttp::string_body> req;
    req.version(11);
    req.method_string(Bv(method));
    req.target(Bv(ep_.base_path + std::string(target)));
    bool v6 = ep_.host.find(':') != std::string::npos;
    req.set(bhttp::field::host, (v6 ? "[" + ep_.host + "]" : ep_.host) + ":" + std::to_string(ep_.port));
    if (!body.empty() || method == "POST") {
      req.set(bhttp::field::content_type, Bv(content_type));
      req.content_length(body.size());
    }
    req.body() = std::string(body);
    req.keep_alive(true);

    auto deadline = SteadyClock::now() + std::chrono::milliseconds(std::max(timeout_ms, 1));
    bool reused = KeptConnectionUsable();
    if (!reused) {
      if (Status s = Connect(deadline); !s.ok()) return s;
    }
    bool nothing_received = false;
    auto r = Roundtrip(req, deadline, &nothing_received);
    // HQ may close a kept connection just as it is reused: the request got no answer and
    // is worth one more try on a new connection (every sync route is idempotent).
    if (!r.ok() && reused && nothing_received && r.status().code() == "unavailable") {
      if (Status s = Connect(deadline); !s.ok()) return s;
      r = Roundtrip(req, deadline, &nothing_received);
    }
    return r;
  }

  void Reset() override { Close(); }

 private:
  using TlsStream = beast::ssl_stream<beast::tcp_stream>;

  bool Cancelled() const { return cancel_ && cancel_->load(); }
  static Status CancelledStatus() { return Status::Error("cancelled", "the request to HQ was cancelled"); }

  beast::tcp_stream& Lowest() { return tls_ ? beast::get_lowest_layer(*tls_) : *tcp_; }
  bool connected() const { return tcp_.has_value() || tls_.has_value(); }

  void Close() {
    if (connected()) {
      // No close_notify: HQ reads an end of stream after a complete answer as the end of
      // the connection, and waiting for its reply would only delay a stopping daemon.
      error_code ec;
      Lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
      Lowest().close();
    }
    tls_.reset();
    tcp_.reset();
    buffer_.consume(buffer_.size());
  }

  // A kept connection HQ has closed (idle timeout, restart) reads as EOF; anything else
  // unsolicited means the connection is out of step. Either way, start afresh.
  bool KeptConnectionUsable() {
    if (!connected() || !Lowest().socket().is_open() || buffer_.size() != 0) return false;
    pollfd p{};
    p.fd = Lowest().socket().native_handle();
    p.events = POLLIN;
    return ::poll(&p, 1, 0) == 0;
  }

  // Runs the queued operations to completion. When the cancel flag is set, the connection
  // is closed (its operations complete with operation_aborted) and false is returned.
  bool Run() {
    ioc_.restart();
    while (!ioc_.stopped()) {
      ioc_.run_for(kCancelSlice);
      if (!ioc_.stopped() && Cancelled()) {
        if (connected()) {
          error_code ec;
          Lowest().socket().close(ec);
        }
        ioc_.run();  // the aborted handlers
        Close();
        return false;
      }
    }
    return !Cancelled();
  }

  Status Connect(SteadyClock::time_point deadline) {
    Close();
    error_code ec;
    std::vector<tcp::endpoint> endpoints;
    net::ip::address address = net::ip::make_address(ep_.host, ec);
    if (!ec) {
      endpoints.emplace_back(address, ep_.port);
    } else {
      // Name resolution is blocking; it is local (hosts file or the store's resolver).
      tcp::resolver resolver(ioc_);
      auto results = resolver.resolve(ep_.host, std::to_string(ep_.port), ec);
      if (ec) return Status::Error("unavailable", "cannot resolve " + where_ + ": " + ec.message());
      for (const auto& r : results) endpoints.push_back(r.endpoint());
    }
    tcp_.emplace(ioc_);
    tcp_->expires_at(deadline);
    error_code connect_ec;
    tcp_->async_connect(endpoints, [&](error_code e, const tcp::endpoint&) { connect_ec = e; });
    if (!Run()) return CancelledStatus();
    if (connect_ec) {
      Close();
      if (connect_ec == beast::error::timeout) return Status::Error("timeout", "connecting to " + where_ + " timed out");
      return Status::Error("unavailable", "cannot connect to " + where_ + ": " + connect_ec.message());
    }
    tcp_->socket().set_option(tcp::no_delay(true), ec);
    if (!ctx_) return Status::Ok();

    tls_.emplace(std::move(*tcp_), *ctx_);
    tcp_.reset();
    SSL* s = tls_->native_handle();
    net::ip::make_address(ep_.host, ec);
    if (!ec) {
      // An IP address is checked against iPAddress names; SNI carries host names only.
      if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), ep_.host.c_str()) != 1) {
        Close();
        return Status::Error("invalid_argument", "cannot verify HQ against address " + ep_.host);
      }
    } else if (SSL_set1_host(s, ep_.host.c_str()) != 1 || SSL_set_tlsext_host_name(s, ep_.host.c_str()) != 1) {
      Close();
      return Status::Error("invalid_argument", "cannot verify HQ against name " + ep_.host);
    }
    beast::get_lowest_layer(*tls_).expires_at(deadline);
    error_code hs_ec;
    tls_->async_handshake(ssl::stream_base::client, [&](error_code e) { hs_ec = e; });
    if (!Run()) return CancelledStatus();
    if (hs_ec) {
      long verify = SSL_get_verify_result(s);
      std::string why = verify != X509_V_OK
                            ? std::string("HQ's certificate refused: ") + X509_verify_cert_error_string(verify)
                            : hs_ec.message();
      Close();
      if (hs_ec == beast::error::timeout) return Status::Error("timeout", "TLS handshake with " + where_ + " timed out");
      return Status::Error("unavailable", "TLS handshake with " + where_ + " failed: " + why);
    }
    return Status::Ok();
  }

  // Writes the request while reading the answer: HQ may answer before it has read the
  // whole body (413) and close; that answer must still be seen.
  Result<Exchange> Roundtrip(bhttp::request<bhttp::string_body>& req, SteadyClock::time_point deadline,
                             bool* nothing_received) {
    *nothing_received = true;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(kMaxResponseBytes);
    bool write_done = false, read_done = false;
    error_code write_ec, read_ec;
    Lowest().expires_at(deadline);
    auto go = [&](auto& stream) {
      bhttp::async_write(stream, req, [&](error_code ec, size_t) {
        write_done = true;
        write_ec = ec;
      });
      bhttp::async_read(stream, buffer_, parser, [&](error_code ec, size_t) {
        read_done = true;
        read_ec = ec;
        if (!ec && !write_done) Lowest().cancel();  // answered early: stop sending
      });
    };
    if (tls_) {
      go(*tls_);
    } else {
      go(*tcp_);
    }
    if (!Run()) return CancelledStatus();
    if (!read_done || read_ec) {
      *nothing_received = !parser.got_some() && buffer_.size() == 0;
      Close();
      if (read_ec == beast::error::timeout) return Status::Error("timeout", "no answer from " + where_ + " in time");
      if (read_ec == bhttp::error::body_limit) return Status::Error("bad_response", "HQ's response is over 8 MiB");
      if (read_ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
          read_ec != bhttp::error::end_of_stream && read_ec != bhttp::error::partial_message) {
        return Status::Error("bad_response", "malformed response from " + where_ + ": " + read_ec.message());
      }
      return Status::Error("unavailable", "connection to " + where_ + " lost: " + read_ec.message());
    }
    *nothing_received = false;
    auto msg = parser.release();
    Exchange out;
    out.status = static_cast<int>(msg.result_int());
    out.content_type = std::string(msg[bhttp::field::content_type]);
    out.body = std::move(msg.body());
    if (!write_done || write_ec || !msg.keep_alive()) Close();
    return out;
  }

  HqEndpoint ep_;
  std::unique_ptr<ssl::context> ctx_;  // null: plain HTTP
  const std::atomic<bool>* cancel_;
  std::string where_;
  net::io_context ioc_{1};
  std::optional<beast::tcp_stream> tcp_;  // plain: engaged while a connection is kept
  std::optional<TlsStream> tls_;          // TLS: engaged while a connection is kept
  beast::flat_buffer buffer_;
};

}  // namespace

Result<std::unique_ptr<Transport>> NewHqTransport(HqEndpoint endpoint, const std::atomic<bool>* cancel) {
  std::unique_ptr<ssl::context> ctx;
  if (endpoint.tls) {
    auto c = MakeContext(endpoint);
    if (!c.ok()) return c.status();
    ctx = std::move(*c);
  }
  return std::unique_ptr<Transport>(std::make_unique<BeastTransport>(std::move(endpoint), std::move(ctx), cancel));
}

std::unique_ptr<Transport> NewHttpTransport(std::string host, uint16_t port, std::string base_path) {
  HqEndpoint e;
  e.host = std::move(host);
  e.port = port;
  e.base_path = std::move(base_path);
  e.tls = false;
  return NewHqTransport(std::move(e)).value();  // plain HTTP loads no files: cannot fail
}

std::string UrlEncode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace loyalty::sync
