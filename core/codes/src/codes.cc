#include "loyalty/codes/codes.h"

#include <array>
#include <atomic>
#include <list>
#include <mutex>
#include <regex>
#include <unordered_map>
#include <utility>

#include "ed25519.h"
#include "loyalty/base/encoding.h"
#include "loyalty/base/hash.h"

namespace loyalty::codes {
namespace {

constexpr std::string_view kCertDomain = "LM1-CERT";
constexpr std::string_view kCodeDomain = "LM1-CODE";
constexpr size_t kCertSignedBytes = 46;   // certificate bytes covered by hq_sig
constexpr size_t kCodeSignedBytes = 114;  // certificate || code_time, covered by device_sig
constexpr size_t kDevicePkOffset = 10;
constexpr size_t kNotAfterOffset = 42;

uint64_t GetBigEndian(std::string_view bytes, size_t offset, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(bytes[offset + i]);
  return v;
}

bool AllDigits(std::string_view s) {
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

Status Err(ErrorCode code, std::string message) { return Status::Error(code, std::move(message)); }

// Verifies `signature` over domain || signed_bytes without allocating for the message.
template <size_t N>
bool VerifyDomain(EVP_PKEY* key, std::string_view domain, std::string_view signed_bytes,
                  std::string_view signature) {
  std::array<char, N> message;
  if (domain.size() + signed_bytes.size() != N) return false;
  std::copy(domain.begin(), domain.end(), message.begin());
  std::copy(signed_bytes.begin(), signed_bytes.end(), message.begin() + domain.size());
  return internal::Verify(key, std::string_view(message.data(), N), signature);
}

// The device key of a certificate whose hq_sig verified. Immutable once built, shared
// (by shared_ptr) between the cache and verifications in flight, so an eviction never
// frees a key another thread is using.
struct VerifiedCertificate {
  std::string bytes;  // the exact 110 certificate bytes
  internal::PkeyPtr device_key;
};

// Bounded LRU of verified certificates. The critical sections are a hash lookup and a
// list splice; signature verification always happens outside the lock.
class CertificateCache {
 public:
  explicit CertificateCache(size_t capacity) : capacity_(capacity) {}

  std::shared_ptr<const VerifiedCertificate> Find(std::string_view cert) {
    std::lock_guard lock(mu_);
    auto it = index_.find(cert);
    if (it == index_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second);
    return *it->second;
  }

  void Insert(std::shared_ptr<const VerifiedCertificate> entry) {
    std::lock_guard lock(mu_);
    if (index_.count(entry->bytes)) return;  // another thread verified it meanwhile
    lru_.push_front(std::move(entry));
    // The key views the string owned by the list node, which never moves.
    index_.emplace(lru_.front()->bytes, lru_.begin());
    while (lru_.size() > capacity_) {
      index_.erase(lru_.back()->bytes);
      lru_.pop_back();
    }
  }

  size_t size() const {
    std::lock_guard lock(mu_);
    return lru_.size();
  }

 private:
  using List = std::list<std::shared_ptr<const VerifiedCertificate>>;
  const size_t capacity_;
  mutable std::mutex mu_;
  List lru_;                                                    // most recent first
  std::unordered_map<std::string_view, List::iterator> index_;  // views into lru_ entries
};

struct CompiledChannel {
  std::string name;
  std::regex re;
};

}  // namespace

std::string_view CodeKindName(CodeKind kind) {
  switch (kind) {
    case CodeKind::kDynamic:
      return "dynamic";
    case CodeKind::kStatic:
      return "static";
    case CodeKind::kChannel:
      return "channel";
    case CodeKind::kPhone:
      return "phone";
  }
  return "unknown";
}

Result<Certificate> ParseCertificate(std::string_view bytes) {
  if (bytes.size() != kCertificateBytes)
    return Err(ErrorCode::kCodeMalformed, "certificate is not 110 bytes");
  Certificate c;
  c.version = static_cast<uint8_t>(bytes[0]);
  if (c.version != kCodeVersion)
    return Err(ErrorCode::kCodeMalformed, "unsupported certificate version");
  c.key_id = static_cast<uint8_t>(bytes[1]);
  c.member_id = GetBigEndian(bytes, 2, 8);
  c.device_public_key = std::string(bytes.substr(kDevicePkOffset, internal::kKeyBytes));
  c.not_after = static_cast<uint32_t>(GetBigEndian(bytes, kNotAfterOffset, 4));
  c.hq_signature = std::string(bytes.substr(kCertSignedBytes, internal::kSignatureBytes));
  return c;
}

bool IsLuhnValid(std::string_view digits) {
  if (digits.empty() || !AllDigits(digits)) return false;
  auto check = LuhnCheckDigit(digits.substr(0, digits.size() - 1));
  return check && *check == digits.back();
}

std::optional<char> LuhnCheckDigit(std::string_view body) {
  if (!AllDigits(body)) return std::nullopt;
  // Double every second digit counting from the right of the body (the check digit will
  // sit to its right, so the body's last digit is doubled).
  int sum = 0;
  bool twice = true;
  for (auto it = body.rbegin(); it != body.rend(); ++it) {
    int d = *it - '0';
    if (twice) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    twice = !twice;
  }
  return static_cast<char>('0' + (10 - sum % 10) % 10);
}

struct CodeVerifier::Impl {
  explicit Impl(CodesConfig c) : cfg(std::move(c)), cache(cfg.certificate_cache_capacity) {}

