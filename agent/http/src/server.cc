#include "loyalty/http/server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace loyalty::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using boost::system::error_code;

namespace {

// The first read of a request waits under the idle deadline; it takes what is there.
constexpr size_t kFirstReadBytes = 4096;
// After answering and half-closing, unread client bytes are read and dropped for a while
// before the socket is closed: closing with unread data makes the kernel send RST, and an
// RST can destroy the answer in the client's receive buffer before the client reads it
// (typical for 413: the client is still sending the body it was refused for).
constexpr int kLingerMs = 1000;
constexpr size_t kLingerBytes = 8u << 20;

std::chrono::milliseconds Ms(int ms) { return std::chrono::milliseconds(std::max(ms, 1)); }

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsSafeHeader(const std::string& name, const std::string& value) {
  if (name.empty() || !std::all_of(name.begin(), name.end(), IsTokenChar)) return false;
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos;
}

// Beast in Boost 1.74 speaks boost::string_view.
beast::string_view Bv(std::string_view s) { return {s.data(), s.size()}; }
bool IEquals(std::string_view a, std::string_view b) { return beast::iequals(Bv(a), Bv(b)); }

// The subject CN of a verified certificate. More than one CN is ambiguous and a CN with a
// control character or NUL cannot be compared safely: both give "" (no identity).
std::string SubjectCn(X509* cert) {
  X509_NAME* name = X509_get_subject_name(cert);
  if (name == nullptr) return {};
  int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (i < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0) return {};
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
  if (n <= 0) return {};
  std::string cn(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  for (unsigned char c : cn) {
    if (c < 0x20 || c == 0x7f) return {};
  }
  return cn;
}

std::string SslErrorText(const error_code& ec) {
  std::string text = ec.message();
  return text.empty() ? "unknown TLS error" : text;
}

// In kRequest mode a failed verification must not end the handshake: the request goes on
// without an identity, and the route decides (admin routes take a token). OpenSSL still
// records the failure, read back with SSL_get_verify_result after the handshake.
int AcceptAnyVerifyResult(int /*preverify_ok*/, X509_STORE_CTX* /*ctx*/) { return 1; }

Result<std::shared_ptr<ssl::context>> MakeServerContext(const TlsServerOptions& o) {
  auto bad = [](const std::string& what, const std::string& file, const error_code& ec) {
    return Status::Error("invalid_argument", "TLS " + what + " " + file + ": " + SslErrorText(ec));
  };
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  // No resumption: every connection's client certificate is verified again (an expired
  // or newly untrusted certificate is refused at once), and TLS 1.3 tickets a client never
  // reads cannot turn its close into a reset.
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(native, SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(native, 0);
  error_code ec;
  if (o.cert_chain_file.empty()) return Status::Error("invalid_argument", "TLS needs a certificate file");
  if (ctx->use_certificate_chain_file(o.cert_chain_file, ec); ec) return bad("certificate", o.cert_chain_file, ec);
  if (o.key_file.empty()) return Status::Error("invalid_argument", "TLS needs a key file");
  if (ctx->use_private_key_file(o.key_file, ssl::context::pem, ec); ec) return bad("key", o.key_file, ec);
  if (SSL_CTX_check_private_key(native) != 1) {
    return Status::Error("invalid_argument", "TLS key " + o.key_file + " does not match " + o.cert_chain_file);
  }
  if (o.client_certs == ClientCertMode::kNone) {
    ctx->set_verify_mode(ssl::verify_none);
    return ctx;
  }
  if (o.client_ca_file.empty()) return Status::Error("invalid_argument", "TLS client certificates need a CA file");
  if (ctx->load_verify_file(o.client_ca_file, ec); ec) return bad("client CA", o.client_ca_file, ec);
  // The CA names sent in the CertificateRequest let a client with several certificates
  // pick the right one.
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.client_ca_file.c_str());
  if (names == nullptr) {
    return Status::Error("invalid_argument", "TLS client CA " + o.client_ca_file + ": no certificate");
  }
  SSL_CTX_set_client_CA_list(native, names);
  // Only certificates meant for TLS clients (extendedKeyUsage clientAuth, or none) name a
  // terminal: HQ's own server certificate, signed by the same CA, must not.
  SSL_CTX_set_purpose(native, X509_PURPOSE_SSL_CLIENT);
  if (o.client_certs == ClientCertMode::kRequire) {
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  } else {
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER, AcceptAnyVerifyResult);
  }
  return ctx;
}

// What the server tells a connection; implemented by every Session instantiation. Both
// calls are safe from any thread (they post to the connection's strand).
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void NotifyStop() = 0;  // finish what is in flight, then close
  virtual void ForceClose() = 0;  // close now, answered or not
};

}  // namespace

