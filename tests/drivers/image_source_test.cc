// The image source: files dropped into a watched directory (written in place or renamed in).
#include <gtest/gtest.h>

#include <filesystem>

#include "event_collector.h"
#include "hid_test_util.h"
#include "image_test_util.h"
#include "loyalty/base/clock.h"
#include "loyalty/drivers/source.h"
#include "png_writer.h"

namespace loyalty::drivers {
namespace {

using testing::EventCollector;
using testing::TempDir;
namespace fs = std::filesystem;

class ImageSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::HaveQrencode())
      GTEST_SKIP() << "qrencode is not installed (Debian package qrencode)";
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

// operations.md: an image folder removed and created again is watched again, and the source
// is disconnected meanwhile.
TEST_F(ImageSourceTest, AFolderRemovedAndCreatedAgainIsWatchedAgain) {
  auto src = Start();
  fs::remove_all(dir_ / "in");
  ASSERT_TRUE(events_.WaitState(SourceState::kDisconnected));
  EXPECT_EQ(src->state(), SourceState::kDisconnected);
  fs::create_directory(dir_ / "in");
  ASSERT_TRUE(events_.WaitState(SourceState::kConnected, 2));
  Drop("after the folder came back", "c.png");
  ASSERT_TRUE(events_.WaitScans(1));
  EXPECT_EQ(events_.scans()[0].text, "after the folder came back");
}

// A folder renamed away and another renamed into its place (no delete event for the path):
// the periodic identity check finds the new folder.
TEST_F(ImageSourceTest, AFolderSwappedForAnotherIsWatched) {
  auto src = Start();
  fs::create_directory(dir_ / "in.new");
  fs::rename(dir_ / "in", dir_ / "in.old");
  fs::rename(dir_ / "in.new", dir_ / "in");
  ASSERT_TRUE(events_.WaitState(SourceState::kConnected, 2));
  Drop("in the swapped folder", "d.png");
  ASSERT_TRUE(events_.WaitScans(1));
  EXPECT_EQ(events_.scans()[0].text, "in the swapped folder");
}

// The decompression bomb dropped into the folder: refused before decoding, counted,
// reported once, removed; the next frame is read as usual.
TEST_F(ImageSourceTest, ADecompressionBombIsRefusedCountedAndRemoved) {
  auto src = Start();
  testing::WriteBytes(dir_ / "bomb.tmp", testing::MakePng(testing::Spec(4000, 4000, 16, 6)));
  fs::rename(dir_ / "bomb.tmp", dir_ / "in/bomb.png");
  ASSERT_TRUE(EventCollector::Eventually([&] { return src->counters().oversized_images == 1; }));
  auto refused = events_.refused();
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].file, "bomb.png");
  EXPECT_EQ(refused[0].width, 4000);
  EXPECT_EQ(refused[0].bytes_per_channel, 2);
  EXPECT_EQ(refused[0].decoded_bytes, int64_t{128'000'000});
  EXPECT_TRUE(EventCollector::Eventually([&] { return !fs::exists(dir_ / "in/bomb.png"); }));
  Drop("after the bomb", "e.png");
  ASSERT_TRUE(events_.WaitScans(1));
  EXPECT_EQ(events_.scans()[0].text, "after the bomb");
  EXPECT_EQ(src->counters().scans, 1u);
  EXPECT_EQ(src->counters().unreadable_files, 0u);
}

TEST_F(ImageSourceTest, MissingDirectoryFailsToStart) {
  opts_.directory = dir_ / "nope";
  auto r = MakeSource(opts_, events_.Events(), clock_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->Start().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace loyalty::drivers
