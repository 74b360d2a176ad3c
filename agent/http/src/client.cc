#include "loyalty/http/client.h"

#include <poll.h>

#include <chrono>
#include <optional>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace loyalty::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint32_t kResponseHeaderLimit = 64 * 1024;

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

}  // namespace

struct Client::Impl {
  std::string host;
  uint16_t port;
  size_t response_limit = 64u << 20;
  net::io_context ioc{1};
  std::optional<beast::tcp_stream> stream;  // engaged while a connection is kept
  beast::flat_buffer buffer;

  void CloseConnection() {
    if (stream) {
      error_code ec;
      stream->socket().shutdown(tcp::socket::shutdown_both, ec);
      stream->close();
      stream.reset();
    }
    buffer.consume(buffer.size());
  }

  // A kept connection the server has closed (idle timeout, shutdown) reads as EOF; any
  // other unsolicited byte means the connection is out of step. Either way, start afresh.
  bool KeptConnectionUsable() {
    if (!stream || !stream->socket().is_open() || buffer.size() != 0) return false;
    pollfd p{};
    p.fd = stream->socket().native_handle();
    p.events = POLLIN;
    int n = ::poll(&p, 1, 0);
    return n == 0;
  }

  void Run() {
    ioc.restart();
    ioc.run();
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
      if (ec) return Status::Error("unavailable", "cannot resolve " + where + ": " + ec.message());
      for (const auto& r : results) endpoints.push_back(r.endpoint());
    }
    stream.emplace(ioc);
    stream->expires_at(deadline);
    error_code connect_ec;
    stream->async_connect(endpoints, [&](error_code e, const tcp::endpoint&) { connect_ec = e; });
    Run();
    if (connect_ec) {
      stream.reset();
      if (connect_ec == beast::error::timeout) return Status::Error("timeout", "connecting to " + where + " timed out");
      return Status::Error("unavailable", "cannot connect to " + where + ": " + connect_ec.message());
    }
    stream->socket().set_option(tcp::no_delay(true), ec);
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

    stream->expires_at(deadline);
    std::function<void()> read_one = [&]() {
      parser.emplace();
      parser->header_limit(kResponseHeaderLimit);
      parser->body_limit(response_limit);
      if (head) parser->skip(true);
      bhttp::async_read(*stream, buffer, *parser, [&](error_code ec, size_t) {
        if (!ec && parser->get().result_int() < 200 && parser->get().result_int() != 101) {
          read_one();  // an interim answer (100 Continue): the real one follows
          return;
        }
        read_done = true;
        read_ec = ec;
        if (!ec && !write_done) stream->cancel();  // answered early: stop sending
      });
    };
    bhttp::async_write(*stream, req, [&](error_code ec, size_t) {
      write_done = true;
      write_ec = ec;
    });
    read_one();
    Run();

    std::string where = host + ":" + std::to_string(port);
    if (read_ec) {
      *nothing_received = !parser->got_some() && buffer.size() == 0;
      CloseConnection();
      if (read_ec == beast::error::timeout) return Status::Error("timeout", "no answer from " + where + " in time");
      if (read_ec == bhttp::error::body_limit) return Status::Error("bad_response", "response body too large");
      if (IsHttpError(read_ec) && read_ec != bhttp::error::end_of_stream &&
          read_ec != bhttp::error::partial_message) {
        return Status::Error("bad_response", "malformed response from " + where + ": " + read_ec.message());
      }
      return Status::Error("unavailable", "connection to " + where + " lost: " + read_ec.message());
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
    // A request cut short, or a server that will close: this connection is done.
    if (!write_done || write_ec || !msg.keep_alive()) CloseConnection();
    return out;
  }
};

Client::Client(std::string host, uint16_t port) : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
}

Client::~Client() { impl_->CloseConnection(); }

void Client::Close() { impl_->CloseConnection(); }

void Client::set_response_limit(size_t bytes) { impl_->response_limit = bytes; }

Result<Response> Client::Request(std::string_view method, std::string_view target, std::string_view body,
                                 HeaderList headers, int timeout_ms) {
  if (method.empty() || target.empty() ||
      target.find_first_of(std::string_view(" \t\r\n\0", 5)) != std::string_view::npos) {
    return Status::Error("bad_request", "invalid method or target");
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
      return Status::Error("bad_request", "invalid header " + name);
    }
    if (beast::iequals(name, "content-length") || beast::iequals(name, "transfer-encoding")) continue;
    req.insert(name, value);
  }
  if (!HasHeader(headers, "host")) {
    bool v6 = impl_->host.find(':') != std::string::npos;
    req.set(bhttp::field::host,
            (v6 ? "[" + impl_->host + "]" : impl_->host) + ":" + std::to_string(impl_->port));
  }
  if (!body.empty() && !HasHeader(headers, "content-type")) req.set(bhttp::field::content_type, "application/json");
  req.body() = std::string(body);
  if (!body.empty() || verb == bhttp::verb::post || verb == bhttp::verb::put || verb == bhttp::verb::patch) {
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
  if (!r.ok() && reused && nothing_received && r.status().code() == "unavailable") {
    if (Status s = impl_->Connect(deadline); !s.ok()) return s;
    r = impl_->Exchange(req, deadline, &nothing_received);
  }
  return r;
}

}  // namespace loyalty::http
