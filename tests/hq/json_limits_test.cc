// HQ's routes and the sync codec at the nesting limit (hq-and-sync.md, pos-api.md: JSON
// nests at most 32 levels): HqService::Handle over a real SQLite store refuses 33 levels on
// every admin and terminal route before the route runs; 32 reach the route.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "hq_test_util.h"
#include "loyalty/sync/messages.h"

namespace loyalty::hq::testing {
namespace {

using nlohmann::json;

std::string Nested(int depth, bool objects) {
  std::string open, close;
  for (int i = 0; i < depth; ++i) {
    open += objects ? "{\"k\":" : "[";
    close += objects ? '}' : ']';
  }
  return open + "1" + close;
}

// Every route of HQ: method and target (admin routes with the token, terminal routes for T01
// over the trusted plain-HTTP path).
std::vector<std::pair<std::string, std::string>> Routes(const std::string& member_id) {
  return {{"GET", "/v1/health"},
          {"POST", "/v1/members"},
          {"GET", "/v1/members/" + member_id},
          {"POST", "/v1/members/" + member_id + "/devices"},
          {"POST", "/v1/members/" + member_id + "/adjustments"},
          {"POST", "/v1/members/" + member_id + "/unfreeze"},
          {"POST", "/v1/members/" + member_id + "/tier"},
          {"POST", "/v1/members/" + member_id + "/identities"},
          {"POST", "/v1/devices/d-1/revoke"},
          {"POST", "/v1/coupons"},
          {"GET", "/v1/terminals/T01"},
          {"POST", "/v1/admin/expire"},
          {"POST", "/v1/sync/T01/hello"},
          {"POST", "/v1/sync/T01/entries"},
          {"GET", "/v1/sync/T01/changes"},
          {"POST", "/v1/sync/T01/recon/entries"},
          {"POST", "/v1/sync/T01/recon/balances"},
          {"POST", "/v1/sync/T01/fetch"},
          {"POST", "/v1/sync/T01/members"},
          {"POST", "/v1/no-such-route"}};
}

class HqJsonLimitsTest : public HqFixture {};

TEST_F(HqJsonLimitsTest, ThirtyThreeLevelsAreBadRequestOnEveryRouteThirtyTwoReachIt) {
  const std::string member = CreateMember();
  for (const auto& [method, target] : Routes(member)) {
    for (bool objects : {false, true}) {
      SCOPED_TRACE(method + " " + target + (objects ? " objects" : " arrays"));
      auto over = Call(method, target, "{\"x\":" + Nested(32, objects) + "}");
      EXPECT_EQ(over.status, 400) << over.body;
      EXPECT_EQ(J(over)["error"]["code"], "bad_request");
      EXPECT_EQ(J(over)["error"]["message"], "the body nests deeper than 32 levels");
      auto at_limit = Call(method, target, "{\"x\":" + Nested(31, objects) + "}");
      EXPECT_LT(at_limit.status, 500) << at_limit.body;
      EXPECT_EQ(at_limit.body.find("nests deeper"), std::string::npos) << at_limit.body;
    }
  }
  // Nothing the refused requests carried was applied.
  EXPECT_EQ(Member(member)["balance"], 0);
}

TEST_F(HqJsonLimitsTest, AHundredThousandLevelsAreRefusedOnEveryRoute) {
  const std::string member = CreateMember();
  const std::string deep = Nested(100000, false);
  for (const auto& [method, target] : Routes(member)) {
    auto r = Call(method, target, deep);
    EXPECT_EQ(r.status, 400) << method << " " << target << ": " << r.body;
    EXPECT_EQ(J(r)["error"]["message"], "the body nests deeper than 32 levels") << method << " " << target;
  }
}

TEST_F(HqJsonLimitsTest, AdminBodiesCountOnlyBracketsOutsideStrings) {
  // Brackets and an escaped quote in a name are text; the member is created.
  auto r = Call("POST", "/v1/members", json{{"name", std::string(200, '[') + "\\\"{"}, {"phone", "13812345678"}});
  EXPECT_EQ(r.status, 201) << r.body;
}

TEST(SyncCodecLimits, BothEndsRefuseThirtyThreeLevelsAndAcceptThirtyTwo) {
  // The terminal parsing HQ's replies and HQ parsing the terminal's messages share this.
  auto ok = sync::ParseJsonObject("{\"x\":" + Nested(31, true) + "}");
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
  auto deep = sync::ParseJsonObject("{\"x\":" + Nested(32, true) + "}");
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().code(), "bad_request");
  EXPECT_EQ(deep.status().message(), "the body nests deeper than 32 levels");
  auto reply = sync::ParseMessage<sync::ChangesResponse>(Nested(100000, true));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), "bad_request");
  auto hello = sync::ParseMessage<sync::HelloRequest>("{\"x\":" + Nested(32, false) + "}");
  ASSERT_FALSE(hello.ok());
  EXPECT_EQ(hello.status().message(), "the body nests deeper than 32 levels");
}

}  // namespace
}  // namespace loyalty::hq::testing
