// A linear pre-scan of TOML text that bounds its nesting before a TOML parser sees it.
//
// toml++ limits nested values (arrays, inline tables) to 256, but not the depth of tables
// made by dotted keys and table headers: `[a.a.a…]` 100,000 levels deep (200 KB) crashes
// the parser's recursion. This scan runs first and refuses, without recursion or allocation:
//   - a table header or a key (dotted, also inside an inline table) with more than max_depth
//     dots outside quotes; dots in values (numbers, dates) and in comments are not counted;
//   - brackets (`[`, `{`) nested more than max_depth deep outside strings and comments
//     (`[[x]]` headers count as two).
// What passes builds a tree of bounded depth (a header, a key, and a key per open inline
// table: about max_depth² at worst, a few levels in any real file) that a recursive walk
// handles; the reader then applies its exact limit itself.
//
// Thread-safe: a plain function.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace loyalty {

// The 1-based line at which text goes past the limit, or nullopt when it stays within it.
std::optional<size_t> FindTooDeepTomlLine(std::string_view text, int max_depth = 32);

}  // namespace loyalty
