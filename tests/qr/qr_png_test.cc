// Enrolment QR codes as PNG: every image decodes with stb_image to the dimensions promised
// and reads back with ZXing to exactly the payload; refusals are errors, never a crash.
#include <gtest/gtest.h>

#include <cstring>

#include "loyalty/qr/qr.h"
#include "qr_test_util.h"

namespace loyalty::qr {
namespace {

using testing::ChineseOfBytes;
using testing::Gray;
using testing::LoadGray;
using testing::ReadQr;
using testing::SampleModules;
using testing::TypicalLink;

constexpr ErrorCorrection kLevels[] = {ErrorCorrection::kLow, ErrorCorrection::kMedium,
                                       ErrorCorrection::kQuartile, ErrorCorrection::kHigh};

uint32_t Be32(const std::string& s, size_t at) {
  return (uint32_t{static_cast<uint8_t>(s[at])} << 24) |
         (uint32_t{static_cast<uint8_t>(s[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(s[at + 2])} << 8) |
         uint32_t{static_cast<uint8_t>(s[at + 3])};
}

// MakePng with `options`, then: a PNG signature and a 1-bit greyscale IHDR of the promised
// side, stb_image decodes it to that side, every pixel is the symbol's, and ZXing reads
// exactly `payload` at the level asked for.
void ExpectPngRoundTrip(const std::string& payload, const Options& options) {
  SCOPED_TRACE("payload of " + std::to_string(payload.size()) + " bytes, level " +
               std::string(ErrorCorrectionName(options.error_correction)) + ", " +
               std::to_string(options.module_pixels) + " px/module");
  Result<Symbol> symbol = Encode(payload, options.error_correction);
  ASSERT_TRUE(symbol.ok()) << symbol.status().ToString();
  Result<std::string> png = MakePng(payload, options);
  ASSERT_TRUE(png.ok()) << png.status().ToString();

  const int side = (symbol->size + 2 * kQuietZoneModules) * options.module_pixels;
  ASSERT_GE(png->size(), 8u + 25u);
  EXPECT_EQ(png->substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(png->substr(12, 4), "IHDR");
  EXPECT_EQ(Be32(*png, 16), static_cast<uint32_t>(side));
  EXPECT_EQ(Be32(*png, 20), static_cast<uint32_t>(side));
  EXPECT_EQ((*png)[24], 1) << "bit depth";
  EXPECT_EQ((*png)[25], 0) << "colour type: greyscale";
  EXPECT_EQ(png->substr(png->size() - 8, 4), "IEND");

  std::optional<Gray> img = LoadGray(*png);
  ASSERT_TRUE(img) << "stb_image refused the PNG: " << stbi_failure_reason();
  ASSERT_EQ(img->w, side);
  ASSERT_EQ(img->h, side);
  // Every pixel: quiet zone white, each module's square its colour.
  const Gray expected = testing::Draw(symbol->dark, symbol->size, options.module_pixels);
  EXPECT_TRUE(img->px == expected.px) << "the PNG's pixels differ from the symbol";

  std::optional<testing::Decoded> read = ReadQr(*img);
  ASSERT_TRUE(read) << "ZXing found no QR code in the PNG";
  EXPECT_EQ(read->text, payload);
  EXPECT_EQ(read->ec_level, ErrorCorrectionName(options.error_correction));
}

TEST(QrPng, AsciiRoundTrips) { ExpectPngRoundTrip("JOIN loyalty 42", {}); }

TEST(QrPng, TypicalLinkRoundTripsAtEveryLevel) {
  const std::string link = TypicalLink();
  ASSERT_EQ(link.size(), 200u);
  for (ErrorCorrection level : kLevels) ExpectPngRoundTrip(link, {level, kDefaultModulePixels});
}

TEST(QrPng, UrlWithQueryStringRoundTrips) {
  ExpectPngRoundTrip(
      "https://join.retailer.example/enrol?claim=eyJtIjoiMTIzIn0.c2lnbmF0dXJl&store=S-SH-0042"
      "&lane=T01&lang=zh-CN&utm_source=receipt#top",
      {});
}

TEST(QrPng, ChineseUtf8RoundTripsUnderEci) {
  const std::string text = "欢迎加入会员！扫码领取积分 🎁 https://join.retailer.example/?门店=上海";
  ExpectPngRoundTrip(text, {});
  Result<Symbol> symbol = Encode(text);
  ASSERT_TRUE(symbol.ok());
  auto read = ReadQr(testing::Draw(symbol->dark, symbol->size, 4));
  ASSERT_TRUE(read);
  EXPECT_TRUE(read->has_eci) << "UTF-8 is declared (ECI 26), not left to the reader's guess";
}

TEST(QrPng, AsciiCarriesNoEci) {
  Result<Symbol> symbol = Encode(TypicalLink());
  ASSERT_TRUE(symbol.ok());
  auto read = ReadQr(testing::Draw(symbol->dark, symbol->size, 4));
  ASSERT_TRUE(read);
  EXPECT_FALSE(read->has_eci);
}

TEST(QrPng, PayloadAtTheLimitRoundTripsAtEveryLevel) {
  const std::string ascii(kMaxPayloadBytes, 'a');
  const std::string chinese = ChineseOfBytes(kMaxPayloadBytes);
  ASSERT_EQ(chinese.size(), kMaxPayloadBytes);
  std::string link = TypicalLink();
  while (link.size() < kMaxPayloadBytes) link += "&x=" + std::to_string(link.size());
  link.resize(kMaxPayloadBytes);
  for (ErrorCorrection level : kLevels) {
    ExpectPngRoundTrip(ascii, {level, 2});
    ExpectPngRoundTrip(chinese, {level, 2});
    ExpectPngRoundTrip(link, {level, 2});
  }
  // At H the limit still leaves room: version 40 holds 1,273 bytes.
  Result<Symbol> h = Encode(chinese, ErrorCorrection::kHigh);
  ASSERT_TRUE(h.ok());
  EXPECT_LT(h->Version(), 40);
}

TEST(QrPng, ModulePixelsAtTheirEdges) {
  const std::string link = TypicalLink();
  ExpectPngRoundTrip(link, {ErrorCorrection::kMedium, kMinModulePixels});
  ExpectPngRoundTrip(link, {ErrorCorrection::kMedium, kMaxModulePixels});
  ExpectPngRoundTrip(std::string(kMaxPayloadBytes, 'z'),
                     {ErrorCorrection::kHigh, kMaxModulePixels});
  ExpectPngRoundTrip("1", {ErrorCorrection::kLow, kMinModulePixels});
}

TEST(QrPng, SmallestPayloadIsVersionOne) {
  Result<Symbol> s = Encode("1", ErrorCorrection::kLow);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->size, 21);
  EXPECT_EQ(s->Version(), 1);
  Result<std::string> png = MakePng("1", {ErrorCorrection::kLow, 4});
  ASSERT_TRUE(png.ok());
  auto img = LoadGray(*png);
  ASSERT_TRUE(img);
  EXPECT_EQ(img->w, (21 + 8) * 4);
}

TEST(QrPng, SamplingTheImageGivesTheSymbol) {
  Result<Symbol> s = Encode(TypicalLink());
  ASSERT_TRUE(s.ok());
  Result<std::string> png = RenderPng(*s, 3);
  ASSERT_TRUE(png.ok());
  auto img = LoadGray(*png);
  ASSERT_TRUE(img);
  EXPECT_EQ(SampleModules(*img, s->size, 3), s->dark);
}

TEST(QrPng, HigherLevelsMakeLargerSymbols) {
  const std::string link = TypicalLink();
  int last = 0;
  for (ErrorCorrection level : kLevels) {
    Result<Symbol> s = Encode(link, level);
    ASSERT_TRUE(s.ok());
    EXPECT_GT(s->size, last) << ErrorCorrectionName(level);
    last = s->size;
  }
}

TEST(QrPng, TheSameInputGivesTheSameBytes) {
  EXPECT_EQ(MakePng(TypicalLink()).value(), MakePng(TypicalLink()).value());
  EXPECT_EQ(MakeSvg(TypicalLink()).value(), MakeSvg(TypicalLink()).value());
}

// Refusals.

void ExpectInvalid(const Status& s, const std::string& words) {
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find(words), std::string::npos) << s.ToString();
}

TEST(QrErrors, EmptyPayloadRefused) {
  ExpectInvalid(CheckPayload(""), "empty");
  ExpectInvalid(Encode("").status(), "empty");
  ExpectInvalid(MakePng("").status(), "empty");
  ExpectInvalid(MakeSvg("").status(), "empty");
}

TEST(QrErrors, OneByteOverTheLimitRefused) {
  const std::string over(kMaxPayloadBytes + 1, 'a');
  ExpectInvalid(CheckPayload(over), "1025 bytes, more than 1024");
  ExpectInvalid(Encode(over).status(), "more than 1024");
  ExpectInvalid(MakePng(over).status(), "more than 1024");
  ExpectInvalid(MakeSvg(over).status(), "more than 1024");
  // Counted in bytes, not characters: 342 three-byte characters are 1,026 bytes.
  ExpectInvalid(MakePng(ChineseOfBytes(1026)).status(), "more than 1024");
  ExpectInvalid(MakePng(std::string(1 << 20, 'a')).status(), "more than 1024");
  EXPECT_TRUE(CheckPayload(std::string(kMaxPayloadBytes, 'a')).ok());
}

TEST(QrErrors, InvalidUtf8Refused) {
  for (const std::string& bad : {std::string("\xff"), std::string("abc\xc3"),
                                 std::string("\xed\xa0\x80"), std::string("\xc0\xaf")}) {
    ExpectInvalid(MakePng(bad).status(), "not valid UTF-8");
    ExpectInvalid(MakeSvg(bad).status(), "not valid UTF-8");
  }
}

TEST(QrErrors, OptionsOutOfRangeRefused) {
  const std::string link = TypicalLink();
  for (int px : {kMinModulePixels - 1, kMaxModulePixels + 1, -1, 1 << 30}) {
    Options o;
    o.module_pixels = px;
    ExpectInvalid(CheckOptions(o), "module_pixels must be 1..16, got " + std::to_string(px));
    ExpectInvalid(MakePng(link, o).status(), "module_pixels");
    ExpectInvalid(MakeSvg(link, o).status(), "module_pixels");
    Result<Symbol> s = Encode(link);
    ASSERT_TRUE(s.ok());
    ExpectInvalid(RenderPng(*s, px).status(), "module_pixels");
    ExpectInvalid(RenderSvg(*s, px).status(), "module_pixels");
  }
  for (int level : {4, 255}) {
    Options o;
    o.error_correction = static_cast<ErrorCorrection>(level);
    ExpectInvalid(CheckOptions(o), "error correction must be L, M, Q or H");
    ExpectInvalid(MakePng(link, o).status(), "error correction");
    ExpectInvalid(MakeSvg(link, o).status(), "error correction");
    ExpectInvalid(Encode(link, o.error_correction).status(), "error correction");
  }
}

TEST(QrErrors, SymbolsThatAreNotQrRefused) {
  Symbol empty;
  ExpectInvalid(RenderPng(empty).status(), "not a QR symbol");
  ExpectInvalid(RenderSvg(empty).status(), "not a QR symbol");
  Symbol short_cells;
  short_cells.size = 21;
  short_cells.dark.resize(20);
  ExpectInvalid(RenderPng(short_cells).status(), "not a QR symbol");
  Symbol odd;
  odd.size = 22;
  odd.dark.resize(22 * 22);
  ExpectInvalid(RenderSvg(odd).status(), "not a QR symbol");
  Symbol huge;
  huge.size = 181;
  huge.dark.resize(181 * 181);
  ExpectInvalid(RenderPng(huge).status(), "not a QR symbol");
}

TEST(QrErrors, ErrorCorrectionNames) {
  EXPECT_EQ(ErrorCorrectionFromName("L"), ErrorCorrection::kLow);
  EXPECT_EQ(ErrorCorrectionFromName("m"), ErrorCorrection::kMedium);
  EXPECT_EQ(ErrorCorrectionFromName("Q"), ErrorCorrection::kQuartile);
  EXPECT_EQ(ErrorCorrectionFromName("h"), ErrorCorrection::kHigh);
  EXPECT_EQ(ErrorCorrectionFromName(""), std::nullopt);
  EXPECT_EQ(ErrorCorrectionFromName("MM"), std::nullopt);
  EXPECT_EQ(ErrorCorrectionFromName("X"), std::nullopt);
  for (ErrorCorrection level : kLevels) {
    EXPECT_EQ(ErrorCorrectionFromName(ErrorCorrectionName(level)), level);
  }
  EXPECT_EQ(ErrorCorrectionName(static_cast<ErrorCorrection>(9)), "?");
  EXPECT_EQ(Options{}.error_correction, ErrorCorrection::kMedium);
  EXPECT_EQ(Options{}.module_pixels, 4);
}

}  // namespace
}  // namespace loyalty::qr
