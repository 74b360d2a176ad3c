#include "loyalty/codes/enrol_claim.h"

#include <algorithm>
#include <limits>

#include "bytes.h"
#include "ed25519.h"
#include "loyalty/base/encoding.h"
#include "loyalty/base/time.h"

namespace loyalty::codes {
namespace {

using internal::ByteReader;
using internal::kMaxCertBytes;
using internal::PutBigEndian;

constexpr std::string_view kClaimDomain = "LC1-CLAIM";
constexpr uint8_t kVersion = 1;
constexpr size_t kMaxCheckoutIdChars = 64;
// Within kMaxEnrolClaimChars of base64url.
constexpr size_t kMaxClaimBytes = kMaxEnrolClaimChars / 4 * 3;
// 1 + 8 + 4 + 1 + 64: a payload is never longer.
constexpr size_t kMaxPayloadBytes = 78;

Status Malformed(const std::string& why) {
  return Status::Error(ErrorCode::kCodeMalformed, "enrolment claim: " + why);
}

int64_t FloorSeconds(int64_t ms) { return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000); }

// The limits of a claim's content, the same when it is made and when it is read.
bool Fits(const EnrolClaim& c) {
  if (!internal::IsIdText(c.checkout_id, kMaxCheckoutIdChars) || c.committed_at_ms < 0)
    return false;
  const int64_t sale_s = FloorSeconds(c.committed_at_ms);
  return c.expires_at_s > sale_s && c.expires_at_s - sale_s <= kMaxEnrolClaimLifetimeS &&
         c.expires_at_s <= int64_t{std::numeric_limits<uint32_t>::max()};
}

// A certificate's error as the claim's: the same code, a message that names the claim.
Status AsClaimError(const Status& s) {
  std::string m = s.message();
  const std::string_view prefix = "return token: ";
  if (m.compare(0, prefix.size(), prefix) == 0) m.erase(0, prefix.size());
  return Status::Error(s.code(), "enrolment claim: " + m);
}

}  // namespace

int64_t EnrolClaimExpiry(int64_t committed_at_ms, int64_t refund_window_days) {
  const int64_t days = std::clamp<int64_t>(refund_window_days, 0, kMaxEnrolClaimLifetimeS / 86400);
  const int64_t lifetime = days > 0 ? days * 86400 : kMaxEnrolClaimLifetimeS;
  return FloorSeconds(committed_at_ms) + lifetime;
}

std::string MakeEnrolClaim(std::string_view cert, std::string_view terminal_seed32,
                           const EnrolClaim& claim) {
  if (cert.empty() || cert.size() > kMaxCertBytes || !Fits(claim)) return {};
  auto key = internal::PrivateKeyFromSeed(terminal_seed32);
  if (!key) return {};
  std::string p;
  PutBigEndian(p, kVersion, 1);
  PutBigEndian(p, static_cast<uint64_t>(claim.committed_at_ms), 8);
  PutBigEndian(p, static_cast<uint64_t>(claim.expires_at_s), 4);
  PutBigEndian(p, claim.checkout_id.size(), 1);
  p += claim.checkout_id;
  std::string sig = internal::Sign(key.get(), std::string(kClaimDomain) + std::string(cert) + p);
  if (sig.size() != internal::kSignatureBytes) return {};
  std::string raw;
  PutBigEndian(raw, cert.size(), 2);
  raw += cert;
  PutBigEndian(raw, p.size(), 2);
  raw += p;
  raw += sig;
  std::string text = std::string(kEnrolClaimPrefix) + Base64UrlEncode(raw);
  return text.size() <= kMaxEnrolClaimChars ? text : std::string();
}

Result<EnrolClaim> VerifyEnrolClaim(std::string_view text,
                                    const std::map<int, std::string>& hq_public_keys, int64_t now_s,
                                    ReceiptKeyCache* cache) {
  if (text.size() > kMaxEnrolClaimChars ||
      text.substr(0, kEnrolClaimPrefix.size()) != kEnrolClaimPrefix)
    return Malformed("not an enrolment claim");
  auto raw = Base64UrlDecode(text.substr(kEnrolClaimPrefix.size()));
  if (!raw || raw->size() > kMaxClaimBytes) return Malformed("not base64url");
  ByteReader in(*raw);
  const size_t cert_len = in.U(2);
  if (cert_len > kMaxCertBytes) return Malformed("certificate too long");
  std::string_view cert = in.Take(cert_len);
  const size_t payload_len = in.U(2);
  if (payload_len > kMaxPayloadBytes) return Malformed("payload too long");
  std::string_view payload = in.Take(payload_len);
  std::string_view sig = in.Take(internal::kSignatureBytes);
  if (!in.done()) return Malformed("does not parse");

  ByteReader p(payload);
  EnrolClaim c;
  if (p.U(1) != kVersion) return Malformed("version");
  c.committed_at_ms = p.I64();
  c.expires_at_s = static_cast<int64_t>(p.U(4));
  c.checkout_id = std::string(p.Take(p.U(1)));
  if (!p.done() || !Fits(c)) return Malformed("the sale does not parse");

  // The certificate at the sale's time (a certificate that expired since still proves a
  // sale made while it was valid), then the terminal's signature, then the claim's expiry.
  const int64_t sale_s = FloorSeconds(c.committed_at_ms);
  std::optional<ReceiptKeyCert> known = cache ? cache->Find(cert) : std::nullopt;
  Result<ReceiptKeyCert> k =
      known ? Result<ReceiptKeyCert>(*known) : VerifyReceiptKeyCert(cert, hq_public_keys, sale_s);
  if (!k.ok()) return AsClaimError(k.status());
  if (known && !hq_public_keys.count(k->key_id))
    return Status::Error(
        ErrorCode::kCodeIssuerUnknown,
        "enrolment claim: HQ key " + std::to_string(k->key_id) + " is not configured");
  if (known && sale_s > static_cast<int64_t>(k->not_after))
    return Status::Error(ErrorCode::kCodeExpired, "enrolment claim: the receipt key had expired");
  if (cache && !known) cache->Add(cert, *k);
  auto pk = internal::PublicKeyFromRaw(k->public_key);
  if (!pk ||
      !internal::Verify(pk.get(),
                        std::string(kClaimDomain) + std::string(cert) + std::string(payload), sig))
    return Status::Error(ErrorCode::kCodeSignatureInvalid,
                         "enrolment claim: the terminal's signature does not verify");
  if (now_s > c.expires_at_s)
    return Status::Error(ErrorCode::kCodeExpired, "enrolment claim: expired at " +
                                                      FormatRfc3339(c.expires_at_s) +
                                                      ": the sale is older than the refund window");
  c.terminal_id = k->terminal_id;
  return c;
}

}  // namespace loyalty::codes
