#include "loyalty/drivers/decoders.h"

#include <gtest/gtest.h>

#include <cstring>

#include "hid_test_util.h"

namespace loyalty::drivers {
namespace {

using testing::HidPosReports;
using testing::KeyReport;
using testing::MakeLm1Code;
using testing::ReleaseReport;
using testing::Report;
using testing::TypeReports;

std::vector<Frame> FeedAll(KeyboardReportDecoder& d, const std::vector<Report>& reports) {
  std::vector<Frame> out;
  for (const Report& r : reports) d.Feed(r, &out);
  return out;
}

// --- keyboard ------------------------------------------------------------------------

TEST(KeyboardReportDecoder, FullLm1CodeIsOneExactRead) {
  const std::string code = MakeLm1Code();
  ASSERT_EQ(code.size(), 242u);
  KeyboardReportDecoder d;
  auto frames = FeedAll(d, TypeReports(code));
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].text, code);
  EXPECT_FALSE(frames[0].overlong);
  EXPECT_FALSE(d.has_partial());
  EXPECT_EQ(d.counters().unknown_usages, 0u);
}

TEST(KeyboardReportDecoder, NothingBeforeTheSuffix) {
  KeyboardReportDecoder d;
  auto frames = FeedAll(d, TypeReports("abc", 0));
  EXPECT_TRUE(frames.empty());
  EXPECT_TRUE(d.has_partial());
  d.DiscardPartial();
  EXPECT_FALSE(d.has_partial());
  EXPECT_EQ(d.counters().discarded_partials, 1u);
  frames = FeedAll(d, TypeReports("xy"));
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].text, "xy");
}

TEST(KeyboardReportDecoder, ShiftedSymbolsAndBothShiftKeys) {
  KeyboardReportDecoder d;
  std::vector<Frame> out;
  d.Feed(KeyReport(0x20, 0x04), &out);  // right shift + a
  d.Feed(ReleaseReport(), &out);
  d.Feed(KeyReport(0x02, 0x1F), &out);  // @
  d.Feed(ReleaseReport(), &out);
  d.Feed(KeyReport(0x00, 0x38), &out);  // /
  d.Feed(ReleaseReport(), &out);
  d.Feed(KeyReport(0x02, 0x34), &out);  // "
  d.Feed(ReleaseReport(), &out);
  d.Feed(KeyReport(0x00, 0x2C), &out);  // space
  d.Feed(KeyReport(0x00, 0x28), &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, "A@/\" ");
}

TEST(KeyboardReportDecoder, TabSuffixEndsTheReadAndEnterIsText) {
  KeyboardReportDecoder d(SuffixKey::kTab);
  auto frames = FeedAll(d, TypeReports("AB", 0x28));  // Enter is not the suffix
  EXPECT_TRUE(frames.empty());
  frames = FeedAll(d, TypeReports("c", 0x2B));
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].text, "AB\nc");
}

TEST(KeyboardReportDecoder, EnterSuffixMakesTabText) {
  KeyboardReportDecoder d(SuffixKey::kEnter);
  auto frames = FeedAll(d, TypeReports("a", 0x2B));
  EXPECT_TRUE(frames.empty());
  frames = FeedAll(d, TypeReports("b", 0x58));  // keypad Enter ends too
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].text, "a\tb");
}

TEST(KeyboardReportDecoder, RepeatedCharacterNeedsRelease) {
  KeyboardReportDecoder d;
  auto frames = FeedAll(d, TypeReports("aab11"));
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].text, "aab11");

  // A key still held in the next report is not typed again.
  std::vector<Frame> out;
  d.Feed(KeyReport(0, 0x04), &out);
  d.Feed(KeyReport(0, 0x04), &out);
  d.Feed(KeyReport(0, 0x04), &out);
  d.Feed(ReleaseReport(), &out);
  d.Feed(KeyReport(0, 0x28), &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, "a");
}

