#include "loyalty/model/entry.h"

#include "loyalty/base/hash.h"
#include "loyalty/base/json_writer.h"

namespace loyalty::model {

std::string CanonicalEntryBytes(const Entry& e) {
  std::string out;
  out.reserve(160 + e.detail.size());
  JsonWriter w(out);
  w.BeginArray()
      .Int(1)
      .String(e.entry_id)
      .String(e.terminal_id)
      .Int(e.seq)
      .String(e.kind)
      .UInt(e.member_id);
  w.Int(e.points)
      .Int(e.at_ms)
      .String(e.checkout_id)
      .String(e.refund_id)
      .String(e.detail)
      .EndArray();
  return out;
}

std::string ChainHash(std::string_view prev_hash, std::string_view canonical) {
  Sha256Hasher h;
  h.Update(prev_hash);
  h.Update(canonical);
  return DigestBytes(h.Finish());
}

std::string EntryHash(const Entry& e) { return ChainHash(e.prev_hash, CanonicalEntryBytes(e)); }

const std::string& ZeroHash() {
  static const std::string zero(kHashBytes, '\0');
  return zero;
}

}  // namespace loyalty::model
