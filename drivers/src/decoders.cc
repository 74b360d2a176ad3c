#include "loyalty/drivers/decoders.h"

#include <algorithm>
#include <string>

namespace loyalty::drivers {
namespace {

constexpr uint8_t kUsageErrorRollOver = 0x01;
constexpr uint8_t kUsagePostFail = 0x02;
constexpr uint8_t kUsageErrorUndefined = 0x03;
constexpr uint8_t kUsageEnter = 0x28;
constexpr uint8_t kUsageTab = 0x2B;
constexpr uint8_t kUsageKeypadEnter = 0x58;
constexpr uint8_t kModShift = 0x22;  // left | right shift
constexpr uint8_t kModCtrl = 0x11;   // left | right control

}  // namespace

char KeyboardUsageToChar(uint8_t usage, bool shift) {
  if (usage >= 0x04 && usage <= 0x1D) {
    char c = static_cast<char>('a' + (usage - 0x04));
    return shift ? static_cast<char>(c - 'a' + 'A') : c;
  }
  if (usage >= 0x1E && usage <= 0x27) {
    static constexpr char kDigits[] = "1234567890";
    static constexpr char kShifted[] = "!@#$%^&*()";
    return shift ? kShifted[usage - 0x1E] : kDigits[usage - 0x1E];
  }
  if (usage >= 0x2D && usage <= 0x38) {
    // - = [ ] \ (non-US #) ; ' ` , . /
    static constexpr char kPlain[] = "-=[]\\\\;'`,./";
    static constexpr char kShifted[] = "_+{}||:\"~<>?";
    return shift ? kShifted[usage - 0x2D] : kPlain[usage - 0x2D];
  }
  if (usage >= 0x54 && usage <= 0x63) {
    // Keypad / * - + Enter 1..9 0 . ; a scanner's keypad digits do not depend on NumLock.
    static constexpr char kKeypad[] = "/*-+\n1234567890.";
    return kKeypad[usage - 0x54];
  }
  switch (usage) {
    case kUsageEnter:
      return '\n';
    case kUsageTab:
      return '\t';
    case 0x2C:
      return ' ';
    case 0x64:
      return shift ? '|' : '\\';  // non-US backslash
    case 0x67:
      return '=';  // keypad =
    default:
      return 0;
  }
}

// ---------------------------------------------------------------------------------------

void KeyboardReportDecoder::Feed(std::span<const uint8_t> report, std::vector<Frame>* out) {
  ++counters_.reports;
  if (report.size() != kReportSize) {
    ++counters_.wrong_size;
    return;
  }
  const uint8_t mods = report[0];
  const uint8_t* keys = report.data() + 2;
  // In a rollover report every slot holds the error usage and says nothing about which
  // keys are down: keep the previous state so the keys still held are not typed again.
  for (int i = 0; i < 6; ++i) {
    if (keys[i] == kUsageErrorRollOver || keys[i] == kUsagePostFail ||
        keys[i] == kUsageErrorUndefined) {
      ++counters_.rollover_reports;
      return;
    }
  }
  for (int i = 0; i < 6; ++i) {
    const uint8_t k = keys[i];
    if (k == 0) continue;
    if (std::find(std::begin(held_), std::end(held_), k) != std::end(held_)) continue;
    // A key listed twice in one report is typed once.
    if (std::find(keys, keys + i, k) != keys + i) continue;
    Type(k, mods, out);
  }
  std::copy(keys, keys + 6, held_);
}

void KeyboardReportDecoder::Type(uint8_t usage, uint8_t mods, std::vector<Frame>* out) {
  const bool is_enter = usage == kUsageEnter || usage == kUsageKeypadEnter;
  const bool is_tab = usage == kUsageTab;
  if ((suffix_ == SuffixKey::kEnter && is_enter) || (suffix_ == SuffixKey::kTab && is_tab)) {
    Frame f;
    if (overlong_) {
      f.overlong = true;
      ++counters_.overlong;
    } else {
      f.text = std::move(buffer_);
    }
    buffer_.clear();
    overlong_ = false;
    if (f.overlong || !f.text.empty()) out->push_back(std::move(f));
    return;
  }
  if (usage >= 0xE0 && usage <= 0xE7) return;  // a modifier listed as a key: not typed
  if (mods & kModCtrl) {
    // Ctrl+letter and Ctrl+[ \ ] are how wedge scanners type C0 controls (GS = Ctrl+]).
    if (usage >= 0x04 && usage <= 0x1D) return Append(static_cast<char>(usage - 0x04 + 1));
    if (usage == 0x2F) return Append(0x1B);                        // Ctrl+[ = ESC
    if (usage == 0x31) return Append(0x1C);                        // Ctrl+\ = FS
    if (usage == 0x30) return Append(0x1D);                        // Ctrl+] = GS
    if (usage == 0x23 && (mods & kModShift)) return Append(0x1E);  // Ctrl+^ = RS
    if (usage == 0x2D && (mods & kModShift)) return Append(0x1F);  // Ctrl+_ = US
  }
  const char c = KeyboardUsageToChar(usage, (mods & kModShift) != 0);
  if (c == 0) {
    ++counters_.unknown_usages;
    return;
  }
  Append(c);
}

void KeyboardReportDecoder::Append(char c) {
  if (overlong_) return;
  if (buffer_.size() >= kMaxScanBytes) {
    overlong_ = true;
    buffer_.clear();
    buffer_.shrink_to_fit();
    return;
  }
  buffer_.push_back(c);
}

void KeyboardReportDecoder::DiscardPartial() {
  if (has_partial()) ++counters_.discarded_partials;
  buffer_.clear();
  overlong_ = false;
  std::fill(std::begin(held_), std::end(held_), 0);
}

// ---------------------------------------------------------------------------------------

Status HidPosLayout::Validate() const {
  auto bad = [](const char* field) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         std::string("hid_pos.") + field + " out of range");
  };
  if (report_size != 0 && (report_size < 2 || report_size > kMaxHidReportSize))
    return bad("report_size");
  const int limit = report_size != 0 ? report_size : kMaxHidReportSize;
  if (report_id < -1 || report_id > 255) return bad("report_id");
  if (length_offset < 0 || length_offset >= limit) return bad("length_offset");
  if (symbology_offset >= 0) {
    if (symbology_length < 1 || symbology_length > 8 || symbology_offset + symbology_length > limit)
      return bad("symbology_offset");
  } else if (symbology_offset != -1) {
    return bad("symbology_offset");
  }
  if (data_offset < 0 || data_offset >= limit) return bad("data_offset");
  if (data_len < 1 || data_offset + data_len > limit) return bad("data_len");
  if (flags_offset < -1 || flags_offset >= limit) return bad("flags_offset");
  if (flags_offset >= 0 && (continuation_mask < 1 || continuation_mask > 255))
    return bad("continuation_mask");
  // With a report id, byte 0 is the id and cannot also be the length or the data.
  if (report_id >= 0 && (length_offset == 0 || data_offset == 0)) return bad("report_id");
  return Status::Ok();
}

