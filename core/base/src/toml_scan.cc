#include "loyalty/base/toml_scan.h"

#include <cstdint>

namespace loyalty {

std::optional<size_t> FindTooDeepTomlLine(std::string_view text, int max_depth) {
  // Strings (TOML 1.0): basic "..." with backslash escapes, literal '...', and their
  // multi-line forms (three quotes; escapes in the basic one); a comment runs from # to the
  // end of the line. Quoted keys are strings: a dot inside one is no separator, not counted.
  enum class In { kCode, kBasic, kLiteral, kMultiBasic, kMultiLiteral, kComment } in = In::kCode;
  // Dots count while reading a key or a table header: from the start of a statement, an
  // inline table's `{` or one of its `,`, up to the `=`. Dots in values (numbers, dates) do not.
  bool in_key = true;
  int dots = 0;
  int depth = 0;
  uint64_t tables = 0;  // bit d: the bracket open at depth d is `{`
  if (max_depth > 63) max_depth = 63;
  size_t line = 1;
  const size_t n = text.size();
  auto triple = [&](size_t i, char q) {
    return i + 2 < n && text[i] == q && text[i + 1] == q && text[i + 2] == q;
  };
  auto newline = [&] {
    ++line;
    if (depth == 0) {  // a new statement (inside brackets a value goes on)
      in_key = true;
      dots = 0;
    }
  };
  for (size_t i = 0; i < n; ++i) {
    const char c = text[i];
    switch (in) {
      case In::kComment:
        if (c == '\n') {
          in = In::kCode;
          newline();
        }
        break;
      case In::kBasic:
        if (c == '\\') {
          if (i + 1 < n && text[i + 1] == '\n') ++line;
          ++i;  // the escaped character
        } else if (c == '"') {
          in = In::kCode;
        } else if (c == '\n') {
          in = In::kCode;  // unterminated: the parser refuses it
          newline();
        }
        break;
      case In::kLiteral:
        if (c == '\'') {
          in = In::kCode;
        } else if (c == '\n') {
          in = In::kCode;
          newline();
        }
        break;
      case In::kMultiBasic:
        if (c == '\n') ++line;
        if (c == '\\') {
          if (i + 1 < n && text[i + 1] == '\n') ++line;
          ++i;
        } else if (triple(i, '"')) {
          in = In::kCode;
          i += 2;
        }
        break;
      case In::kMultiLiteral:
        if (c == '\n') ++line;
        if (triple(i, '\'')) {
          in = In::kCode;
          i += 2;
        }
        break;
      case In::kCode:
        switch (c) {
          case '#':
            in = In::kComment;
            break;
          case '"':
            in = triple(i, '"') ? In::kMultiBasic : In::kBasic;
            if (in == In::kMultiBasic) i += 2;
            break;
          case '\'':
            in = triple(i, '\'') ? In::kMultiLiteral : In::kLiteral;
            if (in == In::kMultiLiteral) i += 2;
            break;
          case '[':
          case '{':
            if (depth == max_depth) return line;
            if (c == '{') {
              tables |= uint64_t{1} << depth;
              in_key = true;
              dots = 0;
            } else {
              tables &= ~(uint64_t{1} << depth);  // a header's `[` goes on reading its key
            }
            ++depth;
            break;
          case ']':
          case '}':
            if (depth > 0) --depth;
            break;
          case ',':
            if (depth > 0 && ((tables >> (depth - 1)) & 1) != 0) {
              in_key = true;
              dots = 0;
            }
            break;
          case '=':
            in_key = false;
            break;
          case '.':
            if (in_key && ++dots > max_depth) return line;
            break;
          case '\n':
            newline();
            break;
          default:
            break;
        }
        break;
    }
  }
  return std::nullopt;
}

}  // namespace loyalty
