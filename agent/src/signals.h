// The daemon's signals, handled on the event loop: SIGHUP asks for a reload and is waited
// for again; the first SIGTERM or SIGINT asks for the stop, after which no signal is waited
// for.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <functional>

namespace loyalty::agent {

class DaemonSignals {
 public:
  // Takes SIGTERM, SIGINT and SIGHUP from here on; one that comes before Start waits for it
  // (asio queues it).
  explicit DaemonSignals(boost::asio::io_context& ioc);
  DaemonSignals(const DaemonSignals&) = delete;
  DaemonSignals& operator=(const DaemonSignals&) = delete;

  // Event-loop thread, both callbacks: on_reload for every SIGHUP; on_stop (with SIGTERM
  // or SIGINT) once.
  void Start(std::function<void()> on_reload, std::function<void(int signal)> on_stop);
  void Cancel();

 private:
  void Wait();

  boost::asio::signal_set signals_;
  std::function<void()> on_reload_;
  std::function<void(int)> on_stop_;
  bool stopping_ = false;
};

}  // namespace loyalty::agent
