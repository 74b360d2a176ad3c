// libFuzzer target for the text parsers of the HTTP layer that meet the outside: request
// targets (path and query, percent-decoding) and host:port / loopback text from configs.
// Besides not crashing, each parser must agree with itself: what it accepts it accepts
// again in canonical form, with the same meaning.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "loyalty/http/address.h"
#include "loyalty/http/message.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  auto decoded = loyalty::http::PercentDecode(in, true);
  if (decoded.ok()) Check(decoded->size() <= in.size());

  auto query = loyalty::http::ParseQuery(in);
  if (query.ok()) {
    // Re-encoding the parsed pairs gives a query that parses to the same map.
    std::string again;
    for (const auto& [k, v] : *query) {
      if (!again.empty()) again.push_back('&');
      again += loyalty::http::PercentEncode(k) + "=" + loyalty::http::PercentEncode(v);
    }
    auto reparsed = loyalty::http::ParseQuery(again);
    Check(reparsed.ok() && *reparsed == *query);
  }

  auto target = loyalty::http::ParseTarget(in);
  if (target.ok()) {
    Check(!target->path.empty());
    Check(target->path == "*" || target->path.front() == '/');
    for (unsigned char c : target->path) Check(c >= 0x20 && c != 0x7f);
  }

  auto hp = loyalty::http::ParseHostPort(in);
  if (hp.ok()) {
    Check(!hp->first.empty());
    bool v6 = hp->first.find(':') != std::string::npos;
    std::string again = (v6 ? "[" + hp->first + "]" : hp->first) + ":" + std::to_string(hp->second);
    auto reparsed = loyalty::http::ParseHostPort(again);
    Check(reparsed.ok() && *reparsed == *hp);
  }

  // Loopback detection never throws, and brackets never turn a non-IPv6 host into loopback.
  bool loop = loyalty::http::IsLoopbackAddress(in);
  if (loop && in.size() >= 2 && in.front() == '[') Check(in.find(':') != std::string_view::npos);
  return 0;
}
