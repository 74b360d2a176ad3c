#include "loyalty/sqlite/db_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace loyalty::sqlite {
namespace {

// Drops the "others" bits of an existing regular file; not following links.
//
// The file is reached through an O_PATH descriptor, never opened for reading or writing:
// closing any ordinary descriptor of a file releases every POSIX lock this process holds
// on it, and SQLite's locks are POSIX locks. Another connection of this process to the same
// database (HQ opens several; a ledger's writer and readers) would lose its SHARED lock, and
// another process (the sqlite3 shell, a backup) could then take the file for its own, run a
// checkpoint and delete the WAL under it. An O_PATH descriptor's close releases no lock
// (Linux: filp_close skips locks_remove_posix for FMODE_PATH); its mode is changed through
// /proc/self/fd, as glibc's fchmodat(AT_SYMLINK_NOFOLLOW) does.
void CloseToOthers(const std::string& file) {
  const int fd = ::open(file.c_str(), O_PATH | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0007) != 0 &&
      st.st_uid == ::geteuid()) {
    const std::string proc = "/proc/self/fd/" + std::to_string(fd);
    (void)::chmod(proc.c_str(), st.st_mode & 07770);
  }
  ::close(fd);
}

}  // namespace

Status PrepareDatabaseFile(const std::string& path) {
  if (path.empty() || path == ":memory:" || path.rfind("file:", 0) == 0) return Status::Ok();
  // O_EXCL: only a file that did not exist is opened here, so no lock of this process can
  // be on it when this descriptor is closed.
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
