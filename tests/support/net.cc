#include "support/net.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

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

}  // namespace

uint16_t FreePort() {
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
