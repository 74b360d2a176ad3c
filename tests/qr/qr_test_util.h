// Test helpers for enrolment QR codes: images decoded by stb_image and read back by ZXing,
// the payloads the tests encode.
#pragma once

#define ZX_USE_UTF8 1
#include <ZXing/ReadBarcode.h>
#include <stb_image.h>

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loyalty/qr/qr.h"

namespace loyalty::qr::testing {

struct Gray {
  int w = 0, h = 0;
  std::vector<uint8_t> px;
  uint8_t at(int x, int y) const { return px[static_cast<size_t>(y) * w + x]; }
};

// An image file's bytes (PNG here) decoded to 8-bit grey by stb_image; nullopt when stb_image
// refuses them.
inline std::optional<Gray> LoadGray(const std::string& bytes) {
  Gray g;
  int channels = 0;
  std::unique_ptr<uint8_t, void (*)(void*)> p(
      stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()),
                            static_cast<int>(bytes.size()), &g.w, &g.h, &channels, 1),
      stbi_image_free);
  if (!p) return std::nullopt;
  g.px.assign(p.get(), p.get() + static_cast<size_t>(g.w) * g.h);
  return g;
}

struct Decoded {
  std::string text;
  std::string ec_level;  // "L", "M", "Q", "H"
  bool has_eci = false;
};

// ZXing's reader on a grey image, QR codes only; nullopt when it finds none.
inline std::optional<Decoded> ReadQr(const Gray& g) {
  const auto r =
      ZXing::ReadBarcode(ZXing::ImageView(g.px.data(), g.w, g.h, ZXing::ImageFormat::Lum),
                         ZXing::DecodeHints().setFormats(ZXing::BarcodeFormat::QRCode));
  if (!r.isValid()) return std::nullopt;
  return Decoded{r.text(), r.ecLevel(), r.hasECI()};
}

// The modules sampled at their centres from an image of a symbol with its quiet zone drawn at
// `module_pixels` per module from the top-left corner (dark: below mid-grey).
inline std::vector<uint8_t> SampleModules(const Gray& g, int size, int module_pixels) {
  std::vector<uint8_t> dark(static_cast<size_t>(size) * size);
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      const int px = (x + kQuietZoneModules) * module_pixels + module_pixels / 2;
      const int py = (y + kQuietZoneModules) * module_pixels + module_pixels / 2;
      dark[static_cast<size_t>(y) * size + x] = g.at(px, py) < 128 ? 1 : 0;
    }
  }
  return dark;
}

// A symbol drawn as a grey image: quiet zone included, `module_pixels` per module.
inline Gray Draw(const std::vector<uint8_t>& dark, int size, int module_pixels) {
  Gray g;
  g.w = g.h = (size + 2 * kQuietZoneModules) * module_pixels;
  g.px.assign(static_cast<size_t>(g.w) * g.h, 255);
  for (int y = 0; y < g.h; ++y) {
    for (int x = 0; x < g.w; ++x) {
      const int mx = x / module_pixels - kQuietZoneModules;
      const int my = y / module_pixels - kQuietZoneModules;
      if (mx >= 0 && my >= 0 && mx < size && my < size && dark[static_cast<size_t>(my) * size + mx])
        g.px[static_cast<size_t>(y) * g.w + x] = 0;
    }
  }
  return g;
}

// The value of attribute `name` in the first element of `tag`; "" when absent.
inline std::string Attribute(const std::string& svg, const std::string& tag,
                             const std::string& name) {
  const size_t start = svg.find("<" + tag + " ");
  if (start == std::string::npos) return "";
  const size_t end = svg.find('>', start);
  const size_t at = svg.find(" " + name + "=\"", start);
  if (at == std::string::npos || at > end) return "";
  const size_t from = at + name.size() + 3;
  return svg.substr(from, svg.find('"', from) - from);
}