namespace internal {

// State shared by the Server and its connections, so a connection never points at a
// destroyed Server. Members marked "io thread" are touched only on the event loop.
struct ServerCore : std::enable_shared_from_this<ServerCore> {
  ServerCore(net::io_context& io, ServerOptions o, Handler h)
      : ioc(io), options(std::move(o)), handler(std::move(h)), acceptor(io), accept_retry(io), drain_timer(io) {}

  net::io_context& ioc;
  const ServerOptions options;
  const Handler handler;
  std::shared_ptr<ssl::context> ssl_ctx;  // set by Listen() for a TLS listener
  tcp::acceptor acceptor;          // io thread
  net::steady_timer accept_retry;  // io thread
  net::steady_timer drain_timer;   // io thread
  std::atomic<uint16_t> port{0};
  std::atomic<bool> stopping{false};
  std::atomic<bool> drained{false};
  std::atomic<size_t> active{0};
  std::atomic<size_t> refusing{0};
  bool stop_started = false;                        // io thread
  std::vector<std::function<void()>> drain_waiters;  // io thread

  std::mutex mu;  // guards the registry: connections may end on any thread
  uint64_t next_id = 0;
  std::unordered_map<uint64_t, std::weak_ptr<SessionBase>> sessions;

  uint64_t Register(std::weak_ptr<SessionBase> s) {
    std::lock_guard<std::mutex> lock(mu);
    uint64_t id = ++next_id;
    sessions.emplace(id, std::move(s));
    active.fetch_add(1);
    return id;
  }

  void Unregister(uint64_t id) {
    {
      std::lock_guard<std::mutex> lock(mu);
      sessions.erase(id);
    }
    if (active.fetch_sub(1) == 1 && stopping.load() && !drained.load()) {
      net::post(ioc, [self = shared_from_this()] { self->CheckDrained(); });
    }
  }

  std::vector<std::shared_ptr<SessionBase>> Snapshot() {
    std::vector<std::shared_ptr<SessionBase>> out;
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [id, weak] : sessions) {
      if (auto s = weak.lock()) out.push_back(std::move(s));
    }
    return out;
  }

  void DoAccept();
  void OnAccept(error_code ec, tcp::socket socket);
  void DoStop(std::function<void()> on_drained);
  void CheckDrained();
  void CloseAcceptor() {
    error_code ec;
    acceptor.close(ec);
    accept_retry.cancel();
  }
};

}  // namespace internal

namespace {

using internal::ServerCore;

// One connection. Reads a request, hands it to the handler, waits for the answer, writes
// it, and reads the next: pipelined requests wait in buffer_ and are answered in order.
// The class is a template on the stream so a TLS listener can reuse it with
// beast::ssl_stream<beast::tcp_stream>: only the handshake and the shutdown differ, and
// deadlines live on the lowest layer either way.
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

 public:
  // `refuse`: the connection is over the cap; answer 503 and close. `stream_args` build
  // the stream from the accepted socket (and the SSL context for TLS).
  template <class... StreamArgs>
  Session(std::shared_ptr<ServerCore> core, bool refuse, StreamArgs&&... stream_args)
      : core_(std::move(core)), refuse_(refuse), stream_(std::forward<StreamArgs>(stream_args)...) {
    error_code ec;
    Lowest().socket().set_option(tcp::no_delay(true), ec);
    auto ep = Lowest().socket().remote_endpoint(ec);
    if (!ec) {
      remote_address_ = ep.address().to_string();
      remote_port_ = ep.port();
    }
    if (refuse_) core_->refusing.fetch_add(1);
  }

  ~Session() override {
    if (refuse_) core_->refusing.fetch_sub(1);
    if (registered_ && !unregistered_) core_->Unregister(id_);
  }

