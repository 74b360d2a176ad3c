// Writing JSON text directly, without building an nlohmann::json tree first.
//
// Request hashes, stored requests and stored responses are the bytes nlohmann::json::dump()
// prints, so everything here prints exactly those bytes: compact (no spaces), ensure_ascii
// off, strings escaped the way nlohmann 3.11 escapes them. A hash computed over JsonWriter
// or DumpCanonical output therefore matches one computed over dump() of the same document.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace loyalty {

// Appends JSON text to a string. Output is compact (no spaces) and byte-identical to what
// nlohmann::json::dump() (indent -1, ensure_ascii false) prints for the same document when
// keys are given in sorted (std::map / byte-wise) order; the writer does not sort, the caller does.
//
// Commas and colons are inserted automatically. Inside an object call Key() before each value.
// The writer does not check the structure (a value without a key inside an object, unbalanced
// Begin/End): it is meant for code that emits a fixed shape, and a check per call would cost
// more than the writing. Write one top-level value per writer.
//
//   std::string body;
//   JsonWriter w(body);
//   w.BeginObject().Key("points").Int(120).Key("sku").String("A-1").EndObject();
//   // body == R"({"points":120,"sku":"A-1"})"
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out);

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(std::string_view k);  // inside an object, before each value
  // Escaped as nlohmann does: \" \\ \b \t \n \f \r, other bytes below 0x20 as \u00xx, everything
  // else (0x7F, '/', UTF-8 sequences) as is. The string must be valid UTF-8: it is not checked
  // here (dump() would throw type_error 316 on invalid UTF-8; this copies the bytes).
  JsonWriter& String(std::string_view s);
  JsonWriter& Int(int64_t v);
  JsonWriter& UInt(uint64_t v);
  JsonWriter& Bool(bool v);
  JsonWriter& Null();
  JsonWriter& Raw(std::string_view json_value);  // an already-serialized value, copied verbatim

  std::string& out() { return *out_; }

 private:
  // Called before every value: a comma unless this value follows its key or is the first
  // element of its container.
  void BeforeValue();
  // BeforeValue's decision without writing: whether a comma goes before this value.
  bool CommaDue();
  // Marks the current level as holding an element; returns whether it already held one.
  bool TestAndSetHasElement();
  void Push();
  void Pop();

  std::string* out_;
  uint32_t depth_ = 0;  // 0: top level
  bool after_key_ = false;
  // Bit d: level d already holds an element (a comma goes before the next one). Levels 64 and
  // deeper, rare, live in deep_.
  uint64_t has_element_ = 0;
  std::vector<bool> deep_;
};

// j.dump() for every j that j.dump() accepts, produced faster: walks the tree writing
// objects (already key-sorted in nlohmann's std::map), arrays, strings, integers, booleans
// and null itself; anything else (floating-point numbers, binary) falls back to that
// element's own dump(). A string or key that is not valid UTF-8 goes through dump() too, so
// the same nlohmann::json::type_error (316) comes out.
std::string DumpCanonical(const nlohmann::json& j);
// Appends to out. If it throws, out is left as it was.
void DumpCanonical(const nlohmann::json& j, std::string& out);

}  // namespace loyalty
