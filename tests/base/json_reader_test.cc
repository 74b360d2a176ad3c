// JsonReader: every read at its boundaries, the paths and messages, the two error modes.
#include "loyalty/base/json_reader.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace loyalty {
namespace {

using nlohmann::json;

constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

// Reads `v` as the field "f" of {"f": v} with read(reader, &out): "ok" when it fits (and
// then out must be v), else the message.
template <typename T, typename Fn>
std::string Read(const json& v, Fn read) {
  json doc = {{"f", v}};
  JsonReader r(doc, ErrorCode::kBadRequest);
  T out{};
  bool fits = read(r, &out);
  EXPECT_EQ(fits, r.ok());
  if (fits) {
    EXPECT_EQ(json(out), v);
  }
  return fits ? "ok" : r.status().message();
}

std::string Int(const json& v, int64_t lo = kI64Min, int64_t hi = kI64Max) {
  return Read<int64_t>(v, [&](const JsonReader& r, int64_t* x) { return r.Int("f", x, lo, hi); });
}

std::string Uint(const json& v, uint64_t lo = 0, uint64_t hi = kU64Max) {
  return Read<uint64_t>(v,
                        [&](const JsonReader& r, uint64_t* x) { return r.Uint("f", x, lo, hi); });
}

std::string Str(const json& v, size_t min_bytes, size_t max_bytes) {
  return Read<std::string>(
      v, [&](const JsonReader& r, std::string* x) { return r.Str("f", x, min_bytes, max_bytes); });
}

TEST(JsonReader, IntegersWithinTheirRange) {
  EXPECT_EQ(Int(1, 1, 10000), "ok");
  EXPECT_EQ(Int(10000, 1, 10000), "ok");
  EXPECT_EQ(Int(0, 1, 10000), "f must be 1..10000, got 0");
  EXPECT_EQ(Int(10001, 1, 10000), "f must be 1..10000, got 10001");
  EXPECT_EQ(Int(-5, 1, 10000), "f must be 1..10000, got -5");
  EXPECT_EQ(Int(kI64Min), "ok");
  EXPECT_EQ(Int(kI64Max), "ok");
  EXPECT_EQ(Int(json(uint64_t{1} << 63)),
            "f must be a 64-bit signed integer, got 9223372036854775808");
  EXPECT_EQ(Int(json(kU64Max), 0, 10), "f must be 0..10, got 18446744073709551615");
  // Only JSON integers: not a float (even a whole one), a numeric string, a boolean or null.
  EXPECT_EQ(Int(1.0), "f must be an integer, got a float (1.0)");
  EXPECT_EQ(Int(1.5), "f must be an integer, got a float (1.5)");
  EXPECT_EQ(Int("1"), "f must be an integer, got a string");
  EXPECT_EQ(Int(true), "f must be an integer, got a boolean");
  EXPECT_EQ(Int(nullptr), "f must be an integer, got null");
  EXPECT_EQ(Int(json::array()), "f must be an integer, got an array");
  EXPECT_EQ(Int(json::object()), "f must be an integer, got an object");
}

TEST(JsonReader, UnsignedIntegers) {
  EXPECT_EQ(Uint(0), "ok");
  EXPECT_EQ(Uint(json(kU64Max)), "ok");
  EXPECT_EQ(Uint(-1), "f must be a 64-bit unsigned integer, got -1");
  EXPECT_EQ(Uint(json(kI64Min), 1, 5), "f must be 1..5, got -9223372036854775808");
  EXPECT_EQ(Uint(5, 1, 5), "ok");
  EXPECT_EQ(Uint(6, 1, 5), "f must be 1..5, got 6");
  EXPECT_EQ(Uint(0, 1, 5), "f must be 1..5, got 0");
  EXPECT_EQ(Uint(2.0), "f must be an integer, got a float (2.0)");
  EXPECT_EQ(Uint("18446744073709551615"), "f must be an integer, got a string");
}

TEST(JsonReader, StringsAndTheirLengthInBytes) {
  EXPECT_EQ(Str("", 0, 64), "ok");
  EXPECT_EQ(Str(std::string(64, 'x'), 0, 64), "ok");
  EXPECT_EQ(Str(std::string(65, 'x'), 0, 64), "f must be at most 64 bytes, got 65");
  EXPECT_EQ(Str("", 1, 64), "f must be 1..64 bytes, got 0");
  EXPECT_EQ(Str("", 1, JsonReader::kNoLimit), "f must be at least 1 bytes, got 0");
  // Bytes, not characters: 张 is three.
  EXPECT_EQ(Str("张三", 0, 6), "ok");
  EXPECT_EQ(Str("张三", 0, 5), "f must be at most 5 bytes, got 6");
  EXPECT_EQ(Str(5, 0, 64), "f must be a string, got an integer");
  EXPECT_EQ(Str(nullptr, 0, 64), "f must be a string, got null");
}

TEST(JsonReader, BooleansAndWords) {
  auto boolean = [](const JsonReader& r, bool* b) { return r.Bool("f", b); };
  EXPECT_EQ(Read<bool>(true, boolean), "ok");
  EXPECT_EQ(Read<bool>(false, boolean), "ok");
  EXPECT_EQ(Read<bool>(1, boolean), "f must be a boolean, got an integer");
  EXPECT_EQ(Read<bool>("true", boolean), "f must be a boolean, got a string");
  auto word = [](const JsonReader& r, std::string* s) { return r.OneOf("f", s, {"cash", "card"}); };
  EXPECT_EQ(Read<std::string>("card", word), "ok");
  EXPECT_EQ(Read<std::string>("Card", word), "f must be one of cash, card");
  EXPECT_EQ(Read<std::string>(1, word), "f must be a string, got an integer");
}

TEST(JsonReader, MissingNullAndOptional) {
  json doc = {{"n", nullptr}, {"s", "x"}, {"i", 7}, {"u", 8}, {"b", false}};
  JsonReader r(doc, ErrorCode::kBadRequest, ErrorMode::kAll);
  EXPECT_TRUE(r.Has("s"));
  EXPECT_FALSE(r.Has("n"));
  EXPECT_FALSE(r.Has("missing"));
  EXPECT_TRUE(r.Require("n"));  // null is there
  std::optional<std::string> s = "old";
  EXPECT_TRUE(r.OptStr("missing", &s));
  EXPECT_FALSE(s);
  s = "old";
  EXPECT_TRUE(r.OptStr("n", &s));
  EXPECT_FALSE(s);
  EXPECT_TRUE(r.OptStr("s", &s, 1, 1));
  EXPECT_EQ(s, "x");
  std::optional<int64_t> i;
  EXPECT_TRUE(r.OptInt("i", &i, 0, 7));
  EXPECT_EQ(i, 7);
  std::optional<uint64_t> u;
  EXPECT_TRUE(r.OptUint("u", &u));
  EXPECT_EQ(u, 8u);
  std::optional<bool> b;
  EXPECT_TRUE(r.OptBool("b", &b));
  EXPECT_EQ(b, false);
  EXPECT_TRUE(r.ok());
  // Present but wrong: refused as the required form refuses it.
  EXPECT_FALSE(r.OptInt("i", &i, 0, 6));
  EXPECT_FALSE(r.OptStr("i", &s));
  // Required: missing and null are both refused, each in its words.
  std::string out;
  EXPECT_FALSE(r.Str("missing", &out));
  EXPECT_FALSE(r.Str("n", &out));
  EXPECT_FALSE(r.Require("missing"));
  EXPECT_EQ(r.status().message(),
            "i must be 0..6, got 7; i must be a string, got an integer; missing is missing; n must "
            "be a string, got "
            "null; missing is missing");
}

TEST(JsonReader, PathsOfNestedFieldsAndElements) {
  json doc =
      json::parse(R"({"lines": [{"qty": 1}, {"qty": 2, "tags": ["a", 3]}], "head": {"seq": "x"}})");
  {
    JsonReader r(doc, ErrorCode::kBadRequest, ErrorMode::kAll);
    std::vector<int64_t> qty;
    EXPECT_FALSE(r.Objects("lines", 1, 10, [&](const JsonReader& line) {
      int64_t q = 0;
      if (line.Int("qty", &q, 1, 1)) qty.push_back(q);
      line.Array("tags", 0, 5, [](const JsonReader& tag) {
        std::string t;
        tag.Str(&t);
      });
    }));
    EXPECT_EQ(qty, std::vector<int64_t>{1});
    EXPECT_FALSE(r.Object("head", [](const JsonReader& head) {
      int64_t seq = 0;
      head.Int("seq", &seq);
    }));
    ASSERT_EQ(r.problems().size(), 4u);
    EXPECT_EQ(r.problems()[0].path, "lines[0].tags");
    EXPECT_EQ(r.problems()[0].reason, "is missing");
    EXPECT_EQ(r.problems()[1].path, "lines[1].qty");
    EXPECT_EQ(r.problems()[2].path, "lines[1].tags[1]");
    EXPECT_EQ(r.problems()[2].reason, "must be a string, got an integer");
    EXPECT_EQ(r.problems()[3].path, "head.seq");
  }
  // A child's path, and the root's.
  JsonReader r(doc, ErrorCode::kBadRequest);
  EXPECT_EQ(r.path(), "");
  JsonReader head = r.Field("head");
  EXPECT_EQ(head.Field("seq").path(), "head.seq");
  EXPECT_FALSE(r.ExpectObject() && r.Field("lines").ExpectObject());
  EXPECT_EQ(r.status().message(), "lines must be an object, got an array");
  // At the root the message says so.
  json top = json::array();
  JsonReader t(top, ErrorCode::kBadRequest);
  EXPECT_FALSE(t.ExpectObject("a table of rules"));
  EXPECT_EQ(t.status().message(), "(top level) must be a table of rules, got an array");
}

TEST(JsonReader, ArrayCounts) {
  auto count = [](size_t n, size_t min, size_t max) {
    json doc = {{"a", json::array()}};
    for (size_t i = 0; i < n; ++i) doc["a"].push_back(i);
    JsonReader r(doc, ErrorCode::kBadRequest);
    size_t seen = 0;
    bool ok = r.Array("a", min, max, [&](const JsonReader&) { ++seen; });
    EXPECT_EQ(ok, r.ok());
    EXPECT_EQ(seen, ok ? n : 0);
    return ok ? "ok" : r.status().message();
  };
  EXPECT_EQ(count(1, 1, 500), "ok");
  EXPECT_EQ(count(500, 1, 500), "ok");
  EXPECT_EQ(count(0, 1, 500), "a must hold 1..500 items, got 0");
  EXPECT_EQ(count(501, 1, 500), "a must hold 1..500 items, got 501");
  EXPECT_EQ(count(0, 0, 3), "ok");
  EXPECT_EQ(count(4, 0, 3), "a must hold at most 3 items, got 4");
  json doc = {{"a", {1, {{"x", 1}}}}};
  JsonReader r(doc, ErrorCode::kBadRequest);
  EXPECT_FALSE(r.Objects("a", 0, 5, [](const JsonReader&) {}));
  EXPECT_EQ(r.status().message(), "a[0] must be an object, got an integer");
}

TEST(JsonReader, FirstProblemWinsAndLaterReadsDoNothing) {
  json doc = {{"a", "x"}, {"b", 2}};
  JsonReader r(doc, ErrorCode::kRulesInvalid);
  int64_t a = 0, b = 0;
  EXPECT_FALSE(r.Int("a", &a));
  EXPECT_FALSE(r.Int("b", &b));  // would fit, but reading has stopped
  EXPECT_EQ(b, 0);
  EXPECT_FALSE(r.Fail("b", "is wrong"));
  EXPECT_EQ(r.problems().size(), 1u);
  EXPECT_EQ(r.status().code(), ErrorCode::kRulesInvalid);
  EXPECT_EQ(r.status().message(), "a must be an integer, got a string");
  // An array stops at its first bad element.
  json list = {{"l", {1, "x", "y", 4}}};
  JsonReader l(list, ErrorCode::kBadResponse);
  int calls = 0;
  EXPECT_FALSE(l.Array("l", 0, 10, [&](const JsonReader& e) {
    ++calls;
    int64_t v = 0;
    e.Int(&v);
  }));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(l.status().ToString(), "bad_response: l[1] must be an integer, got a string");
}

TEST(JsonReader, FieldsVisitsEveryMemberInKeyOrder) {
  json doc = {{"b", 1}, {"a", 2}, {"c", 3}};
  JsonReader r(doc, ErrorCode::kRulesInvalid, ErrorMode::kAll);
  std::string keys;
  r.Fields([&](const std::string& key, const JsonReader& v) {
    keys += key;
    if (key != "a") v.Fail("unknown key");
  });
  EXPECT_EQ(keys, "abc");
  EXPECT_EQ(r.status().message(), "b unknown key; c unknown key");
  // Nothing to visit in a value that is not an object.
  json arr = {1, 2};
  JsonReader a(arr, ErrorCode::kRulesInvalid);
  a.Fields([](const std::string&, const JsonReader&) { ADD_FAILURE(); });
  EXPECT_TRUE(a.ok());
}

TEST(JsonReader, DescribesValues) {
  EXPECT_EQ(DescribeJson(json(nullptr)), "null");
  EXPECT_EQ(DescribeJson(json(-1)), "an integer");
  EXPECT_EQ(DescribeJson(json(kU64Max)), "an integer");
  EXPECT_EQ(DescribeJson(json(0.5)), "a float (0.5)");
  EXPECT_EQ(DescribeJson(json("s")), "a string");
  EXPECT_EQ(DescribeJson(json(true)), "a boolean");
  EXPECT_EQ(DescribeJson(json::array()), "an array");
  EXPECT_EQ(DescribeJson(json::object()), "an object");
}

}  // namespace
}  // namespace loyalty
