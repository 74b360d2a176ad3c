// Rules values: defaults, ranges, the TOML file and the JSON from HQ, and error messages
// that name the file, line, key and reason.

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "loyalty/rules/rules.h"

namespace loyalty::rules {
namespace {

const std::string kExample = std::string(LOYALTY_FIXTURES_DIR) + "/../../config/rules.example.toml";

std::string ErrorOf(std::string_view toml) {
  auto r = ParseRulesToml(toml, "rules.toml");
  return r.ok() ? "ok" : std::string(r.status().code_name()) + ": " + r.status().message();
}

TEST(Defaults, AreTheSpecTable) {
  Rules r = Rules::Defaults();
  EXPECT_TRUE(ValidateRules(r).ok()) << ValidateRules(r).ToString();
  EXPECT_EQ(r.version, "default");
  EXPECT_EQ(r.earn_points_per_yuan, 1);
  EXPECT_EQ(r.tiers.at("member"), (TierRule{10000, 0}));
  EXPECT_EQ(r.tiers.at("vip"), (TierRule{15000, 500}));
  EXPECT_EQ(r.tiers.at("black"), (TierRule{20000, 1000}));
  EXPECT_EQ(r.tiers.size(), 3u);
  EXPECT_EQ(r.vip_threshold_cents, 50000);
  EXPECT_EQ(r.black_threshold_cents, 200000);
  EXPECT_FALSE(r.provisional_upgrade);
  EXPECT_EQ(r.birthday_multiplier_bp, 20000);
  std::set<std::string> tg{"tobacco", "gift_card"};
  EXPECT_EQ(r.no_discount_categories, tg);
  EXPECT_EQ(r.no_points_categories, tg);
  EXPECT_EQ(r.no_redeem_categories, tg);
  EXPECT_EQ(r.cents_per_point, 1);
  EXPECT_EQ(r.redeem_step_points, 100);
  EXPECT_EQ(r.max_redeem_bp, 5000);
  EXPECT_EQ(r.redeem_cooldown_s, 600);
  EXPECT_EQ(r.points_validity_months, 12);
  EXPECT_EQ(r.max_points_per_hour, 5000);
  EXPECT_EQ(r.stale_after_s, 7200);
  EXPECT_EQ(r.stale_redeem_cap_points, 2000);
  EXPECT_FALSE(r.static_codes_can_redeem);
  EXPECT_EQ(r.refund_window_days, 7);
}

TEST(Toml, ExampleFileIsTheDefaults) {
  auto r = LoadRulesToml(kExample);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, Rules::Defaults());
}

TEST(Toml, EveryKeyIsRead) {
  auto r = ParseRulesToml(R"(
version = "2026-11-hq-7"
earn_points_per_yuan = 2
birthday_multiplier_bp = 30000
no_discount_categories = ["tobacco"]
no_points_categories = []
no_redeem_categories = ["gift_card", "烟草"]
cents_per_point = 2
redeem_step_points = 50
max_redeem_bp = 3000
redeem_cooldown_s = 60
points_validity_months = 24
max_points_per_hour = 9000
stale_after_s = 3600
stale_redeem_cap_points = 1000
static_codes_can_redeem = true
refund_window_days = 0
provisional_upgrade = true
tier_thresholds_cents = { vip = 10000, black = 90000 }
[tiers.vip]
discount_bp = 800
)",
                          "rules.toml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->version, "2026-11-hq-7");
  EXPECT_EQ(r->earn_points_per_yuan, 2);
  EXPECT_EQ(r->birthday_multiplier_bp, 30000);
  EXPECT_EQ(r->no_discount_categories, std::set<std::string>{"tobacco"});
  EXPECT_TRUE(r->no_points_categories.empty());
  EXPECT_EQ(r->no_redeem_categories, (std::set<std::string>{"gift_card", "烟草"}));
  EXPECT_EQ(r->cents_per_point, 2);
  EXPECT_EQ(r->redeem_step_points, 50);
  EXPECT_EQ(r->max_redeem_bp, 3000);
  EXPECT_EQ(r->redeem_cooldown_s, 60);
  EXPECT_EQ(r->points_validity_months, 24);
  EXPECT_EQ(r->max_points_per_hour, 9000);
  EXPECT_EQ(r->stale_after_s, 3600);
  EXPECT_EQ(r->stale_redeem_cap_points, 1000);
  EXPECT_TRUE(r->static_codes_can_redeem);
  EXPECT_EQ(r->refund_window_days, 0);
  EXPECT_TRUE(r->provisional_upgrade);
  EXPECT_EQ(r->vip_threshold_cents, 10000);
  EXPECT_EQ(r->black_threshold_cents, 90000);
  EXPECT_EQ(r->tiers.at("vip"), (TierRule{15000, 800}));  // multiplier keeps its default
  EXPECT_EQ(r->tiers.at("black"), (TierRule{20000, 1000}));
}

TEST(Toml, EmptyFileIsDefaultsWithADerivedVersion) {
  auto a = ParseRulesToml("", "rules.toml");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->version.rfind("local-", 0), 0u) << a->version;
  EXPECT_EQ(a->version.size(), 6u + 12u);
  Rules d = Rules::Defaults();
  d.version = a->version;
  EXPECT_EQ(*a, d);
  auto same = ParseRulesToml("# nothing but a comment\n", "other.toml");
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->version, a->version);
  auto changed = ParseRulesToml("max_redeem_bp = 4000\n", "rules.toml");
  ASSERT_TRUE(changed.ok());
  EXPECT_NE(changed->version, a->version);
}

