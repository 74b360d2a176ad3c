// ReadFileCapped / ReadFdCapped: the one capped read of a whole file (loyalty/base/file.h).
#include "loyalty/base/file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "support/temp_dir_test.h"

namespace loyalty {
namespace {

class FileTest : public loyalty::testing::TempDirTest {};

TEST_F(FileTest, AFileOfExactlyTheCapIsReadWhole) {
  const std::string content(100, 'a');
  auto r = ReadFileCapped(Write("max", content, 0644), 100);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, content);
}

TEST_F(FileTest, OneByteOverTheCapIsTooLarge) {
  const std::string path = Write("big", std::string(101, 'a'), 0644);
  auto r = ReadFileCapped(path, 100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kFileTooLarge);
  EXPECT_EQ(r.status().message(), path + ": larger than 100 bytes");
}

TEST_F(FileTest, ALargeFileUnderTheCapIsReadWhole) {
  // More than one read's worth, with bytes of every value.
  std::string content;
  for (int i = 0; i < 300000; ++i) content.push_back(static_cast<char>(i * 7));
  auto r = ReadFileCapped(Write("large", content, 0644), content.size());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, content);
  EXPECT_EQ(ReadFileCapped(dir_ + "/large", content.size() - 1).status().code(),
            ErrorCode::kFileTooLarge);
}

TEST_F(FileTest, AnEmptyFileIsReadAsEmpty) {
  auto r = ReadFileCapped(Write("empty", "", 0644), 100);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "");
  auto zero = ReadFileCapped(dir_ + "/empty", 0);
  ASSERT_TRUE(zero.ok()) << zero.status().ToString();
  EXPECT_EQ(ReadFileCapped(Write("one", "x", 0644), 0).status().code(), ErrorCode::kFileTooLarge);
}

TEST_F(FileTest, AMissingFileIsNotFound) {
  auto r = ReadFileCapped(dir_ + "/nope", 100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(r.status().message(), dir_ + "/nope: cannot open: No such file or directory");
}

TEST_F(FileTest, ADirectoryIsNotARegularFile) {
  auto r = ReadFileCapped(dir_, 100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kIoError);
  EXPECT_EQ(r.status().message(), dir_ + ": not a regular file");
}

TEST_F(FileTest, AFifoIsRefusedWithoutBlocking) {
  const std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto r = ReadFileCapped(fifo, 100);  // no writer: a blocking open would never return
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kIoError);
  EXPECT_EQ(r.status().message(), fifo + ": not a regular file");
}

TEST_F(FileTest, AnUnreadableFileIsAnIoError) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads a file of mode 0000";
  const std::string path = Write("locked", "x", 0000);
  auto r = ReadFileCapped(path, 100);
  EXPECT_EQ(r.status().code(), ErrorCode::kIoError);
  EXPECT_EQ(r.status().message(), path + ": cannot open: Permission denied");
}

// A descriptor with no size to go by (a pipe: as a file that grows while read): the cap
// holds on the bytes read.
TEST_F(FileTest, TheFdReadHoldsTheCapOnWhatItReads) {
  for (size_t n : {size_t{0}, size_t{99}, size_t{100}, size_t{101}, size_t{5000}}) {
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    const std::string content(n, 'b');
    ASSERT_EQ(::write(p[1], content.data(), content.size()), static_cast<ssize_t>(content.size()));
    ::close(p[1]);
    auto r = ReadFdCapped(p[0], "pipe", 100);
    ::close(p[0]);
    if (n <= 100) {
      ASSERT_TRUE(r.ok()) << n << " " << r.status().ToString();
      EXPECT_EQ(*r, content);
    } else {
      EXPECT_EQ(r.status().code(), ErrorCode::kFileTooLarge) << n;
      EXPECT_EQ(r.status().message(), "pipe: larger than 100 bytes");
    }
  }
}

}  // namespace
}  // namespace loyalty
