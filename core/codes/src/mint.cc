#include "loyalty/codes/mint.h"

#include "ed25519.h"
#include "loyalty/base/encoding.h"
#include "loyalty/codes/codes.h"

namespace loyalty::codes {
namespace {

constexpr std::string_view kCertDomain = "LM1-CERT";
constexpr std::string_view kCodeDomain = "LM1-CODE";
constexpr size_t kCertSignedBytes = 46;

void PutBigEndian(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

bool AllDigits(std::string_view s) {
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

std::string Ed25519PublicFromSeed(std::string_view seed32) {
  auto key = internal::PrivateKeyFromSeed(seed32);
  return internal::RawPublicKey(key.get());
}

std::string Ed25519Sign(std::string_view seed32, std::string_view message) {
  auto key = internal::PrivateKeyFromSeed(seed32);
  return internal::Sign(key.get(), message);
}

std::string MakeCertificate(std::string_view hq_private_seed32, uint8_t key_id, uint64_t member_id,
                            std::string_view device_pk32, uint32_t not_after) {
  if (device_pk32.size() != internal::kKeyBytes) return {};
  auto hq = internal::PrivateKeyFromSeed(hq_private_seed32);
  if (!hq) return {};
  std::string cert;
  cert.reserve(kCertificateBytes);
  cert += static_cast<char>(kCodeVersion);
  cert += static_cast<char>(key_id);
  PutBigEndian(cert, member_id, 8);
  cert.append(device_pk32);
  PutBigEndian(cert, not_after, 4);
  std::string message(kCertDomain);
  message += cert;
  std::string sig = internal::Sign(hq.get(), message);
  if (sig.empty() || cert.size() != kCertSignedBytes) return {};
  return cert + sig;
}

std::string MakeDynamicCode(std::string_view cert110, std::string_view device_seed32,
                            uint32_t code_time) {
  if (cert110.size() != kCertificateBytes) return {};
  auto device = internal::PrivateKeyFromSeed(device_seed32);
  if (!device) return {};
  std::string payload(cert110);
  PutBigEndian(payload, code_time, 4);
  std::string message(kCodeDomain);
  message += payload;
  std::string sig = internal::Sign(device.get(), message);
  if (sig.empty()) return {};
  payload += sig;
  return std::string(kDynamicPrefix) + Base64UrlEncode(payload);
}

std::string MakeCardNumber(std::string_view prefix, std::string_view body) {
  constexpr size_t kBodyDigits = kCardDigits - 1;
  if (!AllDigits(prefix) || !AllDigits(body) || prefix.size() + body.size() > kBodyDigits)
    return {};
  std::string number(prefix);
  number.append(kBodyDigits - prefix.size() - body.size(), '0');
  number.append(body);
  auto check = LuhnCheckDigit(number);
  if (!check) return {};
  number += *check;
  return number;
}

}  // namespace loyalty::codes
