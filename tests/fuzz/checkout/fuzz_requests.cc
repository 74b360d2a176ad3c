// POS API request bodies: arbitrary bytes through the JSON parser and the request
// validators (checkout and refund). Must never crash, throw, or trip a sanitizer.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "loyalty/checkout/requests.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto j = loyalty::ParseJsonObject(body);
  if (!j.ok()) return 0;
  (void)loyalty::checkout::CanonicalHash(*j);
  (void)loyalty::checkout::ParseCheckoutRequest(*j, false);
  (void)loyalty::checkout::ParseCheckoutRequest(*j, true);
  (void)loyalty::checkout::ParseRefundRequest(*j);
  return 0;
}
