// Mutual TLS over real sockets on 127.0.0.1 with a throwaway PKI (tests/support/pki.h):
// the server's two client-certificate modes, the identity it hands to handlers, and the
// client's verification of the server. Assertions are on behaviour (answered, refused,
// which identity), never on timing.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "loyalty/http/client.h"
#include "loyalty/http/server.h"
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
      respond(JsonError(403, s.code(), s.message()));
      return;
    }
  }
  json j = {{"tls", r.tls}, {"peer_cn", r.peer_cn}, {"peer_cert_error", r.peer_cert_error}, {"body", r.body}};
  respond(Response{200, "application/json", j.dump(), {}});
}

class TlsServer {
 public:
  explicit TlsServer(ClientCertMode mode, ServerOptions options = {}, Handler handler = EchoPeer) {
    options.host = "127.0.0.1";
    options.port = 0;
    CertAndKey server = Pki().server();
    options.tls = TlsServerOptions{server.cert_file, server.key_file, Pki().ca_file(), mode};
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
  EXPECT_EQ(r.status().code(), "unavailable");
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
  EXPECT_EQ(client.Request("GET", "/terminals/T-0001", {}, {}, 5000).status().code(), "unavailable");
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
  EXPECT_NE(Body(terminal)["error"]["message"].get<std::string>().find("expired"), std::string::npos);
}

TEST(HttpTls, ExpiredCertificateIsRefusedInRequiredMode) {
  TlsServer server(ClientCertMode::kRequire);
  Client client("127.0.0.1", server.port(), WithCert(Pki().expired()));
  EXPECT_EQ(client.Request("GET", "/terminals/T-0001", {}, {}, 5000).status().code(), "unavailable");
  EXPECT_EQ(server.handled(), 0);
}

// HQ's server certificate comes from the same CA but is not a client certificate.
TEST(HttpTls, ServerCertificateIsNoClientIdentity) {
  TlsServer server(ClientCertMode::kRequest);
  Client client("127.0.0.1", server.port(), WithCert(Pki().server()));
  auto r = client.Request("GET", "/terminals/localhost");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 403);
  EXPECT_NE(Body(r)["error"]["message"].get<std::string>().find("purpose"), std::string::npos) << r->body;
  TlsServer strict(ClientCertMode::kRequire);
  Client refused("127.0.0.1", strict.port(), WithCert(Pki().server()));
  EXPECT_EQ(refused.Request("GET", "/echo", {}, {}, 5000).status().code(), "unavailable");
  EXPECT_EQ(strict.handled(), 0);
}

