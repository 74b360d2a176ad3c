// bench_json_writer: the cost of turning a checkout request (about 4 KB: 20 lines of sku, qty,
// unit_price_cents, category) into its canonical text, the bytes that are hashed for
// idempotency and stored.
//
//   bench_json_writer [iterations]   (default 20000; 7 rounds, ns/op of the best and the median
//   round)
//
// Cases:
//   dump()             nlohmann::json::dump(), the reference
//   DumpCanonical      the same bytes from loyalty::DumpCanonical (returns a new string)
//   DumpCanonical+buf  appending into a string reused across calls
//   JsonWriter         writing the same document straight from plain structs, no tree at all
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loyalty/base/json_writer.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Line {
  std::string sku;
  int64_t qty;
  int64_t unit_price_cents;
  std::string category;
};

struct Request {
  std::string checkout_id, member_code, store_id, terminal_id, currency, cashier;
  std::vector<Line> lines;
  std::vector<std::string> coupons;
  int64_t redeem_points;
  bool offline;
};

Request MakeRequest() {
  static const char* kCategories[] = {"beverages", "dairy",  "bakery", "produce",
                                      "household", "snacks", "frozen"};
  Request r;
  r.checkout_id = "T01-20250611-000184-7f3a9c2e";
  r.member_code =
      "LM1.AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4_";
  r.store_id = "S-SH-0042";
  r.terminal_id = "T01";
  r.currency = "CNY";
  r.cashier = "王小明";
  for (int i = 0; i < 20; ++i) {
    char sku[32];
    std::snprintf(sku, sizeof sku, "69%011d", 12345678 + i * 7919);
    r.lines.push_back({sku, 1 + i % 4, 199 + i * 1375, kCategories[i % 7]});
  }
  r.coupons = {"WELCOME-10", "DAIRY-2X"};
  r.redeem_points = 1200;
  r.offline = false;
  return r;
}

// The tree the service holds after parsing the POS body; every line carries a few more
// fields than the four that matter, as POS systems send them.
nlohmann::json ToJson(const Request& r) {
  nlohmann::json j;
  j["checkout_id"] = r.checkout_id;
  j["member_code"] = r.member_code;
  j["store_id"] = r.store_id;
  j["terminal_id"] = r.terminal_id;
  j["currency"] = r.currency;
  j["cashier"] = r.cashier;
  j["coupons"] = r.coupons;
  j["redeem_points"] = r.redeem_points;
  j["offline"] = r.offline;
  j["lines"] = nlohmann::json::array();
  int n = 0;
  for (const auto& l : r.lines) {
    j["lines"].push_back({{"barcode_type", "EAN13"},
                          {"sku", l.sku},
                          {"qty", l.qty},
                          {"unit_price_cents", l.unit_price_cents},
                          {"category", l.category},
                          {"line_no", ++n},
                          {"name", "商品 " + l.sku + " 500ml 装"},
                          {"discountable", true},
                          {"tax_code", nullptr}});
  }
  return j;
}

// The same document written by hand, keys in sorted order.
void Write(const Request& r, std::string& out) {
  loyalty::JsonWriter w(out);
  w.BeginObject()
      .Key("cashier")
      .String(r.cashier)
      .Key("checkout_id")
      .String(r.checkout_id)
      .Key("coupons")
      .BeginArray();
  for (const auto& c : r.coupons) w.String(c);
  w.EndArray().Key("currency").String(r.currency).Key("lines").BeginArray();
  int n = 0;
  std::string name;
  for (const auto& l : r.lines) {
    name.assign("商品 ").append(l.sku).append(" 500ml 装");
    w.BeginObject()
        .Key("barcode_type")
        .String("EAN13")
        .Key("category")
        .String(l.category)
        .Key("discountable")
        .Bool(true)
        .Key("line_no")
        .Int(++n)
        .Key("name")
        .String(name)
        .Key("qty")
        .Int(l.qty)
        .Key("sku")
        .String(l.sku)
        .Key("tax_code")
        .Null()
        .Key("unit_price_cents")
        .Int(l.unit_price_cents)
        .EndObject();
  }
  w.EndArray()
      .Key("member_code")
      .String(r.member_code)
      .Key("offline")
      .Bool(r.offline)
      .Key("redeem_points")
      .Int(r.redeem_points)
      .Key("store_id")
      .String(r.store_id)
      .Key("terminal_id")
      .String(r.terminal_id)
      .EndObject();
}

size_t g_sink = 0;

// ns/op of each of `rounds` rounds of `iterations` calls, sorted.
template <typename F>
std::vector<double> Time(int iterations, int rounds, F&& f) {
  std::vector<double> ns;
  for (int r = 0; r < rounds; ++r) {
    auto t0 = Clock::now();
    for (int i = 0; i < iterations; ++i) g_sink += f();
    auto t1 = Clock::now();
    ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / iterations);
  }
  std::sort(ns.begin(), ns.end());
  return ns;
}

void Print(const char* name, const std::vector<double>& ns, double reference) {
  std::printf("%-18s best %8.0f ns/op   median %8.0f ns/op   %5.2fx faster than dump()\n", name,
              ns.front(), ns[ns.size() / 2], reference / ns[ns.size() / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 20000;
  const int rounds = 7;
  const Request req = MakeRequest();
  const nlohmann::json j = ToJson(req);

  const std::string reference = j.dump();
  std::string written;
  Write(req, written);
  if (loyalty::DumpCanonical(j) != reference || written != reference) {
    std::fprintf(stderr, "output differs from dump()\n");
    return 1;
  }
  std::printf("document: %zu bytes, %zu lines, %d iterations x %d rounds\n", reference.size(),
              req.lines.size(), iterations, rounds);

  auto dump = Time(iterations, rounds, [&] { return j.dump().size(); });
  auto canonical = Time(iterations, rounds, [&] { return loyalty::DumpCanonical(j).size(); });
  std::string buf;
  auto canonical_buf = Time(iterations, rounds, [&] {
    buf.clear();
    loyalty::DumpCanonical(j, buf);
    return buf.size();
  });
  auto writer = Time(iterations, rounds, [&] {
    buf.clear();
    Write(req, buf);
    return buf.size();
  });

  const double ref = dump[dump.size() / 2];
  Print("dump()", dump, ref);
  Print("DumpCanonical", canonical, ref);
  Print("DumpCanonical+buf", canonical_buf, ref);
  Print("JsonWriter", writer, ref);
  return g_sink == 0 ? 1 : 0;
}