TEST(KeyboardReportDecoder, NewKeysInOneReportTypedInSlotOrder) {
  KeyboardReportDecoder d;
  std::vector<Frame> out;
  d.Feed(Report{0, 0, 0x04, 0, 0, 0, 0, 0}, &out);        // a
  d.Feed(Report{0, 0, 0x04, 0x05, 0x06, 0, 0, 0}, &out);  // a held, b c new
  d.Feed(Report{0, 0, 0x05, 0x05, 0, 0, 0, 0}, &out);     // duplicate slot: nothing new
  d.Feed(Report{0, 0, 0x07, 0x28, 0, 0, 0, 0}, &out);     // d then Enter
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, "abcd");
}

TEST(KeyboardReportDecoder, ErrorRollOverIgnoredWithoutRetyping) {
  KeyboardReportDecoder d;
  std::vector<Frame> out;
  d.Feed(KeyReport(0, 0x04), &out);              // a down
  d.Feed(Report{0, 0, 1, 1, 1, 1, 1, 1}, &out);  // rollover: state unknown
  d.Feed(KeyReport(0, 0x04), &out);              // a still held: not typed again
  d.Feed(ReleaseReport(), &out);
  d.Feed(KeyReport(0, 0x28), &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, "a");
  EXPECT_EQ(d.counters().rollover_reports, 1u);
  EXPECT_EQ(d.counters().unknown_usages, 0u);
}

TEST(KeyboardReportDecoder, UnknownUsagesCountedAndIgnored) {
  KeyboardReportDecoder d;
  std::vector<Frame> out;
  for (uint8_t usage : {0x46, 0x29, 0x2A, 0x3A, 0xA5, 0xFF}) {  // PrintScreen Esc Bksp F1 ...
    d.Feed(KeyReport(0, usage), &out);
    d.Feed(ReleaseReport(), &out);
  }
  d.Feed(KeyReport(0xE1 & 0 /* no mods */, 0xE1), &out);  // a modifier in a key slot
  d.Feed(ReleaseReport(), &out);
  auto more = TypeReports("ok");
  for (auto& r : more) d.Feed(r, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, "ok");
  EXPECT_EQ(d.counters().unknown_usages, 6u);
}

TEST(KeyboardReportDecoder, WrongSizeReportsIgnored) {
  KeyboardReportDecoder d;
  std::vector<Frame> out;
  d.Feed(Report{0, 0, 0x04}, &out);
  d.Feed(Report(9, 0), &out);
  d.Feed(Report{}, &out);
  EXPECT_EQ(d.counters().wrong_size, 3u);
  EXPECT_FALSE(d.has_partial());
}

TEST(KeyboardReportDecoder, KeypadDigitsAndOperators) {
  KeyboardReportDecoder d;
  std::vector<Frame> out;
  for (uint8_t usage : {0x59, 0x5A, 0x61, 0x62, 0x63, 0x56, 0x57, 0x55, 0x54}) {
    d.Feed(KeyReport(0, usage), &out);
    d.Feed(ReleaseReport(), &out);
  }
  d.Feed(KeyReport(0, 0x28), &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, "1290.-+*/");
}

TEST(KeyboardReportDecoder, CtrlTypesControlCharacters) {
  KeyboardReportDecoder d;
  std::vector<Frame> out;
  d.Feed(KeyReport(0, 0x1E), &out);     // 1
  d.Feed(KeyReport(0x01, 0x30), &out);  // Ctrl+] = GS
  d.Feed(KeyReport(0, 0x1F), &out);     // 2
  d.Feed(KeyReport(0, 0x28), &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, std::string("1\x1d"
                                     "2"));
}

TEST(KeyboardReportDecoder, LengthBoundary) {
  KeyboardReportDecoder d;
  std::vector<Frame> out;
  auto type_n = [&](size_t n) {
    for (size_t i = 0; i < n; ++i) {
      d.Feed(KeyReport(0, 0x04 + (i % 26)), &out);
      d.Feed(ReleaseReport(), &out);
    }
    d.Feed(KeyReport(0, 0x28), &out);
    d.Feed(ReleaseReport(), &out);
  };
  type_n(kMaxScanBytes);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].overlong);
  EXPECT_EQ(out[0].text.size(), kMaxScanBytes);
  out.clear();
  type_n(kMaxScanBytes + 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].overlong);
  EXPECT_TRUE(out[0].text.empty());
  EXPECT_EQ(d.counters().overlong, 1u);
  out.clear();
  type_n(3);  // the next read is clean
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, "abc");
}

