#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "loyalty/config/config.h"
#include "support/temp_dir_test.h"

namespace loyalty::config {
namespace {

class TokenFileTest : public loyalty::testing::TempDirTest {};

TEST_F(TokenFileTest, GroupReadableIsAcceptedAndTheNewlineTrimmed) {
  auto t =
      ReadTokenFile(Write("api.token", "s3cret-Token_1\n", 0640), SecretAccess::kOwnerAndGroupRead);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t, "s3cret-Token_1");
  auto owner_only = ReadTokenFile(Write("owner.token", "abc", 0600));
  ASSERT_TRUE(owner_only.ok());
  EXPECT_EQ(*owner_only, "abc");
  auto crlf = ReadTokenFile(Write("crlf.token", "abc\r\n", 0400));
  ASSERT_TRUE(crlf.ok());
  EXPECT_EQ(*crlf, "abc");
}

TEST_F(TokenFileTest, WorldAccessIsRefused) {
  const std::string path = Write("api.token", "secret\n", 0644);
  auto t = ReadTokenFile(path, SecretAccess::kOwnerAndGroupRead);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), ErrorCode::kConfigInvalid);
  EXPECT_EQ(t.status().message(), path +
                                      ": has mode 0644, which lets users other than its owner and "
                                      "its group read it, "
                                      "or others than its owner change it; chmod 640 (or 600) it");
  for (mode_t mode : {0604, 0602, 0601, 0666, 0660, 0620}) {
    auto r = ReadTokenFile(Write("m.token", "secret\n", mode), SecretAccess::kOwnerAndGroupRead);
    EXPECT_FALSE(r.ok()) << std::oct << mode;
  }
}

// The admin token (and any token read without kOwnerAndGroupRead) is its owner's alone.
TEST_F(TokenFileTest, TheAdminTokenIsOwnerOnly) {
  EXPECT_TRUE(ReadTokenFile(Write("admin.token", "secret\n", 0600)).ok());
  auto g = ReadTokenFile(Write("admin.token", "secret\n", 0640));
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), ErrorCode::kConfigInvalid);
}

TEST_F(TokenFileTest, ASymbolicLinkIsRefused) {
  const std::string real = Write("real.token", "secret\n", 0600);
  const std::string link = dir_ + "/link.token";
  ASSERT_EQ(::symlink(real.c_str(), link.c_str()), 0);
  auto r = ReadTokenFile(link);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().rfind(link + ": is a symbolic link", 0), 0u)
      << r.status().message();
}

TEST_F(TokenFileTest, EmptyOrMalformedTokensAreRefused) {
  const std::string empty = Write("empty.token", "", 0600);
  auto e = ReadTokenFile(empty);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().message(),
            empty + ": the token file is empty (write one line with the token)");
  EXPECT_FALSE(ReadTokenFile(Write("nl.token", "\n", 0600)).ok());
  const std::string spaced = Write("spaced.token", "two words\n", 0600);
  auto s = ReadTokenFile(spaced);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(),
            spaced + ": the token must be printable ASCII without spaces, on one line");
  EXPECT_FALSE(ReadTokenFile(Write("lines.token", "abc\ndef\n", 0600)).ok());
  EXPECT_FALSE(ReadTokenFile(Write("two_nl.token", "abc\n\n", 0600)).ok());
  EXPECT_TRUE(ReadTokenFile(Write("max.token", std::string(4096, 'a'), 0600)).ok());
  const std::string big = Write("big.token", std::string(4097, 'a'), 0600);
  auto b = ReadTokenFile(big);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().message(), big + ": larger than 4096 bytes");
}

TEST_F(TokenFileTest, MissingFilesAndDirectories) {
  auto m = ReadTokenFile(dir_ + "/nope");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().message(), dir_ + "/nope: cannot open: No such file or directory");
  ASSERT_EQ(::chmod(dir_.c_str(), 0700), 0);
  auto d = ReadTokenFile(dir_);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().message(), dir_ + ": not a regular file");
}

// Keys named by a config: the loaders' "<config>: <key>: <file>: <reason>" form.
TEST_F(TokenFileTest, ConfiguredSecretsNameTheConfigTheKeyAndTheFile) {
  const std::string key = Write("hq.key", "-----BEGIN PRIVATE KEY-----\n", 0600);
  auto ok = ReadConfiguredSecret("/etc/loyaltyd/agent.toml", "hq.key_file", key);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  ASSERT_EQ(::chmod(key.c_str(), 0644), 0);
  auto bad = ReadConfiguredSecret("/etc/loyaltyd/agent.toml", "hq.key_file", key);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kConfigInvalid);
  EXPECT_EQ(bad.status().message(),
            "/etc/loyaltyd/agent.toml: hq.key_file: " + key +
                ": has mode 0644, which lets users other than its owner read "
                "or change it; "
                "chmod 600 it");
}

}  // namespace
}  // namespace loyalty::config
