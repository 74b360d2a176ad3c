// loyaltyd under systemd's protocols, without systemd: NOTIFY_SOCKET points at a datagram
// socket of the test; the daemon must send READY=1 once it answers, WATCHDOG=1 keep-alives
// at half WATCHDOG_USEC, and STOPPING=1 first on SIGTERM, then exit 0. SIGHUP with a good
// config reloads (rules version changes); with a bad one it keeps the old config and says why.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <signal.h>
#include <chrono>
#include <fstream>
#include <thread>

#include "harness.h"
#include "loyalty/ledger/ledger.h"
#include "loyalty/sqlite/sqlite.h"

namespace loyalty::testing {
namespace {

class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    ::unlink(path.c_str());
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    timeval tv{0, 100000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~NotifySocket() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  // Collects datagrams for up to ms milliseconds or until pred is satisfied.
  void Collect(int ms, const std::function<bool(const std::vector<std::string>&)>& pred) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < deadline && !pred(msgs_)) {
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) msgs_.emplace_back(buf, static_cast<size_t>(n));
    }
  }
  const std::vector<std::string>& msgs() const { return msgs_; }
  size_t Count(const std::string& needle) const {
    size_t c = 0;
    for (const auto& m : msgs_)
      if (m.find(needle) != std::string::npos) ++c;
    return c;
  }

 private:
  std::string path_;
  int fd_ = -1;
  std::vector<std::string> msgs_;
};

TEST(SystemdTest, ReadyWatchdogAndStoppingOverNotifySocket) {
  auto dir = FreshDir("notify");
  NotifySocket sock((dir / "notify.sock").string());
  AgentProcess a(dir);
  a.set_wrapper({}, {"NOTIFY_SOCKET=" + (dir / "notify.sock").string(), "WATCHDOG_USEC=400000"});
  a.Start();
  sock.Collect(5000,
               [&](auto&) { return sock.Count("READY=1") >= 1 && sock.Count("WATCHDOG=1") >= 3; });
  EXPECT_EQ(sock.Count("READY=1"), 1u);
  EXPECT_GE(sock.Count("WATCHDOG=1"), 3u);  // every 200 ms
  ASSERT_FALSE(sock.msgs().empty());
  EXPECT_NE(sock.msgs().front().find("READY=1"), std::string::npos) << "READY=1 must come first";
  size_t before = sock.msgs().size();
  EXPECT_EQ(a.Stop(), 0);
  sock.Collect(1000, [&](auto& m) { return m.size() > before && sock.Count("STOPPING=1") >= 1; });
  EXPECT_EQ(sock.Count("STOPPING=1"), 1u);
  std::filesystem::remove_all(dir);
}

// A ledger of an older schema is migrated at start; the daemon says so in the log and asks
// systemd for a longer start timeout before it begins, then comes up as usual.
TEST(SystemdTest, AnOlderLedgerIsMigratedUnderAnExtendedStartTimeout) {
  auto dir = FreshDir("migrate");
  NotifySocket sock((dir / "notify.sock").string());
  AgentProcess a(dir);
  {
    auto db = sqlite::Db::Open(a.db_path(), false);
    ASSERT_TRUE(db.ok());
    for (int v = 0; v < 3; ++v) ASSERT_TRUE((*db)->Exec(ledger::MigrationSql(v)).ok()) << v;
    ASSERT_TRUE(
        (*db)->Exec("PRAGMA user_version=3; INSERT INTO meta VALUES ('terminal_id', 'T01');").ok());
  }
  a.set_wrapper({}, {"NOTIFY_SOCKET=" + (dir / "notify.sock").string()});
  a.Start();
  sock.Collect(5000, [&](auto&) { return sock.Count("READY=1") >= 1; });
  ASSERT_GE(sock.msgs().size(), 2u);
  EXPECT_NE(sock.msgs().front().find("EXTEND_TIMEOUT_USEC="), std::string::npos)
      << sock.msgs().front();
  EXPECT_EQ(sock.Count("READY=1"), 1u);
  std::string log = a.ReadLog();
  EXPECT_NE(log.find("\"event\":\"ledger_migrating\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"from\":3"), std::string::npos) << log;
  EXPECT_EQ(a.Get("/v1/health").status, 200);
  EXPECT_EQ(a.Stop(), 0);
  EXPECT_EQ(ledger::Ledger::PeekSchemaVersion(a.db_path()), ledger::kSchemaVersion);
  // A current ledger starts without either.
  NotifySocket again((dir / "notify2.sock").string());
  a.set_wrapper({}, {"NOTIFY_SOCKET=" + (dir / "notify2.sock").string()});
  a.Start();
  again.Collect(5000, [&](auto&) { return again.Count("READY=1") >= 1; });
  EXPECT_EQ(again.Count("EXTEND_TIMEOUT_USEC="), 0u);
  EXPECT_EQ(a.Stop(), 0);
  std::filesystem::remove_all(dir);
}

TEST(SystemdTest, SighupReloadsAGoodConfigAndKeepsTheOldOneOnABadOne) {
  auto dir = FreshDir("sighup");
  AgentProcess a(dir, "", "version = \"r1\"\n");
  a.Start();
  EXPECT_EQ(a.Get("/v1/health").body["rules_version"], "r1");
  pid_t pid = -1;
  {
    std::ofstream r(dir / "rules.toml");
    r << "version = \"r2\"\n";
  }
  // The daemon's pid: from /proc, the child of this test whose cmdline is loyaltyd.
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream cmd(e.path() / "cmdline");
    std::string c;
    std::getline(cmd, c, '\0');
    std::ifstream stat(e.path() / "stat");
    std::string s;
    std::getline(stat, s);
    auto rp = s.rfind(')');
    if (rp == std::string::npos) continue;
    int ppid = 0;
    char state;
    std::sscanf(s.c_str() + rp + 2, "%c %d", &state, &ppid);
    if (ppid == ::getpid() && c.find("loyaltyd") != std::string::npos) pid = std::stoi(name);
  }
  ASSERT_GT(pid, 0);
  ::kill(pid, SIGHUP);
  bool reloaded = false;
  for (int i = 0; i < 200 && !reloaded; ++i) {
    reloaded = a.Get("/v1/health").body["rules_version"] == "r2";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(reloaded);
  EXPECT_NE(a.ReadLog().find("\"event\":\"config_reloaded\""), std::string::npos);
  {
    std::ofstream r(dir / "rules.toml");
    r << "max_redeem_bp = \"lots\"\n";
  }
  ::kill(pid, SIGHUP);
  bool logged = false;
  for (int i = 0; i < 200 && !logged; ++i) {
    logged = a.ReadLog().find("\"event\":\"config_reload_failed\"") != std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(logged);
  EXPECT_EQ(a.Get("/v1/health").body["rules_version"], "r2");  // the old one stays
  EXPECT_EQ(a.Stop(), 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace loyalty::testing
