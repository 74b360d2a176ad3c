// Feeds arbitrary text to VerifyEnrolClaim with a fixed HQ key, at a fixed time. Nothing may
// crash; every outcome is a verified claim within the claim's limits or one of the code
// errors.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "loyalty/codes/enrol_claim.h"
#include "loyalty/codes/mint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loyalty;
  static const std::map<int, std::string> keys = {
      {1, codes::Ed25519PublicFromSeed(std::string(32, '\x11'))}};
  constexpr int64_t kNowS = 1'790'000'000;  // the corpus's claims are valid at this time
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto c = codes::VerifyEnrolClaim(text, keys, kNowS);
  if (c.ok()) {
    const int64_t sale_s = c->committed_at_ms / 1000;
    if (size > codes::kMaxEnrolClaimChars || c->terminal_id.empty() || c->checkout_id.empty() ||
        c->checkout_id.size() > 64 || c->committed_at_ms < 0 || c->expires_at_s <= sale_s ||
        c->expires_at_s - sale_s > codes::kMaxEnrolClaimLifetimeS || kNowS > c->expires_at_s)
      std::abort();
    return 0;
  }
  switch (c.status().code()) {
    case ErrorCode::kCodeMalformed:
    case ErrorCode::kCodeSignatureInvalid:
    case ErrorCode::kCodeIssuerUnknown:
    case ErrorCode::kCodeExpired:
      return 0;
    default:
      std::abort();
  }
}
