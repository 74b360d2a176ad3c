// DumpCanonical and JsonWriter::String against nlohmann's dump(), which defines the bytes that
// request hashes are computed over: any difference aborts.
//  1. The input parsed as JSON: DumpCanonical(j) must equal j.dump().
//  2. The input taken as one string value: the same verdict on its UTF-8 as dump() (both
//     throw type_error 316 or neither does), and when valid the same bytes from DumpCanonical
//     and from JsonWriter::String.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "loyalty/base/json_writer.h"

namespace {

// Runs f (a dump); *threw tells whether it threw type_error, and then the message is
// returned instead of the text, so that the two exceptions can be compared too.
template <typename F>
std::string Capture(F&& f, bool* threw) {
  try {
    *threw = false;
    return f();
  } catch (const nlohmann::json::type_error& e) {
    *threw = true;
    return e.what();
  }
}

void Compare(const nlohmann::json& j) {
  bool want_threw = false, got_threw = false;
  const std::string want = Capture([&] { return j.dump(); }, &want_threw);
  const std::string got = Capture([&] { return loyalty::DumpCanonical(j); }, &got_threw);
  if (want_threw != got_threw || want != got) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto* text = reinterpret_cast<const char*>(data);
  const nlohmann::json j =
      nlohmann::json::parse(text, text + size, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) Compare(j);

  const std::string s(text, size);
  const nlohmann::json as_string(s);
  Compare(as_string);
  bool invalid_utf8 = false;
  const std::string want = Capture([&] { return as_string.dump(); }, &invalid_utf8);
  if (!invalid_utf8) {
    std::string got;
    loyalty::JsonWriter(got).String(s);
    if (got != want) std::abort();
  }
  return 0;
}
