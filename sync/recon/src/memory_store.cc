#include <algorithm>
#include <cstring>

#include "loyalty/recon/recon.h"

namespace loyalty::recon {

MemoryStore::MemoryStore(uint64_t stored_symbols)
    : symbols_(std::clamp<uint64_t>(stored_symbols, 1, kMaxSymbolIndex)) {}

void MemoryStore::Toggle(const Element& e, int64_t sign) {
  const uint64_t check = e.Check();
  const uint64_t n = symbols_.size();
  for (IndexSequence seq(check); seq.index() < n; seq.Next())
    symbols_[seq.index()].Apply(e, check, sign);
}

Status MemoryStore::AddElement(const Element& e) {
  // Ids arrive mostly in time order: hint at the end so bulk loads stay linear.
  auto it = items_.lower_bound(e.id);
  if (it != items_.end() && it->first == e.id) {
    if (it->second == e.tag) return Status::Ok();
    return Status::Error(ErrorCode::kConflict, "id already present with a different content hash");
  }
  items_.emplace_hint(it, e.id, e.tag);
  Toggle(e, +1);
  return Status::Ok();
}

void MemoryStore::RemoveElement(const Element& e) {
  auto it = items_.find(e.id);
  if (it == items_.end() || it->second != e.tag) return;
  items_.erase(it);
  Toggle(e, -1);
}

Status MemoryStore::Add(const Item& item) {
  auto e = MakeElement(item);
  if (!e.ok()) return e.status();
  return AddElement(*e);
}

Status MemoryStore::Upsert(const Item& item) {
  auto e = MakeElement(item);
  if (!e.ok()) return e.status();
  auto it = items_.find(e->id);
  if (it != items_.end()) {
    if (it->second == e->tag) return Status::Ok();
    RemoveElement(Element{it->first, it->second});
  }
  return AddElement(*e);
}

Status MemoryStore::Remove(std::string_view id) {
  if (id.size() != kIdSize)
    return Status::Error(ErrorCode::kBadRequest, "item id must be 16 bytes");
  ElementId key;
  std::memcpy(key.data(), id.data(), kIdSize);
  auto it = items_.find(key);
  if (it != items_.end()) RemoveElement(Element{it->first, it->second});
  return Status::Ok();
}

Status MemoryStore::ReadSymbols(uint64_t begin, uint64_t end, std::vector<Symbol>* out) const {
  if (begin > end || end > symbols_.size())
    return Status::Error(ErrorCode::kBadRequest, "symbol range out of bounds");
  out->assign(symbols_.begin() + static_cast<ptrdiff_t>(begin),
              symbols_.begin() + static_cast<ptrdiff_t>(end));
  return Status::Ok();
}

Status MemoryStore::ListElements(const ElementId* after, size_t limit, std::vector<Element>* out,
                                 bool* more) const {
  out->clear();
  auto it = after ? items_.upper_bound(*after) : items_.begin();
  for (; it != items_.end() && out->size() < limit; ++it)
    out->push_back(Element{it->first, it->second});
  *more = it != items_.end();
  return Status::Ok();
}

}  // namespace loyalty::recon
