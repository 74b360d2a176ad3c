// Feeds arbitrary text to the rules file parser and, when it is JSON, to the reader of the
// rules HQ pushes. Nothing may crash; an error is always rules_invalid; accepted rules are
// valid and survive a JSON round trip unchanged.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "loyalty/base/json.h"
#include "loyalty/rules/rules.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckAccepted(const loyalty::Result<loyalty::rules::Rules>& r) {
  if (!r.ok()) {
    Check(r.status().code() == loyalty::ErrorCode::kRulesInvalid);
    return;
  }
  Check(loyalty::rules::ValidateRules(*r).ok());
  auto back = loyalty::rules::RulesFromJson(loyalty::rules::RulesToJson(*r));
  Check(back.ok() && *back == *r);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  CheckAccepted(loyalty::rules::ParseRulesToml(text, "fuzz.toml"));
  // The rules HQ pushes arrive as JSON, read with the one limited parser.
  auto j = loyalty::ParseJson(text);
  if (j.ok()) CheckAccepted(loyalty::rules::RulesFromJson(*j));
  return 0;
}
