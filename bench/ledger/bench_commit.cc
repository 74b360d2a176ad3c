// Durable commit of a 20-line checkout through the checkout service and the real ledger,
// against a bare single-row INSERT transaction with the same synchronous=FULL, in the same
// run, on the same disk. Prints p50/p99 and commits/s for both and their ratio.
//   bench_commit [DIR] [N]   (DIR defaults to the current folder; N = 2000 commits)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "loyalty/base/clock.h"
#include "loyalty/base/timezone.h"
#include "loyalty/checkout/service.h"
#include "loyalty/codes/codes.h"
#include "loyalty/codes/trusted_time.h"
#include "loyalty/ledger/ledger.h"
#include "loyalty/rules/rules.h"
#include "loyalty/sqlite/sqlite.h"

using namespace loyalty;
using Clk = std::chrono::steady_clock;

constexpr int kMembers = 1000;

static std::string MemberCard(int k) {
  std::string digits = std::to_string(100000000000LL + k);
  return digits;  // 12 digits
}

static void Report(const char* name, std::vector<double> us) {
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double v : us) sum += v;
  std::printf("%-34s n=%zu  p50=%.1f us  p99=%.1f us  mean=%.1f us  -> %.0f commits/s\n", name,
              us.size(), us[us.size() / 2], us[us.size() * 99 / 100], sum / us.size(),
              1e6 * us.size() / sum);
}

