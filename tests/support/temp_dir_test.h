// A gtest fixture with a temporary folder of its own (support/files.h's TempDir).
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <string>

#include "support/files.h"

namespace loyalty::testing {

// dir_ is the folder's path; Write() puts a file in it with a mode.
class TempDirTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& content, mode_t mode) {
    return tmp_.Write(name, content, mode);
  }

  TempDir tmp_;
  std::string dir_ = tmp_.path().string();
};

}  // namespace loyalty::testing
