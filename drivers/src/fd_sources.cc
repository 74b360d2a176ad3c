// Sources that read a byte stream from a descriptor the kernel can poll: a fifo and a
// serial tty. Each thread blocks in poll() on the stream and the wake eventfd, so an idle
// source costs nothing; it wakes on a short period only while a half-finished read waits
// for its partial timeout.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "source_base.h"
#include "sources.h"

namespace loyalty::drivers::internal {
namespace {

constexpr int kPartialCheckMs = 100;
// How often a fifo source compares its path with the fifo it holds open (operations.md: a
// replaced fifo is picked up again within five seconds).
constexpr int kIdentityCheckMs = 1000;

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

class StreamSourceBase : public SourceBase {
 public:
  using SourceBase::SourceBase;

 protected:
  enum class Outcome { kStopped, kEof, kError, kReplaced };

  // Sources whose path can be replaced under them (a fifo) say so here: Pump() then calls
  // Replaced() at least every kIdentityCheckMs and returns kReplaced when it is true.
  virtual bool Replaced(int /*fd*/) { return false; }
  virtual bool ChecksIdentity() const { return false; }

  // Pumps fd until stop, end of stream, error or (ChecksIdentity) replacement. The framer
  // persists across reopens. fd is non-blocking: after bytes it is read again at once, until
  // it has nothing (EAGAIN) or ends, so an end of stream is seen even where poll() would not
  // report the hang-up (a fifo read end opened after its last writer had already closed).
  Outcome Pump(int fd, LineFramer* framer, std::string* error) {
    std::vector<Frame> frames;
    uint8_t buf[4096];
    int64_t last_byte_ms = clock_.mono_ms();
    bool read_again = false;
    // The identity check's cadence is not logic that depends on time, so it runs on the
    // process's steady clock rather than the injected one (a frozen test clock must not
    // stop it).
    auto last_check = std::chrono::steady_clock::now();
    for (;;) {
      int timeout =
          framer->has_partial() ? std::min(kPartialCheckMs, options_.partial_timeout_ms) : -1;
      if (ChecksIdentity())
        timeout = timeout < 0 ? kIdentityCheckMs : std::min(timeout, kIdentityCheckMs);
      const short rev = read_again ? POLLIN : WaitReadable(fd, timeout);
      read_again = false;
      if (stopping()) return Outcome::kStopped;
      if (ChecksIdentity()) {
        const auto now = std::chrono::steady_clock::now();
        if (rev == 0 || now - last_check >= std::chrono::milliseconds(kIdentityCheckMs)) {
          last_check = now;
          if (Replaced(fd)) return Outcome::kReplaced;
        }
      }
      if (rev & (POLLIN | POLLHUP | POLLERR)) {
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
          // Stamped before anything observable (counters, frames) changes, so whoever sees
          // the bytes counted also sees when they arrived.
          last_byte_ms = clock_.mono_ms();
          UpdateCounters([n](SourceCounters& c) { c.bytes_read += static_cast<uint64_t>(n); });
          framer->Feed(std::span<const uint8_t>(buf, static_cast<size_t>(n)), &frames);
          Deliver(&frames);
          read_again = true;
          continue;
        }
        if (n == 0) return Outcome::kEof;
        if (errno == EINTR) read_again = true;
        if (errno == EAGAIN || errno == EINTR) continue;
        *error = Errno("read " + options_.path);
        return Outcome::kError;
      }
      if (rev & POLLNVAL) {
        *error = "descriptor closed";
        return Outcome::kError;
      }
      if (framer->has_partial() && clock_.mono_ms() - last_byte_ms >= options_.partial_timeout_ms) {
        framer->DiscardPartial();
        Garbage(&SourceCounters::partial_timeouts, "unterminated read timed out");
      }
    }
  }
};

// ---------------------------------------------------------------------------------------

class FifoSource final : public StreamSourceBase {
 public:
  using StreamSourceBase::StreamSourceBase;
  ~FifoSource() override { Stop(); }

