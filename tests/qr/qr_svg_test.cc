// Enrolment QR codes as SVG: the element's shape (viewBox, white background, one path of
// merged runs, crisp edges), its path read back into exactly the symbol's modules, and the
// SVG rasterised by a real browser (headless Chromium) read back by ZXing to the payload.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "loyalty/qr/qr.h"
#include "qr_test_util.h"
#include "support/files.h"
#include "support/process.h"

namespace loyalty::qr {
namespace {

using testing::Attribute;
using testing::ChineseOfBytes;
using testing::Gray;
using testing::ParsePath;
using testing::ReadQr;
using testing::TypicalLink;

size_t Count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

// Horizontal runs of dark modules in the symbol: what "merged per row" must come to.
int Runs(const Symbol& s) {
  int runs = 0;
  for (int y = 0; y < s.size; ++y)
    for (int x = 0; x < s.size; ++x)
      if (s.Dark(x, y) && (x == 0 || !s.Dark(x - 1, y))) ++runs;
  return runs;
}

void ExpectSvgMatchesSymbol(const std::string& payload, const Options& options) {
  SCOPED_TRACE("payload of " + std::to_string(payload.size()) + " bytes, level " +
               std::string(ErrorCorrectionName(options.error_correction)));
  Result<Symbol> symbol = Encode(payload, options.error_correction);
  ASSERT_TRUE(symbol.ok()) << symbol.status().ToString();
  Result<std::string> svg = MakeSvg(payload, options);
  ASSERT_TRUE(svg.ok()) << svg.status().ToString();

  const int side = symbol->SideWithQuietZone();
  const std::string side_s = std::to_string(side);
  const std::string px_s = std::to_string(side * options.module_pixels);
  EXPECT_EQ(svg->rfind("<svg ", 0), 0u);
  EXPECT_EQ(svg->substr(svg->size() - 6), "</svg>");
  EXPECT_EQ(Count(*svg, "<svg"), 1u);
  EXPECT_EQ(Attribute(*svg, "svg", "xmlns"), "http://www.w3.org/2000/svg");
  EXPECT_EQ(Attribute(*svg, "svg", "viewBox"), "0 0 " + side_s + " " + side_s);
  EXPECT_EQ(Attribute(*svg, "svg", "width"), px_s);
  EXPECT_EQ(Attribute(*svg, "svg", "height"), px_s);
  EXPECT_EQ(Attribute(*svg, "svg", "shape-rendering"), "crispEdges");
  EXPECT_EQ(Attribute(*svg, "rect", "width"), side_s);
  EXPECT_EQ(Attribute(*svg, "rect", "height"), side_s);
  EXPECT_EQ(Attribute(*svg, "rect", "fill"), "#fff");
  EXPECT_EQ(Count(*svg, "<path"), 1u) << "the dark modules are one path";
  EXPECT_EQ(Attribute(*svg, "path", "fill"), "none");
  EXPECT_EQ(Attribute(*svg, "path", "stroke"), "#000");
  EXPECT_EQ(Attribute(*svg, "path", "stroke-width"), "1");
  EXPECT_EQ(svg->find('\n'), std::string::npos);

  auto parsed = ParsePath(Attribute(*svg, "path", "d"), symbol->size);
  ASSERT_TRUE(parsed) << "the path is not rectangles of runs inside the symbol";
  EXPECT_TRUE(parsed->dark == symbol->dark) << "the path's modules differ from the symbol";
  EXPECT_EQ(parsed->runs, Runs(*symbol)) << "each row's adjacent dark modules are one run";
  // The path's modules, drawn, read back as the payload too.
  auto read = ReadQr(testing::Draw(parsed->dark, symbol->size, 3));
  ASSERT_TRUE(read);
  EXPECT_EQ(read->text, payload);
}

TEST(QrSvg, PathIsTheSymbol) {
  ExpectSvgMatchesSymbol("JOIN loyalty 42", {});
  ExpectSvgMatchesSymbol(TypicalLink(), {});
  ExpectSvgMatchesSymbol("欢迎加入会员！扫码领取积分 🎁", {ErrorCorrection::kHigh, 8});
  ExpectSvgMatchesSymbol(std::string(kMaxPayloadBytes, 'a'), {ErrorCorrection::kLow, 1});
  ExpectSvgMatchesSymbol(ChineseOfBytes(kMaxPayloadBytes), {ErrorCorrection::kHigh, 16});
}

TEST(QrSvg, IsCompact) {
  // The typical link at M: version 10, 57 modules, some 830 runs; about 7 bytes a run.
  Result<std::string> svg = MakeSvg(TypicalLink());
  ASSERT_TRUE(svg.ok());
  Result<Symbol> s = Encode(TypicalLink());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->Version(), 10);
  EXPECT_LT(svg->size(), 300 + 7.5 * Runs(*s))
      << svg->size() << " bytes for " << Runs(*s) << " runs";
  EXPECT_LT(svg->size(), 7000u);
  EXPECT_EQ(Count(*svg, "<"), 4u) << "svg, rect, path and the closing tag";
}

std::string Chromium() {
  for (const char* c : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (::access(c, X_OK) == 0) return c;
  return "";
}

// The SVG as a file opened by headless Chromium, screenshot `margin` pixels larger than the
// SVG's nominal size each way (the page beyond it is white): the screenshot decoded to grey.
std::optional<Gray> Rasterise(const std::string& chromium, const std::string& svg, int svg_pixels,
                              int margin) {
  loyalty::testing::TempDir dir("qr_svg");
  const std::string file = dir.Write("code.svg", svg, 0644);
  const std::string shot = (dir / "shot.png").string();
  const int window = svg_pixels + margin;
  auto r = loyalty::testing::RunProgram(
      "/usr/bin/timeout",
      {"120", chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
       "--disable-background-networking", "--disable-component-update", "--disable-sync",
       "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
       "--user-data-dir=" + (dir / "profile").string(),
       "--window-size=" + std::to_string(window) + "," + std::to_string(window),
       "--screenshot=" + shot, "file://" + file});
  EXPECT_EQ(r.exit, 0) << r.err;
  const std::string bytes = loyalty::testing::ReadFile(shot);
  if (bytes.empty()) {
    ADD_FAILURE() << "chromium wrote no screenshot: " << r.err;
    return std::nullopt;
  }
  return testing::LoadGray(bytes);
}

void ExpectChromiumReads(const std::string& chromium, const std::string& payload,
                         const Options& options) {
  SCOPED_TRACE("payload of " + std::to_string(payload.size()) + " bytes, level " +
               std::string(ErrorCorrectionName(options.error_correction)) + ", " +
               std::to_string(options.module_pixels) + " px/module");
  Result<Symbol> symbol = Encode(payload, options.error_correction);
  ASSERT_TRUE(symbol.ok());
  Result<std::string> svg = MakeSvg(payload, options);
  ASSERT_TRUE(svg.ok());
  const int svg_pixels = symbol->SideWithQuietZone() * options.module_pixels;
  std::optional<Gray> shot = Rasterise(chromium, *svg, svg_pixels, 40);
  ASSERT_TRUE(shot) << "stb_image refused the screenshot";
  ASSERT_EQ(shot->w, svg_pixels + 40);
  ASSERT_EQ(shot->h, svg_pixels + 40);
  // The browser drew each module where the SVG says, at its nominal size, with crisp edges:
  // every pixel is the symbol's (black or white, no grey), and the page around it is white.
  EXPECT_EQ(testing::SampleModules(*shot, symbol->size, options.module_pixels), symbol->dark);
  const Gray expected = testing::Draw(symbol->dark, symbol->size, options.module_pixels);
  int differ = 0;
  for (int y = 0; y < shot->h; ++y) {
    for (int x = 0; x < shot->w; ++x) {
      const int want = x < expected.w && y < expected.h ? expected.at(x, y) : 255;
      if (shot->at(x, y) != want) ++differ;
    }
  }
  EXPECT_EQ(differ, 0) << "pixels of the screenshot that are not the symbol's";
  std::optional<testing::Decoded> read = ReadQr(*shot);
  ASSERT_TRUE(read) << "ZXing found no QR code in Chromium's screenshot";
  EXPECT_EQ(read->text, payload);
  EXPECT_EQ(read->ec_level, ErrorCorrectionName(options.error_correction));
}

// The SVG inline in a page, scaled by CSS to a size that is no whole number of pixels per
// module (as a customer display's layout may do): still read back to the payload.
TEST(QrSvgBrowser, ScaledByCssInAPageStillReads) {
  const std::string chromium = Chromium();
  if (chromium.empty()) {
    GTEST_SKIP() << "chromium is not installed (scripts/install-deps installs it): the SVG "
                    "was not rasterised by a browser";
  }
  const std::string payload = TypicalLink();
  Result<std::string> svg = MakeSvg(payload);
  ASSERT_TRUE(svg.ok());
  const std::string page =
      "<!doctype html><html><body style=\"margin:20px;background:#fff\">"
      "<style>svg{width:333px;height:333px}</style>" +
      *svg + "</body></html>";
  loyalty::testing::TempDir dir("qr_svg_page");
  const std::string file = dir.Write("page.html", page, 0644);
  const std::string shot = (dir / "shot.png").string();
  auto r = loyalty::testing::RunProgram(
      "/usr/bin/timeout",
      {"120", chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
       "--disable-background-networking", "--disable-component-update", "--disable-sync",
       "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
       "--user-data-dir=" + (dir / "profile").string(), "--window-size=400,400",
       "--screenshot=" + shot, "file://" + file});
  ASSERT_EQ(r.exit, 0) << r.err;
  std::optional<Gray> img = testing::LoadGray(loyalty::testing::ReadFile(shot));
  ASSERT_TRUE(img) << "no screenshot";
  std::optional<testing::Decoded> read = ReadQr(*img);
  ASSERT_TRUE(read) << "ZXing found no QR code in the page's screenshot";
  EXPECT_EQ(read->text, payload);
}

TEST(QrSvgBrowser, ChromiumRasterisesAndZxingReadsThePayload) {
  const std::string chromium = Chromium();
  if (chromium.empty()) {
    GTEST_SKIP() << "chromium is not installed (scripts/install-deps installs it): the SVG "
                    "was not rasterised by a browser";
  }
  ExpectChromiumReads(chromium, TypicalLink(), {});
  ExpectChromiumReads(chromium,
                      "https://join.retailer.example/enrol?claim=eyJtIjoiMTIzIn0.c2ln&store=S1"
                      "&lang=zh-CN#top",
                      {ErrorCorrection::kLow, 3});
  ExpectChromiumReads(chromium, "欢迎加入会员！扫码领取积分 🎁 门店=上海",
                      {ErrorCorrection::kHigh, 6});
  ExpectChromiumReads(chromium, ChineseOfBytes(kMaxPayloadBytes), {ErrorCorrection::kQuartile, 3});
}

}  // namespace
}  // namespace loyalty::qr
