#include "loyalty/drivers/image_decode.h"

#include <ZXing/BitMatrix.h>
#include <ZXing/MultiFormatWriter.h>
#include <gtest/gtest.h>

#include "hid_test_util.h"
#include "image_test_util.h"

namespace loyalty::drivers {
namespace {

using testing::Gray;
using testing::TempDir;

#define REQUIRE_QRENCODE()                                                         \
  if (!testing::HaveQrencode()) GTEST_SKIP() << "qrencode is not installed (Debian package qrencode)"

class ImageDecode : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::HaveQrencode()) return;
    png_ = dir_ / "code.png";
    ASSERT_TRUE(testing::Qrencode(code_, png_, 4));
    qr_ = testing::LoadGray(png_);
    ASSERT_GT(qr_.w, 0);
  }
  TempDir dir_;
  std::string code_ = testing::MakeLm1Code(11);
  std::string png_;
  Gray qr_;
};

TEST_F(ImageDecode, QrencodePngFile) {
  REQUIRE_QRENCODE();
  auto r = DecodeImageFile(png_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].text, code_);
  EXPECT_EQ((*r)[0].symbology, "]Q1");
  EXPECT_EQ((*r)[0].format, "QRCode");
}

TEST_F(ImageDecode, PgmFile) {
  REQUIRE_QRENCODE();
  testing::WritePgm(qr_, dir_ / "code.pgm");
  auto r = DecodeImageFile(dir_ / "code.pgm");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].text, code_);
}

TEST_F(ImageDecode, RotatedNoisyFrames) {
  REQUIRE_QRENCODE();
  for (double deg : {90.0, 180.0, 270.0, 33.0, -12.5}) {
    Gray rotated = testing::Rotate(qr_, deg);
    ASSERT_LE(rotated.w, 640);
    ASSERT_LE(rotated.h, 480);
    Gray frame = testing::Frame(640, 480, rotated, (640 - rotated.w) / 2, (480 - rotated.h) / 2, 30,
                                static_cast<uint32_t>(deg * 10 + 1000));
    auto r = DecodeImage(frame.px.data(), frame.w, frame.h);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->size(), 1u) << "rotation " << deg;
    EXPECT_EQ((*r)[0].text, code_) << "rotation " << deg;
  }
}

TEST(ImageDecodeCode128, CardNumber) {
  const std::string card = "8800123456789";
  // ZXing's writer (not ours) draws the symbol; we decode it from a noisy frame.
  ZXing::BitMatrix m = ZXing::MultiFormatWriter(ZXing::BarcodeFormat::Code128).encode(card, 400, 120);
  auto mat = ZXing::ToMatrix<uint8_t>(m);
  Gray bar;
  bar.w = mat.width();
  bar.h = mat.height();
  bar.px.assign(mat.data(), mat.data() + bar.w * bar.h);
  Gray frame = testing::Frame(640, 480, bar, 120, 180, 20, 5);
  auto r = DecodeImage(frame.px.data(), frame.w, frame.h);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].text, card);
  EXPECT_EQ((*r)[0].format, "Code128");
  EXPECT_EQ((*r)[0].symbology.substr(0, 2), "]C");

  TempDir dir;
  testing::WritePgm(testing::Rotate(frame, 90), dir / "card.pgm");
  auto f = DecodeImageFile(dir / "card.pgm");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_EQ(f->size(), 1u);
  EXPECT_EQ((*f)[0].text, card);
}

TEST(ImageDecodeNoCode, NoiseOnlyIsEmptyNotAnError) {
  Gray empty;
  empty.w = empty.h = 1;
  empty.px = {255};
  Gray frame = testing::Frame(320, 240, empty, 0, 0, 60, 9);
  auto r = DecodeImage(frame.px.data(), frame.w, frame.h);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

TEST_F(ImageDecode, CorruptFiles) {
  REQUIRE_QRENCODE();
  const std::string png = testing::ReadBytes(png_);
  testing::WriteBytes(dir_ / "truncated.png", png.substr(0, png.size() / 2));
  auto r = DecodeImageFile(dir_ / "truncated.png");
  EXPECT_EQ(r.status().code(), "unreadable_image");
  std::string flipped = png;
  for (size_t i = 40; i < flipped.size(); i += 7) flipped[i] ^= 0x5A;
  testing::WriteBytes(dir_ / "flipped.png", flipped);
  r = DecodeImageFile(dir_ / "flipped.png");
  EXPECT_TRUE(!r.ok() || r->empty());  // either unreadable or decodes to nothing, never a crash
  testing::WriteBytes(dir_ / "text.png", "this is not an image\n");
  EXPECT_EQ(DecodeImageFile(dir_ / "text.png").status().code(), "unreadable_image");
  testing::WriteBytes(dir_ / "empty.png", "");
  EXPECT_EQ(DecodeImageFile(dir_ / "empty.png").status().code(), "unreadable_image");
  EXPECT_EQ(DecodeImageFile(dir_ / "missing.png").status().code(), "not_found");
}

TEST(ImageDecodeLimits, HugeDimensionsRejectedBeforeAllocating) {
  const std::string pgm = "P5\n20000 20000\n255\n" + std::string(64, '\0');
  auto r = DecodeImageBytes(reinterpret_cast<const uint8_t*>(pgm.data()), pgm.size());
  EXPECT_EQ(r.status().code(), "unreadable_image");
}

TEST(ImageDecodeLimits, InvalidArguments) {
  uint8_t px[4] = {0, 0, 0, 0};
  EXPECT_EQ(DecodeImage(nullptr, 2, 2).status().code(), "invalid_argument");
  EXPECT_EQ(DecodeImage(px, 0, 2).status().code(), "invalid_argument");
  EXPECT_EQ(DecodeImage(px, 2, -1).status().code(), "invalid_argument");
  EXPECT_EQ(DecodeImage(px, 5000, 5000).status().code(), "invalid_argument");
  EXPECT_TRUE(DecodeImage(px, 2, 2).ok());
  EXPECT_EQ(DecodeImageBytes(nullptr, 0).status().code(), "unreadable_image");
}

}  // namespace
}  // namespace loyalty::drivers
