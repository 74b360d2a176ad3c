// Rules values: defaults, ranges, and the two ways they arrive (the TOML file on the
// terminal, JSON pushed by HQ). Both are read from a JSON tree with loyalty::JsonReader
// (base/json_reader.h), so a key means the same thing and fails with the same message
// wherever it comes from; the TOML path only adds line numbers.

#include <toml++/toml.h>

#include <limits>
#include <map>
#include <string>
#include <vector>

#include "loyalty/base/file.h"
#include "loyalty/base/hash.h"
#include "loyalty/base/json.h"
#include "loyalty/base/json_reader.h"
#include "loyalty/base/toml_scan.h"
#include "loyalty/rules/rules.h"
#include "text.h"

namespace loyalty::rules {
namespace {

using nlohmann::json;

constexpr ErrorCode kCode = ErrorCode::kRulesInvalid;
constexpr size_t kMaxFileBytes = 1 << 20;
constexpr size_t kMaxVersionBytes = 128;
constexpr size_t kMaxCategories = 1000;
const char* const kTierNames[] = {"member", "vip", "black"};

struct IntKey {
  const char* key;
  int64_t Rules::*field;
  int64_t lo, hi;
};

// The ranges keep every product in quotes and refunds well inside 128 bits and every
// result inside int64 (docs/rules.md, "Ranges"), and refuse values that make no sense
// (a redemption step of 0, points worth 0 cents).
const IntKey kIntKeys[] = {
    {"earn_points_per_yuan", &Rules::earn_points_per_yuan, 0, 10000},
    {"birthday_multiplier_bp", &Rules::birthday_multiplier_bp, 0, 100000},
    {"cents_per_point", &Rules::cents_per_point, 1, 1000000},
    {"redeem_step_points", &Rules::redeem_step_points, 1, 100000000},
    {"max_redeem_bp", &Rules::max_redeem_bp, 0, 10000},
    {"redeem_cooldown_s", &Rules::redeem_cooldown_s, 0, 31536000},
    {"points_validity_months", &Rules::points_validity_months, 1, 1200},
    {"max_points_per_hour", &Rules::max_points_per_hour, 1, 1000000000000},
    {"stale_after_s", &Rules::stale_after_s, 0, 315360000},
    {"stale_redeem_cap_points", &Rules::stale_redeem_cap_points, 0, 100000000},
    {"refund_window_days", &Rules::refund_window_days, 0, 3650},
};
constexpr int64_t kMaxThresholdCents = 1000000000000000;  // 10^13 yuan
constexpr int64_t kMaxMultiplierBp = 100000;
constexpr int64_t kMaxDiscountBp = 10000;

struct BoolKey {
  const char* key;
  bool Rules::*field;
};
const BoolKey kBoolKeys[] = {
    {"provisional_upgrade", &Rules::provisional_upgrade},
    {"static_codes_can_redeem", &Rules::static_codes_can_redeem},
};

struct SetKey {
  const char* key;
  std::set<std::string> Rules::*field;
};
const SetKey kSetKeys[] = {
    {"no_discount_categories", &Rules::no_discount_categories},
    {"no_points_categories", &Rules::no_points_categories},
    {"no_redeem_categories", &Rules::no_redeem_categories},
};

struct Problem {
  std::string key, reason;
};

std::string RangeReason(int64_t lo, int64_t hi, int64_t got) {
  return "must be " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " +
         std::to_string(got);
}

bool IsTierName(std::string_view name) {
  for (const char* t : kTierNames)
    if (name == t) return true;
  return false;
}

std::vector<Problem> Problems(const Rules& r) {
  std::vector<Problem> out;
  if (r.version.empty() || r.version.size() > kMaxVersionBytes || !internal::IsCleanText(r.version))
    out.push_back({"version", "must be 1..128 bytes of UTF-8 without control characters"});
  for (const auto& k : kIntKeys) {
    int64_t v = r.*k.field;
    if (v < k.lo || v > k.hi) out.push_back({k.key, RangeReason(k.lo, k.hi, v)});
  }
  for (const auto& [name, tier] : r.tiers) {
    if (!IsTierName(name)) {
      out.push_back({"tiers." + name, "unknown tier (the tiers are member, vip, black)"});
      continue;
    }
    if (tier.multiplier_bp < 0 || tier.multiplier_bp > kMaxMultiplierBp)
      out.push_back({"tiers." + name + ".multiplier_bp",
                     RangeReason(0, kMaxMultiplierBp, tier.multiplier_bp)});
    if (tier.discount_bp < 0 || tier.discount_bp > kMaxDiscountBp)
      out.push_back(
          {"tiers." + name + ".discount_bp", RangeReason(0, kMaxDiscountBp, tier.discount_bp)});
  }
  for (const char* t : kTierNames)
    if (!r.tiers.count(t))
      out.push_back({std::string("tiers.") + t, "missing (every tier needs its rule)"});
  if (r.vip_threshold_cents < 0 || r.vip_threshold_cents > kMaxThresholdCents)
    out.push_back(
        {"tier_thresholds_cents.vip", RangeReason(0, kMaxThresholdCents, r.vip_threshold_cents)});
  if (r.black_threshold_cents < 0 || r.black_threshold_cents > kMaxThresholdCents)
    out.push_back({"tier_thresholds_cents.black",
                   RangeReason(0, kMaxThresholdCents, r.black_threshold_cents)});
  if (r.vip_threshold_cents > r.black_threshold_cents)
    out.push_back({"tier_thresholds_cents", "vip (" + std::to_string(r.vip_threshold_cents) +
                                                ") must not be above black (" +
                                                std::to_string(r.black_threshold_cents) + ")"});
  for (const auto& k : kSetKeys) {
    const auto& set = r.*k.field;
    if (set.size() > kMaxCategories)
      out.push_back({k.key, "at most " + std::to_string(kMaxCategories) + " categories, got " +
                                std::to_string(set.size())});
    for (const auto& c : set) {
      if (c.size() > kMaxTextBytes || !internal::IsCleanText(c))
        out.push_back({k.key, "category " + internal::Printable(c) +
                                  " must be at most 64 bytes of UTF-8 without control characters"});
    }
  }
  return out;
}

// Errors collected while reading one source, each "<where>: <key>: <reason>".
class Errors {
 public:
  Errors(std::string source, const std::map<std::string, int>* lines)
      : source_(std::move(source)), lines_(lines) {}

