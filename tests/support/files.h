// Folders and files for tests: a fresh temporary folder per test, and the few file
// operations tests repeat (write with a mode, read whole).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>

namespace loyalty::testing {

// "<suite>.<test>" of the running gtest test ("" outside a test).
std::string CurrentTestName();

// <tmp>/loyalty_<name>_<pid>, emptied and created. For folders a test keeps after a failure
// (it removes them itself); otherwise use TempDir.
std::filesystem::path FreshDir(const std::string& name);

// A new folder <tmp>/<prefix>-XXXXXX (mkdtemp), removed with its contents when the object
// goes. Fails the test if it cannot be created.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "loyalty_test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  // Writes `name` in the folder with `content` and permission bits `mode`; its path.
  std::string Write(const std::string& name, const std::string& content, mode_t mode = 0600) const;

 private:
  std::filesystem::path path_;
};

// Writes `content` to `path` (a new file in place of any there) and sets its permission bits to
// `mode`.
void WriteFile(const std::filesystem::path& path, const std::string& content, mode_t mode = 0644);
// The whole file as bytes ("" when it cannot be read).
std::string ReadFile(const std::filesystem::path& path);

}  // namespace loyalty::testing
