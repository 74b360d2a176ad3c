#include "loyalty/base/json_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace loyalty {
namespace {

using nlohmann::json;

// Emits j through a JsonWriter, walking the tree the way a hot path would write the same
// document by hand. Floating-point numbers go in through Raw (the writer has no Double).
void WriteWith(JsonWriter& w, const json& j) {
  switch (j.type()) {
    case json::value_t::object:
      w.BeginObject();
      for (const auto& [k, v] : j.items()) {
        w.Key(k);
        WriteWith(w, v);
      }
      w.EndObject();
      break;
    case json::value_t::array:
      w.BeginArray();
      for (const auto& v : j) WriteWith(w, v);
      w.EndArray();
      break;
    case json::value_t::string:
      w.String(j.get_ref<const std::string&>());
      break;
    case json::value_t::number_integer:
      w.Int(j.get<int64_t>());
      break;
    case json::value_t::number_unsigned:
      w.UInt(j.get<uint64_t>());
      break;
    case json::value_t::boolean:
      w.Bool(j.get<bool>());
      break;
    case json::value_t::null:
      w.Null();
      break;
    default:
      w.Raw(j.dump());
      break;
  }
}

std::string WriteWith(const json& j) {
  std::string out;
  JsonWriter w(out);
  WriteWith(w, j);
  return out;
}

// Both ways of producing text must print exactly dump()'s bytes.
void ExpectSameAsDump(const json& j) {
  const std::string want = j.dump();
  EXPECT_EQ(DumpCanonical(j), want);
  EXPECT_EQ(WriteWith(j), want);
  std::string appended = "prefix";
  DumpCanonical(j, appended);
  EXPECT_EQ(appended, "prefix" + want);
}

// Every string worth checking once, as a value, as a key and inside containers.
std::vector<std::string> EdgeStrings() {
  std::vector<std::string> s = {
      "",
      "a",
      "plain ascii",
      "/",
      "\x7f",
      "\"",
      "\\",
      "\\\"",
      "\"\"\"",
      "a\"b\\c",
      "普通会员",               // 3-byte UTF-8
      "😀",                      // 4-byte UTF-8
      "张*·138****5678·€·𝄞·ÿ",  // mixed lengths
      "\xc2\x80",
      "\xdf\xbf",
      "\xe0\xa0\x80",
      "\xed\x9f\xbf",
      "\xee\x80\x80",
      "\xef\xbf\xbf",
      "\xf0\x90\x80\x80",
      "\xf4\x8f\xbf\xbf",                                // the ends of each UTF-8 length class
      "SKU-0001-ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789",  // longer than a few 8-byte words
  };
  for (int c = 0; c < 0x20; ++c) {
    s.push_back(std::string(1, static_cast<char>(c)));
    s.push_back("before" + std::string(1, static_cast<char>(c)) + "after");
  }
  s.push_back(std::string("nul\0inside", 10));
  return s;
}

TEST(JsonWriter, EscapesLikeNlohmann) {
  // Spelled out once, so a change in what dump() prints is noticed rather than followed.
  EXPECT_EQ(json("\x1f").dump(), "\"\\u001f\"");
  std::string out;
  JsonWriter w(out);
  w.BeginArray()
      .String("\b\t\n\f\r")
      .String(std::string("\0\x01\x0b\x1f", 4))
      .String("\"\\/\x7f")
      .String("普通😀")
      .EndArray();
  EXPECT_EQ(out,
            "[\"\\b\\t\\n\\f\\r\",\"\\u0000\\u0001\\u000b\\u001f\",\"\\\"\\\\/\x7f\",\"普通😀\"]");
}

TEST(JsonWriter, EdgeStringsMatchDump) {
  for (const auto& s : EdgeStrings()) {
    SCOPED_TRACE(testing::PrintToString(s));
    ExpectSameAsDump(json(s));
    ExpectSameAsDump(json::object({{s, s}}));
    ExpectSameAsDump(json::array({s, 1, s}));
    ExpectSameAsDump(
        json::object({{"a", s}, {s, json::array({s})}, {"z", json::object({{s, nullptr}})}}));
  }
}

TEST(JsonWriter, SpecialByteAtEveryPositionOfEveryLength) {
  // The plain-byte scan works 8 bytes at a time: a byte to escape (or a UTF-8 sequence) must be
  // found wherever it falls in or across the words.
  const std::vector<std::string> specials = {
      "\"", "\\", std::string(1, '\0'), "\x1f", "\n", "\x7f", "é", "普", "😀"};
  for (size_t len = 0; len <= 40; ++len) {
    for (size_t pos = 0; pos <= len; ++pos) {
      for (const auto& sp : specials) {
        std::string s(len, 'x');
        s.insert(pos, sp);
        SCOPED_TRACE(testing::PrintToString(s));
        ExpectSameAsDump(json(s));
      }
    }
  }
}

TEST(JsonWriter, ScalarsAndEmptyContainersMatchDump) {
  const std::vector<json> docs = {
      json::object(),
      json::array(),
      nullptr,
      true,
      false,
      0,
      -1,
      1,
      std::numeric_limits<int64_t>::min(),
      std::numeric_limits<int64_t>::max(),
      std::numeric_limits<uint64_t>::max(),
      uint64_t{1} << 63,
      json::array({json::array(), json::object(), json::array({json::object()})}),
      json::object({{"a", json::object()}, {"b", json::array()}, {"c", nullptr}}),
      json::object({{"t", true},
                    {"f", false},
                    {"n", nullptr},
                    {"min", std::numeric_limits<int64_t>::min()},
                    {"max", std::numeric_limits<uint64_t>::max()}}),
      json::parse(R"({"z":1,"a":{"y":[1,2,{"b":null,"a":true}],"x":"s"},"m":[]})"),
      json::parse(R"({"checkout_id":"c-1","lines":[{"sku":"A","qty":2,"unit_price_cents":1250}]})"),
  };
  for (const auto& j : docs) {
    SCOPED_TRACE(j.dump());
    ExpectSameAsDump(j);
  }
}

TEST(JsonWriter, KeysAreTakenInByteOrderAsNlohmannStoresThem) {
  // std::map compares keys byte-wise as unsigned chars: "Z" < "a" < "é" < "😀".
  json j = json::object({{"😀", 4}, {"a", 2}, {"é", 3}, {"Z", 1}, {"", 0}});
  EXPECT_EQ(DumpCanonical(j), R"({"":0,"Z":1,"a":2,"é":3,"😀":4})");
  ExpectSameAsDump(j);
}

TEST(JsonWriter, DeepNestingMatchesDump) {
  // 100 levels, and 200 to go past the 64 levels the writer keeps in one word; siblings after
  // each closing bracket check that every level's comma state comes back intact.
  for (int depth : {63, 64, 65, 100, 200}) {
    json arrays = 1;
    json objects = "leaf";
    json mixed = nullptr;
    json comb = json::array();  // each level opens and closes one container before the next
    for (int i = 0; i < depth; ++i) {
      comb = json::array({json::array({i}), json::object({{"k", comb}}), json::array()});
      arrays = json::array({arrays, i});
      objects = json::object({{"k", objects}, {"n", i}});
      mixed = i % 2 ? json::array({i, mixed, "x"})
                    : json::object({{"a", i}, {"b", mixed}, {"c", json::array()}});
    }
    SCOPED_TRACE(depth);
    ExpectSameAsDump(arrays);
    ExpectSameAsDump(objects);
    ExpectSameAsDump(mixed);
    ExpectSameAsDump(comb);
  }
}

TEST(JsonWriter, FloatingPointFallsBackToDump) {
  const std::vector<json> docs = {
      1.5,
      -0.0,
      0.0,
      1e300,
      -1e-300,
      0.1,
      5e-324,
      std::numeric_limits<double>::max(),
      std::nan(""),                             // dump() prints null
      std::numeric_limits<double>::infinity(),  // and null here too
      json::array({1.5, -0.0, 1e300, 2}),
      json::object({{"price", 12.5}, {"qty", 2}, {"ratio", 1.0 / 3.0}}),
      json::parse(R"({"a":[1.0,2.50,-0.0,1E2,123456789012345678901234567890]})"),
      json::binary({1, 2, 3}),
      json::object({{"blob", json::binary({0xff, 0}, 7)}}),
  };
  for (const auto& j : docs) {
    SCOPED_TRACE(j.dump());
    ExpectSameAsDump(j);
  }
}

TEST(JsonWriter, InvalidUtf8ThrowsWhatDumpThrows) {
  const std::vector<std::string> invalid = {
      "\xff",
      "\x80",              // stray continuation
      "\xc0\x80",          // overlong
      "\xc1\xbf",          // overlong
      "\xe0\x80\x80",      // overlong
      "\xe0\x9f\xbf",      // overlong
      "\xed\xa0\x80",      // surrogate
      "\xed\xbf\xbf",      // surrogate
      "\xf0\x80\x80\x80",  // overlong
      "\xf0\x8f\xbf\xbf",  // overlong
      "\xf4\x90\x80\x80",  // above U+10FFFF
      "\xf5\x80\x80\x80",
      "\xe6\x99",        // truncated at the end
      "\xe6\x99x",       // truncated inside
      "\xf0\x9f\x98",    // truncated 4-byte
      "ok so far \xc2",  // truncated after plain text
      "普通\xff会员",
  };
  for (const auto& bad : invalid) {
    SCOPED_TRACE(testing::PrintToString(bad));
    for (const json& j : {json(bad), json::array({1, "fine", bad}), json::object({{bad, 1}}),
                          json::object({{"a", json::object({{"b", bad}})}})}) {
      std::string want;
      try {
        (void)j.dump();
        ADD_FAILURE() << "dump() accepted it";
      } catch (const json::type_error& e) {
        EXPECT_EQ(e.id, 316);
        want = e.what();
      }
      try {
        (void)DumpCanonical(j);
        ADD_FAILURE() << "DumpCanonical accepted it";
      } catch (const json::type_error& e) {
        EXPECT_EQ(std::string(e.what()), want);
      }
      std::string out = "kept";
      EXPECT_THROW(DumpCanonical(j, out), json::type_error);
      EXPECT_EQ(out, "kept");
    }
  }
}

TEST(JsonWriter, RandomByteStringsAgreeWithDumpOnValidity) {
  // Bytes drawn mostly from the UTF-8 lead and continuation ranges, so that valid and invalid
  // sequences of every kind come up; the verdict and the bytes must be dump()'s.
  std::mt19937 rng(20240611);
  std::uniform_int_distribution<int> len_dist(0, 12);
  const std::vector<std::pair<int, int>> ranges = {{0x00, 0x7f}, {0x80, 0xbf}, {0xc0, 0xdf},
                                                   {0xe0, 0xef}, {0xf0, 0xff}, {0x8f, 0xa0},
                                                   {0x20, 0x7f}};
  std::uniform_int_distribution<size_t> range_dist(0, ranges.size() - 1);
  int valid = 0, invalid = 0;
  for (int n = 0; n < 50000; ++n) {
    std::string s;
    for (int i = len_dist(rng); i > 0; --i) {
      auto [lo, hi] = ranges[range_dist(rng)];
      s += static_cast<char>(std::uniform_int_distribution<int>(lo, hi)(rng));
    }
    const json j(s);
    std::string want, got;
    bool want_throw = false, got_throw = false;
    try {
      want = j.dump();
    } catch (const json::type_error& e) {
      want_throw = true;
      want = e.what();
    }
    try {
      got = DumpCanonical(j);
    } catch (const json::type_error& e) {
      got_throw = true;
      got = e.what();
    }
    ASSERT_EQ(got_throw, want_throw) << testing::PrintToString(s);
    ASSERT_EQ(got, want) << testing::PrintToString(s);
    if (!want_throw) {
      ASSERT_EQ(WriteWith(j), want) << testing::PrintToString(s);
    }
    ++(want_throw ? invalid : valid);
  }
  // Both outcomes must have been exercised for the comparison to mean anything.
  EXPECT_GT(valid, 5000);
  EXPECT_GT(invalid, 5000);
}

// Random documents: nested objects and arrays of strings (ASCII, escapes, UTF-8), integers at
// the edges and in between, booleans, null and a few floating-point numbers.
class RandomDoc {
 public:
  explicit RandomDoc(uint32_t seed) : rng_(seed) {}

