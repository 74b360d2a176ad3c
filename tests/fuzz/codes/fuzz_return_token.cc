// Feeds arbitrary receipt text to VerifyReturnToken with a fixed HQ key. Nothing may crash;
// every outcome is a verified sale within the token's limits or one of the code errors.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "loyalty/codes/mint.h"
#include "loyalty/codes/return_token.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loyalty;
  static const std::map<int, std::string> keys = {
      {1, codes::Ed25519PublicFromSeed(std::string(32, '\x11'))}};
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto b = codes::VerifyReturnToken(text, keys);
  if (b.ok()) {
    if (b->lines.empty() || b->lines.size() > codes::kMaxReturnTokenLines ||
        b->terminal_id.empty() || b->checkout_id.empty())
      std::abort();
    return 0;
  }
  switch (b.status().code()) {
    case ErrorCode::kCodeMalformed:
    case ErrorCode::kCodeSignatureInvalid:
    case ErrorCode::kCodeIssuerUnknown:
    case ErrorCode::kCodeExpired:
      return 0;
    default:
      std::abort();
  }
}
