#include "loyalty/http/server.h"
#include "loyalty/http/errors.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "loyalty/http/address.h"
#include "loyalty/http/tls_profile.h"

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

// No Transfer-Encoding, or exactly one field whose one coding is chunked (any case, optional
// whitespace around it). "gzip, chunked", "chunked, chunked" and two fields are not.
template <class Fields>
bool TransferEncodingIsPlainChunked(const bhttp::request_header<Fields>& req) {
  auto [first, last] = req.equal_range(bhttp::field::transfer_encoding);
  if (first == last) return true;
  if (std::next(first) != last) return false;
  std::string_view v(first->value().data(), first->value().size());
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return IEquals(v, "chunked");
}

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
// records the failure, read back with SSL_get_verify_result after the handshake. A revoked
// certificate is the exception: it is refused at the handshake, whatever the route.
int RequestModeVerify(int preverify_ok, X509_STORE_CTX* ctx) {
  if (preverify_ok == 0 && X509_STORE_CTX_get_error(ctx) == X509_V_ERR_CERT_REVOKED) return 0;
  return 1;
}

using StorePtr = std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)>;

std::string OpenSslReason() {
  unsigned long e = ERR_peek_last_error();
  char buf[256] = "unknown OpenSSL error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

std::string NameText(X509_NAME* name) {
  char buf[256];
  X509_NAME_oneline(name, buf, sizeof buf);
  return buf;
}

// Every PEM object of one kind in `file` (certificates or CRLs); reading stops at the end of
// the file or at the first object that does not parse (an error naming the file).
template <class T>
Result<std::vector<std::unique_ptr<T, void (*)(T*)>>> ReadPemAll(
    const std::string& file, const char* what, T* (*read)(BIO*, T**, pem_password_cb*, void*),
    void (*free_fn)(T*)) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(file.c_str(), "r"), BIO_free);
  if (!bio) {
    ERR_clear_error();
    return Status::Error(ErrorCode::kInvalidArgument,
                         std::string("TLS ") + what + " " + file + ": cannot be read");
  }
  std::vector<std::unique_ptr<T, void (*)(T*)>> out;
  while (T* x = read(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(x, free_fn);
  unsigned long e = ERR_peek_last_error();
  if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
    ERR_clear_error();  // the end of the file
  } else if (e != 0) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         std::string("TLS ") + what + " " + file + ": " + OpenSslReason());
  }
  return out;
}

// The store client certificates are verified against: the CAs of ca_file and, when crl_file
// is set, one CRL for each of them (X509_V_FLAG_CRL_CHECK: a leaf certificate's issuer must
// have a CRL, so a missing one would refuse every terminal of that CA; it is refused here
// instead, at start or at reload). `revoked` counts the certificates the CRLs list.
Result<StorePtr> MakeVerifyStore(const std::string& ca_file, const std::string& crl_file,
                                 size_t* revoked) {
  auto cas = ReadPemAll<X509>(ca_file, "client CA", PEM_read_bio_X509, X509_free);
  if (!cas.ok()) return cas.status();
  if (cas->empty())
    return Status::Error(ErrorCode::kInvalidArgument,
                         "TLS client CA " + ca_file + ": no certificate");
  StorePtr store(X509_STORE_new(), X509_STORE_free);
  if (!store) return Status::Error(ErrorCode::kInternal, "X509_STORE_new: " + OpenSslReason());
  for (auto& ca : *cas) {
    if (X509_STORE_add_cert(store.get(), ca.get()) != 1) {
      return Status::Error(ErrorCode::kInvalidArgument,
                           "TLS client CA " + ca_file + ": " + OpenSslReason());
    }
  }
  if (revoked != nullptr) *revoked = 0;
  if (crl_file.empty()) return store;
  auto bad = [&](const std::string& why) {
    return Status::Error(ErrorCode::kInvalidArgument, "TLS CRL " + crl_file + ": " + why);
  };
  auto crls = ReadPemAll<X509_CRL>(crl_file, "CRL", PEM_read_bio_X509_CRL, X509_CRL_free);
  if (!crls.ok()) return crls.status();
  if (crls->empty()) return bad("no CRL in the file");
  std::vector<bool> covered(cas->size(), false);
  for (auto& owned : *crls) {
    X509_CRL* crl = owned.get();
    std::string issuer = NameText(X509_CRL_get_issuer(crl));
    size_t ca_index = cas->size();
    for (size_t c = 0; c < cas->size(); ++c) {
      X509* ca = (*cas)[c].get();
      if (X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl)) == 0 &&
          X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1) {
        ca_index = c;
        break;
      }
    }
    ERR_clear_error();
    if (ca_index == cas->size())
      return bad("the CRL of " + issuer + " is not signed by a CA of " + ca_file);
    const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl);
    if (next != nullptr && X509_cmp_current_time(next) <= 0) {
      return bad("the CRL of " + issuer + " is past its nextUpdate (issue a fresh one)");
    }
    covered[ca_index] = true;
    if (revoked != nullptr) {
      STACK_OF(X509_REVOKED)* list = X509_CRL_get_REVOKED(crl);
      *revoked += list == nullptr ? 0 : static_cast<size_t>(sk_X509_REVOKED_num(list));
    }
    if (X509_STORE_add_crl(store.get(), crl) != 1) return bad(OpenSslReason());
  }
  for (size_t c = 0; c < cas->size(); ++c) {
    if (!covered[c])
      return bad("no CRL for CA " + NameText(X509_get_subject_name((*cas)[c].get())));
  }
  X509_STORE_set_flags(store.get(), X509_V_FLAG_CRL_CHECK);
  return store;
}