int HidPosLayout::MinReportSize() const {
  int n = std::max(length_offset + 1, data_offset + data_len);
  if (symbology_offset >= 0) n = std::max(n, symbology_offset + symbology_length);
  if (flags_offset >= 0) n = std::max(n, flags_offset + 1);
  if (report_id >= 0) n = std::max(n, 1);
  return n;
}

HidPosReassembler::HidPosReassembler(HidPosLayout layout)
    : layout_(layout), layout_ok_(layout.Validate().ok()), min_size_(layout.MinReportSize()) {}

void HidPosReassembler::Feed(std::span<const uint8_t> report, std::vector<Frame>* out) {
  ++counters_.reports;
  const int size = static_cast<int>(std::min<size_t>(report.size(), kMaxHidReportSize + 1));
  if (layout_.report_size != 0 ? size != layout_.report_size
                               : (size < min_size_ || size > kMaxHidReportSize)) {
    ++counters_.wrong_size;
    return;
  }
  if (!layout_ok_ || (layout_.report_id >= 0 && report[0] != layout_.report_id)) {
    ++counters_.malformed;
    return;
  }
  const int len = report[layout_.length_offset];
  if (len > layout_.data_len) {
    // A length we cannot trust makes the whole read untrustworthy.
    ++counters_.malformed;
    if (in_progress_) ++counters_.discarded_partials;
    in_progress_ = false;
    overlong_ = false;
    buffer_.clear();
    return;
  }
  if (!in_progress_) {
    in_progress_ = true;
    overlong_ = false;
    buffer_.clear();
    symbology_.clear();
    if (layout_.symbology_offset >= 0) {
      // AIM ids are printable ASCII; devices pad unused bytes with NUL.
      for (int i = 0; i < layout_.symbology_length; ++i) {
        const uint8_t c = report[layout_.symbology_offset + i];
        if (c == 0) break;
        if (c < 0x20 || c > 0x7E) {
          symbology_.clear();
          break;
        }
        symbology_.push_back(static_cast<char>(c));
      }
    }
  }
  if (!overlong_) {
    if (buffer_.size() + len > kMaxScanBytes) {
      overlong_ = true;
      buffer_.clear();
      buffer_.shrink_to_fit();
    } else {
      buffer_.append(reinterpret_cast<const char*>(report.data() + layout_.data_offset), len);
    }
  }
  const bool more =
      layout_.flags_offset >= 0 && (report[layout_.flags_offset] & layout_.continuation_mask);
  if (more) return;
  Frame f;
  f.symbology = std::move(symbology_);
  if (overlong_) {
    f.overlong = true;
    ++counters_.overlong;
  } else {
    f.text = std::move(buffer_);
  }
  in_progress_ = false;
  overlong_ = false;
  buffer_.clear();
  symbology_.clear();
  if (f.overlong || !f.text.empty()) out->push_back(std::move(f));
}

