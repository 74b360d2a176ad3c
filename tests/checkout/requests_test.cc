#include "loyalty/checkout/requests.h"

#include <gtest/gtest.h>

namespace loyalty::checkout {
namespace {

using nlohmann::json;

json Line(json qty = 1, json price = 100) {
  return {{"sku", "A"}, {"qty", qty}, {"unit_price_cents", price}};
}

TEST(Requests, CanonicalHashIgnoresKeyOrderAndSpacing) {
  auto a = ParseJsonObject(R"({"b": 1, "a": [1, 2]})");
  auto b = ParseJsonObject("{\"a\":[1,2],\n \"b\":1}");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(CanonicalHash(*a), CanonicalHash(*b));
  auto c = ParseJsonObject(R"({"a": [2, 1], "b": 1})");
  EXPECT_NE(CanonicalHash(*a), CanonicalHash(*c));
}

// pos-api.md: a replay is "the same JSON value": an integer written with a fraction or an
// exponent is that integer; one that is not an integer, or past 2^53, is another value.
TEST(Requests, CanonicalHashTakesNumbersAsValues) {
  auto hash = [](const std::string& text) {
    auto j = ParseJsonObject(text);
    EXPECT_TRUE(j.ok()) << text;
    return j.ok() ? CanonicalHash(*j) : std::string();
  };
  const std::string plain = hash(R"({"a": [1990, {"b": 0}], "c": -7})");
  for (const char* same :
       {R"({"a": [1990.0, {"b": 0}], "c": -7})", R"({"a": [1990E0, {"b": -0.0}], "c": -7e0})",
        R"({"a": [1.99e3, {"b": 0e5}], "c": -70E-1})"})
    EXPECT_EQ(hash(same), plain) << same;
  for (const char* other :
       {R"({"a": [1990.5, {"b": 0}], "c": -7})", R"({"a": [1990, {"b": 1e-300}], "c": -7})",
        R"({"a": [1990, {"b": 0}], "c": -7.000001})"})
    EXPECT_NE(hash(other), plain) << other;
  // 2^53 is exact; 2^53 + 2 written as a float is exact too; past 2^53 a float stays a float.
  EXPECT_EQ(hash(R"({"n": 9007199254740992.0})"), hash(R"({"n": 9007199254740992})"));
  EXPECT_NE(hash(R"({"n": 9007199254740994.0})"), hash(R"({"n": 9007199254740994})"));
  EXPECT_NE(hash(R"({"n": 1e300})"), hash(R"({"n": 0})"));
}

// pos-api.md: bodies nest at most 32 levels. A commit with an extra field at the edge parses
// (and validates: unknown fields are ignored); one level more is bad_request before anything
// hashes it, and so is the 100,000-deep body that once crashed the commit.
TEST(Requests, BodiesNestAtMostThirtyTwoLevels) {
  auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  json commit = {{"checkout_id", "c-1"},
                 {"lines", {Line()}},
                 {"tender", "cash"},
                 {"rules_version", "default"}};
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
  EXPECT_EQ(ParseJsonObject(nested(100000)).status().message(),
            "the body nests deeper than 32 levels");
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
  EXPECT_NE(r.status().message().find("lines[1].unit_price_cents"), std::string::npos)
      << r.status().message();
}

TEST(Requests, MessagesSayWhatFitsAndWhatCame) {
  auto error = [](const json& b) { return ParseCheckoutRequest(b, true).status().message(); };
  EXPECT_EQ(error({{"checkout_id", "c"}, {"lines", {Line(0)}}}),
            "lines[0].qty must be 1..10000, got 0");
  EXPECT_EQ(error({{"checkout_id", "c"}, {"lines", {Line(1.5)}}}),
            "lines[0].qty must be an integer, got a float (1.5)");
  EXPECT_EQ(error({{"checkout_id", "c"}, {"lines", json::array()}}),
            "lines must hold 1..500 items, got 0");
  EXPECT_EQ(error({{"lines", {Line()}}}), "checkout_id is missing");
  EXPECT_EQ(error({{"checkout_id", "a b"}, {"lines", {Line()}}}),
            "checkout_id must be 1-64 characters of [A-Za-z0-9_-]");
  EXPECT_EQ(error({{"checkout_id", "c"}, {"lines", {Line()}}, {"redeem_points", "all"}}),
            "redeem_points must be an integer or \"max\"");
  auto refund =
      ParseRefundRequest({{"refund_id", "r"}, {"checkout_id", "c"}, {"lines", {{{"qty", 1}}}}});
  EXPECT_EQ(refund.status().message(), "lines[0].line is missing");
  refund = ParseRefundRequest({{"refund_id", "r"}, {"checkout_id", "c"}, {"reason", "theft"}});
  EXPECT_EQ(refund.status().message(), "reason must be one of return, void");
}

// Optional fields may be null, which is the same as leaving them out.
TEST(Requests, NullIsAbsent) {
  json line = Line();
  line["category"] = nullptr;
  json b{{"checkout_id", "c"}, {"identification_id", nullptr},
         {"member_code", "m"}, {"coupon_id", nullptr},
         {"lines", {line}},    {"redeem_points", nullptr},
         {"tender", nullptr},  {"rules_version", nullptr}};
  auto r = ParseCheckoutRequest(b, true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->identification_id);
  EXPECT_EQ(r->member_code, "m");
  EXPECT_EQ(r->lines[0].category, "");
  EXPECT_FALSE(r->redeem.max);
  EXPECT_EQ(r->redeem.points, 0);
  auto v = ParseRefundRequest(
      {{"refund_id", "r"}, {"checkout_id", "c"}, {"reason", "void"}, {"lines", nullptr}});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->lines.empty());
}

TEST(Requests, CommitOnlyFields) {
  json b{{"checkout_id", "c"}, {"lines", {Line()}}, {"tender", "bitcoin"}};
  EXPECT_TRUE(ParseCheckoutRequest(b, false).ok());  // quote ignores tender
  EXPECT_FALSE(ParseCheckoutRequest(b, true).ok());
  b["tender"] = "alipay";
  EXPECT_TRUE(ParseCheckoutRequest(b, true).ok());
}

// "cashier_id" (pos-api.md) on commits and refunds: 1-64 characters of [A-Za-z0-9_-], null
// the same as absent; a quote ignores it, as it does tender.
TEST(Requests, CashierIdOnCommitsAndRefunds) {
  json b{{"checkout_id", "c"}, {"lines", {Line()}}, {"cashier_id", "emp-0042_A"}};
  auto c = ParseCheckoutRequest(b, true);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->cashier_id, "emp-0042_A");
  b["cashier_id"] = std::string(64, 'x');
  EXPECT_TRUE(ParseCheckoutRequest(b, true).ok());
  b["cashier_id"] = nullptr;
  c = ParseCheckoutRequest(b, true);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->cashier_id);
  for (const json& bad :
       {json(std::string(65, 'x')), json(""), json("张三"), json("a b"), json(42)}) {
    b["cashier_id"] = bad;
    auto r = ParseCheckoutRequest(b, true);
    ASSERT_FALSE(r.ok()) << bad.dump();
    EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
    EXPECT_EQ(r.status().message().rfind("cashier_id ", 0), 0u) << r.status().message();
    EXPECT_TRUE(ParseCheckoutRequest(b, false).ok()) << bad.dump();  // a quote ignores it
  }
  json refund{{"refund_id", "r"}, {"checkout_id", "c"}, {"reason", "void"}, {"cashier_id", "K7"}};
  auto v = ParseRefundRequest(refund);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->cashier_id, "K7");
  refund["cashier_id"] = "K 7";  // checked on a void without lines too
  EXPECT_EQ(ParseRefundRequest(refund).status().message(),
            "cashier_id must be 1-64 characters of [A-Za-z0-9_-]");
}

TEST(Requests, RefundBodies) {
  EXPECT_TRUE(
      ParseRefundRequest(
          {{"refund_id", "r"}, {"checkout_id", "c"}, {"lines", {{{"line", 0}, {"qty", 1}}}}})
          .ok());
  EXPECT_FALSE(ParseRefundRequest({{"refund_id", "r"}, {"checkout_id", "c"}}).ok());
  auto v = ParseRefundRequest({{"refund_id", "r"}, {"checkout_id", "c"}, {"reason", "void"}});
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->lines.empty());
  EXPECT_FALSE(ParseRefundRequest({{"refund_id", "r"},
                                   {"checkout_id", "c"},
                                   {"reason", "theft"},
                                   {"lines", {{{"line", 0}, {"qty", 1}}}}})
                   .ok());
  EXPECT_FALSE(
      ParseRefundRequest(
          {{"refund_id", "r"}, {"checkout_id", "c"}, {"lines", {{{"line", -1}, {"qty", 1}}}}})
          .ok());
  EXPECT_FALSE(
      ParseRefundRequest(
          {{"refund_id", "r"}, {"checkout_id", "c"}, {"lines", {{{"line", 0}, {"qty", 0}}}}})
          .ok());
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
