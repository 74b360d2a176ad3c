// bench_upload_parse: the cost of reading an upload's body at HQ — a busy hour of a till, 200
// sales each with its entry and its checkout (two lines, the POS request and answer kept as
// text: ~1.9 KB a sale on the wire, as bench/hq_load's terminals send) — by the tree reader
// (ParseMessage<UploadRequest>: nlohmann's DOM, then JsonReader into the message) and by the
// fast reader HQ uses first (ParseUploadFast: a strict scanner of the text, json_scan.h,
// straight into the message).
//
//   bench_upload_parse [sales] [iterations]   (default 200 and 200; 7 rounds, the best and
//   the median round's ms a body and MB/s)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "loyalty/sync/messages.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace ls = loyalty::sync;

ls::UploadRequest AnHour(int sales) {
  ls::UploadRequest up;
  for (int i = 0; i < sales; ++i) {
    const std::string id = "co-" + std::to_string(100000 + i);
    ls::Entry e;
    char hex[33];
    std::snprintf(hex, sizeof hex, "%032x", i + 1);
    e.entry_id = hex;
    e.terminal_id = "S0001-T01";
    e.seq = i + 1;
    e.kind = "earn";
    e.member_id = 1000000 + static_cast<uint64_t>(i) * 7919;
    e.points = 150;
    e.at_ms = 1790000000000 + i * 17000;
    e.checkout_id = id;
    e.detail = R"({"tier":"vip","multiplier_bp":15000,"eligible_cents":10000})";
    e.prev_hash = std::string(32, static_cast<char>(i));
    e.hash = std::string(32, static_cast<char>(i + 1));
    up.entries.push_back(e);
    ls::Checkout c;
    c.checkout_id = id;
    c.request_hash = std::string(64, 'a');
    c.member_id = e.member_id;
    c.rules_version = "2026-11";
    c.committed_at_ms = e.at_ms;
    c.subtotal_cents = 10000;
    c.total_due_cents = 10000;
    c.points_earned = 150;
    c.eligible_cents = 10000;
    c.redeemable_cents = 10000;
    c.code_hash = std::string(64, 'c');
    c.tender = "wechat";
    c.cashier_id = "cashier-07";
    c.request_json =
        R"({"checkout_id":")" + id +
        R"(","member":{"code":"LM1.d.0000000000.abcdefghijklmnop"},"lines":[)"
        R"({"sku":"6901234567890","qty":1,"unit_price_cents":5000,"category":"grocery"},)"
        R"({"sku":"6909876543210","qty":2,"unit_price_cents":2500,"category":"dairy"}],)"
        R"("tender":"wechat","cashier_id":"cashier-07"})";
    c.response_json = R"({"checkout_id":")" + id +
                      R"(","subtotal_cents":10000,"tier_discount_cents":0,"coupon_cents":0,)"
                      R"("redeem_cents":0,"total_due_cents":10000,"points_earned":150,)"
                      R"("balance_after":2150,"tier":"vip","lines":[{"line":0,"net_cents":5000},)"
                      R"({"line":1,"net_cents":5000}]})";
    for (int l = 0; l < 2; ++l) {
      ls::CheckoutLine line;
      line.line = l;
      line.sku = l ? "6909876543210" : "6901234567890";
      line.category = l ? "dairy" : "grocery";
      line.qty = l ? 2 : 1;
      line.unit_price_cents = l ? 2500 : 5000;
      line.net_cents = 5000;
      line.net_before_redeem_cents = 5000;
      line.points_eligible = true;
      line.redeemable = true;
      c.lines.push_back(line);
    }
    up.checkouts.push_back(c);
  }
  return up;
}

template <typename F>
std::vector<double> Time(int iterations, int rounds, F&& f) {
  std::vector<double> ms;
  size_t sink = 0;
  for (int r = 0; r < rounds; ++r) {
    auto t0 = Clock::now();
    for (int i = 0; i < iterations; ++i) sink += f();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / iterations);
  }
  if (sink == 0) std::abort();  // every read must have produced entries
  std::sort(ms.begin(), ms.end());
  return ms;
}

void Report(const char* name, const std::vector<double>& ms, size_t bytes, double reference) {
  const double median = ms[ms.size() / 2];
  std::printf("%-22s best %6.3f ms   median %6.3f ms a body   %6.0f MB/s   %4.2fx the tree's\n",
              name, ms.front(), median, bytes / 1e3 / median, reference / median);
}

}  // namespace

int main(int argc, char** argv) {
  const int sales = argc > 1 ? std::atoi(argv[1]) : 200;
  const int iterations = argc > 2 ? std::atoi(argv[2]) : 200;
  const int rounds = 7;
  const std::string body = ls::SerializeMessage(AnHour(sales));
  ls::UploadRequest check;
  auto tree_read = ls::ParseMessage<ls::UploadRequest>(body);
  if (!ls::ParseUploadFast(body, &check) || !tree_read.ok() || !(check == *tree_read)) {
    std::printf("the fast reader declined the body, or read it otherwise than the tree\n");
    return 1;
  }
  std::printf("body: %zu bytes, %d entries and checkouts, %d iterations x %d rounds\n", body.size(),
              sales, iterations, rounds);
  auto tree = Time(iterations, rounds, [&] {
    auto r = ls::ParseMessage<ls::UploadRequest>(body);
    return r.ok() ? r->entries.size() : 0;
  });
  auto fast = Time(iterations, rounds, [&] {
    ls::UploadRequest up;
    return ls::ParseUploadFast(body, &up) ? up.entries.size() : 0;
  });
  const double reference = tree[tree.size() / 2];
  Report("ParseMessage (tree)", tree, body.size(), reference);
  Report("ParseUploadFast", fast, body.size(), reference);
  return 0;
}
