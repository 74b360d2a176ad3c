// ZXing-C++ 1.4 still returns std::wstring from Result::text() unless ZX_USE_UTF8 is set.
#define ZX_USE_UTF8 1
#include "loyalty/drivers/image_decode.h"

#include <ZXing/ReadBarcode.h>
#include <stb_image.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace loyalty::drivers {
namespace {

constexpr size_t kMaxImageFileBytes = 64u << 20;

ZXing::DecodeHints Hints() {
  // tryHarder + tryRotate: camera frames arrive at any angle and with noise; restricting
  // the formats keeps the time spent per frame to what the agent can use.
  return ZXing::DecodeHints()
      .setFormats(ZXing::BarcodeFormat::QRCode | ZXing::BarcodeFormat::Code128)
      .setTryHarder(true)
      .setTryRotate(true);
}

}  // namespace

Result<std::vector<DecodedCode>> DecodeImage(const uint8_t* luminance, int width, int height) {
  if (luminance == nullptr) return Status::Error("invalid_argument", "no image data");
  if (width <= 0 || height <= 0 ||
      static_cast<int64_t>(width) * static_cast<int64_t>(height) > kMaxImagePixels)
    return Status::Error("invalid_argument", "image dimensions out of range");
  static const ZXing::DecodeHints kHints = Hints();
  const ZXing::ImageView view(luminance, width, height, ZXing::ImageFormat::Lum);
  std::vector<DecodedCode> codes;
  for (const ZXing::Result& r : ZXing::ReadBarcodes(view, kHints)) {
    if (!r.isValid()) continue;
    codes.push_back(DecodedCode{r.text(), r.symbologyIdentifier(), ZXing::ToString(r.format())});
  }
  return codes;
}

Result<std::vector<DecodedCode>> DecodeImageBytes(const uint8_t* data, size_t size) {
  if (data == nullptr || size == 0 || size > kMaxImageFileBytes ||
      size > static_cast<size_t>(INT32_MAX))
    return Status::Error("unreadable_image", "empty or oversized image");
  const int len = static_cast<int>(size);
  int w = 0, h = 0, channels = 0;
  // Check the header's dimensions before stb allocates for them.
  if (!stbi_info_from_memory(data, len, &w, &h, &channels))
    return Status::Error("unreadable_image", std::string("not an image: ") + stbi_failure_reason());
  if (w <= 0 || h <= 0 || static_cast<int64_t>(w) * h > kMaxImagePixels)
    return Status::Error("unreadable_image", "image dimensions out of range");
  std::unique_ptr<uint8_t, void (*)(void*)> pixels(
      stbi_load_from_memory(data, len, &w, &h, &channels, 1), stbi_image_free);
  if (!pixels)
    return Status::Error("unreadable_image", std::string("corrupt image: ") + stbi_failure_reason());
  return DecodeImage(pixels.get(), w, h);
}

Result<std::vector<DecodedCode>> DecodeImageFile(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rbe"), std::fclose);
  if (!f) {
    return Status::Error(errno == ENOENT ? "not_found" : "io_error",
                         path + ": " + std::strerror(errno));
  }
  std::vector<uint8_t> bytes;
  uint8_t buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) {
    if (bytes.size() + n > kMaxImageFileBytes)
      return Status::Error("unreadable_image", path + ": larger than 64 MiB");
    bytes.insert(bytes.end(), buf, buf + n);
  }
  if (std::ferror(f.get())) return Status::Error("io_error", path + ": read failed");
  if (bytes.empty()) return Status::Error("unreadable_image", path + ": empty file");
  return DecodeImageBytes(bytes.data(), bytes.size());
}

}  // namespace loyalty::drivers
