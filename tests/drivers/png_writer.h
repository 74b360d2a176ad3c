// Test helper: PNG files written with zlib, in the bit depths and colour types stb_image
// cannot write (16-bit, RGBA), and with headers that lie. For the decoded-size limit
// (operations.md, "Scanners"): a 16-bit 4000×4000 image of one colour compresses to about
// 100 KB and would decode to hundreds of MB.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <functional>
#include <string>

namespace loyalty::drivers::testing {

struct PngSpec {
  uint32_t width = 0, height = 0;  // as the IHDR declares
  int bit_depth = 8;               // 8 or 16
  int color_type = 0;              // 0 grey, 2 RGB, 4 grey+alpha, 6 RGBA
  // Rows actually compressed (default: height). More than height makes a header that lies.
  uint32_t data_rows = 0;
  uint32_t data_row_pixels = 0;  // pixels per compressed row (default: width)
  // Grey value 0..255 of pixel (x, y); null: all white.
  std::function<uint8_t(uint32_t x, uint32_t y)> grey;
  bool header_only = false;  // signature and IHDR, nothing else (enough for stbi_info)
};

// The common case: dimensions, depth and colour type; every other field at its default.
inline PngSpec Spec(uint32_t width, uint32_t height, int bit_depth, int color_type,
                    bool header_only = false) {
  PngSpec p;
  p.width = width;
  p.height = height;
  p.bit_depth = bit_depth;
  p.color_type = color_type;
  p.header_only = header_only;
  return p;
}

inline void PngPut32(std::string& s, uint32_t v) {
  s += static_cast<char>(v >> 24);
  s += static_cast<char>(v >> 16);
  s += static_cast<char>(v >> 8);
  s += static_cast<char>(v);
}

inline void PngChunk(std::string& out, const char* type, const std::string& data) {
  PngPut32(out, static_cast<uint32_t>(data.size()));
  std::string body = std::string(type, 4) + data;
  out += body;
  PngPut32(out, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()),
                                            static_cast<uInt>(body.size()))));
}

inline std::string MakePng(const PngSpec& p) {
  std::string out("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  PngPut32(ihdr, p.width);
  PngPut32(ihdr, p.height);
  ihdr += static_cast<char>(p.bit_depth);
  ihdr += static_cast<char>(p.color_type);
  ihdr += std::string("\0\0\0", 3);  // deflate, adaptive filtering, no interlace
  PngChunk(out, "IHDR", ihdr);
  if (p.header_only) return out;
  const int channels = p.color_type == 0 ? 1 : p.color_type == 2 ? 3 : p.color_type == 4 ? 2 : 4;
  const bool alpha = p.color_type == 4 || p.color_type == 6;
  const int bytes = p.bit_depth / 8;
  const uint32_t rows = p.data_rows ? p.data_rows : p.height;
  const uint32_t row_pixels = p.data_row_pixels ? p.data_row_pixels : p.width;
  z_stream z{};
  deflateInit(&z, 9);
  std::string compressed, row;
  unsigned char buf[1 << 16];
  auto pump = [&](int flush) {
    do {
      z.next_out = buf;
      z.avail_out = sizeof buf;
      deflate(&z, flush);
      compressed.append(reinterpret_cast<char*>(buf), sizeof buf - z.avail_out);
    } while (z.avail_out == 0);
  };
  for (uint32_t y = 0; y < rows; ++y) {
    if (p.grey || y == 0) row.assign(1, '\0');  // filter: none; one colour: the same row each time
    for (uint32_t x = 0; x < row_pixels && (p.grey || y == 0); ++x) {
      const uint8_t v = p.grey ? p.grey(x, y) : 255;
      for (int c = 0; c < channels; ++c) {
        const uint8_t value = alpha && c == channels - 1 ? 255 : v;
        for (int b = 0; b < bytes; ++b) row += static_cast<char>(value);  // 16-bit: v * 257
      }
    }
    z.next_in = reinterpret_cast<Bytef*>(row.data());
    z.avail_in = static_cast<uInt>(row.size());
    pump(Z_NO_FLUSH);
  }
  z.next_in = nullptr;
  z.avail_in = 0;
  pump(Z_FINISH);
  deflateEnd(&z);
  PngChunk(out, "IDAT", compressed);
  PngChunk(out, "IEND", "");
  return out;
}

}  // namespace loyalty::drivers::testing