TEST(Toml, ErrorsNameFileLineKeyAndReason) {
  EXPECT_EQ(ErrorOf("max_redeem_bp = 12000\n"),
            "rules_invalid: rules.toml:1: max_redeem_bp: must be 0..10000, got 12000");
  EXPECT_EQ(ErrorOf("\n\nredeem_step_points = 0\n"),
            "rules_invalid: rules.toml:3: redeem_step_points: must be 1..100000000, got 0");
  EXPECT_EQ(ErrorOf("cents_per_point = 0\n"),
            "rules_invalid: rules.toml:1: cents_per_point: must be 1..1000000, got 0");
  EXPECT_EQ(ErrorOf("max_redeem_bp = 0.5\n"),
            "rules_invalid: rules.toml:1: max_redeem_bp: must be an integer, got a float (0.5); "
            "rules use integers only");
  EXPECT_EQ(ErrorOf("max_redeem_bp = \"5000\"\n"),
            "rules_invalid: rules.toml:1: max_redeem_bp: must be an integer, got a string");
  EXPECT_EQ(ErrorOf("max_redem_bp = 5000\n"),
            "rules_invalid: rules.toml:1: max_redem_bp: unknown key");
  EXPECT_EQ(ErrorOf("[tiers.vip]\nmultiplier_bp = 15000\ndiscont_bp = 5\n"),
            "rules_invalid: rules.toml:3: tiers.vip.discont_bp: unknown key (a tier has "
            "multiplier_bp and discount_bp)");
  EXPECT_EQ(ErrorOf("[tiers.vip]\ndiscount_bp = 10001\n"),
            "rules_invalid: rules.toml:2: tiers.vip.discount_bp: must be 0..10000, got 10001");
  EXPECT_EQ(
      ErrorOf("[tiers.gold]\ndiscount_bp = 100\n"),
      "rules_invalid: rules.toml:1: tiers.gold: unknown tier (the tiers are member, vip, black)");
  EXPECT_EQ(ErrorOf("[tier_thresholds_cents]\nvip = 300000\n"),
            "rules_invalid: rules.toml:1: tier_thresholds_cents: vip (300000) must not be above "
            "black (200000)");
  EXPECT_EQ(ErrorOf("provisional_upgrade = 1\n"),
            "rules_invalid: rules.toml:1: provisional_upgrade: must be a boolean, got an integer");
  EXPECT_EQ(
      ErrorOf("no_points_categories = [\"tobacco\", 3]\n"),
      "rules_invalid: rules.toml:1: no_points_categories[1]: must be a string, got an integer");
  EXPECT_EQ(ErrorOf("no_points_categories = [\"a\\u0001b\"]\n"),
            "rules_invalid: rules.toml:1: no_points_categories: category \"a\\x01b\" must be at "
            "most 64 bytes of UTF-8 "
            "without control characters");
  EXPECT_EQ(ErrorOf("version = \"\"\n"),
            "rules_invalid: rules.toml:1: version: must be 1..128 bytes of UTF-8 without control "
            "characters");
  EXPECT_EQ(
      ErrorOf("refund_window_days = 1979-05-27\n"),
      "rules_invalid: rules.toml:1: refund_window_days: dates and times are not rules values");
  // Several problems are all reported.
  EXPECT_EQ(ErrorOf("max_redeem_bp = -1\nstale_after_s = -1\n"),
            "rules_invalid: rules.toml:1: max_redeem_bp: must be 0..10000, got -1; rules.toml:2: "
            "stale_after_s: must be "
            "0..315360000, got -1");
}

