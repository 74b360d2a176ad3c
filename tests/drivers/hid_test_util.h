// Test helpers: typing text as a scanner does, independently of the decoder's own table.
#pragma once

#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace loyalty::drivers::testing {

using Report = std::vector<uint8_t>;

// (usage, shift) for the characters the tests type, US layout.
inline std::pair<uint8_t, bool> UsageFor(char c) {
  if (c >= 'a' && c <= 'z') return {static_cast<uint8_t>(0x04 + (c - 'a')), false};
  if (c >= 'A' && c <= 'Z') return {static_cast<uint8_t>(0x04 + (c - 'A')), true};
  if (c >= '1' && c <= '9') return {static_cast<uint8_t>(0x1E + (c - '1')), false};
  switch (c) {
    case '0':
      return {0x27, false};
    case '-':
      return {0x2D, false};
    case '_':
      return {0x2D, true};
    case ':':
      return {0x33, true};
    case ';':
      return {0x33, false};
    case '.':
      return {0x37, false};
    case '/':
      return {0x38, false};
    case ' ':
      return {0x2C, false};
    case '!':
      return {0x1E, true};
    case '?':
      return {0x38, true};
    case '=':
      return {0x2E, false};
    case '+':
      return {0x2E, true};
  }
  throw std::invalid_argument(std::string("no usage for ") + c);
}

inline Report KeyReport(uint8_t mods, uint8_t key) { return {mods, 0, key, 0, 0, 0, 0, 0}; }
inline Report ReleaseReport() { return Report(8, 0); }

// Press and release per character, then the suffix key (0x28 Enter, 0x2B Tab, 0 = none).
inline std::vector<Report> TypeReports(const std::string& text, uint8_t suffix_usage = 0x28) {
  std::vector<Report> out;
  for (char c : text) {
    auto [usage, shift] = UsageFor(c);
    out.push_back(KeyReport(shift ? 0x02 : 0x00, usage));
    out.push_back(ReleaseReport());
  }
  if (suffix_usage != 0) {
    out.push_back(KeyReport(0, suffix_usage));
    out.push_back(ReleaseReport());
  }
  return out;
}

// A well-formed-looking LM1 member code: "LM1:" + 238 base64url characters, with upper
// and lower case, '_' and '-' guaranteed present.
inline std::string MakeLm1Code(uint32_t seed = 7) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::mt19937 rng(seed);
  std::string body;
  for (int i = 0; i < 238; ++i) body.push_back(kAlphabet[rng() % 64]);
  body[3] = '_';
  body[10] = '-';
  body[20] = 'Q';
  body[21] = 'q';
  body[237] = 'A';  // canonical last character for 178 bytes (low bits zero)
  return "LM1:" + body;
}

// HID POS 64-byte reports in the common layout carrying `payload`.
inline std::vector<Report> HidPosReports(const std::string& payload, const std::string& aim) {
  std::vector<Report> out;
  size_t off = 0;
  do {
    const size_t n = std::min<size_t>(56, payload.size() - off);
    Report r(64, 0);
    r[0] = 0x02;
    r[1] = static_cast<uint8_t>(n);
    for (size_t i = 0; i < aim.size() && i < 3; ++i) r[2 + i] = static_cast<uint8_t>(aim[i]);
    for (size_t i = 0; i < n; ++i) r[5 + i] = static_cast<uint8_t>(payload[off + i]);
    off += n;
    r[63] = off < payload.size() ? 0x01 : 0x00;
    out.push_back(std::move(r));
  } while (off < payload.size());
  return out;
}

}  // namespace loyalty::drivers::testing
