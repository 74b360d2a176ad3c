#include "text.h"

#include "loyalty/base/encoding.h"

namespace loyalty::rules::internal {

bool IsCleanText(std::string_view s) {
  if (!IsValidUtf8(s)) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return false;
    // C1 controls are U+0080..U+009F, encoded C2 80..C2 9F. A receipt printer or log line
    // treats them as controls just like C0.
    if (c == 0xC2 && i + 1 < s.size()) {
      unsigned char n = static_cast<unsigned char>(s[i + 1]);
      if (n >= 0x80 && n <= 0x9F) return false;
    }
  }
  return true;
}

std::string Printable(std::string_view s) {
  constexpr size_t kMax = 80;
  static const char kHex[] = "0123456789abcdef";
  // Valid UTF-8 keeps its letters (category names are often Chinese); anything else is
  // shown byte by byte.
  bool utf8 = IsValidUtf8(s);
  std::string out;
  size_t i = 0;
  for (; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (i >= kMax && (!utf8 || (c & 0xC0) != 0x80)) break;  // not inside a UTF-8 sequence
    if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8) || c == '"' || c == '\\') {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (i < s.size()) out += "...";
  return "\"" + out + "\"";
}

}  // namespace loyalty::rules::internal
