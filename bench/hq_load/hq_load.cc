// hq_load: a chain's terminals against loyalty-hq processes, over the real sync protocol with
// mutual TLS, on SQLite or on PostgreSQL (docs/performance.md, "Issue 11: chain scale").
//
//   hq_load [--backend sqlite|postgres] [--pg-dir DIR] [--hq N] [--workers W] [--terminals N]
//           [--members N] [--entries N] [--concurrency C]
//           [--phases serial,ingest,runs,rate,…] [--rate R1,R2,…] [--rate-terminals N]
//           [--serial-runs N] [--changes-limit N] [--rounds K] [--no-bare]
//           [--no-ingest-warmup]
//           [--pin-retries] [--repair-balances] [--member-sample N] [--member-cache DIR]
//           [--local-share F] [--seed S]
//           [--work DIR] [--keep]
//   hq_load --kill --backend postgres --pg-dir DIR --hq 2 [--kill-at F] [--lose-answers F] …
//
// scripts/hq-load starts a PostgreSQL server set up for it (pg_stat_statements) and runs
// the figures of docs/performance.md; --pg-dir names a server of scripts/pg-test-server.
// --local-share F: that share of each hour's members comes from the terminal's own store
// (members split evenly over the stores), the rest from the whole chain (default 0.9: most
// customers shop at their own store, the case member scope is built for; 0 is the worst
// case, every terminal meeting members of the whole chain).
// Defaults: 1000 terminals, 100 members per terminal (the chain: 1,000,000 members,
// 1,000 stores of about 10 tills), 200 entries an hour, 32 at once. Enrolling is slow (one
// admin request per member); --member-cache keeps an enrolled chain for the next run.
//
// Set-up: a throwaway PKI (tests/support/pki.h) with a client certificate per terminal
// (CN = its id); the loyalty-hq process(es) of the build tree with TLS and that CA; on
// PostgreSQL, a database loyalty-hq created once (the schema) copied into HQ's database and
// into the bare-load database, so both have HQ's own tables and indexes; the chain's
// members enrolled through HQ's admin API. Terminals play each till's hour in process
// (chain.h) and run it over the wire (terminal_run.h); with two HQ processes on one
// database, a terminal's runs alternate between them.
//
// Phases, each a fresh hour for every terminal taking part:
//   ingest  hello + upload only, in rounds, after one uncounted round and ANALYZE (on
//           PostgreSQL; --no-ingest-warmup skips it); on PostgreSQL each round's batches are then
//           loaded bare (bare_load.h) into a copy of HQ's schema: entries per second side
//           by side, in the same run; then once more one INSERT per row, into another copy.
//   runs    the whole hourly run (hello, upload, its changes pages, recon of entries and
//           balances), closed loop at --concurrency: the rate one HQ sustains, and the run
//           time at that rate.
//   rate    the same runs arriving at --rate per second (Poisson), open loop: the run time
//           at that rate, from each run's scheduled start (each `rate` phase takes the next
//           rate of the list, "auto" being 70 % of the `runs` phase's; --rate-terminals of
//           the terminals take part).
//   serial  one run at a time (--serial-runs): each step's service time and, on
//           PostgreSQL, the statements it makes HQ run.
// --kill    two HQ processes on PostgreSQL: a phase of runs alternating between them, one
//           SIGKILLed once --kill-at of the runs have finished (later runs go to the other,
//           as a load balancer sends them; a request in flight is retried through the other
//           too, or with --pin-retries through the dead one, failing its run), and
//           --lose-answers of the runs give up on their upload's first answer; then every
//           terminal's next run through the survivor. Exits 1 when an invariant fails.
// Every mode ends with the invariants of verify.h, through the admin API and in the
// database (after a last upload by every terminal a failed run left something pending);
// the exit status is 1 when one fails, 2 when the set-up fails.
//
// Figures: runs and entries per second; run time percentiles (each step's too); CPU time of
// each loyalty-hq, of the whole PostgreSQL server and of this program (user + system, from
// /proc), per run and per entry — on a shared machine CPU time is steadier than wall time;
// the load average at each phase's start and end; on PostgreSQL the statements HQ ran per
// entry (pg_stat_statements, when the server preloads it: scripts/hq-load does), commits
// and WAL syncs, and how often HQ's writer lock was held or waited for (pg_locks sampled,
// over the whole phase). In ingest the CPU, commit and WAL figures are of the uploads alone:
// the bare loads between its rounds are not in them.
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bare_load.h"
#include "chain.h"
#include "cluster.h"
#include "support/pki.h"
#include "terminal_run.h"
#include "verify.h"

namespace loyalty::hqload {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clk = std::chrono::steady_clock;

struct Options {
  std::string backend = "sqlite";
  std::string pg_dir;
  int hq = 1;
  int workers = 0;  // hq.toml `workers` of each loyalty-hq; 0: its default (2 on PostgreSQL)
  int terminals = 1000;
  size_t members = 0;  // 0: 100 per terminal
  int tills_per_store = 4;
  int entries = 200;
  int concurrency = 32;
  std::vector<std::string> phases{"ingest", "runs", "rate"};
  std::vector<double> rates{11};  // one per `rate` phase, in order (the last repeats)
  int rate_terminals = 0;         // 0: all
  int changes_limit = 1000;
  int rounds = 0;             // 0: one per 500 terminals, at least 4
  bool ingest_warmup = true;  // PhaseIngest: one uncounted round, then ANALYZE
  bool bare = true;
  bool kill = false;
  double kill_at = 0.4;
  double lose_answers = 0.1;     // --kill: the share of runs whose first upload answer is lost
  bool pin_retries = false;      // retries go to the process the run began on, not the next
  bool repair_balances = false;  // RunSetup::repair_balances
  std::string member_cache;      // a folder keeping enrolled chains for later runs
  size_t member_sample = 1000;
  int enrol_concurrency = 4;
  uint64_t seed = 1;
  double local_share = 0.9;  // ChainOptions::local_share
  std::string work;
  bool keep = false;
  int request_timeout_ms = 120000;
  int serial_runs = 30;
};

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr, "hq_load: %s\n(see the comment at the top of bench/hq_load/hq_load.cc)\n",
               why);
  std::exit(2);
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) Usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    if (a == "--backend") {
      o.backend = val();
    } else if (a == "--pg-dir") {
      o.pg_dir = val();
    } else if (a == "--hq") {
      o.hq = std::atoi(val().c_str());
    } else if (a == "--workers") {
      o.workers = std::atoi(val().c_str());
    } else if (a == "--terminals") {
      o.terminals = std::atoi(val().c_str());
    } else if (a == "--members") {
      o.members = static_cast<size_t>(std::atoll(val().c_str()));
    } else if (a == "--tills-per-store") {
      o.tills_per_store = std::atoi(val().c_str());
    } else if (a == "--entries") {
      o.entries = std::atoi(val().c_str());
    } else if (a == "--concurrency") {
      o.concurrency = std::atoi(val().c_str());
    } else if (a == "--phases") {
      o.phases.clear();
      std::stringstream in(val());
      for (std::string p; std::getline(in, p, ',');) o.phases.push_back(p);
    } else if (a == "--rate") {
      o.rates.clear();
      std::stringstream in(val());
      for (std::string p; std::getline(in, p, ',');)
        o.rates.push_back(p == "auto" ? 0 : std::atof(p.c_str()));
      if (o.rates.empty()) Usage("--rate needs a number");
    } else if (a == "--rate-terminals") {
      o.rate_terminals = std::atoi(val().c_str());
    } else if (a == "--changes-limit") {
      o.changes_limit = std::atoi(val().c_str());
    } else if (a == "--rounds") {
      o.rounds = std::atoi(val().c_str());
    } else if (a == "--no-bare") {
      o.bare = false;
    } else if (a == "--no-ingest-warmup") {
      o.ingest_warmup = false;
    } else if (a == "--kill") {
      o.kill = true;
    } else if (a == "--kill-at") {
      o.kill_at = std::atof(val().c_str());
    } else if (a == "--member-cache") {
      o.member_cache = val();
    } else if (a == "--repair-balances") {
      o.repair_balances = true;
    } else if (a == "--pin-retries") {
      o.pin_retries = true;
    } else if (a == "--lose-answers") {
      o.lose_answers = std::atof(val().c_str());
    } else if (a == "--member-sample") {
      o.member_sample = static_cast<size_t>(std::atoll(val().c_str()));
    } else if (a == "--enrol-concurrency") {
      o.enrol_concurrency = std::atoi(val().c_str());
    } else if (a == "--local-share") {
      o.local_share = std::atof(val().c_str());
      if (o.local_share < 0 || o.local_share > 1) {
        std::fprintf(stderr, "hq_load: --local-share must be 0..1\n");
        std::exit(2);
      }
    } else if (a == "--seed") {
      o.seed = static_cast<uint64_t>(std::atoll(val().c_str()));
    } else if (a == "--work") {
      o.work = val();
    } else if (a == "--keep") {
      o.keep = true;
    } else if (a == "--serial-runs") {
      o.serial_runs = std::atoi(val().c_str());
    } else if (a == "--request-timeout-ms") {
      o.request_timeout_ms = std::atoi(val().c_str());
    } else {
      Usage(("unknown argument " + a).c_str());
    }
  }
  if (o.backend != "sqlite" && o.backend != "postgres") Usage("--backend is sqlite or postgres");
  if (o.backend == "postgres" && o.pg_dir.empty()) Usage("--backend postgres needs --pg-dir");
  if (o.hq < 1 || o.hq > 8) Usage("--hq is 1..8");
  if (o.hq > 1 && o.backend != "postgres")
    Usage("several loyalty-hq processes share a PostgreSQL database only (--backend postgres)");
  if (o.kill && o.hq < 2) Usage("--kill needs --hq 2");
  // The chain: 1,000,000 members over 1,000 stores of about 10 tills.
  if (o.members == 0) o.members = static_cast<size_t>(o.terminals) * 100;
  if (o.entries < 1 || o.entries > 500) Usage("--entries is 1..500 (one upload batch)");
  if (o.members < static_cast<size_t>(o.entries)) Usage("--members must be at least --entries");
  if (o.rounds <= 0) o.rounds = std::max(4, (o.terminals + 499) / 500);
  if (o.work.empty()) o.work = "/tmp/hq_load." + std::to_string(::getpid());
  return o;
}

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

double ThreadCpuMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1000.0 + static_cast<double>(ts.tv_nsec) / 1e6;
}

std::string Fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// One run as the driver saw it.
struct Done {
  int terminal = 0, hq = 0;
  RunStats st;
  double scheduled_s = -1, start_s = 0, end_s = 0;  // from the phase's start
};

struct Job {
  int terminal = 0, hq = 0;
  double scheduled_s = -1;  // open loop: when the run is due; -1: as soon as a worker is free
  bool generate = true;     // a fresh hour before the run
  int lose_answer_ms = 0;   // RunSetup::lose_upload_answer_ms
};

class Bench {
 public:
  explicit Bench(Options o) : opt_(std::move(o)) {}
  int Run();

 private:
  Status Setup();
  void Teardown();
  // --member-cache: an enrolled chain kept (a PostgreSQL database, or a copy of hq.db) with
  // HQ's PII key, keyed by backend and member count.
  std::string CacheDb() const;
  fs::path CacheFile(const std::string& ext) const;
  bool CachedChain() const;
  Status SaveChain();
  std::string DatabaseToml(const fs::path& hq_dir) const;
  Result<int64_t> QueryInt(const std::string& sql) const;
  HqEndpoint Endpoint(int hq) const {
    return {"127.0.0.1", hqs_[static_cast<size_t>(hq)]->port(), pki_->ca_file()};
  }

  // Runs the jobs on `workers` threads; `on_tick` (may be empty) is called every ms with
  // the number of runs finished, from a thread of its own.
  // What each worker is doing: the step of its run (0: none) and the process it began on.
  struct InFlight {
    std::unique_ptr<std::atomic<int>[]> step, hq;
  };
  // A run due at a process marked down goes to the next live one (a load balancer's part).
  std::vector<Done> Drive(const std::vector<Job>& jobs, int workers, RunKind kind,
                          double* gen_cpu_ms, InFlight** inflight_out = nullptr,
                          const std::function<void(size_t)>& on_tick = {},
                          const std::function<void(int)>* after_step = nullptr);

  // What a phase measures around Drive.
  struct Meter {
    std::vector<double> hq_cpu0;
    double pg_cpu0 = 0, self0 = 0;
    std::string load0;
    std::optional<WalFigures> wal0;
    std::unique_ptr<WriterLockSampler> lock;
    Clk::time_point t0;
  };
  Meter StartMeter();
  // CPU and WAL measured over some windows of a phase only (ingest: its uploads, not the
  // bare loads between them), for Report to use instead of the meter's.
  struct WindowFigures {
    std::vector<double> hq;  // per loyalty-hq process
    double pg = 0, self = 0;
    std::optional<WalFigures> wal;  // the windows' sums of what pg_stat_wal and HQ's commits grew
  };
  json Report(const std::string& name, const std::string& what, Meter& m,
              const std::vector<Done>& runs, double gen_cpu_ms, double wall_s,
              const WindowFigures* window = nullptr);

  int PhaseSerial(json& out);
  int PhaseIngest(json& out);
  int PhaseRuns(json& out);
  int PhaseRate(json& out);
  int KillScenario(json& out);
  int Verify(json& out, int hq);
  // Terminals that still hold unacknowledged batches (a run that failed) upload them.
  void Drain(json& out);

  Options opt_;
  fs::path work_;
  std::unique_ptr<testing::TestPki> pki_;
  std::optional<PgServer> pg_;
  std::string db_, bare_db_, rows_db_, tmpl_db_;
  std::vector<std::unique_ptr<HqProcess>> hqs_;
  std::unique_ptr<Chain> chain_;
  std::unique_ptr<StatementStats> stmts_;
  std::atomic<bool> down_[8] = {};
  size_t rate_phase_ = 0;
  double closed_loop_rate_ = 0;  // runs/s of the last `runs` phase
};

std::string Bench::DatabaseToml(const fs::path& hq_dir) const {
  const std::string workers =
      opt_.workers > 0 ? "workers = " + std::to_string(opt_.workers) + "\n" : "";
  if (!pg_) return "database = \"hq.db\"\n" + workers;
  std::ofstream(hq_dir / "db.password") << pg_->loyalty_password;
  fs::permissions(hq_dir / "db.password", fs::perms::owner_read | fs::perms::owner_write);
  return "database = \"" + pg_->Uri(db_) + "\"\ndatabase_password_file = \"db.password\"\n" +
         workers;
}

