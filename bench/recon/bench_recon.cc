// Reconciliation figures: round trips and bytes against the targets of hq-and-sync.md,
// CPU of an in-sync check, and what SqliteStore::Add adds to a durable commit.
//
//   bench_recon [--quick] [--dir DIR] [sections...]   sections: stats targets big cpu commit
//
// Prints tables; the figures in sync/PROTOCOL-recon.md come from a Release build of it.
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "loyalty/recon/protocol.h"
#include "loyalty/recon/recon.h"
#include "loyalty/recon/sqlite_store.h"

namespace lr = loyalty::recon;
using Clock = std::chrono::steady_clock;

namespace {

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::string RandomId(std::mt19937_64& rng, uint64_t* ms) {
  *ms += 1 + rng() % 200;  // ~one entry per 100 ms: 1M entries span about a day of busy time
  std::string id(16, '\0');
  for (int i = 0; i < 6; ++i) id[i] = static_cast<char>(*ms >> (8 * (5 - i)));
  uint64_t a = rng(), b = rng();
  std::memcpy(id.data() + 6, &a, 8);
  std::memcpy(id.data() + 14, &b, 2);
  return id;
}

lr::Item RandomItem(std::mt19937_64& rng, uint64_t* ms) {
  lr::Item it{RandomId(rng, ms), {}};
  for (auto& b : it.hash) b = static_cast<uint8_t>(rng());
  return it;
}

struct Run {
  int round_trips = 0;
  uint64_t bytes = 0;
  bool listed = false;
  size_t found = 0;
  double ms = 0;
};

Run Reconcile(const lr::FingerprintStore& a, const lr::FingerprintStore& b) {
  Run run;
  auto t0 = Clock::now();
  lr::Initiator ini(a);
  lr::Responder resp(b);
  std::vector<std::string> have, need, mism;
  auto first = ini.Start();
  if (!first.ok()) {
    std::fprintf(stderr, "start: %s\n", first.status().ToString().c_str());
    std::exit(1);
  }
  std::optional<std::string> msg = *first;
  while (msg) {
    auto reply = resp.Reply(*msg);
    if (!reply.ok()) {
      std::fprintf(stderr, "reply: %s\n", reply.status().ToString().c_str());
      std::exit(1);
    }
    auto next = ini.Next(*reply, &have, &need, &mism);
    if (!next.ok()) {
      std::fprintf(stderr, "next: %s\n", next.status().ToString().c_str());
      std::exit(1);
    }
    msg = *next;
  }
  run.ms = Ms(Clock::now() - t0);
  run.round_trips = ini.round_trips();
  run.bytes = ini.bytes_sent() + ini.bytes_received();
  run.listed = ini.listed_items();
  run.found = have.size() + need.size() + mism.size();
  return run;
}

// Applies d differences split between the sides to memory store `b` (a copy of a's set):
// d/2 of a's items removed from b, d - d/2 new items added to b. Returns the undo list.
struct Diff {
  std::vector<lr::Element> removed, added;
};

Diff Perturb(lr::MemoryStore* b, const std::vector<lr::Element>& base, size_t d,
             std::mt19937_64& rng, uint64_t* ms) {
  Diff diff;
  std::set<size_t> picked;
  while (picked.size() < d / 2) picked.insert(rng() % base.size());
  for (size_t i : picked) {
    b->RemoveElement(base[i]);
    diff.removed.push_back(base[i]);
  }
  for (size_t i = 0; i < d - d / 2; ++i) {
    auto e = *lr::MakeElement(RandomItem(rng, ms));
    (void)b->AddElement(e);
    diff.added.push_back(e);
  }
  return diff;
}

void Undo(lr::MemoryStore* b, const Diff& diff) {
  for (const auto& e : diff.added) b->RemoveElement(e);
  for (const auto& e : diff.removed) (void)b->AddElement(e);
}

std::vector<lr::Element> MakeElements(size_t n, uint64_t seed, uint64_t* ms) {
  std::mt19937_64 rng(seed);
  std::vector<lr::Element> v;
  v.reserve(n);
  for (size_t i = 0; i < n; ++i) v.push_back(*lr::MakeElement(RandomItem(rng, ms)));
  return v;
}

void Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::fprintf(stderr, "%s: %s\n", sql, err ? err : "?");
    std::exit(1);
  }
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// Distribution over many seeds at a moderate N: how often each round-trip count occurs.
void Stats(bool quick) {
  const size_t n = 20000;
  const int seeds = quick ? 50 : 300;
  uint64_t ms = 1'700'000'000'000ULL;
  auto base = MakeElements(n, 1, &ms);
  lr::MemoryStore a;
  for (const auto& e : base) (void)a.AddElement(e);
  lr::MemoryStore b = a;
  std::printf("\n## Protocol statistics (N = %zu, %d seeds per d)\n\n", n, seeds);
  std::printf(
      "| d | RT=1 | RT=2 | RT=3 | RT>3 | bytes mean | bytes p99 | bytes max "
      "|\n|---|---|---|---|---|---|---|---|\n");
  for (size_t d : {1, 2, 5, 10, 20, 50, 100, 300, 1000, 3000}) {
    int rt[5] = {0, 0, 0, 0, 0};
    std::vector<double> bytes;
    std::mt19937_64 rng(d * 7919);
    for (int s = 0; s < seeds; ++s) {
      Diff diff = Perturb(&b, base, d, rng, &ms);
      Run r = Reconcile(a, b);
      if (r.found != d) {
        std::fprintf(stderr, "wrong difference count %zu for d %zu\n", r.found, d);
        std::exit(1);
      }
      Undo(&b, diff);
      ++rt[std::min(r.round_trips, 4)];
      bytes.push_back(static_cast<double>(r.bytes));
    }
    double mean = 0;
    for (double x : bytes) mean += x;
    mean /= static_cast<double>(bytes.size());
    std::printf("| %zu | %d | %d | %d | %d | %.0f | %.0f | %.0f |\n", d, rt[1], rt[2], rt[3], rt[4],
                mean, Percentile(bytes, 0.99), Percentile(bytes, 1.0));
  }
}

