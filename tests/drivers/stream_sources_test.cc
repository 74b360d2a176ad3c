// fifo and serial sources over real kernel objects: a named pipe, and a pseudo-terminal
// pair made by socat (the source opens one side, the test writes the other).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>
#include <thread>

#include "event_collector.h"
#include "hid_test_util.h"
#include "image_test_util.h"
#include "loyalty/base/clock.h"
#include "loyalty/drivers/source.h"

namespace loyalty::drivers {
namespace {

using testing::EventCollector;
using testing::TempDir;

// A write to a fifo that nobody reads at that moment fails with EPIPE, which WriteAll
// reports in the test that made it, instead of SIGPIPE ending the whole program (and every
// other test's result with it).
const bool kSigpipeIgnored = [] {
  ::signal(SIGPIPE, SIG_IGN);
  return true;
}();

void WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = write(fd, bytes.data(), bytes.size());
    ASSERT_GT(n, 0) << strerror(errno);
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

class SourceTest : public ::testing::Test {
 protected:
  std::unique_ptr<Source> Make(SourceOptions o) {
    auto r = MakeSource(o, events_.Events(), clock_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }
  TempDir dir_;
  FakeClock clock_{1'700'000'000'000};
  EventCollector events_;
};

// --- fifo --------------------------------------------------------------------------------

class FifoTest : public SourceTest {
 protected:
  void SetUp() override {
    opts_.id = "fifo1";
    opts_.kind = "fifo";
    opts_.path = dir_ / "scans";
  }
  int OpenWriter() { return open(opts_.path.c_str(), O_WRONLY | O_CLOEXEC); }
  SourceOptions opts_;
};

// The fifo the source makes is 0660 whatever the umask (the service runs with 0027): a
// feeder in the service's group can write it.
TEST_F(FifoTest, AFifoItMakesIsGroupWritableWhateverTheUmask) {
  const mode_t old = ::umask(0077);
  auto src = Make(opts_);
  Status started = src->Start();
  ::umask(old);
  ASSERT_TRUE(started.ok()) << started.ToString();
  struct stat st;
  ASSERT_EQ(::stat(opts_.path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

TEST_F(FifoTest, LinesArriveAndTheFifoIsReopenedAfterEachWriter) {
  auto src = Make(opts_);
  ASSERT_TRUE(src->Start().ok());
  ASSERT_TRUE(events_.WaitState(SourceState::kConnected));
  const std::string code = testing::MakeLm1Code();
  int w = OpenWriter();
  WriteAll(w, code + "\nsecond\r\n");
  ASSERT_TRUE(events_.WaitScans(2));
  close(w);
  for (int i = 0; i < 3; ++i) {  // one writer after another, as `echo > fifo` does
    w = OpenWriter();
    WriteAll(w, "writer" + std::to_string(i));  // no newline: end of stream ends it
    close(w);
    ASSERT_TRUE(events_.WaitScans(3 + i));
  }
  auto scans = events_.scans();
  ASSERT_EQ(scans.size(), 5u);
  EXPECT_EQ(scans[0].text, code);
  EXPECT_EQ(scans[0].scanner_id, "fifo1");
  EXPECT_EQ(scans[0].at_ms, 1'700'000'000'000);
  EXPECT_EQ(scans[1].text, "second");
  EXPECT_EQ(scans[4].text, "writer2");
  EXPECT_EQ(src->state(), SourceState::kConnected);
  src->Stop();
  src->Stop();  // twice is fine
}

// Writers one after another with no pause, as a feeder looping over `echo > fifo` does:
// each opens, writes one line and closes. Any of them may open while the source is between
// one writer's end of stream and its next read end; every line must still arrive, once, in
// order, and no write may meet a fifo without a reader (EPIPE).
int WriteOnce(const std::string& path, const std::string& bytes) {
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = 0;
  std::string_view rest = bytes;
  while (!rest.empty()) {
    const ssize_t n = write(fd, rest.data(), rest.size());
    if (n <= 0) {
      err = errno;
      break;
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
  close(fd);
  return err;
}

TEST_F(FifoTest, WritersBackToBackLoseNoLine) {
  constexpr int kWriters = 200;
  auto src = Make(opts_);
  ASSERT_TRUE(src->Start().ok());
  ASSERT_TRUE(events_.WaitState(SourceState::kConnected));
  int failed = 0;
  for (int i = 0; i < kWriters; ++i) {
    const int err = WriteOnce(opts_.path, "line" + std::to_string(i) + "\n");
    if (err != 0) {
      ++failed;
      ADD_FAILURE() << "writer " << i << ": " << strerror(err);
    }
  }
  EXPECT_EQ(failed, 0);
  EXPECT_TRUE(events_.WaitScans(kWriters)) << events_.scan_count() << " of " << kWriters;
  // Nothing more trickles in late (a line delivered twice).
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto scans = events_.scans();
  ASSERT_EQ(scans.size(), static_cast<size_t>(kWriters));
  for (int i = 0; i < kWriters; ++i) EXPECT_EQ(scans[i].text, "line" + std::to_string(i));
  EXPECT_EQ(src->counters().reconnects, 0u);
  EXPECT_EQ(src->state(), SourceState::kConnected);
}

// The window itself, made certain: a writer that opens, writes and closes while the source
// delivers the line a previous writer's end of stream finished (on_scan runs on the source's
// thread, before it has opened its next read end). Its line must be read, not discarded with
// the pipe's buffer when the old read end closes.
TEST_F(FifoTest, AWriterBetweenEndOfStreamAndReopenIsRead) {
  int inner_error = -1;
  SourceEvents e = events_.Events();
  auto collect = e.on_scan;
  e.on_scan = [&, collect](Scan s) {
    const bool first = s.text == "first";
    collect(std::move(s));
    if (!first) return;
    // Non-blocking: with no reader at all this fails (ENXIO) instead of hanging the source.
    const int fd = open(opts_.path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      inner_error = errno;
      return;
    }
    inner_error = write(fd, "second\n", 7) == 7 ? 0 : errno;
    close(fd);
  };
  auto r = MakeSource(opts_, e, clock_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto src = std::move(r).value();
  ASSERT_TRUE(src->Start().ok());
  ASSERT_TRUE(events_.WaitState(SourceState::kConnected));
  ASSERT_EQ(WriteOnce(opts_.path, "first"), 0);  // no newline: its end of stream ends it
  ASSERT_TRUE(events_.WaitScans(1));
  EXPECT_TRUE(events_.WaitScans(2)) << "the line written during the reopen was lost";
  src->Stop();
  EXPECT_EQ(inner_error, 0) << strerror(inner_error);
  auto scans = events_.scans();
  ASSERT_EQ(scans.size(), 2u);
  EXPECT_EQ(scans[0].text, "first");
  EXPECT_EQ(scans[1].text, "second");
}

// The same with no newline: a writer's close ends its line only if the source sees that
// end of stream before the next writer's bytes, which back-to-back writers do not promise
// (lines may run together), but no byte is lost and none is left waiting for the partial
// timeout (the test clock is frozen, so a partial line would never be flushed).
TEST_F(FifoTest, UnterminatedWritersBackToBackLoseNoByte) {
  constexpr int kWriters = 200;
  auto src = Make(opts_);
  ASSERT_TRUE(src->Start().ok());
  ASSERT_TRUE(events_.WaitState(SourceState::kConnected));
  std::string all;
  for (int i = 0; i < kWriters; ++i) {
    const std::string line = "w" + std::to_string(i) + ";";
    all += line;
    const int err = WriteOnce(opts_.path, line);
    EXPECT_EQ(err, 0) << "writer " << i << ": " << strerror(err);
  }
  auto joined = [&] {
    std::string s;
    for (const Scan& scan : events_.scans()) s += scan.text;
    return s;
  };
  EXPECT_TRUE(EventCollector::Eventually([&] { return joined().size() >= all.size(); }))
      << joined().size() << " of " << all.size() << " bytes";
  EXPECT_EQ(joined(), all);
  EXPECT_EQ(src->counters().partial_timeouts, 0u);
  EXPECT_EQ(src->counters().cut_off, 0u);
}

TEST_F(FifoTest, DebouncePrefixSuffixGarbageOverlong) {
  opts_.prefix = "]Q1";
  opts_.suffix = "#";
  auto src = Make(opts_);
  ASSERT_TRUE(src->Start().ok());
  int w = OpenWriter();
  WriteAll(w, "]Q1ABC#\n]Q1ABC#\n");  // the repeat is debounced
  WriteAll(w, "bad\xff\xfe\n");       // not UTF-8
  WriteAll(w, std::string(kMaxScanBytes + 1, 'x') + "\n");
  ASSERT_TRUE(events_.WaitScans(2));
  clock_.advance_ms(800);
  WriteAll(w, "ABC\n");  // window over; no prefix present: kept as is
  ASSERT_TRUE(events_.WaitScans(3));
  // A NUL is valid UTF-8: a scan as read (member-codes.md: its text goes to the POS).
  WriteAll(w, std::string("A\0B\n", 4));
  ASSERT_TRUE(events_.WaitScans(4));
  close(w);
  auto scans = events_.scans();
  EXPECT_EQ(scans[0].text, "ABC");
  EXPECT_TRUE(scans[1].overlong);
  EXPECT_TRUE(scans[1].text.empty());
  EXPECT_EQ(scans[2].text, "ABC");
  EXPECT_EQ(scans[3].text, std::string("A\0B", 3));
  auto c = src->counters();
  EXPECT_EQ(c.debounced, 1u);
  EXPECT_EQ(c.invalid_utf8, 1u);
  EXPECT_EQ(c.overlong, 1u);
  EXPECT_EQ(c.scans, 4u);
  EXPECT_EQ(events_.garbage().size(), 1u);
}

TEST_F(FifoTest, HalfFinishedLineTimesOut) {
  opts_.partial_timeout_ms = 500;
  auto src = Make(opts_);
  ASSERT_TRUE(src->Start().ok());
  int w = OpenWriter();
  WriteAll(w, "half-a-sc");
  ASSERT_TRUE(EventCollector::Eventually([&] { return src->counters().bytes_read == 9; }));
  clock_.advance_ms(500);
  ASSERT_TRUE(EventCollector::Eventually([&] { return src->counters().partial_timeouts == 1; }));
  WriteAll(w, "whole\n");
  ASSERT_TRUE(events_.WaitScans(1));
  EXPECT_EQ(events_.scans()[0].text, "whole");
  close(w);
}

// A writer on a fifo made again by a restarted feeder: opening for writing only succeeds
// once a reader holds the new fifo open (ENXIO until then with O_NONBLOCK).
int OpenWriterWhenRead(const std::string& path) {
  int fd = -1;
  EventCollector::Eventually([&] {
    fd = open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    return fd >= 0;
  });
  if (fd >= 0) fcntl(fd, F_SETFL, 0);  // blocking writes from here on
  return fd;
}

// operations.md: a fifo removed and created again under the source is opened again, and the
// source is disconnected while the path is missing.
TEST_F(FifoTest, AFifoDeletedAndCreatedAgainIsOpenedAgain) {
  auto src = Make(opts_);
  ASSERT_TRUE(src->Start().ok());
  ASSERT_TRUE(events_.WaitState(SourceState::kConnected));
  int w = OpenWriter();
  WriteAll(w, "before\n");
  ASSERT_TRUE(events_.WaitScans(1));
  // The feeder dies (its fifo deleted while it still held it open), then restarts.
  ASSERT_EQ(unlink(opts_.path.c_str()), 0);
  ASSERT_TRUE(events_.WaitState(SourceState::kDisconnected));
  EXPECT_EQ(src->state(), SourceState::kDisconnected);
  close(w);
  ASSERT_EQ(mkfifo(opts_.path.c_str(), 0660), 0);
  ASSERT_TRUE(events_.WaitState(SourceState::kConnected, 2));
  w = OpenWriterWhenRead(opts_.path);
  ASSERT_GE(w, 0) << "the new fifo was never opened for reading";
  WriteAll(w, "after\n");
  ASSERT_TRUE(events_.WaitScans(2));
  close(w);
  EXPECT_EQ(events_.scans()[1].text, "after");
  EXPECT_EQ(src->state(), SourceState::kConnected);
  EXPECT_EQ(src->counters().reconnects, 1u);
}

// Deleted and made again between two looks: the path names another fifo (device and inode
// differ from the one held open), which is opened instead.
TEST_F(FifoTest, AFifoReplacedAtOnceIsFollowedByItsInode) {
  auto src = Make(opts_);
  ASSERT_TRUE(src->Start().ok());
  ASSERT_TRUE(events_.WaitState(SourceState::kConnected));
  const std::string moved = dir_ / "old-scans";
  ASSERT_EQ(rename(opts_.path.c_str(), moved.c_str()), 0);
  ASSERT_EQ(mkfifo(opts_.path.c_str(), 0660), 0);
  int w = OpenWriterWhenRead(opts_.path);
  ASSERT_GE(w, 0) << "the new fifo was never opened for reading";
  WriteAll(w, "new fifo\n");
  ASSERT_TRUE(events_.WaitScans(1));
  close(w);
  EXPECT_EQ(events_.scans()[0].text, "new fifo");
}

TEST_F(FifoTest, PathThatIsNotAFifoFailsToStart) {
  testing::WriteBytes(opts_.path, "regular file");
  auto src = Make(opts_);
  Status s = src->Start();
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  src->Stop();
}

TEST(MakeSource, RejectsBadOptions) {
  FakeClock clock;
  SourceOptions o;
  o.kind = "fifo";
  o.path = "/tmp/x";
  EXPECT_EQ(MakeSource(o, {}, clock).status().code(), ErrorCode::kInvalidArgument);  // no id
  o.id = "a";
  o.kind = "telepathy";
  EXPECT_EQ(MakeSource(o, {}, clock).status().code(), ErrorCode::kInvalidArgument);
  o.kind = "serial";
  o.baud = 1234;
  EXPECT_EQ(MakeSource(o, {}, clock).status().code(), ErrorCode::kInvalidArgument);
  o.baud = 9600;
  o.terminator = "NUL";
  EXPECT_EQ(MakeSource(o, {}, clock).status().code(), ErrorCode::kInvalidArgument);
  o.terminator = "CRLF";
  EXPECT_TRUE(MakeSource(o, {}, clock).ok());
  o.partial_timeout_ms = 0;
  EXPECT_EQ(MakeSource(o, {}, clock).status().code(), ErrorCode::kInvalidArgument);
  o.partial_timeout_ms = 1000;
  o.kind = "image";
  EXPECT_EQ(MakeSource(o, {}, clock).status().code(), ErrorCode::kInvalidArgument);  // no directory
  o.directory = "/tmp";
  o.processed = "move";
  EXPECT_EQ(MakeSource(o, {}, clock).status().code(),
            ErrorCode::kInvalidArgument);  // no processed_dir
  o.kind = "usb-hid-pos";
  EXPECT_EQ(MakeSource(o, {}, clock).status().code(), ErrorCode::kInvalidArgument);  // no vendor id
}

// --- serial over a pty pair ----------------------------------------------------------------

class PtyPair {
 public:
  PtyPair(std::string a, std::string b) : a_(std::move(a)), b_(std::move(b)) {}
  ~PtyPair() { Kill(); }
  bool Start() {
    pid_ = fork();
    if (pid_ == 0) {
      const std::string pa = "pty,raw,echo=0,link=" + a_;
      const std::string pb = "pty,raw,echo=0,link=" + b_;
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 2);
      execlp("socat", "socat", pa.c_str(), pb.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    return pid_ > 0 && EventCollector::Eventually([&] {
             struct stat st;
             return stat(a_.c_str(), &st) == 0 && stat(b_.c_str(), &st) == 0;
           });
  }
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  std::string a_, b_;
  pid_t pid_ = -1;
};

bool HaveSocat() { return std::system("command -v socat >/dev/null 2>&1") == 0; }

class SerialTest : public SourceTest {
 protected:
  void SetUp() override {
    if (!HaveSocat()) GTEST_SKIP() << "socat is not installed (Debian package socat)";
    pty_ = std::make_unique<PtyPair>(dir_ / "ttyA", dir_ / "ttyB");
    ASSERT_TRUE(pty_->Start());
    opts_.id = "lane1";
    opts_.kind = "serial";
    opts_.path = dir_ / "ttyA";
    opts_.baud = 115200;
    opts_.reopen_interval_ms = 100;
  }
  void TearDown() override {
    if (writer_ >= 0) close(writer_);
  }
  int Writer() {
    if (writer_ < 0) writer_ = open((dir_ / "ttyB").c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
    return writer_;
  }
  std::unique_ptr<PtyPair> pty_;
  SourceOptions opts_;
  int writer_ = -1;
};

TEST_F(SerialTest, Terminators) {
  struct Case {
    const char* terminator;
    const char* wire;
  } cases[] = {{"CR", "\r"}, {"LF", "\n"}, {"CRLF", "\r\n"}};
  const std::string code = testing::MakeLm1Code(3);
  size_t expected = 0;
  for (const Case& c : cases) {
    opts_.terminator = c.terminator;
    auto src = Make(opts_);
    ASSERT_TRUE(src->Start().ok());
    ASSERT_TRUE(events_.WaitState(SourceState::kConnected, expected / 2 + 1));
    WriteAll(Writer(), code + c.wire + "8800123456789" + c.wire);
    expected += 2;
    ASSERT_TRUE(events_.WaitScans(expected)) << c.terminator;
    auto scans = events_.scans();
    EXPECT_EQ(scans[expected - 2].text, code) << c.terminator;
    EXPECT_EQ(scans[expected - 1].text, "8800123456789") << c.terminator;
    src->Stop();
  }
}

TEST_F(SerialTest, RandomBytesThenAValidScan) {
  opts_.terminator = "CR";
  auto src = Make(opts_);
  ASSERT_TRUE(src->Start().ok());
  ASSERT_TRUE(events_.WaitState(SourceState::kConnected));
  std::mt19937 rng(2024);
  std::string junk(20 * 1024, '\0');
  for (char& c : junk) c = static_cast<char>(rng());
  junk.back() = 'x';  // leaves a half-finished read for the partial timeout
  WriteAll(Writer(), junk);
  ASSERT_TRUE(
      EventCollector::Eventually([&] { return src->counters().bytes_read == junk.size(); }));
  clock_.advance_ms(opts_.partial_timeout_ms);
  ASSERT_TRUE(EventCollector::Eventually([&] { return src->counters().partial_timeouts == 1; }));
  const size_t before = events_.scan_count();
  const std::string code = testing::MakeLm1Code(5);
  WriteAll(Writer(), code + "\r");
  ASSERT_TRUE(events_.WaitScans(before + 1));
  auto scans = events_.scans();
  EXPECT_EQ(scans.back().text, code);
  EXPECT_EQ(src->state(), SourceState::kConnected);
  auto c = src->counters();
  EXPECT_GT(c.invalid_utf8, 20u);  // most random reads are not UTF-8
  EXPECT_FALSE(events_.garbage().empty());
  EXPECT_EQ(events_.states().size(), 1u);  // never left connected
}

TEST_F(SerialTest, DeviceGoneMidScanThenBack) {
  auto src = Make(opts_);
  ASSERT_TRUE(src->Start().ok());
  ASSERT_TRUE(events_.WaitState(SourceState::kConnected));
  WriteAll(Writer(), "cut-off-sc");
  ASSERT_TRUE(EventCollector::Eventually([&] { return src->counters().bytes_read == 10; }));
  close(writer_);
  writer_ = -1;
  pty_->Kill();
  ASSERT_TRUE(events_.WaitState(SourceState::kDisconnected));
  EXPECT_EQ(src->counters().cut_off, 1u);
  ASSERT_TRUE(pty_->Start());
  ASSERT_TRUE(events_.WaitState(SourceState::kConnected, 2));
  WriteAll(Writer(), "after\r");
  ASSERT_TRUE(events_.WaitScans(1));
  EXPECT_EQ(events_.scans()[0].text, "after");
  EXPECT_EQ(src->counters().reconnects, 1u);
}

}  // namespace
}  // namespace loyalty::drivers
