#include "loyalty/hq/keys.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <climits>

#include "loyalty/base/secret_file.h"

namespace loyalty::hq {

Result<std::string> SigningKeySeedFromPem(std::string_view pem, const std::string& name) {
  if (pem.size() > static_cast<size_t>(INT_MAX))
    return Status::Error(ErrorCode::kConfigInvalid, name + ": not a PEM private key");
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return Status::Error(ErrorCode::kInternal, name + ": out of memory");
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr)
    return Status::Error(ErrorCode::kConfigInvalid, name + ": not a PEM private key");
  std::string seed(32, '\0');
  size_t len = seed.size();
  const bool ok =
      EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 &&
      EVP_PKEY_get_raw_private_key(key, reinterpret_cast<unsigned char*>(seed.data()), &len) == 1 &&
      len == 32;
  EVP_PKEY_free(key);
  if (!ok) return Status::Error(ErrorCode::kConfigInvalid, name + ": not an Ed25519 private key");
  return seed;
}

Result<std::string> LoadSigningKeySeed(const std::string& pem_file) {
  auto pem = ReadSecretFile(pem_file);
  if (!pem.ok()) return pem.status();
  auto seed = SigningKeySeedFromPem(*pem, pem_file);
  OPENSSL_cleanse(pem->data(), pem->size());
  return seed;
}

}  // namespace loyalty::hq