// Reads the path's data back, as this renderer writes it: per run "M<x> <y>.5" (a row's
// first) or "m<gap> 0" (from the end of the row's previous run, gap ≥ 1), then "h<n>": a
// stroke a module wide through the middle of row y from x to x + n. The modules it covers
// (quiet zone removed) and the number of runs; nullopt when the data is anything else (a
// run that leaves the symbol, runs that touch or overlap, an unknown command).
struct ParsedPath {
  std::vector<uint8_t> dark;
  int runs = 0;
};
inline std::optional<ParsedPath> ParsePath(const std::string& d, int size) {
  ParsedPath p;
  p.dark.assign(static_cast<size_t>(size) * size, 0);
  size_t i = 0;
  auto number = [&](int* out) {
    size_t j = i;
    if (j < d.size() && d[j] == '-') ++j;
    while (j < d.size() && std::isdigit(static_cast<unsigned char>(d[j]))) ++j;
    if (j == i) return false;
    *out = std::stoi(d.substr(i, j - i));
    i = j;
    return true;
  };
  auto expect = [&](const std::string& s) {
    if (d.compare(i, s.size(), s) != 0) return false;
    i += s.size();
    return true;
  };
  int pen_x = 0, row = 0;
  while (i < d.size()) {
    const char c = d[i++];
    int a = 0, b = 0, n = 0;
    if (c == 'M') {
      if (!number(&a) || !expect(" ") || !number(&b) || !expect(".5")) return std::nullopt;
      pen_x = a;
      row = b;
    } else if (c == 'm') {
      if (!number(&a) || !expect(" 0") || a < 1) return std::nullopt;
      pen_x += a;
    } else {
      return std::nullopt;
    }
    if (!expect("h") || !number(&n) || n <= 0) return std::nullopt;
    const int y = row - kQuietZoneModules, x0 = pen_x - kQuietZoneModules;
    if (y < 0 || y >= size || x0 < 0 || x0 + n > size) return std::nullopt;
    for (int x = x0; x < x0 + n; ++x) {
      uint8_t& cell = p.dark[static_cast<size_t>(y) * size + x];
      if (cell) return std::nullopt;
      cell = 1;
    }
    pen_x += n;
    ++p.runs;
  }
  return p;
}

// The SVG's QR code read back: its path's modules (the size from its viewBox, quiet zone
// removed) drawn at 3 pixels a module and read by ZXing; nullopt when any step fails.
inline std::optional<Decoded> ReadSvgQr(const std::string& svg) {
  const std::string box = Attribute(svg, "svg", "viewBox");
  const size_t space = box.rfind(' ');
  if (box.rfind("0 0 ", 0) != 0 || space == std::string::npos) return std::nullopt;
  const int side = std::atoi(box.c_str() + space + 1);
  const int size = side - 2 * kQuietZoneModules;
  if (size < 21 || size > 177) return std::nullopt;
  auto parsed = ParsePath(Attribute(svg, "path", "d"), size);
  if (!parsed) return std::nullopt;
  return ReadQr(Draw(parsed->dark, size, 3));
}

// A typical enrolment link: the join page, the signed claim (base64url), store and lane;
// 200 bytes.
inline std::string TypicalLink() {
  std::string claim;
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (int i = 0; i < 150; ++i) claim += alphabet[(i * 37 + 11) % 64];
  std::string link = "https://join.retailer.example/e?c=" + claim + "&s=S0042&t=T01";
  link.resize(200, 'x');
  return link;
}

// `bytes` bytes of UTF-8 made of three-byte Chinese characters, topped up with ASCII.
inline std::string ChineseOfBytes(size_t bytes) {
  const std::string chars[] = {"会", "员", "加", "入", "积", "分", "门", "店"};
  std::string s;
  for (size_t i = 0; s.size() + 3 <= bytes; ++i) s += chars[i % 8];
  while (s.size() < bytes) s += '!';
  return s;
}

}  // namespace loyalty::qr::testing