TEST(Toml, SyntaxErrorsNameLineAndColumn) {
  std::string e = ErrorOf("max_redeem_bp = \n");
  EXPECT_EQ(e.rfind("rules_invalid: rules.toml:1:", 0), 0u) << e;
  e = ErrorOf("a = 1\na = 2\n");
  EXPECT_EQ(e.rfind("rules_invalid: rules.toml:2:", 0), 0u) << e;
}

TEST(Toml, LoadNamesTheFile) {
  auto r = LoadRulesToml("/nonexistent/rules.toml");
  EXPECT_EQ(r.status().code(), ErrorCode::kRulesInvalid);
  EXPECT_EQ(r.status().message(),
            "/nonexistent/rules.toml: cannot open: No such file or directory");
  std::string path = std::string(LOYALTY_BINARY_DIR) + "/rules_test_bad.toml";
  {
    std::ofstream f(path);
    f << "# test\nmax_points_per_hour = 0\n";
  }
  auto bad = LoadRulesToml(path);
  EXPECT_EQ(bad.status().message(),
            path + ":2: max_points_per_hour: must be 1..1000000000000, got 0");
  std::remove(path.c_str());
}

TEST(Json, RoundTrip) {
  Rules d = Rules::Defaults();
  auto back = RulesFromJson(RulesToJson(d));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, d);

  Rules c = Rules::Defaults();
  c.version = "hq-42";
  c.tiers["black"] = {25000, 1500};
  c.no_points_categories = {"tobacco", "gift_card", "lottery", ""};
  c.provisional_upgrade = true;
  c.vip_threshold_cents = 1;
  c.black_threshold_cents = 2;
  c.refund_window_days = 0;
  auto j = RulesToJson(c);
  EXPECT_EQ(j["tiers"]["black"]["discount_bp"], 1500);
  EXPECT_EQ(j["tier_thresholds_cents"]["black"], 2);
  auto back2 = RulesFromJson(nlohmann::json::parse(j.dump()));
  ASSERT_TRUE(back2.ok()) << back2.status().ToString();
  EXPECT_EQ(*back2, c);
}

