// Payload and option checks, and the symbol from ZXing-C++'s writer.
#include <ZXing/BarcodeFormat.h>
#include <ZXing/BitMatrix.h>
#include <ZXing/CharacterSet.h>
#include <ZXing/MultiFormatWriter.h>

#include <exception>

#include "loyalty/base/encoding.h"
#include "loyalty/qr/qr.h"
#include "qr_internal.h"

namespace loyalty::qr {
namespace {

Status Invalid(std::string message) {
  return Status::Error(ErrorCode::kInvalidArgument, std::move(message));
}

bool IsAscii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

// MultiFormatWriter's error correction scale is 0..8 for every 2-D format; QR takes
// (level - 1) / 2 of it, so 1 is L, 3 is M, 5 is Q and 7 is H.
int WriterEccLevel(ErrorCorrection level) { return 1 + 2 * static_cast<int>(level); }

}  // namespace

std::optional<ErrorCorrection> ErrorCorrectionFromName(std::string_view name) {
  if (name.size() != 1) return std::nullopt;
  switch (name[0]) {
    case 'L':
    case 'l':
      return ErrorCorrection::kLow;
    case 'M':
    case 'm':
      return ErrorCorrection::kMedium;
    case 'Q':
    case 'q':
      return ErrorCorrection::kQuartile;
    case 'H':
    case 'h':
      return ErrorCorrection::kHigh;
    default:
      return std::nullopt;
  }
}

std::string_view ErrorCorrectionName(ErrorCorrection level) {
  switch (level) {
    case ErrorCorrection::kLow:
      return "L";
    case ErrorCorrection::kMedium:
      return "M";
    case ErrorCorrection::kQuartile:
      return "Q";
    case ErrorCorrection::kHigh:
      return "H";
  }
  return "?";
}

Status CheckPayload(std::string_view payload) {
  if (payload.empty()) return Invalid("qr payload is empty");
  if (payload.size() > kMaxPayloadBytes) {
    return Invalid("qr payload is " + std::to_string(payload.size()) + " bytes, more than " +
                   std::to_string(kMaxPayloadBytes));
  }
  if (!IsValidUtf8(payload)) return Invalid("qr payload is not valid UTF-8");
  return Status::Ok();
}

Status CheckErrorCorrection(ErrorCorrection level) {
  if (static_cast<int>(level) > static_cast<int>(ErrorCorrection::kHigh)) {
    return Invalid("qr error correction must be L, M, Q or H, got " +
                   std::to_string(static_cast<int>(level)));
  }
  return Status::Ok();
}

Status CheckModulePixels(int module_pixels) {
  if (module_pixels < kMinModulePixels || module_pixels > kMaxModulePixels) {
    return Invalid("qr module_pixels must be " + std::to_string(kMinModulePixels) + ".." +
                   std::to_string(kMaxModulePixels) + ", got " + std::to_string(module_pixels));
  }
  return Status::Ok();
}

Status CheckSymbol(const Symbol& symbol) {
  if (symbol.size < 21 || symbol.size > 177 || (symbol.size - 17) % 4 != 0 ||
      symbol.dark.size() != static_cast<size_t>(symbol.size) * symbol.size) {
    return Invalid("qr symbol of " + std::to_string(symbol.size) + " modules and " +
                   std::to_string(symbol.dark.size()) + " cells is not a QR symbol");
  }
  return Status::Ok();
}

Status CheckOptions(const Options& options) {
  if (Status s = CheckErrorCorrection(options.error_correction); !s.ok()) return s;
  return CheckModulePixels(options.module_pixels);
}

Result<Symbol> Encode(std::string_view payload, ErrorCorrection level) {
  if (Status s = CheckPayload(payload); !s.ok()) return s;
  if (Status s = CheckErrorCorrection(level); !s.ok()) return s;
  try {
    ZXing::MultiFormatWriter writer(ZXing::BarcodeFormat::QRCode);
    // No margin and no requested size: the matrix is the symbol, one cell per module; the
    // renderers add the quiet zone.
    writer.setMargin(0).setEccLevel(WriterEccLevel(level));
    // ASCII needs no ECI (ISO-8859-1, the default, contains it); without an explicit
    // character set the writer refuses anything beyond ISO-8859-1 outright.
    if (!IsAscii(payload)) writer.setEncoding(ZXing::CharacterSet::UTF8);
    const ZXing::BitMatrix m = writer.encode(std::string(payload), 0, 0);
    Symbol symbol;
    symbol.size = m.width();
    if (m.height() != symbol.size) {
      return Status::Error(ErrorCode::kInternal, "qr encoder returned a matrix that is not square");
    }
    symbol.dark.resize(static_cast<size_t>(symbol.size) * symbol.size);
    size_t i = 0;
    for (int y = 0; y < symbol.size; ++y) {
      for (int x = 0; x < symbol.size; ++x) symbol.dark[i++] = m.get(x, y) ? 1 : 0;
    }
    if (Status s = CheckSymbol(symbol); !s.ok()) {
      return Status::Error(ErrorCode::kInternal, "qr encoder: " + s.message());
    }
    return symbol;
  } catch (const std::exception& e) {
    // Within the payload limit every level fits; this is the encoder failing.
    return Status::Error(ErrorCode::kInternal, std::string("qr encoder: ") + e.what());
  }
}

Result<std::string> MakePng(std::string_view payload, const Options& options) {
  if (Status s = CheckOptions(options); !s.ok()) return s;
  Result<Symbol> symbol = Encode(payload, options.error_correction);
  if (!symbol.ok()) return symbol.status();
  return RenderPng(*symbol, options.module_pixels);
}

Result<std::string> MakeSvg(std::string_view payload, const Options& options) {
  if (Status s = CheckOptions(options); !s.ok()) return s;
  Result<Symbol> symbol = Encode(payload, options.error_correction);
  if (!symbol.ok()) return symbol.status();
  return RenderSvg(*symbol, options.module_pixels);
}

}  // namespace loyalty::qr
