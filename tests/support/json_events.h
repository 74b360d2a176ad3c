// The events of a JSON SAX parse as strings, for holding the upload reader's scanner
// (sync/protocol/src/json_scan.h) to nlohmann's SAX parser event by event
// (tests/hq/upload_fast_test.cc, tests/fuzz/hq/fuzz_json_scan.cc). Numbers are recorded as
// the scanner passes them: an integer of up to 18 digits by its value, any other number
// (-0, a fraction, an exponent, more digits) as "#".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace loyalty::testing {

struct JsonEventRecorder {
  std::vector<std::string> events;
  bool null() { return Add("n"); }
  bool boolean(bool v) { return Add(v ? "t" : "f"); }
  bool number_integer(int64_t v) {
    // nlohmann gives -0 and integers past 18 digits their value; the scanner does not.
    if (v == 0 || v <= -1000000000000000000) return Add("#");
    return Add("i" + std::to_string(v));
  }
  bool number_unsigned(uint64_t v) {
    return Add(v >= 1000000000000000000ull ? "#" : "u" + std::to_string(v));
  }
  bool number_float(double, const std::string&) { return Add("#"); }
  bool string(std::string& v) { return Add("s" + v); }
  bool binary(nlohmann::json::binary_t&) { return false; }
  bool start_object(size_t) { return Add("{"); }
  bool key(std::string& k) { return Add("k" + k); }
  bool end_object() { return Add("}"); }
  bool start_array(size_t) { return Add("["); }
  bool end_array() { return Add("]"); }
  bool parse_error(size_t, const std::string&, const nlohmann::detail::exception&) { return false; }
  bool Add(std::string e) {
    events.push_back(std::move(e));
    return true;
  }
};

}  // namespace loyalty::testing