int main(int argc, char** argv) {
  std::filesystem::path dir = argc > 1 ? argv[1] : ".";
  int n = argc > 2 ? std::atoi(argv[2]) : 2000;
  auto work = dir / "bench_commit.tmp";
  std::filesystem::remove_all(work);
  std::filesystem::create_directories(work);

  // The two are interleaved (one bare insert, one checkout) so that both see the same
  // disk conditions.
  // 1. Bare single-row insert transactions.
  std::vector<double> bare;
  double bare_pages = 0, full_pages = 0, req_bytes = 0, resp_bytes = 0, wal_mb = 0;
  int64_t checkpoints = 0;
  // A failed step ends the run: the figures would be of something else.
  auto check = [](const Status& s) {
    if (s.ok()) return;
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    std::exit(1);
  };
  auto db = sqlite::Db::Open((work / "bare.db").string(), false);
  check(
      (*db)->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE t (id INTEGER "
                  "PRIMARY KEY, v TEXT);"));
  auto bare_insert = [&] {
    auto t0 = Clk::now();
    check((*db)->Exec("BEGIN IMMEDIATE"));
    auto st = (*db)->Prepare("INSERT INTO t (v) VALUES (?)");
    (*st)->Bind(1, std::string(64, 'x'));
    check((*st)->Run());
    st.value().reset();
    check((*db)->Exec("COMMIT"));
    int c = 0, h = 0;
    sqlite3_db_status((*db)->raw(), SQLITE_DBSTATUS_CACHE_WRITE, &c, &h, 1);
    bare_pages += c;
    bare.push_back(std::chrono::duration<double, std::micro>(Clk::now() - t0).count());
  };

  // 2. Checkout commits (20 lines, a member identified by a channel card, earn entry,
  //    lot, checkout + lines + stored response) through CheckoutService::Commit.
  std::vector<double> full;
  {
    auto l =
        ledger::Ledger::Open((work / "ledger.db").string(), ledger::Ledger::Mode::kWriter, "T01");
    if (!l.ok()) {
      std::fprintf(stderr, "%s\n", l.status().ToString().c_str());
      return 1;
    }
    ledger::Ledger& w = **l;
    // As the daemon runs it: the writer thread checkpoints the WAL when it has no job
    // (LedgerWriter), which at a till is between any two sales; here between two commits,
    // outside the timed part.
    w.UseIdleCheckpoints();
    // A store's members: each holds a card of a channel and a year of points (one lot a
    // month, as HQ's snapshot delivers them: under the default 12-month validity a
    // member's live lots expire at the ends of the next 12 months). Checkouts go round the
    // members, as a day at a till does; one member checking out thousands of times an
    // hour would be frozen by the velocity rule after a few dozen.
    int64_t now_s = SystemClock::Instance().now_s();
    check(w.Begin());
    for (int k = 0; k < kMembers; ++k) {
      ledger::MemberRow m;
      m.member_id = 1000 + k;
      m.tier = k % 3 == 0 ? "vip" : (k % 3 == 1 ? "member" : "black");
      m.snapshot_at_s = now_s;
      int64_t balance = 0;
      for (int month = 0; month < 12; ++month) {
        model::Lot lot{0,
                       m.member_id,
                       120,
                       120,
                       now_s - (12 - month) * 30 * 86400,
                       now_s + (month + 1) * 30 * 86400,
                       ""};
        check(w.AddLot(lot).status());
        balance += 120;
      }
      m.balance = balance;
      check(w.UpsertMember(m));
      check(w.PutIdentity("wechat", MemberCard(k), m.member_id));
    }
    check(w.Commit());
    codes::CodesConfig cc;
    cc.channels.push_back({"wechat", "^[0-9]{12}$"});
    auto verifier = codes::CodeVerifier::Create(cc);
    codes::TrustedTime tt(60);
    auto tz = TimeZone::Load("Asia/Shanghai");
    auto rules = std::make_shared<rules::Rules>(rules::Rules::Defaults());
    checkout::CheckoutService svc({"T01", "S001"}, SystemClock::Instance(), **verifier, tt, *tz,
                                  rules);
    nlohmann::json lines = nlohmann::json::array();
    for (int i = 0; i < 20; ++i)
      lines.push_back({{"sku", "SKU-" + std::to_string(i)},
                       {"qty", 1 + i % 3},
                       {"unit_price_cents", 199 + i * 37},
                       {"category", i % 5 ? "grocery" : "tobacco"}});
    int hw = 0, cur = 0;
    sqlite3_db_status(w.db().raw(), SQLITE_DBSTATUS_CACHE_WRITE, &cur, &hw, 1);
    for (int i = 0; i < n; ++i) {
      bare_insert();
      nlohmann::json body{{"checkout_id", "b" + std::to_string(i)},
                          {"member_code", MemberCard(i % kMembers)},
                          {"lines", lines},
                          {"tender", "card"}};
      auto t0 = Clk::now();
      auto r = svc.Commit(w, body);
      full.push_back(std::chrono::duration<double, std::micro>(Clk::now() - t0).count());
      sqlite3_db_status(w.db().raw(), SQLITE_DBSTATUS_CACHE_WRITE, &cur, &hw, 1);
      full_pages += cur;
      // The writer's idle moment after a sale: a checkpoint when due, then the quiet a
      // till has before its next sale (seconds; 2 ms here lets the disk settle).
      if (w.CheckpointIfDue()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      if (!r.ok()) {
        std::fprintf(stderr, "commit failed: %s\n", r.status().ToString().c_str());
        return 1;
      }
    }
    wal_mb = static_cast<double>(std::filesystem::file_size(work / "ledger.db-wal")) / 1e6;
    checkpoints = w.idle_checkpoints();
    auto sz = w.db().Prepare(
        "SELECT avg(length(request_json)), avg(length(response_json)) FROM checkouts");
    if (sz.ok() && (*sz)->Step()) {
      req_bytes = static_cast<double>((*sz)->Int(0));
      resp_bytes = static_cast<double>((*sz)->Int(1));
    }
  }
  Report("bare 1-row insert txn (FULL)", bare);
  std::printf("stored per checkout: request %.0f B, response %.0f B\n", req_bytes, resp_bytes);
  std::printf("WAL file at the end %.1f MB, %lld checkpoints between commits\n", wal_mb,
              static_cast<long long>(checkpoints));
  std::printf("pages written per bare txn: %.1f, per checkout commit: %.1f\n", bare_pages / n,
              full_pages / n);
  Report("20-line checkout commit", full);
  std::vector<double> b = bare, f = full;
  std::sort(b.begin(), b.end());
  std::sort(f.begin(), f.end());
  std::printf("ratio p50 = %.2f, p99 = %.2f\n", f[f.size() / 2] / b[b.size() / 2],
              f[f.size() * 99 / 100] / b[b.size() * 99 / 100]);
  std::filesystem::remove_all(work);
  return 0;
}
