// Pure scanner-protocol decoders: bytes in, complete reads out. No I/O, no threads, no
// clock of their own; the sources feed them and fuzzers and benchmarks drive them directly.
//
// Every decoder bounds what it keeps to kMaxScanBytes: a read that grows past it is not
// kept, and when its end arrives it comes out as one Frame with `overlong` set and no text.
// Thread-compatible: one instance per scanner, used from one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "loyalty/base/status.h"

namespace loyalty::drivers {

inline constexpr size_t kMaxScanBytes = 4096;

// One complete read as a scanner framed it, before prefix/suffix stripping, UTF-8 checks
// and debouncing (see ScanFilter).
struct Frame {
  std::string text;       // empty when overlong
  std::string symbology;  // AIM id ("]Q1") when the protocol reports one, else empty
  bool overlong = false;
};

// Counts of what a decoder threw away. All monotonic.
struct DecoderCounters {
  uint64_t reports = 0;             // reports / chunks fed
  uint64_t wrong_size = 0;          // reports of the wrong size (ignored)
  uint64_t unknown_usages = 0;      // keyboard: usage ids with no character (ignored)
  uint64_t rollover_reports = 0;    // keyboard: ErrorRollOver/POSTFail/ErrorUndefined reports
  uint64_t malformed = 0;           // HID POS: foreign report id or length out of range
  uint64_t overlong = 0;            // frames emitted with overlong set
  uint64_t discarded_partials = 0;  // half-finished reads dropped by DiscardPartial()
};

// ---------------------------------------------------------------------------------------
// Keyboard wedge: USB HID boot-keyboard input reports [mods][reserved][k1..k6].
//
// Keys newly present in a report (not held over from the previous one) are typed, in slot
// order, through a US layout: Shift (mods & 0x22) for upper case and symbols, keypad digits
// and operators, Ctrl+letter and Ctrl+[ \ ] ^ _ as the C0 control characters (GS1 group
// separators). The suffix key ends a read; the other of Enter/Tab types '\n'/'\t'.
// ErrorRollOver-style reports are ignored without changing the held-key state; unknown
// usages and reports that are not 8 bytes are counted and ignored.
enum class SuffixKey { kEnter, kTab };

class KeyboardReportDecoder {
 public:
  static constexpr size_t kReportSize = 8;

  explicit KeyboardReportDecoder(SuffixKey suffix = SuffixKey::kEnter) : suffix_(suffix) {}

  // Appends the reads this report completes (usually zero or one) to *out.
  void Feed(std::span<const uint8_t> report, std::vector<Frame>* out);

  bool has_partial() const { return !buffer_.empty() || overlong_; }
  // Drops a half-typed read and forgets held keys (device gone, partial timeout).
  void DiscardPartial();
  const DecoderCounters& counters() const { return counters_; }

 private:
  void Type(uint8_t usage, uint8_t mods, std::vector<Frame>* out);
  void Append(char c);

  SuffixKey suffix_;
  uint8_t held_[6] = {0, 0, 0, 0, 0, 0};
  std::string buffer_;
  bool overlong_ = false;
  DecoderCounters counters_;
};

// US-layout character for a keyboard usage id, or 0 when the usage types nothing printable
// (Enter/Tab are reported as '\n'/'\t'). Exposed for tests.
char KeyboardUsageToChar(uint8_t usage, bool shift);

// ---------------------------------------------------------------------------------------
// HID POS (usage page 0x8C) barcode scanner input reports.
//
// Offsets are bytes from the start of the report as read from the interrupt endpoint (the
// report id, when the device uses one, is byte 0). The default is the common 64-byte layout
// [0x02][len ≤ 56][3-byte AIM id][56 data][2 vendor][flags, bit 0 = more reports follow].
// report_size 0 (the default) takes reports of any size that holds every field (the USB
// source reads the endpoint's wMaxPacketSize); a fixed size rejects every other size.
inline constexpr int kMaxHidReportSize = 1024;

struct HidPosLayout {
  int report_size = 0;       // 0: any size ≥ MinReportSize(); else exactly this
  int report_id = 0x02;      // expected byte 0; -1 when the device sends no report id
  int length_offset = 1;     // one byte: number of data bytes in this report
  int symbology_offset = 2;  // -1 when the device reports no symbology
  int symbology_length = 3;
  int data_offset = 5;
  int data_len = 56;      // data bytes a report can hold
  int flags_offset = 63;  // -1 when every report is a complete read
  int continuation_mask = 0x01;

  // ok when every field fits inside report_size (or kMaxHidReportSize); else
  // "invalid_argument" naming the field.
  Status Validate() const;
  // The smallest report that holds every field.
  int MinReportSize() const;
};

class HidPosReassembler {
 public:
  // `layout` must have passed Validate(); an invalid layout makes every report malformed.
  explicit HidPosReassembler(HidPosLayout layout = {});

  void Feed(std::span<const uint8_t> report, std::vector<Frame>* out);

  bool has_partial() const { return in_progress_; }
  void DiscardPartial();
  const DecoderCounters& counters() const { return counters_; }

 private:
  HidPosLayout layout_;
  bool layout_ok_;
  int min_size_;
  bool in_progress_ = false;
  bool overlong_ = false;
  std::string buffer_;
  std::string symbology_;
  DecoderCounters counters_;
};

// ---------------------------------------------------------------------------------------
// Byte streams (serial, fifo): reads end at the terminator. A stray CR or LF left at
// either end of a read is trimmed (a scanner sending CRLF to a source configured for CR
// still yields clean reads) and reads that are empty after trimming are skipped.
enum class Terminator { kCR, kLF, kCRLF };

class LineFramer {
 public:
  explicit LineFramer(Terminator t) : terminator_(t) {}

  void Feed(std::span<const uint8_t> bytes, std::vector<Frame>* out);
  // End of stream (a fifo writer closed): a pending unterminated read is completed.
  void Flush(std::vector<Frame>* out);

  bool has_partial() const { return !buffer_.empty() || overlong_ || pending_cr_; }
  void DiscardPartial();
  const DecoderCounters& counters() const { return counters_; }

 private:
  void Emit(std::vector<Frame>* out);
  void Append(char c);

  Terminator terminator_;
  std::string buffer_;
  bool overlong_ = false;
  bool pending_cr_ = false;  // CRLF: a CR seen, waiting for LF
  DecoderCounters counters_;
};

// ---------------------------------------------------------------------------------------
// Debouncer: a read equal to the same scanner's previous read, less than window_ms after
// it, is dropped and restarts the window (cashiers re-trigger when the beep is late).
// Times are monotonic milliseconds supplied by the caller.
class Debouncer {
 public:
  explicit Debouncer(int64_t window_ms = 800) : window_ms_(window_ms) {}

  // True when the read should be delivered. Either way it becomes the scanner's last read.
  bool Admit(std::string_view scanner_id, std::string_view text, int64_t mono_ms);

 private:
  struct Last {
    std::string text;
    int64_t at_ms;
  };
  int64_t window_ms_;
  std::unordered_map<std::string, Last> last_;
};

}  // namespace loyalty::drivers
