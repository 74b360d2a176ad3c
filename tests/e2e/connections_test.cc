// Connections end to end (hq-and-sync.md "What HQ trusts": revoked terminals, before
// authentication little): a real loyalty-hq and a real loyaltyd over loopback mutual TLS.
//
// - An idle-connection flood (hundreds of sockets at both servers: some silent after connect,
//   some stalled mid-handshake, some dribbling a request head) while the terminal syncs with HQ
//   and a POS quotes against the agent: both keep being answered.
// - HQ's CRL (crl_file, made with `openssl ca`): a revoked terminal is refused at the
//   handshake, SIGHUP picks up a new CRL, a bad file on reload keeps the old one, a bad file at
//   start stops HQ with the file and the reason.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>
#include <vector>

#include "e2e_fixture.h"

namespace loyalty::e2e {
namespace {

const char* kA = "T-A";
const char* kB = "T-B";

// Whether `text` shows up in `read()` within a few seconds (a log line written by another
// process); the cap only turns a hang into a failure.
template <class Read>
bool Eventually(Read read, const std::string& text) {
  for (int i = 0; i < 400; ++i) {
    if (read().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return false;
}

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1))
    ++n;
  return n;
}

// Sockets that hold server slots without ever sending a complete request, reopened when the
// server closes them (head deadline, eviction), from a thread of their own.
class Flood {
 public:
  enum class Kind {
    kSilent,             // connects, sends nothing (to a TLS listener: never starts a handshake)
    kHalfHello,          // TLS: the first bytes of a ClientHello, then nothing
    kDribble,            // plain HTTP: a request head, one byte at a time, never finished
    kTlsDribble,         // TLS: completes a handshake (no certificate), then dribbles a head
    kBodyDribble,        // plain HTTP: a whole head without a token, then its body a byte at a time
    kHealthBodyDribble,  // the same to GET /v1/health, a route that needs no token
  };
  struct Target {
    uint16_t port;
    Kind kind;
    int count;
    std::vector<std::string> from;  // local addresses to spread over (127.0.0.0/8)
  };

  explicit Flood(std::vector<Target> targets) : tls_(SSL_CTX_new(TLS_client_method())) {
    SSL_CTX_set_verify(tls_, SSL_VERIFY_NONE, nullptr);
    for (const auto& t : targets) {
      for (int i = 0; i < t.count; ++i) {
        sockets_.push_back(
            Sock{t.port, t.kind, t.from.empty() ? "127.0.0.1" : t.from[i % t.from.size()]});
      }
    }
    for (auto& s : sockets_) Open(s);
    thread_ = std::thread([this] { Run(); });
  }
  ~Flood() {
    stop_.store(true);
    thread_.join();
    for (auto& s : sockets_) Shut(s);
    SSL_CTX_free(tls_);
  }
  size_t size() const { return sockets_.size(); }
  int64_t reopened() const { return reopened_.load(); }
  int64_t open_now() const { return open_.load(); }

 private:
  struct Sock {
    uint16_t port;
    Kind kind;
    std::string from;
    int fd = -1;
    SSL* ssl = nullptr;
    size_t sent = 0;
  };

  static constexpr char kHead[] = "POST /v1/checkouts/quote HTTP/1.1\r\nHost: x\r\nX-Slow: ";

  void Open(Sock& s) {
    s.sent = 0;
    s.fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, s.from.c_str(), &local.sin_addr);
    ::bind(s.fd, reinterpret_cast<sockaddr*>(&local), sizeof local);
    timeval tv{2, 0};  // a TLS handshake that never completes is given up, not waited for
    ::setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(s.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(s.port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      Shut(s);
      return;
    }
    open_.fetch_add(1);
    if (s.kind == Kind::kBodyDribble || s.kind == Kind::kHealthBodyDribble) {
      static constexpr char kBodyHead[] =
          "POST /v1/checkouts/quote HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{";
      static constexpr char kHealthHead[] =
          "GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{";
      if (s.kind == Kind::kBodyDribble)
        ::send(s.fd, kBodyHead, sizeof(kBodyHead) - 1, MSG_NOSIGNAL);
      else
        ::send(s.fd, kHealthHead, sizeof(kHealthHead) - 1, MSG_NOSIGNAL);
      s.sent = sizeof(kHead);  // Dribble sends body bytes from here
    } else if (s.kind == Kind::kHalfHello) {
      // A handshake record header and a ClientHello header announcing 240 bytes, never sent.
      ::send(s.fd, "\x16\x03\x01\x00\xf0\x01\x00\x00", 8, MSG_NOSIGNAL);
    } else if (s.kind == Kind::kTlsDribble) {
      s.ssl = SSL_new(tls_);
      SSL_set_fd(s.ssl, s.fd);
      if (SSL_connect(s.ssl) != 1) {
        ERR_clear_error();
        Shut(s);
      }
    }
  }

