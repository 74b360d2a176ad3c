// Mutual TLS over real sockets on 127.0.0.1 with a throwaway PKI (tests/support/pki.h):
// the server's two client-certificate modes, the identity it hands to handlers, and the
// client's verification of the server. Assertions are on behaviour (answered, refused,
// which identity), never on timing.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "loyalty/http/client.h"
#include "loyalty/http/errors.h"
#include "loyalty/http/server.h"
#include "loyalty/http/tls_profile.h"
#include "support/pki.h"

namespace loyalty::http {
namespace {

using nlohmann::json;
using testing::CertAndKey;
using testing::TestPki;

TestPki& Pki() {
  static std::unique_ptr<TestPki> pki = [] {
    auto made = TestPki::Create({"T-0001", "T-0002"});
    EXPECT_TRUE(made.ok()) << made.status().ToString();
    return made.ok() ? std::move(*made) : nullptr;
  }();
  return *pki;
}

// Answers with what the server knows of the peer; /terminals/<id> answers 403 unless the
// client certificate is for <id>, the check HQ's terminal routes make.
void EchoPeer(Request&& r, Responder respond) {
  const std::string prefix = "/terminals/";
  if (r.path.rfind(prefix, 0) == 0) {
    Status s = CheckPeerCn(r, r.path.substr(prefix.size()));
    if (!s.ok()) {
      respond(ErrorResponse(s));
      return;
    }
  }
  json j = {{"tls", r.tls},
            {"peer_cn", r.peer_cn},
            {"peer_cert_error", r.peer_cert_error},
            {"body", r.body}};
  respond(Response{200, "application/json", j.dump(), {}});
}

class TlsServer {
 public:
  explicit TlsServer(ClientCertMode mode, ServerOptions options = {}, Handler handler = EchoPeer,
                     std::string crl_file = "") {
    options.host = "127.0.0.1";
    options.port = 0;
    CertAndKey server = Pki().server();
    options.tls = TlsServerOptions{server.cert_file, server.key_file, Pki().ca_file(), mode,
                                   std::move(crl_file)};
    Handler counted = [this, handler](Request&& r, Responder respond) {
      handled_.fetch_add(1);
      handler(std::move(r), std::move(respond));
    };
    server_ = std::make_unique<Server>(ioc_, options, std::move(counted));
    Status s = server_->Listen();
    EXPECT_TRUE(s.ok()) << s.ToString();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~TlsServer() {
    server_->Stop([this] { ioc_.stop(); });
    thread_.join();
  }
  uint16_t port() const { return server_->port(); }
  int handled() const { return handled_.load(); }
  Server& server() { return *server_; }
  boost::asio::io_context& ioc() { return ioc_; }

 private:
  boost::asio::io_context ioc_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::atomic<int> handled_{0};
};

ClientTlsOptions WithCert(const CertAndKey& cert) {
  return ClientTlsOptions{Pki().ca_file(), cert.cert_file, cert.key_file, ""};
}

ClientTlsOptions NoCert() { return ClientTlsOptions{Pki().ca_file(), "", "", ""}; }

json Body(const Result<Response>& r) {
  if (!r.ok()) return json();
  return json::parse(r->body, nullptr, false);
}

TEST(HttpTls, VerifiedClientCertificateGivesItsCnToTheHandler) {
  TlsServer server(ClientCertMode::kRequest);
  Client client("127.0.0.1", server.port(), WithCert(Pki().client("T-0001")));
  ASSERT_TRUE(client.status().ok()) << client.status().ToString();
  auto r = client.Request("POST", "/echo", R"({"x":1})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  json j = Body(r);
  EXPECT_EQ(j["tls"], true);
  EXPECT_EQ(j["peer_cn"], "T-0001");
  EXPECT_EQ(j["peer_cert_error"], "");
  EXPECT_EQ(j["body"], R"({"x":1})");
}

TEST(HttpTls, RequiredModeAcceptsAVerifiedCertificate) {
  TlsServer server(ClientCertMode::kRequire);
  Client client("127.0.0.1", server.port(), WithCert(Pki().client("T-0002")));
  auto r = client.Request("GET", "/terminals/T-0002");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(Body(r)["peer_cn"], "T-0002");
}

TEST(HttpTls, CertificateForAnotherTerminalIsForbidden) {
  TlsServer server(ClientCertMode::kRequire);
  Client client("127.0.0.1", server.port(), WithCert(Pki().client("T-0001")));
  auto own = client.Request("GET", "/terminals/T-0001");
  ASSERT_TRUE(own.ok()) << own.status().ToString();
  EXPECT_EQ(own->status, 200);
  auto other = client.Request("GET", "/terminals/T-0002");
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_EQ(other->status, 403);
  EXPECT_EQ(Body(other)["error"]["code"], "forbidden");
  // Exact comparison: neither a case variant nor a prefix is the same terminal.
  EXPECT_EQ(client.Request("GET", "/terminals/t-0001")->status, 403);
  EXPECT_EQ(client.Request("GET", "/terminals/T-000")->status, 403);
  EXPECT_EQ(client.Request("GET", "/terminals/")->status, 403);
}

TEST(HttpTls, RequestModeWithoutCertificateArrivesWithoutIdentity) {
  TlsServer server(ClientCertMode::kRequest);
  Client client("127.0.0.1", server.port(), NoCert());
  auto r = client.Request("GET", "/admin");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  json j = Body(r);
  EXPECT_EQ(j["tls"], true);
  EXPECT_EQ(j["peer_cn"], "");
  EXPECT_EQ(j["peer_cert_error"], "");
  auto terminal = client.Request("GET", "/terminals/T-0001");
  ASSERT_TRUE(terminal.ok());
  EXPECT_EQ(terminal->status, 403);
}

TEST(HttpTls, RequiredModeRefusesAClientWithoutCertificate) {
  TlsServer server(ClientCertMode::kRequire);
  Client client("127.0.0.1", server.port(), NoCert());
  auto r = client.Request("GET", "/terminals/T-0001", {}, {}, 5000);
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(server.handled(), 0);
}

TEST(HttpTls, UntrustedCaGivesNoIdentityInRequestMode) {
  TlsServer server(ClientCertMode::kRequest);
  Client client("127.0.0.1", server.port(), WithCert(Pki().other_client()));
  auto r = client.Request("GET", "/terminals/T-0001");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 403);
  auto echo = client.Request("GET", "/echo");
  ASSERT_TRUE(echo.ok());
  json j = Body(echo);
  EXPECT_EQ(j["peer_cn"], "");
  EXPECT_NE(j["peer_cert_error"], "");
}

TEST(HttpTls, UntrustedCaIsRefusedInRequiredMode) {
  TlsServer server(ClientCertMode::kRequire);
  Client client("127.0.0.1", server.port(), WithCert(Pki().other_client()));
  EXPECT_EQ(client.Request("GET", "/terminals/T-0001", {}, {}, 5000).status().code(),
            ErrorCode::kUnavailable);
  EXPECT_EQ(server.handled(), 0);
}

TEST(HttpTls, ExpiredCertificateGivesNoIdentityInRequestMode) {
  TlsServer server(ClientCertMode::kRequest);
  Client client("127.0.0.1", server.port(), WithCert(Pki().expired()));
  auto r = client.Request("GET", "/echo");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  json j = Body(r);
  EXPECT_EQ(j["peer_cn"], "");
  EXPECT_NE(j["peer_cert_error"].get<std::string>().find("expired"), std::string::npos) << j.dump();
  auto terminal = client.Request("GET", "/terminals/T-0001");
  ASSERT_TRUE(terminal.ok());
  EXPECT_EQ(terminal->status, 403);
  EXPECT_NE(Body(terminal)["error"]["message"].get<std::string>().find("expired"),
            std::string::npos);
}

TEST(HttpTls, ExpiredCertificateIsRefusedInRequiredMode) {
  TlsServer server(ClientCertMode::kRequire);
  Client client("127.0.0.1", server.port(), WithCert(Pki().expired()));
  EXPECT_EQ(client.Request("GET", "/terminals/T-0001", {}, {}, 5000).status().code(),
            ErrorCode::kUnavailable);
  EXPECT_EQ(server.handled(), 0);
}

// HQ's server certificate comes from the same CA but is not a client certificate.
TEST(HttpTls, ServerCertificateIsNoClientIdentity) {
  TlsServer server(ClientCertMode::kRequest);
  Client client("127.0.0.1", server.port(), WithCert(Pki().server()));
  auto r = client.Request("GET", "/terminals/localhost");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 403);
  EXPECT_NE(Body(r)["error"]["message"].get<std::string>().find("purpose"), std::string::npos)
      << r->body;
  TlsServer strict(ClientCertMode::kRequire);
  Client refused("127.0.0.1", strict.port(), WithCert(Pki().server()));
  EXPECT_EQ(refused.Request("GET", "/echo", {}, {}, 5000).status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(strict.handled(), 0);
}

// Nor is a terminal's certificate a server certificate, though the CA is the same.
TEST(HttpTls, ClientRefusesATerminalCertificateAsTheServers) {
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  CertAndKey terminal = Pki().client("T-0001");
  options.tls = TlsServerOptions{terminal.cert_file, terminal.key_file, Pki().ca_file(),
                                 ClientCertMode::kNone};
  boost::asio::io_context ioc;
  Server server(ioc, options, EchoPeer);
  ASSERT_TRUE(server.Listen().ok());
  std::thread loop([&] { ioc.run(); });
  ClientTlsOptions named = NoCert();
  named.server_name = "T-0001";
  Client client("127.0.0.1", server.port(), named);
  auto r = client.Request("GET", "/");
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.status().message().find("purpose"), std::string::npos) << r.status().message();
  server.Stop([&] { ioc.stop(); });
  loop.join();
}

TEST(HttpTls, CnWithAControlCharacterIsNoIdentity) {
  auto odd = Pki().IssueClient("control-cn", std::string("T-0001\x01", 7));
  ASSERT_TRUE(odd.ok()) << odd.status().ToString();
  TlsServer server(ClientCertMode::kRequest);
  Client client("127.0.0.1", server.port(), WithCert(*odd));
  auto r = client.Request("GET", "/echo");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Body(r)["peer_cn"], "");
  EXPECT_NE(Body(r)["peer_cert_error"].get<std::string>().find("CN"), std::string::npos) << r->body;
  EXPECT_EQ(client.Request("GET", "/terminals/T-0001")->status, 403);
}

TEST(HttpTls, NoneModeAsksForNoCertificate) {
  TlsServer server(ClientCertMode::kNone);
  Client client("127.0.0.1", server.port(), WithCert(Pki().client("T-0001")));
  auto r = client.Request("GET", "/echo");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Body(r)["tls"], true);
  EXPECT_EQ(Body(r)["peer_cn"], "");
}

