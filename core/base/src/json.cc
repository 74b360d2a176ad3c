#include "loyalty/base/json.h"

#include <array>
#include <cstdint>
#include <string>

#include "loyalty/base/encoding.h"

namespace loyalty {
namespace {

Status Bad(std::string message) {
  return Status::Error(ErrorCode::kBadRequest, std::move(message));
}

// The bytes the depth scan stops at; everything else is skipped.
enum : uint8_t { kOther = 0, kQuote, kBackslash, kOpen, kClose };

constexpr std::array<uint8_t, 256> MakeScanClass() {
  std::array<uint8_t, 256> t{};
  t['"'] = kQuote;
  t['\\'] = kBackslash;
  t['['] = kOpen;
  t['{'] = kOpen;
  t[']'] = kClose;
  t['}'] = kClose;
  return t;
}
constexpr auto kScanClass = MakeScanClass();

}  // namespace

int JsonDepth(std::string_view text, int max_depth) {
  // nlohmann's lexer reads a string from `"` to the next `"` not preceded by an escaping
  // backslash, and a backslash outside a string is an error; so brackets are counted exactly
  // where the parser would open or close a container. A closing bracket at depth 0 is an
  // error for the parser; it is not allowed to make the count negative (that would let a
  // prefix of `]` buy extra depth for the `[` that follow).
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const auto* const end = p + text.size();
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (; p != end; ++p) {
    switch (kScanClass[*p]) {
      case kOther:
        break;
      case kQuote:
        in_string = !in_string;
        break;
      case kBackslash:
        if (in_string && p + 1 != end) ++p;  // the escaped byte, whatever it is
        break;
      case kOpen:
        if (!in_string && ++depth > deepest) {
          deepest = depth;
          if (deepest > max_depth) return deepest;
        }
        break;
      case kClose:
        if (!in_string && depth > 0) --depth;
        break;
    }
  }
  return deepest;
}

Status CheckJsonDepth(std::string_view text, int max_depth) {
  if (JsonDepth(text, max_depth) > max_depth)
    return Bad("the body nests deeper than " + std::to_string(max_depth) + " levels");
  return Status::Ok();
}

Result<nlohmann::json> ParseJson(std::string_view text, JsonLimits limits) {
  if (text.size() > limits.max_bytes)
    return Bad("the body is larger than " + std::to_string(limits.max_bytes) + " bytes");
  if (!IsValidUtf8(text)) return Bad("the body is not valid UTF-8");
  if (Status s = CheckJsonDepth(text, limits.max_depth); !s.ok()) return s;
  // nlohmann's lexer takes a NUL byte for the end of the input and ignores what follows
  // (`{"a":1}<NUL>anything` parses); JSON has no NUL outside an escape, so refuse it here.
  if (text.find('\0') != std::string_view::npos) return Bad("the body is not valid JSON");
  // Only now is a tree built: at most max_depth levels, so nothing that walks it recurses
  // further than that. allow_exceptions = false turns every syntax error into a discarded value.
  nlohmann::json j =
      nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad("the body is not valid JSON");
  return j;
}

Result<nlohmann::json> ParseJsonObject(std::string_view text, JsonLimits limits) {
  auto j = ParseJson(text, limits);
  if (!j.ok()) return j;
  if (!j->is_object()) return Bad("the body must be a JSON object");
  return j;
}

}  // namespace loyalty
