#include "loyalty/sqlite/db_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace loyalty::sqlite {
namespace {

// Drops the "others" bits of an existing regular file; not following links.
void CloseToOthers(const std::string& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0007) != 0 &&
      st.st_uid == ::geteuid()) {
    (void)::fchmod(fd, st.st_mode & 07770);
  }
  ::close(fd);
}

}  // namespace

Status PrepareDatabaseFile(const std::string& path) {
  if (path.empty() || path == ":memory:" || path.rfind("file:", 0) == 0) return Status::Ok();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd >= 0) {
    ::close(fd);
    return Status::Ok();
  }
  if (errno != EEXIST) {
    return Status::Error(ErrorCode::kUnavailable, "create " + path + ": " + std::strerror(errno));
  }
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) CloseToOthers(path + suffix);
  return Status::Ok();
}

}  // namespace loyalty::sqlite
