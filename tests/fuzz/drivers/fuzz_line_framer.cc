// Serial/fifo framing: arbitrary bytes in arbitrary chunks.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "loyalty/drivers/decoders.h"

using namespace loyalty::drivers;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Terminator t = data[0] % 3 == 0   ? Terminator::kCR
                       : data[0] % 3 == 1 ? Terminator::kLF
                                          : Terminator::kCRLF;
  LineFramer f(t);
  std::vector<Frame> out;
  size_t i = 1;
  const size_t chunk = 1 + (data[0] >> 2);
  while (i < size) {
    const size_t len = chunk < size - i ? chunk : size - i;
    f.Feed({data + i, len}, &out);
    i += len;
  }
  f.Flush(&out);
  for (const Frame& fr : out) {
    if (fr.text.size() > kMaxScanBytes) abort();
    if (!fr.overlong && fr.text.empty()) abort();
    if (!fr.text.empty() && (fr.text.front() == '\r' || fr.text.front() == '\n' ||
                             fr.text.back() == '\r' || fr.text.back() == '\n'))
      abort();
  }
  return 0;
}
