#include "loyalty/drivers/image_decode.h"

#include <ZXing/BitMatrix.h>
#include <ZXing/MultiFormatWriter.h>
#include <gtest/gtest.h>

#include "hid_test_util.h"
#include "image_test_util.h"
#include "png_writer.h"

namespace loyalty::drivers {
namespace {

using testing::Gray;
using testing::TempDir;

#define REQUIRE_QRENCODE()      \
  if (!testing::HaveQrencode()) \
  GTEST_SKIP() << "qrencode is not installed (Debian package qrencode)"

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

// An image within the byte limit but larger than a camera frame (4096×4096 grey, 16 MiB,
// 16.8 megapixels) is decoded, halved to what ZXing is given, not refused.
TEST_F(ImageDecode, AnImageLargerThanACameraFrameIsHalvedNotRefused) {
  REQUIRE_QRENCODE();
  ASSERT_TRUE(testing::Qrencode(code_, dir_ / "big-modules.png", 12));
  Gray qr = testing::LoadGray(dir_ / "big-modules.png");
  ASSERT_GT(qr.w, 0);
  ASSERT_LT(qr.w, 4096);
  testing::PngSpec big = testing::Spec(4096, 4096, 8, 0);
  const int x0 = (4096 - qr.w) / 2, y0 = (4096 - qr.h) / 2;
  big.grey = [&](uint32_t x, uint32_t y) -> uint8_t {
    const int qx = static_cast<int>(x) - x0, qy = static_cast<int>(y) - y0;
    if (qx < 0 || qy < 0 || qx >= qr.w || qy >= qr.h) return 255;
    return qr.px[static_cast<size_t>(qy) * static_cast<size_t>(qr.w) + static_cast<size_t>(qx)];
  };
  ImageHeader h;
  const std::string png = testing::MakePng(big);
  auto r = DecodeImageBytes(reinterpret_cast<const uint8_t*>(png.data()), png.size(), &h);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(h.decoded_bytes, int64_t{4096} * 4096);
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].text, code_);
}

TEST(ImageDecodeCode128, CardNumber) {
  const std::string card = "8800123456789";
  // ZXing's writer (not ours) draws the symbol; we decode it from a noisy frame.
  ZXing::BitMatrix m =
      ZXing::MultiFormatWriter(ZXing::BarcodeFormat::Code128).encode(card, 400, 120);
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
  EXPECT_EQ(r.status().code(), ErrorCode::kUnreadableImage);
  std::string flipped = png;
  for (size_t i = 40; i < flipped.size(); i += 7) flipped[i] ^= 0x5A;
  testing::WriteBytes(dir_ / "flipped.png", flipped);
  r = DecodeImageFile(dir_ / "flipped.png");
  EXPECT_TRUE(!r.ok() || r->empty());  // either unreadable or decodes to nothing, never a crash
  testing::WriteBytes(dir_ / "text.png", "this is not an image\n");
  EXPECT_EQ(DecodeImageFile(dir_ / "text.png").status().code(), ErrorCode::kUnreadableImage);
  testing::WriteBytes(dir_ / "empty.png", "");
  EXPECT_EQ(DecodeImageFile(dir_ / "empty.png").status().code(), ErrorCode::kUnreadableImage);
  EXPECT_EQ(DecodeImageFile(dir_ / "missing.png").status().code(), ErrorCode::kNotFound);
}

TEST(ImageDecodeLimits, HugeDimensionsRejectedBeforeAllocating) {
  const std::string pgm = "P5\n20000 20000\n255\n" + std::string(64, '\0');
  auto r = DecodeImageBytes(reinterpret_cast<const uint8_t*>(pgm.data()), pgm.size());
  EXPECT_EQ(r.status().code(), ErrorCode::kImageTooLarge);
}

TEST(ImageDecodeLimits, TheLargestDimensionsAHeaderCanDeclareDoNotOverflowTheLimit) {
  // 2^31-1 × 2^31-1 pixels of 3 channels at 16 bits: width × height × channels × bytes
  // does not fit in 64 bits; it is still judged (too large), never wrapped round.
  const std::string ppm = "P6\n2147483647 2147483647\n65535\n" + std::string(64, '\0');
  auto r = ReadImageHeader(reinterpret_cast<const uint8_t*>(ppm.data()), ppm.size());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kImageTooLarge);
  auto d = DecodeImageBytes(reinterpret_cast<const uint8_t*>(ppm.data()), ppm.size());
  EXPECT_EQ(d.status().code(), ErrorCode::kImageTooLarge);
}

