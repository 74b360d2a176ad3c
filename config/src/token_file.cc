// Bearer token files for the POS API (api.token_file) and the HQ admin API.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "loyalty/config/config.h"
#include "reader.h"

namespace loyalty::config {
namespace {

constexpr size_t kMaxTokenBytes = 4096;

Status Fail(const std::string& path, const std::string& reason) {
  return Status::Error(internal::kCode, path + ": " + reason);
}

}  // namespace

Result<std::string> ReadTokenFile(const std::string& path) {
  // Open first and check the mode of what was opened (fstat), so the file checked is the
  // file read even if the path is swapped in between.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return Fail(path, std::string("cannot open the token file: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Fail(path, std::string("cannot stat the token file: ") + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Fail(path, "the token file is not a regular file");
  }
  if ((st.st_mode & 007) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Fail(path, std::string("the token file has mode ") + mode +
                          ", which lets every user on the terminal use it; chmod 0640 (or 0600) it");
  }
  std::string token;
  char buf[1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return Fail(path, std::string("cannot read the token file: ") + std::strerror(err));
    }
    if (n == 0) break;
    token.append(buf, static_cast<size_t>(n));
    if (token.size() > kMaxTokenBytes) {
      ::close(fd);
      return Fail(path, "the token file is larger than 4096 bytes");
    }
  }
  ::close(fd);
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

}  // namespace loyalty::config
