// HQ's routes and the sync codec at the nesting limit (hq-and-sync.md, pos-api.md: JSON
// nests at most 32 levels): HqService::Handle over a real SQLite store refuses 33 levels on
// every admin and terminal route before the route runs; 32 reach the route.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "hq_test_util.h"
#include "loyalty/sync/messages.h"
#include "support/json_depth.h"

namespace loyalty::hq::testing {
namespace {

using nlohmann::json;

using loyalty::testing::NestedJson;

class HqJsonLimitsTest : public HqFixture {};

TEST_F(HqJsonLimitsTest, ThirtyThreeLevelsAreBadRequestOnEveryRouteThirtyTwoReachIt) {
  const std::string member = CreateMember();
  for (const auto& [method, target] : HqRoutes(member)) {
    for (bool objects : {false, true}) {
      SCOPED_TRACE(method + " " + target + (objects ? " objects" : " arrays"));
      auto over = Call(method, target, "{\"x\":" + NestedJson(32, objects) + "}");
      EXPECT_EQ(over.status, 400) << over.body;
      EXPECT_EQ(J(over)["error"]["code"], "bad_request");
      EXPECT_EQ(J(over)["error"]["message"], "the body nests deeper than 32 levels");
      auto at_limit = Call(method, target, "{\"x\":" + NestedJson(31, objects) + "}");
      EXPECT_LT(at_limit.status, 500) << at_limit.body;
      EXPECT_EQ(at_limit.body.find("nests deeper"), std::string::npos) << at_limit.body;
    }
  }
  // Nothing the refused requests carried was applied.
  EXPECT_EQ(Member(member)["balance"], 0);
}

TEST_F(HqJsonLimitsTest, AHundredThousandLevelsAreRefusedOnEveryRoute) {
  const std::string member = CreateMember();
  const std::string deep = NestedJson(100000, false);
  for (const auto& [method, target] : HqRoutes(member)) {
    auto r = Call(method, target, deep);
    EXPECT_EQ(r.status, 400) << method << " " << target << ": " << r.body;
    EXPECT_EQ(J(r)["error"]["message"], "the body nests deeper than 32 levels")
        << method << " " << target;
  }
}

TEST_F(HqJsonLimitsTest, AdminBodiesCountOnlyBracketsOutsideStrings) {
  // Brackets and an escaped quote in a name are text; the member is created.
  auto r = Call("POST", "/v1/members",
                json{{"name", std::string(200, '[') + "\\\"{"}, {"phone", "13812345678"}});
  EXPECT_EQ(r.status, 201) << r.body;
}

TEST(SyncCodecLimits, BothEndsRefuseThirtyThreeLevelsAndAcceptThirtyTwo) {
  // The terminal parsing HQ's replies and HQ parsing the terminal's messages share this.
  auto ok = ParseJsonObject("{\"x\":" + NestedJson(31, true) + "}");
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
  auto deep = ParseJsonObject("{\"x\":" + NestedJson(32, true) + "}");
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().code(), ErrorCode::kBadRequest);
  EXPECT_EQ(deep.status().message(), "the body nests deeper than 32 levels");
  auto reply = sync::ParseMessage<sync::ChangesResponse>(NestedJson(100000, true));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), ErrorCode::kBadRequest);
  auto hello = sync::ParseMessage<sync::HelloRequest>("{\"x\":" + NestedJson(32, false) + "}");
  ASSERT_FALSE(hello.ok());
  EXPECT_EQ(hello.status().message(), "the body nests deeper than 32 levels");
}

}  // namespace
}  // namespace loyalty::hq::testing
