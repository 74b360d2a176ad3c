// The image source: files dropped into a watched directory (written in place or renamed in).
#include <gtest/gtest.h>

#include <filesystem>

#include "event_collector.h"
#include "hid_test_util.h"
#include "image_test_util.h"
#include "loyalty/base/clock.h"
#include "loyalty/drivers/source.h"

namespace loyalty::drivers {
namespace {

using testing::EventCollector;
using testing::TempDir;
namespace fs = std::filesystem;

class ImageSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::HaveQrencode()) GTEST_SKIP() << "qrencode is not installed (Debian package qrencode)";
    fs::create_directory(dir_ / "in");
    fs::create_directory(dir_ / "done");
    opts_.id = "cam";
    opts_.kind = "image";
    opts_.directory = dir_ / "in";
  }
  std::unique_ptr<Source> Start() {
    auto r = MakeSource(opts_, events_.Events(), clock_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    auto src = std::move(r).value();
    EXPECT_TRUE(src->Start().ok());
    EXPECT_TRUE(events_.WaitState(SourceState::kConnected));
    return src;
  }
  // Written elsewhere, renamed in: the way a camera service should drop frames.
  void Drop(const std::string& text, const std::string& name) {
    ASSERT_TRUE(testing::Qrencode(text, dir_ / ("tmp-" + name), 3));
    fs::rename(dir_ / ("tmp-" + name), dir_ / ("in/" + name));
  }
  TempDir dir_;
  FakeClock clock_{1'700'000'000'000};
  EventCollector events_;
  SourceOptions opts_;
};

TEST_F(ImageSourceTest, FilesAreDecodedThenDeleted) {
  const std::string code = testing::MakeLm1Code(21);
  Drop("present-before-start", "a.png");
  auto src = Start();
  ASSERT_TRUE(events_.WaitScans(1));
  Drop(code, "b.png");
  ASSERT_TRUE(events_.WaitScans(2));
  auto scans = events_.scans();
  EXPECT_EQ(scans[0].text, "present-before-start");
  EXPECT_EQ(scans[1].text, code);
  EXPECT_EQ(scans[1].symbology, "]Q1");
  EXPECT_TRUE(EventCollector::Eventually([&] { return fs::is_empty(dir_ / "in"); }));
}

TEST_F(ImageSourceTest, MoveGarbageNoCodeAndDotFiles) {
  opts_.processed = "move";
  opts_.processed_dir = dir_ / "done";
  auto src = Start();
  testing::WriteBytes(dir_ / "in/.partial.png", "still being written");
  testing::WriteBytes(dir_ / "in/notes.txt", "not an image name");
  testing::WriteBytes(dir_ / "in/corrupt.png", "\x89PNG\r\n\x1a\n garbage");
  testing::Gray blank;
  blank.w = 64;
  blank.h = 48;
  blank.px.assign(64 * 48, 200);
  testing::WritePgm(blank, dir_ / "in/blank.pgm");
  Drop("after-garbage", "c.png");
  ASSERT_TRUE(events_.WaitScans(1));
  EXPECT_EQ(events_.scans()[0].text, "after-garbage");
  ASSERT_TRUE(EventCollector::Eventually([&] {
    return fs::exists(dir_ / "done/c.png") && fs::exists(dir_ / "done/corrupt.png") &&
           fs::exists(dir_ / "done/blank.pgm");
  }));
  EXPECT_TRUE(fs::exists(dir_ / "in/.partial.png"));
  EXPECT_TRUE(fs::exists(dir_ / "in/notes.txt"));
  auto c = src->counters();
  EXPECT_EQ(c.unreadable_files, 1u);
  EXPECT_EQ(c.images_without_code, 1u);
  EXPECT_EQ(events_.garbage().size(), 1u);
}

TEST_F(ImageSourceTest, SameCodeInConsecutiveFramesIsDebounced) {
  auto src = Start();
  Drop("same", "1.png");
  ASSERT_TRUE(events_.WaitScans(1));
  Drop("same", "2.png");
  ASSERT_TRUE(EventCollector::Eventually([&] { return src->counters().debounced == 1; }));
  clock_.advance_ms(800);
  Drop("same", "3.png");
  ASSERT_TRUE(events_.WaitScans(2));
  EXPECT_EQ(src->counters().scans, 2u);
}

TEST_F(ImageSourceTest, MissingDirectoryFailsToStart) {
  opts_.directory = dir_ / "nope";
  auto r = MakeSource(opts_, events_.Events(), clock_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->Start().code(), "invalid_argument");
}

}  // namespace
}  // namespace loyalty::drivers