  void Fail(const std::string& key, const std::string& reason) {
    std::string where = source_;
    if (lines_ != nullptr) {
      // A range problem may name a key the source spelt further down (tiers.vip when
      // tiers.vip.discount_bp is wrong): the nearest recorded ancestor gives the line.
      std::string k = key;
      for (;;) {
        auto it = lines_->find(k);
        if (it != lines_->end()) {
          where += ":" + std::to_string(it->second);
          break;
        }
        size_t dot = k.find_last_of('.');
        if (dot == std::string::npos) break;
        k.resize(dot);
      }
    }
    errors_.push_back(where + ": " + key + ": " + reason);
  }

  // The problems a JsonReader recorded (its paths are the keys, "tiers.vip.discount_bp").
  void Add(const std::vector<JsonProblem>& problems) {
    for (const auto& p : problems) Fail(p.path.empty() ? "(top level)" : p.path, p.reason);
  }

  bool ok() const { return errors_.empty(); }
  Status ToStatus() const {
    std::string msg;
    for (const auto& e : errors_) msg += (msg.empty() ? "" : "; ") + e;
    return Status::Error(kCode, msg);
  }

 private:
  std::string source_;
  const std::map<std::string, int>* lines_;
  std::vector<std::string> errors_;
};

// The rules are read with ErrorMode::kAll: every key is read and every problem reported.
// Ranges are checked afterwards on the values (Problems), as for rules built in code.

// A float gets a hint: in a TOML file 0.5 is as easy to write as 5.
bool ReadInt(const JsonReader& v, int64_t* out) {
  if (v.value() != nullptr && v.value()->is_number_float())
    return v.Fail("must be an integer, got " + DescribeJson(*v.value()) +
                  "; rules use integers only");
  return v.Int(out);
}

void ReadCategories(const JsonReader& v, std::set<std::string>* out) {
  out->clear();
  v.Array(0, JsonReader::kNoLimit, [out](const JsonReader& category) {
    std::string name;
    if (category.Str(&name)) out->insert(std::move(name));
  });
}

void ReadTiers(const JsonReader& tiers, Rules* r) {
  if (!tiers.ExpectObject("a table of member, vip, black")) return;
  tiers.Fields([r](const std::string& name, const JsonReader& tier) {
    if (!IsTierName(name)) {
      tier.Fail("unknown tier (the tiers are member, vip, black)");
      return;
    }
    if (!tier.ExpectObject("a table with multiplier_bp and discount_bp")) return;
    TierRule& rule = r->tiers[name];
    tier.Fields([&rule](const std::string& key, const JsonReader& v) {
      if (key == "multiplier_bp") {
        ReadInt(v, &rule.multiplier_bp);
      } else if (key == "discount_bp") {
        ReadInt(v, &rule.discount_bp);
      } else {
        v.Fail("unknown key (a tier has multiplier_bp and discount_bp)");
      }
    });
  });
}

void ReadThresholds(const JsonReader& thresholds, Rules* r) {
  if (!thresholds.ExpectObject("a table with vip and black")) return;
  thresholds.Fields([r](const std::string& key, const JsonReader& v) {
    if (key == "vip") {
      ReadInt(v, &r->vip_threshold_cents);
    } else if (key == "black") {
      ReadInt(v, &r->black_threshold_cents);
    } else {
      v.Fail("unknown key (the thresholds are vip and black)");
    }
  });
}

// The entry of a key table (kIntKeys, kBoolKeys, kSetKeys) for `key`, or nullptr.
template <typename Key, size_t N>
const Key* Find(const Key (&keys)[N], const std::string& key) {
  for (const auto& k : keys)
    if (key == k.key) return &k;
  return nullptr;
}

// Reads every key of `root` over the defaults, then checks the ranges.
Result<Rules> ReadRules(const json& root, Errors& errors) {
  Rules r = Rules::Defaults();
  bool has_version = false;
  JsonReader in(root, kCode, ErrorMode::kAll);
  if (in.ExpectObject("a table of rules")) {
    in.Fields([&r, &has_version](const std::string& key, const JsonReader& v) {
      if (key == "version") {
        has_version = true;
        v.Str(&r.version);
      } else if (key == "tiers") {
        ReadTiers(v, &r);
      } else if (key == "tier_thresholds_cents") {
        ReadThresholds(v, &r);
      } else if (const IntKey* ik = Find(kIntKeys, key)) {
        ReadInt(v, &(r.*ik->field));
      } else if (const BoolKey* bk = Find(kBoolKeys, key)) {
        v.Bool(&(r.*bk->field));
      } else if (const SetKey* sk = Find(kSetKeys, key)) {
        ReadCategories(v, &(r.*sk->field));
      } else {
        v.Fail("unknown key");
      }
    });
  }
  errors.Add(in.problems());
  if (!errors.ok()) return errors.ToStatus();
  for (const auto& p : Problems(r)) errors.Fail(p.key, p.reason);
  if (!errors.ok()) return errors.ToStatus();
  if (!has_version) {
    json canonical = RulesToJson(r);
    canonical.erase("version");
    r.version = "local-" + ShortHash(canonical.dump());
  }
  return r;
}

// TOML → JSON tree, remembering the line of every key for messages. Dates and times have
// no meaning in the rules and are refused here, where their line is known.
// depth: the level n would be at in JSON (the root table is 1). Tables and arrays deeper than
// kMaxJsonDepth are refused here, as JSON bodies are, and not walked any further.
json TomlToJson(const toml::node& n, const std::string& path, std::map<std::string, int>& lines,
                std::vector<std::pair<std::string, std::string>>& refused, int depth = 1) {
  if (!path.empty()) lines.emplace(path, static_cast<int>(n.source().begin.line));
  if ((n.is_table() || n.is_array()) && depth > kMaxJsonDepth) {
    refused.emplace_back(path, "nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    return nullptr;
  }
  if (const auto* t = n.as_table()) {
    json obj = json::object();
    for (auto&& [k, v] : *t) {
      std::string name(k.str());
      obj[name] = TomlToJson(v, path.empty() ? name : path + "." + name, lines, refused, depth + 1);
    }
    return obj;
  }
  if (const auto* a = n.as_array()) {
    json arr = json::array();
    for (size_t i = 0; i < a->size(); ++i)
      arr.push_back(
          TomlToJson(*a->get(i), path + "[" + std::to_string(i) + "]", lines, refused, depth + 1));
    return arr;
  }
  if (const auto* i = n.as_integer()) return i->get();
  if (const auto* f = n.as_floating_point()) return f->get();
  if (const auto* b = n.as_boolean()) return b->get();
  if (const auto* s = n.as_string()) return s->get();
  refused.emplace_back(path, "dates and times are not rules values");
  return nullptr;
}

}  // namespace

Rules Rules::Defaults() {
  Rules r;
  r.tiers = {{"member", {10000, 0}}, {"vip", {15000, 500}}, {"black", {20000, 1000}}};
  r.no_discount_categories = r.no_points_categories =
      r.no_redeem_categories = {"tobacco", "gift_card"};
  return r;
}

Status ValidateRules(const Rules& rules) {
  Errors errors("rules", nullptr);
  for (const auto& p : Problems(rules)) errors.Fail(p.key, p.reason);
  return errors.ok() ? Status::Ok() : errors.ToStatus();
}

json RulesToJson(const Rules& r) {
  json j = json::object();
  j["version"] = r.version;
  for (const auto& k : kIntKeys) j[k.key] = r.*k.field;
  for (const auto& k : kBoolKeys) j[k.key] = r.*k.field;
  for (const auto& k : kSetKeys) j[k.key] = json(r.*k.field);  // a set is written sorted
  json tiers = json::object();
  for (const auto& [name, t] : r.tiers)
    tiers[name] = {{"multiplier_bp", t.multiplier_bp}, {"discount_bp", t.discount_bp}};
  j["tiers"] = std::move(tiers);
  j["tier_thresholds_cents"] = {{"vip", r.vip_threshold_cents}, {"black", r.black_threshold_cents}};
  return j;
}

Result<Rules> RulesFromJson(const json& j) {
  Errors errors("rules JSON", nullptr);
  return ReadRules(j, errors);
}

Result<Rules> ParseRulesToml(std::string_view text, const std::string& source_name) {
  // toml++ recurses over nested tables (100,000 levels of `[a.a…]` crash it): bound the
  // nesting in one linear pass before it parses anything.
  if (auto line = FindTooDeepTomlLine(text, kMaxJsonDepth)) {
    return Status::Error(kCode, source_name + ":" + std::to_string(*line) + ": nests deeper than " +
                                    std::to_string(kMaxJsonDepth) + " levels");
  }
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    const auto& pos = e.source().begin;
    return Status::Error(kCode, source_name + ":" + std::to_string(pos.line) + ":" +
                                    std::to_string(pos.column) + ": " +
                                    std::string(e.description()));
  } catch (const std::exception& e) {
    return Status::Error(kCode, source_name + ": cannot parse: " + e.what());
  }
  std::map<std::string, int> lines;
  std::vector<std::pair<std::string, std::string>> refused;
  json tree = TomlToJson(root, "", lines, refused);
  Errors errors(source_name, &lines);
  for (const auto& [key, reason] : refused) errors.Fail(key, reason);
  if (!errors.ok()) return errors.ToStatus();
  return ReadRules(tree, errors);
}

Result<Rules> LoadRulesToml(const std::string& path) {
  auto data = ReadFileCapped(path, kMaxFileBytes);
  if (!data.ok()) return Status::Error(kCode, data.status().message());
  return ParseRulesToml(*data, path);
}

}  // namespace loyalty::rules
