// Return tokens (docs/pos-api.md, "Returns anywhere"): what a receipt's QR carries so that
// any terminal of the chain can refund the sale exactly, offline.
//
// A terminal signs its receipts with a key of its own (a raw Ed25519 seed it keeps in its
// ledger). HQ certifies that key for the terminal with one of its signing keys (the ones
// terminals already trust for member codes, `[codes] hq_public_keys`), so a token verifies
// with no network:
//
//   receipt-key certificate = "LR1-KEY" is the signature domain
//     version 1 || key_id || not_after (u32 BE, unix s) || terminal public key (32)
//     || terminal_id length (1) || terminal_id || Ed25519(hq key, "LR1-KEY" || all before)
//
//   token = "LR1:" + base64url(cert length (u16 BE) || cert || payload length (u16 BE)
//           || payload || Ed25519(terminal key, "LR1-RETURN" || cert || payload))
//
//   payload = version 1 || committed_at_ms (i64) || member_id (u64, 0 = none)
//     || points_earned || redeemed_points || eligible_cents || redeemable_cents (i64 each)
//     || checkout_id (length u8 + bytes) || rules_version (length u8 + bytes)
//     || line count (u8) || per line: qty (u16) || net_cents (i64)
//        || net_before_redeem_cents (i64) || flags (u8: 1 points_eligible, 2 redeemable)
//   (integers big-endian)
//
// The terminal is the certificate's: a token names no terminal of its own, so it cannot
// claim another's sale. The payload is exactly rules::RefundBasis and what the refund
// window needs. Every function is pure and thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loyalty/base/status.h"

namespace loyalty::codes {

inline constexpr size_t kMaxReturnTokenLines = 40;    // more: no token (returned online)
inline constexpr size_t kMaxReturnTokenChars = 4096;  // sync::kMaxReceiptBytes
inline constexpr std::string_view kReturnTokenPrefix = "LR1:";

struct ReturnLine {
  int64_t qty = 0;
  int64_t net_cents = 0, net_before_redeem_cents = 0;
  bool points_eligible = false, redeemable = false;
  bool operator==(const ReturnLine&) const = default;
};

struct ReturnBasis {
  std::string terminal_id;  // from the certificate when verified
  std::string checkout_id;
  std::optional<uint64_t> member_id;
  int64_t committed_at_ms = 0;
  std::string rules_version;
  int64_t points_earned = 0, redeemed_points = 0;
  int64_t eligible_cents = 0, redeemable_cents = 0;
  std::vector<ReturnLine> lines;
  bool operator==(const ReturnBasis&) const = default;
};

struct ReceiptKeyCert {
  uint8_t key_id = 0;
  uint32_t not_after = 0;
  std::string public_key;  // raw 32 bytes
  std::string terminal_id;
};

// A fresh receipt key: 32 random bytes (OpenSSL's RAND_bytes); empty when it fails.
std::string NewReceiptKeySeed();
// The raw 32-byte public key of a seed (empty for a seed that is not 32 bytes).
std::string ReceiptPublicKey(std::string_view seed32);

// HQ: the certificate bytes for a terminal's receipt key. Empty when an input does not fit
// (a seed or key that is not 32 bytes, a terminal id outside [A-Za-z0-9_-]{1,32}).
std::string MakeReceiptKeyCert(std::string_view hq_seed32, uint8_t key_id,
                               std::string_view terminal_id, std::string_view terminal_pk32,
                               uint32_t not_after);

// The certificate verified against HQ's public keys (key_id -> raw 32 bytes) at `now_s`:
// code_malformed for bytes that do not parse, code_invalid_signature for a signature that
// does not verify or an unknown key id, code_expired past not_after.
Result<ReceiptKeyCert> VerifyReceiptKeyCert(std::string_view cert,
                                            const std::map<int, std::string>& hq_public_keys,
                                            int64_t now_s);

// The selling terminal: its token for `basis` (basis.terminal_id is ignored: the
// certificate names the terminal). Empty when the basis does not fit a token (more than
// kMaxReturnTokenLines lines, an id too long, a value out of range) or a key is wrong.
std::string MakeReturnToken(std::string_view cert, std::string_view terminal_seed32,
                            const ReturnBasis& basis);

// Receipt-key certificates whose HQ signature already verified, keyed by their bytes
// (bounded, oldest out first): a chain's receipts come from a few hundred terminals, so a
// token then costs one signature verification, as a repeated member code does.
// Thread-safe.
class ReceiptKeyCache {
 public:
  explicit ReceiptKeyCache(size_t capacity = 1024) : capacity_(capacity ? capacity : 1) {}
  std::optional<ReceiptKeyCert> Find(std::string_view cert) const;
  void Add(std::string_view cert, const ReceiptKeyCert& parsed);
  size_t size() const;

 private:
  mutable std::mutex mu_;
  size_t capacity_;
  std::map<std::string, ReceiptKeyCert, std::less<>> certs_;
  std::deque<std::string> order_;
};

// Any terminal, or HQ: the token's sale, verified. The certificate is checked at the
// sale's time (a certificate that expired since still proves a sale made while it was
// valid). Errors: code_malformed (not a token, or bytes that do not parse: never the
// text in the message), code_invalid_signature (either signature), code_expired (the sale
// is past the certificate's not_after).
// `cache` (optional) skips the certificate's signature when it verified before; its
// validity at the sale's time is checked every time.
Result<ReturnBasis> VerifyReturnToken(std::string_view text,
                                      const std::map<int, std::string>& hq_public_keys,
                                      ReceiptKeyCache* cache = nullptr);

}  // namespace loyalty::codes
