// SHA-256 (OpenSSL EVP) and the short hashes used to log codes without revealing them.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace loyalty {

using Digest = std::array<uint8_t, 32>;

Digest Sha256(std::string_view data);
std::string DigestBytes(const Digest& d);  // the 32 raw bytes as a string
std::string DigestHex(const Digest& d);

// Incremental SHA-256. Not thread-safe; one instance per computation.
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;
  void Update(std::string_view data);
  Digest Finish();

 private:
  void* ctx_;  // EVP_MD_CTX*
};

// First 12 hex characters of SHA-256: enough to correlate log lines, not to recover a code.
std::string ShortHash(std::string_view text);

// Keyed hash (HMAC-SHA256, hex) used for look-ups of personal data (e.g. phone numbers).
std::string KeyedHashHex(std::string_view key, std::string_view data);

// Cryptographically random bytes (OpenSSL RAND_bytes). Aborts if the RNG fails.
std::string RandomBytes(size_t n);

}  // namespace loyalty
