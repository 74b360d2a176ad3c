#include "loyalty/base/secret_file.h"

#include "loyalty/base/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace loyalty {
namespace {

std::string ModeString(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

Result<std::string> ReadSecretFile(const std::string& path, SecretAccess access, size_t max_bytes) {
  auto refuse = [&](const std::string& why) {
    return Status::Error(ErrorCode::kSecretFileRefused, path + ": " + why);
  };
  // O_NOFOLLOW: a link in the last component fails with ELOOP instead of being followed (a
  // link could point anywhere, and its own mode says nothing about the target's).
  // O_NONBLOCK: a fifo put in a key's place must not block the start.
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ENOENT)
      return Status::Error(ErrorCode::kNotFound, path + ": cannot open: " + std::strerror(err));
    struct stat lst {};
    if (err == ELOOP && ::lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode)) {
      return refuse(
          "is a symbolic link; name the file itself (secret files "
          "are not read through links)");
    }
    return Status::Error(ErrorCode::kIoError, path + ": cannot open: " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return Status::Error(ErrorCode::kIoError, path + ": cannot stat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return refuse("not a regular file");
  if (access == SecretAccess::kOwnerOnly && (st.st_mode & 0077) != 0) {
    return refuse("has mode " + ModeString(st.st_mode) +
                  ", which lets users other than its owner read or change it; "
                  "chmod 600 it");
  }
  if (access == SecretAccess::kOwnerAndGroupRead && (st.st_mode & 0037) != 0) {
    return refuse("has mode " + ModeString(st.st_mode) +
                  ", which lets users other than its owner and its group read "
                  "it, or others than its owner "
                  "change it; chmod 640 (or 600) it");
  }
  // The checked descriptor is the one read, by the common capped read (loyalty/base/file.h);
  // a file over the cap is refused as the other refusals are.
  auto data = ReadFdCapped(fd.get(), path, max_bytes);
  if (!data.ok() && data.status().code() == ErrorCode::kFileTooLarge)
    return refuse("larger than " + std::to_string(max_bytes) + " bytes");
  return data;
}

}  // namespace loyalty
