// What the reconciliation stores share (sqlite_store.cc, pg_store.cc): the stored form of
// a block of symbols, the prefix rule, and folding an element into a range of symbols.
// Internal to loyalty_recon.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loyalty/recon/recon.h"

namespace loyalty::recon::internal {

inline constexpr uint64_t kBlockSymbols = 64;
inline constexpr size_t kSymbolBytes = 8 + kKeySize + 8;
inline constexpr size_t kBlockBytes = kBlockSymbols * kSymbolBytes;
inline constexpr int64_t kFormat = 1;
inline constexpr unsigned kAutoFlushCheckEvery = 1024;

inline void PutLe64(uint64_t v, uint8_t* p) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint64_t GetLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

inline void EncodeBlock(const Symbol* syms, std::string* out) {
  out->assign(kBlockBytes, '\0');
  auto* p = reinterpret_cast<uint8_t*>(out->data());
  for (uint64_t i = 0; i < kBlockSymbols; ++i, p += kSymbolBytes) {
    PutLe64(static_cast<uint64_t>(syms[i].count), p);
    std::memcpy(p + 8, syms[i].key.data(), kKeySize);
    PutLe64(syms[i].check, p + 8 + kKeySize);
  }
}

inline bool DecodeBlock(const void* data, int size, Symbol* syms) {
  if (size != static_cast<int>(kBlockBytes)) return false;
  const auto* p = static_cast<const uint8_t*>(data);
  for (uint64_t i = 0; i < kBlockSymbols; ++i, p += kSymbolBytes) {
    syms[i].count = static_cast<int64_t>(GetLe64(p));
    std::memcpy(syms[i].key.data(), p + 8, kKeySize);
    syms[i].check = GetLe64(p + 8 + kKeySize);
  }
  return true;
}

inline bool ValidPrefix(const std::string& p) {
  if (p.size() > 32) return false;
  return std::all_of(p.begin(), p.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Adds an element's contribution to symbols [begin, begin + out.size()).
inline void ApplyToRange(const Element& e, int64_t sign, uint64_t begin, std::vector<Symbol>* out) {
  const uint64_t check = e.Check();
  const uint64_t end = begin + out->size();
  for (IndexSequence seq(check); seq.index() < end; seq.Next()) {
    if (seq.index() >= begin) (*out)[seq.index() - begin].Apply(e, check, sign);
  }
}

// Add, AddNew, Upsert and Remove in terms of a store's own two steps, the same for both
// stores: Lookup(id, &current, &folded) (the tag the set holds now and the one folded into
// its items) and WriteJournal(id, tag or nullopt, folded).
template <class Store>
struct JournalOps {
  static Status Add(Store& s, const Item& item) {
    auto e = MakeElement(item);
    if (!e.ok()) return e.status();
    std::optional<Tag> current, folded;
    if (Status st = s.Lookup(e->id, &current, &folded); !st.ok()) return st;
    if (current) {
      if (*current == e->tag) return Status::Ok();
      return Status::Error(ErrorCode::kConflict,
                           "id already present with a different content hash");
    }
    return s.WriteJournal(e->id, e->tag, folded);
  }
  static Status AddNew(Store& s, const Item& item) {
    auto e = MakeElement(item);
    if (!e.ok()) return e.status();
    return s.WriteJournal(e->id, e->tag, std::nullopt);
  }
  static Status Upsert(Store& s, const Item& item) {
    auto e = MakeElement(item);
    if (!e.ok()) return e.status();
    std::optional<Tag> current, folded;
    if (Status st = s.Lookup(e->id, &current, &folded); !st.ok()) return st;
    if (current == e->tag) return Status::Ok();
    return s.WriteJournal(e->id, e->tag, folded);
  }
  static Status Remove(Store& s, std::string_view id) {
    if (id.size() != kIdSize)
      return Status::Error(ErrorCode::kBadRequest, "item id must be 16 bytes");
    ElementId key;
    std::memcpy(key.data(), id.data(), kIdSize);
    std::optional<Tag> current, folded;
    if (Status st = s.Lookup(key, &current, &folded); !st.ok()) return st;
    if (!current) return Status::Ok();
    return s.WriteJournal(key, std::nullopt, folded);
  }
};

}  // namespace loyalty::recon::internal
