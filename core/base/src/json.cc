#include "loyalty/base/json.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "loyalty/base/encoding.h"

namespace loyalty {
namespace {

Status Bad(std::string message) {
  return Status::Error(ErrorCode::kBadRequest, std::move(message));
}

// The bytes the depth scan stops at; everything else is skipped.
enum : uint8_t { kOther = 0, kQuote, kBackslash, kOpen, kClose, kColon };

constexpr std::array<uint8_t, 256> MakeScanClass() {
  std::array<uint8_t, 256> t{};
  t['"'] = kQuote;
  t['\\'] = kBackslash;
  t['['] = kOpen;
  t['{'] = kOpen;
  t[']'] = kClose;
  t['}'] = kClose;
  t[':'] = kColon;
  return t;
}
constexpr auto kScanClass = MakeScanClass();

// The depth of `text` (as JsonDepth), and in *colons the colons outside strings: in a
// document nlohmann accepts, one a key. The scan stops past max_depth.
int ScanDepthAndKeys(std::string_view text, int max_depth, size_t* colons) {
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
      case kColon:
        if (!in_string) ++*colons;
        break;
    }
  }
  return deepest;
}

// The members of every object in a tree, walked without recursion.
size_t ObjectMembers(const nlohmann::json& root) {
  size_t members = 0;
  std::vector<const nlohmann::json*> todo{&root};
  while (!todo.empty()) {
    const nlohmann::json* v = todo.back();
    todo.pop_back();
    if (v->is_object()) members += v->size();
    for (const auto& child : *v)  // an object's values, an array's elements
      if (child.is_structured()) todo.push_back(&child);
  }
  return members;
}

}  // namespace

int JsonDepth(std::string_view text, int max_depth) {
  size_t colons = 0;
  return ScanDepthAndKeys(text, max_depth, &colons);
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
  size_t keys = 0;
  if (ScanDepthAndKeys(text, limits.max_depth, &keys) > limits.max_depth)
    return Bad("the body nests deeper than " + std::to_string(limits.max_depth) + " levels");
  // nlohmann's lexer takes a NUL byte for the end of the input and ignores what follows
  // (`{"a":1}<NUL>anything` parses); JSON has no NUL outside an escape, so refuse it here.
  if (text.find('\0') != std::string_view::npos) return Bad("the body is not valid JSON");
  // Only now is a tree built: at most max_depth levels, so nothing that walks it recurses
  // further than that. allow_exceptions = false turns every syntax error into a discarded value.
  nlohmann::json j =
      nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad("the body is not valid JSON");
  // A key twice in one object is refused: the tree keeps one of the two silently, and a
  // reader before or after this one (a proxy, a log, the other side's parser) could take the
  // other. A key met twice leaves its object one member short of the keys the text has
  // (a value it replaced may take more with it, never fewer), so the count of members in the
  // tree equals the count of keys exactly when no object has a key twice.
  if (ObjectMembers(j) != keys) return Bad("the body has a key twice in one object");
  return j;
}

Result<nlohmann::json> ParseJsonObject(std::string_view text, JsonLimits limits) {
  auto j = ParseJson(text, limits);
  if (!j.ok()) return j;
  if (!j->is_object()) return Bad("the body must be a JSON object");
  return j;
}

}  // namespace loyalty
