// Scans end to end, for every scanner kind: a real loyaltyd reads from its configured
// source, identifies the code, shows it to a long-polling POS on GET /v1/scans, and the
// POS commits a checkout with the scan's identification.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>
#include <thread>

#include "../drivers/hid_test_util.h"
#include "../drivers/image_test_util.h"
#include "../drivers/png_writer.h"
#include "../drivers/usbmon_pcap.h"
#include "harness.h"

namespace loyalty::testing {
namespace {

using nlohmann::json;
constexpr uint64_t kMember = 1234567890123;

// How many lines of the log are the event `name`.
size_t CountEvents(const std::string& log, const std::string& name) {
  size_t n = 0;
  const std::string needle = "\"event\":\"" + name + "\"";
  for (size_t at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) ++n;
  return n;
}

std::string state_of(AgentProcess& a) {
  return a.Get("/v1/health").body["scanners"][0]["state"].get<std::string>();
}

bool WaitFor(const std::function<bool()>& f, int ms = 10000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

class ScansTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  void TearDown() override {
    agent_.reset();
    if (socat_ > 0) {
      ::kill(socat_, SIGTERM);
      ::waitpid(socat_, nullptr, 0);
    }
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // Long-polls for the next scan after `after` and checks it identified kMember; then
  // commits a checkout with its identification.
  void ExpectMemberScanAndCommit(const std::string& scanner_id, uint64_t after = 0) {
    auto r = agent_->Get("/v1/scans?after=" + std::to_string(after) + "&wait_ms=10000");
    ASSERT_EQ(r.status, 200) << r.raw;
    ASSERT_EQ(r.body["scans"].size(), 1u) << r.raw << "\n" << agent_->ReadLog();
    const auto& s = r.body["scans"][0];
    EXPECT_EQ(s["seq"], after + 1);
    EXPECT_EQ(r.body["next_after"], after + 1);
    EXPECT_EQ(s["scanner_id"], scanner_id);
    ASSERT_EQ(s["result"], "member") << s.dump();
    EXPECT_EQ(s["member"]["member_id"], std::to_string(kMember));
    EXPECT_FALSE(s.contains("text"));  // the text of a member code never goes to the POS
    json lines = json::array(
        {{{"sku", "A"}, {"qty", 1}, {"unit_price_cents", 10000}, {"category", "grocery"}}});
    auto c = agent_->Post("/v1/checkouts/commit", {{"checkout_id", "scan-" + scanner_id},
                                                   {"identification_id", s["identification"]["id"]},
                                                   {"lines", lines}});
    ASSERT_EQ(c.status, 200) << c.raw;
    EXPECT_EQ(c.body["points_to_earn"], 100);
    auto health = agent_->Get("/v1/health");
    ASSERT_EQ(health.body["scanners"].size(), 1u);
    EXPECT_EQ(health.body["scanners"][0]["id"], scanner_id);
    EXPECT_NE(health.body["scanners"][0]["last_scan_at"], nullptr);
    auto log = agent_->ReadLog();
    EXPECT_NE(log.find("\"event\":\"scan_accepted\""), std::string::npos);
  }

  std::filesystem::path dir_;
  std::unique_ptr<AgentProcess> agent_;
  pid_t socat_ = -1;
};

TEST_F(ScansTest, Fifo) {
  agent_ = std::make_unique<AgentProcess>(
      dir_, "\n[[scanners]]\nid = \"lane1\"\nkind = \"fifo\"\npath = \"scan.fifo\"\n");
  agent_->Start();
  std::string fifo = (dir_ / "scan.fifo").string();
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(fifo); }));
  // The POS is already waiting when the scan comes.
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    int fd = ::open(fifo.c_str(), O_WRONLY);
    std::string line = MintCode(kMember) + "\n";
    ::write(fd, line.data(), line.size());
    ::close(fd);
  });
  ExpectMemberScanAndCommit("lane1");
  writer.join();
  // A product barcode: not_a_member_code, with its text (GS separators kept).
  {
    int fd = ::open(fifo.c_str(), O_WRONLY);
    std::string line =
        "0104012345678901\x1d"
        "10ABC\n";
    ::write(fd, line.data(), line.size());
    ::close(fd);
  }
  auto r = agent_->Get("/v1/scans?after=1&wait_ms=10000");
  ASSERT_EQ(r.body["scans"].size(), 1u) << r.raw;
  EXPECT_EQ(r.body["scans"][0]["result"], "not_a_member_code");
  EXPECT_EQ(r.body["scans"][0]["text"],
            "0104012345678901\x1d"
            "10ABC");
  // A replayed code (the one already committed) and garbage: rejected, the lane goes on.
  {
    int fd = ::open(fifo.c_str(), O_WRONLY);
    std::string line = "LM1:garbage\n\xff\xfe\n";
    ::write(fd, line.data(), line.size());
    ::close(fd);
  }
  r = agent_->Get("/v1/scans?after=2&wait_ms=10000");
  ASSERT_EQ(r.body["scans"].size(), 1u) << r.raw;
  EXPECT_EQ(r.body["scans"][0]["result"], "rejected");
  EXPECT_EQ(r.body["scans"][0]["error"]["code"], "code_malformed");
  // Nothing new: an empty list after wait_ms, next_after unchanged.
  r = agent_->Get("/v1/scans?after=3&wait_ms=50");
  EXPECT_EQ(r.body["scans"].size(), 0u);
  EXPECT_EQ(r.body["next_after"], 3);
  // A cursor from before an agent restart (larger than any seq) is read as 0.
  r = agent_->Get("/v1/scans?after=999&wait_ms=0");
  EXPECT_EQ(r.body["scans"].size(), 3u);
  // However large: past 2^63 and 2^64 too.
  for (const char* big : {"9223372036854775807", "9223372036854775808", "18446744073709551615",
                          "18446744073709551616", "000000000000000000000000000000000000004",
                          "99999999999999999999999999999999999999999999999999"}) {
    r = agent_->Get(std::string("/v1/scans?after=") + big + "&wait_ms=0");
    EXPECT_EQ(r.status, 200) << big;
    EXPECT_EQ(r.body["scans"].size(), 3u) << big;
  }
  EXPECT_EQ(agent_->Get("/v1/scans?after=x").status, 400);
  EXPECT_EQ(agent_->Get("/v1/scans?after=-1").status, 400);
  EXPECT_EQ(agent_->Get("/v1/scans?after=").status, 400);
  EXPECT_EQ(agent_->Get("/v1/scans?wait_ms=30001").status, 400);
  EXPECT_EQ(agent_->Get("/v1/scans?wait_ms=99999999999999999999999").status, 400);
  EXPECT_EQ(agent_->Get("/v1/scans?after=3&wait_ms=0030").body["next_after"], 3);
  EXPECT_EQ(agent_->Get("/v1/health").body["status"], "ok");
}

