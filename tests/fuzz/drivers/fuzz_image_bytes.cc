// Image files as the image source reads them: PNG/JPEG/PGM bytes from a watched directory.
#include <cstddef>
#include <cstdint>

#include "loyalty/drivers/image_decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)loyalty::drivers::DecodeImageBytes(data, size);
  return 0;
}