Result<std::shared_ptr<ssl::context>> MakeServerContext(const TlsServerOptions& o) {
  auto bad = [](const std::string& what, const std::string& file, const error_code& ec) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "TLS " + what + " " + file + ": " + PemFileReason(file, SslErrorText(ec)));
  };
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  if (!ApplyIntermediateProfile(native))
    return Status::Error(ErrorCode::kInternal, "TLS profile refused: " + OpenSslReason());
  // No resumption: every connection's client certificate is verified again (an expired
  // or newly untrusted certificate is refused at once), and TLS 1.3 tickets a client never
  // reads cannot turn its close into a reset.
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(native, SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(native, 0);
  error_code ec;
  if (o.cert_chain_file.empty())
    return Status::Error(ErrorCode::kInvalidArgument, "TLS needs a certificate file");
  if (ctx->use_certificate_chain_file(o.cert_chain_file, ec); ec)
    return bad("certificate", o.cert_chain_file, ec);
  if (o.key_file.empty()) return Status::Error(ErrorCode::kInvalidArgument, "TLS needs a key file");
  if (ctx->use_private_key_file(o.key_file, ssl::context::pem, ec); ec)
    return bad("key", o.key_file, ec);
  if (SSL_CTX_check_private_key(native) != 1) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "TLS key " + o.key_file + " does not match " + o.cert_chain_file);
  }
  if (o.client_certs == ClientCertMode::kNone) {
    ctx->set_verify_mode(ssl::verify_none);
    return ctx;
  }
  if (o.client_ca_file.empty())
    return Status::Error(ErrorCode::kInvalidArgument, "TLS client certificates need a CA file");
  // Client certificates are verified against a store of their own (CAs and CRLs), which
  // ReloadCrl() replaces.
  auto store = MakeVerifyStore(o.client_ca_file, o.crl_file, nullptr);
  if (!store.ok()) return store.status();
  SSL_CTX_set1_verify_cert_store(native, store->get());
  if (!o.crl_file.empty())
    X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(native), X509_V_FLAG_CRL_CHECK);
  // The CA names sent in the CertificateRequest let a client with several certificates
  // pick the right one.
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.client_ca_file.c_str());
  if (names == nullptr) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "TLS client CA " + o.client_ca_file + ": no certificate");
  }
  SSL_CTX_set_client_CA_list(native, names);
  // Only certificates meant for TLS clients (extendedKeyUsage clientAuth, or none) name a
  // terminal: HQ's own server certificate, signed by the same CA, must not.
  SSL_CTX_set_purpose(native, X509_PURPOSE_SSL_CLIENT);
  if (o.client_certs == ClientCertMode::kRequire) {
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  } else {
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER, RequestModeVerify);
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
      : ioc(io),
        options(std::move(o)),
        handler(std::move(h)),
        acceptor(io),
        accept_retry(io),
        drain_timer(io) {}

  net::io_context& ioc;
  const ServerOptions options;
  const Handler handler;
  std::shared_ptr<ssl::context> ssl_ctx;  // set by Listen() for a TLS listener
  tcp::acceptor acceptor;                 // io thread
  net::steady_timer accept_retry;         // io thread
  net::steady_timer drain_timer;          // io thread
  std::atomic<uint16_t> port{0};
  std::atomic<bool> stopping{false};
  std::atomic<bool> drained{false};
  std::atomic<size_t> active{0};
  std::atomic<size_t> refusing{0};
  std::atomic<uint64_t> evicted{0};
  std::atomic<uint64_t> refused{0};  // over the cap: answered 503, or closed at once
  bool stop_started = false;         // io thread
  std::vector<std::function<void()>> drain_waiters;  // io thread

  // The registry of counted connections. A connection is idle (an eviction candidate) from
  // accept until its request head is complete, and again from the end of its answer until
  // the next head is complete; each time it becomes idle it takes a new ticket, so the
  // lowest ticket is the connection idle longest.
  struct Entry {
    std::weak_ptr<SessionBase> session;
    std::string address;
    uint64_t ticket = 0;  // 0: a request is in progress
  };
  std::mutex mu;  // guards what follows: connections may end on any thread
  uint64_t next_id = 0;
  uint64_t next_ticket = 0;
  std::unordered_map<uint64_t, Entry> sessions;
  std::map<uint64_t, uint64_t> idle;  // ticket -> id, oldest first
  std::unordered_map<std::string, size_t> per_address;

  // Decides on a connection just accepted from `address` (its ConnectionLimitKey; io thread).
  // Admitted: registered as idle, its id returned, and `victim` set when a connection was evicted
  // for it (the caller closes that one). Not admitted: 0 (every candidate has a request in
  // progress).
  uint64_t Admit(std::weak_ptr<SessionBase> s, const std::string& address,
                 std::shared_ptr<SessionBase>& victim) {
    std::lock_guard<std::mutex> lock(mu);
    const size_t per_cap = options.max_connections_per_address;
    auto it = per_address.find(address);
    if (per_cap > 0 && it != per_address.end() && it->second >= per_cap) {
      victim = EvictOldestLocked(&address);
      if (!victim) return 0;
    } else if (active.load() >= options.max_connections) {
      victim = EvictOldestLocked(nullptr);
      if (!victim) return 0;
    }
    uint64_t id = ++next_id;
    sessions.emplace(id, Entry{std::move(s), address, ++next_ticket});
    idle.emplace(next_ticket, id);
    ++per_address[address];
    active.fetch_add(1);
    return id;
  }

  // The idle connection with the lowest ticket (from `address` only, when given), taken out
  // of the registry; null when there is none. A linear walk from the oldest: with a flood
  // of idle connections the first one qualifies.
  std::shared_ptr<SessionBase> EvictOldestLocked(const std::string* address) {
    for (auto it = idle.begin(); it != idle.end(); ++it) {
      auto e = sessions.find(it->second);
      if (e == sessions.end()) continue;  // cannot happen: both change together
      if (address != nullptr && e->second.address != *address) continue;
      auto s = e->second.session.lock();
      if (!s) continue;  // being destroyed; it releases its slot itself
      ReleaseLocked(e);
      evicted.fetch_add(1);
      return s;
    }
    return nullptr;
  }

  void ReleaseLocked(std::unordered_map<uint64_t, Entry>::iterator e) {
    if (e->second.ticket != 0) idle.erase(e->second.ticket);
    auto a = per_address.find(e->second.address);
    if (a != per_address.end() && --a->second == 0) per_address.erase(a);
    sessions.erase(e);
    if (active.fetch_sub(1) == 1 && stopping.load() && !drained.load()) {
      net::post(ioc, [self = shared_from_this()] { self->CheckDrained(); });
    }
  }

  // A connection's slot is given back when it closes (a second call, or one for a
  // connection evicted meanwhile, does nothing).
  void Release(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu);
    auto e = sessions.find(id);
    if (e != sessions.end()) ReleaseLocked(e);
  }

  // A request head is complete: the connection is no longer an eviction candidate. False
  // when it was evicted meanwhile (then it must close without handling the request).
  bool MarkBusy(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu);
    auto e = sessions.find(id);
    if (e == sessions.end()) return false;
    if (e->second.ticket != 0) idle.erase(e->second.ticket);
    e->second.ticket = 0;
    return true;
  }

  // The answer is written: the connection is idle again, and the newest candidate.
  void MarkIdle(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu);
    auto e = sessions.find(id);
    if (e == sessions.end()) return;
    if (e->second.ticket != 0) idle.erase(e->second.ticket);
    e->second.ticket = ++next_ticket;
    idle.emplace(next_ticket, id);
  }

  std::vector<std::shared_ptr<SessionBase>> Snapshot() {
    std::vector<std::shared_ptr<SessionBase>> out;
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [id, entry] : sessions) {
      if (auto s = entry.session.lock()) out.push_back(std::move(s));
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
  // `stream_args` build the stream from the accepted socket (and the SSL context for TLS).
  template <class... StreamArgs>
  explicit Session(std::shared_ptr<ServerCore> core, StreamArgs&&... stream_args)
      : core_(std::move(core)), stream_(std::forward<StreamArgs>(stream_args)...) {
    error_code ec;
    Lowest().socket().set_option(tcp::no_delay(true), ec);
    auto ep = Lowest().socket().remote_endpoint(ec);
    if (!ec) {
      net::ip::address a = ep.address();
      // An IPv4 client of a dual-stack listener is the same address as over IPv4.
      if (a.is_v6() && a.to_v6().is_v4_mapped())
        a = net::ip::make_address_v4(net::ip::v4_mapped, a.to_v6());
      remote_address_ = a.to_string();
      remote_port_ = ep.port();
    }
  }

  ~Session() override {
    if (refuse_) core_->refusing.fetch_sub(1);
    if (registered_) core_->Release(id_);
  }

  const std::string& remote_address() const { return remote_address_; }

  // Called on the io thread right after accept, one of the two: admitted (counted at
  // once), or over the cap (answered 503 and closed).
  void Registered(uint64_t id) {
    id_ = id;
    registered_ = true;
  }
  void Refuse() {
    refuse_ = true;
    core_->refusing.fetch_add(1);
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
        Post(JsonError(ErrorCode::kInternal, "the request was dropped without an answer"));
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
    // A client that connects and never completes the handshake is dropped at the deadline
    // (or evicted before, as an idle connection, when the cap is reached).
    Lowest().expires_after(Ms(options().handshake_timeout_ms));
    stream_.async_handshake(
        ssl::stream_base::server,
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
      WriteAndClose(JsonError(ErrorCode::kUnavailable, "too many connections; retry shortly"));
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

  using Deadline = std::chrono::steady_clock::time_point;

  void DoReadIdle() {
    if (stop_requested_ || core_->stopping.load()) {
      Close();
      return;
    }
    if (busy_) {  // the previous answer is written: an eviction candidate again
      busy_ = false;
      if (registered_) core_->MarkIdle(id_);
    }
    if (buffer_.size() > 0) {  // a pipelined request is already here
      DoReadHeader(std::chrono::steady_clock::now() + Ms(options().header_timeout_ms));
      return;
    }
    state_ = State::kIdle;
    // The first request's head must be complete header_timeout_ms after accept (or the
    // handshake): a connection that sends nothing, or dribbles, holds its slot that long
    // at most. Between later requests a keep-alive connection may wait idle_timeout_ms,
    // and the head's deadline starts at its first byte.
    const bool first = seq_ == 0;
    const auto now = std::chrono::steady_clock::now();
    const Deadline head_deadline = first ? now + Ms(options().header_timeout_ms) : Deadline{};
    Lowest().expires_at(first ? head_deadline : now + Ms(options().idle_timeout_ms));
    stream_.async_read_some(
        buffer_.prepare(kFirstReadBytes),
        [self = this->shared_from_this(), head_deadline](error_code ec, size_t n) {
          self->OnReadIdle(ec, n, head_deadline);
        });
  }

  // `head_deadline`: the first request's, or none (a later request's runs from now).
  void OnReadIdle(error_code ec, size_t n, Deadline head_deadline) {
    if (ec) {  // deadline, peer closed, Stop() or evicted: nothing to answer
      Close();
      return;
    }
    buffer_.commit(n);
    if (head_deadline == Deadline{})
      head_deadline = std::chrono::steady_clock::now() + Ms(options().header_timeout_ms);
    DoReadHeader(head_deadline);
  }

  void DoReadHeader(Deadline head_deadline) {
    state_ = State::kReading;
    request_start_ = std::chrono::steady_clock::now();
    parser_.emplace();
    parser_->header_limit(
        static_cast<uint32_t>(std::min<size_t>(options().header_limit, UINT32_MAX)));
    parser_->body_limit(options().body_limit);
    // The head under its own short deadline, then the whole request (head and body) under
    // read_timeout_ms from its first byte: a client that trickles bytes cannot hold the
    // connection longer.
    Lowest().expires_at(std::min(head_deadline, request_start_ + Ms(options().read_timeout_ms)));
    bhttp::async_read_header(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](error_code ec, size_t n) { self->OnReadHeader(ec, n); });
  }

  // `head_bytes`: what the parser took for the request line and headers, through the
  // blank line that ends them.
  void OnReadHeader(error_code ec, size_t head_bytes) {
    // A Content-Length past the body limit ends the head's read with body_limit, the head
    // parsed whole (Beast checks it once every field is in). A request the server would
    // refuse from its head (no token) is refused for that first: 401 whatever the size, so
    // a client without credentials learns nothing of the limits.
    const bool too_large = ec == bhttp::error::body_limit;
    if (ec && !too_large) {
      OnReadError(ec);
      return;
    }
    // Beast's own count stops a head a few bytes past its limit; the limit is exact here.
    if (!too_large && head_bytes > options().header_limit) {
      OnReadError(bhttp::error::header_limit);
      return;
    }
    // A request is in progress from here: the connection is no longer an eviction
    // candidate. One evicted just before its head arrived closes without handling it.
    if (registered_ && !core_->MarkBusy(id_)) {
      Close();
      return;
    }
    busy_ = true;
    Lowest().expires_at(request_start_ + Ms(options().read_timeout_ms));
    auto& req = parser_->get();
    if (!TransferEncodingIsPlainChunked(req)) {
      // Beast frames any list ending in chunked as chunked and would hand the handler a
      // body still in the other codings; none is implemented, so none is accepted.
      WriteAndClose(JsonError(ErrorCode::kBadRequest,
                              "unsupported Transfer-Encoding: only chunked is accepted"));
      return;
    }
    if (too_large) {
      Request head;
      if (options().may_read_body && !FillRequest(req, &head) && !options().may_read_body(head)) {
        BeginHandling(req);
        keep_alive_ = false;
        Dispatch(std::move(head));
        return;
      }
      OnReadError(ec);
      return;
    }
    if (!parser_->is_done() && options().may_read_body) {
      // A body is to come: a request the server would refuse from its head (no token) is
      // answered now and the connection closed, its body never read, so that a client
      // without credentials cannot hold a request in progress by trickling a body.
      Request head;
      if (auto bad = FillRequest(req, &head)) {
        BeginHandling(req);
        WriteAndClose(std::move(*bad));
        return;
      }
      if (!options().may_read_body(head)) {
        BeginHandling(req);
        keep_alive_ = false;
        Dispatch(std::move(head));
        return;
      }
    }
    if (!parser_->is_done() && beast::iequals(req[bhttp::field::expect], "100-continue")) {
      // curl and others wait for this before sending a large body. The read deadline keeps
      // running: this short write is part of reading the request.
      continue_.emplace(bhttp::status::continue_, req.version());
      bhttp::async_write(stream_, *continue_,
                         [self = this->shared_from_this()](error_code e, size_t) {
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
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](error_code ec, size_t) {
                        if (ec) {
                          self->OnReadError(ec);
                          return;
                        }
                        self->OnRequest();
                      });
  }

  void OnReadError(error_code ec) {
    if (ec == bhttp::error::body_limit) {
      WriteAndClose(
          JsonError(ErrorCode::kBodyTooLarge,
                    "request body exceeds " + std::to_string(options().body_limit) + " bytes"));
      return;
    }
    if (ec == bhttp::error::header_limit) {
      WriteAndClose(
          JsonError(ErrorCode::kBadRequest,
                    "request header exceeds " + std::to_string(options().header_limit) + " bytes"));
      return;
    }
    // The peer went away, or the read deadline passed (a slow or stalled client is dropped
    // without an answer), or the message ended half way: nobody to answer.
    if (ec == beast::error::timeout || ec == bhttp::error::end_of_stream ||
        ec == bhttp::error::partial_message ||
        ec.category() != bhttp::make_error_code(bhttp::error::bad_method).category()) {
      Close();
      return;
    }
    WriteAndClose(JsonError(ErrorCode::kBadRequest, "malformed HTTP request: " + ec.message()));
  }

  void OnRequest() {
    bhttp::request<bhttp::string_body> msg = parser_->release();
    parser_.reset();
    BeginHandling(msg);
    Request r;
    if (auto bad = FillRequest(msg, &r)) {
      // The message itself was well formed, so the connection can stay.
      OnResponse(seq_, std::move(*bad));
      return;
    }
    r.body = std::move(msg.body());
    Dispatch(std::move(r));
  }

  void BeginHandling(const bhttp::request<bhttp::string_body>& msg) {
    ++seq_;
    version_ = msg.version();
    keep_alive_ = msg.keep_alive();
    head_ = msg.method() == bhttp::verb::head;
    state_ = State::kHandling;
  }

  // The request's fields from its head (all but the body), or the answer to a head no
  // handler sees: a target that cannot be parsed, two Authorization headers.
  std::optional<Response> FillRequest(const bhttp::request<bhttp::string_body>& msg, Request* r) {
    // HEAD is GET without the body (RFC 9110 9.3.2): handlers see GET, so every GET route,
    // its authorisation (GET /v1/health needs no token) and its length answer HEAD alike.
    r->method =
        msg.method() == bhttp::verb::head ? std::string("GET") : std::string(msg.method_string());
    r->target = std::string(msg.target());
    auto target = ParseTarget(r->target);
    if (!target.ok()) return JsonError(ErrorCode::kBadRequest, target.status().message());
    if (msg.count(bhttp::field::authorization) > 1) {
      // Which of two credentials counts would be a guess (a proxy may pick the other one).
      return JsonError(ErrorCode::kBadRequest, "more than one Authorization header");
    }
    r->path = std::move(target->path);
    r->query = std::move(target->query);
    r->authorization = std::string(msg[bhttp::field::authorization]);
    r->headers.reserve(std::distance(msg.begin(), msg.end()));
    for (const auto& f : msg)
      r->headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    r->remote_address = remote_address_;
    r->remote_port = remote_port_;
    r->tls = kTls;
    r->peer_cn = peer_cn_;
    r->peer_cert_error = peer_cert_error_;
    return std::nullopt;
  }

  void Dispatch(Request&& r) {
    auto reply = std::make_shared<Reply>(this->shared_from_this(), seq_);
    Responder responder = [reply](Response resp) { reply->Answer(std::move(resp)); };
    try {
      core_->handler(std::move(r), std::move(responder));
    } catch (...) {
      // The caller logs its own failures; here the client just gets an answer.
      reply->Answer(JsonError(ErrorCode::kInternal, "internal error"));
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
    if (r.status < 200 || r.status > 999)
      r = JsonError(ErrorCode::kInternal, "invalid response status");
    res_.emplace();
    res_->version(version_);
    res_->result(static_cast<unsigned>(r.status));
    bool close = force_close || !keep_alive_ || stop_requested_ || core_->stopping.load();
    for (auto& [name, value] : r.headers) {
      if (!IsSafeHeader(name, value)) continue;
      if (IEquals(name, "content-length") || IEquals(name, "transfer-encoding") ||
          IEquals(name, "content-type")) {
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
              type.empty() || type.find_first_of("\r\n") != std::string::npos
                  ? "application/octet-stream"
                  : type);
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
    if (busy_) {  // answered: closing politely, a candidate for eviction like an idle one
      busy_ = false;
      if (registered_) core_->MarkIdle(id_);
    }
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
    Lowest().async_read_some(net::buffer(discard_),
                             [self = this->shared_from_this()](error_code ec, size_t n) {
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
    if (registered_) core_->Release(id_);
  }

  std::shared_ptr<ServerCore> core_;
  bool refuse_ = false;
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
  bool busy_ = false;  // a request in progress (head complete, answer not yet written)
  Deadline request_start_{};
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
  acceptor.async_accept(net::make_strand(ioc),
                        [self = shared_from_this()](error_code ec, tcp::socket socket) {
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
  auto start = [&](auto session) {
    std::shared_ptr<SessionBase> victim;
    // Counted per client: an IPv4 address, or an IPv6 /64 (docs/http.md, "At the connection cap").
    uint64_t id =
        Admit(session->weak_from_this(), ConnectionLimitKey(session->remote_address()), victim);
    if (victim) victim->ForceClose();
    if (id != 0) {
      session->Registered(id);
    } else if (refused.fetch_add(1),
               refusing.load() >= std::max<size_t>(options.max_connections, 1)) {
      // Even the polite refusals are capped: a flood gets its sockets closed at once.
      return;  // the session and its socket are destroyed here
    } else {
      session->Refuse();
    }
    session->Start();
  };
  if (ssl_ctx) {
    start(std::make_shared<TlsSession>(shared_from_this(), std::move(socket), *ssl_ctx));
  } else {
    start(std::make_shared<PlainSession>(shared_from_this(), std::move(socket)));
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
    return Status::Error(ErrorCode::kUnavailable,
                         what + " " + o.host + ":" + std::to_string(o.port) + ": " + ec.message());
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
  if (a.set_option(net::socket_base::reuse_address(true), ec); ec)
    return fail("cannot set options on", ec);
  if (a.bind(endpoint, ec); ec) return fail("cannot bind", ec);
  if (a.listen(net::socket_base::max_listen_connections, ec); ec)
    return fail("cannot listen on", ec);
  core_->port.store(a.local_endpoint(ec).port());
  core_->DoAccept();
  return Status::Ok();
}

uint16_t Server::port() const { return core_->port.load(); }

void Server::Stop(std::function<void()> on_drained) {
  core_->stopping.store(true);
  net::post(core_->ioc,
            [core = core_, cb = std::move(on_drained)]() mutable { core->DoStop(std::move(cb)); });
}

bool Server::stopping() const { return core_->stopping.load(); }

size_t Server::active_connections() const { return core_->active.load(); }

uint64_t Server::evicted_connections() const { return core_->evicted.load(); }

uint64_t Server::refused_connections() const { return core_->refused.load(); }

Result<size_t> Server::ReloadCrl() {
  const auto& tls = core_->options.tls;
  if (!tls || tls->crl_file.empty() || !core_->ssl_ctx) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "no CRL to reload: the listener has no crl_file");
  }
  size_t revoked = 0;
  auto store = MakeVerifyStore(tls->client_ca_file, tls->crl_file, &revoked);
  if (!store.ok()) return store.status();
  // Connections accepted from now on verify against the new store (each SSL takes the
  // context's store when it is created, on this thread); those already open were verified
  // at their handshake.
  SSL_CTX_set1_verify_cert_store(core_->ssl_ctx->native_handle(), store->get());
  return revoked;
}

}  // namespace loyalty::http
