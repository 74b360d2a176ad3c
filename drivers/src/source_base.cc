#include "source_base.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

#include "loyalty/base/encoding.h"

namespace loyalty::drivers::internal {
namespace {
constexpr int64_t kGarbageReportIntervalMs = 1000;
}  // namespace

SourceBase::SourceBase(const SourceOptions& options, SourceEvents events, const Clock& clock)
    : options_(options),
      events_(std::move(events)),
      clock_(clock),
      debouncer_(options.debounce_ms) {
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

SourceBase::~SourceBase() {
  // Derived classes call Stop() in their destructors (Run() is theirs); this is the
  // backstop for the fd.
  if (wake_fd_ >= 0) close(wake_fd_);
}

SourceCounters SourceBase::counters() const {
  std::lock_guard<std::mutex> lock(counters_mu_);
  return counters_;
}

Status SourceBase::Start() {
  std::lock_guard<std::mutex> lock(lifecycle_mu_);
  if (started_) return Status::Error(ErrorCode::kFailedPrecondition, "source already started");
  if (wake_fd_ < 0) return Status::Error(ErrorCode::kIoError, "eventfd failed");
  Status s = Prepare();
  if (!s.ok()) return s;
  started_ = true;
  stop_.store(false);
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void SourceBase::Stop() {
  std::lock_guard<std::mutex> lock(lifecycle_mu_);
  if (!thread_.joinable()) return;
  stop_.store(true);
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
  Interrupt();
  thread_.join();
}

short SourceBase::WaitReadable(int fd, int timeout_ms) {
  pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {fd, POLLIN, 0}};
  const int n = fd >= 0 ? 2 : 1;
  for (;;) {
    if (stopping()) return 0;
    int r = poll(fds, n, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return 0;
    return n == 2 ? fds[1].revents : 0;
  }
}

bool SourceBase::SleepUnlessStopped(int timeout_ms) {
  WaitReadable(-1, timeout_ms);
  return !stopping();
}

void SourceBase::SetState(SourceState s, const std::string& detail) {
  const SourceState old = state_.exchange(s);
  if (old == s && state_reported_) return;
  state_reported_ = true;
  in_burst_ = false;
  if (s == SourceState::kConnected) {
    if (ever_connected_) UpdateCounters([](SourceCounters& c) { ++c.reconnects; });
    ever_connected_ = true;
  }
  if (events_.on_state) events_.on_state(options_.id, s, detail);
}

void SourceBase::Garbage(uint64_t SourceCounters::*counter, const std::string& what, uint64_t n) {
  if (n == 0) return;
  {
    std::lock_guard<std::mutex> lock(counters_mu_);
    counters_.*counter += n;
  }
  unreported_garbage_ += n;
  const int64_t now = clock_.mono_ms();
  if (!in_burst_ || now - last_garbage_report_ms_ >= kGarbageReportIntervalMs) {
    in_burst_ = true;
    last_garbage_report_ms_ = now;
    // The count is of every garbage read since the last report, of any reason; `what` is
    // the latest's.
    const std::string msg = std::to_string(unreported_garbage_) +
                            " unreadable since the last report, the latest: " + what;
    unreported_garbage_ = 0;
    if (events_.on_garbage) events_.on_garbage(options_.id, msg);
  }
}

void SourceBase::SyncDecoderCounters(const DecoderCounters& c) {
  const uint64_t total = c.wrong_size + c.unknown_usages + c.malformed;
  if (total > decoder_garbage_seen_) {
    const uint64_t delta = total - decoder_garbage_seen_;
    decoder_garbage_seen_ = total;
    Garbage(&SourceCounters::decoder_garbage, "unexpected report or key", delta);
  }
}

void SourceBase::Deliver(std::vector<Frame>* frames) {
  for (Frame& f : *frames) {
    Scan scan;
    scan.scanner_id = options_.id;
    scan.symbology = std::move(f.symbology);
    scan.at_ms = clock_.now_ms();
    if (f.overlong) {
      // Not debounced: it has no text to compare, and each one deserves its answer.
      scan.overlong = true;
      UpdateCounters([](SourceCounters& c) {
        ++c.scans;
        ++c.overlong;
      });
      in_burst_ = false;
      if (events_.on_scan) events_.on_scan(std::move(scan));
      continue;
    }
    std::string_view text = f.text;
    const std::string& prefix = options_.prefix;
    const std::string& suffix = options_.suffix;
    if (!prefix.empty() && text.size() >= prefix.size() && text.substr(0, prefix.size()) == prefix)
      text.remove_prefix(prefix.size());
    if (!suffix.empty() && text.size() >= suffix.size() &&
        text.substr(text.size() - suffix.size()) == suffix)
      text.remove_suffix(suffix.size());
    if (text.empty()) continue;
    if (!IsValidUtf8(text)) {  // a NUL is valid: the text goes to the POS as read
      Garbage(&SourceCounters::invalid_utf8, "read is not valid UTF-8");
      continue;
    }
    if (!debouncer_.Admit(options_.id, text, clock_.mono_ms())) {
      UpdateCounters([](SourceCounters& c) { ++c.debounced; });
      continue;
    }
    scan.text.assign(text);
    UpdateCounters([](SourceCounters& c) { ++c.scans; });
    in_burst_ = false;
    if (events_.on_scan) events_.on_scan(std::move(scan));
  }
  frames->clear();
}

}  // namespace loyalty::drivers::internal

namespace loyalty::drivers {

const char* SourceStateName(SourceState s) {
  switch (s) {
    case SourceState::kConnected:
      return "connected";
    case SourceState::kDisconnected:
      return "disconnected";
    case SourceState::kError:
      return "error";
  }
  return "error";
}

}  // namespace loyalty::drivers