 protected:
  Status Prepare() override {
    struct stat st;
    if (stat(options_.path.c_str(), &st) != 0) {
      if (errno != ENOENT)
        return Status::Error(ErrorCode::kInvalidArgument, Errno("fifo " + options_.path));
      if (mkfifo(options_.path.c_str(), 0660) == 0) {
        // 0660 whatever the umask (the service's is 0027): a feeder in the group writes.
        if (chmod(options_.path.c_str(), 0660) != 0)
          return Status::Error(ErrorCode::kInvalidArgument, Errno("chmod " + options_.path));
      } else if (errno != EEXIST) {
        return Status::Error(ErrorCode::kInvalidArgument, Errno("mkfifo " + options_.path));
      }
    } else if (!S_ISFIFO(st.st_mode)) {
      return Status::Error(ErrorCode::kInvalidArgument,
                           "fifo " + options_.path + " is not a named pipe");
    }
    return Status::Ok();
  }

  void Run() override {
    LineFramer framer(Terminator::kLF);
    std::vector<Frame> frames;
    // After a writer's end of stream the read end is reopened (a read end that has seen a
    // hang-up keeps reporting it), but the old one stays open until the new one is: the fifo
    // never lacks a reader, so a writer that opens in between neither meets EPIPE nor has
    // what it wrote discarded with the pipe's buffer; the new read end reads it.
    int held = -1;
    auto release_held = [&held] {
      if (held >= 0) close(held);
      held = -1;
    };
    while (!stopping()) {
      // A feeder that restarts may delete the fifo and make a new one: while the path is
      // missing (or not a fifo) the source is disconnected and looks again every
      // reopen_interval_ms. It does not create the fifo again itself: only Prepare() does,
      // at start.
      struct stat path_st;
      const bool found = stat(options_.path.c_str(), &path_st) == 0;
      if (!found || !S_ISFIFO(path_st.st_mode)) {
        release_held();
        SetState(SourceState::kDisconnected, found
                                                 ? "fifo " + options_.path + " is not a named pipe"
                                                 : Errno("fifo " + options_.path));
        SleepUnlessStopped(options_.reopen_interval_ms);
        continue;
      }
      // O_NONBLOCK: opening for reading does not wait for a writer, and a fresh reader
      // sees no hang-up until a writer has come and gone, so poll() blocks meanwhile.
      const int fd = open(options_.path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) {
        const SourceState state =
            errno == ENOENT ? SourceState::kDisconnected : SourceState::kError;
        const std::string detail = Errno("open " + options_.path);
        release_held();
        SetState(state, detail);
        SleepUnlessStopped(options_.reopen_interval_ms);
        continue;
      }
      struct stat fd_st;
      if (fstat(fd, &fd_st) != 0 || !S_ISFIFO(fd_st.st_mode)) {
        close(fd);
        release_held();
        SetState(SourceState::kDisconnected, "fifo " + options_.path + " is not a named pipe");
        SleepUnlessStopped(options_.reopen_interval_ms);
        continue;
      }
      // The new read end is open: the old one (the same fifo unless the path was replaced
      // meanwhile) can go. Bytes left in the pipe's buffer are read through the new one.
      release_held();
      dev_ = fd_st.st_dev;
      ino_ = fd_st.st_ino;
      SetState(SourceState::kConnected, "fifo " + options_.path + " open");
      std::string error;
      const Outcome o = Pump(fd, &framer, &error);
      if (o == Outcome::kEof) {
        // Every writer closed: the last line counts even without a newline. The read end is
        // held until the next one is open.
        held = fd;
        framer.Flush(&frames);
        Deliver(&frames);
        continue;
      }
      close(fd);
      if (o == Outcome::kReplaced) {
        // What was half-read came from the old fifo's writer, which is gone.
        if (framer.has_partial()) {
          framer.DiscardPartial();
          Garbage(&SourceCounters::cut_off, "read cut off by the fifo being replaced");
        }
        // The loop looks at the path again at once: a new fifo already there is opened now,
        // a missing one makes the source disconnected.
      } else if (o == Outcome::kError) {
        framer.DiscardPartial();
        SetState(SourceState::kError, error);
        SleepUnlessStopped(options_.reopen_interval_ms);
      }
    }
    release_held();
  }

  bool ChecksIdentity() const override { return true; }

  // The path no longer names the fifo held open: deleted, or deleted and made again.
  bool Replaced(int /*fd*/) override {
    struct stat st;
    if (stat(options_.path.c_str(), &st) != 0) return true;
    return st.st_dev != dev_ || st.st_ino != ino_ || !S_ISFIFO(st.st_mode);
  }

