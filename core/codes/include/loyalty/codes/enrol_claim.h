// Enrolment claims (docs/pos-api.md, "Sign-up at the till"; docs/hq.md, "Claims: the points
// of the sale a member joined at"): what the enrolment QR's link carries, so that a customer
// who pays without being a member, then joins, gets that sale's points, credited once at HQ.
//
// The selling terminal signs a claim with its receipt key, the key HQ certified for its
// return tokens (return_token.h), and the claim carries that certificate: HQ verifies it
// with its own signing keys and nothing else, and the terminal is the certificate's (a claim
// names no terminal of its own, so it cannot claim another terminal's sale).
//
//   claim   = "LC1." + base64url(cert length (u16) || cert || payload length (u16)
//             || payload || Ed25519(terminal key, "LC1-CLAIM" || cert || payload))
//   payload = version 1 || committed_at_ms (i64) || expires_at_s (u32, unix s)
//             || checkout_id length (u8) || checkout_id
//   (integers big-endian)
//
// Every character of a claim is URL-unreserved (RFC 3986: A-Z a-z 0-9 - . _ ~), so it goes
// into a link's path or query as it is, without escaping. A claim is at most
// kMaxEnrolClaimChars; one of a 10-character checkout at terminal "T01" is 268.
//
// The signature domain differs from a return token's ("LR1-RETURN"), so neither can be
// passed off as the other. Every function is pure and thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "loyalty/base/status.h"
#include "loyalty/codes/return_token.h"

namespace loyalty::codes {

inline constexpr std::string_view kEnrolClaimPrefix = "LC1.";
// The longest claim (a 135-byte certificate, a 64-character checkout id): 379 characters.
// Longer text is refused before it is decoded.
inline constexpr size_t kMaxEnrolClaimChars = 512;
// A claim lives at most as long as the longest refund window the rules allow (3650 days,
// docs/rules.md): expires_at_s - floor(committed_at_ms / 1000) is 1 .. this.
inline constexpr int64_t kMaxEnrolClaimLifetimeS = int64_t{3650} * 86400;

struct EnrolClaim {
  std::string terminal_id;  // the certificate's, when verified (ignored when made)
  std::string checkout_id;  // [A-Za-z0-9_-]{1,64}
  int64_t committed_at_ms = 0;
  int64_t expires_at_s = 0;  // the claim is refused after this second (now_s > expires_at_s)
  bool operator==(const EnrolClaim&) const = default;
};

// When the claim of a sale committed at committed_at_ms expires: at the end of the refund
// window (refund_window_days after the commit, to the second), or after
// kMaxEnrolClaimLifetimeS when the rules set no window (0). Negative days count as 0.
int64_t EnrolClaimExpiry(int64_t committed_at_ms, int64_t refund_window_days);

// The selling terminal: the claim text, or "" when something does not fit (a certificate
// that is empty or too long, a seed that is not 32 bytes, a checkout id outside
// [A-Za-z0-9_-]{1,64}, committed_at_ms < 0, an expiry outside 1 .. kMaxEnrolClaimLifetimeS
// seconds after the commit's second or past 2^32 - 1).
std::string MakeEnrolClaim(std::string_view cert, std::string_view terminal_seed32,
                           const EnrolClaim& claim);

// HQ (or anyone holding HQ's public keys): the claim verified at now_s. Checks, in order:
// the text (at most kMaxEnrolClaimChars, the prefix, strict base64url, the layout, the
// limits above: code_malformed, whose message never quotes the text), the certificate at
// the sale's time (code_issuer_unknown for an HQ key id not given, code_signature_invalid,
// code_expired when the sale is past its not_after), the terminal's signature
// (code_signature_invalid), then the claim's expiry (code_expired when now_s >
// expires_at_s). `cache` (optional) skips a certificate's HQ signature verified before.
Result<EnrolClaim> VerifyEnrolClaim(std::string_view text,
                                    const std::map<int, std::string>& hq_public_keys, int64_t now_s,
                                    ReceiptKeyCache* cache = nullptr);

}  // namespace loyalty::codes
