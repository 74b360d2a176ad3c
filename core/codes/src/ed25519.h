// Thin RAII wrappers over OpenSSL 3 EVP Ed25519 (private to the codes module).
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>

namespace loyalty::codes::internal {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

inline constexpr size_t kKeyBytes = 32;
inline constexpr size_t kSignatureBytes = 64;

// Null unless the input is 32 bytes that OpenSSL accepts.
PkeyPtr PublicKeyFromRaw(std::string_view pk32);
PkeyPtr PrivateKeyFromSeed(std::string_view seed32);

// True only for a valid 64-byte signature of `message` under `key`. `key` may be shared
// by concurrent callers: verification only reads it (each call has its own EVP_MD_CTX).
bool Verify(EVP_PKEY* key, std::string_view message, std::string_view signature);

// Empty on failure.
std::string Sign(EVP_PKEY* key, std::string_view message);
std::string RawPublicKey(EVP_PKEY* key);

}  // namespace loyalty::codes::internal
