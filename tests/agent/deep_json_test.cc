// Deep JSON against every route of a real loyaltyd (pos-api.md: bodies nest at most 32
// levels; deeper is 400 bad_request). The body that used to kill the daemon on commit and
// refund — 200 KB nested 100,000 deep — goes to every route; each answers 400 bad_request,
// nothing changes, and the daemon is still there to answer health afterwards.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "harness.h"
#include "support/json_depth.h"

namespace loyalty::testing {
namespace {

using nlohmann::json;

using loyalty::testing::NestedJson;

// Every POS API route that needs the token: method and target.
const std::vector<std::pair<std::string, std::string>> kRoutes = {
    {"POST", "/v1/identify"},
    {"POST", "/v1/checkouts/quote"},
    {"POST", "/v1/checkouts/commit"},
    {"POST", "/v1/refunds"},
    {"POST", "/v1/sync"},
    {"GET", "/v1/sync"},
    {"GET", "/v1/members/42"},
    {"GET", "/v1/checkouts/c-1"},
    {"GET", "/v1/checkouts/c-1/enrolment"},
    {"GET", "/v1/checkouts/c-1/enrolment.png"},
    {"GET", "/v1/scans?wait_ms=0"},
    {"POST", "/v1/no-such-route"},
};

class DeepJsonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    agent_ = std::make_unique<AgentProcess>(
        FreshDir(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    agent_->Start();
  }
  void TearDown() override {
    if (agent_->running()) {
      EXPECT_EQ(agent_->Stop(), 0);
    }
  }

  int64_t Entries() {
    auto r = agent_->Get("/v1/health");
    EXPECT_EQ(r.status, 200) << r.raw;
    return r.body["ledger"]["entries"].get<int64_t>();
  }

  std::unique_ptr<AgentProcess> agent_;
};

TEST_F(DeepJsonTest, AHundredThousandLevelsAreBadRequestOnEveryRouteAndTheDaemonLives) {
  const int64_t entries = Entries();
  for (bool objects : {false, true}) {
    const std::string body = NestedJson(100000, objects);
    ASSERT_GE(body.size(), 200000u);
    for (const auto& [method, target] : kRoutes) {
      auto r = agent_->Call(method, target, body);
      EXPECT_EQ(r.status, 400) << method << " " << target << ": " << r.raw;
      EXPECT_EQ(r.body["error"]["code"], "bad_request") << method << " " << target << ": " << r.raw;
      EXPECT_EQ(r.body["error"]["message"], "the body nests deeper than 32 levels")
          << method << " " << target;
    }
    // The routes without a token ignore any body; they still answer, and the daemon is alive.
    for (const char* target : {"/v1/health", "/metrics", "/status"}) {
      auto r = agent_->Call("GET", target, body, /*auth=*/false);
      EXPECT_EQ(r.status, 200) << target << ": " << r.raw;
    }
  }
  EXPECT_EQ(Entries(), entries);  // nothing changed
  EXPECT_TRUE(agent_->running());
}

TEST_F(DeepJsonTest, ThirtyTwoLevelsReachTheRouteThirtyThreeDoNot) {
  // An extra field nested to the edge: at 32 levels the route decides (whatever it answers,
  // it is not the nesting limit); at 33 the parser refuses before any route sees it.
  for (const auto& [method, target] : kRoutes) {
    for (bool objects : {false, true}) {
      // The body object is level 1; "x" holds 31 more levels (32) or 32 more (33).
      auto at_limit = agent_->Call(method, target, "{\"x\":" + NestedJson(31, objects) + "}");
      EXPECT_EQ(at_limit.raw.find("nests deeper"), std::string::npos)
          << method << " " << target << ": " << at_limit.raw;
      auto over = agent_->Call(method, target, "{\"x\":" + NestedJson(32, objects) + "}");
      EXPECT_EQ(over.status, 400) << method << " " << target << ": " << over.raw;
      EXPECT_EQ(over.body["error"]["message"], "the body nests deeper than 32 levels") << over.raw;
    }
  }
  // Brackets inside a string are text, not nesting.
  auto in_string =
      agent_->Call("POST", "/v1/identify", json{{"code", std::string(1000, '[')}}.dump());
  EXPECT_EQ(in_string.status, 422) << in_string.raw;
}

TEST_F(DeepJsonTest, AMalformedBodyIsRefusedEvenWhereTheRouteReadsNone) {
  // POST /v1/sync takes no body: with a broken one it starts no run.
  auto r = agent_->Call("POST", "/v1/sync", "{\"x\":");
  EXPECT_EQ(r.status, 400) << r.raw;
  EXPECT_EQ(r.body["error"]["code"], "bad_request");
  auto invalid_utf8 = agent_->Call("GET", "/v1/members/42", "{\"x\":\"\xff\"}");
  EXPECT_EQ(invalid_utf8.status, 400) << invalid_utf8.raw;
  EXPECT_EQ(invalid_utf8.body["error"]["message"], "the body is not valid UTF-8");
  auto runs = agent_->Get("/v1/sync");
  EXPECT_EQ(runs.status, 200) << runs.raw;
}

// The metrics' route label is bounded whatever the client sends: a method HTTP does not
// define (the server takes any token) counts as route "other", not as a series of its own.
TEST_F(DeepJsonTest, MadeUpMethodsShareOneMetricsLabel) {
  for (int i = 0; i < 50; ++i) {
    for (const char* target : {"/v1/health", "/v1/checkouts/commit", "/nowhere"}) {
      auto r = agent_->Call("FOO" + std::to_string(i), target, "", /*auth=*/i % 2 == 0);
      EXPECT_GE(r.status, 400) << r.raw;
    }
  }
  auto m = agent_->Call("GET", "/metrics", "", /*auth=*/false);
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.raw.find("FOO"), std::string::npos);
  EXPECT_NE(m.raw.find("loyalty_api_request_duration_seconds_count{route=\"other\"} 150"),
            std::string::npos)
      << m.raw;
  EXPECT_NE(m.raw.find("route=\"GET /v1/health\""), std::string::npos);
}

}  // namespace
}  // namespace loyalty::testing
