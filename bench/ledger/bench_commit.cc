// Durable commit of a 20-line checkout through the checkout service and the real ledger,
// against a bare single-row INSERT transaction with the same synchronous=FULL, in the same
// run, on the same disk. Prints p50/p99 and commits/s for both and their ratio.
//   bench_commit [DIR] [N]   (DIR defaults to the current folder; N = 2000 commits)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "loyalty/base/clock.h"
#include "loyalty/base/timezone.h"
#include "loyalty/checkout/service.h"
#include "loyalty/codes/codes.h"
#include "loyalty/codes/trusted_time.h"
#include "loyalty/ledger/ledger.h"
#include "loyalty/rules/rules.h"

using namespace loyalty;
using Clk = std::chrono::steady_clock;

static void Report(const char* name, std::vector<double> us) {
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double v : us) sum += v;
  std::printf("%-34s n=%zu  p50=%.1f us  p99=%.1f us  mean=%.1f us  -> %.0f commits/s\n", name, us.size(),
              us[us.size() / 2], us[us.size() * 99 / 100], sum / us.size(), 1e6 * us.size() / sum);
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
  auto db = ledger::Db::Open((work / "bare.db").string(), false);
  (*db)->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);");
  auto bare_insert = [&] {
    auto t0 = Clk::now();
    (*db)->Exec("BEGIN IMMEDIATE");
    auto st = (*db)->Prepare("INSERT INTO t (v) VALUES (?)");
    (*st)->Bind(1, std::string(64, 'x'));
    (*st)->Run();
    st.value().reset();
    (*db)->Exec("COMMIT");
    bare.push_back(std::chrono::duration<double, std::micro>(Clk::now() - t0).count());
  };

  // 2. Checkout commits (20 lines, a member identified by a channel card, earn entry,
  //    lot, checkout + lines + stored response) through CheckoutService::Commit.
  std::vector<double> full;
  {
    auto l = ledger::Ledger::Open((work / "ledger.db").string(), ledger::Ledger::Mode::kWriter, "T01");
    if (!l.ok()) {
      std::fprintf(stderr, "%s\n", l.status().ToString().c_str());
      return 1;
    }
    ledger::Ledger& w = **l;
    w.Begin();
    ledger::MemberRow m;
    m.member_id = 42;
    m.tier = "vip";
    m.snapshot_at_s = SystemClock::Instance().now_s();
    w.UpsertMember(m);
    w.PutIdentity("wechat", "123456789012", 42);
    w.Commit();
    codes::CodesConfig cc;
    cc.channels.push_back({"wechat", "^[0-9]{12}$"});
    auto verifier = codes::CodeVerifier::Create(cc);
    codes::TrustedTime tt(60);
    auto tz = TimeZone::Load("Asia/Shanghai");
    auto rules = std::make_shared<rules::Rules>(rules::Rules::Defaults());
    checkout::CheckoutService svc({"T01", "S001"}, SystemClock::Instance(), **verifier, tt, *tz, rules);
    nlohmann::json lines = nlohmann::json::array();
    for (int i = 0; i < 20; ++i)
      lines.push_back({{"sku", "SKU-" + std::to_string(i)}, {"qty", 1 + i % 3}, {"unit_price_cents", 199 + i * 37},
                       {"category", i % 5 ? "grocery" : "tobacco"}});
    for (int i = 0; i < n; ++i) {
      bare_insert();
      nlohmann::json body{{"checkout_id", "b" + std::to_string(i)}, {"member_code", "123456789012"}, {"lines", lines},
                          {"tender", "card"}};
      auto t0 = Clk::now();
      auto r = svc.Commit(w, body);
      full.push_back(std::chrono::duration<double, std::micro>(Clk::now() - t0).count());
      if (r.status != 200) {
        std::fprintf(stderr, "commit failed: %s\n", r.body.dump().c_str());
        return 1;
      }
    }
  }
  Report("bare 1-row insert txn (FULL)", bare);
  Report("20-line checkout commit", full);
  std::vector<double> b = bare, f = full;
  std::sort(b.begin(), b.end());
  std::sort(f.begin(), f.end());
  std::printf("ratio p50 = %.2f, p99 = %.2f\n", f[f.size() / 2] / b[b.size() / 2], f[f.size() * 99 / 100] / b[b.size() * 99 / 100]);
  std::filesystem::remove_all(work);
  return 0;
}