struct SqliteSet {
  std::filesystem::path dir;
  sqlite3* db = nullptr;
  std::unique_ptr<lr::SqliteStore> terminal, hq;
};

// Builds the 1M-item SQLite file once: scope "terminal" by Add, scope "hq" as a copy.
void BuildSqlite(SqliteSet* s, const std::vector<lr::Element>& base,
                 const std::vector<lr::Item>& items) {
  std::filesystem::create_directories(s->dir);
  const auto path = s->dir / "bench_recon.db";
  std::filesystem::remove(path);
  if (sqlite3_open(path.c_str(), &s->db) != SQLITE_OK) std::exit(1);
  Exec(s->db, "PRAGMA journal_mode=WAL");
  Exec(s->db, "PRAGMA synchronous=FULL");
  auto t0 = Clock::now();
  s->terminal = std::move(lr::SqliteStore::Open(s->db, "recon_", "terminal").value());
  Exec(s->db, "BEGIN");
  for (size_t i = 0; i < items.size(); ++i) {
    if (!s->terminal->Add(items[i]).ok()) std::exit(1);
    if (i % 4096 == 4095) {
      (void)s->terminal->Flush();
      Exec(s->db, "COMMIT");
      Exec(s->db, "BEGIN");
    }
  }
  (void)s->terminal->Flush();
  Exec(s->db, "COMMIT");
  std::printf("built SQLite set of %zu items in %.1f s (%.1f µs per item, folded every 4096)\n",
              items.size(), Ms(Clock::now() - t0) / 1000,
              Ms(Clock::now() - t0) * 1000 / static_cast<double>(items.size()));
  s->hq = std::move(lr::SqliteStore::Open(s->db, "recon_", "hq").value());
  Exec(s->db,
       "INSERT INTO recon_items SELECT (SELECT scope_id FROM recon_scopes WHERE name='hq'), id, "
       "tag FROM recon_items "
       "WHERE scope_id = (SELECT scope_id FROM recon_scopes WHERE name='terminal')");
  Exec(s->db,
       "INSERT INTO recon_blocks SELECT (SELECT scope_id FROM recon_scopes WHERE name='hq'), "
       "block, data FROM "
       "recon_blocks WHERE scope_id = (SELECT scope_id FROM recon_scopes WHERE name='terminal')");
  (void)base;
}

