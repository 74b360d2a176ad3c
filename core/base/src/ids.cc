#include "loyalty/base/ids.h"

#include "loyalty/base/encoding.h"
#include "loyalty/base/hash.h"

namespace loyalty {

std::string NewEntryId(int64_t now_ms) {
  uint64_t ms = static_cast<uint64_t>(now_ms) & 0xFFFFFFFFFFFFull;
  std::string raw(6, '\0');
  for (int i = 5; i >= 0; --i) {
    raw[i] = static_cast<char>(ms & 0xff);
    ms >>= 8;
  }
  raw += RandomBytes(10);
  return HexEncode(raw);
}

bool IsEntryId(std::string_view s) {
  if (s.size() != 32) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

int64_t EntryIdMillis(std::string_view id) {
  int64_t v = 0;
  for (int i = 0; i < 12; ++i) {
    char c = id[i];
    v = v * 16 + (c <= '9' ? c - '0' : c - 'a' + 10);
  }
  return v;
}

}  // namespace loyalty
