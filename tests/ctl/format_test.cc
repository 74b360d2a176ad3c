// loyaltyctl's pure parts: RFC 4180 quoting, the --since argument at its edges, times and
// amounts without floating point, renderings that survive any JSON, the export records,
// and the command-line parser's exit codes.
#include <gtest/gtest.h>

#include <climits>
#include <sstream>

#include "loyalty/ctl/ctl.h"
#include "loyalty/ctl/export.h"
#include "loyalty/ctl/format.h"

namespace loyalty::ctl {
namespace {

using nlohmann::json;

TEST(Csv, QuotesOnlyWhatRfc4180Requires) {
  EXPECT_EQ(CsvField(""), "");
  EXPECT_EQ(CsvField("plain text"), "plain text");
  EXPECT_EQ(CsvField(" padded "), " padded ");
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(CsvField("\""), "\"\"\"\"");
  EXPECT_EQ(CsvField("line\nbreak"), "\"line\nbreak\"");
  EXPECT_EQ(CsvField("cr\rhere"), "\"cr\rhere\"");
  EXPECT_EQ(CsvField("茶,叶"), "\"茶,叶\"");
  EXPECT_EQ(CsvRow({"a", "b,c", ""}), "a,\"b,c\",\r\n");
  EXPECT_EQ(CsvRow({}), "\r\n");
}

class SinceTest : public ::testing::Test {
 protected:
  TimeZone shanghai_ = *TimeZone::Load("Asia/Shanghai");
};

TEST_F(SinceTest, DateIsMidnightInTheStoresTimeZone) {
  // 2026-11-22 00:00 in Shanghai (+08:00) is 2026-11-21T16:00:00Z.
  EXPECT_EQ(*ParseSince("2026-11-22", shanghai_), *ParseRfc3339("2026-11-21T16:00:00Z") * 1000);
  EXPECT_EQ(*ParseSince("2026-11-22", TimeZone::Utc()),
            *ParseRfc3339("2026-11-22T00:00:00Z") * 1000);
  auto ny = TimeZone::Load("America/New_York");
  ASSERT_TRUE(ny.ok());
  EXPECT_EQ(*ParseSince("2026-07-01", *ny), *ParseRfc3339("2026-07-01T04:00:00Z") * 1000);  // EDT
  EXPECT_EQ(*ParseSince("2026-01-01", *ny), *ParseRfc3339("2026-01-01T05:00:00Z") * 1000);  // EST
}

TEST_F(SinceTest, CalendarEdges) {
  EXPECT_TRUE(ParseSince("2028-02-29", shanghai_).ok());
  EXPECT_FALSE(ParseSince("2026-02-29", shanghai_).ok());
  EXPECT_TRUE(ParseSince("2026-04-30", shanghai_).ok());
  EXPECT_FALSE(ParseSince("2026-04-31", shanghai_).ok());
  EXPECT_TRUE(ParseSince("2026-12-31", shanghai_).ok());
  EXPECT_FALSE(ParseSince("2026-13-01", shanghai_).ok());
  EXPECT_FALSE(ParseSince("2026-00-10", shanghai_).ok());
  EXPECT_FALSE(ParseSince("2026-01-00", shanghai_).ok());
  EXPECT_TRUE(ParseSince("2026-01-01", shanghai_).ok());
}

TEST_F(SinceTest, Rfc3339AndRefusals) {
  EXPECT_EQ(*ParseSince("2026-11-18T11:07:10Z", shanghai_), 1795000030000);
  EXPECT_EQ(*ParseSince("2026-11-18T19:07:10+08:00", shanghai_), 1795000030000);
  EXPECT_EQ(*ParseSince("2026-11-18T11:07:10.999Z", shanghai_),
            1795000030000);  // the fraction is dropped
  for (const char* bad : {"", "today", "2026-1-01", "2026/11/22", "2026-11-22 ", " 2026-11-22",
                          "2026-11-2x", "+026-11-22", "2026-11-22T11:07:10", "20261122"}) {
    auto r = ParseSince(bad, shanghai_);
    EXPECT_FALSE(r.ok()) << "'" << bad << "'";
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
      EXPECT_NE(r.status().message().find("RFC 3339"), std::string::npos);
    }
  }
}

TEST(Format, TimesWithMilliseconds) {
  EXPECT_EQ(FormatTimeMs(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatTimeMs(1795000030042), "2026-11-18T11:07:10.042Z");
  EXPECT_EQ(FormatTimeMs(1795000030999), "2026-11-18T11:07:10.999Z");
  EXPECT_EQ(FormatTimeMs(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatTimeMs(-1000), "1969-12-31T23:59:59.000Z");
}

TEST(Format, CentsAreIntegers) {
  EXPECT_EQ(FormatCents(0), "0.00");
  EXPECT_EQ(FormatCents(5), "0.05");
  EXPECT_EQ(FormatCents(99), "0.99");
  EXPECT_EQ(FormatCents(100), "1.00");
  EXPECT_EQ(FormatCents(20380), "203.80");
  EXPECT_EQ(FormatCents(-5), "-0.05");
  EXPECT_EQ(FormatCents(-20380), "-203.80");
  EXPECT_EQ(FormatCents(INT64_MAX), "92233720368547758.07");
  EXPECT_EQ(FormatCents(INT64_MIN), "-92233720368547758.08");
}

TEST(Format, HealthShowsEveryPart) {
  json h =
      json::parse(R"({"status":"degraded","version":"0.1.0","terminal_id":"T01","store_id":"S001",
    "ledger":{"ok":true,"entries":12},
    "scanners":[{"id":"front","kind":"serial","state":"connected","last_scan_at":"2026-11-22T06:12:26Z"},
                {"id":"back","kind":"fifo","state":"disconnected","last_scan_at":null}],
    "sync":{"state":"failing","last_success_at":null,"last_attempt_at":"2026-11-22T06:00:00Z",
            "pending_entries":7,"last_error":"hq unreachable"},
    "clock":{"trusted":false},"rules_version":"r-2026"})");
  std::string s = FormatHealth(h);
  EXPECT_NE(s.find("terminal T01 (store S001): degraded"), std::string::npos) << s;
  EXPECT_NE(s.find("ok, 12 entries"), std::string::npos) << s;
  EXPECT_NE(s.find("front (serial) connected, last scan 2026-11-22T06:12:26Z"), std::string::npos)
      << s;
  EXPECT_NE(s.find("back (fifo) disconnected, last scan never"), std::string::npos) << s;
  EXPECT_NE(s.find("failing, 7 entries pending, last success never"), std::string::npos) << s;
  EXPECT_NE(s.find("last error: hq unreachable"), std::string::npos) << s;
  EXPECT_NE(s.find("NOT trusted"), std::string::npos) << s;
  EXPECT_NE(s.find("r-2026"), std::string::npos) << s;
}

TEST(Format, RenderersNeverThrowOnUnexpectedShapes) {
  for (const char* text :
       {"null", "[]", "42", "\"x\"", "{}", R"({"ledger":"no","scanners":{"a":1},"sync":[1]})",
        R"({"scanners":[null,1,"x",{"id":7}],"clock":{"trusted":"yes"}})",
        R"({"member_id":12,"lots":[null,{"points":"x"}],"recent_entries":[1,{"points":1.5}]})",
        R"({"identification":[],"member":"x"})", R"({"result":"failed","error":{"a":1}})"}) {
    json j = json::parse(text);
    EXPECT_NO_THROW({
      FormatHealth(j);
      FormatMember(j);
      FormatIdentify(j);
      FormatSyncRun(j);
      FormatApiError(500, j, text);
    }) << text;
  }
}

TEST(Format, MemberAndIdentify) {
  json m = json::parse(R"({"member_id":"42","display_name":"张*","phone":"138****5678","tier":"vip",
    "status":"frozen","frozen_reason":"velocity","balance":168,"available_balance":100,"snapshot_at":null,
    "stale":true,"lots":[{"points":168,"expires_at":"2027-12-31T15:59:59Z"}],
    "recent_entries":[{"entry_id":"e1","kind":"earn","points":168,"at":"2026-11-22T06:12:26Z","checkout_id":"co-1"},
                      {"entry_id":"e2","kind":"clawback","points":-20,"at":"2026-11-22T07:00:00Z"}]})");
  std::string s = FormatMember(m);
  EXPECT_NE(s.find("member 42: 张* 138****5678, tier vip, frozen (velocity)"), std::string::npos)
      << s;
  EXPECT_NE(s.find("168 points, 100 available"), std::string::npos) << s;
  EXPECT_NE(s.find("never sent by HQ (stale)"), std::string::npos) << s;
  EXPECT_NE(s.find("earn +168  checkout co-1"), std::string::npos) << s;
  EXPECT_NE(s.find("clawback -20"), std::string::npos) << s;

  json id{{"identification",
           {{"id", "idn-1"}, {"kind", "channel"}, {"channel", "wechat"}, {"expires_at", "X"}}},
          {"member", m}};
  std::string t = FormatIdentify(id);
  EXPECT_EQ(t.rfind("identified: channel code (wechat), identification idn-1, usable until X\n", 0),
            0u)
      << t;
  EXPECT_NE(t.find("member 42"), std::string::npos);
}

TEST(Format, SyncRunAndApiError) {
  EXPECT_EQ(FormatSyncRun(json::parse(
                R"({"run_id":"r1","result":"ok","uploaded":3,"downloaded":0,"repaired":1,
      "round_trips":2,"bytes_sent":1204,"bytes_received":880})")),
            "sync run r1 ok: uploaded 3, downloaded 0, repaired 1, 2 round trips, 1204 bytes sent, "
            "880 received");
  EXPECT_EQ(
      FormatSyncRun(json::parse(R"({"run_id":"r2","result":"failed","error":"no HQ configured"})")),
      "sync run r2 failed: no HQ configured");
  EXPECT_EQ(FormatApiError(
                422, json::parse(R"({"error":{"code":"code_malformed","message":"not LM1"}})"), ""),
            "code_malformed: not LM1 (HTTP 422)");
  EXPECT_EQ(FormatApiError(502, json(), "bad\ngateway"), "bad gateway (HTTP 502)");
  EXPECT_EQ(FormatApiError(500, json(), ""), "no body (HTTP 500)");
  EXPECT_EQ(FormatApiError(500, json(), std::string(1000, 'x')).size(),
            200 + std::string(" (HTTP 500)").size());
}

TEST(Format, PathSegmentsCannotEscape) {
  EXPECT_EQ(EncodePathSegment("1234567890123"), "1234567890123");
  EXPECT_EQ(EncodePathSegment("../x?y=1#z"), "..%2Fx%3Fy%3D1%23z");
  EXPECT_EQ(EncodePathSegment("a b"), "a%20b");
  EXPECT_EQ(EncodePathSegment("\xE5\xBC\xA0"), "%E5%BC%A0");
}

ledger::EntryRow Entry(int64_t seq, std::string kind, int64_t points, std::string refund_id) {
  ledger::EntryRow e;
  e.seq = seq;
  e.entry_id = "e" + std::to_string(seq);
  e.kind = std::move(kind);
  e.member_id = 42;
  e.points = points;
  e.at_ms = 1795000030000 + seq;
  e.checkout_id = "co-1";
  e.refund_id = std::move(refund_id);
  return e;
}

TEST(Export, RecordsOfACheckoutInOrder) {
  model::Checkout c;
  c.checkout_id = "co-1";
  c.member_id = 42;
  c.rules_version = "r1";
  c.committed_at_ms = 1795000030042;
  c.subtotal_cents = 5000;
  c.total_due_cents = 4900;
  c.points_earned = 49;
  c.tender = "card";
  c.cashier_id = "k-1";
  model::CheckoutLine l0;
  l0.line = 0;
  l0.sku = "A,\"1\"";
  l0.category = "grocery";
  l0.qty = 2;
  l0.unit_price_cents = 2500;
  l0.net_cents = 4900;
  c.lines.push_back(l0);
  model::Refund r;
  r.refund_id = "rf-1";
  r.checkout_id = "co-1";
  r.reason = "return";
  r.at_ms = 1795000090000;
  r.refund_cents = 2450;
  r.lines = {{0, 1}};
  r.cashier_id = "k-2";
  // Entries out of order, and one that matches no refund: nothing is dropped.
  std::vector<ledger::EntryRow> entries = {Entry(3, "clawback", -24, "rf-1"),
                                           Entry(1, "earn", 49, ""),
                                           Entry(4, "clawback", -1, "rf-unknown")};
  auto recs = RecordsForCheckout(c, entries, {r});
  std::vector<std::string> order;
  for (const auto& x : recs) order.push_back(x.record + ":" + x.entry_id);
  EXPECT_EQ(order, (std::vector<std::string>{"checkout:", "line:", "entry:e1",
                                             "refund:", "refund_line:", "entry:e3", "entry:e4"}));
  EXPECT_EQ(recs[4].sku, "A,\"1\"");  // the refunded line names its sku

  EXPECT_EQ(
      ExportCsvHeader(),
      "record,at,checkout_id,refund_id,entry_id,seq,member_id,kind,points,line,sku,category,qty,"
      "unit_price_cents,net_cents,subtotal_cents,total_due_cents,refund_cents,points_earned,"
      "redeemed_points,"
      "tender,reason,rules_version,cashier_id,sold_at\r\n");
  EXPECT_EQ(
      ExportCsvRow(recs[0]),
      "checkout,2026-11-18T11:07:10.042Z,co-1,,,,42,,,,,,,,,5000,4900,,49,0,card,,r1,k-1,\r\n");
  EXPECT_EQ(
      ExportCsvRow(recs[1]),
      "line,2026-11-18T11:07:10.042Z,co-1,,,,,,,0,\"A,\"\"1\"\"\",grocery,2,2500,4900,,,,,,,,,,"
      "\r\n");
  EXPECT_EQ(ExportCsvRow(recs[2]),
            "entry,2026-11-18T11:07:10.001Z,co-1,,e1,1,42,earn,49,,,,,,,,,,,,,,,,\r\n");

  auto j = ExportJson(recs[3]);
  EXPECT_EQ(j.begin().key(), "record");  // columns in header order
  EXPECT_EQ(j["record"], "refund");
  EXPECT_EQ(j["member_id"], "42");  // a decimal string, as in the POS API
  EXPECT_EQ(j["refund_cents"], 2450);
  EXPECT_EQ(j["reason"], "return");
  EXPECT_EQ(j["cashier_id"], "k-2");    // who did it
  EXPECT_FALSE(j.contains("sold_at"));  // a refund of this terminal's own sale
  EXPECT_FALSE(j.contains("sku"));
  EXPECT_EQ(ExportJson(recs[1])["sku"], "A,\"1\"");

  // A checkout without a member has an empty member_id column and none in JSON.
  c.member_id.reset();
  auto anon = RecordsForCheckout(c, {}, {});
  EXPECT_EQ(ExportCsvRow(anon[0]).find(",,,,42,"), std::string::npos);
  EXPECT_FALSE(ExportJson(anon[0]).contains("member_id"));
}

struct Ran {
  int code;
  std::string out, err;
};
Ran RunArgs(std::vector<std::string> args) {
  std::ostringstream out, err;
  int code = Run(args, out, err);
  return {code, out.str(), err.str()};
}

TEST(CommandLine, UsageErrorsAreOneLineAndExit2) {
  for (auto args :
       std::vector<std::vector<std::string>>{{},
                                             {"frobnicate"},
                                             {"status", "--bogus"},
                                             {"member"},
                                             {"checkouts"},
                                             {"export", "--since", "2026-01-01", "--format", "xml"},
                                             {"status", "verify"}}) {
    Ran r = RunArgs(args);
    std::string joined;
    for (auto& a : args) joined += a + " ";
    EXPECT_EQ(r.code, kExitUsage) << joined << r.err;
    EXPECT_EQ(r.err.rfind("loyaltyctl: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(r.out.empty());
  }
}

TEST(CommandLine, AWordThatIsNoCommandIsNamed) {
  for (auto args : std::vector<std::vector<std::string>>{
           {"frobnicate"}, {"--json", "frobnicate"}, {"--config", "a.toml", "frobnicate"}}) {
    Ran r = RunArgs(args);
    EXPECT_EQ(r.code, kExitUsage) << r.err;
    EXPECT_NE(r.err.find("unknown command 'frobnicate'"), std::string::npos) << r.err;
  }
  Ran none = RunArgs({});  // no word at all: a command is required
  EXPECT_EQ(none.err.find("unknown command"), std::string::npos) << none.err;
}

TEST(CommandLine, HelpIsNotAnError) {
  Ran r = RunArgs({"--help"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_NE(r.out.find("verify"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--config"), std::string::npos) << r.out;
}

TEST(CommandLine, MissingConfigIsAConfigError) {
  Ran r = RunArgs({"--config", "/nonexistent/agent.toml", "verify"});
  EXPECT_EQ(r.code, kExitConfig) << r.err;
  EXPECT_NE(r.err.find("/nonexistent/agent.toml"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

}  // namespace
}  // namespace loyalty::ctl
