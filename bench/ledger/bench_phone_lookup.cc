// Phone look-up at the till (docs/pos-api.md, "Phone look-up"): CheckoutService::LookupPhone
// against a real ledger file holding a store of N members who consented (each with a
// store-keyed look-up hash, two months of lots and an identity), offline (no HQ): the typed
// number parsed, hashed with the store's key, found through the index, the member viewed and
// an identification kept. Beside it, in the same run, the parts alone: the HMAC of the
// digits, and the indexed SELECT. Prints p50/p99 of each.
//   bench_phone_lookup [DIR] [MEMBERS] [LOOKUPS]   (defaults: ., 100000, 20000)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "loyalty/base/clock.h"
#include "loyalty/base/hash.h"
#include "loyalty/base/timezone.h"
#include "loyalty/checkout/service.h"
#include "loyalty/codes/codes.h"
#include "loyalty/codes/trusted_time.h"
#include "loyalty/ledger/ledger.h"
#include "loyalty/rules/rules.h"

using namespace loyalty;
using Clk = std::chrono::steady_clock;

namespace {

void Check(const Status& s) {
  if (s.ok()) return;
  std::fprintf(stderr, "%s\n", s.ToString().c_str());
  std::exit(1);
}

std::string Phone(int k) { return std::to_string(13900000000LL + k * 7); }

void Report(const char* name, std::vector<double> us) {
  std::sort(us.begin(), us.end());
  std::printf("%-40s n=%zu  p50=%.1f us  p99=%.1f us  max=%.1f us\n", name, us.size(),
              us[us.size() / 2], us[us.size() * 99 / 100], us.back());
}

}  // namespace

int main(int argc, char** argv) {
  std::filesystem::path dir = argc > 1 ? argv[1] : ".";
  const int members = argc > 2 ? std::atoi(argv[2]) : 100000;
  const int n = argc > 3 ? std::atoi(argv[3]) : 20000;
  auto work = dir / "bench_phone_lookup.tmp";
  std::filesystem::remove_all(work);
  std::filesystem::create_directories(work);
  const std::string db = (work / "ledger.db").string();
  const std::string key(32, '\x5c');  // the store's look-up key
  const int64_t key_id = 7;
  {
    auto l = ledger::Ledger::Open(db, ledger::Ledger::Mode::kWriter, "T01");
    if (!l.ok()) Check(l.status());
    ledger::Ledger& w = **l;
    const int64_t now_s = SystemClock::Instance().now_s();
    Check(w.Begin());
    for (int k = 0; k < members; ++k) {
      ledger::MemberRow m;
      m.member_id = 1000 + static_cast<uint64_t>(k);
      m.display_name = "张*";
      m.phone = "139****" + Phone(k).substr(7);
      m.phone_hash = KeyedHashHex(key, Phone(k));
      m.phone_key_id = key_id;
      m.snapshot_at_s = now_s;
      for (int month = 0; month < 2; ++month) {
        model::Lot lot{0, m.member_id, 100, 100, now_s - 86400, now_s + (month + 1) * 2592000, ""};
        Check(w.AddLot(lot).status());
      }
      m.balance = 200;
      Check(w.UpsertMember(m));
      Check(w.PutIdentity("card", "88" + std::to_string(10000000000000LL + k), m.member_id));
    }
    Check(w.Commit());
  }
  auto reader = ledger::Ledger::Open(db, ledger::Ledger::Mode::kReader, "T01");
  if (!reader.ok()) Check(reader.status());
  codes::CodesConfig cc;
  cc.hq_public_keys[1] = std::string(32, '\x01');
  auto verifier = codes::CodeVerifier::Create(cc);
  if (!verifier.ok()) Check(verifier.status());
  codes::TrustedTime tt(60);
  auto tz = TimeZone::Load("Asia/Shanghai");
  checkout::ServiceOptions opts{"T01", "S001"};
  opts.phone_lookups_per_hour = n + 1;  // the API's guard is not the cost measured here
  checkout::CheckoutService svc(opts, SystemClock::Instance(), **verifier, tt, *tz,
                                std::make_shared<rules::Rules>(rules::Rules::Defaults()));
  svc.SetPhoneKeys({{key_id, key}});

  std::vector<double> full, hmac, select;
  uint64_t seed = 88172645463325252ull;
  int found = 0;
  for (int i = 0; i < n; ++i) {
    seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
    const int k = static_cast<int>(seed % static_cast<uint64_t>(members));
    const std::string typed = "+86 " + Phone(k);
    auto t0 = Clk::now();
    auto r = svc.LookupPhone(**reader, typed);
    auto t1 = Clk::now();
    if (r.ok() && r->member.member.member_id == 1000 + static_cast<uint64_t>(k)) ++found;
    full.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    auto h0 = Clk::now();
    std::string h = KeyedHashHex(key, Phone(k));
    auto h1 = Clk::now();
    auto ids = (*reader)->MembersByPhoneHash(key_id, h, 2);
    auto h2 = Clk::now();
    if (!ids.ok() || ids->size() != 1) Check(Status::Error(ErrorCode::kInternal, "not found"));
    hmac.push_back(std::chrono::duration<double, std::micro>(h1 - h0).count());
    select.push_back(std::chrono::duration<double, std::micro>(h2 - h1).count());
  }
  std::printf("phone look-up, %d members of the store, %d look-ups, %d found\n", members, n, found);
  Report("LookupPhone (parse, hash, index, view)", full);
  Report("  HMAC-SHA256 of the digits alone", hmac);
  Report("  indexed SELECT alone", select);
  std::filesystem::remove_all(work);
  return found == n ? 0 : 1;
}
