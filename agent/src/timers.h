// The event loop's own timers: the systemd watchdog keep-alive and the clock check. Both
// run on the event-loop thread (every method must be called there) and are cancelled first
// at the stop.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>

#include "loyalty/base/clock.h"
#include "loyalty/checkout/service.h"
#include "loyalty/codes/trusted_time.h"

namespace loyalty::agent {

// Watchdog keep-alives (WATCHDOG=1 at half WATCHDOG_USEC) come from the event loop itself,
// so a stalled loop is restarted by systemd.
class WatchdogTimer {
 public:
  explicit WatchdogTimer(boost::asio::io_context& ioc);
  WatchdogTimer(const WatchdogTimer&) = delete;
  WatchdogTimer& operator=(const WatchdogTimer&) = delete;

  // Arms the keep-alive when systemd asks for one (sd_watchdog_enabled); else does nothing.
  void Start();
  void Cancel();

 private:
  void Arm();

  boost::asio::steady_timer timer_;
  uint64_t watchdog_usec_ = 0;
};

// The clock check: logs clock_untrusted once when the wall clock leaves the trusted time
// (codes::TrustedTime), and clock_trusted when it comes back; checked every 10 s.
class ClockCheckTimer {
 public:
  // All must outlive the timer.
  ClockCheckTimer(boost::asio::io_context& ioc, const Clock& clock,
                  codes::TrustedTime& trusted_time, const checkout::CheckoutService& service);
  ClockCheckTimer(const ClockCheckTimer&) = delete;
  ClockCheckTimer& operator=(const ClockCheckTimer&) = delete;

  // Checks now, then every 10 s.
  void Start();
  void Cancel();

 private:
  void Check();

  boost::asio::steady_timer timer_;
  const Clock& clock_;
  codes::TrustedTime& trusted_time_;
  const checkout::CheckoutService& service_;
};

}  // namespace loyalty::agent