TEST_F(ScansTest, SerialOverAPseudoTerminal) {
  std::string a = (dir_ / "ttyA").string(), b = (dir_ / "ttyB").string();
  socat_ = ::fork();
  if (socat_ == 0) {
    int fd = ::open("/dev/null", O_WRONLY);
    ::dup2(fd, 2);
    std::string pa = "pty,raw,echo=0,link=" + a, pb = "pty,raw,echo=0,link=" + b;
    ::execlp("socat", "socat", pa.c_str(), pb.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(a) && std::filesystem::exists(b); }))
      << "socat did not start";
  agent_ =
      std::make_unique<AgentProcess>(dir_,
                                     "\n[[scanners]]\nid = \"counter\"\nkind = \"serial\"\npath = "
                                     "\"ttyA\"\nbaud = 9600\nterminator = \"CRLF\"\n");
  agent_->Start();
  ASSERT_TRUE(WaitFor(
      [&] { return agent_->Get("/v1/health").body["scanners"][0]["state"] == "connected"; }));
  int fd = ::open(b.c_str(), O_WRONLY | O_NOCTTY);
  ASSERT_GE(fd, 0);
  std::string line = MintCode(kMember) + "\r\n";
  ::write(fd, line.data(), line.size());
  ::close(fd);
  ExpectMemberScanAndCommit("counter");
}

TEST_F(ScansTest, ImageDirectory) {
  if (!drivers::testing::HaveQrencode()) GTEST_SKIP() << "qrencode is not installed";
  std::filesystem::create_directories(dir_ / "frames");
  agent_ = std::make_unique<AgentProcess>(
      dir_, "\n[[scanners]]\nid = \"cam\"\nkind = \"image\"\ndirectory = \"frames\"\n");
  agent_->Start();
  std::string tmp = (dir_ / "frame.png").string();
  ASSERT_TRUE(drivers::testing::Qrencode(MintCode(kMember), tmp));
  std::filesystem::rename(tmp,
                          dir_ / "frames" / "frame.png");  // renamed in, as a camera service would
  ExpectMemberScanAndCommit("cam");
  EXPECT_TRUE(WaitFor([&] {
    return !std::filesystem::exists(dir_ / "frames" / "frame.png");
  }));  // processed: deleted
}