 private:
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

// ---------------------------------------------------------------------------------------

speed_t BaudToSpeed(int baud) {
  switch (baud) {
    case 1200:
      return B1200;
    case 2400:
      return B2400;
    case 4800:
      return B4800;
    case 9600:
      return B9600;
    case 19200:
      return B19200;
    case 38400:
      return B38400;
    case 57600:
      return B57600;
    case 115200:
      return B115200;
    case 230400:
      return B230400;
    case 460800:
      return B460800;
    case 921600:
      return B921600;
    default:
      return 0;
  }
}

class SerialSource final : public StreamSourceBase {
 public:
  SerialSource(const SourceOptions& o, SourceEvents e, const Clock& c, Terminator t)
      : StreamSourceBase(o, std::move(e), c), terminator_(t) {}
  ~SerialSource() override { Stop(); }

 protected:
  void Run() override {
    LineFramer framer(terminator_);
    while (!stopping()) {
      std::string error;
      const int fd = OpenConfigured(&error);
      if (fd < 0) {
        SetState(SourceState::kDisconnected, error);
        SleepUnlessStopped(options_.reopen_interval_ms);
        continue;
      }
      SetState(SourceState::kConnected, "serial " + options_.path + " open");
      const Outcome o = Pump(fd, &framer, &error);
      close(fd);
      if (o == Outcome::kStopped) break;
      // A tty does not end: end of stream or EIO means the device (or the pty's other
      // side) went away. What was half-read will never be finished.
      if (framer.has_partial()) {
        framer.DiscardPartial();
        Garbage(&SourceCounters::cut_off, "read cut off by disconnect");
      }
      SetState(SourceState::kDisconnected,
               error.empty() ? "serial " + options_.path + " closed" : error);
      SleepUnlessStopped(options_.reopen_interval_ms);
    }
  }

 private:
  int OpenConfigured(std::string* error) {
    const int fd = open(options_.path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      *error = Errno("open " + options_.path);
      return -1;
    }
    termios tio;
    if (tcgetattr(fd, &tio) != 0) {
      *error = Errno("tcgetattr " + options_.path);
      close(fd);
      return -1;
    }
    // Raw: no echo, no line editing, no CR/LF translation, 8N1; the framer sees every byte.
    cfmakeraw(&tio);
    tio.c_cflag |= CLOCAL | CREAD;
    tio.c_cflag &= ~(CSTOPB | PARENB | CRTSCTS);
    tio.c_cc[VMIN] = 1;
    tio.c_cc[VTIME] = 0;
    const speed_t speed = BaudToSpeed(options_.baud);
    cfsetispeed(&tio, speed);
    cfsetospeed(&tio, speed);
    if (tcsetattr(fd, TCSANOW, &tio) != 0) {
      *error = Errno("tcsetattr " + options_.path);
      close(fd);
      return -1;
    }
    return fd;
  }

  Terminator terminator_;
};

}  // namespace

Result<std::unique_ptr<Source>> MakeFifoSource(const SourceOptions& o, SourceEvents e,
                                               const Clock& c) {
  if (o.path.empty()) return Status::Error(ErrorCode::kInvalidArgument, "fifo: path is required");
  return std::unique_ptr<Source>(new FifoSource(o, std::move(e), c));
}

Result<std::unique_ptr<Source>> MakeSerialSource(const SourceOptions& o, SourceEvents e,
                                                 const Clock& c) {
  if (o.path.empty()) return Status::Error(ErrorCode::kInvalidArgument, "serial: path is required");
  if (BaudToSpeed(o.baud) == 0)
    return Status::Error(ErrorCode::kInvalidArgument,
                         "serial: unsupported baud " + std::to_string(o.baud));
  Terminator t;
  if (o.terminator == "CR")
    t = Terminator::kCR;
  else if (o.terminator == "LF")
    t = Terminator::kLF;
  else if (o.terminator == "CRLF")
    t = Terminator::kCRLF;
  else
    return Status::Error(ErrorCode::kInvalidArgument, "serial: terminator must be CR, LF or CRLF");
  return std::unique_ptr<Source>(new SerialSource(o, std::move(e), c, t));
}

}  // namespace loyalty::drivers::internal