  Result<Identified> IdentifyDynamic(std::string_view text, int64_t now_s,
                                     const std::function<bool(std::string_view)>& is_revoked) const;

  CodesConfig cfg;
  std::array<internal::PkeyPtr, 256> hq_keys;  // by key_id; null = not configured
  std::vector<CompiledChannel> channels;
  mutable CertificateCache cache;
  mutable std::atomic<uint64_t> certificate_verifications{0};
  mutable std::atomic<uint64_t> certificate_cache_hits{0};
};

Result<std::unique_ptr<CodeVerifier>> CodeVerifier::Create(CodesConfig cfg) {
  if (cfg.code_max_age_s < 0 || cfg.code_max_age_s > kMaxWindowS)
    return Err(ErrorCode::kConfigInvalid, "codes.code_max_age_s out of range");
  if (cfg.clock_skew_s < 0 || cfg.clock_skew_s > kMaxWindowS)
    return Err(ErrorCode::kConfigInvalid, "codes.clock_skew_s out of range");
  if (!AllDigits(cfg.card_prefix) || cfg.card_prefix.size() >= kCardDigits)
    return Err(ErrorCode::kConfigInvalid, "codes.card_prefix must be at most 15 digits");
  if (cfg.certificate_cache_capacity == 0)
    return Err(ErrorCode::kConfigInvalid, "certificate cache capacity must be positive");

  auto impl = std::make_unique<Impl>(std::move(cfg));
  for (const auto& [key_id, pk] : impl->cfg.hq_public_keys) {
    if (key_id < 0 || key_id > 255)
      return Err(ErrorCode::kConfigInvalid,
                 "codes.hq_public_keys: key id " + std::to_string(key_id) + " outside 0..255");
    auto key = internal::PublicKeyFromRaw(pk);
    if (!key)
      return Err(ErrorCode::kConfigInvalid, "codes.hq_public_keys: key " + std::to_string(key_id) +
                                                " is not a 32-byte Ed25519 public key");
    impl->hq_keys[key_id] = std::move(key);
  }
  for (const auto& ch : impl->cfg.channels) {
    if (ch.name.empty())
      return Err(ErrorCode::kConfigInvalid, "codes.channels: a channel has no name");
    try {
      impl->channels.push_back({ch.name, std::regex(ch.pattern, std::regex::ECMAScript)});
    } catch (const std::regex_error& e) {
      return Err(ErrorCode::kConfigInvalid, "codes.channels: pattern of channel " + ch.name +
                                                " does not compile: " + e.what());
    }
  }
  return std::unique_ptr<CodeVerifier>(new CodeVerifier(std::move(impl)));
}

CodeVerifier::CodeVerifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CodeVerifier::~CodeVerifier() = default;

const CodesConfig& CodeVerifier::config() const { return impl_->cfg; }

CodeVerifier::Stats CodeVerifier::stats() const {
  Stats s;
  s.certificate_verifications = impl_->certificate_verifications.load(std::memory_order_relaxed);
  s.certificate_cache_hits = impl_->certificate_cache_hits.load(std::memory_order_relaxed);
  s.certificate_cache_size = impl_->cache.size();
  return s;
}

Result<Identified> CodeVerifier::Identify(
    std::string_view text, int64_t now_s,
    const std::function<bool(std::string_view)>& is_revoked) const {
  if (text.size() > kMaxScanBytes)
    return Err(ErrorCode::kCodeMalformed, "scan longer than 4096 bytes");
  // Whatever follows "LM1:" is judged as a dynamic code: a damaged one is a rejected member
  // code with its step's error, never a product barcode.
  if (text.starts_with(kDynamicPrefix)) return impl_->IdentifyDynamic(text, now_s, is_revoked);

  const std::string& prefix = impl_->cfg.card_prefix;
  if (text.size() == kCardDigits && text.starts_with(prefix) && AllDigits(text)) {
    if (!IsLuhnValid(text))
      return Err(ErrorCode::kCodeMalformed, "card number check digit is wrong");
    Identified id;
    id.kind = CodeKind::kStatic;
    id.card_number = std::string(text);
    id.code_hash = DigestHex(Sha256(text));
    return id;
  }

  if (text.size() <= kMaxChannelCodeBytes) {
    for (const auto& ch : impl_->channels) {
      if (std::regex_match(text.begin(), text.end(), ch.re)) {
        Identified id;
        id.kind = CodeKind::kChannel;
        id.channel = ch.name;
        id.external_id = std::string(text);
        id.code_hash = DigestHex(Sha256(text));
        return id;
      }
    }
  }
  return Err(ErrorCode::kNotAMemberCode, "scan matches no member code format");
}

Result<Identified> CodeVerifier::Impl::IdentifyDynamic(
    std::string_view text, int64_t now_s,
    const std::function<bool(std::string_view)>& is_revoked) const {
  // Step 1: shape. The length test first spares decoding long garbage; it is implied by
  // the 178-byte rule (strict base64url of 178 bytes is exactly 238 characters).
  if (text.size() != kDynamicCodeChars)
    return Err(ErrorCode::kCodeMalformed, "dynamic code has the wrong length");
  auto payload = Base64UrlDecode(text.substr(kDynamicPrefix.size()));
  if (!payload) return Err(ErrorCode::kCodeMalformed, "dynamic code is not canonical base64url");
  if (payload->size() != kPayloadBytes)
    return Err(ErrorCode::kCodeMalformed, "dynamic code payload is not 178 bytes");
  std::string_view p(*payload);
  std::string_view cert = p.substr(0, kCertificateBytes);
  if (static_cast<uint8_t>(cert[0]) != kCodeVersion)
    return Err(ErrorCode::kCodeMalformed, "unsupported dynamic code version");

  // Step 2: issuer.
  uint8_t key_id = static_cast<uint8_t>(cert[1]);
  EVP_PKEY* hq_key = hq_keys[key_id].get();
  if (hq_key == nullptr)
    return Err(ErrorCode::kCodeIssuerUnknown,
               "certificate key id " + std::to_string(key_id) + " is not configured");

  // Step 3: hq_sig (skipped when these exact certificate bytes already verified), then
  // device_sig. The cache is keyed by all 110 bytes, so any altered byte (member id,
  // device key, not_after, signature) misses and is verified from scratch.
  std::shared_ptr<const VerifiedCertificate> verified = cache.Find(cert);
  if (verified) {
    certificate_cache_hits.fetch_add(1, std::memory_order_relaxed);
  } else {
    certificate_verifications.fetch_add(1, std::memory_order_relaxed);
    if (!VerifyDomain<kCertDomain.size() + kCertSignedBytes>(
            hq_key, kCertDomain, cert.substr(0, kCertSignedBytes), cert.substr(kCertSignedBytes)))
      return Err(ErrorCode::kCodeSignatureInvalid, "certificate signature is invalid");
    auto device_key = internal::PublicKeyFromRaw(cert.substr(kDevicePkOffset, internal::kKeyBytes));
    if (!device_key)
      return Err(ErrorCode::kCodeSignatureInvalid, "certified device key is unusable");
    auto entry = std::make_shared<VerifiedCertificate>();
    entry->bytes = std::string(cert);
    entry->device_key = std::move(device_key);
    verified = entry;
    cache.Insert(std::move(entry));
  }
  if (!VerifyDomain<kCodeDomain.size() + kCodeSignedBytes>(verified->device_key.get(), kCodeDomain,
                                                           p.substr(0, kCodeSignedBytes),
                                                           p.substr(kCodeSignedBytes)))
    return Err(ErrorCode::kCodeSignatureInvalid, "device signature is invalid");

  // Steps 4 and 5: windows. Config bounds (kMaxWindowS) keep this arithmetic in range.
  uint32_t not_after = static_cast<uint32_t>(GetBigEndian(cert, kNotAfterOffset, 4));
  uint32_t code_time = static_cast<uint32_t>(GetBigEndian(p, kCertificateBytes, 4));
  if (code_time > not_after) return Err(ErrorCode::kCodeExpired, "device certificate has expired");
  if (now_s > static_cast<int64_t>(code_time) + cfg.code_max_age_s)
    return Err(ErrorCode::kCodeExpired, "code has expired");
  if (static_cast<int64_t>(code_time) - cfg.clock_skew_s > now_s)
    return Err(ErrorCode::kCodeNotYetValid, "code time is ahead of the terminal's trusted time");

  // Step 6: revocation.
  std::string_view device_pk = cert.substr(kDevicePkOffset, internal::kKeyBytes);
  if (is_revoked && is_revoked(device_pk))
    return Err(ErrorCode::kCodeRevoked, "device key is revoked");

  Identified id;
  id.kind = CodeKind::kDynamic;
  id.member_id = GetBigEndian(cert, 2, 8);
  id.device_public_key = std::string(device_pk);
  id.code_time = code_time;
  id.not_after = not_after;
  id.key_id = key_id;
  id.code_hash = DigestHex(Sha256(text));
  return id;
}

}  // namespace loyalty::codes
