// Every loyaltyctl command as a process against a real loyaltyd (started by the agent test
// harness) and its real SQLite file: the API commands while it runs, the file commands
// while it runs and after it stopped, verify on a tampered file, and the exit codes.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <ctime>
#include <fstream>
#include <thread>

#include "../agent/harness.h"
#include "loyalty/base/encoding.h"
#include "loyalty/base/ids.h"
#include "loyalty/base/time.h"
#include "loyalty/base/timezone.h"
#include "loyalty/codes/mint.h"
#include "loyalty/codes/return_token.h"
#include "loyalty/ledger/ledger.h"

namespace loyalty::testing {
namespace {

using nlohmann::json;

constexpr uint64_t kDynamicMember = 1234567890123;  // the vectors' certificate member
constexpr char kOddSku[] = "A,\"quoted\" sku";

using Ctl = ProgramResult;

// An error is exactly one line on stderr, "loyaltyctl: <what>".
void ExpectOneLineError(const Ctl& r) {
  EXPECT_EQ(r.err.rfind("loyaltyctl: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// A strict RFC 4180 reader: CRLF record ends, quoted fields with doubled quotes.
std::vector<std::vector<std::string>> ParseCsv(const std::string& s) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '"') {
      ++i;
      for (;;) {
        if (i >= s.size()) {
          ADD_FAILURE() << "unterminated quoted field";
          return rows;
        }
        if (s[i] == '"') {
          if (i + 1 < s.size() && s[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field += s[i++];
      }
    } else {
      while (i < s.size() && s[i] != ',' && s[i] != '\r' && s[i] != '\n' && s[i] != '"')
        field += s[i++];
      if (i < s.size() && s[i] == '"') {
        ADD_FAILURE() << "a quote inside an unquoted field at byte " << i;
        return rows;
      }
    }
    row.push_back(std::move(field));
    field.clear();
    if (i < s.size() && s[i] == ',') {
      ++i;
      continue;
    }
    if (s.compare(i, 2, "\r\n") != 0) {
      ADD_FAILURE() << "record not ended by CRLF at byte " << i;
      return rows;
    }
    i += 2;
    rows.push_back(std::move(row));
    row.clear();
  }
  return rows;
}

std::string TodayInShanghai() {
  auto tz = TimeZone::Load("Asia/Shanghai");
  CivilTime t = tz->ToLocal(static_cast<int64_t>(::time(nullptr)));
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04lld-%02d-%02d", static_cast<long long>(t.year), t.month,
                t.day);
  return buf;
}

json Commit(AgentProcess& a, const std::string& checkout_id, std::optional<std::string> code,
            json lines, const std::string& tender) {
  json req{{"checkout_id", checkout_id}, {"lines", lines}, {"tender", tender}};
  if (code) req["member_code"] = *code;
  auto r = a.Post("/v1/checkouts/commit", req);
  EXPECT_EQ(r.status, 200) << r.raw;
  return r.body;
}

// One daemon for the read commands, with three checkouts (two for the member, one without
// a member) and a partial refund.
class CtlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::filesystem::path(FreshDir("ctl_suite"));
    agent_ = new AgentProcess(*dir_);
    agent_->Start();
    today_ = new std::string(TodayInShanghai());
    start_ms_ = static_cast<int64_t>(::time(nullptr)) * 1000;
    int64_t now = static_cast<int64_t>(::time(nullptr));
    Commit(*agent_, "co-1", MintCode(kDynamicMember, now - 1),
           json::array(
               {{{"sku", kOddSku}, {"qty", 2}, {"unit_price_cents", 1990}, {"category", "grocery"}},
                {{"sku", "B"}, {"qty", 1}, {"unit_price_cents", 12900}, {"category", "beauty"}}}),
           "wechat");
    Commit(*agent_, "co-2", MintCode(kDynamicMember, now - 2),
           json::array({{{"sku", "C"}, {"qty", 1}, {"unit_price_cents", 5000}}}), "card");
    Commit(*agent_, "co-3", std::nullopt,
           json::array({{{"sku", "D"}, {"qty", 3}, {"unit_price_cents", 100}}}), "cash");
    auto rf = agent_->Post("/v1/refunds", {{"refund_id", "rf-1"},
                                           {"checkout_id", "co-1"},
                                           {"lines", json::array({{{"line", 0}, {"qty", 1}}})}});
    EXPECT_EQ(rf.status, 200) << rf.raw;
  }
  static void TearDownTestSuite() {
    delete agent_;
    std::filesystem::remove_all(*dir_);
    delete dir_;
    delete today_;
  }
  static Ctl Run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", agent_->config_path()});
    return RunCtl(args);
  }