TEST(KeyboardReportDecoder, UsageTable) {
  EXPECT_EQ(KeyboardUsageToChar(0x04, false), 'a');
  EXPECT_EQ(KeyboardUsageToChar(0x1D, true), 'Z');
  EXPECT_EQ(KeyboardUsageToChar(0x27, false), '0');
  EXPECT_EQ(KeyboardUsageToChar(0x26, true), '(');
  EXPECT_EQ(KeyboardUsageToChar(0x2D, true), '_');
  EXPECT_EQ(KeyboardUsageToChar(0x33, true), ':');
  EXPECT_EQ(KeyboardUsageToChar(0x38, true), '?');
  EXPECT_EQ(KeyboardUsageToChar(0x35, true), '~');
  EXPECT_EQ(KeyboardUsageToChar(0x62, true), '0');
  EXPECT_EQ(KeyboardUsageToChar(0x01, false), 0);
  EXPECT_EQ(KeyboardUsageToChar(0x39, false), 0);  // Caps Lock
  EXPECT_EQ(KeyboardUsageToChar(0x64, false), '\\');
}

// --- HID POS ---------------------------------------------------------------------------

std::string Payload(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s.push_back(static_cast<char>('!' + (i * 7) % 90));
  return s;
}

TEST(HidPosReassembler, TwoHundredBytesOverFourReports) {
  const std::string payload = Payload(200);
  auto reports = HidPosReports(payload, "]Q1");
  ASSERT_EQ(reports.size(), 4u);
  HidPosReassembler r;
  std::vector<Frame> out;
  for (size_t i = 0; i < reports.size(); ++i) {
    r.Feed(reports[i], &out);
    EXPECT_EQ(out.empty(), i + 1 < reports.size());
  }
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, payload);
  EXPECT_EQ(out[0].symbology, "]Q1");
  EXPECT_FALSE(r.has_partial());
}

TEST(HidPosReassembler, WrongSizeReportIgnoredMidScan) {
  const std::string payload = Payload(100);
  auto reports = HidPosReports(payload, "]C0");
  HidPosLayout fixed;
  fixed.report_size = 64;
  HidPosReassembler r(fixed);
  std::vector<Frame> out;
  r.Feed(reports[0], &out);
  r.Feed(Report(63, 0x41), &out);
  r.Feed(Report(65, 0x41), &out);
  r.Feed(reports[1], &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, payload);
  EXPECT_EQ(out[0].symbology, "]C0");
  EXPECT_EQ(r.counters().wrong_size, 2u);
}

TEST(HidPosReassembler, AnySizeLayoutTakesReportsThatHoldEveryField) {
  HidPosReassembler r;  // report_size 0
  EXPECT_EQ(HidPosLayout{}.MinReportSize(), 64);
  std::vector<Frame> out;
  r.Feed(Report(63, 0x02), &out);  // too short for the flags byte
  EXPECT_EQ(r.counters().wrong_size, 1u);
  Report big = HidPosReports("abc", "]Q1")[0];
  big.resize(128, 0);  // a device with larger reports, same field offsets
  r.Feed(big, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, "abc");
  r.Feed(Report(kMaxHidReportSize + 1, 0x02), &out);
  EXPECT_EQ(r.counters().wrong_size, 2u);
}

TEST(HidPosReassembler, ForeignReportIdAndBadLengthAreMalformed) {
  HidPosReassembler r;
  std::vector<Frame> out;
  Report foreign = HidPosReports("abc", "]Q1")[0];
  foreign[0] = 0x05;
  r.Feed(foreign, &out);
  EXPECT_TRUE(out.empty());
  auto two = HidPosReports(Payload(80), "]Q1");
  r.Feed(two[0], &out);
  EXPECT_TRUE(r.has_partial());
  Report bad = two[1];
  bad[1] = 57;  // more than the report can hold: the read is dropped
  r.Feed(bad, &out);
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(r.has_partial());
  EXPECT_EQ(r.counters().malformed, 2u);
  EXPECT_EQ(r.counters().discarded_partials, 1u);
}

