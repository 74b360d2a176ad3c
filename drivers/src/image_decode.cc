// ZXing-C++ 1.4 still returns std::wstring from Result::text() unless ZX_USE_UTF8 is set.
#define ZX_USE_UTF8 1
#include "loyalty/drivers/image_decode.h"

#include "loyalty/base/file.h"

#include <ZXing/ReadBarcode.h>
#include <stb_image.h>
#include <zlib.h>

#include <climits>
#include <cstring>
#include <memory>
#include <optional>

namespace loyalty::drivers {
namespace {

ZXing::DecodeHints Hints() {
  // tryHarder + tryRotate: camera frames arrive at any angle and with noise; restricting
  // the formats keeps the time spent per frame to what the agent can use.
  return ZXing::DecodeHints()
      .setFormats(ZXing::BarcodeFormat::QRCode | ZXing::BarcodeFormat::Code128)
      .setTryHarder(true)
      .setTryRotate(true);
}

Status TooLarge(const std::string& why) { return Status::Error(ErrorCode::kImageTooLarge, why); }
Status Unreadable(const std::string& why) {
  return Status::Error(ErrorCode::kUnreadableImage, why);
}

constexpr uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

bool IsPng(const uint8_t* d, size_t n) { return n >= 8 && std::memcmp(d, kPngSignature, 8) == 0; }
bool IsJpeg(const uint8_t* d, size_t n) {
  return n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff;
}
bool IsPnm(const uint8_t* d, size_t n) {
  return n >= 2 && d[0] == 'P' && (d[1] == '5' || d[1] == '6');
}

// A binary PNM's header: the magic, width, height and maxval, separated by whitespace and
// '#' comments, then exactly one whitespace byte (`bytes`: its length). nullopt when it does
// not parse.
struct PnmHeader {
  uint64_t field[3] = {0, 0, 0};  // width, height, maxval (at most 10 digits each)
  size_t bytes = 0;
};
std::optional<PnmHeader> ParsePnmHeader(const uint8_t* d, size_t n) {
  PnmHeader h;
  size_t i = 2;
  auto space = [](uint8_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
  };
  for (uint64_t& v : h.field) {
    for (;;) {  // whitespace and comments before the number
      if (i < n && space(d[i])) {
        ++i;
      } else if (i < n && d[i] == '#') {
        while (i < n && d[i] != '\n' && d[i] != '\r') ++i;
      } else {
        break;
      }
    }
    const size_t start = i;
    while (i < n && d[i] >= '0' && d[i] <= '9' && i - start < 10) v = v * 10 + (d[i++] - '0');
    if (i == start) return std::nullopt;
  }
  if (i >= n || !space(d[i])) return std::nullopt;
  h.bytes = i + 1;
  return h;
}

uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// The bytes a PNG's pixel data inflates to for the dimensions its IHDR declares: one filter
// byte per row plus the packed row, summed over the seven Adam7 passes when interlaced. 0
// when the IHDR is not one this can read (stb_image then refuses the file).
uint64_t PngRawBytes(const uint8_t* d, size_t n) {
  if (n < 33 || Be32(d + 8) != 13 || std::memcmp(d + 12, "IHDR", 4) != 0) return 0;
  const uint64_t w = Be32(d + 16), h = Be32(d + 20);
  const int depth = d[24], color = d[25], interlace = d[28];
  int channels = 0;
  switch (color) {
    case 0:
      channels = 1;
      break;  // grey
    case 2:
      channels = 3;
      break;  // RGB
    case 3:
      channels = 1;
      break;  // palette index
    case 4:
      channels = 2;
      break;  // grey + alpha
    case 6:
      channels = 4;
      break;  // RGBA
    default:
      return 0;
  }
  const uint64_t bits = static_cast<uint64_t>(channels) * static_cast<uint64_t>(depth);
  auto pass_bytes = [bits](uint64_t pw, uint64_t ph) -> uint64_t {
    return pw == 0 || ph == 0 ? 0 : ph * (1 + (pw * bits + 7) / 8);
  };
  if (interlace == 0) return pass_bytes(w, h);
  static constexpr int kAdam7[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                                       {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};
  uint64_t total = 0;
  for (const auto& p : kAdam7) {
    const uint64_t pw = w > static_cast<uint64_t>(p[0]) ? (w - p[0] + p[2] - 1) / p[2] : 0;
    const uint64_t ph = h > static_cast<uint64_t>(p[1]) ? (h - p[1] + p[3] - 1) / p[3] : 0;
    total += pass_bytes(pw, ph);
  }
  return total;
}

// What a PNG's IHDR declares, read by this file rather than stb_image, whose header reader
// gives up ("too large") on images of a GiB or more: those must still be refused as
// oversized, with what they declare (operations.md), not taken for unreadable files.
// Channels are counted after palette expansion, as stb_image decodes them: 3, or 4 with a
// tRNS chunk before the pixel data. False when the IHDR is not one this can read.
bool PngDeclared(const uint8_t* d, size_t n, ImageHeader& h) {
  if (n < 33 || Be32(d + 8) != 13 || std::memcmp(d + 12, "IHDR", 4) != 0) return false;
  const uint32_t w = Be32(d + 16), ht = Be32(d + 20);
  const int depth = d[24], color = d[25];
  if (w == 0 || ht == 0 || w > INT32_MAX || ht > INT32_MAX) return false;
  int channels = 0;
  switch (color) {
    case 0:
      channels = 1;
      break;
    case 2:
      channels = 3;
      break;
    case 4:
      channels = 2;
      break;
    case 6:
      channels = 4;
      break;
    case 3: {
      channels = 3;
      for (size_t off = 8; off + 12 <= n;) {
        const uint32_t len = Be32(d + off);
        if (len > n - off - 12) break;
        if (std::memcmp(d + off + 4, "IDAT", 4) == 0) break;
        if (std::memcmp(d + off + 4, "tRNS", 4) == 0) channels = 4;
        off += 12 + static_cast<size_t>(len);
      }
      break;
    }
    default:
      return false;
  }
  h.width = static_cast<int>(w);
  h.height = static_cast<int>(ht);
  h.channels = channels;
  h.bytes_per_channel = depth == 16 ? 2 : 1;
  return true;
}

// What a binary PNM's header declares (P5: one channel, P6: three; two bytes a channel
// when maxval is over 255). False when the header does not parse.
bool PnmDeclared(const uint8_t* d, size_t n, ImageHeader& h) {
  const std::optional<PnmHeader> p = ParsePnmHeader(d, n);
  if (!p) return false;
  const uint64_t w = p->field[0], ht = p->field[1];
  if (w == 0 || ht == 0 || w > INT32_MAX || ht > INT32_MAX) return false;
  h.width = static_cast<int>(w);
  h.height = static_cast<int>(ht);
  h.channels = d[1] == '5' ? 1 : 3;
  h.bytes_per_channel = p->field[2] > 255 ? 2 : 1;
  return true;
}

// Halves a grayscale image in each dimension (each pixel the mean of a 2×2 block; an odd
// last row or column is dropped).
std::vector<uint8_t> HalveGray(const uint8_t* src, int w, int h, int& out_w, int& out_h) {
  out_w = w / 2;
  out_h = h / 2;
  std::vector<uint8_t> out(static_cast<size_t>(out_w) * static_cast<size_t>(out_h));
  for (int y = 0; y < out_h; ++y) {
    const uint8_t* r0 = src + static_cast<size_t>(2 * y) * static_cast<size_t>(w);
    const uint8_t* r1 = r0 + w;
    uint8_t* o = out.data() + static_cast<size_t>(y) * static_cast<size_t>(out_w);
    for (int x = 0; x < out_w; ++x)
      o[x] = static_cast<uint8_t>((r0[2 * x] + r0[2 * x + 1] + r1[2 * x] + r1[2 * x + 1] + 2) / 4);
  }
  return out;
}

// Inflates the IDAT stream into a 64 KiB scratch buffer, counting: a PNG whose pixel data
// inflates to more than its header needs is refused before stb_image, which would grow its
// output buffer to whatever the stream holds. Malformed chunk structure is left to
// stb_image.
Status CheckPngInflatedSize(const uint8_t* d, size_t n) {
  const uint64_t limit = PngRawBytes(d, n);
  if (limit == 0) return Status::Ok();
  z_stream z{};
  if (inflateInit(&z) != Z_OK) return Unreadable("zlib init failed");
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&z, inflateEnd);
  static thread_local uint8_t scratch[64 * 1024];
  uint64_t produced = 0;
  bool ended = false;
  for (size_t off = 8; off + 12 <= n && !ended;) {
    const uint32_t len = Be32(d + off);
    if (len > n - off - 12) break;
    const uint8_t* type = d + off + 4;
    const uint8_t* data = d + off + 8;
    off += 12 + static_cast<size_t>(len);
    if (std::memcmp(type, "IEND", 4) == 0) break;
    if (std::memcmp(type, "IDAT", 4) != 0) continue;
    z.next_in = const_cast<Bytef*>(data);
    z.avail_in = len;
    while (z.avail_in > 0 && !ended) {
      z.next_out = scratch;
      z.avail_out = sizeof scratch;
      const int rc = inflate(&z, Z_NO_FLUSH);
      produced += sizeof scratch - z.avail_out;
      if (produced > limit) {
        return TooLarge("the PNG's pixel data inflates to more than its header's " +
                        std::to_string(limit) + " bytes");
      }
      if (rc == Z_STREAM_END)
        ended = true;
      else if (rc != Z_OK)
        return Status::Ok();  // corrupt: stb_image reports it
    }
  }
  return Status::Ok();
}

}  // namespace

// Fills *h with what the header declares as soon as it is read, then checks the limits.
static Status ReadHeaderInto(const uint8_t* data, size_t size, ImageHeader& h) {
  if (data == nullptr || size == 0) return Unreadable("empty image");
  if (size > kMaxImageFileBytes) return TooLarge("the file is larger than 64 MiB");
  if (size > static_cast<size_t>(INT32_MAX)) return TooLarge("the file is too large");
  if (!IsPng(data, size) && !IsJpeg(data, size) && !IsPnm(data, size)) {
    return Unreadable("not a PNG, JPEG or binary PNM image");
  }
  const int len = static_cast<int>(size);
  // PNG and PNM: the declared size from the header itself first, so that an image too large
  // for stb_image's own header reader is still refused as oversized, naming its size.
  ImageHeader declared;
  if ((IsPng(data, size) && PngDeclared(data, size, declared)) ||
      (IsPnm(data, size) && PnmDeclared(data, size, declared))) {
    const unsigned __int128 bytes = static_cast<unsigned __int128>(declared.width) *
                                    static_cast<unsigned>(declared.height) *
                                    static_cast<unsigned>(declared.channels) *
                                    static_cast<unsigned>(declared.bytes_per_channel);
    if (bytes > static_cast<unsigned __int128>(kMaxDecodedImageBytes)) {
      h = declared;
      h.decoded_bytes = bytes > static_cast<unsigned __int128>(INT64_MAX)
                            ? INT64_MAX
                            : static_cast<int64_t>(bytes);
      return TooLarge(std::to_string(h.width) + "x" + std::to_string(h.height) + ", " +
                      std::to_string(h.channels) + " channel(s) of " +
                      std::to_string(h.bytes_per_channel) + " byte(s) decode to " +
                      std::to_string(h.decoded_bytes) + " bytes, over the limit of " +
                      std::to_string(kMaxDecodedImageBytes));
    }
  }
  if (!stbi_info_from_memory(data, len, &h.width, &h.height, &h.channels)) {
    return Unreadable(std::string("not an image: ") + stbi_failure_reason());
  }
  h.bytes_per_channel = stbi_is_16_bit_from_memory(data, len) ? 2 : 1;
  if (h.width <= 0 || h.height <= 0 || h.channels <= 0 || h.channels > 4) {
    return Unreadable("image dimensions out of range");
  }
  // A header may declare up to 2^31 × 2^31 pixels: the product is taken in 128 bits, where
  // it cannot overflow, and capped before it is kept.
  const unsigned __int128 decoded =
      static_cast<unsigned __int128>(h.width) * static_cast<unsigned>(h.height) *
      static_cast<unsigned>(h.channels) * static_cast<unsigned>(h.bytes_per_channel);
  h.decoded_bytes = decoded > static_cast<unsigned __int128>(INT64_MAX)
                        ? INT64_MAX
                        : static_cast<int64_t>(decoded);
  if (h.decoded_bytes > kMaxDecodedImageBytes) {
    return TooLarge(std::to_string(h.width) + "x" + std::to_string(h.height) + ", " +
                    std::to_string(h.channels) + " channel(s) of " +
                    std::to_string(h.bytes_per_channel) + " byte(s) decode to " +
                    std::to_string(h.decoded_bytes) + " bytes, over the limit of " +
                    std::to_string(kMaxDecodedImageBytes));
  }
  return Status::Ok();
}

Result<ImageHeader> ReadImageHeader(const uint8_t* data, size_t size) {
  ImageHeader h;
  if (Status s = ReadHeaderInto(data, size, h); !s.ok()) return s;
  return h;
}

Result<std::vector<DecodedCode>> DecodeImage(const uint8_t* luminance, int width, int height) {
  if (luminance == nullptr) return Status::Error(ErrorCode::kInvalidArgument, "no image data");
  if (width <= 0 || height <= 0 ||
      static_cast<int64_t>(width) * static_cast<int64_t>(height) > kMaxImagePixels)
    return Status::Error(ErrorCode::kInvalidArgument, "image dimensions out of range");
  static const ZXing::DecodeHints kHints = Hints();
  const ZXing::ImageView view(luminance, width, height, ZXing::ImageFormat::Lum);
  std::vector<DecodedCode> codes;
  for (const ZXing::Result& r : ZXing::ReadBarcodes(view, kHints)) {
    if (!r.isValid()) continue;
    codes.push_back(DecodedCode{r.text(), r.symbologyIdentifier(), ZXing::ToString(r.format())});
  }
  return codes;
}

Result<std::vector<DecodedCode>> DecodeImageBytes(const uint8_t* data, size_t size,
                                                  ImageHeader* header) {
  // The header first: nothing is allocated for an image over the limits.
  ImageHeader local;
  ImageHeader& h = header != nullptr ? *header : local;
  if (Status s = ReadHeaderInto(data, size, h); !s.ok()) return s;
  if (IsPng(data, size)) {
    if (Status s = CheckPngInflatedSize(data, size); !s.ok()) return s;
  }
  if (IsPnm(data, size)) {
    // The pixel data must all be there: stb_image's PNM reader does not stop at the end of
    // a short buffer (found by fuzz_image_bytes: a 16-bit header with no pixels).
    const std::optional<PnmHeader> pnm = ParsePnmHeader(data, size);
    if (!pnm) return Unreadable("a PNM header that does not parse");
    const size_t header_bytes = pnm->bytes;
    if (size - header_bytes < static_cast<uint64_t>(h.decoded_bytes))
      return Unreadable("a truncated PNM: " + std::to_string(size - header_bytes) +
                        " bytes of pixel data, " + std::to_string(h.decoded_bytes) + " declared");
  }
  const int len = static_cast<int>(size);
  int w = 0, hh = 0, channels = 0;
  std::unique_ptr<uint8_t, void (*)(void*)> pixels(
      stbi_load_from_memory(data, len, &w, &hh, &channels, 1), stbi_image_free);
  if (!pixels)
    return Status::Error(ErrorCode::kUnreadableImage,
                         std::string("corrupt image: ") + stbi_failure_reason());
  // The decoder's dimensions are the header's (stb_image reads the same header); checked
  // again all the same, since everything below sizes its work by them.
  if (w != h.width || hh != h.height) return Unreadable("the image's size changed while decoding");
  if (static_cast<int64_t>(w) * hh <= kMaxImagePixels) return DecodeImage(pixels.get(), w, hh);
  // Larger than a camera frame (but within the byte limit): halved until it is one. A code
  // in such an image has modules many pixels wide, and the decoder's time stays bounded.
  std::vector<uint8_t> small;
  const uint8_t* src = pixels.get();
  int sw = w, sh = hh;
  while (static_cast<int64_t>(sw) * sh > kMaxImagePixels) {
    int nw = 0, nh = 0;
    std::vector<uint8_t> next = HalveGray(src, sw, sh, nw, nh);
    small = std::move(next);
    src = small.data();
    sw = nw;
    sh = nh;
    if (src == small.data() && pixels) pixels.reset();  // the full image is no longer needed
  }
  if (sw <= 0 || sh <= 0) return std::vector<DecodedCode>{};
  return DecodeImage(src, sw, sh);
}

Result<std::vector<DecodedCode>> DecodeImageFile(const std::string& path, ImageHeader* header) {
  auto bytes = ReadFileCapped(path, kMaxImageFileBytes);
  if (!bytes.ok()) {
    if (bytes.status().code() == ErrorCode::kFileTooLarge)
      return TooLarge(bytes.status().message());
    return bytes.status();  // not_found (taken away meanwhile) or io_error
  }
  if (bytes->empty()) return Status::Error(ErrorCode::kUnreadableImage, path + ": empty file");
  return DecodeImageBytes(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size(), header);
}

}  // namespace loyalty::drivers
