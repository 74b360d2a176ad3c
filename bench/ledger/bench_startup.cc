// Start-up time and idle RSS of loyaltyd with a large ledger: 100,000 members and
// 1,000,000 entries (built once into DIR/big.db and reused).
//   bench_startup DIR [MEMBERS] [ENTRIES]
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>

#include "loyalty/base/ids.h"
#include "loyalty/http/client.h"
#include "loyalty/ledger/ledger.h"

using namespace loyalty;
using Clk = std::chrono::steady_clock;

static long RssKb(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_startup DIR [MEMBERS] [ENTRIES]\n");
    return 2;
  }
  std::filesystem::path dir = argv[1];
  int members = argc > 2 ? std::atoi(argv[2]) : 100000;
  int entries = argc > 3 ? std::atoi(argv[3]) : 1000000;
  std::filesystem::create_directories(dir);
  std::string db = (dir / "big.db").string();
  if (!std::filesystem::exists(db)) {
    auto t0 = Clk::now();
    auto l = ledger::Ledger::Open(db, ledger::Ledger::Mode::kWriter, "T01");
    if (!l.ok()) return 1;
    ledger::Ledger& w = **l;
    // A failed step of the bulk build ends it: the figures would be of another ledger.
    auto check = [](const Status& s) {
      if (s.ok()) return;
      std::fprintf(stderr, "building the ledger: %s\n", s.ToString().c_str());
      std::exit(1);
    };
    check(w.db().Exec("PRAGMA synchronous=OFF"));
    std::mt19937_64 rng(1);
    check(w.Begin());
    for (int i = 1; i <= members; ++i) {
      ledger::MemberRow m;
      m.member_id = static_cast<uint64_t>(i);
      m.display_name = "张*";
      m.phone = "138****5678";
      m.snapshot_at_s = 1795000000;
      m.balance = 0;
      check(w.UpsertMember(m));
      check(w.PutIdentity(
          "card", "88" + std::to_string(1000000000000000ull + static_cast<uint64_t>(i)).substr(2),
          static_cast<uint64_t>(i)));
    }
    int64_t at = 1700000000000;
    for (int i = 0; i < entries; ++i) {
      uint64_t member = 1 + rng() % static_cast<uint64_t>(members);
      at += 30000;
      ledger::EntryDraft d{
          NewEntryId(at), "earn", member, 0, at, "c" + std::to_string(i / 2), "", ""};
      check(w.AppendEntry(d).status());
      if (i % 100000 == 99999) {
        check(w.Commit());
        check(w.Begin());
      }
    }
    check(w.Commit());
    std::printf("built %s: %d members, %d entries in %.1f s\n", db.c_str(), members, entries,
                std::chrono::duration<double>(Clk::now() - t0).count());
  }
  // What the start-up check of a damaged ledger costs (operations.md): SQLite's quick_check
  // and integrity_check of the whole file on a reader, three times each (the first from a
  // cold page cache only if the OS dropped it).
  {
    auto r = ledger::Ledger::Open(db, ledger::Ledger::Mode::kReader, "T01");
    if (!r.ok()) return 1;
    std::error_code ec;
    std::printf("ledger file %.1f MB\n",
                static_cast<double>(std::filesystem::file_size(db, ec)) / 1e6);
    for (bool quick : {true, false}) {
      for (int run = 0; run < 3; ++run) {
        auto t0 = Clk::now();
        auto problems = (*r)->CheckIntegrity(quick);
        double ms = std::chrono::duration<double, std::milli>(Clk::now() - t0).count();
        std::printf("%s run %d: %.0f ms, %s\n", quick ? "quick_check" : "integrity_check", run, ms,
                    !problems.ok()      ? problems.status().ToString().c_str()
                    : problems->empty() ? "ok"
                                        : "problems");
      }
    }
  }
  // A config for it.
  std::string token = "benchtoken0123456789";
  {
    std::ofstream t(dir / "api.token");
    t << token << "\n";
  }
  ::chmod((dir / "api.token").c_str(), 0640);
  int port = 18000 + getpid() % 1000;
  {
    std::ofstream c(dir / "agent.toml");
    c << "[agent]\nterminal_id = \"T01\"\nstore_id = \"S001\"\ndatabase = \"big.db\"\n"
      << "[api]\nlisten = \"127.0.0.1:" << port << "\"\ntoken_file = \"api.token\"\n"
      << "[codes]\nhq_public_keys = { \"1\" = \"ebVWLo_mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ\" }\n"
      << "[log]\nformat = \"json\"\nlevel = \"warn\"\n";
  }
  std::string exe = std::string(LOYALTY_BINARY_DIR) + "/agent/loyaltyd";
  std::string cfg = (dir / "agent.toml").string();
  double best_ms = 1e9;
  long rss = 0;
  for (int run = 0; run < 5; ++run) {
    auto t0 = Clk::now();
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open("/dev/null", O_WRONLY);
      dup2(fd, 1);
      dup2(fd, 2);
      execl(exe.c_str(), exe.c_str(), "--config", cfg.c_str(), (char*)nullptr);
      _exit(127);
    }
    http::Client client("127.0.0.1", static_cast<uint16_t>(port));
    double ms = -1;
    for (int i = 0; i < 20000; ++i) {
      auto r = client.Request("GET", "/v1/health", "", {}, 200);
      if (r.ok() && r->status == 200) {
        ms = std::chrono::duration<double, std::milli>(Clk::now() - t0).count();
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
    rss = RssKb(pid);
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    if (ms >= 0 && ms < best_ms) best_ms = ms;
    std::printf("run %d: start-up to a /v1/health answer %.1f ms, idle RSS %.1f MB\n", run, ms,
                rss / 1024.0);
  }
  std::printf("best start-up %.1f ms; idle RSS %.1f MB (%d members, %d entries)\n", best_ms,
              rss / 1024.0, members, entries);
  return 0;
}
