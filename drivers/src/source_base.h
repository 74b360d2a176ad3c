// Private: what every source shares. The source's thread owns the decoders; the only
// state touched from other threads is state_ (atomic), counters_ (mutex) and the wake fd.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "loyalty/base/clock.h"
#include "loyalty/drivers/decoders.h"
#include "loyalty/drivers/source.h"

namespace loyalty::drivers::internal {

class SourceBase : public Source {
 public:
  SourceBase(const SourceOptions& options, SourceEvents events, const Clock& clock);
  ~SourceBase() override;

  const std::string& id() const override { return options_.id; }
  std::string kind() const override { return options_.kind; }
  SourceState state() const override { return state_.load(); }
  SourceCounters counters() const override;
  Status Start() override;
  void Stop() override;

 protected:
  // Runs on the source's thread until stopping() turns true; must return promptly after
  // Wake() (it polls wake_fd() alongside its own descriptors).
  virtual void Run() = 0;
  // Status checks before the thread starts (paths, layout).
  virtual Status Prepare() { return Status::Ok(); }
  // Called by Stop() after stopping() turned true, before joining: a thread blocked
  // somewhere other than WaitReadable() (libusb) is woken here.
  virtual void Interrupt() {}

  bool stopping() const { return stop_.load(); }
  int wake_fd() const { return wake_fd_; }
  // Blocks up to timeout_ms (-1: forever) for fd (may be -1) to become readable or the
  // source to be stopped. Returns the poll revents of fd (0 on timeout or wake).
  short WaitReadable(int fd, int timeout_ms);
  // Sleeps up to timeout_ms unless stopped first. Returns false when stopping.
  bool SleepUnlessStopped(int timeout_ms);

  // Frames from the decoders: prefix/suffix, UTF-8, debounce, then on_scan.
  void Deliver(std::vector<Frame>* frames);
  void SetState(SourceState s, const std::string& detail);
  // Counts one kind of garbage and reports the burst through on_garbage.
  void Garbage(uint64_t SourceCounters::*counter, const std::string& what, uint64_t n = 1);
  template <typename F>
  void UpdateCounters(F&& f) {
    std::lock_guard<std::mutex> lock(counters_mu_);
    f(counters_);
  }
  // Folds a decoder's garbage counters into ours (the delta since the last call).
  void SyncDecoderCounters(const DecoderCounters& c);

  const SourceOptions options_;
  const SourceEvents events_;
  const Clock& clock_;

 private:
  std::atomic<SourceState> state_{SourceState::kDisconnected};
  bool state_reported_ = false;
  bool ever_connected_ = false;
  std::atomic<bool> stop_{false};
  int wake_fd_ = -1;
  std::thread thread_;
  bool started_ = false;
  std::mutex lifecycle_mu_;

  mutable std::mutex counters_mu_;
  SourceCounters counters_;
  uint64_t decoder_garbage_seen_ = 0;
  Debouncer debouncer_;
  // Garbage bursts: report the first, then at most once a second with the running count.
  bool in_burst_ = false;
  int64_t last_garbage_report_ms_ = 0;
  uint64_t unreported_garbage_ = 0;
};

}  // namespace loyalty::drivers::internal