void HidPosReassembler::DiscardPartial() {
  if (in_progress_) ++counters_.discarded_partials;
  in_progress_ = false;
  overlong_ = false;
  buffer_.clear();
  symbology_.clear();
}

// ---------------------------------------------------------------------------------------

void LineFramer::Feed(std::span<const uint8_t> bytes, std::vector<Frame>* out) {
  ++counters_.reports;
  for (uint8_t b : bytes) {
    const char c = static_cast<char>(b);
    switch (terminator_) {
      case Terminator::kCR:
        if (c == '\r')
          Emit(out);
        else
          Append(c);
        break;
      case Terminator::kLF:
        if (c == '\n')
          Emit(out);
        else
          Append(c);
        break;
      case Terminator::kCRLF:
        if (pending_cr_) {
          pending_cr_ = false;
          if (c == '\n') {
            Emit(out);
            break;
          }
          Append('\r');
        }
        if (c == '\r')
          pending_cr_ = true;
        else
          Append(c);
        break;
    }
  }
}

void LineFramer::Flush(std::vector<Frame>* out) {
  if (pending_cr_) {
    pending_cr_ = false;
    Append('\r');
  }
  if (has_partial()) Emit(out);
}

void LineFramer::Append(char c) {
  if (overlong_) return;
  // Room for a CR or LF before and after the scan, which Emit trims (a CRLF line read with
  // LF as the terminator, an LF left over from CR): the limit is on the scan itself.
  if (buffer_.size() >= kMaxScanBytes + 2) {
    overlong_ = true;
    buffer_.clear();
    buffer_.shrink_to_fit();
    return;
  }
  buffer_.push_back(c);
}

void LineFramer::Emit(std::vector<Frame>* out) {
  Frame f;
  if (overlong_) {
    f.overlong = true;
    ++counters_.overlong;
    out->push_back(std::move(f));
  } else {
    size_t b = 0, e = buffer_.size();
    while (b < e && (buffer_[b] == '\r' || buffer_[b] == '\n')) ++b;
    while (e > b && (buffer_[e - 1] == '\r' || buffer_[e - 1] == '\n')) --e;
    if (e - b > kMaxScanBytes) {
      f.overlong = true;
      ++counters_.overlong;
      out->push_back(std::move(f));
    } else if (e > b) {
      f.text.assign(buffer_, b, e - b);
      out->push_back(std::move(f));
    }
  }
  buffer_.clear();
  overlong_ = false;
  pending_cr_ = false;
}

void LineFramer::DiscardPartial() {
  if (has_partial()) ++counters_.discarded_partials;
  buffer_.clear();
  overlong_ = false;
  pending_cr_ = false;
}

// ---------------------------------------------------------------------------------------

bool Debouncer::Admit(std::string_view scanner_id, std::string_view text, int64_t mono_ms) {
  auto it = last_.find(std::string(scanner_id));
  if (it == last_.end()) {
    last_.emplace(std::string(scanner_id), Last{std::string(text), mono_ms});
    return true;
  }
  Last& last = it->second;
  const bool repeat = last.text == text && mono_ms - last.at_ms < window_ms_;
  if (!repeat) last.text.assign(text);
  last.at_ms = mono_ms;  // a dropped repeat restarts the window
  return !repeat;
}

}  // namespace loyalty::drivers
