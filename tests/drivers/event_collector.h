// Collects a source's events for tests and waits for conditions with a generous deadline
// (a wait, not a timing assertion: a slow machine only makes the test slower).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "loyalty/drivers/source.h"

namespace loyalty::drivers::testing {

class EventCollector {
 public:
  SourceEvents Events() {
    SourceEvents e;
    e.on_scan = [this](Scan s) {
      std::lock_guard<std::mutex> l(mu_);
      scans_.push_back(std::move(s));
      cv_.notify_all();
    };
    e.on_state = [this](const std::string&, SourceState st, const std::string& detail) {
      std::lock_guard<std::mutex> l(mu_);
      states_.push_back(st);
      details_.push_back(detail);
      cv_.notify_all();
    };
    e.on_garbage = [this](const std::string&, const std::string& what) {
      std::lock_guard<std::mutex> l(mu_);
      garbage_.push_back(what);
      cv_.notify_all();
    };
    e.on_image_refused = [this](const std::string&, const RefusedImage& r) {
      std::lock_guard<std::mutex> l(mu_);
      refused_.push_back(r);
      cv_.notify_all();
    };
    return e;
  }
  std::vector<RefusedImage> refused() {
    std::lock_guard<std::mutex> l(mu_);
    return refused_;
  }

  // Waits until pred() (called under the lock) holds; false after the deadline.
  bool WaitUntil(const std::function<bool()>& pred, int timeout_ms = 10000) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, std::chrono::milliseconds(timeout_ms), pred);
  }
  bool WaitScans(size_t n, int timeout_ms = 10000) {
    return WaitUntil([&] { return scans_.size() >= n; }, timeout_ms);
  }
  bool WaitState(SourceState s, size_t occurrences = 1, int timeout_ms = 10000) {
    return WaitUntil(
        [&] {
          size_t k = 0;
          for (SourceState x : states_) k += x == s;
          return k >= occurrences;
        },
        timeout_ms);
  }
  // Polls a condition that is not an event (e.g. a counter) every few milliseconds.
  static bool Eventually(const std::function<bool()>& pred, int timeout_ms = 10000) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < end) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return pred();
  }

  std::vector<Scan> scans() {
    std::lock_guard<std::mutex> l(mu_);
    return scans_;
  }
  std::vector<SourceState> states() {
    std::lock_guard<std::mutex> l(mu_);
    return states_;
  }
  std::vector<std::string> garbage() {
    std::lock_guard<std::mutex> l(mu_);
    return garbage_;
  }
  size_t scan_count() {
    std::lock_guard<std::mutex> l(mu_);
    return scans_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Scan> scans_;
  std::vector<SourceState> states_;
  std::vector<std::string> details_;
  std::vector<std::string> garbage_;
  std::vector<RefusedImage> refused_;
};

}  // namespace loyalty::drivers::testing