// operations.md: a fifo deleted and created again under the agent (a restarted feeder) is
// read again, and health says `disconnected` while it is missing.
TEST_F(ScansTest, AFifoReplacedUnderTheAgentIsReadAgain) {
  agent_ = std::make_unique<AgentProcess>(dir_,
                                          "\n[[scanners]]\nid = \"lane1\"\nkind = \"fifo\"\npath = "
                                          "\"scan.fifo\"\n");
  agent_->Start();
  const std::string fifo = (dir_ / "scan.fifo").string();
  auto state = [&] { return agent_->Get("/v1/health").body["scanners"][0]["state"]; };
  ASSERT_TRUE(WaitFor([&] { return state() == "connected"; }));
  ASSERT_EQ(::unlink(fifo.c_str()), 0);
  ASSERT_TRUE(WaitFor([&] { return state() == "disconnected"; })) << agent_->ReadLog();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0660), 0);
  ASSERT_TRUE(WaitFor([&] { return state() == "connected"; })) << agent_->ReadLog();
  int fd = -1;
  ASSERT_TRUE(
      WaitFor([&] { return (fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC)) >= 0; }));
  std::thread writer([fd] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::string line = MintCode(kMember) + "\n";
    (void)!::write(fd, line.data(), line.size());
    ::close(fd);
  });
  ExpectMemberScanAndCommit("lane1");
  writer.join();
  const std::string log = agent_->ReadLog();
  EXPECT_NE(log.find("\"event\":\"scanner_disconnected\""), std::string::npos);
}

// A scanner that is up at start says so once (scanner_connected), however soon it came up
// — here a fifo the agent makes itself — and a SIGHUP that keeps the scanner keeps its last
// scan in health.
TEST_F(ScansTest, AStartSaysConnectedOnceAndAReloadKeepsTheLastScan) {
  agent_ = std::make_unique<AgentProcess>(
      dir_, "\n[[scanners]]\nid = \"lane1\"\nkind = \"fifo\"\npath = \"scan.fifo\"\n");
  agent_->Start();
  const std::string fifo = (dir_ / "scan.fifo").string();
  auto scanner = [&] { return agent_->Get("/v1/health").body["scanners"][0]; };
  ASSERT_TRUE(WaitFor([&] { return scanner()["state"] == "connected"; }));
  ASSERT_TRUE(WaitFor([&] { return CountEvents(agent_->ReadLog(), "scanner_connected") == 1; }))
      << agent_->ReadLog();
  EXPECT_TRUE(scanner()["last_scan_at"].is_null());
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    int fd = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
    std::string line = MintCode(kMember) + "\n";
    (void)!::write(fd, line.data(), line.size());
    ::close(fd);
  });
  ExpectMemberScanAndCommit("lane1");
  writer.join();
  const json last = scanner()["last_scan_at"];
  ASSERT_TRUE(last.is_string()) << last.dump();
  const size_t reloads = CountEvents(agent_->ReadLog(), "config_reloaded");
  ::kill(agent_->pid(), SIGHUP);
  ASSERT_TRUE(
      WaitFor([&] { return CountEvents(agent_->ReadLog(), "config_reloaded") == reloads + 1; }));
  EXPECT_EQ(scanner()["last_scan_at"], last);
  EXPECT_EQ(agent_->Stop(), 0);
}

// A SIGHUP (a log-level change, say) while a feeder writes line after line: a scanner
// configured as before keeps its read end, so no line is lost and it does not reconnect.
TEST_F(ScansTest, ASighupLosesNoLineOfAFifoStream) {
  agent_ = std::make_unique<AgentProcess>(
      dir_, "\n[[scanners]]\nid = \"lane1\"\nkind = \"fifo\"\npath = \"scan.fifo\"\n");
  agent_->Start();
  const std::string fifo = (dir_ / "scan.fifo").string();
  ASSERT_TRUE(WaitFor([&] { return state_of(*agent_) == "connected"; }));
  constexpr int kLines = 300;
  std::thread writer([&] {
    for (int i = 0; i < kLines; ++i) {
      int fd = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) return;
      std::string line = "ITEM-" + std::to_string(1000 + i) + "\n";
      (void)!::write(fd, line.data(), line.size());
      ::close(fd);
      std::this_thread::sleep_for(std::chrono::milliseconds(3));
    }
  });
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ::kill(agent_->pid(), SIGHUP);
  }
  writer.join();
  std::set<std::string> seen;
  ASSERT_TRUE(WaitFor([&] {
    auto r = agent_->Get("/v1/scans?after=0&wait_ms=0");
    seen.clear();
    for (const auto& scan : r.body["scans"]) seen.insert(scan.value("text", ""));
    return seen.size() >= static_cast<size_t>(kLines);
  })) << seen.size()
      << " of " << kLines << " lines";
  for (int i = 0; i < kLines; ++i) EXPECT_TRUE(seen.count("ITEM-" + std::to_string(1000 + i))) << i;
  const std::string log = agent_->ReadLog();
  EXPECT_EQ(CountEvents(log, "config_reloaded"), 5u) << log;
  EXPECT_EQ(CountEvents(log, "scanner_connected"), 1u) << log;
  EXPECT_EQ(agent_->Stop(), 0);
}

