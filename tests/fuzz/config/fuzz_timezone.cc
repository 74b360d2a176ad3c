// Arbitrary bytes as a TZif file: parse, then query around the transitions it declares.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "loyalty/base/timezone.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto tz = loyalty::TimeZone::FromTzif("fuzz", std::string_view(reinterpret_cast<const char*>(data), size));
  if (!tz.ok()) return 0;
  for (int64_t t : {int64_t{-4'000'000'000}, int64_t{0}, int64_t{1'700'000'000}, int64_t{4'000'000'000},
                    int64_t{100'000'000'000}, int64_t{-1'000'000'000'000}, int64_t{1'000'000'000'000}}) {
    const int64_t off = tz->UtcOffsetAt(t);
    if (off < -26 * 3600 || off > 26 * 3600) std::abort();
    const loyalty::CivilTime local = tz->ToLocal(t);
    if (local.month < 1 || local.month > 12 || local.day < 1 || local.day > 31) std::abort();
    (void)tz->FromLocal(local);
  }
  return 0;
}
