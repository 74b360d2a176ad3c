#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "loyalty/config/config.h"

namespace loyalty::config {
namespace {

class TokenFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/token_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& content, mode_t mode) {
    const std::string path = dir_ + "/" + name;
    std::FILE* f = std::fopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    std::fwrite(content.data(), 1, content.size(), f);
    std::fclose(f);
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }

  std::string dir_;
};

TEST_F(TokenFileTest, GroupReadableIsAcceptedAndTheNewlineTrimmed) {
  auto t = ReadTokenFile(Write("api.token", "s3cret-Token_1\n", 0640));
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
  auto t = ReadTokenFile(path);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), "config_invalid");
  EXPECT_EQ(t.status().message(),
            path + ": the token file has mode 0644, which lets every user on the terminal use it; chmod 0640 (or 0600) it");
  for (mode_t mode : {0604, 0602, 0601, 0666}) {
    auto r = ReadTokenFile(Write("m.token", "secret\n", mode));
    EXPECT_FALSE(r.ok()) << std::oct << mode;
  }
  // Group write is the administrator's business; only "others" are refused.
  EXPECT_TRUE(ReadTokenFile(Write("g.token", "secret\n", 0660)).ok());
}

TEST_F(TokenFileTest, EmptyOrMalformedTokensAreRefused) {
  const std::string empty = Write("empty.token", "", 0600);
  auto e = ReadTokenFile(empty);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().message(), empty + ": the token file is empty (write one line with the token)");
  EXPECT_FALSE(ReadTokenFile(Write("nl.token", "\n", 0600)).ok());
  const std::string spaced = Write("spaced.token", "two words\n", 0600);
  auto s = ReadTokenFile(spaced);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(), spaced + ": the token must be printable ASCII without spaces, on one line");
  EXPECT_FALSE(ReadTokenFile(Write("lines.token", "abc\ndef\n", 0600)).ok());
  EXPECT_FALSE(ReadTokenFile(Write("two_nl.token", "abc\n\n", 0600)).ok());
  EXPECT_TRUE(ReadTokenFile(Write("max.token", std::string(4096, 'a'), 0600)).ok());
  const std::string big = Write("big.token", std::string(4097, 'a'), 0600);
  auto b = ReadTokenFile(big);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().message(), big + ": the token file is larger than 4096 bytes");
}

TEST_F(TokenFileTest, MissingFilesAndDirectories) {
  auto m = ReadTokenFile(dir_ + "/nope");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().message(), dir_ + "/nope: cannot open the token file: No such file or directory");
  ASSERT_EQ(::chmod(dir_.c_str(), 0700), 0);
  auto d = ReadTokenFile(dir_);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().message(), dir_ + ": the token file is not a regular file");
}

}  // namespace
}  // namespace loyalty::config
