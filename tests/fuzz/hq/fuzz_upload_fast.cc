// Arbitrary bytes as an upload's body, read by both of HQ's readers: the fast one
// (sync::ParseUploadFast, a strict scanner of the text straight into the message) may take only
// what the tree reader (ParseMessage<UploadRequest>) reads, and to the same value; and
// ParseUploadRequest, which HQ calls, answers exactly as the tree reader does — the same
// value or the same error. Never a crash or a throw.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "loyalty/sync/messages.h"

namespace ls = loyalty::sync;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto slow = ls::ParseMessage<ls::UploadRequest>(body);
  ls::UploadRequest fast;
  if (ls::ParseUploadFast(body, &fast) && (!slow.ok() || !(fast == *slow))) std::abort();
  auto via = ls::ParseUploadRequest(body);
  if (via.ok() != slow.ok()) std::abort();
  if (via.ok() && !(*via == *slow)) std::abort();
  if (!via.ok() && (via.status().code() != slow.status().code() ||
                    via.status().message() != slow.status().message()))
    std::abort();
  return 0;
}
