// Private: the file modes of a database (the ledger, HQ's hq.db) and its -wal/-shm files.
#pragma once

#include <string>

#include "loyalty/base/status.h"

namespace loyalty::sqlite {

// Called before SQLite opens `path` for writing. operations.md, "Secrets and data on disk":
// databases and their -wal/-shm files are created without world access.
//  - A database that does not exist yet is created here, empty, with mode 0600 (O_EXCL,
//    O_NOFOLLOW), so SQLite opens an existing file instead of creating one 0644 minus the
//    umask. SQLite creates -wal, -shm and -journal with the database file's permission bits
//    (os_unix.c, findCreateFileMode / unixOpenSharedMemory), so they follow.
//  - An existing database, -wal or -shm that others ("o") may read or write loses those
//    bits (the owner's and the group's stay: a store may give its ledger to a group on
//    purpose, 0640). Files this process does not own are left as they are.
// An error only when the database cannot be created (the open would fail the same way).
Status PrepareDatabaseFile(const std::string& path);

}  // namespace loyalty::sqlite