// operations.md: a fifo whose folder is missing when the agent starts is reported
// `disconnected`, logged once, and picked up within five seconds of the folder and its fifo
// appearing, without restarting the agent.
TEST_F(ScansTest, AFifoWhoseFolderIsMissingAtStartIsPickedUpWhenItAppears) {
  agent_ = std::make_unique<AgentProcess>(dir_,
                                          "\n[[scanners]]\nid = \"lane1\"\nkind = \"fifo\"\npath = "
                                          "\"nodir/s.fifo\"\n");
  agent_->Start();
  auto state = [&] { return agent_->Get("/v1/health").body["scanners"][0]["state"]; };
  EXPECT_EQ(state(), "disconnected");
  // Retried for a while (at least two retries): logged once, not once per retry.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_EQ(state(), "disconnected");
  EXPECT_EQ(CountEvents(agent_->ReadLog(), "scanner_disconnected"), 1u) << agent_->ReadLog();
  std::filesystem::create_directory(dir_ / "nodir");
  const std::string fifo = (dir_ / "nodir" / "s.fifo").string();
  // The agent may have made the fifo itself in between ("created if missing").
  ASSERT_TRUE(::mkfifo(fifo.c_str(), 0660) == 0 || errno == EEXIST);
  ASSERT_TRUE(WaitFor([&] { return state() == "connected"; }, 5000)) << agent_->ReadLog();
  int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  std::thread writer([fd] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::string line = MintCode(kMember) + "\n";
    (void)!::write(fd, line.data(), line.size());
    ::close(fd);
  });
  ExpectMemberScanAndCommit("lane1");
  writer.join();
  const std::string log = agent_->ReadLog();
  EXPECT_EQ(CountEvents(log, "scanner_disconnected"), 1u) << log;
  EXPECT_EQ(CountEvents(log, "scanner_connected"), 1u) << log;
  EXPECT_EQ(agent_->Stop(), 0);
}

