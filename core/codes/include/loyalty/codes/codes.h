// Member codes: classify what a scanner read and, for dynamic LM1 codes, verify it offline.
//
// Three formats (shared/spec/member-codes.md):
//   - dynamic "LM1:" codes: an HQ-signed device certificate plus a device-signed timestamp;
//   - static printed cards: 16 ASCII digits, configured prefix, Luhn check digit;
//   - channel card numbers (WeChat, Alipay, ...): configured regular expressions.
// Anything else is `not_a_member_code`.
//
// Classification order (first that applies decides):
//   1. longer than kMaxScanBytes                          -> code_malformed
//   2. starts with "LM1:"                                 -> dynamic, verified (errors below)
//   3. exactly 16 ASCII digits starting with card_prefix -> static (bad check digit:
//                                                            code_malformed)
//   4. full match of a channel pattern, in config order   -> channel
//   5. otherwise                                          -> not_a_member_code
// A digit string that starts with the prefix but is not 16 digits long is not a card: it
// falls through to the channel patterns (product barcodes such as EAN-13 "880..." must not
// raise an alarm). See docs/member-codes.md.
//
// Dynamic verification order and errors, as the contract's table:
//   code_malformed (prefix, strict base64url, 178 bytes, version 1), code_issuer_unknown,
//   code_signature_invalid (hq_sig, then device_sig), code_expired (code_time > not_after, or
//   now - code_time > code_max_age_s), code_not_yet_valid (code_time - now > clock_skew_s),
//   code_revoked. code_replayed and member_unknown need the ledger: the caller checks them.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loyalty/base/status.h"

namespace loyalty::codes {

// Errors (loyalty/base/error_code.h): a code is refused with one of kCodeMalformed,
// kCodeIssuerUnknown, kCodeSignatureInvalid, kCodeExpired, kCodeNotYetValid, kCodeRevoked or
// kNotAMemberCode (pos-api.md, 422); CodeVerifier::Create answers kConfigInvalid for a
// configuration it cannot use.

inline constexpr size_t kMaxScanBytes = 4096;
inline constexpr std::string_view kDynamicPrefix = "LM1:";
inline constexpr size_t kCertificateBytes = 110;
inline constexpr size_t kPayloadBytes = 178;
inline constexpr size_t kDynamicCodeChars = 242;  // "LM1:" + 238 base64url characters
inline constexpr size_t kCardDigits = 16;
inline constexpr uint8_t kCodeVersion = 1;
// Channel patterns are only tried on texts up to this length: channel card numbers are
// short, and libstdc++'s backtracking matcher recurses per character on long inputs.
inline constexpr size_t kMaxChannelCodeBytes = 256;
// Bounds accepted for the two windows (a year); larger values are a configuration error.
inline constexpr int64_t kMaxWindowS = 366 * 24 * 3600;

struct CodesConfig {
  std::map<int, std::string> hq_public_keys;  // key_id (0..255) -> raw 32-byte Ed25519 public key
  int64_t code_max_age_s = 120;
  int64_t clock_skew_s = 60;
  std::string card_prefix = "88";  // 0..15 ASCII digits
  struct Channel {
    std::string name;
    std::string pattern;  // ECMAScript regex, full match, first match wins
  };
  std::vector<Channel> channels;
  size_t certificate_cache_capacity = 4096;  // verified certificates kept (LRU); >= 1
};

// kPhone: no code at all, a member found by the phone number they gave (docs/pos-api.md,
// "Phone look-up"); a static identification (it cannot redeem unless static codes may).
enum class CodeKind { kDynamic, kStatic, kChannel, kPhone };

// "dynamic", "static", "channel", "phone": the API's identification.kind.
std::string_view CodeKindName(CodeKind kind);

struct Identified {
  CodeKind kind = CodeKind::kDynamic;
  uint64_t member_id = 0;                 // dynamic and phone only
  std::string device_public_key;          // dynamic only, raw 32 bytes
  uint32_t code_time = 0, not_after = 0;  // dynamic only
  uint8_t key_id = 0;                     // dynamic only
  std::string card_number;                // static only (16 digits)
  std::string channel, external_id;       // channel only (external_id is the scanned text)
  std::string code_hash;  // hex SHA-256 of the exact scanned text: the replay-binding key
};

// The 110-byte certificate, parsed without any verification.
struct Certificate {
  uint8_t version = 0;
  uint8_t key_id = 0;
  uint64_t member_id = 0;
  std::string device_public_key;  // raw 32 bytes
  uint32_t not_after = 0;
  std::string hq_signature;  // raw 64 bytes
};
// code_malformed unless `bytes` is exactly 110 bytes with version 1.
Result<Certificate> ParseCertificate(std::string_view bytes);

// Luhn over ASCII digits. IsLuhnValid: the last digit is the check digit of the others
// (false for non-digits or an empty string). LuhnCheckDigit: the digit to append to `body`
// (nullopt for non-digits).
bool IsLuhnValid(std::string_view digits);
std::optional<char> LuhnCheckDigit(std::string_view body);

// Verifies scans. Thread-safe after construction: Identify may run concurrently on any
// number of threads. It keeps a bounded LRU cache of certificates whose hq_sig already
// verified (keyed by their exact 110 bytes, holding the parsed device key), so a repeated
// scan of the same phone costs one signature verification instead of two.
class CodeVerifier {
 public:
  // config_invalid for: key_id outside 0..255, a key that is not 32 bytes, a non-digit or
  // too long card_prefix, windows outside 0..kMaxWindowS, a channel without a name, a
  // pattern that does not compile, a zero cache capacity.
  static Result<std::unique_ptr<CodeVerifier>> Create(CodesConfig cfg);

  ~CodeVerifier();
  CodeVerifier(const CodeVerifier&) = delete;
  CodeVerifier& operator=(const CodeVerifier&) = delete;

  // Classifies and verifies `text` at trusted time `now_s` (unix seconds). is_revoked is
  // asked (with the raw 32-byte device key) only for dynamic codes whose signatures and
  // windows are valid; an empty function means nothing is revoked. It is called on the
  // calling thread, outside any lock of this class. Error statuses carry the codes above;
  // their messages never contain the scanned text.
  Result<Identified> Identify(
      std::string_view text, int64_t now_s,
      const std::function<bool(std::string_view device_pk)>& is_revoked) const;

  struct Stats {
    uint64_t certificate_verifications = 0;  // hq_sig verifications performed (cache misses)
    uint64_t certificate_cache_hits = 0;
    size_t certificate_cache_size = 0;
  };
  Stats stats() const;

  const CodesConfig& config() const;

 private:
  struct Impl;
  explicit CodeVerifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace loyalty::codes