TEST(HttpTls, ClientRefusesAServerCertificateForAnotherHost) {
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  CertAndKey wrong = Pki().wrong_host();
  options.tls =
      TlsServerOptions{wrong.cert_file, wrong.key_file, Pki().ca_file(), ClientCertMode::kRequest};
  boost::asio::io_context ioc;
  std::atomic<int> handled{0};
  Server server(ioc, options, [&](Request&&, Responder respond) {
    handled.fetch_add(1);
    respond(Response{});
  });
  ASSERT_TRUE(server.Listen().ok());
  std::thread loop([&] { ioc.run(); });

  Client by_ip("127.0.0.1", server.port(), NoCert());
  auto r = by_ip.Request("GET", "/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.status().message().find("refused"), std::string::npos) << r.status().message();
  Client by_name("localhost", server.port(), NoCert());
  EXPECT_FALSE(by_name.Request("GET", "/").ok());
  EXPECT_EQ(handled.load(), 0);

  // The same certificate passes when the name it carries is the one expected: what is
  // checked is the name, and the chain is otherwise good.
  ClientTlsOptions named = NoCert();
  named.server_name = "hq.example";
  Client client("127.0.0.1", server.port(), named);
  auto ok = client.Request("GET", "/");
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
  named.server_name = "192.0.2.1";
  Client by_listed_ip("127.0.0.1", server.port(), named);
  EXPECT_TRUE(by_listed_ip.Request("GET", "/").ok());

  server.Stop([&] { ioc.stop(); });
  loop.join();
}

TEST(HttpTls, ClientRefusesAServerFromAnotherCa) {
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  CertAndKey other = Pki().other_server();
  options.tls =
      TlsServerOptions{other.cert_file, other.key_file, Pki().ca_file(), ClientCertMode::kRequest};
  boost::asio::io_context ioc;
  std::atomic<int> handled{0};
  Server server(ioc, options, [&](Request&&, Responder respond) {
    handled.fetch_add(1);
    respond(Response{});
  });
  ASSERT_TRUE(server.Listen().ok());
  std::thread loop([&] { ioc.run(); });

  Client client("127.0.0.1", server.port(), WithCert(Pki().client("T-0001")));
  auto r = client.Request("GET", "/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(handled.load(), 0);
  // Trusting that CA instead makes the same server acceptable.
  Client trusting("localhost", server.port(), ClientTlsOptions{Pki().other_ca_file(), "", "", ""});
  EXPECT_TRUE(trusting.Request("GET", "/").ok());

  server.Stop([&] { ioc.stop(); });
  loop.join();
}

TEST(HttpTls, KeepsOneConnectionAndCountsBodyBytes) {
  TlsServer server(ClientCertMode::kRequire);
  Client client("localhost", server.port(), WithCert(Pki().client("T-0001")));
  std::string body(1000, 'a');
  size_t received = 0;
  for (int i = 0; i < 5; ++i) {
    auto r = client.Request("POST", "/echo", body);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 200);
    received += r->body.size();
  }
  Client::Counters c = client.counters();
  EXPECT_EQ(c.connections, 1u);
  EXPECT_EQ(c.responses, 5u);
  EXPECT_EQ(c.request_body_bytes, 5000u);
  EXPECT_EQ(c.response_body_bytes, received);
  client.ResetCounters();
  EXPECT_EQ(client.counters().request_body_bytes, 0u);
  EXPECT_EQ(client.counters().connections, 0u);
}

TEST(HttpTls, BodyOverTheLimitStillGetsIts413) {
  ServerOptions options;
  options.body_limit = 1000;
  TlsServer server(ClientCertMode::kRequire, options);
  Client client("127.0.0.1", server.port(), WithCert(Pki().client("T-0001")));
  auto r = client.Request("POST", "/echo", std::string(1 << 20, 'x'));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(Body(r)["error"]["code"], "body_too_large");
  // The connection was closed after the 413; the next request opens a new one.
  auto next = client.Request("POST", "/echo", std::string(1000, 'x'));
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->status, 200);
}

