#include "support/net.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <random>
#include <utility>

namespace loyalty::testing {
namespace {

// A socket bound to 127.0.0.1:0, and the port it got.
int BindLoopback(uint16_t* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ADD_FAILURE() << "cannot bind a loopback socket";
    if (fd >= 0) ::close(fd);
    return -1;
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

// The kernel's ephemeral range, where bind(0) and every outgoing connection take ports.
std::pair<int, int> EphemeralRange() {
  int lo = 32768, hi = 60999;
  if (FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
    if (std::fscanf(f, "%d %d", &lo, &hi) != 2) lo = 32768, hi = 60999;
    std::fclose(f);
  }
  return {lo, hi};
}

// Whether 127.0.0.1:port can be bound now (SO_REUSEADDR, as the programs under test bind).
bool CanBind(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

uint16_t FreePort() {
  // Outside the ephemeral range: a port taken with bind(0) is one any process's next
  // outgoing connection may take too, between this check and the program binding it (or
  // while a test restarts the program on the same port). Out here only another FreePort
  // pick, at random, can meet it.
  static std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(::getpid()));
  auto [lo, hi] = EphemeralRange();
  int from = 10000, to = lo - 1;  // below the range
  if (hi < 64000) from = hi + 1, to = 65535;
  if (to - from >= 1000) {
    std::uniform_int_distribution<int> pick(from, to);
    for (int i = 0; i < 64; ++i) {
      auto port = static_cast<uint16_t>(pick(rng));
      if (CanBind(port)) return port;
    }
  }
  uint16_t port = 0;
  int fd = BindLoopback(&port);
  if (fd >= 0) ::close(fd);
  return port;
}

SilentListener::SilentListener() {
  fd_ = BindLoopback(&port_);
  if (fd_ >= 0 && ::listen(fd_, 8) != 0) ADD_FAILURE() << "cannot listen on a loopback socket";
}

SilentListener::~SilentListener() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace loyalty::testing
