// Bearer token files for the POS API (api.token_file) and the HQ admin API, and the
// config-shaped errors for every secret file a config names.

#include "loyalty/config/config.h"
#include "reader.h"

namespace loyalty::config {
namespace {

constexpr size_t kMaxTokenBytes = 4096;

Status Fail(const std::string& path, const std::string& reason) {
  return Status::Error(internal::kCode, path + ": " + reason);
}

}  // namespace

Result<std::string> ReadTokenFile(const std::string& path, SecretAccess access) {
  auto read = ReadSecretFile(path, access, kMaxTokenBytes);
  // ReadSecretFile's messages already start with the path.
  if (!read.ok()) return Status::Error(internal::kCode, read.status().message());
  std::string token = std::move(*read);
  if (!token.empty() && token.back() == '\n') token.pop_back();
  if (!token.empty() && token.back() == '\r') token.pop_back();
  if (token.empty()) return Fail(path, "the token file is empty (write one line with the token)");
  for (unsigned char c : token) {
    if (c <= 0x20 || c >= 0x7f) {
      return Fail(path, "the token must be printable ASCII without spaces, on one line");
    }
  }
  return token;
}

Status SecretFileError(const std::string& config_path, std::string_view key, const Status& error) {
  return Status::Error(internal::kCode,
                       config_path + ": " + std::string(key) + ": " + error.message());
}

Result<std::string> ReadConfiguredSecret(const std::string& config_path, std::string_view key,
                                         const std::string& file, SecretAccess access,
                                         size_t max_bytes) {
  auto read = ReadSecretFile(file, access, max_bytes);
  if (!read.ok()) return SecretFileError(config_path, key, read.status());
  return read;
}

}  // namespace loyalty::config