TEST(HttpTls, PlainClientGetsNoAnswerFromATlsListener) {
  TlsServer server(ClientCertMode::kRequest);
  Client plain("127.0.0.1", server.port());
  EXPECT_FALSE(plain.Request("GET", "/echo", {}, {}, 5000).ok());
  EXPECT_EQ(server.handled(), 0);
}

TEST(HttpTls, TlsClientFailsAgainstAPlainListener) {
  boost::asio::io_context ioc;
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  Server server(ioc, options, [](Request&&, Responder respond) { respond(Response{}); });
  ASSERT_TRUE(server.Listen().ok());
  std::thread loop([&] { ioc.run(); });
  Client client("127.0.0.1", server.port(), NoCert());
  EXPECT_FALSE(client.Request("GET", "/", {}, {}, 5000).ok());
  server.Stop([&] { ioc.stop(); });
  loop.join();
}

TEST(HttpTls, SilentConnectionIsDroppedAfterTheHandshakeDeadline) {
  ServerOptions options;
  options.handshake_timeout_ms = 200;
  options.read_timeout_ms = 60000;  // the handshake is under its own deadline, not these
  options.header_timeout_ms = 60000;
  options.idle_timeout_ms = 60000;
  TlsServer server(ClientCertMode::kRequest, options);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server.port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  timeval tv{20, 0};  // turns a server that never drops us into a failure, not a hang
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char c;
  EXPECT_EQ(::recv(fd, &c, 1, 0), 0);  // closed by the server, nothing sent
  ::close(fd);
}

