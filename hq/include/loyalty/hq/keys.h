// HQ's signing keys (hq.toml signing_keys): Ed25519 private keys in PEM files, read through
// ReadSecretFile (loyalty/base/secret_file.h), so a key others can read, a symbolic link or
// a file that is not regular is refused before it is parsed.
#pragma once

#include <string>
#include <string_view>

#include "loyalty/base/status.h"

namespace loyalty::hq {

// The 32-byte Ed25519 seed of the PEM private key in pem_file. Errors: those of
// ReadSecretFile ("<file>: <reason>"), and config_invalid "<file>: not a PEM private key" /
// "<file>: not an Ed25519 private key".
Result<std::string> LoadSigningKeySeed(const std::string& pem_file);

// The same from PEM text already read; `name` names it in errors.
Result<std::string> SigningKeySeedFromPem(std::string_view pem, const std::string& name);

}  // namespace loyalty::hq
