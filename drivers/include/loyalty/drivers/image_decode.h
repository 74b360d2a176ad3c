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

// Largest image DecodeImage() takes, in pixels (a 16-megapixel camera frame). A file whose
// image is larger but within kMaxDecodedImageBytes is halved in each dimension until it
// fits, not refused: the contract's only limit is the decoded size.
inline constexpr int64_t kMaxImagePixels = 16LL * 1000 * 1000;

// Largest decoded image accepted, in bytes: width × height × channels × bytes per channel
// as the file's header declares (operations.md, "Scanners"). Checked before decoding.
inline constexpr int64_t kMaxDecodedImageBytes = 64LL << 20;
// Largest image file read.
inline constexpr size_t kMaxImageFileBytes = 64u << 20;

// What an image file's header declares.
struct ImageHeader {
  int width = 0, height = 0;
  int channels = 0;           // after palette expansion (stb_image's count)
  int bytes_per_channel = 0;  // 1 or 2 (16-bit PNG and PNM)
  int64_t decoded_bytes = 0;  // width × height × channels × bytes_per_channel
};

// Reads the header of a PNG, JPEG or binary PNM (P5/P6) without decoding it. Errors:
// "unreadable_image" (not one of those formats, a corrupt header), "image_too_large"
// (decoded_bytes > kMaxDecodedImageBytes, whatever the size: a PNG or PNM header is read
// here, so one too large for stb_image's header reader is still "image_too_large").
Result<ImageHeader> ReadImageHeader(const uint8_t* data, size_t size);

// luminance: width*height bytes, row-major, one byte per pixel, no padding.
// Errors: "invalid_argument" for null data, non-positive or oversized dimensions.
// No code in the image is not an error: an empty vector.
Result<std::vector<DecodedCode>> DecodeImage(const uint8_t* luminance, int width, int height);

// PNG or JPEG (stb_image) or binary PNM (P5/P6), decoded to grayscale, then DecodeImage().
// ReadImageHeader() comes first: an image whose declared decoded size is over the limit is
// refused before anything is allocated for it. A PNG whose compressed pixel data inflates
// to more than its header's dimensions need (a header that lies) is refused too, found by
// inflating into a small scratch buffer before stb_image decodes it; stb_image's own
// limits (STBI_MAX_DIMENSIONS) apply as well. Errors: "not_found"/"io_error" for the file,
// "image_too_large" (header or data over the limits above; files over kMaxImageFileBytes),
// "unreadable_image" for bytes that are not a supported image (corrupt, truncated).
// When `header` is not null it receives what the header declared (when it could be read).
Result<std::vector<DecodedCode>> DecodeImageFile(const std::string& path,
                                                 ImageHeader* header = nullptr);
Result<std::vector<DecodedCode>> DecodeImageBytes(const uint8_t* data, size_t size,
                                                  ImageHeader* header = nullptr);

}  // namespace loyalty::drivers