// The same for a path that is a regular file at start and later a fifo; a SIGHUP while the
// scanner is being retried keeps retrying it, and SIGTERM then stops the agent cleanly.
TEST_F(ScansTest, AFifoPathThatIsARegularFileAtStartIsPickedUpOnceItIsAFifo) {
  const std::string fifo = (dir_ / "s.fifo").string();
  WriteFile(fifo, "not a fifo\n");
  agent_ = std::make_unique<AgentProcess>(dir_,
                                          "\n[[scanners]]\nid = \"lane1\"\nkind = \"fifo\"\npath = "
                                          "\"s.fifo\"\n");
  agent_->Start();
  auto state = [&] { return agent_->Get("/v1/health").body["scanners"][0]["state"]; };
  EXPECT_EQ(state(), "disconnected");
  ::kill(agent_->pid(), SIGHUP);
  ASSERT_TRUE(WaitFor([&] {
    return agent_->ReadLog().find("\"event\":\"config_reloaded\"") != std::string::npos;
  })) << agent_->ReadLog();
  EXPECT_EQ(state(), "disconnected");
  ASSERT_EQ(::unlink(fifo.c_str()), 0);
  ASSERT_TRUE(::mkfifo(fifo.c_str(), 0660) == 0 || errno == EEXIST);
  ASSERT_TRUE(WaitFor([&] { return state() == "connected"; }, 5000)) << agent_->ReadLog();
  int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  std::string line = MintCode(kMember) + "\n";
  ASSERT_EQ(::write(fd, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  ::close(fd);
  ExpectMemberScanAndCommit("lane1");
  EXPECT_EQ(agent_->Stop(), 0);
}

// The same for an image scanner whose folder is missing at start.
TEST_F(ScansTest, AnImageFolderMissingAtStartIsWatchedWhenItAppears) {
  if (!drivers::testing::HaveQrencode()) GTEST_SKIP() << "qrencode is not installed";
  agent_ = std::make_unique<AgentProcess>(
      dir_, "\n[[scanners]]\nid = \"cam\"\nkind = \"image\"\ndirectory = \"frames\"\n");
  agent_->Start();
  auto state = [&] { return agent_->Get("/v1/health").body["scanners"][0]["state"]; };
  EXPECT_EQ(state(), "disconnected");
  std::filesystem::create_directory(dir_ / "frames");
  ASSERT_TRUE(WaitFor([&] { return state() == "connected"; }, 5000)) << agent_->ReadLog();
  std::string tmp = (dir_ / "frame.png").string();
  ASSERT_TRUE(drivers::testing::Qrencode(MintCode(kMember), tmp));
  std::filesystem::rename(tmp, dir_ / "frames" / "frame.png");
  ExpectMemberScanAndCommit("cam");
  EXPECT_EQ(CountEvents(agent_->ReadLog(), "scanner_disconnected"), 1u) << agent_->ReadLog();
  EXPECT_EQ(agent_->Stop(), 0);
}

// A scanner being retried does not hold the agent up: SIGTERM stops it cleanly, exit 0.
TEST_F(ScansTest, TheAgentStopsCleanlyWhileAScannerIsRetried) {
  agent_ = std::make_unique<AgentProcess>(
      dir_,
      "\n[[scanners]]\nid = \"lane1\"\nkind = \"fifo\"\npath = \"nodir/s.fifo\"\n"
      "\n[[scanners]]\nid = \"cam\"\nkind = \"image\"\ndirectory = \"frames\"\n");
  agent_->Start();
  auto health = agent_->Get("/v1/health");
  ASSERT_EQ(health.body["scanners"].size(), 2u) << health.raw;
  for (const auto& sc : health.body["scanners"]) EXPECT_EQ(sc["state"], "disconnected");
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // a retry or more
  EXPECT_EQ(agent_->Stop(), 0) << agent_->ReadLog();
  EXPECT_NE(agent_->ReadLog().find("\"event\":\"agent_stopped\""), std::string::npos);
}

// Garbage is counted per scanner and reason on GET /metrics.
TEST_F(ScansTest, GarbageIsCountedOnMetrics) {
  agent_ = std::make_unique<AgentProcess>(dir_,
                                          "\n[[scanners]]\nid = \"lane1\"\nkind = \"fifo\"\npath = "
                                          "\"scan.fifo\"\n");
  agent_->Start();
  const std::string fifo = (dir_ / "scan.fifo").string();
  auto metrics = [&] { return agent_->Call("GET", "/metrics", "", /*auth=*/false).raw; };
  const std::string invalid =
      "loyalty_scanner_garbage_total{scanner=\"lane1\",reason=\"invalid_utf8\"}";
  EXPECT_NE(metrics().find("# TYPE loyalty_scanner_garbage_total counter"), std::string::npos)
      << metrics();
  EXPECT_NE(metrics().find(invalid + " 0"), std::string::npos) << metrics();
  ASSERT_TRUE(WaitFor([&] { return state_of(*agent_) == "connected"; }));
  int fd = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::string bytes = "\xff\xfe\n";
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ::close(fd);
  ASSERT_TRUE(WaitFor([&] { return metrics().find(invalid + " 1") != std::string::npos; }))
      << metrics();
  EXPECT_NE(metrics().find(
                "loyalty_scanner_garbage_total{scanner=\"lane1\",reason=\"partial_timeout\"} 0"),
            std::string::npos);
  // A reload makes new sources; the counts go on from where they were.
  ::kill(agent_->pid(), SIGHUP);
  ASSERT_TRUE(WaitFor([&] {
    return agent_->ReadLog().find("\"event\":\"config_reloaded\"") != std::string::npos;
  }));
  EXPECT_NE(metrics().find(invalid + " 1"), std::string::npos) << metrics();
}

// A decompression bomb in the image folder: refused before decoding, logged as
// scanner_image_refused, no scan; the lane goes on.
TEST_F(ScansTest, ADecompressionBombImageIsRefusedAndLogged) {
  if (!drivers::testing::HaveQrencode()) GTEST_SKIP() << "qrencode is not installed";
  std::filesystem::create_directories(dir_ / "frames");
  agent_ =
      std::make_unique<AgentProcess>(dir_,
                                     "\n[[scanners]]\nid = \"cam\"\nkind = \"image\"\ndirectory = "
                                     "\"frames\"\n");
  agent_->Start();
  drivers::testing::WriteBytes(
      (dir_ / "bomb.tmp").string(),
      drivers::testing::MakePng(drivers::testing::Spec(4000, 4000, 16, 6)));
  std::filesystem::rename(dir_ / "bomb.tmp", dir_ / "frames" / "bomb.png");
  ASSERT_TRUE(WaitFor(
      [&] { return agent_->ReadLog().find("scanner_image_refused") != std::string::npos; }));
  const std::string log = agent_->ReadLog();
  EXPECT_NE(log.find("\"decoded_bytes\":128000000"), std::string::npos) << log;
  EXPECT_TRUE(WaitFor([&] { return !std::filesystem::exists(dir_ / "frames" / "bomb.png"); }));
  EXPECT_EQ(agent_->Get("/v1/scans?after=0&wait_ms=0").body["scans"].size(), 0u);
  std::string tmp = (dir_ / "frame.png").string();
  ASSERT_TRUE(drivers::testing::Qrencode(MintCode(kMember), tmp));
  std::filesystem::rename(tmp, dir_ / "frames" / "frame.png");
  ExpectMemberScanAndCommit("cam");
}

class UsbScansTest : public ScansTest {
 protected:
  static constexpr char kKeyboardSysfs[] = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-2";
  static constexpr char kPosSysfs[] = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3";
  void StartUnderUmockdev(const std::string& device, const char* sysfs,
                          const drivers::testing::UsbmonPcap& pcap,
                          const std::string& scanner_toml) {
    if (std::system("command -v umockdev-run >/dev/null 2>&1") != 0)
      GTEST_SKIP() << "umockdev-run is not installed";
    std::string pcap_path = (dir_ / "scanner.pcap").string();
    ASSERT_TRUE(pcap.Save(pcap_path));
    agent_ = std::make_unique<AgentProcess>(dir_, scanner_toml);
    agent_->set_wrapper(
        {"umockdev-run", "-d", std::string(LOYALTY_DRIVERS_TEST_DATA) + "/" + device, "-p",
         std::string(sysfs) + "=" + pcap_path, "--"},
        {"ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0"});
    agent_->Start();
  }
};

TEST_F(UsbScansTest, KeyboardWedge) {
  static constexpr uint8_t kSetProtocolBoot[8] = {0x21, 0x0b, 0, 0, 0, 0, 0, 0};
  static constexpr uint8_t kSetIdle[8] = {0x21, 0x0a, 0, 0, 0, 0, 0, 0};
  drivers::testing::UsbmonPcap pcap(1, 5);
  pcap.ControlOut(kSetProtocolBoot);
  pcap.ControlOut(kSetIdle);
  for (const auto& r : drivers::testing::TypeReports(MintCode(kMember)))
    pcap.InterruptIn(0x81, 8, r);
  StartUnderUmockdev("keyboard-scanner.umockdev", kKeyboardSysfs, pcap,
                     "\n[[scanners]]\nid = \"wedge\"\nkind = \"usb-hid-keyboard\"\nvendor_id = "
                     "0x05e0\nproduct_id = 0x1200\n");
  if (IsSkipped()) return;
  ExpectMemberScanAndCommit("wedge");
}

TEST_F(UsbScansTest, HidPos) {
  static constexpr uint8_t kSetIdle[8] = {0x21, 0x0a, 0, 0, 0, 0, 0, 0};
  drivers::testing::UsbmonPcap pcap(1, 6);
  pcap.ControlOut(kSetIdle);
  for (const auto& r : drivers::testing::HidPosReports(MintCode(kMember), "]Q1"))
    pcap.InterruptIn(0x81, 64, r);
  StartUnderUmockdev("hidpos-scanner.umockdev", kPosSysfs, pcap,
                     "\n[[scanners]]\nid = \"pos\"\nkind = \"usb-hid-pos\"\nvendor_id = "
                     "0x05e0\nproduct_id = 0x1300\n");
  if (IsSkipped()) return;
  ExpectMemberScanAndCommit("pos");
  auto r = agent_->Get("/v1/scans?after=0&wait_ms=0");
  EXPECT_EQ(r.body["scans"][0]["symbology"], "]Q1");
}

}  // namespace
}  // namespace loyalty::testing
