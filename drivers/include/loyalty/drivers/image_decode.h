// Barcode decoding from grayscale images: QR and Code 128 through ZXing-C++.
//
// The image source calls this for each file it picks up; a camera source calls
// DecodeImage() per frame. Stateless and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "loyalty/base/status.h"

namespace loyalty::drivers {

struct DecodedCode {
  std::string text;       // UTF-8 as ZXing decoded it
  std::string symbology;  // AIM id: "]Q1" for QR, "]C0" for Code 128, ...
  std::string format;     // "QRCode" | "Code128"
};

// Largest image accepted, in pixels (a 16-megapixel camera frame).
inline constexpr int64_t kMaxImagePixels = 16LL * 1000 * 1000;

// luminance: width*height bytes, row-major, one byte per pixel, no padding.
// Errors: "invalid_argument" for null data, non-positive or oversized dimensions.
// No code in the image is not an error: an empty vector.
Result<std::vector<DecodedCode>> DecodeImage(const uint8_t* luminance, int width, int height);

// PNG or JPEG (stb_image) or binary PGM (P5), decoded to grayscale, then DecodeImage().
// Errors: "not_found"/"io_error" for the file, "unreadable_image" for bytes that are not a
// supported image (corrupt, truncated, too large: files are capped at 64 MiB).
Result<std::vector<DecodedCode>> DecodeImageFile(const std::string& path);
Result<std::vector<DecodedCode>> DecodeImageBytes(const uint8_t* data, size_t size);

}  // namespace loyalty::drivers
