// A reader of JSON text for the upload's fast path (upload_fast.cc): it drives a handler with
// nlohmann's SAX interface (start_object, key, string, number_unsigned, ...) without
// nlohmann's lexer, which copies every byte of every string one at a time, twice. It takes a
// strict subset of RFC 8259 and declines (returns false) everything else, leaving the text to
// the tree reader, which either reads it or refuses it with its own message:
//
//   - whitespace only as JSON has it (space, tab, LF, CR), and nothing after the top value;
//   - strings of printable ASCII and well-formed UTF-8 (the table of RFC 3629: no overlong
//     form, no surrogate, nothing past U+10FFFF), with the escapes \" \\ \/ \b \f \n \r \t;
//     a \u escape is declined (the terminal's writer emits one only for a control character);
//   - numbers as RFC 8259 has them: an integer of at most 18 digits as an integer, any
//     other (a fraction, an exponent, more digits, -0) as number_float when double holds
//     it, declined when it does not, too large or too small (Number, below: the upload's
//     handler reads no float);
//   - true, false and null;
//   - at most kMaxScanDepth open objects and arrays (the handler keeps the lower limit of
//     the protocol; this one only bounds the scanner's own stack).
//
// So whatever it reads to the end is valid JSON that nlohmann reads to the same events; the
// tests (tests/hq/upload_fast_test.cc, the scanner's events against nlohmann's and the
// upload read both ways) and the differential fuzz targets (fuzz_json_scan, fuzz_upload_fast)
// hold it to that.
#pragma once

#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace loyalty::sync::internal {

inline constexpr size_t kMaxScanDepth = 64;

template <typename Sax>
class JsonScanner {
 public:
  JsonScanner(std::string_view text, Sax* sax)
      : p_(text.data()), end_(text.data() + text.size()), sax_(sax) {}

  // True when the whole text was read and the handler took every event.
  bool Run() {
    Ws();
    for (;;) {
      if (!Value()) return false;
      // After a value: close what ends here, then the next value or the end of the text.
      for (;;) {
        Ws();
        if (stack_.empty()) return p_ == end_;
        if (p_ == end_) return false;
        const char c = *p_;
        if (c == ',') {
          ++p_;
          Ws();
          if (stack_.back() != '{') break;  // the next element: Value, above
          if (!Key()) return false;         // the next member, its value read
          continue;
        }
        if (c != (stack_.back() == '{' ? '}' : ']')) return false;
        ++p_;
        const bool object = stack_.back() == '{';
        stack_.pop_back();
        if (!(object ? sax_->end_object() : sax_->end_array())) return false;
      }
    }
  }

 private:
  static constexpr size_t kUnknownSize = static_cast<size_t>(-1);
  inline static const std::string kNoText;

  // Bytes a string takes as they are: printable ASCII but the quote and the backslash.
  static constexpr std::array<bool, 256> kPlain = [] {
    std::array<bool, 256> t{};
    for (int c = 0x20; c < 0x80; ++c) t[static_cast<size_t>(c)] = c != '"' && c != '\\';
    return t;
  }();

  void Ws() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  // One value. An object or array is opened and, when empty, closed at once; otherwise its
  // first member or element is read, and Run reads the rest and closes it.
  bool Value() {
    if (p_ == end_) return false;
    switch (*p_) {
      case '{':
      case '[': {
        const bool object = *p_ == '{';
        ++p_;
        if (stack_.size() >= kMaxScanDepth) return false;
        if (!(object ? sax_->start_object(kUnknownSize) : sax_->start_array(kUnknownSize)))
          return false;
        Ws();
        if (p_ != end_ && *p_ == (object ? '}' : ']')) {
          ++p_;
          return object ? sax_->end_object() : sax_->end_array();
        }
        stack_.push_back(object ? '{' : '[');
        return object ? Key() : Value();
      }
      case '"':
        return String() && sax_->string(buf_);
      case 't':
        return Literal("true") && sax_->boolean(true);
      case 'f':
        return Literal("false") && sax_->boolean(false);
      case 'n':
        return Literal("null") && sax_->null();
      default:
        return Number();
    }
  }

  // `"key"` `:`, the whitespace around it, then the member's value (Value).
  bool Key() {
    if (p_ == end_ || *p_ != '"' || !String() || !sax_->key(buf_)) return false;
    Ws();
    if (p_ == end_ || *p_ != ':') return false;
    ++p_;
    Ws();
    return Value();
  }

