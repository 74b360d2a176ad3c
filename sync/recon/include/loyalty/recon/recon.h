// Differential set reconciliation: the items, their coded form, and the stores that keep
// the coded form up to date.
//
// A set holds items (id: 16 raw bytes, content hash: 32 bytes). Each item becomes an
// Element (id + 8-byte tag of id and content), and the set is summarised by a prefix of a
// rateless sequence of coded Symbols (rateless invertible Bloom lookup table, "RIBLT",
// Yang, Gilad, Alizadeh 2024, with alpha = 1/2): symbol 0 contains every element, symbol i
// contains an element with probability 2/(i+2). Subtracting two sets' symbols gives the
// symbols of their symmetric difference, which are peeled to recover it; about 1.4 symbols
// per difference suffice. An item present on both sides with different content gives two
// different elements (tags differ), so it is recovered as such and reported as a mismatch.
// The wire protocol built on these is in protocol.h and sync/PROTOCOL-recon.md.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loyalty/base/hash.h"
#include "loyalty/base/status.h"

namespace loyalty::recon {

inline constexpr size_t kIdSize = 16;
inline constexpr size_t kTagSize = 8;
inline constexpr size_t kKeySize = kIdSize + kTagSize;  // element bytes: id ‖ tag
// Hard cap on symbol indices anywhere (stores, messages): keeps the index arithmetic of
// IndexSequence inside 128 bits.
inline constexpr uint64_t kMaxSymbolIndex = uint64_t{1} << 24;
// Symbols a store keeps by default: decodes differences up to about 20,000 items; larger
// differences fall back to listing items.
inline constexpr uint64_t kDefaultStoredSymbols = 32768;

using ElementId = std::array<uint8_t, kIdSize>;
using Tag = std::array<uint8_t, kTagSize>;

// What a caller puts in a set. id is 16 raw bytes (e.g. HexDecode of a loyalty::NewEntryId).
struct Item {
  std::string id;
  Digest hash{};
};

// The reconciled form of an item. tag = SHA-256(0x01 ‖ id ‖ content hash)[0..8).
struct Element {
  ElementId id{};
  Tag tag{};

  // SHA-256(0x02 ‖ id ‖ tag)[0..8) as little-endian uint64: the purity check of a coded
  // symbol and the seed of the element's IndexSequence.
  uint64_t Check() const;
  std::string IdString() const { return std::string(id.begin(), id.end()); }
  friend bool operator==(const Element&, const Element&) = default;
  friend auto operator<=>(const Element&, const Element&) = default;
};

// Fails with bad_request unless item.id has exactly 16 bytes.
Result<Element> MakeElement(const Item& item);

// The indices of the symbols an element belongs to, in increasing order: 0 first, then
// each next index k is the smallest k > i with (k+1)(k+2)·r > (i+1)(i+2)·2^32, where r is
// 1 + the high 32 bits of the next splitmix64 output seeded with Element::Check(). This is
// the integer form of "symbol i holds the element with probability 2/(i+2)".
class IndexSequence {
 public:
  explicit IndexSequence(uint64_t seed) : state_(seed) {}
  uint64_t index() const { return index_; }
  // Moves to the next index; once index() >= kMaxSymbolIndex it stays there.
  void Next();

 private:
  uint64_t state_;
  uint64_t index_ = 0;
};

// One coded symbol: signed element count, XOR of element bytes, XOR of element checks.
struct Symbol {
  int64_t count = 0;
  std::array<uint8_t, kKeySize> key{};
  uint64_t check = 0;

  // Adds (sign = +1) or removes (sign = -1) one element whose Check() is `check`.
  void Apply(const Element& e, uint64_t element_check, int64_t sign);
  // this := this - other (XOR parts cancel, counts subtract).
  void Subtract(const Symbol& other);
  bool IsZero() const;
  // count is ±1 and check matches the key: the symbol holds exactly one element.
  bool IsPure() const;
  Element KeyElement() const;
  friend bool operator==(const Symbol&, const Symbol&) = default;
};

// First 16 bytes of SHA-256(0x03 ‖ count as int64 LE ‖ key ‖ check as uint64 LE) of
// symbol 0: the fingerprint of the whole set.
std::array<uint8_t, 16> RootFingerprint(const Symbol& symbol0);

// Balances as a set: one item per cached member, keyed by MemberKey(member_id) and hashing
// (member_id, balance, entry count), so that one root comparison proves every cached
// balance equal and a differing member comes back as a mismatched key.
// MemberKey = SHA-256("loyalty-recon-member\0" ‖ member_id)[0..16).
std::string MemberKey(std::string_view member_id);
// hash = SHA-256(member_id ‖ 0x00 ‖ decimal balance ‖ 0x00 ‖ decimal entry_count).
Item MemberBalanceItem(std::string_view member_id, int64_t balance, int64_t entry_count);

// What the protocol reads from one side's set. Implementations document their own
// thread-safety; reads never change the set.
class FingerprintStore {
 public:
  virtual ~FingerprintStore() = default;

  // Symbols [0, stored_symbols()) can be read; the protocol never asks beyond.
  virtual uint64_t stored_symbols() const = 0;
  // Replaces *out with symbols [begin, end); needs begin <= end <= stored_symbols().
  virtual Status ReadSymbols(uint64_t begin, uint64_t end, std::vector<Symbol>* out) const = 0;
  // Replaces *out with up to `limit` elements in increasing id order, starting after
  // *after (from the first when after is null). *more tells whether elements remain.
  virtual Status ListElements(const ElementId* after, size_t limit, std::vector<Element>* out,
                              bool* more) const = 0;
};

// A set held in memory, for tests, benchmarks and peers that rebuild sets on demand.
// Copyable. Not thread-safe: callers serialise access.
class MemoryStore final : public FingerprintStore {
 public:
  explicit MemoryStore(uint64_t stored_symbols = kDefaultStoredSymbols);

  // Inserts an item. Adding an id already present with the same hash is a no-op; with a
  // different hash it fails with `conflict` and changes nothing.
  Status Add(const Item& item);
  // Inserts or replaces the item with this id.
  Status Upsert(const Item& item);
  // Removes the item with this id; removing an absent id is a no-op.
  Status Remove(std::string_view id);
  // Element-level forms of the above (benchmarks build large sets without hashing twice).
  Status AddElement(const Element& e);
  void RemoveElement(const Element& e);  // requires e to be present

  size_t size() const { return items_.size(); }

  uint64_t stored_symbols() const override { return symbols_.size(); }
  Status ReadSymbols(uint64_t begin, uint64_t end, std::vector<Symbol>* out) const override;
  Status ListElements(const ElementId* after, size_t limit, std::vector<Element>* out,
                      bool* more) const override;

 private:
  void Toggle(const Element& e, int64_t sign);

  std::vector<Symbol> symbols_;
  std::map<ElementId, Tag> items_;
};

}  // namespace loyalty::recon