  // The top two levels are always containers, the sixth never is.
  json Make(int depth) {
    int kind = Uniform(depth < 2 ? 7 : 0, depth >= 5 ? 6 : 8);
    switch (kind) {
      case 0:
        return nullptr;
      case 1:
        return Uniform(0, 1) == 1;
      case 2:
        return Int();
      case 3:
        return UInt();
      case 4:
        return Str();
      case 5:
        return Double();
      case 6:
        return Str();
      case 7: {
        json a = json::array();
        for (int i = Uniform(0, 5); i > 0; --i) a.push_back(Make(depth + 1));
        return a;
      }
      default: {
        json o = json::object();
        for (int i = Uniform(0, 5); i > 0; --i) o[Str()] = Make(depth + 1);
        return o;
      }
    }
  }

 private:
  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  int64_t Int() {
    switch (Uniform(0, 3)) {
      case 0:
        return std::numeric_limits<int64_t>::min() + Uniform(0, 2);
      case 1:
        return std::numeric_limits<int64_t>::max() - Uniform(0, 2);
      case 2:
        return Uniform(-1000, 1000);
      default:
        return static_cast<int64_t>(std::uniform_int_distribution<uint64_t>()(rng_));
    }
  }

  uint64_t UInt() {
    switch (Uniform(0, 2)) {
      case 0:
        return std::numeric_limits<uint64_t>::max() - static_cast<uint64_t>(Uniform(0, 2));
      case 1:
        return static_cast<uint64_t>(Uniform(0, 100000));
      default:
        return std::uniform_int_distribution<uint64_t>()(rng_);
    }
  }

