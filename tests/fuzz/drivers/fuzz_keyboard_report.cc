// Keyboard wedge decoder: arbitrary report streams (mostly 8-byte boot reports, some of
// the wrong size) must never crash, never emit more than kMaxScanBytes, and emit overlong
// frames without text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "loyalty/drivers/decoders.h"

using loyalty::drivers::Frame;
using loyalty::drivers::KeyboardReportDecoder;
using loyalty::drivers::kMaxScanBytes;
using loyalty::drivers::SuffixKey;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  KeyboardReportDecoder d((data[0] & 1) ? SuffixKey::kTab : SuffixKey::kEnter);
  const bool framed = data[0] & 2;  // else: every 8 bytes are a report
  size_t i = 1;
  std::vector<Frame> out;
  while (i < size) {
    size_t len = 8;
    if (framed) {
      len = data[i++] % 12;  // 8 most of the time a fuzzer keeps, others exercise wrong sizes
    }
    if (len > size - i) len = size - i;
    d.Feed({data + i, len}, &out);
    i += len;
    if (data[0] & 4 && i % 97 == 0) d.DiscardPartial();
  }
  for (const Frame& f : out) {
    if (f.text.size() > kMaxScanBytes) abort();
    if (f.overlong && !f.text.empty()) abort();
    if (!f.overlong && f.text.empty()) abort();
  }
  return 0;
}
