#include <openssl/sha.h>

#include <cstring>
#include <string>

#include "loyalty/recon/recon.h"

namespace loyalty::recon {
namespace {

// One-shot SHA-256 without the EVP fetch per call: reads of an unfolded journal hash every
// pending element, and the EVP path costs several times the hash itself on 25 bytes.
Digest QuickSha256(const void* data, size_t size) {
  Digest d;
  SHA256(static_cast<const unsigned char*>(data), size, d.data());
  return d;
}

uint64_t LoadLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void StoreLe64(uint64_t v, char* p) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

using u128 = unsigned __int128;

// Integer square root by Newton's method: exact, so both peers agree on every index
// whatever their floating point does.
uint64_t ISqrt(u128 x) {
  if (x == 0) return 0;
  u128 r = x;
  u128 y = (r + 1) / 2;
  while (y < r) {
    r = y;
    y = (r + x / r) / 2;
  }
  return static_cast<uint64_t>(r);
}

}  // namespace

uint64_t Element::Check() const {
  char buf[1 + kIdSize + kTagSize];
  buf[0] = 0x02;
  std::memcpy(buf + 1, id.data(), kIdSize);
  std::memcpy(buf + 1 + kIdSize, tag.data(), kTagSize);
  Digest d = QuickSha256(buf, sizeof buf);
  return LoadLe64(d.data());
}

Result<Element> MakeElement(const Item& item) {
  if (item.id.size() != kIdSize) {
    return Status::Error(ErrorCode::kBadRequest,
                         "item id must be 16 bytes, got " + std::to_string(item.id.size()));
  }
  Element e;
  std::memcpy(e.id.data(), item.id.data(), kIdSize);
  char buf[1 + kIdSize + 32];
  buf[0] = 0x01;
  std::memcpy(buf + 1, item.id.data(), kIdSize);
  std::memcpy(buf + 1 + kIdSize, item.hash.data(), 32);
  Digest d = QuickSha256(buf, sizeof buf);
  std::memcpy(e.tag.data(), d.data(), kTagSize);
  return e;
}

void IndexSequence::Next() {
  if (index_ >= kMaxSymbolIndex) return;
  const uint64_t r = (SplitMix64(&state_) >> 32) + 1;  // 1 .. 2^32
  const u128 i = index_;
  // P(next > k | at i) = (i+1)(i+2) / ((k+1)(k+2)); draw u = r / 2^32 and take the
  // smallest k with (k+1)(k+2) > (i+1)(i+2)/u, i.e. x(x+1) > T for x = k+1.
  const u128 t = (((i + 1) * (i + 2)) << 32) / r;
  uint64_t x = ISqrt(t);
  while (static_cast<u128>(x) * (x + 1) <= t) ++x;
  while (x > 1 && static_cast<u128>(x - 1) * x > t) --x;
  uint64_t k = x - 1;
  if (k <= index_) k = index_ + 1;  // cannot happen (t >= (i+1)(i+2)); kept defensive
  index_ = k < kMaxSymbolIndex ? k : kMaxSymbolIndex;
}

void Symbol::Apply(const Element& e, uint64_t element_check, int64_t sign) {
  count += sign;
  for (size_t i = 0; i < kIdSize; ++i) key[i] ^= e.id[i];
  for (size_t i = 0; i < kTagSize; ++i) key[kIdSize + i] ^= e.tag[i];
  check ^= element_check;
}

void Symbol::Subtract(const Symbol& other) {
  count -= other.count;
  for (size_t i = 0; i < kKeySize; ++i) key[i] ^= other.key[i];
  check ^= other.check;
}

bool Symbol::IsZero() const {
  if (count != 0 || check != 0) return false;
  for (uint8_t b : key) {
    if (b != 0) return false;
  }
  return true;
}

Element Symbol::KeyElement() const {
  Element e;
  std::memcpy(e.id.data(), key.data(), kIdSize);
  std::memcpy(e.tag.data(), key.data() + kIdSize, kTagSize);
  return e;
}

bool Symbol::IsPure() const {
  if (count != 1 && count != -1) return false;
  return KeyElement().Check() == check;
}

std::array<uint8_t, 16> RootFingerprint(const Symbol& s) {
  char buf[1 + 8 + kKeySize + 8];
  buf[0] = 0x03;
  StoreLe64(static_cast<uint64_t>(s.count), buf + 1);
  std::memcpy(buf + 9, s.key.data(), kKeySize);
  StoreLe64(s.check, buf + 9 + kKeySize);
  Digest d = Sha256(std::string_view(buf, sizeof buf));
  std::array<uint8_t, 16> fp;
  std::memcpy(fp.data(), d.data(), fp.size());
  return fp;
}

std::string MemberKey(std::string_view member_id) {
  std::string in("loyalty-recon-member");
  in.push_back('\0');
  in.append(member_id);
  Digest d = Sha256(in);
  return std::string(reinterpret_cast<const char*>(d.data()), kIdSize);
}

Item MemberBalanceItem(std::string_view member_id, int64_t balance, int64_t entry_count) {
  std::string in(member_id);
  in.push_back('\0');
  in += std::to_string(balance);
  in.push_back('\0');
  in += std::to_string(entry_count);
  return Item{MemberKey(member_id), Sha256(in)};
}

}  // namespace loyalty::recon
