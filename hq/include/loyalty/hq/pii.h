// Personal data at rest: names, phone numbers and birthdays are stored only as AES-256-GCM
// ciphertexts (OpenSSL), and terminals get masked forms and a keyed hash of the phone.
//
// Stored form of a value: nonce (12 random bytes) ‖ ciphertext ‖ tag (16 bytes). The
// associated data binds a ciphertext to its member and field ("<member_id>/<field>"), so a
// blob copied to another row or column does not decrypt.
//
// The phone hash key is HMAC-SHA256(pii key, "loyalty-hq phone-hash v1"): derived, so one
// key file is all there is to keep, and a leaked hash key does not reveal the encryption
// key. phone_hash = HMAC-SHA256(phone hash key, the phone's look-up digits (base/phone.h)),
// lower-case hex: HQ's own index, never sent to a terminal.
//
// A store's phone look-up key (docs/pos-api.md, "Phone look-up"): HMAC-SHA256(store phone
// master, store_id ‖ 0x00 ‖ decimal key id), the master HMAC-SHA256(pii key, "loyalty-hq
// store-phone-key v1"). Derived, so every HQ process of a chain gives a store the same key
// with no table to share; the key id counts rotation periods. A terminal gets its store's
// key and, for consenting members, HMAC-SHA256(store key, look-up digits).
//
// Thread-safe after construction (const methods only).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "loyalty/base/status.h"

namespace loyalty::hq {

class PiiCipher {
 public:
  // Reads the 32-byte key file through ReadSecretFile (loyalty/base/secret_file.h); when it
  // does not exist, creates it (mode 0600, 32 random bytes, O_EXCL). config_invalid
  // "<file>: <reason>" for a file of another size, one others can read or write, a
  // symbolic link or a file that is not regular.
  static Result<PiiCipher> LoadOrCreate(const std::string& key_file);
  static PiiCipher FromKey(std::string key32);

  std::string Encrypt(std::string_view plain, std::string_view associated) const;
  // internal for a blob that does not authenticate.
  Result<std::string> Decrypt(std::string_view blob, std::string_view associated) const;
  std::string PhoneHash(std::string_view phone) const;
  // The 32 raw bytes of store `store_id`'s look-up key number `key_id`.
  std::string StorePhoneKey(std::string_view store_id, int64_t key_id) const;

 private:
  explicit PiiCipher(std::string key) : key_(std::move(key)) {}
  std::string key_;
  std::string phone_hash_key_;
  std::string store_phone_master_;
};

// HMAC-SHA256(store_key, the look-up digits of `phone`), lower-case hex: what a terminal
// computes from a typed number and HQ sends for a consenting member.
std::string StorePhoneHash(std::string_view store_key, std::string_view phone);

// "张三" → "张*"; "" → "". The first UTF-8 character followed by one '*'; a name of one
// character is "*" (shown, it would be the whole name).
std::string MaskName(std::string_view name);
// The phone's look-up digits (base/phone.h: "+86 138-1234-5678" → "13812345678") with all
// but the first 3 and last 4 replaced by '*': "138****5678". Fewer than 8 digits: all but
// the last 2 masked.
std::string MaskPhone(std::string_view phone);

}  // namespace loyalty::hq
