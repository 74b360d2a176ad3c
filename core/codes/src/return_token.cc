#include "loyalty/codes/return_token.h"

#include <openssl/rand.h>

#include <limits>

#include "bytes.h"
#include "ed25519.h"
#include "loyalty/base/encoding.h"

namespace loyalty::codes {
namespace {

constexpr std::string_view kKeyDomain = "LR1-KEY";
constexpr std::string_view kReturnDomain = "LR1-RETURN";
constexpr uint8_t kVersion = 1;
using internal::kMaxCertBytes;
// Within kMaxReturnTokenChars of base64url: 4096 * 3 / 4.
constexpr size_t kMaxTokenBytes = kMaxReturnTokenChars / 4 * 3;

using internal::ByteReader;

void Put(std::string& out, uint64_t v, int bytes) { internal::PutBigEndian(out, v, bytes); }

bool IsTerminalIdText(std::string_view s) { return internal::IsIdText(s, 32); }

Status Malformed(const std::string& why) {
  return Status::Error(ErrorCode::kCodeMalformed, "return token: " + why);
}

// The amounts a token may carry: those of the sync limits (messages.h), kept here as plain
// numbers so that the codes module needs nothing from sync.
constexpr int64_t kMaxPoints = 1'000'000'000'000'000;
constexpr int64_t kMaxCents = 500'000'000'000'000;

bool InRange(int64_t v, int64_t hi) { return v >= 0 && v <= hi; }

bool BasisFits(const ReturnBasis& b) {
  if (b.checkout_id.empty() || b.checkout_id.size() > 64 || b.rules_version.size() > 64)
    return false;
  if (b.lines.empty() || b.lines.size() > kMaxReturnTokenLines) return false;
  if (b.committed_at_ms < 0) return false;
  if (!InRange(b.points_earned, kMaxPoints) || !InRange(b.redeemed_points, kMaxPoints) ||
      !InRange(b.eligible_cents, kMaxCents) || !InRange(b.redeemable_cents, kMaxCents))
    return false;
  if (b.member_id && *b.member_id == 0) return false;
  for (const auto& l : b.lines)
    if (l.qty < 1 || l.qty > 10000 || !InRange(l.net_cents, kMaxCents) ||
        !InRange(l.net_before_redeem_cents, kMaxCents))
      return false;
  return true;
}

}  // namespace

std::string NewReceiptKeySeed() {
  std::string seed(internal::kKeyBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(seed.data()), static_cast<int>(seed.size())) != 1)
    return {};
  return seed;
}

std::string ReceiptPublicKey(std::string_view seed32) {
  auto key = internal::PrivateKeyFromSeed(seed32);
  return key ? internal::RawPublicKey(key.get()) : std::string();
}

std::string MakeReceiptKeyCert(std::string_view hq_seed32, uint8_t key_id,
                               std::string_view terminal_id, std::string_view terminal_pk32,
                               uint32_t not_after) {
  if (terminal_pk32.size() != internal::kKeyBytes || !IsTerminalIdText(terminal_id)) return {};
  auto hq = internal::PrivateKeyFromSeed(hq_seed32);
  if (!hq) return {};
  std::string body;
  Put(body, kVersion, 1);
  Put(body, key_id, 1);
  Put(body, not_after, 4);
  body += terminal_pk32;
  Put(body, terminal_id.size(), 1);
  body += terminal_id;
  std::string sig = internal::Sign(hq.get(), std::string(kKeyDomain) + body);
  if (sig.size() != internal::kSignatureBytes) return {};
  return body + sig;
}

Result<ReceiptKeyCert> VerifyReceiptKeyCert(std::string_view cert,
                                            const std::map<int, std::string>& hq_public_keys,
                                            int64_t now_s) {
  if (cert.size() > kMaxCertBytes) return Malformed("certificate too long");
  ByteReader in(cert);
  ReceiptKeyCert c;
  if (in.U(1) != kVersion) return Malformed("certificate version");
  c.key_id = static_cast<uint8_t>(in.U(1));
  c.not_after = static_cast<uint32_t>(in.U(4));
  c.public_key = std::string(in.Take(internal::kKeyBytes));
  size_t n = in.U(1);
  c.terminal_id = std::string(in.Take(n));
  size_t signed_bytes = in.pos();
  std::string_view sig = in.Take(internal::kSignatureBytes);
  if (!in.done() || !IsTerminalIdText(c.terminal_id))
    return Malformed("certificate does not parse");
  auto key = hq_public_keys.find(c.key_id);
  if (key == hq_public_keys.end())
    return Status::Error(ErrorCode::kCodeIssuerUnknown,
                         "return token: HQ key " + std::to_string(c.key_id) + " is not configured");
  auto pk = internal::PublicKeyFromRaw(key->second);
  if (!pk ||
      !internal::Verify(pk.get(),
                        std::string(kKeyDomain) + std::string(cert.substr(0, signed_bytes)), sig))
    return Status::Error(ErrorCode::kCodeSignatureInvalid,
                         "return token: the receipt key's certificate does not verify");
  if (now_s > static_cast<int64_t>(c.not_after))
    return Status::Error(ErrorCode::kCodeExpired, "return token: the receipt key has expired");
  return c;
}

