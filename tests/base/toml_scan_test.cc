// The TOML nesting pre-scan (base/toml_scan.h) at its edges: dots in one key or header,
// brackets, and everything that must not count (strings of every kind, comments, values).
#include "loyalty/base/toml_scan.h"

#include <gtest/gtest.h>

#include <string>

namespace loyalty {
namespace {

std::string Repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

TEST(TomlScan, ThirtyTwoDotsInAKeyOrHeaderPassThirtyThreeStop) {
  EXPECT_EQ(FindTooDeepTomlLine("a" + Repeat(".a", 32) + " = 1\n"), std::nullopt);
  EXPECT_EQ(FindTooDeepTomlLine("a" + Repeat(".a", 33) + " = 1\n"), 1u);
  EXPECT_EQ(FindTooDeepTomlLine("x = 1\n[a" + Repeat(".a", 32) + "]\n"), std::nullopt);
  EXPECT_EQ(FindTooDeepTomlLine("x = 1\n\n[a" + Repeat(".a", 33) + "]\n"), 3u);
  EXPECT_EQ(FindTooDeepTomlLine("[[a" + Repeat(".a", 33) + "]]\n"), 1u);
  // Each statement, and each key of an inline table, counts on its own.
  std::string keys = "a" + Repeat(".a", 32);
  EXPECT_EQ(FindTooDeepTomlLine(keys + " = 1\n" + keys + " = 2\n"), std::nullopt);
  EXPECT_EQ(FindTooDeepTomlLine("t = {" + keys + " = 1, " + keys + " = 2}\n"), std::nullopt);
  EXPECT_EQ(FindTooDeepTomlLine("t = {" + keys + ".a = 1}\n"), 1u);
}

TEST(TomlScan, ThirtyTwoBracketsPassThirtyThreeStop) {
  EXPECT_EQ(FindTooDeepTomlLine("a = " + std::string(32, '[') + "1" + std::string(32, ']') + "\n"),
            std::nullopt);
  EXPECT_EQ(FindTooDeepTomlLine("a = " + std::string(33, '[') + "1" + std::string(33, ']') + "\n"),
            1u);
  EXPECT_EQ(FindTooDeepTomlLine("a = " + Repeat("{b = ", 32) + "1" + Repeat("}", 32) + "\n"),
            std::nullopt);
  EXPECT_EQ(FindTooDeepTomlLine("a = " + Repeat("{b = ", 33) + "1" + Repeat("}", 33) + "\n"), 1u);
  // An array over several lines: the line where the limit is passed.
  EXPECT_EQ(FindTooDeepTomlLine("a = [\n" + std::string(32, '[') + "\n1]"), 2u);
  // The whole 100,000-level attack stops early and cheaply.
  EXPECT_EQ(FindTooDeepTomlLine("[a" + Repeat(".a", 100000) + "]\n"), 1u);
  EXPECT_EQ(FindTooDeepTomlLine("a = " + std::string(100000, '[')), 1u);
}

TEST(TomlScan, StringsCommentsAndValuesAreNotNesting) {
  const std::string dots = Repeat(".", 100), brackets = std::string(100, '[');
  EXPECT_EQ(FindTooDeepTomlLine("\"" + dots + "\" = 1\n"), std::nullopt);  // a quoted key
  EXPECT_EQ(FindTooDeepTomlLine("'" + dots + "' = 1\n"), std::nullopt);
  EXPECT_EQ(FindTooDeepTomlLine("v = \"" + brackets + dots + "\"\n"), std::nullopt);
  EXPECT_EQ(FindTooDeepTomlLine("v = \"\\\"" + brackets + "\"\n"),
            std::nullopt);  // an escaped quote
  EXPECT_EQ(FindTooDeepTomlLine("v = '" + brackets + "'\n"), std::nullopt);
  EXPECT_EQ(FindTooDeepTomlLine("v = \"\"\"\n" + brackets + "\n\"\n\"\"\"\n"), std::nullopt);
  EXPECT_EQ(FindTooDeepTomlLine("v = '''\n" + brackets + "\n'''\n"), std::nullopt);
  EXPECT_EQ(FindTooDeepTomlLine("# " + brackets + dots + "\nx = 1\n"), std::nullopt);
  EXPECT_EQ(FindTooDeepTomlLine("f = [" + Repeat("1.5, ", 100) + "]\n"),
            std::nullopt);  // dots in values
  EXPECT_EQ(FindTooDeepTomlLine("d = 2026-01-01T00:00:00.123Z\n"), std::nullopt);
  // After a string that spans lines, counting starts again where the code does.
  EXPECT_EQ(FindTooDeepTomlLine("v = '''\n'''\n" + std::string(33, '[')), 3u);
}

}  // namespace
}  // namespace loyalty
