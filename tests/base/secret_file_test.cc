// ReadSecretFile: the one check for private keys and token files (operations.md, "Secrets
// and data on disk").
#include "loyalty/base/secret_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "support/temp_dir_test.h"

namespace loyalty {
namespace {

class SecretFileTest : public loyalty::testing::TempDirTest {};

TEST_F(SecretFileTest, OwnerOnlyModesAreRead) {
  for (mode_t mode : {0600, 0400, 0700}) {
    auto r = ReadSecretFile(Write("k.pem", "key bytes", mode));
    ASSERT_TRUE(r.ok()) << std::oct << mode << " " << r.status().ToString();
    EXPECT_EQ(*r, "key bytes");
  }
}

TEST_F(SecretFileTest, AnyGroupOrWorldBitIsRefusedForAKeyNamingTheFile) {
  const std::string path = Write("k.pem", "key", 0644);
  auto r = ReadSecretFile(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kSecretFileRefused);
  EXPECT_EQ(r.status().message(), path +
                                      ": has mode 0644, which lets users other than its owner "
                                      "read or change it; chmod 600 it");
  for (mode_t mode : {0640, 0620, 0610, 0604, 0602, 0601, 0660, 0666}) {
    auto m = ReadSecretFile(Write("m.pem", "key", mode));
    EXPECT_EQ(m.status().code(), ErrorCode::kSecretFileRefused) << std::oct << mode;
  }
}

// The POS API token alone may be read by the owner's group: 0640 passes, group write and
// any bit for others do not.
TEST_F(SecretFileTest, GroupReadIsAllowedOnlyWhenAsked) {
  EXPECT_TRUE(ReadSecretFile(Write("t", "tok", 0640), SecretAccess::kOwnerAndGroupRead).ok());
  EXPECT_TRUE(ReadSecretFile(Write("t", "tok", 0600), SecretAccess::kOwnerAndGroupRead).ok());
  EXPECT_TRUE(ReadSecretFile(Write("t", "tok", 0440), SecretAccess::kOwnerAndGroupRead).ok());
  for (mode_t mode : {0644, 0660, 0650, 0641, 0642, 0604}) {
    auto r = ReadSecretFile(Write("t", "tok", mode), SecretAccess::kOwnerAndGroupRead);
    EXPECT_EQ(r.status().code(), ErrorCode::kSecretFileRefused) << std::oct << mode;
  }
  EXPECT_FALSE(ReadSecretFile(Write("t", "tok", 0640), SecretAccess::kOwnerOnly).ok());
}

TEST_F(SecretFileTest, ASymbolicLinkIsRefusedEvenToAPrivateFile) {
  const std::string target = Write("real.key", "key", 0600);
  const std::string link = dir_ + "/link.key";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  auto r = ReadSecretFile(link);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kSecretFileRefused);
  EXPECT_EQ(r.status().message().rfind(link + ": is a symbolic link", 0), 0u)
      << r.status().message();
  EXPECT_TRUE(ReadSecretFile(target).ok());
}

TEST_F(SecretFileTest, NotARegularFileMissingAndTooLarge) {
  ASSERT_EQ(::chmod(dir_.c_str(), 0700), 0);
  auto d = ReadSecretFile(dir_);
  EXPECT_EQ(d.status().code(), ErrorCode::kSecretFileRefused);
  EXPECT_EQ(d.status().message(), dir_ + ": not a regular file");
  const std::string fifo = dir_ + "/fifo.key";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(ReadSecretFile(fifo).status().message(),
            fifo + ": not a regular file");  // and it does not block
  auto m = ReadSecretFile(dir_ + "/nope");
  EXPECT_EQ(m.status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(m.status().message(), dir_ + "/nope: cannot open: No such file or directory");
  // The cap at its edge.
  EXPECT_TRUE(
      ReadSecretFile(Write("max", std::string(100, 'a'), 0600), SecretAccess::kOwnerOnly, 100)
          .ok());
  auto big =
      ReadSecretFile(Write("big", std::string(101, 'a'), 0600), SecretAccess::kOwnerOnly, 100);
  EXPECT_EQ(big.status().code(), ErrorCode::kSecretFileRefused);
  EXPECT_EQ(big.status().message(), dir_ + "/big: larger than 100 bytes");
}

}  // namespace
}  // namespace loyalty
