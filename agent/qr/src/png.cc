// The PNG renderer: a 1-bit greyscale PNG written with zlib.
//
// One bit a pixel (0 black, 1 white) is what a QR code needs and what thermal receipt
// printers print; every PNG reader reads it. Each pixel row is filtered "None" when it
// differs from the row above and "Up" (all zero bytes) when it repeats it, which is
// module_pixels - 1 rows of every module_pixels: the compressed image is under 1 KB for a
// 200-byte link.
#include <zlib.h>

#include <cstring>

#include "loyalty/qr/qr.h"
#include "qr_internal.h"

namespace loyalty::qr {
namespace {

constexpr unsigned char kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
constexpr unsigned char kFilterNone = 0;
constexpr unsigned char kFilterUp = 2;

void PutBe32(std::string& out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out.append(b, 4);
}

void PutChunk(std::string& out, const char type[4], const unsigned char* data, size_t n) {
  PutBe32(out, static_cast<uint32_t>(n));
  const size_t start = out.size();
  out.append(type, 4);
  if (n > 0) out.append(reinterpret_cast<const char*>(data), n);
  const uLong crc =
      crc32(0L, reinterpret_cast<const Bytef*>(out.data() + start), static_cast<uInt>(4 + n));
  PutBe32(out, static_cast<uint32_t>(crc));
}

// Clears bits [from, to) of a packed row (most significant bit first): dark pixels.
void ClearBits(unsigned char* row, int from, int to) {
  for (int x = from; x < to;) {
    if ((x & 7) == 0 && to - x >= 8) {
      row[x >> 3] = 0;
      x += 8;
    } else {
      row[x >> 3] &= static_cast<unsigned char>(~(0x80u >> (x & 7)));
      ++x;
    }
  }
}

}  // namespace

Result<std::string> RenderPng(const Symbol& symbol, int module_pixels) {
  if (Status s = CheckSymbol(symbol); !s.ok()) return s;
  if (Status s = CheckModulePixels(module_pixels); !s.ok()) return s;

  const int side = symbol.SideWithQuietZone();
  const int pixels = side * module_pixels;
  const size_t row_bytes = (static_cast<size_t>(pixels) + 7) / 8;
  const size_t stride = 1 + row_bytes;  // the filter byte, then the row

  // The filtered image data, zero-initialised: an "Up" row of zeros repeats the row above.
  std::string raw(stride * static_cast<size_t>(pixels), '\0');
  std::string packed(row_bytes, '\0'), previous;
  for (int my = 0; my < side; ++my) {
    std::memset(packed.data(), 0xff, row_bytes);
    const int sy = my - kQuietZoneModules;
    if (sy >= 0 && sy < symbol.size) {
      auto* row = reinterpret_cast<unsigned char*>(packed.data());
      const uint8_t* cells = symbol.dark.data() + static_cast<size_t>(sy) * symbol.size;
      for (int x = 0; x < symbol.size;) {
        if (!cells[x]) {
          ++x;
          continue;
        }
        int end = x + 1;
        while (end < symbol.size && cells[end]) ++end;
        ClearBits(row, (x + kQuietZoneModules) * module_pixels,
                  (end + kQuietZoneModules) * module_pixels);
        x = end;
      }
    }
    for (int k = 0; k < module_pixels; ++k) {
      char* out = raw.data() + stride * (static_cast<size_t>(my) * module_pixels + k);
      const bool repeats = k > 0 || (my > 0 && packed == previous);
      if (repeats) {
        out[0] = static_cast<char>(kFilterUp);  // the row bytes stay zero
      } else {
        out[0] = static_cast<char>(kFilterNone);
        std::memcpy(out + 1, packed.data(), row_bytes);
      }
    }
    previous = packed;
  }

  // zlib at its fastest level with a small hash table: the rows that carry data are few and
  // short, so a stronger search saves a few dozen bytes and costs several times the time
  // (docs/enrolment-qr.md).
  z_stream z{};
  if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15, 4, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Status::Error(ErrorCode::kInternal, "qr png: zlib deflateInit2 failed");
  }
  std::string compressed(deflateBound(&z, static_cast<uLong>(raw.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(raw.data());
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = reinterpret_cast<Bytef*>(compressed.data());
  z.avail_out = static_cast<uInt>(compressed.size());
  const int rc = deflate(&z, Z_FINISH);
  const size_t compressed_size = z.total_out;
  deflateEnd(&z);
  if (rc != Z_STREAM_END) {
    return Status::Error(ErrorCode::kInternal, "qr png: zlib deflate failed");
  }

  unsigned char ihdr[13];
  const auto w = static_cast<uint32_t>(pixels);
  for (int i = 0; i < 2; ++i) {  // width, then height: the image is square
    ihdr[4 * i + 0] = static_cast<unsigned char>(w >> 24);
    ihdr[4 * i + 1] = static_cast<unsigned char>(w >> 16);
    ihdr[4 * i + 2] = static_cast<unsigned char>(w >> 8);
    ihdr[4 * i + 3] = static_cast<unsigned char>(w);
  }
  ihdr[8] = 1;   // bit depth
  ihdr[9] = 0;   // colour type: greyscale
  ihdr[10] = 0;  // compression: deflate
  ihdr[11] = 0;  // filter method 0 (per-row filter types)
  ihdr[12] = 0;  // no interlace

  std::string png;
  png.reserve(sizeof kSignature + 25 + 12 + compressed_size + 12);
  png.append(reinterpret_cast<const char*>(kSignature), sizeof kSignature);
  PutChunk(png, "IHDR", ihdr, sizeof ihdr);
  PutChunk(png, "IDAT", reinterpret_cast<const unsigned char*>(compressed.data()), compressed_size);
  PutChunk(png, "IEND", nullptr, 0);
  return png;
}

}  // namespace loyalty::qr
