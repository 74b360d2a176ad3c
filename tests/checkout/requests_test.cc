#include "loyalty/checkout/requests.h"

#include <gtest/gtest.h>

namespace loyalty::checkout {
namespace {

using nlohmann::json;

json Line(json qty = 1, json price = 100) { return {{"sku", "A"}, {"qty", qty}, {"unit_price_cents", price}}; }

TEST(Requests, CanonicalHashIgnoresKeyOrderAndSpacing) {
  auto a = ParseJsonObject(R"({"b": 1, "a": [1, 2]})");
  auto b = ParseJsonObject("{\"a\":[1,2],\n \"b\":1}");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(CanonicalHash(*a), CanonicalHash(*b));
  auto c = ParseJsonObject(R"({"a": [2, 1], "b": 1})");
  EXPECT_NE(CanonicalHash(*a), CanonicalHash(*c));
}

// pos-api.md: bodies nest at most 32 levels. A commit with an extra field at the edge parses
// (and validates: unknown fields are ignored); one level more is bad_request before anything
// hashes it, and so is the 100,000-deep body that once crashed the commit.
TEST(Requests, BodiesNestAtMostThirtyTwoLevels) {
  auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  json commit = {{"checkout_id", "c-1"}, {"lines", {Line()}}, {"tender", "cash"}, {"rules_version", "default"}};
  std::string text = commit.dump();
  text.pop_back();
  auto at_limit = ParseJsonObject(text + ",\"x\":" + nested(31) + "}");
  ASSERT_TRUE(at_limit.ok()) << at_limit.status().ToString();
  EXPECT_EQ(CanonicalHash(*at_limit).size(), 64u);
  EXPECT_TRUE(ParseCheckoutRequest(*at_limit, true).ok());
  auto over = ParseJsonObject(text + ",\"x\":" + nested(32) + "}");
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), ErrorCode::kBadRequest);
  EXPECT_EQ(over.status().message(), "the body nests deeper than 32 levels");
  EXPECT_EQ(ParseJsonObject(nested(100000)).status().message(), "the body nests deeper than 32 levels");
  // Brackets in a SKU are text.
  json sku = commit;
  sku["lines"][0]["sku"] = std::string(64, '{');
  EXPECT_TRUE(ParseJsonObject(sku.dump()).ok());
}

TEST(Requests, ClientIds) {
  EXPECT_TRUE(IsValidClientId("a"));
  EXPECT_TRUE(IsValidClientId(std::string(64, 'x')));
  EXPECT_FALSE(IsValidClientId(std::string(65, 'x')));
  EXPECT_FALSE(IsValidClientId(""));
  EXPECT_FALSE(IsValidClientId("a b"));
  EXPECT_FALSE(IsValidClientId("ä"));
}

TEST(Requests, LimitsAtMaxAndMaxPlusOne) {
  auto parse = [](json lines, json redeem = nullptr) {
    json b{{"checkout_id", "c"}, {"lines", lines}};
    if (!redeem.is_null()) b["redeem_points"] = redeem;
    return ParseCheckoutRequest(b, true);
  };
  EXPECT_TRUE(parse({Line(10000)}).ok());
  EXPECT_FALSE(parse({Line(10001)}).ok());
  EXPECT_FALSE(parse({Line(0)}).ok());
  EXPECT_TRUE(parse({Line(1, 100000000)}).ok());
  EXPECT_FALSE(parse({Line(1, 100000001)}).ok());
  EXPECT_TRUE(parse({Line(1, 0)}).ok());
  EXPECT_FALSE(parse({Line(1, -1)}).ok());
  EXPECT_FALSE(parse({Line(1, 1.0)}).ok());
  EXPECT_FALSE(parse({Line(1, "100")}).ok());
  EXPECT_FALSE(parse({Line(json(18446744073709551615ull))}).ok());
  json many = json::array();
  for (int i = 0; i < 500; ++i) many.push_back(Line());
  EXPECT_TRUE(parse(many).ok());
  many.push_back(Line());
  EXPECT_FALSE(parse(many).ok());
  EXPECT_FALSE(parse(json::array()).ok());
  EXPECT_TRUE(parse({Line()}, 100000000).ok());
  EXPECT_FALSE(parse({Line()}, 100000001).ok());
  EXPECT_FALSE(parse({Line()}, -1).ok());
  EXPECT_TRUE(parse({Line()}, "max").ok());
  EXPECT_FALSE(parse({Line()}, "all").ok());
  json sku = Line();
  sku["sku"] = std::string(64, 's');
  EXPECT_TRUE(parse({sku}).ok());
  sku["sku"] = std::string(65, 's');
  EXPECT_FALSE(parse({sku}).ok());
  sku["sku"] = "a\x01";
  EXPECT_FALSE(parse({sku}).ok());
}

TEST(Requests, MessagesNameTheField) {
  auto r = ParseCheckoutRequest({{"checkout_id", "c"}, {"lines", {Line(), Line(1, "x")}}}, false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
  EXPECT_NE(r.status().message().find("lines[1].unit_price_cents"), std::string::npos) << r.status().message();
}

TEST(Requests, CommitOnlyFields) {
  json b{{"checkout_id", "c"}, {"lines", {Line()}}, {"tender", "bitcoin"}};
  EXPECT_TRUE(ParseCheckoutRequest(b, false).ok());  // quote ignores tender
  EXPECT_FALSE(ParseCheckoutRequest(b, true).ok());
  b["tender"] = "alipay";
  EXPECT_TRUE(ParseCheckoutRequest(b, true).ok());
}

TEST(Requests, RefundBodies) {
  EXPECT_TRUE(ParseRefundRequest({{"refund_id", "r"}, {"checkout_id", "c"}, {"lines", {{{"line", 0}, {"qty", 1}}}}}).ok());
  EXPECT_FALSE(ParseRefundRequest({{"refund_id", "r"}, {"checkout_id", "c"}}).ok());
  auto v = ParseRefundRequest({{"refund_id", "r"}, {"checkout_id", "c"}, {"reason", "void"}});
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->lines.empty());
  EXPECT_FALSE(ParseRefundRequest({{"refund_id", "r"}, {"checkout_id", "c"}, {"reason", "theft"}, {"lines", {{{"line", 0}, {"qty", 1}}}}}).ok());
  EXPECT_FALSE(ParseRefundRequest({{"refund_id", "r"}, {"checkout_id", "c"}, {"lines", {{{"line", -1}, {"qty", 1}}}}}).ok());
  EXPECT_FALSE(ParseRefundRequest({{"refund_id", "r"}, {"checkout_id", "c"}, {"lines", {{{"line", 0}, {"qty", 0}}}}}).ok());
}

TEST(Requests, RejectsNonObjectsAndInvalidUtf8) {
  EXPECT_FALSE(ParseJsonObject("[]").ok());
  EXPECT_FALSE(ParseJsonObject("").ok());
  EXPECT_FALSE(ParseJsonObject("{\"a\":\"\xff\"}").ok());
  EXPECT_FALSE(ParseJsonObject("{\"a\":1} trailing").ok());
  EXPECT_TRUE(ParseJsonObject("{\"名\":\"张\"}").ok());
}

}  // namespace
}  // namespace loyalty::checkout
