// The one parser for JSON from outside (base/json.h): the nesting limit at its edge for
// objects, arrays and both mixed, brackets inside strings and escapes, invalid UTF-8, and
// a 100,000-deep document refused without recursion. Plus DumpCanonical over a tree deeper
// than any parse allows (it walks with a heap stack, not the thread's).
#include "loyalty/base/json.h"

#include <gtest/gtest.h>

#include <string>

#include "loyalty/base/json_writer.h"

namespace loyalty {
namespace {

using nlohmann::json;

// depth levels of `open`, a scalar inside, and the matching closers. `open` is "[" or
// "{\"k\":"; mixed alternates them.
std::string Nest(int depth, const std::string& kind) {
  std::string open, close;
  for (int i = 0; i < depth; ++i) {
    bool object = kind == "object" || (kind == "mixed" && i % 2 == 1);
    open += object ? "{\"k\":" : "[";
    close.insert(close.begin(), object ? '}' : ']');
  }
  return open + "1" + close;
}

// The same nesting inside an object (what a request body looks like): depth - 1 inside.
std::string BodyNest(int depth) { return "{\"a\":" + Nest(depth - 1, "mixed") + "}"; }

TEST(JsonDepth, ThirtyTwoLevelsAreAcceptedThirtyThreeRefusedForEveryKind) {
  for (const char* kind : {"array", "object", "mixed"}) {
    SCOPED_TRACE(kind);
    EXPECT_EQ(JsonDepth(Nest(32, kind)), 32);
    auto ok = ParseJson(Nest(32, kind));
    ASSERT_TRUE(ok.ok()) << ok.status().ToString();
    EXPECT_EQ(*ok, json::parse(Nest(32, kind)));
    auto deep = ParseJson(Nest(33, kind));
    ASSERT_FALSE(deep.ok());
    EXPECT_EQ(deep.status().code(), ErrorCode::kBadRequest);
    EXPECT_EQ(deep.status().message(), "the body nests deeper than 32 levels");
  }
  EXPECT_TRUE(ParseJsonObject(BodyNest(32)).ok());
  EXPECT_EQ(ParseJsonObject(BodyNest(33)).status().code(), ErrorCode::kBadRequest);
}

TEST(JsonDepth, ScalarsAreLevelZeroAndEmptyContainersLevelOne) {
  EXPECT_EQ(JsonDepth("1"), 0);
  EXPECT_EQ(JsonDepth("\"[{\""), 0);
  EXPECT_EQ(JsonDepth("{}"), 1);
  EXPECT_EQ(JsonDepth("[]"), 1);
  EXPECT_EQ(JsonDepth("[[],[[]],{}]"), 3);
  EXPECT_EQ(JsonDepth(""), 0);
}

TEST(JsonDepth, BracketsInsideStringsDoNotCount) {
  const std::string brackets(1000, '[');
  const std::string text =
      "{\"k\":\"" + brackets + "\",\"" + std::string(1000, '{') + "\":" + Nest(31, "array") + "}";
  EXPECT_EQ(JsonDepth(text), 32);
  auto j = ParseJsonObject(text);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ((*j)["k"], brackets);
}

TEST(JsonDepth, EscapedQuotesDoNotEndAString) {
  // \" keeps the string open: the brackets after it are still inside.
  const std::string text = "{\"k\":\"\\\"" + std::string(100, '[') + "\\\"\"}";
  EXPECT_EQ(JsonDepth(text), 1);
  auto j = ParseJsonObject(text);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ((*j)["k"], "\"" + std::string(100, '[') + "\"");
  // \\ is a whole escape: the quote after it closes the string, and the brackets count.
  const std::string closed = "[\"\\\\\"," + Nest(32, "array") + "]";
  EXPECT_EQ(JsonDepth(closed), 33);
  EXPECT_EQ(ParseJson(closed).status().code(), ErrorCode::kBadRequest);
  const std::string closed_ok = "[\"\\\\\"," + Nest(31, "array") + "]";
  EXPECT_TRUE(ParseJson(closed_ok).ok());
  // \u0022 is a quote character in the value but not in the text.
  EXPECT_EQ(JsonDepth("[\"\\u0022[[[\"]"), 1);
}

TEST(JsonDepth, ClosingBracketsFirstBuyNoDepth) {
  // A parser stops at the first `]`; the scan does not let it lower the count either.
  const std::string text = std::string(10, ']') + Nest(33, "array");
  EXPECT_GT(JsonDepth(text), 32);
  EXPECT_FALSE(ParseJson(text).ok());
}

TEST(JsonDepth, AHundredThousandLevelsAreRefusedWithoutRecursion) {
  // The 200 KB body that used to take the daemon down: refused by the scan, no tree built.
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  auto r = ParseJson(deep);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
  EXPECT_EQ(r.status().message(), "the body nests deeper than 32 levels");
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
  EXPECT_EQ(ParseJsonObject(objects).status().message(), "the body nests deeper than 32 levels");
  // Unterminated, and a limit of another size.
  EXPECT_EQ(JsonDepth(std::string(100000, '{'), 4), 5);
  EXPECT_EQ(CheckJsonDepth(Nest(5, "array"), 4).message(), "the body nests deeper than 4 levels");
  EXPECT_TRUE(CheckJsonDepth(Nest(4, "array"), 4).ok());
}

TEST(ParseJson, RefusesInvalidUtf8EverywhereWithBadRequest) {
  for (std::string bad :
       {std::string("{\"k\":\"\xff\"}"), std::string("{\"k\":\"\xc0\xaf\"}"),
        std::string("{\"k\":\"\xed\xa0\x80\"}"), std::string("{\"k\":\"\xf4\x90\x80\x80\"}"),
        std::string("{\"k\":\"\xe4\xb8\"}"), std::string("{\"\xff\":1}")}) {
    auto r = ParseJsonObject(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
    EXPECT_EQ(r.status().message(), "the body is not valid UTF-8");
  }
  auto ok = ParseJsonObject("{\"name\":\"张三\"}");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)["name"], "张三");
}

TEST(ParseJson, RefusesWhatIsNotJsonOrNotAnObject) {
  for (const char* bad :
       {"", "{", "{\"a\":1,}", "{\"a\":1} x", "[1] [2]", "{/*c*/}", "{'a':1}", "nul"}) {
    auto r = ParseJson(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
    EXPECT_EQ(r.status().message(), "the body is not valid JSON");
  }
  // nlohmann alone reads up to a NUL and ignores the rest; JSON has no NUL outside escapes.
  for (std::string nul : {std::string("{\"a\":1}\0", 8), std::string("{\"a\":1}\0garbage", 15),
                          std::string("9\0\xff", 3), std::string("{\"a\":\"x\0\"}", 10)}) {
    auto r = ParseJson(nul);
    ASSERT_FALSE(r.ok()) << nul.size();
    EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
  }
  EXPECT_TRUE(ParseJson("[1]").ok());
  EXPECT_TRUE(ParseJson(" 7 ").ok());
  EXPECT_EQ(ParseJsonObject("[1]").status().message(), "the body must be a JSON object");
  EXPECT_EQ(ParseJsonObject("null").status().message(), "the body must be a JSON object");
}

// A key twice in one object is ambiguous (RFC 8259 4: names SHOULD be unique; parsers differ
// on which one wins), so it is refused wherever the object is; the same key in two objects is
// not a duplicate.
TEST(ParseJson, RefusesAKeyTwiceInOneObject) {
  for (const char* bad : {R"({"a":1,"a":2})", R"({"a":1,"b":2,"a":1})", R"({"x":{"a":1,"a":1}})",
                          R"([{"a":1},{"b":1,"b":2}])", R"({"l":[[{"k":{"z":0,"z":{}}}]]})",
                          R"({"a":{},"a":[]})", R"({"a":1,"a":2})", R"({"":1,"":2})"}) {
    auto r = ParseJson(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest) << bad;
    EXPECT_EQ(r.status().message(), "the body has a key twice in one object") << bad;
  }
  for (const char* good : {R"({"a":1,"b":{"a":1},"c":[{"a":1},{"a":2}]})", R"({"a":{"a":{"a":1}}})",
                           R"({"A":1,"a":2})", R"({})", R"([{},{}])", R"({"a":[1,1,1]})"}) {
    auto r = ParseJson(good);
    ASSERT_TRUE(r.ok()) << good << " " << r.status().ToString();
    EXPECT_EQ(r->dump(), nlohmann::json::parse(good).dump());
  }
  // Many keys, all different: each counted once.
  std::string many = "{";
  for (int i = 0; i < 5000; ++i) many += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":[]";
  many += "}";
  auto r = ParseJson(many);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 5000u);
  // Colons and braces inside strings and keys are text, not structure.
  for (const char* good : {R"({"a:b":"c:d","{":"}:"})", R"({"\":":1,"\\":2})"}) {
    auto g = ParseJson(good);
    EXPECT_TRUE(g.ok()) << good << " " << g.status().ToString();
  }
  EXPECT_FALSE(ParseJson(R"({"a:":1,"a:":2})").ok());
  // An array of 200,000 objects: each object's end costs nothing more for the ones before it.
  std::string wide = "[";
  for (int i = 0; i < 200000; ++i)
    wide += i ? R"(,{"k":1,"v":[{"x":2}]})" : R"({"k":1,"v":[{"x":2}]})";
  wide += "]";
  auto w = ParseJson(wide);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->size(), 200000u);
}