TEST(Json, SameKeysAsToml) {
  auto from_toml = LoadRulesToml(kExample);
  ASSERT_TRUE(from_toml.ok());
  auto j = RulesToJson(*from_toml);
  for (const char* key :
       {"version", "earn_points_per_yuan", "tiers", "tier_thresholds_cents", "provisional_upgrade",
        "birthday_multiplier_bp", "no_discount_categories", "no_points_categories",
        "no_redeem_categories", "cents_per_point", "redeem_step_points", "max_redeem_bp",
        "redeem_cooldown_s", "points_validity_months", "max_points_per_hour", "stale_after_s",
        "stale_redeem_cap_points", "static_codes_can_redeem", "refund_window_days"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j.size(), 19u);
}

TEST(Json, Errors) {
  auto e = [](const char* text) {
    auto r = RulesFromJson(nlohmann::json::parse(text));
    return r.ok() ? "ok" : std::string(r.status().code_name()) + ": " + r.status().message();
  };
  EXPECT_EQ(e(R"({"version":"v1"})"), "ok");
  EXPECT_EQ(e(R"({"max_redeem_bp": 1.5})"),
            "rules_invalid: rules JSON: max_redeem_bp: must be an integer, got a float (1.5); "
            "rules use integers only");
  EXPECT_EQ(e(R"({"max_redeem_bp": 18446744073709551615})"),
            "rules_invalid: rules JSON: max_redeem_bp: must be a 64-bit signed integer, got "
            "18446744073709551615");
  EXPECT_EQ(e(R"({"tiers": {"vip": {"discount_bp": -1}}})"),
            "rules_invalid: rules JSON: tiers.vip.discount_bp: must be 0..10000, got -1");
  EXPECT_EQ(
      e(R"({"tiers": []})"),
      "rules_invalid: rules JSON: tiers: must be a table of member, vip, black, got an array");
  EXPECT_EQ(e(R"([1])"),
            "rules_invalid: rules JSON: (top level): must be a table of rules, got an array");
  EXPECT_EQ(e(R"({"version": 3})"),
            "rules_invalid: rules JSON: version: must be a string, got an integer");
  EXPECT_EQ(e(R"({"bonus": 3})"), "rules_invalid: rules JSON: bonus: unknown key");
}

// The rules file is TOML: toml++ bounds nested values (256) but recursed over 100,000
// levels of table headers or dotted keys until it crashed. The pre-scan refuses them with a
// clean rules_invalid naming the line, and the tree is held to 32 levels as JSON bodies are.
TEST(RulesToml, DeepNestingIsRefusedCleanlyNotACrash) {
  auto repeat = [](const std::string& s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += s;
    return out;
  };
  const std::string nesting = "nests deeper than 32 levels";
  // 100,000-level table header and dotted key (200 KB), inline tables and arrays.
  EXPECT_EQ(ErrorOf("version = \"v\"\n[a" + repeat(".a", 100000) + "]\nx = 1\n"),
            "rules_invalid: rules.toml:2: " + nesting);
  EXPECT_EQ(ErrorOf("a" + repeat(".a", 100000) + " = 1\n"),
            "rules_invalid: rules.toml:1: " + nesting);
  EXPECT_EQ(ErrorOf("a = " + repeat("{b = ", 100000) + "1" + repeat("}", 100000) + "\n"),
            "rules_invalid: rules.toml:1: " + nesting);
  EXPECT_EQ(ErrorOf("a = " + std::string(100000, '[') + "1" + std::string(100000, ']') + "\n"),
            "rules_invalid: rules.toml:1: " + nesting);
  // At the edge: a key of 33 parts (32 dots) gets through the scan and is refused by the
  // reader at its 33rd level, by name; 34 parts stop at the scan.
  std::string key32 = "a" + repeat(".a", 32);
  std::string err = ErrorOf(key32 + " = 1\n");
  EXPECT_NE(err.find(nesting), std::string::npos) << err;
  EXPECT_EQ(err.find("rules.toml:1: nests"), std::string::npos) << err;  // not the scan
  EXPECT_EQ(ErrorOf(key32 + ".a = 1\n"), "rules_invalid: rules.toml:1: " + nesting);
  // 31 dots: 32 levels (the root table and 31 more), read whole and refused for what it is, an
  // unknown key.
  err = ErrorOf("a" + repeat(".a", 31) + " = 1\n");
  EXPECT_EQ(err.find(nesting), std::string::npos) << err;
  EXPECT_NE(err.find("unknown key"), std::string::npos) << err;
  // Dots in strings, comments and values are not nesting.
  EXPECT_EQ(ErrorOf("version = \"" + repeat(".", 100) + "\" # " + repeat(".", 100) + "\n"), "ok");
}

TEST(Validate, CatchesRulesBuiltInCode) {
  Rules r = Rules::Defaults();
  r.tiers.erase("vip");
  r.max_redeem_bp = 10001;
  Status s = ValidateRules(r);
  EXPECT_EQ(s.code(), ErrorCode::kRulesInvalid);
  EXPECT_EQ(s.message(),
            "rules: max_redeem_bp: must be 0..10000, got 10001; rules: tiers.vip: missing (every "
            "tier needs its rule)");
  r = Rules::Defaults();
  r.no_redeem_categories.insert(std::string(65, 'x'));
  EXPECT_EQ(ValidateRules(r).code(), ErrorCode::kRulesInvalid);
  r = Rules::Defaults();
  r.version = std::string(129, 'v');
  EXPECT_EQ(ValidateRules(r).code(), ErrorCode::kRulesInvalid);
  r.version = std::string(128, 'v');
  EXPECT_TRUE(ValidateRules(r).ok());
}

}  // namespace
}  // namespace loyalty::rules
