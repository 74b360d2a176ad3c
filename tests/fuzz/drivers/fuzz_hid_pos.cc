// HID POS reassembler: arbitrary reports under a layout chosen from the input's first
// bytes (valid layouts only: Validate() is the gate the sources use).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "loyalty/drivers/decoders.h"

using loyalty::drivers::Frame;
using loyalty::drivers::HidPosLayout;
using loyalty::drivers::HidPosReassembler;
using loyalty::drivers::kMaxScanBytes;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  HidPosLayout layout;
  if (data[0] & 1) {  // a vendor layout derived from the input
    layout.report_size = 8 + data[1] % 120;
    layout.report_id = (data[0] & 2) ? -1 : data[2];
    layout.length_offset = data[3] % layout.report_size;
    layout.symbology_offset = (data[0] & 4) ? -1 : (data[3] >> 2) % layout.report_size;
    layout.symbology_length = 1 + data[2] % 4;
    layout.data_offset = 1 + data[1] % 7;
    layout.data_len = layout.report_size - layout.data_offset - 1;
    layout.flags_offset = (data[0] & 8) ? -1 : layout.report_size - 1;
    layout.continuation_mask = 1 + (data[2] & 0x7F);
    if (data[0] & 32) layout.report_size = 0;  // any size that holds the fields
  }
  HidPosReassembler r(layout);
  const bool valid = layout.Validate().ok();
  std::vector<Frame> out;
  const int report = layout.report_size != 0 ? layout.report_size : layout.MinReportSize();
  if (report <= 0) return 0;
  size_t i = 4;
  while (i < size) {
    size_t len = static_cast<size_t>(report);
    if (data[0] & 16) len = data[i++] % (report + 2);  // some wrong sizes
    if (len > size - i) len = size - i;
    r.Feed({data + i, len}, &out);
    i += len;
  }
  if (!valid && !out.empty()) abort();
  for (const Frame& f : out) {
    if (f.text.size() > kMaxScanBytes) abort();
    if (f.overlong && !f.text.empty()) abort();
    if (f.symbology.size() > 8) abort();
  }
  return 0;
}
