#include "signals.h"

#include <csignal>
#include <utility>

namespace loyalty::agent {

DaemonSignals::DaemonSignals(boost::asio::io_context& ioc)
    : signals_(ioc, SIGTERM, SIGINT, SIGHUP) {}

void DaemonSignals::Start(std::function<void()> on_reload,
                          std::function<void(int signal)> on_stop) {
  on_reload_ = std::move(on_reload);
  on_stop_ = std::move(on_stop);
  Wait();
}

void DaemonSignals::Cancel() { signals_.cancel(); }

void DaemonSignals::Wait() {
  signals_.async_wait([this](const boost::system::error_code& e, int sig) {
    if (e) return;
    if (sig == SIGHUP) {
      on_reload_();
      Wait();
      return;
    }
    if (stopping_) return;
    stopping_ = true;
    on_stop_(sig);
  });
}

}  // namespace loyalty::agent
