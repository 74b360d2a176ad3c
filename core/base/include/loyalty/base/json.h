// Reading JSON that comes from outside: request bodies, sync messages, HQ's replies, the
// daemon's replies to loyaltyctl, and JSON stored in the ledger or HQ's database.
//
// Every such read goes through ParseJson (or ParseJsonObject), which refuses a document that
// nests deeper than the limit before anything recursive sees it: the depth is measured by a
// linear pass over the bytes, with no recursion and no allocation, before nlohmann builds a
// tree. A tree that came out of ParseJson is therefore at most JsonLimits::max_depth levels
// deep, and everything that walks it recursively (dump(), copies, comparisons,
// DumpCanonical) is bounded by that depth rather than by the sender. A key twice in one
// object is refused too (bad_request): which one a tree keeps is a reader's guess.
//
// Thread-safe: plain functions over their arguments.
#pragma once

#include <cstddef>
#include <limits>
#include <string_view>

#include <nlohmann/json.hpp>

#include "loyalty/base/status.h"

namespace loyalty {

// The contract's nesting limit (pos-api.md, hq-and-sync.md): `{}` and `[]` are one level,
// `{"a": [1]}` two. A scalar at the top is level zero.
inline constexpr int kMaxJsonDepth = 32;

struct JsonLimits {
  int max_depth = kMaxJsonDepth;
  // Larger texts are refused before any work. The HTTP layers cap bodies themselves; this
  // is for readers without such a layer in front of them.
  size_t max_bytes = std::numeric_limits<size_t>::max();
};

// The deepest nesting of `[`/`{` in text, counting only brackets outside strings (a string
// runs from an unescaped `"` to the next unescaped `"`; `\"` and `\\` inside it are escapes).
// Stops counting and returns a value above max_depth as soon as the depth exceeds it. For
// valid JSON this is the document's depth; for anything else it is at least the depth
// nlohmann's parser can reach before it finds the error, so the pre-scan never lets a text
// through whose parse would go deeper. Linear in the text, no recursion, no allocation.
int JsonDepth(std::string_view text, int max_depth = kMaxJsonDepth);

// bad_request "the body nests deeper than N levels" when JsonDepth(text) > max_depth.
Status CheckJsonDepth(std::string_view text, int max_depth = kMaxJsonDepth);

// Any JSON value, with every check done in this order, each an error `bad_request`:
// larger than max_bytes; not valid UTF-8 (overlong forms, surrogates, and code points above
// U+10FFFF included); nested deeper than max_depth; not valid JSON (RFC 8259, no comments,
// nothing after the value, no NUL byte: nlohmann alone would stop reading at one). Never throws.
Result<nlohmann::json> ParseJson(std::string_view text, JsonLimits limits = {});

// ParseJson, and the value must be an object (bad_request "the body must be a JSON object").
Result<nlohmann::json> ParseJsonObject(std::string_view text, JsonLimits limits = {});

}  // namespace loyalty