TEST(ParseJson, MaxBytesIsInclusive) {
  JsonLimits limits;
  limits.max_bytes = 9;
  EXPECT_TRUE(ParseJson("{\"a\":123}", limits).ok());  // 9 bytes
  auto r = ParseJson("{\"a\":1234}", limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
  EXPECT_EQ(r.status().message(), "the body is larger than 9 bytes");
}

TEST(DumpCanonical, WalksATreeFarDeeperThanAnyParseWithoutRecursion) {
  // Built by code, not parsed: DumpCanonical must not depend on the parser's limit.
  constexpr int kDepth = 100000;
  json j = 1;
  for (int i = 0; i < kDepth; ++i) {
    json outer = i % 2 ? json::array() : json::object();  // moved in, never copied
    if (i % 2) {
      outer.push_back(std::move(j));
    } else {
      outer["k"] = std::move(j);
    }
    j = std::move(outer);
  }
  std::string out = DumpCanonical(j);
  std::string want;
  for (int i = kDepth - 1; i >= 0; --i) want += i % 2 ? "[" : "{\"k\":";
  want += "1";
  for (int i = 0; i < kDepth; ++i) want += i % 2 ? "]" : "}";
  EXPECT_EQ(out, want);
}

TEST(DumpCanonical, StillMatchesDumpAtTheLimit) {
  for (const char* kind : {"array", "object", "mixed"}) {
    auto j = ParseJson(Nest(32, kind));
    ASSERT_TRUE(j.ok());
    EXPECT_EQ(DumpCanonical(*j), j->dump()) << kind;
  }
  json mixed =
      json::parse(R"({"b":[1,{"c":[],"a":{}},"x",-2,true,null,1.5],"a":{"z":[[]],"y":"\u0001"}})");
  EXPECT_EQ(DumpCanonical(mixed), mixed.dump());
  std::string prefix = "x";
  DumpCanonical(mixed, prefix);
  EXPECT_EQ(prefix, "x" + mixed.dump());
}

}  // namespace
}  // namespace loyalty