  // Called on the io thread right after accept, so the cap counts it at once.
  void Register() {
    id_ = core_->Register(this->weak_from_this());
    registered_ = true;
  }

  void Start() {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->OnStart(); });
  }

  void NotifyStop() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] { self->OnStop(); });
  }

  void ForceClose() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] { self->Close(); });
  }

 private:
  enum class State { kHandshake, kIdle, kReading, kHandling, kWriting, kClosing, kClosed };

  // Shared by every copy of one request's Responder: the first call wins, and a Responder
  // dropped unanswered still answers, so a connection never hangs on a lost callback.
  struct Reply {
    Reply(std::shared_ptr<Session> s, uint64_t n) : session(std::move(s)), seq(n) {}
    ~Reply() {
      if (!answered.exchange(true)) {
        Post(JsonError(500, "internal", "the request was dropped without an answer"));
      }
    }
    void Answer(Response r) {
      if (answered.exchange(true)) return;
      Post(std::move(r));
    }
    void Post(Response r) {
      auto s = session;
      net::post(s->stream_.get_executor(),
                [s, n = seq, r = std::move(r)]() mutable { s->OnResponse(n, std::move(r)); });
    }
    std::shared_ptr<Session> session;
    uint64_t seq;
    std::atomic<bool> answered{false};
  };

  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }
  const ServerOptions& options() const { return core_->options; }

  void OnStart() {
    if constexpr (kTls) {
      DoHandshake();
    } else {
      OnConnectionReady();
    }
  }

  void DoHandshake() {
    state_ = State::kHandshake;
    // A client that connects and never completes the handshake is dropped like one that
    // never finishes its request.
    Lowest().expires_after(Ms(options().read_timeout_ms));
    stream_.async_handshake(ssl::stream_base::server,
                            [self = this->shared_from_this()](error_code ec) { self->OnHandshake(ec); });
  }

  void OnHandshake(error_code ec) {
    if (ec) {  // refused certificate, not TLS, timeout: there is no channel to answer on
      Close();
      return;
    }
    if constexpr (kTls) {
      SSL* ssl = stream_.native_handle();
      if (X509* peer = SSL_get1_peer_certificate(ssl)) {
        long verify = SSL_get_verify_result(ssl);
        if (verify == X509_V_OK) {
          peer_cn_ = SubjectCn(peer);
          if (peer_cn_.empty()) peer_cert_error_ = "certificate subject has no single printable CN";
        } else {
          peer_cert_error_ = X509_verify_cert_error_string(verify);
        }
        X509_free(peer);
      }
    }
    OnConnectionReady();
  }

  void OnConnectionReady() {
    if (refuse_) {
      WriteAndClose(JsonError(503, "unavailable", "too many connections; retry shortly"));
      return;
    }
    DoReadIdle();
  }

  void OnStop() {
    stop_requested_ = true;
    // Only a connection waiting for its next request is closed now; one reading, handled
    // or writing sees stop_requested_ when its response is built and closes after it.
    if (state_ == State::kIdle || state_ == State::kHandshake) Lowest().cancel();
  }

  void DoReadIdle() {
    if (stop_requested_ || core_->stopping.load()) {
      Close();
      return;
    }
    if (buffer_.size() > 0) {  // a pipelined request is already here
      DoReadHeader();
      return;
    }
    state_ = State::kIdle;
    Lowest().expires_after(Ms(options().idle_timeout_ms));
    stream_.async_read_some(buffer_.prepare(kFirstReadBytes),
                            [self = this->shared_from_this()](error_code ec, size_t n) { self->OnReadIdle(ec, n); });
  }

  void OnReadIdle(error_code ec, size_t n) {
    if (ec) {  // idle timeout, peer closed, or Stop(): nothing to answer
      Close();
      return;
    }
    buffer_.commit(n);
    DoReadHeader();
  }

  void DoReadHeader() {
    state_ = State::kReading;
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(std::min<size_t>(options().header_limit, UINT32_MAX)));
    parser_->body_limit(options().body_limit);
    // One deadline for the whole request, header and body: a client that trickles bytes
    // cannot hold the connection longer than read_timeout_ms.
    Lowest().expires_after(Ms(options().read_timeout_ms));
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = this->shared_from_this()](error_code ec, size_t) { self->OnReadHeader(ec); });
  }

  void OnReadHeader(error_code ec) {
    if (ec) {
      OnReadError(ec);
      return;
    }
    auto& req = parser_->get();
    if (!parser_->is_done() && beast::iequals(req[bhttp::field::expect], "100-continue")) {
      // curl and others wait for this before sending a large body. The read deadline keeps
      // running: this short write is part of reading the request.
      continue_.emplace(bhttp::status::continue_, req.version());
      bhttp::async_write(stream_, *continue_, [self = this->shared_from_this()](error_code e, size_t) {
        self->continue_.reset();
        if (e) {
          self->Close();
          return;
        }
        self->DoReadBody();
      });
      return;
    }
    DoReadBody();
  }

  void DoReadBody() {
    if (parser_->is_done()) {
      OnRequest();
      return;
    }
    bhttp::async_read(stream_, buffer_, *parser_, [self = this->shared_from_this()](error_code ec, size_t) {
      if (ec) {
        self->OnReadError(ec);
        return;
      }
      self->OnRequest();
    });
  }

  void OnReadError(error_code ec) {
    if (ec == bhttp::error::body_limit) {
      WriteAndClose(JsonError(413, "body_too_large",
                              "request body exceeds " + std::to_string(options().body_limit) + " bytes"));
      return;
    }
    if (ec == bhttp::error::header_limit) {
      WriteAndClose(JsonError(400, "bad_request",
                              "request header exceeds " + std::to_string(options().header_limit) + " bytes"));
      return;
    }
    // The peer went away, or the read deadline passed (a slow or stalled client is dropped
    // without an answer), or the message ended half way: nobody to answer.
    if (ec == beast::error::timeout || ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
        ec.category() != bhttp::make_error_code(bhttp::error::bad_method).category()) {
      Close();
      return;
    }
    WriteAndClose(JsonError(400, "bad_request", "malformed HTTP request: " + ec.message()));
  }

  void OnRequest() {
    bhttp::request<bhttp::string_body> msg = parser_->release();
    parser_.reset();
    ++seq_;
    version_ = msg.version();
    keep_alive_ = msg.keep_alive();
    head_ = msg.method() == bhttp::verb::head;
    state_ = State::kHandling;

    Request r;
    r.method = std::string(msg.method_string());
    r.target = std::string(msg.target());
    auto target = ParseTarget(r.target);
    if (!target.ok()) {
      // The message itself was well formed, so the connection can stay.
      OnResponse(seq_, JsonError(400, "bad_request", target.status().message()));
      return;
    }
    r.path = std::move(target->path);
    r.query = std::move(target->query);
    r.authorization = std::string(msg[bhttp::field::authorization]);
    r.headers.reserve(std::distance(msg.begin(), msg.end()));
    for (const auto& f : msg) r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    r.body = std::move(msg.body());
    r.remote_address = remote_address_;
    r.remote_port = remote_port_;
    r.tls = kTls;
    r.peer_cn = peer_cn_;
    r.peer_cert_error = peer_cert_error_;

    auto reply = std::make_shared<Reply>(this->shared_from_this(), seq_);
    Responder responder = [reply](Response resp) { reply->Answer(std::move(resp)); };
    try {
      core_->handler(std::move(r), std::move(responder));
    } catch (...) {
      // The caller logs its own failures; here the client just gets an answer.
      reply->Answer(JsonError(500, "internal", "internal error"));
    }
  }

  void OnResponse(uint64_t seq, Response r) {
    if (state_ != State::kHandling || seq != seq_) return;  // closed meanwhile, or a stale answer
    Write(std::move(r), /*force_close=*/false);
  }

  void WriteAndClose(Response r) {
    keep_alive_ = false;
    Write(std::move(r), /*force_close=*/true);
  }

  void Write(Response r, bool force_close) {
    if (r.status < 200 || r.status > 999) r = JsonError(500, "internal", "invalid response status");
    res_.emplace();
    res_->version(version_);
    res_->result(static_cast<unsigned>(r.status));
    bool close = force_close || !keep_alive_ || stop_requested_ || core_->stopping.load();
    for (auto& [name, value] : r.headers) {
      if (!IsSafeHeader(name, value)) continue;
      if (IEquals(name, "content-length") || IEquals(name, "transfer-encoding") || IEquals(name, "content-type")) {
        continue;
      }
      if (IEquals(name, "connection")) {
        if (IEquals(value, "close")) close = true;
        continue;
      }
      res_->insert(name, value);
    }
    const std::string& type = r.content_type;
    res_->set(bhttp::field::content_type,
              type.empty() || type.find_first_of("\r\n") != std::string::npos ? "application/octet-stream" : type);
    bool no_body = r.status == 204 || r.status == 304;
    if (!no_body) res_->content_length(r.body.size());
    if (!no_body && !head_) res_->body() = std::move(r.body);
    res_->keep_alive(!close);
    close_after_ = close;

    state_ = State::kWriting;
    Lowest().expires_after(Ms(options().write_timeout_ms));
    bhttp::async_write(stream_, *res_, [self = this->shared_from_this()](error_code ec, size_t) {
      self->OnWrite(ec);
    });
  }

  void OnWrite(error_code ec) {
    res_.reset();
    if (ec) {  // write deadline passed or the peer went away
      Close();
      return;
    }
    if (close_after_) {
      DoLinger();
      return;
    }
    DoReadIdle();
  }

  void DoLinger() {
    state_ = State::kClosing;
    if constexpr (kTls) {
      // Send our close_notify without waiting for the peer's: marking it received makes
      // SSL_shutdown only write. Waiting would stall on clients that just close, and fail
      // on one still sending a body it was refused for; the plain lingering close below
      // takes care of those bytes.
      SSL_set_shutdown(stream_.native_handle(), SSL_RECEIVED_SHUTDOWN);
      Lowest().expires_after(Ms(std::min(kLingerMs, options().write_timeout_ms)));
      stream_.async_shutdown([self = this->shared_from_this()](error_code ec) {
        if (ec == beast::error::timeout) {
          self->Close();
          return;
        }
        self->DoLingerPlain();
      });
      return;
    }
    DoLingerPlain();
  }

  void DoLingerPlain() {
    error_code ec;
    Lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) {
      Close();
      return;
    }
    lingered_ = buffer_.size();
    buffer_.consume(buffer_.size());
    Lowest().expires_after(Ms(std::min(kLingerMs, options().read_timeout_ms)));
    DoDiscard();
  }

  void DoDiscard() {
    Lowest().async_read_some(net::buffer(discard_), [self = this->shared_from_this()](error_code ec, size_t n) {
      self->lingered_ += n;
      if (ec || self->lingered_ > kLingerBytes) {
        self->Close();
        return;
      }
      self->DoDiscard();
    });
  }

  void Close() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    error_code ec;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    Lowest().close();
    if (registered_ && !unregistered_) {
      unregistered_ = true;
      core_->Unregister(id_);
    }
  }

  std::shared_ptr<ServerCore> core_;
  const bool refuse_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::response<bhttp::empty_body>> continue_;
  std::optional<bhttp::response<bhttp::string_body>> res_;
  std::array<char, 4096> discard_{};
  std::string remote_address_;
  uint16_t remote_port_ = 0;
  std::string peer_cn_;          // TLS: the verified client certificate's CN
  std::string peer_cert_error_;  // TLS: why a presented client certificate was not verified
  State state_ = State::kIdle;
  uint64_t id_ = 0;
  bool registered_ = false;
  bool unregistered_ = false;
  uint64_t seq_ = 0;  // the request being answered; answers for another are stale
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool head_ = false;
  bool close_after_ = false;
  bool stop_requested_ = false;
  size_t lingered_ = 0;
};

