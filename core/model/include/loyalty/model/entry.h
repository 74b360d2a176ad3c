// An entry of a terminal's hash chain, as both ends hold it, and the chain rule.
//
// One type for the terminal's ledger, the sync messages and HQ's store. Hashes are raw
// bytes here; only the wire codec (sync/protocol) and HQ's store columns spell them in hex.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace loyalty::model {

struct Entry {
  int64_t seq = 0;       // per terminal, strictly increasing, starts at 1
  std::string entry_id;  // 32 lower-case hex (NewEntryId)
  std::string terminal_id;
  std::string kind;  // earn | redeem | ... (sync::IsEntryKind)
  uint64_t member_id = 0;
  int64_t points = 0;
  int64_t at_ms = 0;
  std::string checkout_id;  // empty when none
  std::string refund_id;    // empty when none
  std::string detail;       // compact JSON object or empty
  std::string prev_hash;    // 32 raw bytes (zeros for the first entry)
  std::string hash;         // 32 raw bytes
  bool operator==(const Entry&) const = default;
};

inline constexpr size_t kHashBytes = 32;

// The canonical bytes an entry's hash covers:
//   [1, entry_id, terminal_id, seq, kind, member_id, points, at_ms, checkout_id, refund_id, detail]
// as compact JSON (the canonical form of sync/PROTOCOL.md).
std::string CanonicalEntryBytes(const Entry& e);
// hash = SHA-256(prev_hash || canonical), 32 raw bytes.
std::string ChainHash(std::string_view prev_hash, std::string_view canonical);
// ChainHash(e.prev_hash, CanonicalEntryBytes(e)).
std::string EntryHash(const Entry& e);
// The 32 zero bytes the first entry of a chain links to.
const std::string& ZeroHash();

}  // namespace loyalty::model