  static std::filesystem::path* dir_;
  static AgentProcess* agent_;
  static std::string* today_;
  static int64_t start_ms_;
};
std::filesystem::path* CtlTest::dir_ = nullptr;
AgentProcess* CtlTest::agent_ = nullptr;
std::string* CtlTest::today_ = nullptr;
int64_t CtlTest::start_ms_ = 0;

TEST_F(CtlTest, Status) {
  auto h = agent_->Call("GET", "/v1/health", "", false);
  ASSERT_EQ(h.status, 200);
  Ctl r = Run({"status"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  EXPECT_NE(r.out.find("on terminal T01 (store S001)"), std::string::npos) << r.out;
  EXPECT_NE(
      r.out.find("ok, " + std::to_string(h.body["ledger"]["entries"].get<int64_t>()) + " entries"),
      std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("scanners:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("entries pending"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("clock:"), std::string::npos) << r.out;

  Ctl j = Run({"status", "--json"});
  ASSERT_EQ(j.exit, 0) << j.err;
  json body = json::parse(j.out);
  EXPECT_EQ(body["terminal_id"], "T01");
  EXPECT_EQ(body["ledger"]["entries"], h.body["ledger"]["entries"]);
  EXPECT_EQ(Run({"--json", "status"}).exit, 0);  // the global option goes either side
}

TEST_F(CtlTest, Member) {
  auto api = agent_->Get("/v1/members/" + std::to_string(kDynamicMember));
  ASSERT_EQ(api.status, 200) << api.raw;
  int64_t balance = api.body["balance"];
  Ctl r = Run({"member", std::to_string(kDynamicMember)});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_NE(r.out.find("member " + std::to_string(kDynamicMember)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("balance:   " + std::to_string(balance) + " points"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("checkout co-1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("clawback"), std::string::npos) << r.out;

  Ctl j = Run({"member", std::to_string(kDynamicMember), "--json"});
  ASSERT_EQ(j.exit, 0) << j.err;
  EXPECT_EQ(json::parse(j.out)["balance"], balance);

  Ctl unknown = Run({"member", "999"});
  EXPECT_EQ(unknown.exit, 5) << unknown.err;
  ExpectOneLineError(unknown);
  EXPECT_NE(unknown.err.find("member_unknown"), std::string::npos) << unknown.err;
  EXPECT_NE(unknown.err.find("HTTP 404"), std::string::npos) << unknown.err;

  Ctl unknown_json = Run({"member", "999", "--json"});
  EXPECT_EQ(unknown_json.exit, 5);
  EXPECT_EQ(json::parse(unknown_json.out)["error"]["code"],
            "member_unknown");  // the daemon's error, for scripts

  // A member id cannot reach another route.
  Ctl sneaky = Run({"member", "../checkouts/co-1"});
  EXPECT_NE(sneaky.exit, 0);
  EXPECT_EQ(sneaky.out.find("co-1"), std::string::npos) << sneaky.out;
}

TEST_F(CtlTest, Scan) {
  std::string code = MintCode(kDynamicMember, static_cast<int64_t>(::time(nullptr)) - 5);
  Ctl r = Run({"scan", code});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_NE(r.out.find("identified: dynamic code"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("member " + std::to_string(kDynamicMember)), std::string::npos) << r.out;

  Ctl j = Run({"scan", code, "--json"});
  ASSERT_EQ(j.exit, 0) << j.err;
  json body = json::parse(j.out);
  EXPECT_EQ(body["identification"]["kind"], "dynamic");
  EXPECT_EQ(body["member"]["member_id"], std::to_string(kDynamicMember));

  // What the API says about garbage, with its code, and a non-zero exit.
  std::string garbage = "LM1.not-really-a-code";
  auto api = agent_->Post("/v1/identify", {{"code", garbage}});
  ASSERT_EQ(api.status / 100, 4) << api.raw;
  Ctl bad = Run({"scan", garbage});
  EXPECT_EQ(bad.exit, 5) << bad.err;
  ExpectOneLineError(bad);
  EXPECT_NE(bad.err.find(api.body["error"]["code"].get<std::string>()), std::string::npos)
      << bad.err;
  EXPECT_TRUE(bad.out.empty());
}

TEST_F(CtlTest, Checkouts) {
  for (const std::string& since : {*today_, FormatRfc3339(start_ms_ / 1000 - 3600)}) {
    Ctl r = Run({"checkouts", "--since", since});
    ASSERT_EQ(r.exit, 0) << since << ": " << r.err;
    for (const char* id : {"co-1", "co-2", "co-3"})
      EXPECT_NE(r.out.find(id), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("3 checkouts since"), std::string::npos) << r.out;
  }
  Ctl j = Run({"checkouts", "--since", *today_, "--json"});
  ASSERT_EQ(j.exit, 0) << j.err;
  json body = json::parse(j.out);
  ASSERT_EQ(body["checkouts"].size(), 3u) << j.out;
  std::map<std::string, json> by_id;
  for (const auto& c : body["checkouts"]) by_id[c["checkout_id"]] = c;
  EXPECT_EQ(by_id["co-1"]["member_id"], std::to_string(kDynamicMember));
  EXPECT_EQ(by_id["co-1"]["tender"], "wechat");
  EXPECT_EQ(by_id["co-1"]["total_due_cents"], 2 * 1990 + 12900);
  ASSERT_EQ(by_id["co-1"]["refunds"].size(), 1u);
  EXPECT_EQ(by_id["co-1"]["refunds"][0]["refund_id"], "rf-1");
  EXPECT_EQ(by_id["co-3"]["member_id"], nullptr);

  Ctl later = Run({"checkouts", "--since", "2999-01-01", "--json"});
  ASSERT_EQ(later.exit, 0) << later.err;
  EXPECT_TRUE(json::parse(later.out)["checkouts"].empty());

  Ctl bad = Run({"checkouts", "--since", "yesterday"});
  EXPECT_EQ(bad.exit, 2);
  ExpectOneLineError(bad);
}

TEST_F(CtlTest, ExportCsv) {
  Ctl r = Run({"export", "--since", *today_, "--format", "csv"});
  ASSERT_EQ(r.exit, 0) << r.err;
  // The odd sku is quoted with its quotes doubled.
  EXPECT_NE(r.out.find("\"A,\"\"quoted\"\" sku\""), std::string::npos) << r.out;
  auto rows = ParseCsv(r.out);
  ASSERT_GE(rows.size(), 2u);
  const auto& header = rows[0];
  for (const char* col :
       {"record", "at", "checkout_id", "refund_id", "entry_id", "member_id", "kind", "points",
        "subtotal_cents", "total_due_cents", "refund_cents", "tender", "rules_version"})
    EXPECT_NE(std::find(header.begin(), header.end(), col), header.end()) << col;
  auto col = [&](const char* name) {
    return std::find(header.begin(), header.end(), name) - header.begin();
  };
  std::map<std::string, int> count;
  bool saw_odd = false;
  int64_t earn_points = 0, clawback_points = 0;
  for (size_t i = 1; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), header.size()) << "row " << i;
    const auto& row = rows[i];
    ++count[row[col("record")]];
    if (row[col("record")] == "line" && row[col("sku")] == kOddSku) {
      saw_odd = true;
      EXPECT_EQ(row[col("checkout_id")], "co-1");
      EXPECT_EQ(row[col("qty")], "2");
    }
    if (row[col("record")] == "checkout" && row[col("checkout_id")] == "co-1") {
      EXPECT_EQ(row[col("tender")], "wechat");
      EXPECT_EQ(row[col("member_id")], std::to_string(kDynamicMember));
      EXPECT_EQ(row[col("total_due_cents")], std::to_string(2 * 1990 + 12900));
      EXPECT_FALSE(row[col("rules_version")].empty());
    }
    if (row[col("record")] == "entry" && row[col("kind")] == "earn")
      earn_points += std::stoll(row[col("points")]);
    if (row[col("record")] == "entry" && row[col("kind")] == "clawback") {
      EXPECT_EQ(row[col("refund_id")], "rf-1");
      clawback_points += std::stoll(row[col("points")]);
    }
    EXPECT_TRUE(ParseRfc3339(row[col("at")]).has_value()) << row[col("at")];
  }
  EXPECT_TRUE(saw_odd);
  EXPECT_EQ(count["checkout"], 3);
  EXPECT_EQ(count["line"], 4);
  EXPECT_EQ(count["refund"], 1);
  EXPECT_EQ(count["refund_line"], 1);
  // Every entry of the ledger belongs to these checkouts, and each is exported once.
  auto l = agent_->OpenLedger(ledger::Ledger::Mode::kReader);
  EXPECT_EQ(count["entry"], l->EntryCount().value());
  auto member = agent_->Get("/v1/members/" + std::to_string(kDynamicMember));
  EXPECT_EQ(earn_points + clawback_points, member.body["balance"].get<int64_t>());
  EXPECT_LT(clawback_points, 0);

  // CSV is the default format, and -o writes the same bytes to a file.
  auto file = *dir_ / "export.csv";
  Ctl to_file = Run({"export", "--since", *today_, "-o", file.string()});
  ASSERT_EQ(to_file.exit, 0) << to_file.err;
  EXPECT_TRUE(to_file.out.empty());
  EXPECT_EQ(ReadFile(file), r.out);

  // Nothing since a future date: the header alone.
  Ctl none = Run({"export", "--since", "2999-01-01"});
  ASSERT_EQ(none.exit, 0);
  EXPECT_EQ(ParseCsv(none.out).size(), 1u);
}

TEST_F(CtlTest, ExportJson) {
  Ctl csv = Run({"export", "--since", *today_});
  Ctl r = Run({"export", "--since", *today_, "--format", "json"});
  ASSERT_EQ(r.exit, 0) << r.err;
  json body = json::parse(r.out);
  ASSERT_TRUE(body["records"].is_array());
  EXPECT_EQ(body["records"].size(), ParseCsv(csv.out).size() - 1);
  bool saw_odd = false;
  for (const auto& rec : body["records"]) {
    ASSERT_TRUE(rec.contains("record"));
    if (rec["record"] == "line" && rec["sku"] == kOddSku) saw_odd = true;
    if (rec["record"] == "checkout" && rec["checkout_id"] == "co-1") {
      EXPECT_EQ(rec["member_id"], std::to_string(kDynamicMember));
    }
  }
  EXPECT_TRUE(saw_odd);
  EXPECT_EQ(Run({"export", "--since", *today_, "--json"}).out, r.out);
  Ctl contradiction = Run({"export", "--since", *today_, "--json", "--format", "csv"});
  EXPECT_EQ(contradiction.exit, 2);
  ExpectOneLineError(contradiction);
}

TEST_F(CtlTest, VerifyWhileRunning) {
  Ctl r = Run({"verify"});
  ASSERT_EQ(r.exit, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("hash chain and balances verified"), std::string::npos) << r.out;
  Ctl j = Run({"verify", "--json"});
  ASSERT_EQ(j.exit, 0);
  json body = json::parse(j.out);
  EXPECT_EQ(body["ok"], true);
  EXPECT_TRUE(body["problems"].empty());
  EXPECT_GT(body["entries"].get<int64_t>(), 0);
}

TEST_F(CtlTest, Sync) {
  // loyaltyd always runs its sync service: starting a run is accepted even without an HQ.
  Ctl start = Run({"sync"});
  ASSERT_EQ(start.exit, 0) << start.err;
  EXPECT_TRUE(start.err.empty()) << start.err;
  EXPECT_NE(start.out.find("sync run "), std::string::npos) << start.out;
  // This daemon has no HQ configured: the run fails, with its reason, and --wait says so.
  Ctl wait = Run({"sync", "--wait"});
  EXPECT_EQ(wait.exit, 9) << wait.out << wait.err;
  ExpectOneLineError(wait);
  EXPECT_NE(wait.err.find("failed"), std::string::npos) << wait.err;
  EXPECT_NE(wait.err.find("hq_unconfigured"), std::string::npos) << wait.err;
  EXPECT_NE(wait.out.find("started"), std::string::npos) << wait.out;  // plain lines off a terminal
  Ctl wait_json = Run({"sync", "--wait", "--json"});
  EXPECT_EQ(wait_json.exit, 9);
  json run = json::parse(wait_json.out, nullptr, false);
  ASSERT_TRUE(run.is_object()) << wait_json.out;
  EXPECT_EQ(run["result"], "failed");
  EXPECT_NE(run.value("error", "").find("hq_unconfigured"), std::string::npos) << wait_json.out;
}

std::filesystem::path WriteConfigAt(const std::filesystem::path& dir, uint16_t port) {
  std::filesystem::create_directories(dir);
  WriteFile(dir / "api.token", "0123456789abcdef\n", 0640);
  WriteFile(dir / "agent.toml",
            "[agent]\nterminal_id = \"T01\"\nstore_id = \"S001\"\ndatabase = \"ledger.db\"\n"
            "[api]\nlisten = \"127.0.0.1:" +
                std::to_string(port) +
                "\"\ntoken_file = \"api.token\"\n"
                "[codes]\nhq_public_keys = { \"1\" = \"" +
                kHqPublicB64 + "\" }\n");
  return dir / "agent.toml";
}

// A day's export carries the day's refunds of earlier sales: the refund, its lines and its
// entries follow the day's checkouts, and the earlier checkout itself is not repeated.
TEST(CtlStandalone, ExportSinceCarriesLaterRefundsOfEarlierCheckouts) {
  auto dir = FreshDir("ctl_refund_since");
  AgentProcess a(dir);
  a.Start();
  int64_t now = static_cast<int64_t>(::time(nullptr));
  json early =
      Commit(a, "co-early", MintCode(kDynamicMember, now - 1),
             json::array(
                 {{{"sku", "E"}, {"qty", 2}, {"unit_price_cents", 4000}, {"category", "grocery"}}}),
             "card");
  // `since` falls after the early checkout's commit.
  int64_t since_s = *ParseRfc3339(early["committed_at"].get<std::string>()) + 1;
  while (static_cast<int64_t>(::time(nullptr)) < since_s)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto rf = a.Post("/v1/refunds", {{"refund_id", "rf-late"},
                                   {"checkout_id", "co-early"},
                                   {"lines", json::array({{{"line", 0}, {"qty", 1}}})}});
  ASSERT_EQ(rf.status, 200) << rf.raw;
  Commit(a, "co-late", std::nullopt,
         json::array({{{"sku", "L"}, {"qty", 1}, {"unit_price_cents", 300}}}), "cash");
  std::string since = FormatRfc3339(since_s);
  Ctl r = RunCtl({"--config", a.config_path(), "export", "--since", since, "--format", "json"});
  ASSERT_EQ(r.exit, 0) << r.err;
  json body = json::parse(r.out);
  std::vector<std::string> kinds;
  for (const auto& rec : body["records"]) {
    kinds.push_back(rec["record"].get<std::string>() + ":" + rec.value("checkout_id", ""));
    if (rec["record"] == "refund_line") {
      EXPECT_EQ(rec["sku"], "E");  // named from the early checkout's lines
      EXPECT_EQ(rec["qty"], 1);
    }
    if (rec["record"] == "entry" && rec["checkout_id"] == "co-early") {
      EXPECT_EQ(rec["refund_id"], "rf-late");  // the refund's entries only, not the sale's
    }
  }
  std::vector<std::string> want = {"checkout:co-late", "line:co-late", "refund:co-early",
                                   "refund_line:co-early"};
  for (size_t i = 0; i < rf.body["entries"].size(); ++i) want.push_back("entry:co-early");
  EXPECT_EQ(kinds, want) << r.out;
  // From before the early sale, the refund comes once, under its checkout.
  Ctl all = RunCtl({"--config", a.config_path(), "export", "--since", FormatRfc3339(now - 60),
                    "--format", "json"});
  ASSERT_EQ(all.exit, 0) << all.err;
  int refunds = 0;
  json all_body = json::parse(all.out);
  for (const auto& rec : all_body["records"]) refunds += rec["record"] == "refund";
  EXPECT_EQ(refunds, 1);
  EXPECT_EQ(a.Stop(), 0);
  std::filesystem::remove_all(dir);
}

// A return of another terminal's sale (docs/pos-api.md, "Returns anywhere"), made here
// from the receipt's return token: exported with the day's refunds, naming the selling
// terminal and the cashier; the sale itself is in the other terminal's export.
TEST(CtlStandalone, ExportCarriesAReturnOfAnotherTerminalsSale) {
  auto dir = FreshDir("ctl_foreign_refund");
  AgentProcess a(dir);
  a.Start();
  const std::string hq_seed = *HexDecode(kHqSeedHex), other_seed(32, '\x44');
  const std::string cert = codes::MakeReceiptKeyCert(
      hq_seed, 1, "T-OTHER", codes::ReceiptPublicKey(other_seed), 1893456000);
  codes::ReturnBasis sale;
  sale.checkout_id = "co-1";  // the same id as a sale of this terminal: kept apart
  sale.member_id = kDynamicMember;
  sale.committed_at_ms = (static_cast<int64_t>(::time(nullptr)) - 60) * 1000;
  sale.rules_version = "default";
  sale.points_earned = 20;
  sale.eligible_cents = 2000;
  sale.redeemable_cents = 2000;
  sale.lines = {{2, 2000, 2000, true, true}};
  const std::string token = codes::MakeReturnToken(cert, other_seed, sale);
  ASSERT_FALSE(token.empty());
  auto rf = a.Post("/v1/refunds", {{"refund_id", "rf-other"},
                                   {"checkout_id", "co-1"},
                                   {"receipt", token},
                                   {"cashier_id", "k-9"},
                                   {"lines", json::array({{{"line", 0}, {"qty", 1}}})}});
  ASSERT_EQ(rf.status, 200) << rf.raw;
  EXPECT_EQ(rf.body["sold_at"], "T-OTHER");
  EXPECT_EQ(rf.body["points_clawed_back"], 10);
  Ctl r = RunCtl({"--config", a.config_path(), "export", "--since",
                  FormatRfc3339(static_cast<int64_t>(::time(nullptr)) - 600), "--format", "json"});
  ASSERT_EQ(r.exit, 0) << r.err;
  json body = json::parse(r.out);
  int refunds = 0, entries = 0;
  for (const auto& rec : body["records"]) {
    if (rec["record"] == "refund") {
      ++refunds;
      EXPECT_EQ(rec["refund_id"], "rf-other");
      EXPECT_EQ(rec["sold_at"], "T-OTHER");
      EXPECT_EQ(rec["cashier_id"], "k-9");
      EXPECT_EQ(rec["refund_cents"], 1000);
      EXPECT_EQ(rec["member_id"], std::to_string(kDynamicMember));
    }
    if (rec["record"] == "entry") {
      ++entries;
      EXPECT_EQ(rec["kind"], "clawback");
      EXPECT_EQ(rec["points"], -10);
    }
    EXPECT_NE(rec["record"], "checkout") << rec.dump();  // the sale is T-OTHER's to export
  }
  EXPECT_EQ(refunds, 1) << r.out;
  EXPECT_EQ(entries, 1) << r.out;
  EXPECT_EQ(a.Stop(), 0);
  std::filesystem::remove_all(dir);
}

// An entry of no checkout and no refund (a reconciliation's correction) is exported too,
// after the sales: the day's exports hold every entry of the chain.
TEST(CtlStandalone, ExportCarriesEntriesOfNoCheckoutOrRefund) {
  auto dir = FreshDir("ctl_loose_entries");
  AgentProcess a(dir);
  a.Start();
  const int64_t now = static_cast<int64_t>(::time(nullptr));
  Commit(a, "co-1", MintCode(kDynamicMember, now - 1),
         json::array({{{"sku", "A"}, {"qty", 1}, {"unit_price_cents", 1000}}}), "card");
  ASSERT_EQ(a.Stop(), 0);
  std::string correction_id;
  {
    // What a sync run's reconciliation appends when it replaces a cached balance.
    auto w = ledger::Ledger::Open(a.db_path(), ledger::Ledger::Mode::kWriter, "T01");
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE((*w)->Begin().ok());
    correction_id = NewEntryId(now * 1000);
    ledger::EntryDraft d{correction_id,
                         "correction",
                         kDynamicMember,
                         0,
                         now * 1000,
                         "",
                         "",
                         R"({"hq_balance":10,"terminal_balance":10})"};
    ASSERT_TRUE((*w)->AppendEntry(d).ok());
    ASSERT_TRUE((*w)->Commit().ok());
  }
  Ctl r = RunCtl({"--config", a.config_path(), "export", "--since", FormatRfc3339(now - 600),
                  "--format", "json"});
  ASSERT_EQ(r.exit, 0) << r.err;
  json body = json::parse(r.out);
  ASSERT_FALSE(body["records"].empty());
  const json& last = body["records"].back();
  EXPECT_EQ(last["record"], "entry") << r.out;
  EXPECT_EQ(last["kind"], "correction") << r.out;
  EXPECT_EQ(last["entry_id"], correction_id) << r.out;
  EXPECT_EQ(last["points"], 0) << r.out;
  EXPECT_FALSE(last.contains("checkout_id") && !last["checkout_id"].get<std::string>().empty());
  // Every entry of the ledger is in the export exactly once.
  int entries = 0;
  for (const auto& rec : body["records"]) entries += rec["record"] == "entry";
  Ctl v = RunCtl({"--config", a.config_path(), "verify", "--json"});
  EXPECT_EQ(v.exit, 0) << v.err;
  EXPECT_EQ(entries, 2) << r.out;  // the sale's earn and the correction
  // A later --since leaves it out with the sale.
  Ctl later = RunCtl({"--config", a.config_path(), "export", "--since", FormatRfc3339(now + 600),
                      "--format", "csv"});
  ASSERT_EQ(later.exit, 0) << later.err;
  EXPECT_EQ(later.out.find(correction_id), std::string::npos) << later.out;
  std::filesystem::remove_all(dir);
}

TEST(CtlStandalone, UnreachableDaemon) {
  auto dir = FreshDir("ctl_unreachable");
  auto cfg = WriteConfigAt(dir, FreePort()).string();
  for (auto args : std::vector<std::vector<std::string>>{
           {"status"}, {"member", "1"}, {"scan", "x"}, {"sync"}}) {
    args.insert(args.begin(), {"--config", cfg});
    Ctl r = RunCtl(args);
    EXPECT_EQ(r.exit, 4) << args[2] << ": " << r.err;
    ExpectOneLineError(r);
    EXPECT_NE(r.err.find("cannot reach loyaltyd at 127.0.0.1:"), std::string::npos) << r.err;
  }
  // The file commands need no daemon, but they do need the file.
  Ctl v = RunCtl({"--config", cfg, "verify"});
  EXPECT_EQ(v.exit, 7) << v.err;
  ExpectOneLineError(v);
  EXPECT_NE(v.err.find("ledger.db"), std::string::npos) << v.err;
  std::filesystem::remove_all(dir);
}

TEST(CtlStandalone, ConfigErrors) {
  auto dir = FreshDir("ctl_config");
  Ctl missing = RunCtl({"--config", (dir / "nope.toml").string(), "status"});
  EXPECT_EQ(missing.exit, 3);
  ExpectOneLineError(missing);

  auto cfg = WriteConfigAt(dir, FreePort()).string();
  ::chmod((dir / "api.token").c_str(), 0644);  // world-readable: refused
  Ctl token = RunCtl({"--config", cfg, "member", "1"});
  EXPECT_EQ(token.exit, 3) << token.err;
  ExpectOneLineError(token);
  // Said as loyaltyd says it: the config, the key, the file, the reason.
  EXPECT_NE(
      token.err.find(cfg + ": api.token_file: " + (dir / "api.token").string() + ": has mode 0644"),
      std::string::npos)
      << token.err;

  {
    std::ofstream c(cfg, std::ios::app);
    c << "[bogus]\nkey = 1\n";
  }
  Ctl invalid = RunCtl({"--config", cfg, "verify"});
  EXPECT_EQ(invalid.exit, 3);
  ExpectOneLineError(invalid);
  EXPECT_NE(invalid.err.find("bogus"), std::string::npos) << invalid.err;
  std::filesystem::remove_all(dir);
}

// A ledger path that names a fifo (whose open would block for ever), a folder or a device is
// a config error, said at once with the config, the key, the path and the reason (exit 3),
// by verify (which reads the file) and by a command that does not.
TEST(CtlStandalone, ALedgerThatIsNotARegularFileIsAConfigErrorAtOnce) {
  auto dir = FreshDir("ctl_not_regular");
  auto cfg = WriteConfigAt(dir, FreePort()).string();
  const std::string fifo = (dir / "pipe").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::filesystem::create_directory(dir / "folder");
  const std::string text = ReadFile(cfg);
  for (const std::string& db : {fifo, (dir / "folder").string(), std::string("/dev/zero")}) {
    std::string with = text;
    const std::string key = "database = \"ledger.db\"";
    with.replace(with.find(key), key.size(), "database = \"" + db + "\"");
    WriteFile(cfg, with);
    for (const std::string cmd : {"verify", "status"}) {
      const std::string out = (dir / "ctl.out").string();
      std::filesystem::remove(out);
      const pid_t pid =
          Spawn({std::string(LOYALTY_BINARY_DIR) + "/ctl/loyaltyctl", "--config", cfg, cmd}, out);
      const int st = ReapWithin(pid, 5000);  // -2: still running (blocked on the file)
      if (st == -2) SignalAndReap(pid, SIGKILL);
      EXPECT_EQ(st, 3) << db << " " << cmd << ": " << ReadFile(out);
      EXPECT_NE(ReadFile(out).find(cfg + ": agent.database: " + db + ": not a regular file"),
                std::string::npos)
          << ReadFile(out);
    }
  }
  EXPECT_FALSE(std::filesystem::exists("/dev/zero.lock"));
  EXPECT_FALSE(std::filesystem::exists("/dev/zero-journal"));
  std::filesystem::remove_all(dir);
}

void Exec(const std::string& db, const std::string& sql) {
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
  char* msg = nullptr;
  int rc = sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &msg);
  EXPECT_EQ(rc, SQLITE_OK) << (msg ? msg : "");
  sqlite3_free(msg);
  EXPECT_GT(sqlite3_changes(h), 0) << sql;
  sqlite3_close(h);
}

TEST(CtlStandalone, VerifyFindsATamperedEntryWithTheDaemonDown) {
  auto dir = FreshDir("ctl_tamper");
  AgentProcess a(dir);
  a.Start();
  int64_t now = static_cast<int64_t>(::time(nullptr));
  Commit(a, "co-t1", MintCode(kDynamicMember, now - 1),
         json::array({{{"sku", "X"}, {"qty", 1}, {"unit_price_cents", 10000}}}), "cash");
  Commit(a, "co-t2", MintCode(kDynamicMember, now - 2),
         json::array({{{"sku", "Y"}, {"qty", 1}, {"unit_price_cents", 20000}}}), "cash");
  ASSERT_EQ(a.Stop(), 0);

  Ctl ok = RunCtl({"--config", a.config_path(), "verify"});
  ASSERT_EQ(ok.exit, 0) << ok.err << ok.out;
  Ctl listed = RunCtl({"--config", a.config_path(), "checkouts", "--since", "2000-01-01"});
  ASSERT_EQ(listed.exit, 0) << listed.err;  // the file commands work with the daemon down
  EXPECT_NE(listed.out.find("co-t2"), std::string::npos);

  // Someone adds points to the first entry.
  Exec(a.db_path(), "UPDATE entries SET points = points + 1000 WHERE seq = 1");
  Ctl bad = RunCtl({"--config", a.config_path(), "verify"});
  EXPECT_EQ(bad.exit, 8) << bad.out << bad.err;
  ExpectOneLineError(bad);
  EXPECT_NE(bad.err.find("verify found 1 problem"), std::string::npos) << bad.err;
  EXPECT_NE(bad.out.find("problem: entry seq 1"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("does not match its hash"), std::string::npos) << bad.out;

  // And a cached balance that no longer equals its lots.
  Exec(a.db_path(), "UPDATE members SET balance = balance + 5 WHERE member_id = " +
                        std::to_string(kDynamicMember));
  Ctl worse = RunCtl({"--config", a.config_path(), "verify", "--json"});
  EXPECT_EQ(worse.exit, 8);
  json body = json::parse(worse.out);
  EXPECT_EQ(body["ok"], false);
  ASSERT_EQ(body["problems"].size(), 2u) << worse.out;
  EXPECT_NE(body["problems"][1].get<std::string>().find("but its lots sum to"), std::string::npos)
      << worse.out;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace loyalty::testing