// Over the cap with the only connection's request in progress: 503, over TLS.
TEST(HttpTls, OverTheConnectionCapAnswers503OverTls) {
  ServerOptions options;
  options.max_connections = 1;
  std::promise<Responder> held;
  TlsServer server(ClientCertMode::kRequest, options, [&](Request&& r, Responder respond) {
    if (r.path == "/hold") {
      held.set_value(std::move(respond));
      return;
    }
    EchoPeer(std::move(r), std::move(respond));
  });
  auto first = std::async(std::launch::async, [&] {
    Client c("127.0.0.1", server.port(), NoCert());
    return c.Request("GET", "/hold");  // a request in progress: never evicted
  });
  Responder answer = held.get_future().get();
  ASSERT_EQ(server.server().active_connections(), 1u);
  Client second("127.0.0.1", server.port(), NoCert());
  auto r = second.Request("GET", "/echo");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(Body(r)["error"]["code"], "unavailable");
  answer(Response{200, "application/json", "{}", {}});
  auto f = first.get();
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->status, 200);
}

// A connection that never finishes its handshake is idle: at the cap it is the one closed
// to admit a client that does.
TEST(HttpTls, AtTheCapAConnectionMidHandshakeIsEvicted) {
  ServerOptions options;
  options.max_connections = 1;
  TlsServer server(ClientCertMode::kRequest, options);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server.port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::send(fd, "\x16\x03\x01", 3, MSG_NOSIGNAL), 3);  // the start of a ClientHello
  for (int i = 0; i < 400 && server.server().active_connections() != 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  Client client("127.0.0.1", server.port(), WithCert(Pki().client("T-0001")));
  auto r = client.Request("GET", "/echo");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(server.server().evicted_connections(), 1u);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char c;
  EXPECT_LE(::recv(fd, &c, 1, 0), 0);  // closed by the server
  ::close(fd);
}

