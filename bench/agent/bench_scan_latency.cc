// Scan → event visible to a long-polling POS, through a real loyaltyd: a fifo scanner and
// a serial scanner (socat pty pair). For each scan the POS is already waiting in
// GET /v1/scans; the time is from the write of the scan's last byte to the long-poll's
// answer. Each scan is a fresh LM1 code, so the path includes identification.
//   bench_scan_latency [N]   (default 500 scans per kind)
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "loyalty/base/encoding.h"
#include "loyalty/codes/mint.h"
#include "loyalty/http/client.h"

using namespace loyalty;
using Clk = std::chrono::steady_clock;

static std::string Code(uint64_t member, uint32_t t) {
  std::string hq = *HexDecode("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20");
  std::string dev = *HexDecode("65666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f8081828384");
  std::string cert =
      codes::MakeCertificate(hq, 1, member, codes::Ed25519PublicFromSeed(dev), 1893456000);
  return codes::MakeDynamicCode(cert, dev, t);
}

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 500;
  auto dir = std::filesystem::temp_directory_path() / ("bench_scan_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string a = (dir / "ttyA").string(), b = (dir / "ttyB").string();
  pid_t socat = fork();
  if (socat == 0) {
    execlp("socat", "socat", ("pty,raw,echo=0,link=" + a).c_str(),
           ("pty,raw,echo=0,link=" + b).c_str(), (char*)nullptr);
    _exit(127);
  }
  while (!std::filesystem::exists(b)) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  int port = 19000 + getpid() % 1000;
  {
    std::ofstream t(dir / "api.token");
    t << "benchtoken0123456789\n";
  }
  chmod((dir / "api.token").c_str(), 0640);
  {
    std::ofstream c(dir / "agent.toml");
    c << "[agent]\nterminal_id = \"T01\"\nstore_id = \"S001\"\ndatabase = \"ledger.db\"\n"
      << "[api]\nlisten = \"127.0.0.1:" << port << "\"\ntoken_file = \"api.token\"\n"
      << "[codes]\nhq_public_keys = { \"1\" = \"ebVWLo_mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ\" }\n"
      << "[log]\nformat = \"json\"\nlevel = \"warn\"\n"
      << "[[scanners]]\nid = \"fifo\"\nkind = \"fifo\"\npath = \"scan.fifo\"\ndebounce_ms = 0\n"
      << "[[scanners]]\nid = \"serial\"\nkind = \"serial\"\npath = \"ttyA\"\nterminator = "
         "\"CR\"\ndebounce_ms = 0\n";
  }
  std::string exe = std::string(LOYALTY_BINARY_DIR) + "/agent/loyaltyd";
  std::string cfg = (dir / "agent.toml").string();
  pid_t agent = fork();
  if (agent == 0) {
    int fd = open((dir / "agent.log").c_str(), O_WRONLY | O_CREAT, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(exe.c_str(), exe.c_str(), "--config", cfg.c_str(), (char*)nullptr);
    _exit(127);
  }
  http::Client poll("127.0.0.1", static_cast<uint16_t>(port));
  std::vector<std::pair<std::string, std::string>> auth{
      {"Authorization", "Bearer benchtoken0123456789"}};
  for (int i = 0; i < 500; ++i) {
    auto r = poll.Request("GET", "/v1/health", "", {}, 200);
    if (r.ok() && r->status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int fifo = open((dir / "scan.fifo").c_str(), O_WRONLY);
  int tty = open(b.c_str(), O_WRONLY | O_NOCTTY);
  uint64_t after = 0;
  uint32_t t0 = static_cast<uint32_t>(time(nullptr));
  uint64_t member = 1;
  for (const char* kind : {"fifo", "serial"}) {
    std::vector<double> us;
    for (int i = 0; i < n; ++i) {
      std::string text = Code(member++, t0) + (std::string(kind) == "fifo" ? "\n" : "\r");
      auto pending = std::async(std::launch::async, [&] {
        return poll.Request("GET", "/v1/scans?after=" + std::to_string(after) + "&wait_ms=5000", "",
                            auth, 6000);
      });
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // the long-poll is waiting
      auto start = Clk::now();
      ssize_t w = write(std::string(kind) == "fifo" ? fifo : tty, text.data(), text.size());
      (void)w;
      auto r = pending.get();
      double elapsed = std::chrono::duration<double, std::micro>(Clk::now() - start).count();
      if (!r.ok() || r->status != 200) {
        std::fprintf(stderr, "poll failed\n");
        break;
      }
      auto j = nlohmann::json::parse(r->body);
      after = j["next_after"].get<uint64_t>();
      if (j["scans"].empty() || j["scans"][0]["result"] != "member") {
        std::fprintf(stderr, "unexpected: %s\n", r->body.c_str());
        break;
      }
      us.push_back(elapsed);
    }
    std::sort(us.begin(), us.end());
    if (!us.empty())
      std::printf(
          "%-6s scan -> long-poll answer (incl. identify): n=%zu p50=%.0f us p99=%.0f us max=%.0f "
          "us\n",
          kind, us.size(), us[us.size() / 2], us[us.size() * 99 / 100], us.back());
  }
  close(fifo);
  close(tty);
  kill(agent, SIGTERM);
  waitpid(agent, nullptr, 0);
  kill(socat, SIGTERM);
  waitpid(socat, nullptr, 0);
  std::filesystem::remove_all(dir);
  return 0;
}