  double Double() {
    switch (Uniform(0, 3)) {
      case 0:
        return -0.0;
      case 1:
        return Uniform(-100000, 100000) / 100.0;
      case 2:
        return std::ldexp(static_cast<double>(Uniform(1, 1 << 30)), Uniform(-1070, 990));
      default:
        return 1.5;
    }
  }

  std::string Str() {
    static const std::vector<std::string> pieces = {"a",
                                                    "sku",
                                                    "Z",
                                                    "0",
                                                    " ",
                                                    "/",
                                                    "\"",
                                                    "\\",
                                                    "\x7f",
                                                    "\n",
                                                    "\t",
                                                    "\x01",
                                                    "\x1f",
                                                    std::string(1, '\0'),
                                                    "é",
                                                    "€",
                                                    "普通",
                                                    "会员",
                                                    "😀",
                                                    "𝄞",
                                                    "\xf4\x8f\xbf\xbf",
                                                    "unit_price_cents",
                                                    "ABCDEFGHIJ"};
    std::string s;
    for (int i = Uniform(0, 8); i > 0; --i)
      s += pieces[static_cast<size_t>(Uniform(0, int(pieces.size()) - 1))];
    return s;
  }

  std::mt19937 rng_;
};

TEST(JsonWriter, RandomDocumentsMatchDump) {
  RandomDoc gen(7);
  size_t total_bytes = 0;
  for (int n = 0; n < 3000; ++n) {
    const json j = gen.Make(0);
    const std::string want = j.dump();
    total_bytes += want.size();
    ASSERT_EQ(DumpCanonical(j), want) << n;
    ASSERT_EQ(WriteWith(j), want) << n;
    // And the text parses back to the same document, as a stored request must.
    ASSERT_EQ(DumpCanonical(json::parse(want)), want) << n;
  }
  EXPECT_GT(total_bytes / 3000, 100u);  // documents, not mostly scalars
}

TEST(JsonWriter, RawSplicesVerbatimWithCommas) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject()
      .Key("a")
      .Raw("1.25")
      .Key("b")
      .Raw(R"({"x":[1,2]})")
      .Key("c")
      .BeginArray()
      .Raw("true")
      .Raw("[]")
      .Int(3)
      .Raw("\"s\"")
      .EndArray()
      .Key("d")
      .Raw(DumpCanonical(json::parse(R"({"q":2,"p":1})")))
      .EndObject();
  EXPECT_EQ(out, R"({"a":1.25,"b":{"x":[1,2]},"c":[true,[],3,"s"],"d":{"p":1,"q":2}})");
  EXPECT_EQ(json::parse(out).dump(), out);

  std::string top;
  JsonWriter(top).Raw("[1, 2]");  // verbatim, spaces and all
  EXPECT_EQ(top, "[1, 2]");
}

TEST(JsonWriter, AppendsAfterExistingTextAndBuildsACheckoutBody) {
  std::string out = "body=";
  JsonWriter w(out);
  w.BeginObject().Key("checkout_id").String("c-1").Key("lines").BeginArray();
  for (int i = 0; i < 3; ++i) {
    w.BeginObject().Key("qty").Int(i + 1).Key("sku").String("S" + std::to_string(i)).EndObject();
  }
  w.EndArray()
      .Key("member")
      .Null()
      .Key("offline")
      .Bool(false)
      .Key("points")
      .UInt(18446744073709551615ull)
      .EndObject();
  EXPECT_EQ(&w.out(), &out);
  EXPECT_EQ(
      out,
      "body="
      R"({"checkout_id":"c-1","lines":[{"qty":1,"sku":"S0"},{"qty":2,"sku":"S1"},{"qty":3,"sku":"S2"}],)"
      R"("member":null,"offline":false,"points":18446744073709551615})");
  EXPECT_EQ(out.substr(5), json::parse(out.substr(5)).dump());
}

}  // namespace
}  // namespace loyalty