Result<ImageHeader> Header(const std::string& bytes) {
  return ReadImageHeader(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}
Result<std::vector<DecodedCode>> Decode(const std::string& bytes, ImageHeader* h = nullptr) {
  return DecodeImageBytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), h);
}

// The limit is on decoded bytes (width × height × channels × bytes per channel, as the
// header declares), at its exact edge: 4096×2048 RGBA at 16 bits is 64 MiB exactly.
TEST(ImageDecodeLimits, DecodedSizeLimitAtItsEdge) {
  testing::PngSpec at = testing::Spec(4096, 2048, 16, 6);
  at.header_only = true;
  auto h = Header(testing::MakePng(at));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->channels, 4);
  EXPECT_EQ(h->bytes_per_channel, 2);
  EXPECT_EQ(h->decoded_bytes, kMaxDecodedImageBytes);
  testing::PngSpec over = at;
  over.height = 2049;  // one more row
  auto o = Header(testing::MakePng(over));
  EXPECT_EQ(o.status().code(), ErrorCode::kImageTooLarge);
  // The same pixels at 8 bits are half the bytes, and pass.
  testing::PngSpec eight = over;
  eight.bit_depth = 8;
  EXPECT_TRUE(Header(testing::MakePng(eight)).ok());
  // The decoded size is the only limit: 4096×4096 RGBA at 8 bits is 64 MiB exactly and
  // passes, as does a grey image of 16.8 megapixels (larger than what ZXing is given: it is
  // halved before decoding, ImageDecode.AnImageLargerThanACameraFrameIsHalvedNotRefused).
  auto rgba8 = Header(testing::MakePng(testing::Spec(4096, 4096, 8, 6, true)));
  ASSERT_TRUE(rgba8.ok()) << rgba8.status().ToString();
  EXPECT_EQ(rgba8->decoded_bytes, kMaxDecodedImageBytes);
  EXPECT_EQ(Header(testing::MakePng(testing::Spec(4096, 4097, 8, 6, true))).status().code(),
            ErrorCode::kImageTooLarge);
  EXPECT_TRUE(Header(testing::MakePng(testing::Spec(4096, 4096, 8, 0, true))).ok());
}

// Headers declaring a GiB or more, which stb_image's own header reader gives up on ("too
// large"), are refused as too large with what they declare, not taken for unreadable files.
TEST(ImageDecodeLimits, HeadersOfAGibibyteOrMoreAreTooLargeNotUnreadable) {
  struct Case {
    testing::PngSpec png;
    int channels, bytes;
  };
  // Signature and IHDR only: what is refused is refused before any pixel data is read.
  for (const Case& c : {Case{testing::Spec(20000, 20000, 8, 6, true), 4, 1},
                        Case{testing::Spec(40000, 40000, 8, 0, true), 1, 1},
                        Case{testing::Spec(20000, 20000, 16, 6, true), 4, 2},
                        Case{testing::Spec(2147483647, 2147483647, 16, 2, true), 3, 2}}) {
    ImageHeader h;
    auto r = Decode(testing::MakePng(c.png), &h);
    EXPECT_EQ(r.status().code(), ErrorCode::kImageTooLarge)
        << c.png.width << "x" << c.png.height << ": " << r.status().ToString();
    EXPECT_EQ(h.width, static_cast<int>(c.png.width));
    EXPECT_EQ(h.channels, c.channels);
    EXPECT_EQ(h.bytes_per_channel, c.bytes);
    const unsigned __int128 want = static_cast<unsigned __int128>(c.png.width) * c.png.height *
                                   static_cast<unsigned>(c.channels * c.bytes);
    EXPECT_EQ(h.decoded_bytes, want > INT64_MAX ? INT64_MAX : static_cast<int64_t>(want));
  }
  // A PNM wider than stb_image's STBI_MAX_DIMENSIONS: too large too.
  const std::string pgm = "P5\n20000000 10\n255\n" + std::string(64, '\0');
  ImageHeader h;
  EXPECT_EQ(Decode(pgm, &h).status().code(), ErrorCode::kImageTooLarge);
  EXPECT_EQ(h.decoded_bytes, int64_t{200000000});
}

