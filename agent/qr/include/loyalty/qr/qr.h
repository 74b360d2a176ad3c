// Enrolment QR codes: a payload (the join page's deep link with its signed claim) encoded as
// a QR symbol by ZXing-C++ and rendered as a PNG for the receipt or an SVG for the customer
// display (docs/enrolment-qr.md).
//
// Every function is pure and thread-safe: no I/O, no clock, no shared state. Refusals are a
// Status with ErrorCode::kInvalidArgument and a message naming the limit; nothing throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loyalty/base/status.h"

namespace loyalty::qr {

// Largest payload encoded, in bytes of UTF-8. A version 40 symbol holds 1,273 bytes at level
// H, so every payload up to this limit fits at every level.
inline constexpr size_t kMaxPayloadBytes = 1024;
// White modules around the symbol on each side, as ISO/IEC 18004 asks.
inline constexpr int kQuietZoneModules = 4;
// Pixels per module of a PNG (and the SVG's nominal width and height).
inline constexpr int kMinModulePixels = 1;
inline constexpr int kMaxModulePixels = 16;
inline constexpr int kDefaultModulePixels = 4;

// The four QR error correction levels; the share of the symbol that may be lost or damaged
// and still decode.
enum class ErrorCorrection : uint8_t {
  kLow = 0,       // L, ~7 %
  kMedium = 1,    // M, ~15 %: the default
  kQuartile = 2,  // Q, ~25 %
  kHigh = 3,      // H, ~30 %
};
// "L", "M", "Q", "H" (case-insensitive) → the level; nullopt for anything else.
std::optional<ErrorCorrection> ErrorCorrectionFromName(std::string_view name);
// "L", "M", "Q", "H"; "?" for a value outside the enum.
std::string_view ErrorCorrectionName(ErrorCorrection level);

struct Options {
  ErrorCorrection error_correction = ErrorCorrection::kMedium;
  int module_pixels = kDefaultModulePixels;  // kMinModulePixels..kMaxModulePixels
};

// A QR symbol's modules, without the quiet zone.
struct Symbol {
  int size = 0;               // modules per side: 21 (version 1) .. 177 (version 40)
  std::vector<uint8_t> dark;  // size × size, row-major; 1 = dark module, 0 = light
  bool Dark(int x, int y) const { return dark[static_cast<size_t>(y) * size + x] != 0; }
  int Version() const { return (size - 17) / 4; }
  // Modules per side with the quiet zone: size + 2 × kQuietZoneModules.
  int SideWithQuietZone() const { return size + 2 * kQuietZoneModules; }
};

// Checks a payload: not empty, at most kMaxPayloadBytes, valid UTF-8.
Status CheckPayload(std::string_view payload);
// Checks options: a known error correction level, module_pixels within its range.
Status CheckOptions(const Options& options);

// Encodes a payload as the smallest symbol that holds it at `level`. ASCII is encoded as is
// (numeric, alphanumeric or byte mode, no ECI, so every reader reads it); anything else is
// byte mode under ECI 26 (UTF-8), so readers do not guess the character set.
Result<Symbol> Encode(std::string_view payload, ErrorCorrection level = ErrorCorrection::kMedium);

// A 1-bit greyscale PNG (dark = black, light = white) of the symbol with its quiet zone,
// `module_pixels` pixels per module: SideWithQuietZone() × module_pixels pixels square.
Result<std::string> RenderPng(const Symbol& symbol, int module_pixels = kDefaultModulePixels);

// One <svg> element: viewBox in modules (quiet zone included), width and height of
// SideWithQuietZone() × module_pixels pixels (CSS may scale it), a white background, the
// dark modules as one <path> of horizontal runs, shape-rendering="crispEdges".
Result<std::string> RenderSvg(const Symbol& symbol, int module_pixels = kDefaultModulePixels);

// Encode() then RenderPng() / RenderSvg() with `options`.
Result<std::string> MakePng(std::string_view payload, const Options& options = {});
Result<std::string> MakeSvg(std::string_view payload, const Options& options = {});

}  // namespace loyalty::qr
