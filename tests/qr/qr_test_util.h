// Test helpers for enrolment QR codes: images decoded by stb_image and read back by ZXing,
// the payloads the tests encode.
#pragma once

#define ZX_USE_UTF8 1
#include <ZXing/ReadBarcode.h>
#include <stb_image.h>

#include <cstdint>
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
