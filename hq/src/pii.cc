#include "loyalty/hq/pii.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "loyalty/base/encoding.h"
#include "loyalty/base/hash.h"
#include "loyalty/base/phone.h"
#include "loyalty/base/secret_file.h"

namespace loyalty::hq {
namespace {

constexpr size_t kKeyBytes = 32, kNonceBytes = 12, kTagBytes = 16;

Status Invalid(const std::string& path, const std::string& why) {
  return Status::Error(ErrorCode::kConfigInvalid, path + ": " + why);
}

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};

}  // namespace

Result<PiiCipher> PiiCipher::LoadOrCreate(const std::string& path) {
  // The same check as every other secret file: owner-only, no link, a regular file.
  auto read = ReadSecretFile(path, SecretAccess::kOwnerOnly, kKeyBytes);
  if (!read.ok() && read.status().code() == ErrorCode::kNotFound) {
    // O_EXCL: two processes starting at once never both write a key.
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
      return Invalid(path, std::string("cannot create the key file: ") + std::strerror(errno));
    std::string key = RandomBytes(kKeyBytes);
    bool ok =
        ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) return Invalid(path, "cannot write the key file");
    return FromKey(std::move(key));
  }
  if (!read.ok()) {
    if (read.status().code() == ErrorCode::kSecretFileRefused &&
        read.status().message().find("larger than") != std::string::npos) {
      return Invalid(path, "the PII key file must hold exactly 32 bytes");
    }
    return Status::Error(ErrorCode::kConfigInvalid, read.status().message());
  }
  if (read->size() != kKeyBytes)
    return Invalid(path, "the PII key file must hold exactly 32 bytes");
  return FromKey(std::move(*read));
}

PiiCipher PiiCipher::FromKey(std::string key32) {
  PiiCipher c(std::move(key32));
  std::string mac = KeyedHashHex(c.key_, "loyalty-hq phone-hash v1");
  c.phone_hash_key_ = mac;  // hex of the derived key: 64 bytes of key material for HMAC
  c.store_phone_master_ = KeyedHashHex(c.key_, "loyalty-hq store-phone-key v1");
  return c;
}

std::string PiiCipher::Encrypt(std::string_view plain, std::string_view associated) const {
  std::string nonce = RandomBytes(kNonceBytes);
  std::string out = nonce;
  out.resize(kNonceBytes + plain.size() + kTagBytes);
  std::unique_ptr<EVP_CIPHER_CTX, CtxFree> ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  auto* key = reinterpret_cast<const unsigned char*>(key_.data());
  auto* iv = reinterpret_cast<const unsigned char*>(nonce.data());
  auto* dst = reinterpret_cast<unsigned char*>(out.data()) + kNonceBytes;
  bool ok =
      ctx && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key, iv) == 1 &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(associated.data()),
                        static_cast<int>(associated.size())) == 1 &&
      EVP_EncryptUpdate(ctx.get(), dst, &len, reinterpret_cast<const unsigned char*>(plain.data()),
                        static_cast<int>(plain.size())) == 1 &&
      EVP_EncryptFinal_ex(ctx.get(), dst + len, &len) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, dst + plain.size()) == 1;
  // OpenSSL failing to encrypt in memory means the library is broken: never store clear text.
  if (!ok) std::abort();
  return out;
}

Result<std::string> PiiCipher::Decrypt(std::string_view blob, std::string_view associated) const {
  if (blob.size() < kNonceBytes + kTagBytes)
    return Status::Error(ErrorCode::kInternal, "PII blob too short");
  size_t n = blob.size() - kNonceBytes - kTagBytes;
  std::string out(n, '\0');
  std::string tag(blob.substr(kNonceBytes + n));
  std::unique_ptr<EVP_CIPHER_CTX, CtxFree> ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  auto* key = reinterpret_cast<const unsigned char*>(key_.data());
  auto* iv = reinterpret_cast<const unsigned char*>(blob.data());
  auto* dst = reinterpret_cast<unsigned char*>(out.data());
  bool ok = ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key, iv) == 1 &&
            EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                              reinterpret_cast<const unsigned char*>(associated.data()),
                              static_cast<int>(associated.size())) == 1 &&
            EVP_DecryptUpdate(ctx.get(), dst, &len,
                              reinterpret_cast<const unsigned char*>(blob.data()) + kNonceBytes,
                              static_cast<int>(n)) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) == 1 &&
            EVP_DecryptFinal_ex(ctx.get(), dst + len, &len) == 1;
  if (!ok) return Status::Error(ErrorCode::kInternal, "PII blob does not authenticate");
  return out;
}

std::string PiiCipher::PhoneHash(std::string_view phone) const {
  return KeyedHashHex(phone_hash_key_, PhoneLookupDigits(phone));
}

std::string PiiCipher::StorePhoneKey(std::string_view store_id, int64_t key_id) const {
  std::string hex =
      KeyedHashHex(store_phone_master_, std::string(store_id) + '\0' + std::to_string(key_id));
  auto raw = HexDecode(hex);
  return raw ? *raw : std::string();
}

std::string StorePhoneHash(std::string_view store_key, std::string_view phone) {
  return KeyedHashHex(store_key, PhoneLookupDigits(phone));
}

std::string MaskName(std::string_view name) {
  if (name.empty()) return "";
  unsigned char c = static_cast<unsigned char>(name[0]);
  size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 1;
  if (len > name.size()) len = 1;
  // A name of one character shown would be the whole name: "*" alone.
  if (len >= name.size()) return "*";
  return std::string(name.substr(0, len)) + "*";
}

std::string MaskPhone(std::string_view phone) {
  // The number as it is looked up: "+86 138…" is masked as 138****5678, not as 861******5678.
  std::string d = PhoneLookupDigits(phone);
  if (d.size() >= 8)
    return d.substr(0, 3) + std::string(d.size() - 7, '*') + d.substr(d.size() - 4);
  if (d.size() <= 2) return std::string(d.size(), '*');
  return std::string(d.size() - 2, '*') + d.substr(d.size() - 2);
}

}  // namespace loyalty::hq