void Targets(SqliteSet* s, const std::vector<lr::Element>& base, bool quick) {
  lr::MemoryStore b;
  for (const auto& e : base) (void)b.AddElement(e);
  std::printf("\n## Targets, N = %zu (initiator: SqliteStore file; responder: MemoryStore)\n\n",
              base.size());
  std::printf(
      "| N | d | round trips (max over seeds) | bytes mean | bytes max | target | Negentropy v1 |\n"
      "|---|---|---|---|---|---|---|\n");
  const std::vector<std::tuple<size_t, const char*, const char*>> rows = {
      {0, "1 RT, ≤ 352 B", "1 RT, 352 B"},
      {1, "≤ 3 RT, ≤ 2.3 KiB", "3 RT, 2,321 B"},
      {10, "≤ 3 RT, ≤ 16 KiB", "3 RT, 19,692 B"},
      {1000, "≤ 3 RT, ≤ 1.3 MiB", "3 RT, 1,372,645 B"}};
  uint64_t ms = 1'800'000'000'000ULL;
  for (const auto& [d, target, ref] : rows) {
    const int seeds = quick ? 3 : (d == 1000 ? 10 : 20);
    int worst = 0;
    double sum = 0, mx = 0;
    std::mt19937_64 rng(d + 17);
    for (int i = 0; i < seeds; ++i) {
      Diff diff = Perturb(&b, base, d, rng, &ms);
      Run r = Reconcile(*s->terminal, b);
      Undo(&b, diff);
      if (r.found != d) std::exit(1);
      worst = std::max(worst, r.round_trips);
      sum += static_cast<double>(r.bytes);
      mx = std::max(mx, static_cast<double>(r.bytes));
    }
    std::printf("| %zu | %zu | %d | %.0f B | %.0f B | %s | %s |\n", base.size(), d, worst,
                sum / seeds, mx, target, ref);
  }
}

void Big(bool quick) {
  const size_t n = quick ? 2'000'000 : 10'000'000;
  uint64_t ms = 1'700'000'000'000ULL;
  auto t0 = Clock::now();
  auto base = MakeElements(n, 99, &ms);
  lr::MemoryStore a;
  for (const auto& e : base) (void)a.AddElement(e);
  lr::MemoryStore b = a;
  std::printf("\n## Targets, N = %zu (both sides MemoryStore; built in %.0f s)\n\n", n,
              Ms(Clock::now() - t0) / 1000);
  std::printf(
      "| N | d | round trips (max) | bytes mean | bytes max | target | Negentropy v1 "
      "|\n|---|---|---|---|---|---|---|\n");
  std::mt19937_64 rng(5);
  for (size_t d : {0, 1, 10, 1000}) {
    int worst = 0;
    double sum = 0, mx = 0;
    const int seeds = 5;
    for (int i = 0; i < seeds; ++i) {
      Diff diff = Perturb(&b, base, d, rng, &ms);
      Run r = Reconcile(a, b);
      Undo(&b, diff);
      if (r.found != d) std::exit(1);
      worst = std::max(worst, r.round_trips);
      sum += static_cast<double>(r.bytes);
      mx = std::max(mx, static_cast<double>(r.bytes));
    }
    std::printf("| %zu | %zu | %d | %.0f B | %.0f B | %s | %s |\n", n, d, worst, sum / seeds, mx,
                d == 10 ? "≤ 3 RT, ≤ 16 KiB" : "-", d == 10 ? "3 RT, 15,787 B" : "-");
  }
}

void Cpu(SqliteSet* s) {
  std::printf(
      "\n## CPU of an in-sync check, N = %zu, both sides SqliteStore (same file, two scopes)\n\n",
      static_cast<size_t>(*s->terminal->Count()));
  std::vector<double> t;
  for (int i = 0; i < 200; ++i) {
    Run r = Reconcile(*s->terminal, *s->hq);
    if (r.round_trips != 1) std::exit(1);
    t.push_back(r.ms);
  }
  std::printf("journal empty: p50 %.3f ms, p99 %.3f ms (initiator + responder, %d round trip)\n",
              Percentile(t, 0.5), Percentile(t, 0.99), 1);
  // An hour of checkouts not yet folded on both sides: reads fold the journal in on the fly.
  std::mt19937_64 rng(3);
  uint64_t ms = 1'900'000'000'000ULL;
  Exec(s->db, "BEGIN");
  for (int i = 0; i < 2000; ++i) {
    auto item = RandomItem(rng, &ms);
    (void)s->terminal->Add(item);
    (void)s->hq->Add(item);
  }
  Exec(s->db, "COMMIT");
  t.clear();
  for (int i = 0; i < 50; ++i) t.push_back(Reconcile(*s->terminal, *s->hq).ms);
  std::printf("2,000 unfolded changes on each side: p50 %.3f ms, p99 %.3f ms\n", Percentile(t, 0.5),
              Percentile(t, 0.99));
  auto t0 = Clock::now();
  Exec(s->db, "BEGIN");
  (void)s->terminal->Flush();
  Exec(s->db, "COMMIT");
  std::printf("Flush of those 2,000 changes (one durable transaction): %.1f ms\n",
              Ms(Clock::now() - t0));
  Exec(s->db, "BEGIN");
  (void)s->hq->Flush();
  Exec(s->db, "COMMIT");
}