// A raw OpenSSL client with exactly the protocol versions and suites a test names: whether
// its handshake with the server succeeds.
bool RawHandshake(uint16_t port, int min_version, int max_version, const char* tls12_ciphers,
                  const char* tls13_suites = nullptr) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        SSL_CTX_free);
  SSL_CTX_set_min_proto_version(ctx.get(), min_version);
  SSL_CTX_set_max_proto_version(ctx.get(), max_version);
  if (tls12_ciphers != nullptr && SSL_CTX_set_cipher_list(ctx.get(), tls12_ciphers) != 1)
    return false;
  if (tls13_suites != nullptr && SSL_CTX_set_ciphersuites(ctx.get(), tls13_suites) != 1)
    return false;
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return false;
  }
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  SSL* ssl = SSL_new(ctx.get());
  SSL_set_fd(ssl, fd);
  bool ok = SSL_connect(ssl) == 1;
  SSL_free(ssl);
  ::close(fd);
  ERR_clear_error();
  return ok;
}

// Mozilla's "intermediate" profile at the listener: TLS 1.2 with ECDHE and AEAD suites and
// TLS 1.3 are accepted; CBC suites (SHA1 or SHA384), static RSA key exchange, TLS 1.1 and
// TLS 1.0 are refused (what `openssl s_client -cipher AES128-SHA -tls1_2` tries).
TEST(HttpTls, ListenerSpeaksOnlyTheIntermediateProfile) {
  TlsServer server(ClientCertMode::kRequest);
  EXPECT_TRUE(
      RawHandshake(server.port(), TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256"));
  EXPECT_TRUE(
      RawHandshake(server.port(), TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-ECDSA-CHACHA20-POLY1305"));
  EXPECT_TRUE(RawHandshake(server.port(), TLS1_3_VERSION, TLS1_3_VERSION, nullptr,
                           "TLS_AES_256_GCM_SHA384"));
  EXPECT_FALSE(RawHandshake(server.port(), TLS1_2_VERSION, TLS1_2_VERSION, "AES128-SHA"));
  EXPECT_FALSE(
      RawHandshake(server.port(), TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-ECDSA-AES128-SHA"));
  EXPECT_FALSE(
      RawHandshake(server.port(), TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-ECDSA-AES256-SHA384"));
  EXPECT_FALSE(RawHandshake(server.port(), TLS1_2_VERSION, TLS1_2_VERSION, "AES128-GCM-SHA256"));
  EXPECT_FALSE(RawHandshake(server.port(), TLS1_1_VERSION, TLS1_1_VERSION, "DEFAULT:@SECLEVEL=0"));
  EXPECT_FALSE(RawHandshake(server.port(), TLS1_VERSION, TLS1_VERSION, "DEFAULT:@SECLEVEL=0"));
}

// The clients that reach HQ offer the same profile: only ECDHE with AEAD suites (and the
// TLS 1.3 ones), TLS 1.2 at least; against a server that offers only CBC-SHA1 suites they
// find nothing in common.
TEST(HttpTls, ClientOffersOnlyTheIntermediateProfile) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        SSL_CTX_free);
  ASSERT_TRUE(ApplyIntermediateProfile(ctx.get()));
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx.get()), TLS1_2_VERSION);
  EXPECT_EQ(SSL_CTX_get_max_proto_version(ctx.get()), TLS1_3_VERSION);
  STACK_OF(SSL_CIPHER)* ciphers = SSL_CTX_get_ciphers(ctx.get());
  ASSERT_NE(ciphers, nullptr);
  ASSERT_GT(sk_SSL_CIPHER_num(ciphers), 0);
  for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); ++i) {
    const SSL_CIPHER* c = sk_SSL_CIPHER_value(ciphers, i);
    EXPECT_EQ(SSL_CIPHER_is_aead(c), 1) << SSL_CIPHER_get_name(c);
    int kx = SSL_CIPHER_get_kx_nid(c);
    EXPECT_TRUE(kx == NID_kx_ecdhe || kx == NID_kx_any) << SSL_CIPHER_get_name(c);
  }

  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> weak(SSL_CTX_new(TLS_server_method()),
                                                         SSL_CTX_free);
  ASSERT_EQ(SSL_CTX_set_max_proto_version(weak.get(), TLS1_2_VERSION), 1);
  ASSERT_EQ(SSL_CTX_set_cipher_list(weak.get(), "AES128-SHA:ECDHE-ECDSA-AES128-SHA"), 1);
  ASSERT_EQ(SSL_CTX_use_certificate_chain_file(weak.get(), Pki().server().cert_file.c_str()), 1);
  ASSERT_EQ(
      SSL_CTX_use_PrivateKey_file(weak.get(), Pki().server().key_file.c_str(), SSL_FILETYPE_PEM),
      1);
  int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(lfd, 4), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::atomic<bool> accepted_handshake{false};
  std::thread weak_server([&] {
    int fd = ::accept(lfd, nullptr, nullptr);
    if (fd < 0) return;
    SSL* ssl = SSL_new(weak.get());
    SSL_set_fd(ssl, fd);
    accepted_handshake = SSL_accept(ssl) == 1;
    SSL_free(ssl);
    ::close(fd);
  });
  Client client("127.0.0.1", ntohs(addr.sin_port), NoCert());
  auto r = client.Request("GET", "/", "", {}, 5000);
  EXPECT_FALSE(r.ok());
  weak_server.join();
  EXPECT_FALSE(accepted_handshake.load());
  ::close(lfd);
  ERR_clear_error();
}

// HQ's CRL (crl_file, made with `openssl ca`): a revoked terminal certificate is refused at
// the handshake, even in kRequest mode where other verification failures only leave the
// request without identity; another certificate of the same CA still works. ReloadCrl
// picks up a new list for the handshakes that follow, and keeps the old one when the new
// file is bad.
TEST(HttpTls, RevokedCertificateIsRefusedAtTheHandshakeAndReloadPicksUpANewCrl) {
  if (std::system("command -v openssl >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl command";
  auto none = Pki().MakeCrl("crl-none", {});
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  auto one = Pki().MakeCrl("crl-one", {Pki().client("T-0001").cert_file});
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  const std::string crl = Pki().dir() + "/crl-in-use.pem";
  std::filesystem::copy_file(*none, crl, std::filesystem::copy_options::overwrite_existing);
  TlsServer server(ClientCertMode::kRequest, {}, EchoPeer, crl);

  auto call = [&](const char* id) {
    Client c("127.0.0.1", server.port(), WithCert(Pki().client(id)));
    return c.Request("GET", std::string("/terminals/") + id);
  };
  auto reload = [&] {
    std::promise<Result<size_t>> done;
    boost::asio::post(server.ioc(), [&] { done.set_value(server.server().ReloadCrl()); });
    return done.get_future().get();
  };
  auto before = call("T-0001");
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_EQ(before->status, 200);

  std::filesystem::copy_file(*one, crl, std::filesystem::copy_options::overwrite_existing);
  auto n = reload();
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1u);
  int handled = server.handled();
  auto revoked = call("T-0001");
  EXPECT_FALSE(revoked.ok()) << "a revoked certificate was answered";
  EXPECT_EQ(server.handled(), handled);  // it never reached the handler
  auto other = call("T-0002");
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_EQ(other->status, 200);
  Client admin("127.0.0.1", server.port(), NoCert());  // no certificate: still a request
  auto a = admin.Request("GET", "/echo");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->status, 200);

  // A bad file on reload: refused with the file named; the list in use stays.
  std::ofstream(crl, std::ios::trunc)
      << "-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n";
  auto bad = reload();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find(crl), std::string::npos) << bad.status().message();
  EXPECT_FALSE(call("T-0001").ok());
  EXPECT_TRUE(call("T-0002").ok());
}

// What crl_file must be: PEM CRLs, one for each CA of client_ca_file, signed by it.
TEST(HttpTls, ListenRefusesACrlItCannotUse) {
  if (std::system("command -v openssl >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl command";
  boost::asio::io_context ioc;
  auto listen = [&](const std::string& crl) {
    ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    CertAndKey s = Pki().server();
    options.tls =
        TlsServerOptions{s.cert_file, s.key_file, Pki().ca_file(), ClientCertMode::kRequest, crl};
    Server server(ioc, options, EchoPeer);
    return server.Listen();
  };
  auto good = Pki().MakeCrl("crl-good", {});
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_TRUE(listen(*good).ok());
  Status missing = listen(Pki().dir() + "/missing-crl.pem");
  EXPECT_EQ(missing.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(missing.message().find("missing-crl.pem"), std::string::npos) << missing.message();
  Status not_crl = listen(Pki().ca_file());  // PEM, but a certificate: no CRL in it
  EXPECT_EQ(not_crl.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(not_crl.message().find("no CRL"), std::string::npos) << not_crl.message();
}

TEST(HttpTls, StopDrainsTlsConnections) {
  boost::asio::io_context ioc;
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  CertAndKey cert = Pki().server();
  options.tls =
      TlsServerOptions{cert.cert_file, cert.key_file, Pki().ca_file(), ClientCertMode::kRequire};
  Server server(ioc, options, EchoPeer);
  ASSERT_TRUE(server.Listen().ok());
  std::thread loop([&] { ioc.run(); });
  Client client("127.0.0.1", server.port(), WithCert(Pki().client("T-0001")));
  ASSERT_TRUE(client.Request("GET", "/echo").ok());
  std::promise<void> drained;
  server.Stop([&] { drained.set_value(); });
  EXPECT_EQ(drained.get_future().wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_EQ(server.active_connections(), 0u);
  ioc.stop();
  loop.join();
}

TEST(HttpTls, ListenRefusesFilesItCannotUse) {
  boost::asio::io_context ioc;
  auto listen = [&](TlsServerOptions tls) {
    ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.tls = std::move(tls);
    Server server(ioc, options, EchoPeer);
    return server.Listen();
  };
  CertAndKey s = Pki().server();
  CertAndKey c = Pki().client("T-0001");
  std::string missing = Pki().dir() + "/missing.pem";
  EXPECT_EQ(listen({missing, s.key_file, Pki().ca_file(), ClientCertMode::kRequest}).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(listen({s.cert_file, missing, Pki().ca_file(), ClientCertMode::kRequest}).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(listen({s.cert_file, c.key_file, Pki().ca_file(), ClientCertMode::kRequest}).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(listen({s.cert_file, s.key_file, missing, ClientCertMode::kRequire}).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(listen({s.cert_file, s.key_file, "", ClientCertMode::kRequest}).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(listen({s.key_file, s.key_file, Pki().ca_file(), ClientCertMode::kRequest}).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_TRUE(listen({s.cert_file, s.key_file, "", ClientCertMode::kNone}).ok());
}

TEST(HttpTls, ClientReportsFilesItCannotUse) {
  std::string missing = Pki().dir() + "/missing.pem";
  CertAndKey c = Pki().client("T-0001");
  Client bad_ca("127.0.0.1", 1, ClientTlsOptions{missing, "", "", ""});
  EXPECT_EQ(bad_ca.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad_ca.Request("GET", "/").status().code(), ErrorCode::kInvalidArgument);
  Client cert_without_key("127.0.0.1", 1, ClientTlsOptions{Pki().ca_file(), c.cert_file, "", ""});
  EXPECT_EQ(cert_without_key.status().code(), ErrorCode::kInvalidArgument);
  Client mismatched("127.0.0.1", 1,
                    ClientTlsOptions{Pki().ca_file(), c.cert_file, Pki().server().key_file, ""});
  EXPECT_EQ(mismatched.status().code(), ErrorCode::kInvalidArgument);
  Client fine("127.0.0.1", 1, WithCert(c));
  EXPECT_TRUE(fine.status().ok());
}

TEST(HttpTls, CheckPeerCnNeedsTlsAndAVerifiedCertificate) {
  Request r;
  r.peer_cn = "T-0001";
  EXPECT_EQ(CheckPeerCn(r, "T-0001").code(), ErrorCode::kForbidden);  // not over TLS
  r.tls = true;
  EXPECT_TRUE(CheckPeerCn(r, "T-0001").ok());
  EXPECT_EQ(CheckPeerCn(r, "T-0002").code(), ErrorCode::kForbidden);
  EXPECT_EQ(CheckPeerCn(r, "").code(), ErrorCode::kForbidden);
  r.peer_cn.clear();
  EXPECT_EQ(CheckPeerCn(r, "").code(), ErrorCode::kForbidden);
  r.peer_cert_error = "certificate has expired";
  EXPECT_EQ(CheckPeerCn(r, "T-0001").code(), ErrorCode::kForbidden);
}

// What store IT gets from scripts/make-pki works with this server and client as it is.
TEST(HttpTls, CertificatesFromMakePkiWork) {
  if (std::system("command -v openssl >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl command";
  std::string dir = Pki().dir() + "/make-pki";
  std::filesystem::remove_all(dir);  // the script refuses to overwrite (--gtest_repeat)
  std::string script = std::string(LOYALTY_FIXTURES_DIR) + "/../../scripts/make-pki";
  std::string cmd = script + " --dir " + dir + " demo >/dev/null && " + script + " --dir " + dir +
                    " terminal T02 >/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  boost::asio::io_context ioc;
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.tls =
      TlsServerOptions{dir + "/hq.pem", dir + "/hq.key", dir + "/ca.pem", ClientCertMode::kRequest};
  Server server(ioc, options, EchoPeer);
  Status listened = server.Listen();
  ASSERT_TRUE(listened.ok()) << listened.ToString();
  std::thread loop([&] { ioc.run(); });
  for (std::string host : {"127.0.0.1", "localhost"}) {
    Client client(host, server.port(),
                  ClientTlsOptions{dir + "/ca.pem", dir + "/terminal-T01.pem",
                                   dir + "/terminal-T01.key", ""});
    auto r = client.Request("GET", "/terminals/T01");
    ASSERT_TRUE(r.ok()) << host << ": " << r.status().ToString();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(Body(r)["peer_cn"], "T01");
    EXPECT_EQ(client.Request("GET", "/terminals/T02")->status, 403);
  }
  // A terminal certificate from a CA that is not the one configured is no identity.
  Client stranger("127.0.0.1", server.port(),
                  ClientTlsOptions{dir + "/ca.pem", Pki().client("T-0001").cert_file,
                                   Pki().client("T-0001").key_file, ""});
  auto r = stranger.Request("GET", "/echo");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Body(r)["peer_cn"], "");
  server.Stop([&] { ioc.stop(); });
  loop.join();
}

TEST(HttpClient, CountsBodyBytesOverPlainHttpToo) {
  boost::asio::io_context ioc;
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  Server server(ioc, options, [](Request&& r, Responder respond) {
    respond(Response{200, "text/plain", std::string(r.body.size() * 2, 'b'), {}});
  });
  ASSERT_TRUE(server.Listen().ok());
  std::thread loop([&] { ioc.run(); });
  Client client("127.0.0.1", server.port());
  ASSERT_TRUE(client.Request("POST", "/", std::string(300, 'a')).ok());
  ASSERT_TRUE(client.Request("GET", "/").ok());
  Client::Counters c = client.counters();
  EXPECT_EQ(c.connections, 1u);
  EXPECT_EQ(c.responses, 2u);
  EXPECT_EQ(c.request_body_bytes, 300u);
  EXPECT_EQ(c.response_body_bytes, 600u);
  server.Stop([&] { ioc.stop(); });
  loop.join();
}

}  // namespace
}  // namespace loyalty::http
