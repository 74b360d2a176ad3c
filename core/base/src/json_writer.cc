#include "loyalty/base/json_writer.h"

#include <array>
#include <charconv>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

namespace loyalty {
namespace {

// What a byte needs inside a string: kPlain bytes are copied, kEscape bytes (control
// characters, '"', '\\') are escaped, kMultibyte bytes (>= 0x80) start or continue a UTF-8
// sequence, copied as is but validated when the caller asks for it.
enum : uint8_t { kPlain = 0, kEscape = 1, kMultibyte = 2 };

constexpr std::array<uint8_t, 256> MakeByteClass() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = kEscape;
  t['"'] = kEscape;
  t['\\'] = kEscape;
  for (int c = 0x80; c < 0x100; ++c) t[c] = kMultibyte;
  return t;
}
constexpr auto kByteClass = MakeByteClass();

constexpr uint64_t kOnes = 0x0101010101010101ull;
constexpr uint64_t kHighs = 0x8080808080808080ull;

// Whether any of the 8 bytes in x is below 0x20, '"' or '\\' (and, with kStopAtMultibyte, >= 0x80).
// Exact for "any": a borrow only crosses a byte boundary after a byte that really matched.
template <bool kStopAtMultibyte>
inline bool AnySpecial(uint64_t x) {
  uint64_t control = (x - kOnes * 0x20) & ~x;
  uint64_t q = x ^ (kOnes * '"');
  uint64_t quote = (q - kOnes) & ~q;
  uint64_t b = x ^ (kOnes * '\\');
  uint64_t backslash = (b - kOnes) & ~b;
  uint64_t hit = control | quote | backslash;
  if (kStopAtMultibyte) hit |= x;
  return (hit & kHighs) != 0;
}

void AppendEscape(std::string& out, uint8_t c) {
  static constexpr char kHex[] = "0123456789abcdef";
  switch (c) {
    case '"':
      out.append("\\\"", 2);
      return;
    case '\\':
      out.append("\\\\", 2);
      return;
    case 0x08:
      out.append("\\b", 2);
      return;
    case 0x09:
      out.append("\\t", 2);
      return;
    case 0x0A:
      out.append("\\n", 2);
      return;
    case 0x0C:
      out.append("\\f", 2);
      return;
    case 0x0D:
      out.append("\\r", 2);
      return;
    default: {
      const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
      out.append(u, 6);
    }
  }
}

// Length of the well-formed UTF-8 sequence starting at p (p[0] >= 0x80), or 0. Well-formed as
// in Unicode table 3-7, which is what nlohmann's decoder accepts: no overlong forms, no
// surrogates, nothing above U+10FFFF.
inline size_t Utf8SequenceLength(const uint8_t* p, const uint8_t* end) {
  const uint8_t c = p[0];
  const size_t avail = static_cast<size_t>(end - p);
  auto cont = [](uint8_t b) { return (b & 0xC0) == 0x80; };
  if (c < 0xC2) return 0;  // a stray continuation byte, or an overlong 2-byte lead
  if (c < 0xE0) return avail >= 2 && cont(p[1]) ? 2 : 0;
  if (c < 0xF0) {
    if (avail < 3) return 0;
    const uint8_t lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    return p[1] >= lo && p[1] <= hi && cont(p[2]) ? 3 : 0;
  }
  if (c < 0xF5) {
    if (avail < 4) return 0;
    const uint8_t lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    return p[1] >= lo && p[1] <= hi && cont(p[2]) && cont(p[3]) ? 4 : 0;
  }
  return 0;
}

// Appends s quoted and escaped. With kValidate, returns false at the first byte that is not
// part of well-formed UTF-8 (out then holds a partial string; the caller truncates it).
template <bool kValidate>
bool AppendQuoted(std::string& out, std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const auto* const end = p + s.size();
  const auto* run = p;  // start of the bytes not yet copied
  out.push_back('"');
  while (p != end) {
    // Plain ASCII dominates (SKUs, ids, codes): skip it 8 bytes at a time.
    while (end - p >= 8) {
      uint64_t x;
      std::memcpy(&x, p, 8);
      if (AnySpecial<kValidate>(x)) break;
      p += 8;
    }
    if (p == end) break;
    const uint8_t cls = kByteClass[*p];
    if (cls == kPlain || (!kValidate && cls == kMultibyte)) {
      ++p;
    } else if (cls == kMultibyte) {
      const size_t n = Utf8SequenceLength(p, end);
      if (n == 0) return false;
      p += n;
    } else {
      out.append(reinterpret_cast<const char*>(run), static_cast<size_t>(p - run));
      AppendEscape(out, *p);
      run = ++p;
    }
  }
  out.append(reinterpret_cast<const char*>(run), static_cast<size_t>(p - run));
  out.push_back('"');
  return true;
}

// Numbers come in their hundreds in a checkout body: the comma and the digits go in one
// append.
template <typename T>
void AppendNumber(std::string& out, bool comma, T v) {
  char buf[24];
  char* p = buf;
  if (comma) *p++ = ',';
  p = std::to_chars(p, buf + sizeof buf, v).ptr;
  out.append(buf, static_cast<size_t>(p - buf));
}

template <typename T>
void AppendInteger(std::string& out, T v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

// A string or key that is not valid UTF-8: take back what was written of it and let dump()
// handle it, so the caller sees exactly dump()'s type_error 316.
void AppendStringViaDump(std::string& out, size_t start, const std::string& s) {
  out.resize(start);
  out += nlohmann::json(s).dump();
}

// Writes one value that is not an array or an object.
void WriteScalar(const nlohmann::json& j, std::string& out) {
  using value_t = nlohmann::json::value_t;
  switch (j.type()) {
    case value_t::string: {
      const auto& s = j.get_ref<const nlohmann::json::string_t&>();
      const size_t start = out.size();
      if (!AppendQuoted<true>(out, s)) AppendStringViaDump(out, start, s);
      return;
    }
    case value_t::number_integer:
      AppendInteger(out, *j.get_ptr<const nlohmann::json::number_integer_t*>());
      return;
    case value_t::number_unsigned:
      AppendInteger(out, *j.get_ptr<const nlohmann::json::number_unsigned_t*>());
      return;
    case value_t::boolean:
      if (*j.get_ptr<const nlohmann::json::boolean_t*>()) {
        out.append("true", 4);
      } else {
        out.append("false", 5);
      }
      return;
    case value_t::null:
      out.append("null", 4);
      return;
    default:
      // Floating-point numbers (shortest round-trip digits, "-0.0", NaN as null), binary and
      // discarded values: rare on the hot paths, and dump() is the definition.
      out += j.dump();
      return;
  }
}

// One open array or object of the walk: where its next element is.
struct Frame {
  bool is_object;
  bool first;  // no element written yet
  nlohmann::json::object_t::const_iterator object_it, object_end;
  nlohmann::json::array_t::const_iterator array_it, array_end;
};

// Opens j if it is a container (writes the bracket and pushes a frame), else writes it.
void Enter(const nlohmann::json& j, std::string& out, std::vector<Frame>& stack) {
  if (j.is_object()) {
    const auto& object = j.get_ref<const nlohmann::json::object_t&>();
    out.push_back('{');
    stack.push_back(Frame{true, true, object.begin(), object.end(), {}, {}});
  } else if (j.is_array()) {
    const auto& array = j.get_ref<const nlohmann::json::array_t&>();
    out.push_back('[');
    stack.push_back(Frame{false, true, {}, {}, array.begin(), array.end()});
  } else {
    WriteScalar(j, out);
  }
}

// A loop over an explicit stack rather than recursion: the depth of the tree costs heap,
// never the thread's stack, whoever built the tree. (Trees from outside are at most
// kMaxJsonDepth deep, see json.h; this holds for any tree.)
void Walk(const nlohmann::json& root, std::string& out) {
  // Reused per thread: a hash per commit should not cost an allocation. Cleared first, since
  // a walk that threw (type_error 316) leaves frames behind.
  thread_local std::vector<Frame> stack;
  stack.clear();
  Enter(root, out, stack);
  while (!stack.empty()) {
    Frame& f = stack.back();
    if (f.is_object) {
      if (f.object_it == f.object_end) {
        out.push_back('}');
        stack.pop_back();
        continue;
      }
      const auto& [key, value] = *f.object_it;
      ++f.object_it;
      if (!f.first) out.push_back(',');
      f.first = false;
      const size_t start = out.size();
      if (!AppendQuoted<true>(out, key)) AppendStringViaDump(out, start, key);
      out.push_back(':');
      Enter(value, out, stack);  // may reallocate the stack: f is not used after this
    } else {
      if (f.array_it == f.array_end) {
        out.push_back(']');
        stack.pop_back();
        continue;
      }
      const nlohmann::json& value = *f.array_it;
      ++f.array_it;
      if (!f.first) out.push_back(',');
      f.first = false;
      Enter(value, out, stack);
    }
  }
}

}  // namespace

JsonWriter::JsonWriter(std::string& out) : out_(&out) {}

bool JsonWriter::TestAndSetHasElement() {
  if (depth_ < 64) {
    const uint64_t bit = uint64_t{1} << depth_;
    const bool had = (has_element_ & bit) != 0;
    has_element_ |= bit;
    return had;
  }
  const bool had = deep_[depth_ - 64];
  deep_[depth_ - 64] = true;
  return had;
}

bool JsonWriter::CommaDue() {
  if (after_key_) {
    after_key_ = false;
    return false;
  }
  return TestAndSetHasElement();
}

void JsonWriter::BeforeValue() {
  if (CommaDue()) out_->push_back(',');
}

void JsonWriter::Push() {
  ++depth_;
  if (depth_ < 64) {
    has_element_ &= ~(uint64_t{1} << depth_);
  } else {
    deep_.push_back(false);
  }
}

void JsonWriter::Pop() {
  if (depth_ >= 64) deep_.pop_back();
  --depth_;
  after_key_ = false;
}

JsonWriter& JsonWriter::BeginObject() {
  BeforeValue();
  out_->push_back('{');
  Push();
  return *this;
}

JsonWriter& JsonWriter::EndObject() {
  Pop();
  out_->push_back('}');
  return *this;
}

JsonWriter& JsonWriter::BeginArray() {
  BeforeValue();
  out_->push_back('[');
  Push();
  return *this;
}

JsonWriter& JsonWriter::EndArray() {
  Pop();
  out_->push_back(']');
  return *this;
}

JsonWriter& JsonWriter::Key(std::string_view k) {
  const bool comma = TestAndSetHasElement();
  // Keys are short names with nothing to escape: put `,"key":` together and append it once.
  constexpr size_t kShort = 48;
  bool plain = k.size() <= kShort;
  for (size_t i = 0; plain && i < k.size(); ++i)
    plain = kByteClass[static_cast<uint8_t>(k[i])] != kEscape;
  if (plain) {
    char buf[kShort + 4];
    size_t n = 0;
    if (comma) buf[n++] = ',';
    buf[n++] = '"';
    std::memcpy(buf + n, k.data(), k.size());
    n += k.size();
    buf[n++] = '"';
    buf[n++] = ':';
    out_->append(buf, n);
  } else {
    if (comma) out_->push_back(',');
    AppendQuoted<false>(*out_, k);
    out_->push_back(':');
  }
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::String(std::string_view s) {
  BeforeValue();
  AppendQuoted<false>(*out_, s);
  return *this;
}

JsonWriter& JsonWriter::Int(int64_t v) {
  AppendNumber(*out_, CommaDue(), v);
  return *this;
}

JsonWriter& JsonWriter::UInt(uint64_t v) {
  AppendNumber(*out_, CommaDue(), v);
  return *this;
}

JsonWriter& JsonWriter::Bool(bool v) {
  BeforeValue();
  if (v) {
    out_->append("true", 4);
  } else {
    out_->append("false", 5);
  }
  return *this;
}

JsonWriter& JsonWriter::Null() {
  BeforeValue();
  out_->append("null", 4);
  return *this;
}

JsonWriter& JsonWriter::Raw(std::string_view json_value) {
  BeforeValue();
  out_->append(json_value);
  return *this;
}

std::string DumpCanonical(const nlohmann::json& j) {
  std::string out;
  Walk(j, out);
  return out;
}

void DumpCanonical(const nlohmann::json& j, std::string& out) {
  const size_t start = out.size();
  try {
    Walk(j, out);
  } catch (...) {
    out.resize(start);
    throw;
  }
}

}  // namespace loyalty
