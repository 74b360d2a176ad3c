// Wire primitives of the reconciliation protocol (sync/PROTOCOL-recon.md): LEB128 varints
// (canonical only), zigzag for signed values, fixed-size byte fields, coded symbols.
// Readers check every bound and never read past the buffer.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "loyalty/recon/recon.h"

namespace loyalty::recon::wire {

inline constexpr uint8_t kVersion = 1;

enum MessageType : uint8_t {
  kHello = 0x01,
  kGetSymbols = 0x02,
  kGetItems = 0x03,
  kInSync = 0x81,
  kDiffer = 0x82,
  kSymbols = 0x83,
  kItems = 0x84,
};

// Limits both peers enforce on what they accept.
inline constexpr uint64_t kFirstSymbols = 8;              // symbols in a DIFFER reply
inline constexpr uint64_t kMaxSymbolsPerMessage = 32768;  // ~1.2 MB of symbols
inline constexpr uint64_t kMaxItemsPerMessage = 65536;    // 1.5 MB of items
inline constexpr size_t kMaxProbes = 256;

class Writer {
 public:
  void Byte(uint8_t b) { out_.push_back(static_cast<char>(b)); }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      Byte(static_cast<uint8_t>(v | 0x80));
      v >>= 7;
    }
    Byte(static_cast<uint8_t>(v));
  }
  void Signed(int64_t v) {
    Varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
  }
  void Bytes(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }
  void Le16(uint16_t v) {
    Byte(static_cast<uint8_t>(v));
    Byte(static_cast<uint8_t>(v >> 8));
  }
  void Le64(uint64_t v) {
    for (int i = 0; i < 8; ++i) Byte(static_cast<uint8_t>(v >> (8 * i)));
  }
  void Sym(const Symbol& s) {
    Signed(s.count);
    Bytes(s.key.data(), kKeySize);
    Le64(s.check);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool done() const { return pos_ == in_.size(); }
  size_t remaining() const { return in_.size() - pos_; }

  bool Byte(uint8_t* b) {
    if (pos_ >= in_.size()) return false;
    *b = static_cast<uint8_t>(in_[pos_++]);
    return true;
  }
  // Canonical LEB128: at most 10 bytes, no trailing zero byte, no bits past 64.
  bool Varint(uint64_t* v) {
    uint64_t r = 0;
    for (int i = 0; i < 10; ++i) {
      uint8_t b;
      if (!Byte(&b)) return false;
      if (i == 9 && b > 1) return false;
      r |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
      if ((b & 0x80) == 0) {
        if (i > 0 && b == 0) return false;
        *v = r;
        return true;
      }
    }
    return false;
  }
  bool Signed(int64_t* v) {
    uint64_t u;
    if (!Varint(&u)) return false;
    *v = static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
    return true;
  }
  bool Bytes(void* p, size_t n) {
    if (remaining() < n) return false;
    std::memcpy(p, in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool Le16(uint16_t* v) {
    uint8_t b[2];
    if (!Bytes(b, 2)) return false;
    *v = static_cast<uint16_t>(b[0] | (b[1] << 8));
    return true;
  }
  bool Le64(uint64_t* v) {
    uint8_t b[8];
    if (!Bytes(b, 8)) return false;
    *v = 0;
    for (int i = 7; i >= 0; --i) *v = (*v << 8) | b[i];
    return true;
  }
  bool Sym(Symbol* s) {
    return Signed(&s->count) && Bytes(s->key.data(), kKeySize) && Le64(&s->check);
  }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

// The probe indices of a DIFFER reply: p0 = kFirstSymbols, p(j+1) = p(j) + max(1, p(j)/4),
// all below `limit` (the responder's stored symbols), at most kMaxProbes of them.
template <typename F>
void ForEachProbe(uint64_t limit, F f) {
  size_t n = 0;
  for (uint64_t p = kFirstSymbols; p < limit && n < kMaxProbes;
       p += std::max<uint64_t>(1, p / 4), ++n)
    f(p);
}

}  // namespace loyalty::recon::wire
