// Deeply nested JSON for tests of the nesting limit (pos-api.md, hq-and-sync.md: bodies
// nest at most 32 levels).
#pragma once

#include <string>

namespace loyalty::testing {

// `depth` levels of `[` (or of `{"k":` when objects) around a 1, closed.
inline std::string NestedJson(int depth, bool objects) {
  std::string open, close;
  for (int i = 0; i < depth; ++i) {
    open += objects ? "{\"k\":" : "[";
    close += objects ? '}' : ']';
  }
  return open + "1" + close;
}

}  // namespace loyalty::testing
