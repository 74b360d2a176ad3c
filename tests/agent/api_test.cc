// The POS API end to end: a real loyaltyd process, real HTTP on loopback, a real SQLite
// file. After every refused request the ledger is checked to be unchanged.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <sstream>
#include <thread>

#include "harness.h"
#include "loyalty/base/hash.h"
#include "loyalty/base/ids.h"

namespace loyalty::testing {
namespace {

using nlohmann::json;

constexpr uint64_t kDynamicMember = 1234567890123;  // the vectors' certificate member

json Basket() {
  return json::array(
      {{{"sku", "A"}, {"qty", 2}, {"unit_price_cents", 1990}, {"category", "grocery"}},
       {{"sku", "B"}, {"qty", 1}, {"unit_price_cents", 12900}, {"category", "beauty"}},
       {{"sku", "C"}, {"qty", 1}, {"unit_price_cents", 3500}, {"category", "tobacco"}}});
}

struct LedgerState {
  int64_t entries = 0, checkouts = 0, refunds = 0, members = 0, lots_sum = 0, bindings = 0,
          coupons_used = 0;
  bool operator==(const LedgerState&) const = default;
};

LedgerState Snapshot(AgentProcess& a) {
  auto l = a.OpenLedger(ledger::Ledger::Mode::kReader);
  LedgerState s;
  auto q = [&](const char* sql) {
    auto st = l->db().Prepare(sql);
    return (*st)->Step() ? (*st)->Int(0) : -1;
  };
  s.entries = q("SELECT count(*) FROM entries");
  s.checkouts = q("SELECT count(*) FROM checkouts");
  s.refunds = q("SELECT count(*) FROM refunds");
  s.members = q("SELECT count(*) FROM members");
  s.lots_sum = q("SELECT coalesce(sum(remaining),0) FROM lots");
  s.bindings = q("SELECT count(*) FROM code_bindings");
  s.coupons_used = q("SELECT count(*) FROM coupons WHERE used_by_checkout <> ''");
  EXPECT_TRUE(l->Verify().ok());
  return s;
}

class AgentApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  void TearDown() override {
    if (agent_) {
      // Every scenario's log: catalogued events only, and no personal data or member code
      // in clear (codes are logged as short hashes; the terminal never holds a full phone).
      std::string log = agent_->ReadLog();
      EXPECT_EQ(log.find("log_event_uncatalogued"), std::string::npos) << log;
      EXPECT_EQ(log.find("LM1:"), std::string::npos) << "a member code in the log";
      EXPECT_EQ(log.find("13812345678"), std::string::npos) << "a phone number in the log";
      EXPECT_EQ(log.find("100000000007"), std::string::npos) << "a channel card number in the log";
    }
    agent_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }
  AgentProcess& Start(std::string extra = "", std::string rules = "") {
    agent_ = std::make_unique<AgentProcess>(dir_, extra, rules);
    agent_->Start();
    return *agent_;
  }
  std::filesystem::path dir_;
  std::unique_ptr<AgentProcess> agent_;
};

TEST_F(AgentApiTest, IdentifyQuoteCommitAndMemberView) {
  auto& a = Start();
  auto health = a.Call("GET", "/v1/health", "", /*auth=*/false);
  ASSERT_EQ(health.status, 200) << health.raw;
  EXPECT_EQ(health.body["terminal_id"], "T01");
  EXPECT_EQ(health.body["ledger"]["entries"], 0);
  // HEAD is GET without the body: no token either (a load balancer's or monitor's probe).
  auto head = a.Call("HEAD", "/v1/health", "", /*auth=*/false);
  EXPECT_EQ(head.status, 200) << head.raw;
  EXPECT_EQ(a.Call("HEAD", "/v1/members/1", "", /*auth=*/false).status, 401);

  std::string code = MintCode(kDynamicMember);
  auto id = a.Post("/v1/identify", {{"code", code}});
  ASSERT_EQ(id.status, 200) << id.raw;
  EXPECT_EQ(id.body["identification"]["kind"], "dynamic");
  EXPECT_EQ(id.body["member"]["member_id"], std::to_string(kDynamicMember));
  EXPECT_EQ(id.body["member"]["snapshot_at"], nullptr);  // provisional: HQ has not sent it
  EXPECT_EQ(id.body["member"]["stale"], true);
  EXPECT_EQ(id.body["member"]["display_name"], nullptr);
  std::string ident = id.body["identification"]["id"];

  json req{{"checkout_id", "co-1"}, {"identification_id", ident}, {"lines", Basket()}};
  auto quote = a.Post("/v1/checkouts/quote", req);
  ASSERT_EQ(quote.status, 200) << quote.raw;
  EXPECT_EQ(quote.body["subtotal_cents"], 20380);
  EXPECT_EQ(quote.body["total_due_cents"], 20380);
  EXPECT_EQ(quote.body["eligible_cents"], 16880);
  EXPECT_EQ(quote.body["points_to_earn"], 168);
  EXPECT_EQ(Snapshot(a).entries, 0);  // a quote changes nothing

  req["rules_version"] = quote.body["rules_version"];
  req["tender"] = "wechat";
  auto commit = a.Post("/v1/checkouts/commit", req);
  ASSERT_EQ(commit.status, 200) << commit.raw;
  EXPECT_EQ(commit.body["points_to_earn"], 168);
  EXPECT_EQ(commit.body["balance_after"], 168);
  ASSERT_EQ(commit.body["entries"].size(), 1u);
  EXPECT_FALSE(commit.body["receipt_lines"].empty());
  EXPECT_TRUE(commit.body.contains("committed_at"));

  auto member = a.Get("/v1/members/" + std::to_string(kDynamicMember));
  ASSERT_EQ(member.status, 200) << member.raw;
  EXPECT_EQ(member.body["balance"], 168);
  EXPECT_EQ(member.body["available_balance"], 168);
  ASSERT_EQ(member.body["lots"].size(), 1u);
  EXPECT_EQ(member.body["lots"][0]["points"], 168);
  ASSERT_EQ(member.body["recent_entries"].size(), 1u);
  EXPECT_EQ(member.body["recent_entries"][0]["kind"], "earn");
  EXPECT_EQ(member.body["recent_entries"][0]["checkout_id"], "co-1");

  auto co = a.Get("/v1/checkouts/co-1");
  ASSERT_EQ(co.status, 200);
  EXPECT_EQ(co.body["total_due_cents"], 20380);
  EXPECT_EQ(co.body["refunds"].size(), 0u);

  // The code is now bound to co-1: identify refuses it, and so does any other checkout.
  auto bound = a.Post("/v1/identify", {{"code", code}});
  EXPECT_EQ(bound.status, 422);
  EXPECT_EQ(bound.body["error"]["code"], "code_replayed");
  json other{{"checkout_id", "co-2"}, {"identification_id", ident}, {"lines", Basket()}};
  auto replay = a.Post("/v1/checkouts/commit", other);
  EXPECT_EQ(replay.status, 422);
  EXPECT_EQ(replay.body["error"]["code"], "code_replayed");
  EXPECT_EQ(a.Stop(), 0);
  auto st = Snapshot(a);
  EXPECT_EQ(st.entries, 1);
  EXPECT_EQ(st.checkouts, 1);
  EXPECT_EQ(st.lots_sum, 168);
}

// What a POS puts in a request path reaches the log only as a short hash when it is not a
// plain name: a phone or card number typed where a member id goes, a member code pasted
// into a checkout's path (TearDown checks the log holds none of them in clear).
TEST_F(AgentApiTest, IdsAndCodesInARequestPathAreLoggedAsShortHashes) {
  auto& a = Start();
  const std::string code = MintCode(kDynamicMember);
  EXPECT_EQ(a.Get("/v1/members/13812345678").status, 404);
  EXPECT_EQ(a.Get("/v1/members/100000000007").status, 404);
  EXPECT_EQ(a.Get("/v1/members/" + code).status, 400);
  EXPECT_EQ(a.Get("/v1/checkouts/" + code).status, 400);
  EXPECT_EQ(a.Call("GET", "/v1/members/" + code, "", /*auth=*/false).status, 401);
  auto r = a.Get("/v1/checkouts/c-unknown-1");
  EXPECT_EQ(r.status, 404);
  const std::string log = a.ReadLog();
  for (const std::string& seen :
       {"/v1/members/~" + ShortHash("13812345678"), "/v1/members/~" + ShortHash("100000000007"),
        "/v1/members/~" + ShortHash(code), "/v1/checkouts/~" + ShortHash(code),
        std::string("/v1/checkouts/c-unknown-1")})
    EXPECT_NE(log.find(seen), std::string::npos) << seen << "\n" << log;
  EXPECT_NE(log.find("request_unauthorized"), std::string::npos) << log;
}

TEST_F(AgentApiTest, CommitIsIdempotentAndConflictsOnADifferentBody) {
  auto& a = Start();
  std::string code = MintCode(kDynamicMember);
  json req{
      {"checkout_id", "co-idem"}, {"member_code", code}, {"lines", Basket()}, {"tender", "cash"}};
  auto first = a.Post("/v1/checkouts/commit", req);
  ASSERT_EQ(first.status, 200) << first.raw;
  // The same JSON value with another key order and spacing.
  std::string reordered = "{ \"tender\": \"cash\", \"lines\": " + Basket().dump(2) +
                          ", \"member_code\": \"" + code + "\", \"checkout_id\": \"co-idem\" }";
  auto second = a.Call("POST", "/v1/checkouts/commit", reordered);
  ASSERT_EQ(second.status, 200) << second.raw;
  EXPECT_EQ(second.body, first.body);
  // And with its integers written with an exponent or a fraction (1990E0, 2.0).
  std::string floats = req.dump();
  for (auto [from, to] : {std::pair{"1990", "1990E0"}, std::pair{"\"qty\":2", "\"qty\":2.0"}}) {
    const size_t at = floats.find(from);
    ASSERT_NE(at, std::string::npos) << floats;
    floats.replace(at, std::string(from).size(), to);
  }
  auto third = a.Call("POST", "/v1/checkouts/commit", floats);
  ASSERT_EQ(third.status, 200) << third.raw;
  EXPECT_EQ(third.body, first.body);
  // Not an integer: another body.
  std::string half = req.dump();
  half.replace(half.find("1990"), 4, "1990.5");
  EXPECT_EQ(a.Call("POST", "/v1/checkouts/commit", half).status, 409);
  auto before = Snapshot(a);
  req["tender"] = "card";
  auto conflict = a.Post("/v1/checkouts/commit", req);
  EXPECT_EQ(conflict.status, 409);
  EXPECT_EQ(conflict.body["error"]["code"], "idempotency_conflict");
  EXPECT_EQ(Snapshot(a), before);
  EXPECT_EQ(before.entries, 1);
}

TEST_F(AgentApiTest, RefundsInPartsEqualTheWhole) {
  auto& a = Start();
  a.Stop();
  {
    auto l = a.OpenLedger();
    SeedMember(*l, kDynamicMember, "vip", 3050, ::time(nullptr));
  }
  a.Start();
  // The spec's worked example "vip + redeem 3000, balance 3050": due 16536, 195 points.
  json req{{"checkout_id", "co-r"},
           {"member_code", MintCode(kDynamicMember)},
           {"lines", Basket()},
           {"redeem_points", 3000}};
  auto commit = a.Post("/v1/checkouts/commit", req);
  ASSERT_EQ(commit.status, 200) << commit.raw;
  EXPECT_EQ(commit.body["tier_discount_cents"], 844);
  EXPECT_EQ(commit.body["total_due_cents"], 16536);
  EXPECT_EQ(commit.body["points_to_earn"], 195);
  EXPECT_EQ(commit.body["balance_after"], 3050 - 3000 + 195);
  int64_t earned = commit.body["points_to_earn"];
  int64_t due = commit.body["total_due_cents"];

  int64_t cents = 0, clawed = 0, restored = 0;
  auto r1 = a.Post(
      "/v1/refunds",
      {{"refund_id", "r1"}, {"checkout_id", "co-r"}, {"lines", {{{"line", 0}, {"qty", 1}}}}});
  ASSERT_EQ(r1.status, 200) << r1.raw;
  auto r2 =
      a.Post("/v1/refunds", {{"refund_id", "r2"},
                             {"checkout_id", "co-r"},
                             {"lines", {{{"line", 1}, {"qty", 1}}, {{"line", 0}, {"qty", 1}}}}});
  ASSERT_EQ(r2.status, 200) << r2.raw;
  auto r3 =
      a.Post("/v1/refunds", {{"refund_id", "r3"}, {"checkout_id", "co-r"}, {"reason", "void"}});
  ASSERT_EQ(r3.status, 200) << r3.raw;
  for (auto* r : {&r1, &r2, &r3}) {
    cents += r->body["refund_cents"].get<int64_t>();
    clawed += r->body["points_clawed_back"].get<int64_t>();
    restored += r->body["points_restored"].get<int64_t>();
  }
  EXPECT_EQ(cents, due);
  EXPECT_EQ(clawed, earned);
  EXPECT_EQ(restored, 3000);
  EXPECT_EQ(r3.body["balance_after"], 3050);

  auto before = Snapshot(a);
  auto over = a.Post(
      "/v1/refunds",
      {{"refund_id", "r4"}, {"checkout_id", "co-r"}, {"lines", {{{"line", 0}, {"qty", 1}}}}});
  EXPECT_EQ(over.status, 422);
  EXPECT_EQ(over.body["error"]["code"], "refund_exceeds_sale");
  auto replay = a.Post(
      "/v1/refunds",
      {{"refund_id", "r1"}, {"checkout_id", "co-r"}, {"lines", {{{"line", 0}, {"qty", 1}}}}});
  EXPECT_EQ(replay.status, 200);
  EXPECT_EQ(replay.body, r1.body);
  auto co = a.Get("/v1/checkouts/co-r");
  EXPECT_EQ(co.body["refunds"].size(), 3u);
  EXPECT_EQ(Snapshot(a), before);
}

TEST_F(AgentApiTest, RedemptionCapsAndCooldown) {
  auto& a = Start();
  a.Stop();
  {
    auto l = a.OpenLedger();
    SeedMember(*l, 7, "vip", 20000, ::time(nullptr));
    SeedMember(*l, 8, "member", 20000, ::time(nullptr) - 3 * 3600);  // stale snapshot
    ASSERT_TRUE(l->PutIdentity("wechat", "100000000007", 7).ok());
    ASSERT_TRUE(l->PutIdentity("wechat", "100000000008", 8).ok());
  }
  a.Start();
  // A channel card cannot redeem (static_codes_can_redeem = false).
  auto refused = a.Post("/v1/checkouts/quote", {{"checkout_id", "q1"},
                                                {"member_code", "100000000007"},
                                                {"lines", Basket()},
                                                {"redeem_points", 100}});
  EXPECT_EQ(refused.status, 422);
  EXPECT_EQ(refused.body["error"]["code"], "static_code_cannot_redeem");
  auto max_static = a.Post("/v1/checkouts/quote", {{"checkout_id", "q1"},
                                                   {"member_code", "100000000007"},
                                                   {"lines", Basket()},
                                                   {"redeem_points", "max"}});
  ASSERT_EQ(max_static.status, 200) << max_static.raw;
  EXPECT_EQ(max_static.body["redeem_points"], 0);  // "max" is never refused
  a.Stop();
  // The same members enrolled with a dynamic code: re-key member 7's snapshot under the vectors'
  // member.
  {
    auto l = a.OpenLedger();
    SeedMember(*l, kDynamicMember, "vip", 20000, ::time(nullptr));
  }
  a.Start();
  json req{{"checkout_id", "c1"},
           {"member_code", MintCode(kDynamicMember)},
           {"lines", Basket()},
           {"redeem_points", "max"}};
  auto q = a.Post("/v1/checkouts/quote", req);
  ASSERT_EQ(q.status, 200) << q.raw;
  // 50 % of the redeemable 16036 → 8018 cents → 8000 points after the step.
  EXPECT_EQ(q.body["max_redeem_points"], 8000);
  EXPECT_EQ(q.body["redeem_points"], 8000);
  json over = req;
  over["redeem_points"] = 8100;
  auto o = a.Post("/v1/checkouts/quote", over);
  EXPECT_EQ(o.status, 422);
  EXPECT_EQ(o.body["error"]["code"], "redeem_not_allowed");
  json step = req;
  step["redeem_points"] = 150;
  EXPECT_EQ(a.Post("/v1/checkouts/quote", step).body["error"]["code"], "redeem_not_allowed");
  auto c = a.Post("/v1/checkouts/commit", req);
  ASSERT_EQ(c.status, 200) << c.raw;
  EXPECT_EQ(c.body["redeem_points"], 8000);
  // Within the cooldown, the next redemption is refused; a checkout without one is fine.
  json next{{"checkout_id", "c2"},
            {"member_code", MintCode(kDynamicMember, ::time(nullptr) - 1)},
            {"lines", Basket()},
            {"redeem_points", 100}};
  auto cd = a.Post("/v1/checkouts/commit", next);
  EXPECT_EQ(cd.status, 422) << cd.raw;
  EXPECT_EQ(cd.body["error"]["code"], "redeem_cooldown");
  next["redeem_points"] = 0;
  EXPECT_EQ(a.Post("/v1/checkouts/commit", next).status, 200);
}

TEST_F(AgentApiTest, StaleSnapshotCapsRedemption) {
  auto& a = Start();
  a.Stop();
  {
    auto l = a.OpenLedger();
    SeedMember(*l, kDynamicMember, "vip", 20000, ::time(nullptr) - 3 * 3600);
  }
  a.Start();
  auto q = a.Post("/v1/checkouts/quote", {{"checkout_id", "s1"},
                                          {"member_code", MintCode(kDynamicMember)},
                                          {"lines", Basket()},
                                          {"redeem_points", "max"}});
  ASSERT_EQ(q.status, 200) << q.raw;
  EXPECT_EQ(q.body["member"]["stale"], true);
  EXPECT_EQ(q.body["max_redeem_points"], 2000);
}

TEST_F(AgentApiTest, VelocityFreezesAtTheCrossingCommit) {
  auto& a = Start();
  json big = json::array(
      {{{"sku", "TV"}, {"qty", 1}, {"unit_price_cents", 300000}, {"category", "electronics"}}});
  // Each commit earns 3000 points; the second crosses 5000 in the hour.
  auto c1 =
      a.Post("/v1/checkouts/commit",
             {{"checkout_id", "v1"}, {"member_code", MintCode(kDynamicMember)}, {"lines", big}});
  ASSERT_EQ(c1.status, 200) << c1.raw;
  EXPECT_EQ(c1.body["member"]["status"], "active");
  auto c2 = a.Post("/v1/checkouts/commit",
                   {{"checkout_id", "v2"},
                    {"member_code", MintCode(kDynamicMember, ::time(nullptr) - 1)},
                    {"lines", big}});
  ASSERT_EQ(c2.status, 200) << c2.raw;
  EXPECT_EQ(c2.body["points_to_earn"], 3000);  // the sale happened: its points are recorded
  EXPECT_EQ(c2.body["member"]["status"], "frozen");
  EXPECT_EQ(c2.body["member"]["frozen_reason"], "velocity");
  ASSERT_EQ(c2.body["entries"].size(), 2u);  // earn + freeze
  auto c3 = a.Post("/v1/checkouts/commit",
                   {{"checkout_id", "v3"},
                    {"member_code", MintCode(kDynamicMember, ::time(nullptr) - 2)},
                    {"lines", big}});
  ASSERT_EQ(c3.status, 200);
  EXPECT_EQ(c3.body["points_to_earn"], 0);  // frozen members earn nothing
  auto r =
      a.Post("/v1/checkouts/quote", {{"checkout_id", "v4"},
                                     {"member_code", MintCode(kDynamicMember, ::time(nullptr) - 3)},
                                     {"lines", big},
                                     {"redeem_points", 100}});
  EXPECT_EQ(r.body["error"]["code"], "member_frozen");
  auto log = a.ReadLog();
  EXPECT_NE(log.find("\"event\":\"member_frozen\""), std::string::npos);
}

// operations.md's event catalogue: sync_started names its run and what started it.
TEST_F(AgentApiTest, ARunStartedThroughTheApiLogsItsTrigger) {
  auto& a = Start();
  auto started = a.Post("/v1/sync", json::object());
  ASSERT_EQ(started.status, 202) << started.raw;
  const std::string run_id = started.body["run_id"];
  json line;
  for (int i = 0; i < 200 && line.is_null(); ++i) {
    std::istringstream log(a.ReadLog());
    for (std::string l; std::getline(log, l);) {
      auto j = json::parse(l, nullptr, false);
      if (j.is_object() && j.value("event", "") == "sync_started") line = j;
    }
    if (line.is_null()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(line.is_null()) << a.ReadLog();
  EXPECT_EQ(line["run_id"], run_id) << line.dump();
  EXPECT_EQ(line["trigger"], "api") << line.dump();
}

// pos-api.md: a run ends, ok or failed. One whose record the ledger cannot take (here the
// ledger's write lock held past the busy timeout; a full disk is the same) is still listed
// by GET /v1/sync and makes health's sync `failing`, so `loyaltyctl sync --wait` ends.
TEST_F(AgentApiTest, ARunTheLedgerCouldNotRecordIsStillReported) {
  auto& a = Start();  // no [hq] url: the run fails at once (hq_unconfigured)
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(a.db_path().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  auto started = a.Post("/v1/sync", json::object());
  ASSERT_EQ(started.status, 202) << started.raw;
  const std::string run_id = started.body["run_id"];
  json run;
  for (int i = 0; i < 300 && run.is_null(); ++i) {  // the record waits out the busy timeout
    auto view = a.Get("/v1/sync");
    ASSERT_EQ(view.status, 200) << view.raw;
    for (const auto& r : view.body["last_runs"])
      if (r["run_id"] == run_id) run = r;
    if (run.is_null()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(run.is_null()) << a.ReadLog();
  EXPECT_EQ(run["result"], "failed");
  EXPECT_NE(run["error"].get<std::string>().find("hq_unconfigured"), std::string::npos) << run;
  auto health = a.Get("/v1/health");
  EXPECT_EQ(health.body["sync"]["state"], "failing") << health.raw;
  EXPECT_FALSE(health.body["sync"]["last_error"].is_null()) << health.raw;
  EXPECT_FALSE(health.body["sync"]["last_attempt_at"].is_null()) << health.raw;
  EXPECT_NE(a.ReadLog().find("\"event\":\"sync_failed\""), std::string::npos);
  sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(db);
}

TEST_F(AgentApiTest, RulesVersionIsPinnedBetweenQuoteAndCommit) {
  auto& a = Start("", "version = \"2026-11-a\"\n");
  json req{{"checkout_id", "rv"}, {"lines", Basket()}};
  auto q = a.Post("/v1/checkouts/quote", req);
  ASSERT_EQ(q.status, 200) << q.raw;
  EXPECT_EQ(q.body["rules_version"], "2026-11-a");
  req["rules_version"] = "2026-10-z";
  auto c = a.Post("/v1/checkouts/commit", req);
  EXPECT_EQ(c.status, 409);
  EXPECT_EQ(c.body["error"]["code"], "rules_changed");
  req["rules_version"] = "2026-11-a";
  auto ok = a.Post("/v1/checkouts/commit", req);
  ASSERT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body["balance_after"], nullptr);  // no member: no entries
  EXPECT_EQ(ok.body["entries"].size(), 0u);
}

TEST_F(AgentApiTest, BadInputIsRefusedWithItsCodeAndChangesNothing) {
  auto& a = Start();
  // Some state to protect.
  ASSERT_EQ(a.Post("/v1/checkouts/commit", {{"checkout_id", "base"},
                                            {"member_code", MintCode(kDynamicMember)},
                                            {"lines", Basket()}})
                .status,
            200);
  auto before = Snapshot(a);

  struct Case {
    std::string name, method, target, body;
    bool auth;
    int status;
    std::string code;
  };
  std::string code = MintCode(kDynamicMember, ::time(nullptr) - 5);
  auto commit = [](json j) { return j.dump(); };
  json good{{"checkout_id", "n1"}, {"lines", Basket()}};
  std::vector<Case> cases = {
      {"no token", "POST", "/v1/checkouts/commit", commit(good), false, 401, "unauthorized"},
      // member-codes.md: a scan longer than 4096 bytes is code_malformed, wherever it comes.
      {"member_code of 4097 bytes", "POST", "/v1/checkouts/commit",
       commit(
           {{"checkout_id", "n1"}, {"member_code", std::string(4097, '1')}, {"lines", Basket()}}),
       true, 422, "code_malformed"},
      {"member_code of 4097 bytes at quote", "POST", "/v1/checkouts/quote",
       commit({{"checkout_id", "n1"},
               {"member_code", "LM1." + std::string(4093, 'A')},
               {"lines", Basket()}}),
       true, 422, "code_malformed"},
      {"malformed json", "POST", "/v1/checkouts/commit", "{\"checkout_id\": ", true, 400,
       "bad_request"},
      {"not an object", "POST", "/v1/checkouts/commit", "[1,2]", true, 400, "bad_request"},
      {"invalid utf-8", "POST", "/v1/identify", "{\"code\": \"\xff\xfe\"}", true, 400,
       "bad_request"},
      {"missing lines", "POST", "/v1/checkouts/commit", commit({{"checkout_id", "n1"}}), true, 400,
       "bad_request"},
      {"qty is a string", "POST", "/v1/checkouts/commit",
       commit({{"checkout_id", "n1"},
               {"lines", {{{"sku", "A"}, {"qty", "2"}, {"unit_price_cents", 1}}}}}),
       true, 400, "bad_request"},
      {"qty 0", "POST", "/v1/checkouts/commit",
       commit({{"checkout_id", "n1"},
               {"lines", {{{"sku", "A"}, {"qty", 0}, {"unit_price_cents", 1}}}}}),
       true, 400, "bad_request"},
      {"qty 10001", "POST", "/v1/checkouts/commit",
       commit({{"checkout_id", "n1"},
               {"lines", {{{"sku", "A"}, {"qty", 10001}, {"unit_price_cents", 1}}}}}),
       true, 400, "bad_request"},
      {"price too high", "POST", "/v1/checkouts/commit",
       commit({{"checkout_id", "n1"},
               {"lines", {{{"sku", "A"}, {"qty", 1}, {"unit_price_cents", 100000001}}}}}),
       true, 400, "bad_request"},
      {"price float", "POST", "/v1/checkouts/commit",
       commit({{"checkout_id", "n1"},
               {"lines", {{{"sku", "A"}, {"qty", 1}, {"unit_price_cents", 1.5}}}}}),
       true, 400, "bad_request"},
      {"bad checkout id", "POST", "/v1/checkouts/commit",
       commit({{"checkout_id", "a b"}, {"lines", Basket()}}), true, 400, "bad_request"},
      {"bad cashier id", "POST", "/v1/checkouts/commit",
       commit({{"checkout_id", "n1"}, {"lines", Basket()}, {"cashier_id", "收银员 1"}}), true, 400,
       "bad_request"},
      {"both ident and code", "POST", "/v1/checkouts/commit",
       commit({{"checkout_id", "n1"},
               {"identification_id", "x"},
               {"member_code", code},
               {"lines", Basket()}}),
       true, 400, "bad_request"},
      {"unknown identification", "POST", "/v1/checkouts/commit",
       commit({{"checkout_id", "n1"}, {"identification_id", "nope"}, {"lines", Basket()}}), true,
       404, "not_found"},
      {"redeem without member", "POST", "/v1/checkouts/commit",
       commit({{"checkout_id", "n1"}, {"lines", Basket()}, {"redeem_points", 100}}), true, 422,
       "redeem_not_allowed"},
      {"coupon without member", "POST", "/v1/checkouts/commit",
       commit({{"checkout_id", "n1"}, {"lines", Basket()}, {"coupon_id", "C1"}}), true, 422,
       "coupon_invalid"},
      {"unknown coupon", "POST", "/v1/checkouts/commit",
       commit({{"checkout_id", "n1"},
               {"member_code", code},
               {"lines", Basket()},
               {"coupon_id", "C1"}}),
       true, 422, "coupon_invalid"},
      {"redeem over balance", "POST", "/v1/checkouts/commit",
       commit({{"checkout_id", "n1"},
               {"member_code", code},
               {"lines", Basket()},
               {"redeem_points", 1000}}),
       true, 422, "insufficient_points"},
      {"malformed code", "POST", "/v1/identify", commit({{"code", "LM1:!!!!"}}), true, 422,
       "code_malformed"},
      {"overlong code", "POST", "/v1/identify", commit({{"code", std::string(4097, 'A')}}), true,
       422, "code_malformed"},
      {"expired code", "POST", "/v1/identify",
       commit({{"code", MintCode(kDynamicMember, ::time(nullptr) - 1000)}}), true, 422,
       "code_expired"},
      {"future code", "POST", "/v1/identify",
       commit({{"code", MintCode(kDynamicMember, ::time(nullptr) + 1000)}}), true, 422,
       "code_not_yet_valid"},
      {"product barcode", "POST", "/v1/identify", commit({{"code", "6901234567892"}}), true, 422,
       "not_a_member_code"},
      {"bad card check digit", "POST", "/v1/identify", commit({{"code", "8800123456789013"}}), true,
       422, "code_malformed"},
      {"unknown card", "POST", "/v1/identify", commit({{"code", "8800123456789010"}}), true, 404,
       "member_unknown"},
      {"unknown channel id", "POST", "/v1/identify", commit({{"code", "999999999999"}}), true, 404,
       "member_unknown"},
      {"unknown member view", "GET", "/v1/members/55", "", true, 404, "member_unknown"},
      {"member id not a number", "GET", "/v1/members/abc", "", true, 400, "bad_request"},
      {"unknown checkout", "GET", "/v1/checkouts/zzz", "", true, 404, "checkout_unknown"},
      {"refund unknown checkout", "POST", "/v1/refunds",
       commit({{"refund_id", "r"}, {"checkout_id", "zzz"}, {"lines", {{{"line", 0}, {"qty", 1}}}}}),
       true, 404, "checkout_unknown"},
      {"refund line outside", "POST", "/v1/refunds",
       commit(
           {{"refund_id", "r"}, {"checkout_id", "base"}, {"lines", {{{"line", 3}, {"qty", 1}}}}}),
       true, 400, "bad_request"},
      {"refund cashier id too long", "POST", "/v1/refunds",
       commit({{"refund_id", "r"},
               {"checkout_id", "base"},
               {"cashier_id", std::string(65, 'c')},
               {"lines", {{{"line", 0}, {"qty", 1}}}}}),
       true, 400, "bad_request"},
      {"refund qty 0", "POST", "/v1/refunds",
       commit(
           {{"refund_id", "r"}, {"checkout_id", "base"}, {"lines", {{{"line", 0}, {"qty", 0}}}}}),
       true, 400, "bad_request"},
      {"refund too many", "POST", "/v1/refunds",
       commit(
           {{"refund_id", "r"}, {"checkout_id", "base"}, {"lines", {{{"line", 0}, {"qty", 3}}}}}),
       true, 422, "refund_exceeds_sale"},
      {"unknown route", "GET", "/v1/nothing", "", true, 404, "not_found"},
      {"body too large", "POST", "/v1/checkouts/commit", std::string((1 << 20) + 1, ' '), true, 413,
       "body_too_large"},
      {"body too large without a token", "POST", "/v1/checkouts/commit",
       std::string((1 << 20) + 1, ' '), false, 401, "unauthorized"},
  };
  for (const auto& c : cases) {
    auto r = a.Call(c.method, c.target, c.body, c.auth);
    EXPECT_EQ(r.status, c.status) << c.name << ": " << r.raw;
    if (r.body.is_object())
      EXPECT_EQ(r.body["error"]["code"], c.code) << c.name << ": " << r.raw;
    else
      ADD_FAILURE() << c.name << ": body is not JSON: " << r.raw;
  }
  // The replayed code: bound to "base".
  auto base_code_replay = a.Post("/v1/identify", {{"code", code}});
  EXPECT_EQ(base_code_replay.status, 200);  // not yet bound: a different code_time
  EXPECT_EQ(Snapshot(a), before);
  EXPECT_TRUE(a.Get("/v1/health").status == 200);
}

TEST_F(AgentApiTest, TokenFileMustNotBeWorldReadableAndSigtermExitsCleanly) {
  auto& a = Start();
  for (int i = 0; i < 20; ++i) {
    auto r = a.Post("/v1/checkouts/commit",
                    {{"checkout_id", "w" + std::to_string(i)}, {"lines", Basket()}});
    ASSERT_EQ(r.status, 200) << r.raw;
  }
  ASSERT_GT(std::filesystem::file_size(a.db_path() + "-wal"), 0u);
  EXPECT_EQ(a.Stop(), 0);
  // Closed cleanly (operations.md): the database file alone holds the ledger.
  std::error_code ec;
  auto wal = std::filesystem::file_size(a.db_path() + "-wal", ec);
  EXPECT_TRUE(ec || wal == 0) << wal << " bytes left in the WAL";
  // A reader inside a transaction (loyaltyctl, say) does not hold the stop past its 5 s.
  a.Start();
  ASSERT_EQ(a.Post("/v1/checkouts/commit", {{"checkout_id", "w-last"}, {"lines", Basket()}}).status,
            200);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(a.db_path().c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "BEGIN; SELECT count(*) FROM entries;", nullptr, nullptr, nullptr),
            SQLITE_OK);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(a.Stop(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  ::chmod((dir_ / "api.token").c_str(), 0644);
  std::string exe = std::string(LOYALTY_BINARY_DIR) + "/agent/loyaltyd";
  std::string cmd = exe + " --check-config --config " + a.config_path() + " > " +
                    (dir_ / "check.out").string() + " 2>&1";
  int rc = std::system(cmd.c_str());
  EXPECT_NE(rc, 0);
  ::chmod((dir_ / "api.token").c_str(), 0640);
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

// A log file the logger could not open stops --check-config as it stops the start: exit 2,
// naming log.file (a path under a regular file, a path that is a folder).
TEST_F(AgentApiTest, ALogFileThatCannotBeOpenedStopsCheckConfigAsTheStart) {
  WriteFile(dir_ / "plain", "not a folder\n");
  std::filesystem::create_directory(dir_ / "logdir");
  const std::string bad_files[] = {(dir_ / "plain" / "agent.log").string(),
                                   (dir_ / "logdir").string()};
  for (const std::string& bad : bad_files) {
    AgentProcess a(dir_, "file = \"" + bad + "\"\n");
    std::string exe = std::string(LOYALTY_BINARY_DIR) + "/agent/loyaltyd";
    const std::string out = (dir_ / "check.out").string();
    for (const std::string mode : {" --check-config", ""}) {
      std::string cmd = exe + mode + " --config " + a.config_path() + " > " + out + " 2>&1";
      int rc = std::system(cmd.c_str());
      ASSERT_TRUE(WIFEXITED(rc)) << bad << mode;
      EXPECT_EQ(WEXITSTATUS(rc), 2) << bad << mode << ": " << ReadFile(out);
      EXPECT_NE(ReadFile(out).find(a.config_path() + ": log.file: "), std::string::npos)
          << bad << mode << ": " << ReadFile(out);
    }
  }
}

}  // namespace
}  // namespace loyalty::testing
