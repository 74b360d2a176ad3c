// What the connection policy costs the POS (docs/performance.md): the latency of a POS's
// requests over one keep-alive connection to an http::Server at the agent's defaults
// (max_connections 256, 5 s head and handshake deadlines), first alone, then while a flood
// holds the server at its cap: idle sockets that never send, and sockets dribbling a request
// head a byte at a time, each reopened as soon as the server closes it (eviction at the cap,
// the head deadline), so the server keeps accepting and evicting throughout. The handler
// answers at once with a quote-sized JSON body: what is measured is the server's connection
// handling, not the checkout service.
//   bench_pos_flood [requests per phase = 5000] [flood sockets = 400]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "loyalty/http/client.h"
#include "loyalty/http/server.h"

using namespace loyalty;
using Clk = std::chrono::steady_clock;

namespace {

struct Stats {
  double p50, p99, max;
};

Stats Measure(http::Client& pos, int n, const std::string& body) {
  std::vector<double> us;
  us.reserve(n);
  for (int i = 0; i < n; ++i) {
    auto t0 = Clk::now();
    auto r = pos.Request("POST", "/v1/checkouts/quote", body,
                         {{"Content-Type", "application/json"}}, 10000);
    auto t1 = Clk::now();
    if (!r.ok() || r->status != 200) {
      std::fprintf(stderr, "request %d failed: %s\n", i,
                   r.ok() ? std::to_string(r->status).c_str() : r.status().ToString().c_str());
      std::exit(1);
    }
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us[us.size() * 99 / 100], us.back()};
}

class Flood {
 public:
  Flood(uint16_t port, int count) : port_(port), fds_(count, -1) {
    for (int i = 0; i < count; ++i) Open(i);
    thread_ = std::thread([this] { Run(); });
  }
  ~Flood() {
    stop_ = true;
    thread_.join();
    for (int fd : fds_) {
      if (fd >= 0) ::close(fd);
    }
  }
  long reopened() const { return reopened_; }

 private:
  void Open(int i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port_);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd);
      fd = -1;
    }
    fds_[i] = fd;
    sent_.resize(fds_.size());
    sent_[i] = 0;
  }
  void Run() {
    static const char kHead[] = "POST /v1/checkouts/quote HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    while (!stop_) {
      for (size_t i = 0; i < fds_.size() && !stop_; ++i) {
        int fd = fds_[i];
        if (fd >= 0) {
          pollfd p{fd, POLLIN, 0};
          char buf[256];
          if (::poll(&p, 1, 0) > 0 && ::recv(fd, buf, sizeof buf, MSG_DONTWAIT) <= 0) {
            ::close(fd);
            fd = fds_[i] = -1;
          }
        }
        if (fd < 0) {
          ++reopened_;
          Open(static_cast<int>(i));
          continue;
        }
        if (i % 2 == 1) {  // every other socket dribbles its head
          char c = sent_[i] < sizeof(kHead) - 1 ? kHead[sent_[i]] : 'a';
          if (::send(fd, &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) ++sent_[i];
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  uint16_t port_;
  std::vector<int> fds_;
  std::vector<size_t> sent_;
  std::atomic<bool> stop_{false};
  std::atomic<long> reopened_{0};
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 5000;
  int flood_sockets = argc > 2 ? std::atoi(argv[2]) : 400;
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);

  boost::asio::io_context ioc;
  http::ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.max_connections = 256;
  const std::string answer(600, 'q');
  http::Server server(ioc, o, [&](http::Request&& r, http::Responder respond) {
    respond(http::Response{200, "application/json", "{\"quote\":\"" + answer + "\"}", {}});
  });
  if (auto s = server.Listen(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  std::thread loop([&] { ioc.run(); });
  const std::string body =
      R"({"checkout_id":"c1","lines":[{"sku":"A","qty":1,"unit_price_cents":1000,"category":"grocery"}]})";
  http::Client pos("127.0.0.1", server.port());
  Measure(pos, 500, body);  // warm-up
  Stats quiet = Measure(pos, n, body);
  std::printf(
      "no flood:                 p50 %7.1f us  p99 %7.1f us  max %8.1f "
      "us  (%d requests)\n",
      quiet.p50, quiet.p99, quiet.max, n);
  uint64_t evicted_before = server.evicted_connections();
  long reopened = 0;
  Stats flooded;
  {
    Flood flood(server.port(), flood_sockets);
    while (server.active_connections() < o.max_connections)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    flooded = Measure(pos, n, body);
    reopened = flood.reopened();
  }
  std::printf(
      "flood of %d at cap %zu:  p50 %7.1f us  p99 %7.1f us  max %8.1f "
      "us  (%d requests; %llu evicted, "
      "%ld flood sockets reopened)\n",
      flood_sockets, o.max_connections, flooded.p50, flooded.p99, flooded.max, n,
      static_cast<unsigned long long>(server.evicted_connections() - evicted_before), reopened);
  server.Stop([&] { ioc.stop(); });
  loop.join();
  return 0;
}
