// The one JSON parser for outside input (base/json.h). Never crashes or throws; refuses with
// bad_request only; within the depth limit it accepts exactly what nlohmann accepts (and
// builds the same value), beyond it refuses; the depth it measures is the parsed value's.
// Two deliberate differences: a NUL byte is refused (nlohmann takes it for the end of input),
// and so is a key twice in one object (nlohmann keeps the last).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "loyalty/base/encoding.h"
#include "loyalty/base/json.h"
#include "loyalty/base/json_writer.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

// The nesting of a parsed value (the same count as JsonDepth: containers are levels).
int DepthOf(const nlohmann::json& j) {
  if (!j.is_structured()) return 0;
  int deepest = 0;
  for (const auto& v : j) {
    int d = DepthOf(v);
    if (d > deepest) deepest = d;
  }
  return deepest + 1;
}

// Whether some object of valid JSON `text` has a key twice, told by nlohmann's parser
// events (a set of keys per open object).
bool HasKeyTwice(std::string_view text) {
  std::vector<std::set<std::string>> open;
  bool twice = false;
  nlohmann::json::parser_callback_t cb = [&](int, nlohmann::json::parse_event_t event,
                                             nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) open.emplace_back();
    if (event == E::object_end && !open.empty()) open.pop_back();
    if (event == E::key && !open.empty() && !open.back().insert(parsed.get<std::string>()).second)
      twice = true;
    return true;
  };
  (void)nlohmann::json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/false);
  return twice;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto got = loyalty::ParseJson(text);
  const int depth = loyalty::JsonDepth(text);
  if (!got.ok()) Check(got.status().code() == loyalty::ErrorCode::kBadRequest);
  if (depth > loyalty::kMaxJsonDepth) {
    Check(!got.ok());
    return 0;  // nlohmann is not asked: that is the point
  }
  const auto want =
      nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (text.find('\0') != std::string_view::npos) {
    Check(!got.ok());  // nlohmann stops at a NUL and may accept what came before; JSON has none
    return 0;
  }
  const bool twice = !want.is_discarded() && HasKeyTwice(text);
  Check(got.ok() == (!want.is_discarded() && !twice));
  if (!got.ok()) return 0;
  Check(*got == want);
  Check(loyalty::IsValidUtf8(text));
  Check(DepthOf(*got) == depth);  // for valid JSON the scan measures the real depth
  Check(loyalty::DumpCanonical(*got) == got->dump());
  const auto object = loyalty::ParseJsonObject(text);
  Check(object.ok() == got->is_object());
  return 0;
}
