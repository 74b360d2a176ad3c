// Feeds arbitrary scanner text to CodeVerifier::Identify with fixed keys and a fixed time.
// Nothing may crash, and every outcome must be one the contract names.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "loyalty/base/encoding.h"
#include "loyalty/codes/codes.h"

namespace {

using loyalty::codes::CodeVerifier;

const CodeVerifier& Verifier() {
  static const CodeVerifier* v = [] {
    loyalty::codes::CodesConfig cfg;
    // The public key of the test vectors' HQ seed (shared/vectors/member-codes.json).
    cfg.hq_public_keys[1] =
        *loyalty::Base64UrlDecode("ebVWLo_mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ");
    cfg.channels = {
        {"wechat", "^[0-9]{12}$"}, {"alipay", "[0-9]{16,24}"}, {"gs1", "\\x1d?[0-9A-Z]+"}};
    cfg.certificate_cache_capacity = 8;
    auto r = CodeVerifier::Create(std::move(cfg));
    if (!r.ok()) std::abort();
    return std::move(r).value().release();
  }();
  return *v;
}

bool Known(std::string_view code) {
  for (std::string_view c :
       {"code_malformed", "code_issuer_unknown", "code_signature_invalid", "code_expired",
        "code_not_yet_valid", "code_revoked", "not_a_member_code"})
    if (code == c) return true;
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r =
      Verifier().Identify(text, 1'795'000'030, [](std::string_view pk) { return pk.size() != 32; });
  if (!r.ok() && !Known(std::string(r.status().code_name()))) std::abort();
  if (r.ok() && r->code_hash.size() != 64) std::abort();
  (void)loyalty::codes::ParseCertificate(text);
  return 0;
}