Result<int64_t> Bench::QueryInt(const std::string& sql) const {
  if (pg_) {
    auto c = pg_->Connect(db_);
    if (!c.ok()) return c.status();
    auto st = (*c)->Prepare(sql);
    if (!st.ok()) return st.status();
    if ((*st)->Step()) return (*st)->Int(0);
    if (!(*st)->status().ok()) return (*st)->status();
    return Status::Error(ErrorCode::kNotFound, "no row");
  }
  sqlite3* h = nullptr;
  const std::string path = (hqs_[0]->dir() / "hq.db").string();
  if (sqlite3_open_v2(path.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(h);
    return Status::Error(ErrorCode::kUnavailable, "cannot open " + path);
  }
  sqlite3_busy_timeout(h, 10000);
  sqlite3_stmt* st = nullptr;
  Result<int64_t> out = Status::Error(ErrorCode::kInternal, "no row");
  if (sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    out = static_cast<int64_t>(sqlite3_column_int64(st, 0));
  } else {
    out = Status::Error(ErrorCode::kInternal, sqlite3_errmsg(h));
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return out;
}

std::string Bench::CacheDb() const { return "hqload_cache_m" + std::to_string(opt_.members); }

fs::path Bench::CacheFile(const std::string& ext) const {
  return fs::path(opt_.member_cache) /
         (opt_.backend + "-m" + std::to_string(opt_.members) + "." + ext);
}

bool Bench::CachedChain() const {
  if (opt_.member_cache.empty() || !fs::exists(CacheFile("pii.key"))) return false;
  if (!pg_) return fs::exists(CacheFile("db"));
  auto c = pg_->Connect("postgres", true);
  if (!c.ok()) return false;
  auto st = (*c)->Prepare("SELECT count(*) FROM pg_database WHERE datname = '" + CacheDb() + "'");
  return st.ok() && (*st)->Step() && (*st)->Int(0) == 1;
}

Status Bench::SaveChain() {
  // The processes stop so that the copy is consistent (PostgreSQL copies a database only
  // while nobody is connected to it); they start again on the same ports.
  for (auto& h : hqs_) h->Stop();
  fs::create_directories(opt_.member_cache);
  Status s = Status::Ok();
  if (pg_) {
    s = pg_->Admin({"DROP DATABASE IF EXISTS " + CacheDb(),
                    "CREATE DATABASE " + CacheDb() + " TEMPLATE " + db_ + " OWNER loyalty"});
  } else {
    fs::copy_file(hqs_[0]->dir() / "hq.db", CacheFile("db"), fs::copy_options::overwrite_existing);
  }
  if (s.ok())
    fs::copy_file(hqs_[0]->dir() / "pii.key", CacheFile("pii.key"),
                  fs::copy_options::overwrite_existing);
  for (auto& h : hqs_)
    if (Status st = h->Start(); !st.ok()) return st;
  return s;
}

Status Bench::Setup() {
  work_ = opt_.work;
  fs::remove_all(work_);
  fs::create_directories(work_);
  auto t0 = Clk::now();

  std::vector<std::string> ids;
  chain_ = std::make_unique<Chain>(
      ChainOptions{opt_.terminals, opt_.tills_per_store, opt_.members, opt_.entries, 100, opt_.seed,
                   opt_.local_share},
      // Every hour this run makes lies in the past: one per phase, and a spare.
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
              .count() -
          static_cast<int64_t>(opt_.phases.size() + 3) * 3'600'000);
  for (const auto& t : chain_->terminals()) ids.push_back(t.id);
  auto pki = testing::TestPki::Create(ids);
  if (!pki.ok()) return pki.status();
  pki_ = std::move(*pki);
  for (auto& t : chain_->terminals()) {
    auto ck = pki_->client(t.id);
    t.cert_file = ck.cert_file;
    t.key_file = ck.key_file;
  }
  std::printf("set-up: PKI with %d client certificates in %.1f s\n", opt_.terminals,
              std::chrono::duration<double>(Clk::now() - t0).count());

  HqProcess::Tls tls{pki_->server().cert_file, pki_->server().key_file, pki_->ca_file(),
                     pki_->ca_file()};
  bool cached = !pg_ && opt_.backend == "sqlite" && CachedChain();
  if (opt_.backend == "postgres") {
    auto s = PgServer::Open(opt_.pg_dir);
    if (!s.ok()) return s.status();
    pg_ = *s;
    const std::string base = "hqload_" + std::to_string(::getpid());
    db_ = base;
    bare_db_ = base + "_bare";
    rows_db_ = base + "_rows";
    tmpl_db_ = base + "_schema";
    if (Status st = pg_->Admin({"CREATE DATABASE " + tmpl_db_ + " OWNER loyalty"}); !st.ok())
      return st;
    // HQ's schema, made by loyalty-hq itself, then copied for HQ and for the bare load.
    {
      const fs::path dir = work_ / "schema";
      fs::create_directories(dir);
      std::ofstream(dir / "db.password") << pg_->loyalty_password;
      fs::permissions(dir / "db.password", fs::perms::owner_read | fs::perms::owner_write);
      HqProcess made(
          dir,
          "database = \"" + pg_->Uri(tmpl_db_) + "\"\ndatabase_password_file = \"db.password\"\n",
          tls);
      if (Status st = made.Start(); !st.ok()) return st;
      made.Stop();
    }
    cached = CachedChain();
    if (Status st = pg_->Admin(
            {"CREATE DATABASE " + db_ + " TEMPLATE " + (cached ? CacheDb() : tmpl_db_) +
                 " OWNER loyalty",
             "CREATE DATABASE " + bare_db_ + " TEMPLATE " + tmpl_db_ + " OWNER loyalty",
             "CREATE DATABASE " + rows_db_ + " TEMPLATE " + tmpl_db_ + " OWNER loyalty"});
        !st.ok())
      return st;
    stmts_ = std::make_unique<StatementStats>(*pg_, db_);
    auto rtt = PgRoundTrips(*pg_, db_, 2000);
    if (!rtt.empty())
      std::printf(
          "set-up: a prepared SELECT 1 to PostgreSQL, one at a time: p50 %.0f us, p99 %.0f "
          "us (%zu round trips; load average %s)\n",
          rtt[rtt.size() / 2], rtt[rtt.size() * 99 / 100], rtt.size(), LoadAverage().c_str());
    std::printf(
        "set-up: PostgreSQL on port %u, databases %s (HQ) and %s (bare load), HQ's schema "
        "copied from %s; pg_stat_statements %s\n",
        pg_->port, db_.c_str(), bare_db_.c_str(), tmpl_db_.c_str(),
        stmts_->available() ? "on" : "off (not preloaded)");
  }
  for (int i = 0; i < opt_.hq; ++i) {
    fs::path dir = work_ / ("hq" + std::to_string(i + 1));
    fs::create_directories(dir);
    hqs_.push_back(std::make_unique<HqProcess>(dir, DatabaseToml(dir), tls));
    if (cached) {
      fs::copy_file(CacheFile("pii.key"), dir / "pii.key", fs::copy_options::overwrite_existing);
      if (!pg_) fs::copy_file(CacheFile("db"), dir / "hq.db", fs::copy_options::overwrite_existing);
    } else if (i > 0) {
      fs::copy_file(hqs_[0]->dir() / "pii.key", dir / "pii.key",
                    fs::copy_options::overwrite_existing);
    }
    if (Status st = hqs_.back()->Start(); !st.ok()) return st;
  }
  std::printf("set-up: %d loyalty-hq process(es) on %s (pid", opt_.hq, opt_.backend.c_str());
  for (auto& h : hqs_) std::printf(" %d", h->pid());
  std::printf(")\n");

  if (cached) {
    std::printf(
        "set-up: %zu members from the cache (%s), enrolled there earlier through the "
        "admin API\n",
        opt_.members, pg_ ? CacheDb().c_str() : CacheFile("db").c_str());
    std::fflush(stdout);
    return Status::Ok();
  }
  // Members, through the admin API, from a few connections at once.
  auto e0 = Clk::now();
  const double hq_cpu0 = ProcessCpuMs(hqs_[0]->pid());
  const double pg_cpu0 = pg_ ? pg_->CpuMs() : 0;
  std::atomic<size_t> next{0};
  std::atomic<int64_t> failed{0};
  std::string first_error;
  std::mutex mu;
  std::vector<std::thread> threads;
  for (int w = 0; w < opt_.enrol_concurrency; ++w) {
    threads.emplace_back([&, w] {
      const HqProcess& hq = *hqs_[static_cast<size_t>(w % opt_.hq)];
      for (size_t i = next++; i < opt_.members; i = next++) {
        const uint64_t id = chain_->view().member_id(i);
        char phone[32];
        std::snprintf(phone, sizeof phone, "139%08zu", i);
        json body{{"member_id", std::to_string(id)},
                  {"name", "会员" + std::to_string(i)},
                  {"phone", phone}};
        auto r = hq.Admin("POST", "/v1/members", body.dump());
        if (!r.ok() || r->first != 201) {
          ++failed;
          std::lock_guard<std::mutex> lock(mu);
          if (first_error.empty())
            first_error =
                r.ok() ? std::to_string(r->first) + " " + r->second : r.status().ToString();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const double es = std::chrono::duration<double>(Clk::now() - e0).count();
  if (failed > 0) return Status::Error(ErrorCode::kInternal, "enrolment: " + first_error);
  std::printf(
      "set-up: %zu members enrolled through the admin API in %.1f s (%.0f/s; loyalty-hq "
      "%.2f ms CPU each%s)\n",
      opt_.members, es, static_cast<double>(opt_.members) / es,
      (ProcessCpuMs(hqs_[0]->pid()) - hq_cpu0) / static_cast<double>(opt_.members) * opt_.hq,
      pg_ ? (", PostgreSQL " +
             Fmt("%.2f", (pg_->CpuMs() - pg_cpu0) / static_cast<double>(opt_.members)) + " ms")
                .c_str()
          : "");
  if (!opt_.member_cache.empty()) {
    if (Status s = SaveChain(); !s.ok()) return s;
    std::printf("set-up: the enrolled chain kept for later runs (%s)\n",
                pg_ ? CacheDb().c_str() : CacheFile("db").c_str());
  }
  std::fflush(stdout);
  return Status::Ok();
}

void Bench::Teardown() {
  for (auto& h : hqs_) h->Stop();
  if (pg_ && !opt_.keep) {
    (void)pg_->Admin({"DROP DATABASE IF EXISTS " + db_ + " WITH (FORCE)",
                      "DROP DATABASE IF EXISTS " + bare_db_ + " WITH (FORCE)",
                      "DROP DATABASE IF EXISTS " + rows_db_ + " WITH (FORCE)",
                      "DROP DATABASE IF EXISTS " + tmpl_db_ + " WITH (FORCE)"});
  }
  if (!opt_.keep) fs::remove_all(work_);
}

std::vector<Done> Bench::Drive(const std::vector<Job>& jobs, int workers, RunKind kind,
                               double* gen_cpu_ms, InFlight** inflight_out,
                               const std::function<void(size_t)>& on_tick,
                               const std::function<void(int)>* after_step) {
  std::vector<Done> done(jobs.size());
  std::atomic<size_t> next{0}, finished{0};
  std::atomic<bool> over{false};
  std::mutex mu;
  double gen = 0;
  InFlight inflight;
  inflight.step = std::make_unique<std::atomic<int>[]>(static_cast<size_t>(workers));
  inflight.hq = std::make_unique<std::atomic<int>[]>(static_cast<size_t>(workers));
  for (int i = 0; i < workers; ++i) {
    inflight.step[static_cast<size_t>(i)] = 0;
    inflight.hq[static_cast<size_t>(i)] = -1;
  }
  if (inflight_out) *inflight_out = &inflight;
  const auto t0 = Clk::now();
  auto since = [&t0] { return std::chrono::duration<double>(Clk::now() - t0).count(); };
  std::thread ticker;
  if (on_tick) {
    ticker = std::thread([&] {
      while (!over.load()) {
        on_tick(finished.load());
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  }
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      double my_gen = 0;
      for (size_t k = next++; k < jobs.size(); k = next++) {
        const Job& j = jobs[k];
        Terminal& t = chain_->terminal(j.terminal);
        if (j.generate) {
          double c0 = ThreadCpuMs();
          chain_->GenerateHour(t);
          my_gen += ThreadCpuMs() - c0;
        }
        if (j.scheduled_s >= 0) {
          double wait = j.scheduled_s - since();
          if (wait > 0) std::this_thread::sleep_for(std::chrono::duration<double>(wait));
        }
        Done& d = done[k];
        d.terminal = j.terminal;
        d.hq = j.hq;
        for (int i = 0; i < opt_.hq && down_[d.hq].load(); ++i) d.hq = (d.hq + 1) % opt_.hq;
        d.scheduled_s = j.scheduled_s;
        d.start_s = since();
        RunSetup setup;
        if (opt_.pin_retries) {
          setup.endpoints.push_back(Endpoint(d.hq));
        } else {
          for (int h = 0; h < opt_.hq; ++h) setup.endpoints.push_back(Endpoint(h));
          setup.first = static_cast<size_t>(d.hq);
          setup.down = down_;
        }
        setup.kind = kind;
        setup.changes_limit = opt_.changes_limit;
        setup.request_timeout_ms = opt_.request_timeout_ms;
        setup.lose_upload_answer_ms = j.lose_answer_ms;
        setup.repair_balances = opt_.repair_balances;
        inflight.hq[static_cast<size_t>(w)] = d.hq;
        setup.step = &inflight.step[static_cast<size_t>(w)];
        setup.after_step = after_step;
        d.st = RunTerminal(*chain_, t, setup);
        d.end_s = since();
        ++finished;
      }
      std::lock_guard<std::mutex> lock(mu);
      gen += my_gen;
    });
  }
  for (auto& t : threads) t.join();
  over = true;
  if (ticker.joinable()) ticker.join();
  if (inflight_out) *inflight_out = nullptr;
  if (gen_cpu_ms) *gen_cpu_ms = gen;
  return done;
}

Bench::Meter Bench::StartMeter() {
  Meter m;
  for (auto& h : hqs_) m.hq_cpu0.push_back(ProcessCpuMs(h->pid()));
  m.self0 = SelfCpuMs();
  m.load0 = LoadAverage();
  if (pg_) {
    m.pg_cpu0 = pg_->CpuMs();
    m.wal0 = ReadWal(*pg_, db_);
    if (stmts_) stmts_->Reset();
    m.lock = std::make_unique<WriterLockSampler>(*pg_, db_, 20);
  }
  m.t0 = Clk::now();
  return m;
}

json Bench::Report(const std::string& name, const std::string& what, Meter& m,
                   const std::vector<Done>& runs, double gen_cpu_ms, double wall_s,
                   const WindowFigures* window) {
  if (m.lock) m.lock->Stop();
  std::vector<double> hq_cpu;
  for (size_t i = 0; i < hqs_.size(); ++i) {
    double now = hqs_[i]->pid() > 0 ? ProcessCpuMs(hqs_[i]->pid()) : -1;
    hq_cpu.push_back(now >= 0 ? now - m.hq_cpu0[i] : -1);
  }
  double pg_cpu = pg_ ? pg_->CpuMs() - m.pg_cpu0 : 0;
  double self_cpu = SelfCpuMs() - m.self0;
  if (window) {
    hq_cpu = window->hq;
    pg_cpu = window->pg;
    self_cpu = window->self;
  }
  const std::string load1 = LoadAverage();

  int64_t ok = 0, failed = 0, created = 0, exists = 0, other = 0, rt = 0, sent = 0, recv = 0,
          changes = 0, pages = 0, bal_diff_runs = 0, bal_diffs = 0, entry_diffs = 0, retries = 0,
          lost = 0, worked = 0;
  std::vector<double> ms, sched_ms, step[5];
  std::map<std::string, int> errors;
  for (const auto& d : runs) {
    created += d.st.created;
    exists += d.st.exists;
    other += d.st.other;
    retries += d.st.retries;
    lost += d.st.lost_answers;
    if (d.st.ok || d.st.uploaded_entries > 0) ++worked;
    if (!d.st.ok) {
      ++failed;
      ++errors[d.st.error.substr(0, 120)];
      continue;
    }
    // Per-run figures over the runs that finished.
    ++ok;
    ms.push_back((d.end_s - d.start_s) * 1000);
    if (d.scheduled_s >= 0) sched_ms.push_back((d.end_s - d.scheduled_s) * 1000);
    for (int i = 0; i < 5; ++i) step[i].push_back(static_cast<double>(d.st.step_us[i]) / 1000.0);
    rt += d.st.round_trips;
    sent += d.st.bytes_sent;
    recv += d.st.bytes_received;
    changes += d.st.changes_members;
    pages += d.st.changes_pages;
    entry_diffs += d.st.entry_differences;
    if (d.st.balance_differences > 0) ++bal_diff_runs;
    bal_diffs += d.st.balance_differences;
  }
  // CPU, statements and commits per run count every run that got its upload through: a run
  // that failed later (at its reconciliation, say) made HQ do nearly all of a run's work.
  const double n = std::max<double>(1, static_cast<double>(worked));
  const double n_ok = std::max<double>(1, static_cast<double>(ok));
  const double entries = static_cast<double>(created + exists);
  json r{
      {"phase", name},
      {"what", what},
      {"backend", opt_.backend},
      {"hq_processes", opt_.hq},
      {"hq_workers", opt_.workers > 0 ? opt_.workers : (pg_ ? 2 : 1)},
      {"terminals", opt_.terminals},
      {"members", opt_.members},
      {"runs_ok", ok},
      {"runs_failed", failed},
      {"entries_created", created},
      {"entries_exists", exists},
      {"entries_other", other},
      {"retries", retries},
      {"wall_s", wall_s},
      {"runs_per_s", static_cast<double>(ok) / wall_s},
      {"entries_per_s", entries / wall_s},
      {"run_ms",
       {{"p50", Pct(ms, 50)}, {"p90", Pct(ms, 90)}, {"p99", Pct(ms, 99)}, {"max", Pct(ms, 100)}}},
      {"step_ms_p50",
       {{"hello", Pct(step[0], 50)},
        {"upload", Pct(step[1], 50)},
        {"changes", Pct(step[2], 50)},
        {"recon_entries", Pct(step[3], 50)},
        {"recon_balances", Pct(step[4], 50)}}},
      {"step_ms_p99",
       {{"hello", Pct(step[0], 99)},
        {"upload", Pct(step[1], 99)},
        {"changes", Pct(step[2], 99)},
        {"recon_entries", Pct(step[3], 99)},
        {"recon_balances", Pct(step[4], 99)}}},
      {"per_run",
       {{"round_trips", static_cast<double>(rt) / n_ok},
        {"bytes_sent", static_cast<double>(sent) / n_ok},
        {"bytes_received", static_cast<double>(recv) / n_ok},
        {"changes_members", static_cast<double>(changes) / n_ok},
        {"changes_pages", static_cast<double>(pages) / n_ok}}},
      {"runs_uploaded", worked},
      {"runs_uploaded_per_s", static_cast<double>(worked) / wall_s},
      {"recon_entry_differences", entry_diffs},
      {"runs_with_balance_differences", bal_diff_runs},
      {"balance_differences", bal_diffs},
      {"cpu_ms",
       {{"hq", hq_cpu},
        {"postgres", pg_cpu},
        {"hq_load", self_cpu},
        {"hq_load_generation", gen_cpu_ms}}},
      {"load_average", {{"start", m.load0}, {"end", load1}}}};
  if (!sched_ms.empty())
    r["run_ms_from_schedule"] = {{"p50", Pct(sched_ms, 50)},
                                 {"p90", Pct(sched_ms, 90)},
                                 {"p99", Pct(sched_ms, 99)},
                                 {"max", Pct(sched_ms, 100)}};
  double hq_total = 0;
  for (double c : hq_cpu) hq_total += std::max(0.0, c);

  std::printf("\n== %s: %s ==\n", name.c_str(), what.c_str());
  std::printf(
      "runs: %lld ok, %lld failed; %.1f s; %.2f runs/s; %.0f entries/s (%lld created, "
      "%lld exists, %lld other)\n",
      static_cast<long long>(ok), static_cast<long long>(failed), wall_s,
      static_cast<double>(ok) / wall_s, entries / wall_s, static_cast<long long>(created),
      static_cast<long long>(exists), static_cast<long long>(other));
  if (failed > 0)
    std::printf("  %lld runs got their upload through (%.2f/s), failed ones included\n",
                static_cast<long long>(worked), static_cast<double>(worked) / wall_s);
  for (const auto& [e, c] : errors) std::printf("  failed x%d: %s\n", c, e.c_str());
  if (retries > 0 || lost > 0)
    std::printf(
        "requests retried (the sync client's policy): %lld attempts after a first; "
        "upload answers given up on: %lld\n",
        static_cast<long long>(retries), static_cast<long long>(lost));
  std::printf("run time ms: p50 %.0f  p90 %.0f  p99 %.0f  max %.0f\n", Pct(ms, 50), Pct(ms, 90),
              Pct(ms, 99), Pct(ms, 100));
  if (!sched_ms.empty())
    std::printf("run time from its scheduled start, ms: p50 %.0f  p90 %.0f  p99 %.0f  max %.0f\n",
                Pct(sched_ms, 50), Pct(sched_ms, 90), Pct(sched_ms, 99), Pct(sched_ms, 100));
  std::printf(
      "steps p50 / p99 ms: hello %.1f/%.1f  upload %.1f/%.1f  changes %.1f/%.1f  recon "
      "entries %.1f/%.1f  recon balances %.1f/%.1f\n",
      Pct(step[0], 50), Pct(step[0], 99), Pct(step[1], 50), Pct(step[1], 99), Pct(step[2], 50),
      Pct(step[2], 99), Pct(step[3], 50), Pct(step[3], 99), Pct(step[4], 50), Pct(step[4], 99));
  std::printf(
      "per run: %.1f round trips, %.0f B sent, %.0f B received, %.0f members in %.2f "
      "changes pages; recon: %lld entry differences, %lld runs with balance differences "
      "(%lld in all; %s)\n",
      static_cast<double>(rt) / n_ok, static_cast<double>(sent) / n_ok,
      static_cast<double>(recv) / n_ok, static_cast<double>(changes) / n_ok,
      static_cast<double>(pages) / n_ok, static_cast<long long>(entry_diffs),
      static_cast<long long>(bal_diff_runs), static_cast<long long>(bal_diffs),
      opt_.repair_balances ? "asked of HQ" : "counted only");
  std::printf("cpu: loyalty-hq");
  for (double c : hq_cpu) std::printf(" %.0f", c);
  std::printf(" ms, postgres %.0f ms, hq_load %.0f ms (generating hours %.0f ms)\n", pg_cpu,
              self_cpu, gen_cpu_ms);
  std::printf(
      "cpu per run: loyalty-hq %.1f ms, postgres %.1f ms, hq_load %.1f ms; per entry: "
      "loyalty-hq %.3f ms, postgres %.3f ms\n",
      hq_total / n, pg_cpu / n, self_cpu / n, entries > 0 ? hq_total / entries : 0,
      entries > 0 ? pg_cpu / entries : 0);
  std::printf(
      "cores busy: loyalty-hq %.2f, postgres %.2f, hq_load %.2f; CPU-time bounds: %.1f "
      "runs/s for loyalty-hq + postgres on 2 cores, %.1f runs/s for loyalty-hq's own CPU "
      "(%d process(es)), %.1f runs/s per process waiting on each statement (1 s / (loyalty-hq "
      "+ postgres per run))\n",
      hq_total / 1000 / wall_s, pg_cpu / 1000 / wall_s, self_cpu / 1000 / wall_s,
      2000.0 / std::max(1e-9, (hq_total + pg_cpu) / n),
      1000.0 * opt_.hq / std::max(1e-9, hq_total / n), opt_.hq,
      1000.0 / std::max(1e-9, (hq_total + pg_cpu) / n));
  std::printf("load average: %s at the start, %s at the end\n", m.load0.c_str(), load1.c_str());
  r["cpu_bound_runs_per_s"] = 2000.0 / std::max(1e-9, (hq_total + pg_cpu) / n);

  if (pg_) {
    std::optional<WalFigures> grown;  // over the phase, or over its windows
    if (window && window->wal) {
      grown = window->wal;
    } else if (auto wal1 = ReadWal(*pg_, db_); m.wal0 && wal1) {
      grown = WalGrowth(*m.wal0, *wal1);
    }
    if (grown) {
      const double commits = static_cast<double>(grown->xact_commit);
      const double syncs = static_cast<double>(grown->wal_sync);
      const double wal_bytes = static_cast<double>(grown->wal_bytes);
      std::printf(
          "postgres: %.1f commits per run, %.1f WAL syncs per run (%.2f ms each), %.0f "
          "WAL bytes per entry\n",
          commits / n, syncs / n, syncs > 0 ? grown->wal_sync_ms / syncs : 0,
          entries > 0 ? wal_bytes / entries : 0);
      r["postgres"] = {{"commits_per_run", commits / n},
                       {"wal_syncs_per_run", syncs / n},
                       {"wal_bytes_per_entry", entries > 0 ? wal_bytes / entries : 0}};
    }
    if (m.lock) {
      auto f = m.lock->figures();
      std::printf(
          "writer lock (pg_locks every 20 ms, %lld samples): held in %.0f %%, %.2f "
          "waiting on average, at most %lld\n",
          static_cast<long long>(f.samples), f.held_fraction * 100, f.mean_waiters,
          static_cast<long long>(f.max_waiters));
      r["writer_lock"] = {{"held_fraction", f.held_fraction},
                          {"mean_waiters", f.mean_waiters},
                          {"max_waiters", f.max_waiters}};
    }
    if (stmts_ && stmts_->available()) {
      auto rows = stmts_->Read();
      int64_t calls = 0;
      double total = 0;
      for (const auto& s : rows) {
        calls += s.calls;
        total += s.total_ms;
      }
      std::printf(
          "statements (pg_stat_statements, HQ's role): %lld, %.1f per run, %.2f per "
          "entry; %.1f ms per run inside PostgreSQL\n",
          static_cast<long long>(calls), static_cast<double>(calls) / n,
          entries > 0 ? static_cast<double>(calls) / entries : 0, total / n);
      // Most time first; every statement HQ ran at least once a run (or that took 1 % of
      // the time), at most 30.
      std::sort(rows.begin(), rows.end(),
                [](const auto& a, const auto& b) { return a.total_ms > b.total_ms; });
      json top = json::array();
      for (size_t i = 0, shown = 0; i < rows.size() && shown < 30; ++i) {
        const auto& s = rows[i];
        if (static_cast<double>(s.calls) / n < 1 && (total <= 0 || s.total_ms / total < 0.01))
          continue;
        ++shown;
        std::string q = s.query;
        for (char& c : q)
          if (c == '\n') c = ' ';
        std::printf("  %6.2f/run %8.3f ms mean %5.1f %% of time  %s\n",
                    static_cast<double>(s.calls) / n, s.calls ? s.total_ms / s.calls : 0,
                    total > 0 ? 100 * s.total_ms / total : 0, q.substr(0, 110).c_str());
        top.push_back({{"query", q.substr(0, 200)},
                       {"calls_per_run", static_cast<double>(s.calls) / n},
                       {"mean_ms", s.calls ? s.total_ms / s.calls : 0}});
      }
      r["statements"] = {{"per_run", static_cast<double>(calls) / n},
                         {"per_entry", entries > 0 ? static_cast<double>(calls) / entries : 0},
                         {"ms_per_run", total / n},
                         {"top", top}};
    }
  }
  std::fflush(stdout);
  return r;
}

// ------------------------------------------------------------------------------- phases

int Bench::PhaseSerial(json& out) {
  // One run at a time: each step's own service time, and on PostgreSQL the statements each
  // step makes HQ run (pg_stat_statements between the steps).
  const int n = std::min(opt_.serial_runs, opt_.terminals);
  std::vector<Job> jobs;
  for (int i = 0; i < n; ++i)
    jobs.push_back({i, (i + chain_->terminal(i).hours) % opt_.hq, -1, true});
  const bool counted = stmts_ && stmts_->available();
  std::pair<int64_t, double> last = counted ? stmts_->Totals() : std::pair<int64_t, double>{0, 0};
  int64_t calls[6] = {0, 0, 0, 0, 0, 0};
  double pg_ms[6] = {0, 0, 0, 0, 0, 0};
  std::function<void(int)> after = [&](int step) {
    if (!counted) return;
    auto now = stmts_->Totals();
    calls[step] += now.first - last.first;
    pg_ms[step] += now.second - last.second;
    last = now;
  };
  Meter m = StartMeter();
  if (counted) last = stmts_->Totals();  // StartMeter reset the statistics
  double gen = 0;
  auto t0 = Clk::now();
  auto runs = Drive(jobs, 1, RunKind::kFull, &gen, nullptr, {}, &after);
  const double wall = std::chrono::duration<double>(Clk::now() - t0).count();
  json r = Report("serial",
                  std::to_string(n) + " hourly runs one at a time, " + std::to_string(opt_.hq) +
                      " loyalty-hq on " + opt_.backend,
                  m, runs, gen, wall);
  if (counted) {
    static const char* kSteps[] = {"",        "hello",         "upload",
                                   "changes", "recon entries", "recon balances"};
    json steps = json::object();
    std::printf("statements per step (mean over %d runs) and their time inside PostgreSQL:\n", n);
    for (int i = 1; i <= 5; ++i) {
      std::printf("  %-15s %8.1f statements  %7.2f ms\n", kSteps[i],
                  static_cast<double>(calls[i]) / n, pg_ms[i] / n);
      steps[kSteps[i]] = {{"statements", static_cast<double>(calls[i]) / n},
                          {"pg_ms", pg_ms[i] / n}};
    }
    r["statements_per_step"] = steps;
  }
  std::fflush(stdout);
  out.push_back(r);
  return 0;  // failed runs are figures here; the invariants decide the exit status
}

int Bench::PhaseIngest(json& out) {
  const int n = opt_.terminals;
  const int rounds = std::min(opt_.rounds, n);
  const bool bare = pg_ && opt_.bare;
  double hq_wall = 0, bare_wall = 0, hq_entries = 0, bare_entries = 0, rows_wall = 0,
         rows_entries = 0, pg_cpu_rows = 0;
  double hq_cpu = 0, pg_cpu_hq = 0, pg_cpu_bare = 0, self_cpu_hq = 0, self_cpu_bare = 0;
  double wal_bare = 0;    // WAL bytes the bare loads wrote (-1: a load's not read)
  WindowFigures uploads;  // the uploads' windows only: the phase's report is of them
  uploads.hq.assign(hqs_.size(), 0.0);
  if (pg_) uploads.wal = WalFigures{};
  std::vector<double> ratios;
  std::vector<Done> all;
  // A chain's HQ never starts a busy hour on empty tables. PostgreSQL plans a prepared
  // statement once from the tables' statistics (and again after ANALYZE); a phase that began
  // on empty tables would time plans made for empty tables until autovacuum's first ANALYZE
  // (rounds differing 2x). So first one uncounted round of the first round's terminals,
  // loaded bare too, then ANALYZE of HQ's database and of both bare copies.
  // A fresh hour for each of terminals [from, to), generated before any clock starts (the
  // uploads alone are timed), with a copy of each batch for the bare loads.
  struct Round {
    std::vector<Job> jobs;
    std::vector<sync::UploadRequest> copies;
    std::vector<std::string> tids;
  };
  auto make_round = [&](int from, int to) {
    Round rd;
    for (int i = from; i < to; ++i) {
      Terminal& t = chain_->terminal(i);
      chain_->GenerateHour(t);
      if (bare) {
        rd.copies.push_back(t.pending.back().request);
        rd.tids.push_back(t.id);
      }
      rd.jobs.push_back({i, (i + t.hours) % opt_.hq, -1, false});
    }
    return rd;
  };
  if (pg_ && opt_.ingest_warmup) {
    const Round w = make_round(0, n / rounds);
    auto runs = Drive(w.jobs, opt_.concurrency, RunKind::kUploadOnly, nullptr);
    int failed = 0;
    for (const auto& d : runs) failed += d.st.ok ? 0 : 1;
    if (bare) {
      for (const auto* db : {&bare_db_, &rows_db_}) {
        auto b = BareLoad(*pg_, *db, w.tids, w.copies, opt_.concurrency,
                          db == &bare_db_ ? BareMode::kMultiRow : BareMode::kRowAtATime);
        if (!b.ok) {
          std::printf("bare load (warm-up) failed: %s\n", b.error.c_str());
          return 1;
        }
      }
    }
    for (const auto* db : {&db_, &bare_db_, &rows_db_}) {
      if (!bare && db != &db_) continue;
      auto c = pg_->Connect(*db, true);
      Status s = c.ok() ? (*c)->Exec("ANALYZE") : c.status();
      if (!s.ok()) {
        std::printf("ANALYZE of %s failed: %s\n", db->c_str(), s.ToString().c_str());
        return 1;
      }
    }
    std::printf("ingest warm-up: %zu uploads (%d failed), loaded bare too, then ANALYZE\n",
                runs.size(), failed);
  }
  Meter total = StartMeter();
  json round_reports = json::array();
  for (int r = 0; r < rounds; ++r) {
    const int from = n * r / rounds, to = n * (r + 1) / rounds;
    const Round rd = make_round(from, to);
    const auto& [jobs, copies, tids] = rd;
    const std::optional<WalFigures> wal0 = pg_ ? ReadWal(*pg_, db_) : std::nullopt;
    std::vector<double> cpu0;
    for (auto& h : hqs_) cpu0.push_back(ProcessCpuMs(h->pid()));
    const double pg0 = pg_ ? pg_->CpuMs() : 0, self0 = SelfCpuMs();
    auto t0 = Clk::now();
    auto runs = Drive(jobs, opt_.concurrency, RunKind::kUploadOnly, nullptr);
    const double wall = std::chrono::duration<double>(Clk::now() - t0).count();
    const double selfc = SelfCpuMs() - self0;  // the terminals' side: TLS, JSON
    double c = 0;
    for (size_t i = 0; i < hqs_.size(); ++i) {
      const double used = ProcessCpuMs(hqs_[i]->pid()) - cpu0[i];
      c += used;
      uploads.hq[i] += used;
    }
    const double pgc = pg_ ? pg_->CpuMs() - pg0 : 0;
    uploads.pg += pgc;
    uploads.self += selfc;
    if (uploads.wal) {
      const std::optional<WalFigures> wal1 = ReadWal(*pg_, db_);
      if (wal0 && wal1) {
        *uploads.wal += WalGrowth(*wal0, *wal1);
      } else {
        uploads.wal.reset();  // a window not measured: no WAL figures rather than wrong ones
      }
    }
    double e = 0;
    for (const auto& d : runs) e += static_cast<double>(d.st.created + d.st.exists);
    hq_wall += wall;
    hq_entries += e;
    hq_cpu += c;
    pg_cpu_hq += pgc;
    self_cpu_hq += selfc;
    all.insert(all.end(), runs.begin(), runs.end());
    std::printf(
        "ingest round %d/%d: loyalty-hq %.0f entries/s (%d uploads of %d, %.1f s; cpu "
        "loyalty-hq %.3f, postgres %.3f, terminals %.3f ms/entry; load %s)",
        r + 1, rounds, e / wall, to - from, opt_.entries, wall, c / std::max(1.0, e),
        pgc / std::max(1.0, e), selfc / std::max(1.0, e), LoadAverage().c_str());
    json rr{{"round", r + 1}, {"hq_entries_per_s", e / wall}, {"load", LoadAverage()}};
    if (bare) {
      auto b = BareLoad(*pg_, bare_db_, tids, copies, opt_.concurrency);
      if (!b.ok) {
        std::printf("\nbare load failed: %s\n", b.error.c_str());
        return 1;
      }
      const double rate = static_cast<double>(b.entries) / b.wall_s;
      bare_wall += b.wall_s;
      bare_entries += static_cast<double>(b.entries);
      pg_cpu_bare += b.pg_cpu_ms;
      self_cpu_bare += b.self_cpu_ms;
      if (b.wal_bytes >= 0 && wal_bare >= 0)
        wal_bare += static_cast<double>(b.wal_bytes);
      else
        wal_bare = -1;
      ratios.push_back((e / wall) / rate);
      std::printf(
          "; bare %.0f entries/s (%.1f s, postgres %.3f ms/entry, txn p50 %.1f ms); "
          "ratio %.2f",
          rate, b.wall_s, b.pg_cpu_ms / static_cast<double>(b.entries), Pct(b.txn_ms, 50),
          ratios.back());
      rr["bare_entries_per_s"] = rate;
      rr["ratio"] = ratios.back();
      // The same rows again, one INSERT per row, into a third copy of the schema.
      auto w = BareLoad(*pg_, rows_db_, tids, copies, opt_.concurrency, BareMode::kRowAtATime);
      if (!w.ok) {
        std::printf("\nbare load (row at a time) failed: %s\n", w.error.c_str());
        return 1;
      }
      rows_wall += w.wall_s;
      rows_entries += static_cast<double>(w.entries);
      pg_cpu_rows += w.pg_cpu_ms;
      std::printf("; row at a time %.0f entries/s (postgres %.3f ms/entry)",
                  static_cast<double>(w.entries) / w.wall_s,
                  w.pg_cpu_ms / static_cast<double>(w.entries));
      rr["bare_row_at_a_time_entries_per_s"] = static_cast<double>(w.entries) / w.wall_s;
    }
    std::printf("\n");
    std::fflush(stdout);
    round_reports.push_back(rr);
  }
  json r = Report("ingest",
                  std::to_string(n) + " uploads of " + std::to_string(opt_.entries) +
                      " entries (hello + upload), " + std::to_string(opt_.concurrency) +
                      " at once, " + std::to_string(opt_.hq) + " loyalty-hq on " + opt_.backend,
                  total, all, 0, hq_wall, &uploads);
  r["rounds"] = round_reports;
  std::printf(
      "ingest: loyalty-hq %.0f entries/s over %.1f s of uploads (cpu loyalty-hq %.3f, "
      "postgres %.3f ms/entry; the terminals, this program, %.3f)\n",
      hq_entries / hq_wall, hq_wall, hq_cpu / hq_entries, pg_cpu_hq / hq_entries,
      self_cpu_hq / hq_entries);
  r["hq_entries_per_s"] = hq_entries / hq_wall;
  r["uploads_ms_per_entry"] = {{"hq", hq_cpu / hq_entries},
                               {"postgres", pg_cpu_hq / hq_entries},
                               {"terminals", self_cpu_hq / hq_entries}};
  if (bare && bare_wall > 0) {
    std::sort(ratios.begin(), ratios.end());
    const double ratio = (hq_entries / hq_wall) / (bare_entries / bare_wall);
    std::printf(
        "ingest: bare PostgreSQL %.0f entries/s over %.1f s (postgres %.3f ms/entry, its "
        "client %.3f); loyalty-hq / bare = %.2f (rounds %.2f..%.2f); target >= 0.50: %s\n",
        bare_entries / bare_wall, bare_wall, pg_cpu_bare / bare_entries,
        self_cpu_bare / bare_entries, ratio, ratios.front(), ratios.back(),
        ratio >= 0.5 ? "met" : "NOT met");
    r["bare_entries_per_s"] = bare_entries / bare_wall;
    r["ratio"] = ratio;
    r["bare_pg_cpu_ms_per_entry"] = pg_cpu_bare / bare_entries;
    if (wal_bare >= 0) {
      std::printf(
          "ingest: bare PostgreSQL wrote %.0f WAL bytes per entry (loyalty-hq's: the "
          "\"postgres:\" line above)\n",
          wal_bare / bare_entries);
      r["bare_wal_bytes_per_entry"] = wal_bare / bare_entries;
    }
    if (rows_wall > 0) {
      std::printf(
          "ingest: the same rows one INSERT per row (402 statements a batch): %.0f "
          "entries/s (postgres %.3f ms/entry)\n",
          rows_entries / rows_wall, pg_cpu_rows / rows_entries);
      r["bare_row_at_a_time_entries_per_s"] = rows_entries / rows_wall;
      r["bare_row_at_a_time_pg_cpu_ms_per_entry"] = pg_cpu_rows / rows_entries;
    }
  }
  std::fflush(stdout);
  out.push_back(r);
  return 0;
}

int Bench::PhaseRuns(json& out) {
  std::vector<Job> jobs;
  for (int i = 0; i < opt_.terminals; ++i)
    jobs.push_back({i, (i + chain_->terminal(i).hours) % opt_.hq, -1, true});
  Meter m = StartMeter();
  double gen = 0;
  auto t0 = Clk::now();
  auto runs = Drive(jobs, opt_.concurrency, RunKind::kFull, &gen);
  const double wall = std::chrono::duration<double>(Clk::now() - t0).count();
  json r = Report("runs",
                  std::to_string(opt_.terminals) + " hourly runs, closed loop, " +
                      std::to_string(opt_.concurrency) + " at once, " + std::to_string(opt_.hq) +
                      " loyalty-hq on " + opt_.backend,
                  m, runs, gen, wall);
  const double rate = r["runs_per_s"].get<double>();
  closed_loop_rate_ = rate;
  std::printf("runs: %.2f runs/s sustained; target >= 11 runs/s: %s\n", rate,
              rate >= 11 ? "met" : "NOT met");
  out.push_back(r);
  return 0;  // failed runs are figures here; the invariants decide the exit status
}

int Bench::PhaseRate(json& out) {
  const int n =
      opt_.rate_terminals > 0 ? std::min(opt_.rate_terminals, opt_.terminals) : opt_.terminals;
  std::mt19937_64 rng(opt_.seed + 17);
  double rate = opt_.rates[std::min(rate_phase_++, opt_.rates.size() - 1)];
  if (rate <= 0) {
    // "auto": 70 % of what the closed loop of this run sustained.
    if (closed_loop_rate_ <= 0) {
      std::printf("rate: auto needs a `runs` phase before it; skipped\n");
      return 0;
    }
    rate = 0.7 * closed_loop_rate_;
  }
  std::exponential_distribution<double> gap(rate);
  std::vector<Job> jobs;
  double at = 0;
  for (int i = 0; i < n; ++i) {
    at += gap(rng);
    jobs.push_back({i, (i + chain_->terminal(i).hours) % opt_.hq, at, true});
  }
  // Enough workers that a run is never held back for want of one.
  const int workers = std::max(opt_.concurrency, 64);
  Meter m = StartMeter();
  double gen = 0;
  auto t0 = Clk::now();
  auto runs = Drive(jobs, workers, RunKind::kFull, &gen);
  const double wall = std::chrono::duration<double>(Clk::now() - t0).count();
  json r = Report("rate",
                  std::to_string(n) + " hourly runs arriving at " + Fmt("%.2f", rate) +
                      "/s (Poisson), open loop, " + std::to_string(opt_.hq) + " loyalty-hq on " +
                      opt_.backend,
                  m, runs, gen, wall);
  // Sustained when the runs finished within a few seconds of the last arrival.
  const bool kept_up = wall < at + 10;
  std::printf("rate: arrivals over %.1f s, last run done at %.1f s: %s\n", at, wall,
              kept_up ? "kept up" : "fell behind (runs queued)");
  r["kept_up"] = kept_up;
  out.push_back(r);
  return 0;  // failed runs are figures here; the invariants decide the exit status
}

int Bench::KillScenario(json& out) {
  // Hour 1: the runs alternate between the two processes; HQ 2 is SIGKILLed once kill_at
  // of them have finished, in the middle of whatever it was doing.
  // Some runs also lose their upload's answer (the first attempt gives up after 30 ms while
  // HQ works on): the retry, through the other process, then meets the same entries.
  std::vector<Job> jobs;
  std::mt19937_64 rng(opt_.seed + 29);
  for (int i = 0; i < opt_.terminals; ++i) {
    const bool lose = std::uniform_real_distribution<double>(0, 1)(rng) < opt_.lose_answers;
    jobs.push_back({i, (i + chain_->terminal(i).hours) % 2, -1, true, lose ? 30 : 0});
  }
  std::atomic<bool> killed{false};
  double kill_s = 0;
  int uploads_in_flight = 0, runs_in_flight = 0;
  InFlight* inflight = nullptr;
  const size_t kill_after = static_cast<size_t>(opt_.kill_at * static_cast<double>(jobs.size()));
  const auto t0 = Clk::now();
  Meter m = StartMeter();
  double gen = 0;
  auto runs = Drive(jobs, opt_.concurrency, RunKind::kFull, &gen, &inflight, [&](size_t finished) {
    if (killed.load() || finished < kill_after || !inflight) return;
    // Runs in flight through loyalty-hq 2 at this instant, and those in their upload.
    for (int w = 0; w < opt_.concurrency; ++w) {
      if (inflight->hq[static_cast<size_t>(w)].load() != 1) continue;
      int s = inflight->step[static_cast<size_t>(w)].load();
      if (s > 0) ++runs_in_flight;
      if (s == 2) ++uploads_in_flight;
    }
    hqs_[1]->Kill();
    down_[1] = true;  // runs not yet started go to the other process, as behind a balancer
    kill_s = std::chrono::duration<double>(Clk::now() - t0).count();
    killed = true;
  });
  const double wall = std::chrono::duration<double>(Clk::now() - t0).count();
  std::printf(
      "\nkill: loyalty-hq 2 SIGKILLed at %.2f s, after %zu of %zu runs had finished, "
      "with %d runs in flight through it (%d of them uploading); retries %s\n",
      kill_s, kill_after, jobs.size(), runs_in_flight, uploads_in_flight,
      opt_.pin_retries ? "pinned to the process a run began on"
                       : "go to the next live process (a balancer)");
  json r = Report("kill_hour1",
                  std::to_string(opt_.terminals) +
                      " hourly runs alternating between 2 loyalty-hq on postgres, one killed",
                  m, runs, gen, wall);
  int64_t failed_hq2 = 0, failed_hq1 = 0, after_kill_hq1 = 0;
  std::vector<double> hq1_after;
  for (const auto& d : runs) {
    if (!d.st.ok) (d.hq == 1 ? failed_hq2 : failed_hq1)++;
    if (d.hq == 0 && d.start_s >= kill_s && d.st.ok) {
      ++after_kill_hq1;
      hq1_after.push_back((d.end_s - d.start_s) * 1000);
    }
  }
  std::printf(
      "kill: runs failed through loyalty-hq 2: %lld; through loyalty-hq 1: %lld; runs "
      "through loyalty-hq 1 started after the kill: %lld, p50 %.0f ms, max %.0f ms\n",
      static_cast<long long>(failed_hq2), static_cast<long long>(failed_hq1),
      static_cast<long long>(after_kill_hq1), Pct(hq1_after, 50), Pct(hq1_after, 100));
  r["kill_s"] = kill_s;
  r["runs_in_flight_at_kill"] = runs_in_flight;
  r["uploads_in_flight_at_kill"] = uploads_in_flight;
  out.push_back(r);

  // Hour 2: every terminal's next run, through the survivor.
  std::vector<Job> next;
  for (int i = 0; i < opt_.terminals; ++i) next.push_back({i, 0, -1, true});
  Meter m2 = StartMeter();
  auto t1 = Clk::now();
  auto runs2 = Drive(next, opt_.concurrency, RunKind::kFull, &gen);
  const double wall2 = std::chrono::duration<double>(Clk::now() - t1).count();
  json r2 =
      Report("kill_hour2",
             std::to_string(opt_.terminals) + " next runs, all through the surviving loyalty-hq",
             m2, runs2, gen, wall2);
  int64_t resent = 0;
  for (const auto& d : runs2) resent += d.st.exists;
  std::printf(
      "kill: the next runs re-sent %lld entries HQ already held (answered `exists`: "
      "uploads committed by the killed process, or by the survivor, whose answer was "
      "lost)\n",
      static_cast<long long>(resent));
  r2["entries_answered_exists"] = resent;
  out.push_back(r2);
  return 0;
}

void Bench::Drain(json& out) {
  for (int pass = 0; pass < 3; ++pass) {
    std::vector<Job> jobs;
    for (const auto& t : chain_->terminals())
      if (!t.pending.empty()) jobs.push_back({t.index, 0, -1, false});
    if (jobs.empty()) return;
    std::printf(
        "\ndrain: %zu terminals still hold unacknowledged uploads; their next run "
        "uploads them\n",
        jobs.size());
    auto runs = Drive(jobs, opt_.concurrency, RunKind::kUploadOnly, nullptr);
    int64_t failed = 0;
    for (const auto& d : runs) failed += d.st.ok ? 0 : 1;
    out.push_back({{"phase", "drain"}, {"terminals", jobs.size()}, {"failed", failed}});
  }
}

int Bench::Verify(json& out, int hq) {
  auto t0 = Clk::now();
  auto v = VerifyChain(
      *chain_, *hqs_[static_cast<size_t>(hq)], Endpoint(hq),
      [this](const std::string& sql) { return QueryInt(sql); }, opt_.member_sample);
  std::printf("\n== invariants (%.1f s) ==\n",
              std::chrono::duration<double>(Clk::now() - t0).count());
  for (const auto& p : v.passed) std::printf("  ok      %s\n", p.c_str());
  for (const auto& f : v.failed) std::printf("  FAILED  %s\n", f.c_str());
  out.push_back({{"phase", "invariants"}, {"passed", v.passed}, {"failed", v.failed}});
  std::fflush(stdout);
  return v.ok() ? 0 : 1;
}

int Bench::Run() {
  std::printf(
      "hq_load: %d terminals (%d per store), %zu members, %d entries per hour, %d "
      "concurrent runs, %d loyalty-hq on %s (workers: %s); nproc %u, load average %s\n",
      opt_.terminals, opt_.tills_per_store, opt_.members, opt_.entries, opt_.concurrency, opt_.hq,
      opt_.backend.c_str(), opt_.workers > 0 ? std::to_string(opt_.workers).c_str() : "the default",
      std::thread::hardware_concurrency(), LoadAverage().c_str());
  std::fflush(stdout);
  if (Status s = Setup(); !s.ok()) {
    std::fprintf(stderr, "hq_load: set-up failed: %s\n", s.ToString().c_str());
    Teardown();
    return 2;
  }
  json results = json::array();
  int rc = 0;
  if (opt_.kill) {
    rc |= KillScenario(results);
    Drain(results);
    rc |= Verify(results, 0);
  } else {
    for (const auto& p : opt_.phases) {
      if (p == "ingest")
        rc |= PhaseIngest(results);
      else if (p == "runs")
        rc |= PhaseRuns(results);
      else if (p == "serial")
        rc |= PhaseSerial(results);
      else if (p == "rate")
        rc |= PhaseRate(results);
      else
        std::fprintf(stderr, "hq_load: unknown phase %s (skipped)\n", p.c_str());
    }
    Drain(results);
    rc |= Verify(results, 0);
  }
  std::printf("\nRESULT %s\n", results.dump().c_str());
  std::printf("hq_load: %s; load average %s\n", rc == 0 ? "ok" : "FAILED", LoadAverage().c_str());
  if (rc != 0) {
    opt_.keep = true;
    std::printf("kept %s%s\n", work_.c_str(),
                pg_ ? (" and databases " + db_ + ", " + bare_db_ + ", " + rows_db_).c_str() : "");
  }
  Teardown();
  return rc;
}

}  // namespace
}  // namespace loyalty::hqload

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  loyalty::hqload::Bench b(loyalty::hqload::Parse(argc, argv));
  return b.Run();
}
