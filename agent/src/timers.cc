#include "timers.h"

#include <systemd/sd-daemon.h>

#include <chrono>

#include "log.h"
#include "loyalty/base/time.h"

namespace loyalty::agent {

WatchdogTimer::WatchdogTimer(boost::asio::io_context& ioc) : timer_(ioc) {}

void WatchdogTimer::Start() {
  if (sd_watchdog_enabled(0, &watchdog_usec_) > 0 && watchdog_usec_ > 0) Arm();
}

void WatchdogTimer::Cancel() { timer_.cancel(); }

void WatchdogTimer::Arm() {
  timer_.expires_after(std::chrono::microseconds(watchdog_usec_ / 2));
  timer_.async_wait([this](const boost::system::error_code& e) {
    if (e) return;
    sd_notify(0, "WATCHDOG=1");
    Arm();
  });
}

ClockCheckTimer::ClockCheckTimer(boost::asio::io_context& ioc, const Clock& clock,
                                 codes::TrustedTime& trusted_time,
                                 const checkout::CheckoutService& service)
    : timer_(ioc), clock_(clock), trusted_time_(trusted_time), service_(service) {}

void ClockCheckTimer::Start() { Check(); }

void ClockCheckTimer::Cancel() { timer_.cancel(); }

void ClockCheckTimer::Check() {
  switch (trusted_time_.TakeTransition(clock_)) {
    case codes::TrustedTime::Transition::kBecameUntrusted:
      LogEvent(Level::kWarn, "clock_untrusted",
               {{"wall_clock", FormatRfc3339(clock_.now_s())},
                {"trusted_time", FormatRfc3339(service_.NowS())}});
      break;
    case codes::TrustedTime::Transition::kBecameTrusted:
      LogEvent(Level::kInfo, "clock_trusted", {{"wall_clock", FormatRfc3339(clock_.now_s())}});
      break;
    case codes::TrustedTime::Transition::kNone:
      break;
  }
  timer_.expires_after(std::chrono::seconds(10));
  timer_.async_wait([this](const boost::system::error_code& e) {
    if (!e) Check();
  });
}

}  // namespace loyalty::agent
