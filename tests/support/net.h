// Loopback sockets for tests.
#pragma once

#include <cstdint>

namespace loyalty::testing {

// A loopback TCP port that was free a moment ago, picked at random outside the kernel's
// ephemeral range (where outgoing connections would take it meanwhile): for configuring a
// program that binds it itself, also again after a restart.
uint16_t FreePort();

// A loopback listener that accepts connections (the kernel completes the handshake) and
// never reads or answers: a peer that hangs every request. Closed when destroyed.
class SilentListener {
 public:
  SilentListener();
  ~SilentListener();
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

}  // namespace loyalty::testing
