// Reading a whole file with a size cap: THE reader for every file a process reads whole
// (configuration, rules, scanned images; secret files through ReadSecretFile, which makes
// its own checks on the descriptor and then reads it with ReadFdCapped).
//
// Stateless and thread-safe.
#pragma once

#include <cstddef>
#include <string>

#include "loyalty/base/status.h"

namespace loyalty {

// Reads the whole regular file at path: at most max_bytes (a file of exactly max_bytes is
// read; one byte more is refused). Opened without blocking, so a fifo in the file's place
// is refused rather than waited on. Errors, each with the message "<path>: <reason>":
//   "not_found"       the path does not exist ("cannot open: No such file or directory")
//   "file_too_large"  larger than max_bytes ("larger than N bytes"), by its size or while
//                     read (a file that grows)
//   "io_error"        any other failure to open, stat or read, or not a regular file
//                     (a directory, a fifo, a device: "not a regular file")
Result<std::string> ReadFileCapped(const std::string& path, size_t max_bytes);

// The read underneath ReadFileCapped, on a descriptor the caller opened and checked: from
// the descriptor's offset to end of file, at most max_bytes ("file_too_large" past them,
// "io_error" on a read error). path names the file in messages. Does not close fd.
Result<std::string> ReadFdCapped(int fd, const std::string& path, size_t max_bytes);

// Why this user could not make a file at `path`, with any missing folders above it (as a
// logger or a database does): "" when the nearest folder of the path that exists is a
// folder this user may write and enter; else "<folder> is not a folder" or
// "<folder>: <strerror>". Judged with access(2), as the calling user, writing nothing.
std::string WhyNoFileCanBeMadeAt(const std::string& path);

// An exclusive advisory lock (flock(2)) on the file at `path`, made (0600) if missing, held
// until the object is destroyed; the lock of a process that ends, however it ends, goes
// with it. It is its own file, never a database's: closing any descriptor of a SQLite file
// would drop SQLite's own POSIX locks on it. Movable, not copyable.
class FileLock {
 public:
  // Does not wait. Errors: "unavailable" when another open of the file holds the lock
  // ("<path>: locked by another process"), "io_error" when it cannot be opened or locked.
  static Result<FileLock> TryExclusive(const std::string& path);

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace loyalty