TEST(HidPosReassembler, MaximumLengthReportAndSymbologyPadding) {
  HidPosReassembler r;
  std::vector<Frame> out;
  auto reports = HidPosReports(Payload(56), "");
  ASSERT_EQ(reports.size(), 1u);
  r.Feed(reports[0], &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text.size(), 56u);
  EXPECT_EQ(out[0].symbology, "");
  Report odd = HidPosReports("x", "]Q1")[0];
  odd[3] = 0x07;  // not printable: symbology unknown
  out.clear();
  r.Feed(odd, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].symbology, "");
}

TEST(HidPosReassembler, LengthBoundary) {
  HidPosReassembler r;
  std::vector<Frame> out;
  for (auto& rep : HidPosReports(Payload(kMaxScanBytes), "]Q1")) r.Feed(rep, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].overlong);
  EXPECT_EQ(out[0].text.size(), kMaxScanBytes);
  out.clear();
  for (auto& rep : HidPosReports(Payload(kMaxScanBytes + 1), "]Q1")) r.Feed(rep, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].overlong);
  EXPECT_TRUE(out[0].text.empty());
  EXPECT_EQ(out[0].symbology, "]Q1");
}

TEST(HidPosReassembler, VendorLayoutWithoutReportIdOrFlags) {
  HidPosLayout layout;
  layout.report_size = 32;
  layout.report_id = -1;
  layout.length_offset = 0;
  layout.symbology_offset = 29;
  layout.symbology_length = 3;
  layout.data_offset = 1;
  layout.data_len = 28;
  layout.flags_offset = -1;
  ASSERT_TRUE(layout.Validate().ok()) << layout.Validate().ToString();
  HidPosReassembler r(layout);
  Report rep(32, 0);
  rep[0] = 5;
  std::memcpy(&rep[1], "12345", 5);
  std::memcpy(&rep[29], "]E0", 3);
  std::vector<Frame> out;
  r.Feed(rep, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, "12345");
  EXPECT_EQ(out[0].symbology, "]E0");
}

