// Clock: the only way code reads time, so tests inject it.
//
// now_ms() is wall-clock unix milliseconds (may jump: it is whatever the terminal's clock
// says); mono_ms() is a monotonic millisecond counter with an arbitrary origin. Both are
// thread-safe.
#pragma once

#include <atomic>
#include <cstdint>

namespace loyalty {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t now_ms() const = 0;
  virtual int64_t mono_ms() const = 0;
  int64_t now_s() const {
    int64_t ms = now_ms();
    return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  }
};

class SystemClock final : public Clock {
 public:
  int64_t now_ms() const override;
  int64_t mono_ms() const override;
  static SystemClock& Instance();
};

// A clock that moves only when told. Wall and monotonic time move together under
// advance_ms(); set_now_ms() moves the wall clock alone (a terminal whose clock is reset).
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t now_ms = 0, int64_t mono_ms = 1'000'000)
      : now_(now_ms), mono_(mono_ms) {}
  int64_t now_ms() const override { return now_.load(); }
  int64_t mono_ms() const override { return mono_.load(); }
  void set_now_ms(int64_t v) { now_.store(v); }
  void set_now_s(int64_t v) { now_.store(v * 1000); }
  void advance_ms(int64_t d) {
    now_.fetch_add(d);
    mono_.fetch_add(d);
  }

 private:
  std::atomic<int64_t> now_;
  std::atomic<int64_t> mono_;
};

}  // namespace loyalty
