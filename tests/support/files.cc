#include "support/files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

namespace loyalty::testing {

std::string CurrentTestName() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return info ? std::string(info->test_suite_name()) + "." + info->name() : std::string();
}

std::filesystem::path FreshDir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() /
           ("loyalty_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

TempDir::TempDir(const std::string& prefix) {
  std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    ADD_FAILURE() << "cannot create a temporary folder " << pattern;
    return;
  }
  path_ = buf.data();
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Write(const std::string& name, const std::string& content, mode_t mode) const {
  auto p = path_ / name;
  WriteFile(p, content, mode);
  return p.string();
}

void WriteFile(const std::filesystem::path& path, const std::string& content, mode_t mode) {
  std::error_code ec;
  std::filesystem::remove(path, ec);  // a new file, whatever mode (or link) was there
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    EXPECT_TRUE(f.good()) << "cannot write " << path;
    f << content;
  }
  EXPECT_EQ(::chmod(path.c_str(), mode), 0) << path;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace loyalty::testing
