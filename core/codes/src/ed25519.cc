#include "ed25519.h"

namespace loyalty::codes::internal {
namespace {

struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

PkeyPtr PublicKeyFromRaw(std::string_view pk32) {
  if (pk32.size() != kKeyBytes) return nullptr;
  return PkeyPtr(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, Bytes(pk32), pk32.size()));
}

PkeyPtr PrivateKeyFromSeed(std::string_view seed32) {
  if (seed32.size() != kKeyBytes) return nullptr;
  return PkeyPtr(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, Bytes(seed32), seed32.size()));
}

bool Verify(EVP_PKEY* key, std::string_view message, std::string_view signature) {
  if (key == nullptr || signature.size() != kSignatureBytes) return false;
  // A context per call rather than a cached one: contexts are not shareable between
  // threads, and allocating one costs well under 1% of the verification itself.
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return false;
  // Ed25519 is a one-shot algorithm: no digest (NULL md), message given whole.
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key) != 1) return false;
  return EVP_DigestVerify(ctx.get(), Bytes(signature), signature.size(), Bytes(message),
                          message.size()) == 1;
}

std::string Sign(EVP_PKEY* key, std::string_view message) {
  if (key == nullptr) return {};
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key) != 1) return {};
  std::string sig(kSignatureBytes, '\0');
  size_t len = sig.size();
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, Bytes(message),
                     message.size()) != 1 ||
      len != kSignatureBytes) {
    return {};
  }
  return sig;
}

std::string RawPublicKey(EVP_PKEY* key) {
  if (key == nullptr) return {};
  std::string pk(kKeyBytes, '\0');
  size_t len = pk.size();
  if (EVP_PKEY_get_raw_public_key(key, reinterpret_cast<unsigned char*>(pk.data()), &len) != 1 ||
      len != kKeyBytes) {
    return {};
  }
  return pk;
}

}  // namespace loyalty::codes::internal
