// Reading private keys and token files: THE reader for every secret a process loads.
//
// operations.md, "Secrets and data on disk": a private key (HQ's signing keys, TLS keys,
// the terminal's client key, the PII key) or a token file is refused, naming the file,
// when anyone but its owner can read it (the POS API token alone may also be read by the
// owner's group), when anyone but its owner can write it, when it is a symbolic link, or
// when it is not a regular file. The check is made on the descriptor that is read (open
// with O_NOFOLLOW, then fstat), so the file checked is the file read even if the path is
// swapped in between. The descriptor is then read by ReadFdCapped (loyalty/base/file.h).
//
// Public files (CA certificates, certificates, CRLs, rules) are not secrets and are read
// without these checks (ReadFileCapped, loyalty/base/file.h).
//
// Stateless and thread-safe.
#pragma once

#include <cstddef>
#include <string>

#include "loyalty/base/status.h"

namespace loyalty {

enum class SecretAccess {
  kOwnerOnly,          // refused when mode & 0077 (0600 and 0400 pass)
  kOwnerAndGroupRead,  // the POS API token only: refused when mode & 0037 (0640 passes)
};

inline constexpr size_t kMaxSecretFileBytes = 64 * 1024;

// Reads the whole file (at most max_bytes). Errors, each with the message "<path>: <reason>":
//   "not_found"            the path does not exist
//   "secret_file_refused"  a symbolic link, not a regular file, a mode that lets others in,
//                          larger than max_bytes
//   "io_error"             any other failure to open or read
Result<std::string> ReadSecretFile(const std::string& path,
                                   SecretAccess access = SecretAccess::kOwnerOnly,
                                   size_t max_bytes = kMaxSecretFileBytes);

}  // namespace loyalty