std::string MakeReturnToken(std::string_view cert, std::string_view terminal_seed32,
                            const ReturnBasis& b) {
  if (cert.empty() || cert.size() > kMaxCertBytes || !BasisFits(b)) return {};
  auto key = internal::PrivateKeyFromSeed(terminal_seed32);
  if (!key) return {};
  std::string p;
  Put(p, kVersion, 1);
  Put(p, static_cast<uint64_t>(b.committed_at_ms), 8);
  Put(p, b.member_id.value_or(0), 8);
  Put(p, static_cast<uint64_t>(b.points_earned), 8);
  Put(p, static_cast<uint64_t>(b.redeemed_points), 8);
  Put(p, static_cast<uint64_t>(b.eligible_cents), 8);
  Put(p, static_cast<uint64_t>(b.redeemable_cents), 8);
  Put(p, b.checkout_id.size(), 1);
  p += b.checkout_id;
  Put(p, b.rules_version.size(), 1);
  p += b.rules_version;
  Put(p, b.lines.size(), 1);
  for (const auto& l : b.lines) {
    Put(p, static_cast<uint64_t>(l.qty), 2);
    Put(p, static_cast<uint64_t>(l.net_cents), 8);
    Put(p, static_cast<uint64_t>(l.net_before_redeem_cents), 8);
    Put(p, (l.points_eligible ? 1 : 0) | (l.redeemable ? 2 : 0), 1);
  }
  std::string sig = internal::Sign(key.get(), std::string(kReturnDomain) + std::string(cert) + p);
  if (sig.size() != internal::kSignatureBytes) return {};
  std::string raw;
  Put(raw, cert.size(), 2);
  raw += cert;
  Put(raw, p.size(), 2);
  raw += p;
  raw += sig;
  std::string text = std::string(kReturnTokenPrefix) + Base64UrlEncode(raw);
  return text.size() <= kMaxReturnTokenChars ? text : std::string();
}

std::optional<ReceiptKeyCert> ReceiptKeyCache::Find(std::string_view cert) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = certs_.find(cert);
  if (it == certs_.end()) return std::nullopt;
  return it->second;
}

void ReceiptKeyCache::Add(std::string_view cert, const ReceiptKeyCert& parsed) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!certs_.emplace(std::string(cert), parsed).second) return;
  order_.emplace_back(cert);
  while (order_.size() > capacity_) {
    certs_.erase(order_.front());
    order_.pop_front();
  }
}

size_t ReceiptKeyCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return certs_.size();
}

Result<ReturnBasis> VerifyReturnToken(std::string_view text,
                                      const std::map<int, std::string>& hq_public_keys,
                                      ReceiptKeyCache* cache) {
  if (text.size() > kMaxReturnTokenChars ||
      text.substr(0, kReturnTokenPrefix.size()) != kReturnTokenPrefix)
    return Malformed("not a return token");
  auto raw = Base64UrlDecode(text.substr(kReturnTokenPrefix.size()));
  if (!raw || raw->size() > kMaxTokenBytes) return Malformed("not base64url");
  ByteReader in(*raw);
  size_t cert_len = in.U(2);
  std::string_view cert = in.Take(cert_len);
  size_t payload_len = in.U(2);
  std::string_view payload = in.Take(payload_len);
  std::string_view sig = in.Take(internal::kSignatureBytes);
  if (!in.done()) return Malformed("does not parse");

  ByteReader p(payload);
  ReturnBasis b;
  if (p.U(1) != kVersion) return Malformed("version");
  b.committed_at_ms = p.I64();
  uint64_t member = p.U(8);
  if (member != 0) b.member_id = member;
  b.points_earned = p.I64();
  b.redeemed_points = p.I64();
  b.eligible_cents = p.I64();
  b.redeemable_cents = p.I64();
  b.checkout_id = std::string(p.Take(p.U(1)));
  b.rules_version = std::string(p.Take(p.U(1)));
  size_t n = p.U(1);
  for (size_t i = 0; i < n && p.ok(); ++i) {
    ReturnLine l;
    l.qty = static_cast<int64_t>(p.U(2));
    l.net_cents = p.I64();
    l.net_before_redeem_cents = p.I64();
    uint64_t flags = p.U(1);
    if (flags > 3) return Malformed("line flags");
    l.points_eligible = flags & 1;
    l.redeemable = flags & 2;
    b.lines.push_back(l);
  }
  if (!p.done() || !BasisFits(b)) return Malformed("the sale does not parse");

  // The certificate at the sale's time; then the terminal's signature.
  int64_t sale_s = b.committed_at_ms / 1000;
  std::optional<ReceiptKeyCert> known = cache ? cache->Find(cert) : std::nullopt;
  Result<ReceiptKeyCert> c =
      known ? Result<ReceiptKeyCert>(*known) : VerifyReceiptKeyCert(cert, hq_public_keys, sale_s);
  if (!c.ok()) return c.status();
  // A key HQ no longer lists (rotated out of [codes] hq_public_keys) no longer counts.
  if (known && !hq_public_keys.count(c->key_id))
    return Status::Error(ErrorCode::kCodeIssuerUnknown, "return token: HQ key not configured");
  if (known && sale_s > static_cast<int64_t>(c->not_after))
    return Status::Error(ErrorCode::kCodeExpired, "return token: the receipt key had expired");
  if (cache && !known) cache->Add(cert, *c);
  auto pk = internal::PublicKeyFromRaw(c->public_key);
  if (!pk ||
      !internal::Verify(pk.get(),
                        std::string(kReturnDomain) + std::string(cert) + std::string(payload), sig))
    return Status::Error(ErrorCode::kCodeSignatureInvalid,
                         "return token: the receipt's signature does not verify");
  b.terminal_id = c->terminal_id;
  return b;
}

}  // namespace loyalty::codes