TEST(HidPosLayout, ValidateRejectsFieldsOutsideTheReport) {
  EXPECT_TRUE(HidPosLayout{}.Validate().ok());
  HidPosLayout l;
  l.report_size = 64;
  l.data_len = 60;  // 5 + 60 > 64
  EXPECT_EQ(l.Validate().code(), ErrorCode::kInvalidArgument);
  l = {};
  l.report_size = 64;
  l.flags_offset = 64;
  EXPECT_FALSE(l.Validate().ok());
  l.report_size = 0;  // any size: fits
  EXPECT_TRUE(l.Validate().ok());
  l = {};
  l.report_size = 64;
  l.symbology_offset = 62;
  EXPECT_FALSE(l.Validate().ok());
  l = {};
  l.flags_offset = kMaxHidReportSize;
  EXPECT_FALSE(l.Validate().ok());
  l = {};
  l.report_size = 1;
  EXPECT_FALSE(l.Validate().ok());
  l = {};
  l.length_offset = 0;  // would read the report id as the length
  EXPECT_FALSE(l.Validate().ok());
  // An invalid layout makes every report malformed instead of reading out of bounds.
  HidPosLayout bad;
  bad.report_size = 64;
  bad.data_len = 200;
  HidPosReassembler r(bad);
  std::vector<Frame> out;
  r.Feed(Report(64, 0x02), &out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(r.counters().malformed, 1u);
}

// --- line framer -------------------------------------------------------------------------

std::vector<std::string> Texts(LineFramer& f, std::string_view bytes) {
  std::vector<Frame> out;
  f.Feed(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
         &out);
  std::vector<std::string> texts;
  for (auto& fr : out) texts.push_back(fr.overlong ? "<overlong>" : fr.text);
  return texts;
}

TEST(LineFramer, Terminators) {
  LineFramer cr(Terminator::kCR);
  EXPECT_EQ(Texts(cr, "abc\rdef\r"), (std::vector<std::string>{"abc", "def"}));
  EXPECT_EQ(Texts(cr, "gh\r\nij\r\n"), (std::vector<std::string>{"gh", "ij"}));  // stray LF trimmed
  LineFramer lf(Terminator::kLF);
  EXPECT_EQ(Texts(lf, "abc\ndef"), (std::vector<std::string>{"abc"}));
  EXPECT_EQ(Texts(lf, "\n\n\r\n"), (std::vector<std::string>{"def"}));  // empties skipped
  LineFramer crlf(Terminator::kCRLF);
  EXPECT_EQ(Texts(crlf, "abc\r"), (std::vector<std::string>{}));
  EXPECT_EQ(Texts(crlf, "\nx\ry\r\n"), (std::vector<std::string>{"abc", "x\ry"}));
}

TEST(LineFramer, FlushCompletesTheLastLine) {
  LineFramer f(Terminator::kLF);
  EXPECT_TRUE(Texts(f, "tail").empty());
  std::vector<Frame> out;
  f.Flush(&out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, "tail");
  out.clear();
  f.Flush(&out);
  EXPECT_TRUE(out.empty());
}

TEST(LineFramer, LengthBoundary) {
  LineFramer f(Terminator::kCR);
  std::string at(kMaxScanBytes, 'x');
  auto t = Texts(f, at + "\r");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].size(), kMaxScanBytes);
  t = Texts(f, at + "y\rnext\r");
  EXPECT_EQ(t, (std::vector<std::string>{"<overlong>", "next"}));
  EXPECT_EQ(f.counters().overlong, 1u);
  // Overlong even when split over many chunks.
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(Texts(f, std::string(1000, 'z')).empty());
  EXPECT_EQ(Texts(f, "\r"), (std::vector<std::string>{"<overlong>"}));
  // The limit is on the scan: the CR of a CRLF line read with LF as the terminator, or the
  // LF left over from one read with CR, is trimmed, not counted.
  LineFramer lf(Terminator::kLF);
  EXPECT_EQ(Texts(lf, at + "\r\n"), (std::vector<std::string>{at}));
  EXPECT_EQ(Texts(lf, at + "y\r\n"), (std::vector<std::string>{"<overlong>"}));
  LineFramer cr(Terminator::kCR);
  EXPECT_EQ(Texts(cr, at + "\r\n" + at + "\r"), (std::vector<std::string>{at, at}));
  EXPECT_EQ(Texts(cr, "\n" + at + "y\r"), (std::vector<std::string>{"<overlong>"}));
  EXPECT_EQ(cr.counters().overlong, 1u);
}

TEST(LineFramer, DiscardPartial) {
  LineFramer f(Terminator::kCRLF);
  Texts(f, "half\r");
  EXPECT_TRUE(f.has_partial());
  f.DiscardPartial();
  EXPECT_FALSE(f.has_partial());
  EXPECT_EQ(Texts(f, "\nwhole\r\n"), (std::vector<std::string>{"whole"}));
}

// --- debouncer ---------------------------------------------------------------------------

TEST(Debouncer, RepeatWithinWindowDroppedAndWindowRestarts) {
  Debouncer d(800);
  EXPECT_TRUE(d.Admit("s1", "A", 1000));
  EXPECT_FALSE(d.Admit("s1", "A", 1799));  // 799 ms later
  EXPECT_FALSE(d.Admit("s1", "A", 2598));  // restarted at 1799
  EXPECT_TRUE(d.Admit("s1", "A", 3398));   // exactly 800 ms after the last read
  EXPECT_TRUE(d.Admit("s1", "B", 3399));   // other text
  EXPECT_TRUE(d.Admit("s1", "A", 3400));   // A again after B
  EXPECT_TRUE(d.Admit("s2", "A", 3401));   // other scanner
  EXPECT_FALSE(d.Admit("s2", "A", 3402));
}

TEST(Debouncer, ZeroWindowAdmitsEverything) {
  Debouncer d(0);
  EXPECT_TRUE(d.Admit("s", "A", 5));
  EXPECT_TRUE(d.Admit("s", "A", 5));
}

}  // namespace
}  // namespace loyalty::drivers
