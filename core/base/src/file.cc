#include "loyalty/base/file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>

namespace loyalty {
namespace {

Status TooLarge(const std::string& path, size_t max_bytes) {
  return Status::Error(ErrorCode::kFileTooLarge,
                       path + ": larger than " + std::to_string(max_bytes) + " bytes");
}

}  // namespace

Result<std::string> ReadFdCapped(int fd, const std::string& path, size_t max_bytes) {
  std::string data;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    if (static_cast<uint64_t>(st.st_size) > max_bytes) return TooLarge(path, max_bytes);
    data.reserve(static_cast<size_t>(st.st_size));
  }
  char buf[65536];
  for (;;) {
    // One byte past the cap is asked for at most: enough to tell "exactly the cap" from
    // "over it" without reading further.
    const size_t left = max_bytes - data.size();
    const size_t want = left < sizeof buf ? left + 1 : sizeof buf;
    const ssize_t n = ::read(fd, buf, want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return Status::Error(ErrorCode::kIoError, path + ": cannot read: " + std::strerror(errno));
    if (n == 0) break;
    // The size in fstat may be stale (the file grows while read): the cap holds anyway.
    if (static_cast<size_t>(n) > left) return TooLarge(path, max_bytes);
    data.append(buf, static_cast<size_t>(n));
  }
  return data;
}

Result<std::string> ReadFileCapped(const std::string& path, size_t max_bytes) {
  // O_NONBLOCK: a fifo in the file's place must not block the open (it is refused below).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    return Status::Error(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIoError,
                         path + ": cannot open: " + std::strerror(err));
  }
  struct stat st {};
  Result<std::string> out = Status::Error(ErrorCode::kIoError, path + ": not a regular file");
  if (::fstat(fd, &st) != 0)
    out = Status::Error(ErrorCode::kIoError, path + ": cannot stat: " + std::strerror(errno));
  else if (S_ISREG(st.st_mode))
    out = ReadFdCapped(fd, path, max_bytes);
  ::close(fd);
  return out;
}

std::string WhyNoFileCanBeMadeAt(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  while (!fs::exists(dir, ec) && dir.has_relative_path() && dir != dir.parent_path())
    dir = dir.parent_path();
  if (!fs::is_directory(dir, ec)) return dir.string() + " is not a folder";
  if (::access(dir.c_str(), W_OK | X_OK) != 0) return dir.string() + ": " + std::strerror(errno);
  return "";
}

Result<FileLock> FileLock::TryExclusive(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return Status::Error(ErrorCode::kIoError, path + ": cannot open: " + std::strerror(errno));
  int rc;
  do {
    rc = ::flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK)
      return Status::Error(ErrorCode::kUnavailable, path + ": locked by another process");
    return Status::Error(ErrorCode::kIoError, path + ": cannot lock: " + std::strerror(err));
  }
  return FileLock(fd);
}

FileLock::FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // the lock goes with the last descriptor of the open
}

}  // namespace loyalty
