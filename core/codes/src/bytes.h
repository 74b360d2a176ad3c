// Big-endian integers written and read back with bounds checks: the layouts of receipts'
// return tokens and enrolment claims (private to the codes module).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace loyalty::codes::internal {

// The largest receipt-key certificate (return_token.h): 1 + 1 + 4 + 32 + 1 + 32 + 64.
inline constexpr size_t kMaxCertBytes = 135;

// Appends the low `bytes` bytes of v, most significant first.
inline void PutBigEndian(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

// [A-Za-z0-9_-]{1,max}: terminal and checkout ids.
inline bool IsIdText(std::string_view s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      return false;
  return true;
}

// A bounds-checked reader over bytes: every read fails once the input is short, and a
// failed reader stays failed (its reads return 0 and empty views).
class ByteReader {
 public:
  explicit ByteReader(std::string_view b) : b_(b) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && pos_ == b_.size(); }
  size_t pos() const { return pos_; }
  uint64_t U(int bytes) {
    if (!ok_ || b_.size() - pos_ < static_cast<size_t>(bytes)) {
      ok_ = false;
      return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(b_[pos_++]);
    return v;
  }
  int64_t I64() { return static_cast<int64_t>(U(8)); }
  std::string_view Take(size_t n) {
    if (!ok_ || b_.size() - pos_ < n) {
      ok_ = false;
      return {};
    }
    auto s = b_.substr(pos_, n);
    pos_ += n;
    return s;
  }

 private:
  std::string_view b_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace loyalty::codes::internal