// Nor is a terminal's certificate a server certificate, though the CA is the same.
TEST(HttpTls, ClientRefusesATerminalCertificateAsTheServers) {
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  CertAndKey terminal = Pki().client("T-0001");
  options.tls = TlsServerOptions{terminal.cert_file, terminal.key_file, Pki().ca_file(), ClientCertMode::kNone};
  boost::asio::io_context ioc;
  Server server(ioc, options, EchoPeer);
  ASSERT_TRUE(server.Listen().ok());
  std::thread loop([&] { ioc.run(); });
  ClientTlsOptions named = NoCert();
  named.server_name = "T-0001";
  Client client("127.0.0.1", server.port(), named);
  auto r = client.Request("GET", "/");
  EXPECT_EQ(r.status().code(), "unavailable");
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
  options.tls = TlsServerOptions{wrong.cert_file, wrong.key_file, Pki().ca_file(), ClientCertMode::kRequest};
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
  EXPECT_EQ(r.status().code(), "unavailable");
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
  options.tls = TlsServerOptions{other.cert_file, other.key_file, Pki().ca_file(), ClientCertMode::kRequest};
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
  EXPECT_EQ(r.status().code(), "unavailable");
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

TEST(HttpTls, SilentConnectionIsDroppedAfterTheReadDeadline) {
  ServerOptions options;
  options.read_timeout_ms = 200;
  options.idle_timeout_ms = 60000;  // the handshake is under the read deadline, not this
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

TEST(HttpTls, OverTheConnectionCapAnswers503OverTls) {
  ServerOptions options;
  options.max_connections = 1;
  TlsServer server(ClientCertMode::kRequest, options);
  Client first("127.0.0.1", server.port(), NoCert());
  ASSERT_TRUE(first.Request("GET", "/echo").ok());  // keeps its connection open
  ASSERT_EQ(server.server().active_connections(), 1u);
  Client second("127.0.0.1", server.port(), NoCert());
  auto r = second.Request("GET", "/echo");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(Body(r)["error"]["code"], "unavailable");
}

TEST(HttpTls, StopDrainsTlsConnections) {
  boost::asio::io_context ioc;
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  CertAndKey cert = Pki().server();
  options.tls = TlsServerOptions{cert.cert_file, cert.key_file, Pki().ca_file(), ClientCertMode::kRequire};
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
  EXPECT_EQ(listen({missing, s.key_file, Pki().ca_file(), ClientCertMode::kRequest}).code(), "invalid_argument");
  EXPECT_EQ(listen({s.cert_file, missing, Pki().ca_file(), ClientCertMode::kRequest}).code(), "invalid_argument");
  EXPECT_EQ(listen({s.cert_file, c.key_file, Pki().ca_file(), ClientCertMode::kRequest}).code(), "invalid_argument");
  EXPECT_EQ(listen({s.cert_file, s.key_file, missing, ClientCertMode::kRequire}).code(), "invalid_argument");
  EXPECT_EQ(listen({s.cert_file, s.key_file, "", ClientCertMode::kRequest}).code(), "invalid_argument");
  EXPECT_EQ(listen({s.key_file, s.key_file, Pki().ca_file(), ClientCertMode::kRequest}).code(), "invalid_argument");
  EXPECT_TRUE(listen({s.cert_file, s.key_file, "", ClientCertMode::kNone}).ok());
}

TEST(HttpTls, ClientReportsFilesItCannotUse) {
  std::string missing = Pki().dir() + "/missing.pem";
  CertAndKey c = Pki().client("T-0001");
  Client bad_ca("127.0.0.1", 1, ClientTlsOptions{missing, "", "", ""});
  EXPECT_EQ(bad_ca.status().code(), "invalid_argument");
  EXPECT_EQ(bad_ca.Request("GET", "/").status().code(), "invalid_argument");
  Client cert_without_key("127.0.0.1", 1, ClientTlsOptions{Pki().ca_file(), c.cert_file, "", ""});
  EXPECT_EQ(cert_without_key.status().code(), "invalid_argument");
  Client mismatched("127.0.0.1", 1, ClientTlsOptions{Pki().ca_file(), c.cert_file, Pki().server().key_file, ""});
  EXPECT_EQ(mismatched.status().code(), "invalid_argument");
  Client fine("127.0.0.1", 1, WithCert(c));
  EXPECT_TRUE(fine.status().ok());
}

TEST(HttpTls, CheckPeerCnNeedsTlsAndAVerifiedCertificate) {
  Request r;
  r.peer_cn = "T-0001";
  EXPECT_EQ(CheckPeerCn(r, "T-0001").code(), "forbidden");  // not over TLS
  r.tls = true;
  EXPECT_TRUE(CheckPeerCn(r, "T-0001").ok());
  EXPECT_EQ(CheckPeerCn(r, "T-0002").code(), "forbidden");
  EXPECT_EQ(CheckPeerCn(r, "").code(), "forbidden");
  r.peer_cn.clear();
  EXPECT_EQ(CheckPeerCn(r, "").code(), "forbidden");
  r.peer_cert_error = "certificate has expired";
  EXPECT_EQ(CheckPeerCn(r, "T-0001").code(), "forbidden");
}

// What store IT gets from scripts/make-pki works with this server and client as it is.
TEST(HttpTls, CertificatesFromMakePkiWork) {
  if (std::system("command -v openssl >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl command";
  std::string dir = Pki().dir() + "/make-pki";
  std::filesystem::remove_all(dir);  // the script refuses to overwrite (--gtest_repeat)
  std::string script = std::string(LOYALTY_FIXTURES_DIR) + "/../../scripts/make-pki";
  std::string cmd =
      script + " --dir " + dir + " demo >/dev/null && " + script + " --dir " + dir + " terminal T02 >/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  boost::asio::io_context ioc;
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.tls = TlsServerOptions{dir + "/hq.pem", dir + "/hq.key", dir + "/ca.pem", ClientCertMode::kRequest};
  Server server(ioc, options, EchoPeer);
  Status listened = server.Listen();
  ASSERT_TRUE(listened.ok()) << listened.ToString();
  std::thread loop([&] { ioc.run(); });
  for (std::string host : {"127.0.0.1", "localhost"}) {
    Client client(host, server.port(),
                  ClientTlsOptions{dir + "/ca.pem", dir + "/terminal-T01.pem", dir + "/terminal-T01.key", ""});
    auto r = client.Request("GET", "/terminals/T01");
    ASSERT_TRUE(r.ok()) << host << ": " << r.status().ToString();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(Body(r)["peer_cn"], "T01");
    EXPECT_EQ(client.Request("GET", "/terminals/T02")->status, 403);
  }
  // A terminal certificate from a CA that is not the one configured is no identity.
  Client stranger(
      "127.0.0.1", server.port(),
      ClientTlsOptions{dir + "/ca.pem", Pki().client("T-0001").cert_file, Pki().client("T-0001").key_file, ""});
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