// The decompression bomb: a small 16-bit 4000×4000 PNG. RGBA: 128 MB decoded from a
// file of about 100 KB, refused before anything is decoded.
TEST(ImageDecodeLimits, ADecompressionBombIsRefusedBeforeDecoding) {
  const std::string bomb = testing::MakePng(testing::Spec(4000, 4000, 16, 6));
  EXPECT_LT(bomb.size(), 1u << 20);
  ImageHeader h;
  auto r = Decode(bomb, &h);
  EXPECT_EQ(r.status().code(), ErrorCode::kImageTooLarge);
  EXPECT_EQ(h.width, 4000);
  EXPECT_EQ(h.height, 4000);
  EXPECT_EQ(h.decoded_bytes, int64_t{4000} * 4000 * 4 * 2);
  EXPECT_NE(r.status().message().find("over the limit of 67108864"), std::string::npos)
      << r.status().message();
}

// A header that lies: 100×100 declared, the pixel data inflates to far more. Refused by the
// counting inflate before stb_image grows a buffer for it.
TEST(ImageDecodeLimits, PixelDataLargerThanTheHeaderSaysIsRefused) {
  testing::PngSpec liar = testing::Spec(100, 100, 8, 0);
  liar.data_rows = 20000;
  liar.data_row_pixels = 1000;
  auto r = Decode(testing::MakePng(liar));
  EXPECT_EQ(r.status().code(), ErrorCode::kImageTooLarge);
  EXPECT_NE(r.status().message().find("inflates to more than"), std::string::npos)
      << r.status().message();
  // The honest file of the same header decodes (to no code).
  auto honest = Decode(testing::MakePng(testing::Spec(100, 100, 8, 0)));
  ASSERT_TRUE(honest.ok()) << honest.status().ToString();
  EXPECT_TRUE(honest->empty());
}

// A PNM whose pixel data is shorter than its header declares is refused before stb_image
// reads it (fuzz_image_bytes found a 16-bit one that crashed it); a whole one decodes.
TEST(ImageDecodeLimits, ATruncatedPnmIsRefused) {
  const std::string crash("P6\t8\t8886\t888\x89PNG\r\n\x1a\n887", 24);
  EXPECT_EQ(Decode(crash).status().code(), ErrorCode::kUnreadableImage);
  auto r = Decode("P6 8 8886 888\n" + std::string(16, '8'));
  EXPECT_EQ(r.status().code(), ErrorCode::kUnreadableImage);
  EXPECT_NE(r.status().message().find("truncated PNM"), std::string::npos) << r.status().message();
  const std::string whole = "P5\n# a comment\n4 2\n255\n" + std::string(8, '\xff');
  EXPECT_TRUE(Decode(whole).ok()) << Decode(whole).status().ToString();
  EXPECT_EQ(Decode(whole.substr(0, whole.size() - 1)).status().code(),
            ErrorCode::kUnreadableImage);                                        // one byte short
  EXPECT_EQ(Decode("P5 4 2 255").status().code(), ErrorCode::kUnreadableImage);  // no pixels
}

TEST(ImageDecodeLimits, OnlyPngJpegAndPnmAreRead) {
  EXPECT_EQ(Decode("BM" + std::string(100, '\0')).status().code(),
            ErrorCode::kUnreadableImage);  // BMP
  EXPECT_EQ(Decode("GIF89a" + std::string(100, '\0')).status().code(), ErrorCode::kUnreadableImage);
}

// Under the limit, a 16-bit image with a code in it decodes as an 8-bit one does.
TEST_F(ImageDecode, SixteenBitImageUnderTheLimitDecodes) {
  REQUIRE_QRENCODE();
  const Gray qr = qr_;
  testing::PngSpec spec =
      testing::Spec(static_cast<uint32_t>(qr.w) + 40, static_cast<uint32_t>(qr.h) + 40, 16, 6);
  spec.grey = [&qr](uint32_t x, uint32_t y) -> uint8_t {
    const int qx = static_cast<int>(x) - 20, qy = static_cast<int>(y) - 20;
    return qx >= 0 && qy >= 0 && qx < qr.w && qy < qr.h ? qr.at(qx, qy) : 255;
  };
  auto r = Decode(testing::MakePng(spec));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].text, code_);
}

TEST(ImageDecodeLimits, InvalidArguments) {
  uint8_t px[4] = {0, 0, 0, 0};
  EXPECT_EQ(DecodeImage(nullptr, 2, 2).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(DecodeImage(px, 0, 2).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(DecodeImage(px, 2, -1).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(DecodeImage(px, 5000, 5000).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(DecodeImage(px, 2, 2).ok());
  EXPECT_EQ(DecodeImageBytes(nullptr, 0).status().code(), ErrorCode::kUnreadableImage);
}

}  // namespace
}  // namespace loyalty::drivers
