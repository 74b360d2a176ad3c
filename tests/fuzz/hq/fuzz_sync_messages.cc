// Arbitrary bytes as sync message bodies: every decoder must answer with a value or a clean
// bad_request, never crash or throw; what decodes must encode and decode to the same value.
//
// First byte selects the message; the rest is the body.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "loyalty/sync/messages.h"

namespace ls = loyalty::sync;

namespace {

template <typename T>
void Check(std::string_view body) {
  auto r = ls::ParseMessage<T>(body);
  if (!r.ok()) {
    if (r.status().code() != loyalty::ErrorCode::kBadRequest) std::abort();
    return;
  }
  auto again = ls::ParseMessage<T>(ls::SerializeMessage(*r));
  if (!again.ok() || !(*again == *r)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 19) {
    case 0:
      Check<ls::HelloRequest>(body);
      break;
    case 1:
      Check<ls::HelloResponse>(body);
      break;
    case 2:
      Check<ls::UploadRequest>(body);
      break;
    case 3:
      Check<ls::UploadResponse>(body);
      break;
    case 4:
      Check<ls::ChangesResponse>(body);
      break;
    case 5:
      Check<ls::FetchRequest>(body);
      break;
    case 6:
      Check<ls::FetchResponse>(body);
      break;
    case 7:
      Check<ls::MembersRequest>(body);
      break;
    case 8:
      Check<ls::MembersResponse>(body);
      break;
    case 9:
      Check<ls::Entry>(body);
      break;
    case 10:
      Check<ls::Checkout>(body);
      break;
    case 11:
      Check<ls::Snapshot>(body);
      break;
    case 12:
      Check<ls::Refund>(body);
      break;
    case 13:
      Check<ls::SaleRequest>(body);
      break;
    case 14:
      Check<ls::SaleResponse>(body);
      break;
    case 15:
      Check<ls::ReceiptKeyRequest>(body);
      break;
    case 16:
      Check<ls::ReceiptKeyResponse>(body);
      break;
    case 17:
      Check<ls::EvictedRequest>(body);
      break;
    default:
      Check<ls::EvictedResponse>(body);
      break;
  }
  return 0;
}