using PlainSession = Session<beast::tcp_stream>;
using TlsSession = Session<beast::ssl_stream<beast::tcp_stream>>;

}  // namespace

namespace internal {

void ServerCore::DoAccept() {
  acceptor.async_accept(net::make_strand(ioc), [self = shared_from_this()](error_code ec, tcp::socket socket) {
    self->OnAccept(ec, std::move(socket));
  });
}

void ServerCore::OnAccept(error_code ec, tcp::socket socket) {
  if (!acceptor.is_open() || ec == net::error::operation_aborted) return;
  if (ec) {
    // Out of descriptors or a transient network error: back off instead of spinning.
    accept_retry.expires_after(std::chrono::milliseconds(50));
    accept_retry.async_wait([self = shared_from_this()](error_code e) {
      if (!e && self->acceptor.is_open()) self->DoAccept();
    });
    return;
  }
  bool over_cap = active.load() >= options.max_connections;
  if (over_cap && refusing.load() >= std::max<size_t>(options.max_connections, 1)) {
    // Even the polite refusals are capped: a flood gets its sockets closed at once.
    error_code ignored;
    socket.close(ignored);
  } else {
    auto start = [&](auto session) {
      if (!over_cap) session->Register();
      session->Start();
    };
    if (ssl_ctx) {
      start(std::make_shared<TlsSession>(shared_from_this(), over_cap, std::move(socket), *ssl_ctx));
    } else {
      start(std::make_shared<PlainSession>(shared_from_this(), over_cap, std::move(socket)));
    }
  }
  DoAccept();
}

void ServerCore::DoStop(std::function<void()> on_drained) {
  if (on_drained) drain_waiters.push_back(std::move(on_drained));
  if (!stop_started) {
    stop_started = true;
    CloseAcceptor();
    for (auto& s : Snapshot()) s->NotifyStop();
    if (options.drain_timeout_ms > 0) {
      drain_timer.expires_after(std::chrono::milliseconds(options.drain_timeout_ms));
      drain_timer.async_wait([self = shared_from_this()](error_code ec) {
        if (ec || self->drained.load()) return;
        for (auto& s : self->Snapshot()) s->ForceClose();
      });
    }
  }
  CheckDrained();
}

void ServerCore::CheckDrained() {
  if (!stop_started || active.load() != 0) return;
  if (!drained.exchange(true)) drain_timer.cancel();
  for (auto& cb : drain_waiters) net::post(ioc, std::move(cb));
  drain_waiters.clear();
}

}  // namespace internal