  bool Literal(std::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word)
      return false;
    p_ += word.size();
    return true;
  }

  // A number as RFC 8259 writes it. An integer of at most 18 digits (and not -0) is passed
  // with its value, as nlohmann does (number_unsigned, or number_integer when negative);
  // any other number as number_float, within double's range (nlohmann refuses past it),
  // which the upload's handler takes as "not an integer it reads" whatever the value:
  // ignored under an unknown key, declined under a known one.
  bool Number() {
    const char* const start = p_;
    const bool negative = *p_ == '-';
    if (negative) ++p_;
    if (p_ == end_ || !Digit(*p_)) return false;
    bool integer = true;
    uint64_t v = 0;
    if (*p_ == '0') {
      ++p_;
      if (p_ != end_ && Digit(*p_)) return false;  // a leading zero
    } else {
      int digits = 0;
      for (; p_ != end_ && Digit(*p_); ++p_) {
        if (++digits > 18) {
          integer = false;
        } else {
          v = v * 10 + static_cast<uint64_t>(*p_ - '0');
        }
      }
    }
    if (p_ != end_ && *p_ == '.') {
      ++p_;
      if (!Digits()) return false;
      integer = false;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!Digits()) return false;
      integer = false;
    }
    if (negative && v == 0) integer = false;  // -0
    if (!integer) {
      // nlohmann refuses a number past double's range ("number overflow"): declined, as is
      // one too small for it (nlohmann would read 0).
      double d = 0;
      const auto [end, ec] = std::from_chars(start, p_, d, std::chars_format::general);
      if (ec != std::errc() || end != p_) return false;
      return sax_->number_float(d, kNoText);
    }
    if (!negative) return sax_->number_unsigned(v);
    return sax_->number_integer(-static_cast<int64_t>(v));
  }
  static bool Digit(char c) { return c >= '0' && c <= '9'; }
  bool Digits() {  // one or more
    const char* from = p_;
    while (p_ != end_ && Digit(*p_)) ++p_;
    return p_ != from;
  }

  // The string at p_ (its opening quote) into buf_.
  bool String() {
    ++p_;
    buf_.clear();
    for (;;) {
      const char* run = p_;
      while (p_ != end_ && kPlain[static_cast<unsigned char>(*p_)]) ++p_;
      buf_.append(run, static_cast<size_t>(p_ - run));
      if (p_ == end_) return false;
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c == '\\') {
        if (end_ - p_ < 2) return false;
        char out;
        switch (p_[1]) {
          case '"':
            out = '"';
            break;
          case '\\':
            out = '\\';
            break;
          case '/':
            out = '/';
            break;
          case 'b':
            out = '\b';
            break;
          case 'f':
            out = '\f';
            break;
          case 'n':
            out = '\n';
            break;
          case 'r':
            out = '\r';
            break;
          case 't':
            out = '\t';
            break;
          default:
            return false;  // \u, or not an escape at all
        }
        buf_.push_back(out);
        p_ += 2;
        continue;
      }
      if (c < 0x80) return false;  // a control character
      const size_t n = Utf8Length();
      if (n == 0) return false;
      buf_.append(p_, n);
      p_ += n;
    }
  }

  // The length of the well-formed UTF-8 sequence of two to four bytes at p_, or 0.
  size_t Utf8Length() const {
    const auto b = [&](size_t i) { return static_cast<unsigned char>(p_[i]); };
    const size_t left = static_cast<size_t>(end_ - p_);
    const auto in = [](unsigned char x, unsigned char lo, unsigned char hi) {
      return x >= lo && x <= hi;
    };
    const unsigned char c = b(0);
    if (in(c, 0xc2, 0xdf)) return left >= 2 && in(b(1), 0x80, 0xbf) ? 2 : 0;
    if (in(c, 0xe0, 0xef)) {
      if (left < 3) return 0;
      const unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
      return in(b(1), lo, hi) && in(b(2), 0x80, 0xbf) ? 3 : 0;
    }
    if (in(c, 0xf0, 0xf4)) {
      if (left < 4) return 0;
      const unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
      return in(b(1), lo, hi) && in(b(2), 0x80, 0xbf) && in(b(3), 0x80, 0xbf) ? 4 : 0;
    }
    return 0;
  }

  const char* p_;
  const char* const end_;
  Sax* sax_;
  std::vector<char> stack_;  // '{' or '[' for each open container
  std::string buf_;
};

}  // namespace loyalty::sync::internal