  void Shut(Sock& s) {
    if (s.ssl != nullptr) SSL_free(s.ssl);
    s.ssl = nullptr;
    if (s.fd >= 0) {
      ::close(s.fd);
      open_.fetch_sub(1);
    }
    s.fd = -1;
  }

  // The server closed it: readable with EOF or an error (the flood never gets an answer).
  static bool Closed(const Sock& s) {
    pollfd p{s.fd, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLHUP | POLLERR)) return true;
    char buf[512];
    ssize_t n = ::recv(s.fd, buf, sizeof buf, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }

  void Dribble(Sock& s) {
    char c = s.sent < sizeof(kHead) - 1 ? kHead[s.sent] : 'a';
    bool ok =
        s.ssl != nullptr ? SSL_write(s.ssl, &c, 1) == 1 : ::send(s.fd, &c, 1, MSG_NOSIGNAL) == 1;
    if (ok) {
      ++s.sent;
    } else {
      ERR_clear_error();
      Shut(s);
    }
  }

  void Run() {
    while (!stop_.load()) {
      int reopened_now = 0;
      for (auto& s : sockets_) {
        if (stop_.load()) break;
        if (s.fd >= 0 && Closed(s)) Shut(s);
        if (s.fd < 0) {
          // At most 20 reopened per sweep (about 400 a second): a steady flood, not a benchmark
          // of the flood's own speed.
          if (reopened_now >= 20) continue;
          ++reopened_now;
          reopened_.fetch_add(1);
          Open(s);
          continue;
        }
        if (s.kind == Kind::kDribble || s.kind == Kind::kTlsDribble ||
            s.kind == Kind::kBodyDribble || s.kind == Kind::kHealthBodyDribble)
          Dribble(s);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  SSL_CTX* tls_;
  std::vector<Sock> sockets_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> reopened_{0}, open_{0};
  std::thread thread_;
};

class ConnectionsTest : public E2eFixture {
 protected:
  ConnectionsTest() : E2eFixture({kA, kB}) {}

  void SetUp() override {
    // Hundreds of sockets here and as many in each server: well within the hard limit.
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 4096) {
      rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? 4096 : std::min<rlim_t>(4096, rl.rlim_max);
      ::setrlimit(RLIMIT_NOFILE, &rl);
    }
    E2eFixture::SetUp();
  }

  TerminalProcess& AddTerminal(const std::string& id) {
    return E2eFixture::AddTerminal(Options(id, hq_->port()));
  }
};

// The flood outnumbers both caps: the agent keeps its default max_connections (256) and gets
// 300 sockets, and 600 more that send a whole request head without a token and then trickle
// its body, half to a route that needs a token and half to GET /v1/health, which needs none
// (answered from the head and closed: without a token no body is waited for, or they would
// hold every slot with requests in progress); HQ is given max_connections = 200
// (the default 4096 would need thousands) and
// gets 320, spread over nine loopback addresses so its per-address limit (64) is not what saves
// it. Meanwhile the POS quotes and the terminal syncs: every quote is answered 200 and every
// sync run is ok.
TEST_F(ConnectionsTest, IdleFloodDoesNotLockOutThePosOrTheTerminal) {
  hq_ = std::make_unique<HqProcess>(dir_ / "hq", *pki_, true);
  hq_->AddConfig("max_connections = 200\n");
  hq_->Start();
  auto& t = AddTerminal(kA);
  ASSERT_EQ(t.Sync().value("result", ""), "ok");  // a first run before the flood

  std::vector<std::string> flood_from;
  for (int i = 1; i <= 9; ++i) flood_from.push_back("127.0.0." + std::to_string(i));
  Flood flood({
      {t.port(), Flood::Kind::kSilent, 100, {}},
      {t.port(), Flood::Kind::kDribble, 200, {}},
      {t.port(), Flood::Kind::kBodyDribble, 300, {}},
      {t.port(), Flood::Kind::kHealthBodyDribble, 300, {}},
      {hq_->port(), Flood::Kind::kSilent, 100, flood_from},
      {hq_->port(), Flood::Kind::kHalfHello, 120, flood_from},
      {hq_->port(), Flood::Kind::kTlsDribble, 100, flood_from},
  });

  // Seven seconds of flood: longer than the servers' 5 s head and handshake deadlines, so the
  // flood's sockets are closed and reopened while the POS and the terminal work.
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(7);
  int quotes = 0, syncs = 0;
  while (std::chrono::steady_clock::now() < end) {
    for (int i = 0; i < 5; ++i) {
      auto q = t.Call(
          "POST", "/v1/checkouts/quote",
          json{{"checkout_id", "q" + std::to_string(quotes)}, {"lines", Basket(1000 + quotes)}});
      ASSERT_EQ(q.status, 200) << "quote " << quotes << ": " << q.raw;
      EXPECT_EQ(q.body.value("subtotal_cents", int64_t{-1}), 1000 + quotes);
      ++quotes;
    }
    auto run = t.Sync();
    ASSERT_EQ(run.value("result", ""), "ok") << "sync " << syncs << ": " << run.dump();
    ++syncs;
  }
  EXPECT_GE(quotes, 10);
  EXPECT_GE(syncs, 2);
  EXPECT_GT(flood.reopened(), 0) << "the servers never closed a flood socket";
  EXPECT_EQ(hq_->Admin("GET", "/v1/health").status, 200);
  EXPECT_EQ(t.Call("GET", "/v1/health").status, 200);
}

// HQ's crl_file, made with `openssl ca`, re-read on SIGHUP.
TEST_F(ConnectionsTest, RevokedTerminalIsRefusedAndSighupReloadsTheCrl) {
  if (std::system("command -v openssl >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl command";
  auto none = pki_->MakeCrl("crl-none", {});
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  auto revoke_a = pki_->MakeCrl("crl-a", {pki_->client(kA).cert_file});
  ASSERT_TRUE(revoke_a.ok()) << revoke_a.status().ToString();
  const std::filesystem::path crl = dir_ / "crl.pem";
  std::filesystem::create_directories(dir_);
  std::filesystem::copy_file(*none, crl, std::filesystem::copy_options::overwrite_existing);

  hq_ = std::make_unique<HqProcess>(dir_ / "hq", *pki_, true);
  hq_->AddConfig("crl_file = \"" + crl.string() + "\"\n");
  hq_->Start();
  auto& a = AddTerminal(kA);
  auto& b = AddTerminal(kB);
  ASSERT_EQ(a.Sync().value("result", ""), "ok");
  ASSERT_EQ(b.Sync().value("result", ""), "ok");

  // T-A is revoked: after SIGHUP its handshake is refused and its run fails; T-B goes on.
  std::filesystem::copy_file(*revoke_a, crl, std::filesystem::copy_options::overwrite_existing);
  ::kill(hq_->pid(), SIGHUP);
  ASSERT_TRUE(Eventually([&] { return hq_->ReadLog(); }, "\"crl_loaded\"")) << hq_->ReadLog();
  EXPECT_NE(hq_->ReadLog().find("\"revoked\":1"), std::string::npos) << hq_->ReadLog();
  auto refused = a.Sync();
  EXPECT_EQ(refused.value("result", ""), "failed") << refused.dump();
  EXPECT_EQ(hq_->ReadLog().find("\"terminal_refused\""), std::string::npos)
      << "refused at the handshake, before any route";
  EXPECT_EQ(b.Sync().value("result", ""), "ok");
  auto direct =
      hq_->AsTerminal("POST", "/v1/sync/T-A/hello", "{}", pki_->client(kA), pki_->ca_file());
  EXPECT_EQ(direct.status, -1) << direct.raw;  // no HTTP answer at all

  // A bad file on reload is logged and the CRL in use stays: T-A is still refused.
  { std::ofstream(crl, std::ios::trunc) << "not a CRL\n"; }
  ::kill(hq_->pid(), SIGHUP);
  ASSERT_TRUE(Eventually([&] { return hq_->ReadLog(); }, "\"crl_reload_failed\""))
      << hq_->ReadLog();
  EXPECT_NE(hq_->ReadLog().find(crl.string()), std::string::npos);
  EXPECT_EQ(a.Sync().value("result", ""), "failed");
  EXPECT_EQ(b.Sync().value("result", ""), "ok");

  // Un-revoked (a fresh CRL without it): T-A syncs again.
  std::filesystem::copy_file(*none, crl, std::filesystem::copy_options::overwrite_existing);
  ::kill(hq_->pid(), SIGHUP);
  ASSERT_TRUE(Eventually(
      [&] { return Count(hq_->ReadLog(), "\"crl_loaded\"") == 2 ? std::string("yes") : ""; },
      "yes"))
      << hq_->ReadLog();
  EXPECT_EQ(a.Sync().value("result", ""), "ok");
  EXPECT_EQ(hq_->Stop(), 0);
}

// A crl_file that does not load stops HQ at start, naming the file and the reason.
TEST_F(ConnectionsTest, BadCrlFileFailsHqStart) {
  const std::filesystem::path crl = dir_ / "bad-crl.pem";
  std::filesystem::create_directories(dir_);
  std::filesystem::copy_file(pki_->ca_file(), crl);  // PEM, but no CRL in it
  hq_ = std::make_unique<HqProcess>(dir_ / "hq", *pki_, true);
  hq_->AddConfig("crl_file = \"" + crl.string() + "\"\n");
  EXPECT_EQ(hq_->StartExpectingExit(20000), 1);
  std::string log = hq_->ReadLog();
  EXPECT_NE(log.find("\"listen_failed\""), std::string::npos) << log;
  EXPECT_NE(log.find(crl.string()), std::string::npos) << log;
  EXPECT_NE(log.find("no CRL"), std::string::npos) << log;
}

}  // namespace
}  // namespace loyalty::e2e