Server::Server(net::io_context& ioc, ServerOptions options, Handler handler)
    : core_(std::make_shared<internal::ServerCore>(ioc, std::move(options), std::move(handler))) {}

Server::~Server() {
  core_->CloseAcceptor();
  core_->drain_timer.cancel();
}

Status Server::Listen() {
  const ServerOptions& o = core_->options;
  auto fail = [&](const std::string& what, const error_code& ec) {
    core_->CloseAcceptor();
    return Status::Error("unavailable", what + " " + o.host + ":" + std::to_string(o.port) + ": " + ec.message());
  };
  if (o.tls) {
    auto ctx = MakeServerContext(*o.tls);
    if (!ctx.ok()) return ctx.status();
    core_->ssl_ctx = std::move(*ctx);
  }
  error_code ec;
  net::ip::address address = net::ip::make_address(o.host, ec);
  if (ec) {
    tcp::resolver resolver(core_->ioc);
    auto results = resolver.resolve(o.host, "", ec);
    if (ec || results.empty()) return fail("cannot resolve", ec);
    address = results.begin()->endpoint().address();
  }
  tcp::endpoint endpoint(address, o.port);
  tcp::acceptor& a = core_->acceptor;
  if (a.open(endpoint.protocol(), ec); ec) return fail("cannot open a socket for", ec);
  // Lets a restarted agent bind while old connections sit in TIME_WAIT; on Linux it does
  // not let two listeners share the port.
  if (a.set_option(net::socket_base::reuse_address(true), ec); ec) return fail("cannot set options on", ec);
  if (a.bind(endpoint, ec); ec) return fail("cannot bind", ec);
  if (a.listen(net::socket_base::max_listen_connections, ec); ec) return fail("cannot listen on", ec);
  core_->port.store(a.local_endpoint(ec).port());
  core_->DoAccept();
  return Status::Ok();
}

uint16_t Server::port() const { return core_->port.load(); }

void Server::Stop(std::function<void()> on_drained) {
  core_->stopping.store(true);
  net::post(core_->ioc, [core = core_, cb = std::move(on_drained)]() mutable { core->DoStop(std::move(cb)); });
}

bool Server::stopping() const { return core_->stopping.load(); }

size_t Server::active_connections() const { return core_->active.load(); }

}  // namespace loyalty::http