// A single-entry checkout-like transaction, with and without SqliteStore::Add, at the
// given synchronous level. FULL is the real, durable commit; NORMAL (no fsync in WAL mode)
// isolates the microseconds Add itself costs from the disk's fsync latency.
void CommitAt(SqliteSet* s, const char* level, int iterations, uint64_t* ms) {
  Exec(s->db, (std::string("PRAGMA synchronous=") + level).c_str());
  sqlite3_stmt* ins = nullptr;
  sqlite3_prepare_v2(
      s->db, "INSERT INTO bench_entries(id, member_id, points, body) VALUES(?1, ?2, ?3, ?4)", -1,
      &ins, nullptr);
  std::mt19937_64 rng(11);
  std::string body(300, 'x');
  std::vector<double> with, without;
  for (int i = 0; i < 2 * iterations; ++i) {
    const bool add = i % 2 == 1;
    lr::Item item = RandomItem(rng, ms);
    auto t0 = Clock::now();
    Exec(s->db, "BEGIN IMMEDIATE");
    sqlite3_bind_blob(ins, 1, item.id.data(), 16, SQLITE_STATIC);
    sqlite3_bind_text(ins, 2, "100042", -1, SQLITE_STATIC);
    sqlite3_bind_int(ins, 3, 120);
    sqlite3_bind_blob(ins, 4, body.data(), static_cast<int>(body.size()), SQLITE_STATIC);
    if (sqlite3_step(ins) != SQLITE_DONE) std::exit(1);
    sqlite3_reset(ins);
    if (add && !s->terminal->Add(item).ok()) std::exit(1);
    Exec(s->db, "COMMIT");
    (add ? with : without).push_back(Ms(Clock::now() - t0) * 1000);
  }
  sqlite3_finalize(ins);
  const double p50a = Percentile(without, 0.5), p50b = Percentile(with, 0.5);
  const double p99a = Percentile(without, 0.99), p99b = Percentile(with, 0.99);
  std::printf("| %s | entry insert | %.0f µs | %.0f µs |\n", level, p50a, p99a);
  std::printf("| %s | entry insert + SqliteStore::Add | %.0f µs | %.0f µs |\n", level, p50b, p99b);
  std::printf("| %s | difference | %+.1f µs (%+.1f %%) | %+.1f µs (%+.1f %%) |\n", level,
              p50b - p50a, 100 * (p50b / p50a - 1), p99b - p99a, 100 * (p99b / p99a - 1));
}

void Commit(SqliteSet* s, bool quick) {
  Exec(s->db,
       "CREATE TABLE IF NOT EXISTS bench_entries(seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, "
       "member_id TEXT NOT NULL, points INTEGER NOT NULL, body BLOB NOT NULL)");
  const int iterations = quick ? 500 : 3000;
  uint64_t ms = 2'000'000'000'000ULL;
  std::printf(
      "\n## Commit overhead (WAL, %d transactions each, interleaved, same 1M-item file)\n\n",
      iterations);
  std::printf("| synchronous | transaction | p50 | p99 |\n|---|---|---|---|\n");
  CommitAt(s, "FULL", iterations, &ms);
  CommitAt(s, "NORMAL", iterations, &ms);
  Exec(s->db, "PRAGMA synchronous=FULL");
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  const std::string leaf = "bench_recon_" + std::to_string(getpid());
  std::filesystem::path dir = std::filesystem::temp_directory_path() / leaf;
  std::set<std::string> sections;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--dir" && i + 1 < argc) {
      dir = std::filesystem::path(argv[++i]) / leaf;
    } else {
      sections.insert(a);
    }
  }
  if (sections.empty()) sections = {"stats", "targets", "big", "cpu", "commit"};
  if (sections.count("stats")) Stats(quick);
  if (sections.count("targets") || sections.count("cpu") || sections.count("commit")) {
    const size_t n = quick ? 100'000 : 1'000'000;
    uint64_t ms = 1'700'000'000'000ULL;
    std::mt19937_64 rng(2024);
    std::vector<lr::Item> items;
    std::vector<lr::Element> base;
    items.reserve(n);
    base.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      items.push_back(RandomItem(rng, &ms));
      base.push_back(*lr::MakeElement(items.back()));
    }
    SqliteSet s;
    s.dir = dir;
    BuildSqlite(&s, base, items);
    items.clear();
    items.shrink_to_fit();
    if (sections.count("targets")) Targets(&s, base, quick);
    if (sections.count("cpu")) Cpu(&s);
    if (sections.count("commit")) Commit(&s, quick);
    s.terminal.reset();
    s.hq.reset();
    sqlite3_close(s.db);
    std::filesystem::remove_all(s.dir);
  }
  if (sections.count("big")) Big(quick);
  return 0;
}
