#include "loyalty/base/json_reader.h"

namespace loyalty {
namespace {

std::string Range(const std::string& lo, const std::string& hi) { return lo + ".." + hi; }

// "must be 1..10000, got 10001"; the full range of the type is named by its width.
template <typename T>
std::string RangeReason(T lo, T hi, const std::string& got) {
  constexpr bool kSigned = std::numeric_limits<T>::is_signed;
  if (lo == std::numeric_limits<T>::min() && hi == std::numeric_limits<T>::max())
    return std::string("must be a 64-bit ") + (kSigned ? "signed" : "unsigned") + " integer, got " +
           got;
  return "must be " + Range(std::to_string(lo), std::to_string(hi)) + ", got " + got;
}

// "at most 64 bytes, got 65", "1..500 items, got 0", "at least 1 bytes, got 0".
std::string CountReason(size_t min, size_t max, size_t got, const char* unit) {
  std::string bounds = min == 0 ? "at most " + std::to_string(max)
                       : max == JsonReader::kNoLimit
                           ? "at least " + std::to_string(min)
                           : Range(std::to_string(min), std::to_string(max));
  return bounds + " " + unit + ", got " + std::to_string(got);
}

// The integer as it was written: JSON integers are int64 or uint64 in nlohmann.
std::string IntText(const nlohmann::json& v) {
  return v.is_number_unsigned() ? std::to_string(v.get<uint64_t>())
                                : std::to_string(v.get<int64_t>());
}

}  // namespace

std::string DescribeJson(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      return "an integer";
    case nlohmann::json::value_t::number_float:
      return "a float (" + v.dump() + ")";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::object:
      return "an object";
    default:
      return v.type_name();
  }
}

JsonReader::JsonReader(const nlohmann::json& value, ErrorCode code, ErrorMode mode)
    : value_(&value), own_{code, mode, {}}, errors_(&own_) {}

std::string JsonReader::path() const {
  if (parent_ == nullptr) return {};
  std::string p = parent_->path();
  if (index_ != kNoIndex) {
    p += '[';
    p += std::to_string(index_);
    p += ']';
  } else {
    if (!p.empty()) p += '.';
    p += key_;
  }
  return p;
}

JsonReader JsonReader::Field(std::string_view key) const& {
  const nlohmann::json* member = nullptr;
  if (value_ != nullptr && value_->is_object()) {
    auto it = value_->find(key);
    if (it != value_->end()) member = &*it;
  }
  return JsonReader(*this, member, key, kNoIndex);
}

bool JsonReader::Has(std::string_view key) const { return !Field(key).absent(); }

bool JsonReader::Fail(std::string_view reason) const {
  if (live()) errors_->problems.push_back({path(), std::string(reason)});
  return false;
}

Status JsonReader::status() const {
  const auto& problems = errors_->problems;
  if (problems.empty()) return Status::Ok();
  std::string message;
  for (const auto& p : problems) {
    if (!message.empty()) message += "; ";
    message += p.path.empty() ? "(top level)" : p.path;
    message += ' ';
    message += p.reason;
  }
  return Status::Error(errors_->code, std::move(message));
}

bool JsonReader::Present() const {
  if (!live()) return false;
  if (value_ == nullptr) return Fail("is missing");
  return true;
}

bool JsonReader::WrongKind(std::string_view expected) const {
  return Fail("must be " + std::string(expected) + ", got " + DescribeJson(*value_));
}

bool JsonReader::CheckCount(size_t min_items, size_t max_items) const {
  size_t n = value_->size();
  if (n < min_items || n > max_items)
    return Fail("must hold " + CountReason(min_items, max_items, n, "items"));
  return true;
}

bool JsonReader::Require() const { return Present(); }

bool JsonReader::Str(std::string* out, size_t min_bytes, size_t max_bytes) const {
  if (!Present()) return false;
  if (!value_->is_string()) return WrongKind("a string");
  const auto& s = value_->get_ref<const std::string&>();
  if (s.size() < min_bytes || s.size() > max_bytes)
    return Fail("must be " + CountReason(min_bytes, max_bytes, s.size(), "bytes"));
  *out = s;
  return true;
}

bool JsonReader::Int(int64_t* out, int64_t lo, int64_t hi) const {
  if (!Present()) return false;
  if (!value_->is_number_integer()) return WrongKind("an integer");  // true for unsigned too
  if (value_->is_number_unsigned() && value_->get<uint64_t>() > static_cast<uint64_t>(kMaxInt))
    return Fail(RangeReason(lo, hi, IntText(*value_)));
  int64_t x = value_->get<int64_t>();
  if (x < lo || x > hi) return Fail(RangeReason(lo, hi, IntText(*value_)));
  *out = x;
  return true;
}

bool JsonReader::Uint(uint64_t* out, uint64_t lo, uint64_t hi) const {
  if (!Present()) return false;
  if (!value_->is_number_integer()) return WrongKind("an integer");
  if (!value_->is_number_unsigned() && value_->get<int64_t>() < 0)
    return Fail(RangeReason(lo, hi, IntText(*value_)));
  uint64_t x = value_->get<uint64_t>();
  if (x < lo || x > hi) return Fail(RangeReason(lo, hi, IntText(*value_)));
  *out = x;
  return true;
}

bool JsonReader::Bool(bool* out) const {
  if (!Present()) return false;
  if (!value_->is_boolean()) return WrongKind("a boolean");
  *out = value_->get<bool>();
  return true;
}

bool JsonReader::OneOf(std::string* out, std::initializer_list<std::string_view> allowed) const {
  std::string s;
  if (!Str(&s)) return false;
  for (auto a : allowed) {
    if (s == a) {
      *out = std::move(s);
      return true;
    }
  }
  std::string list;
  for (auto a : allowed) {
    if (!list.empty()) list += ", ";
    list += a;
  }
  return Fail("must be one of " + list);
}

bool JsonReader::ExpectObject(std::string_view what) const {
  if (!Present()) return false;
  return value_->is_object() || WrongKind(what);
}

// The optional forms: absent resets, anything else goes through the required form.
template <typename T, typename Read>
bool JsonReader::ReadOpt(std::optional<T>* out, Read read) const {
  if (!live()) return false;
  if (absent()) {
    out->reset();
    return true;
  }
  T v{};
  if (!read(&v)) return false;
  *out = std::move(v);
  return true;
}

bool JsonReader::OptStr(std::string_view key, std::optional<std::string>* out, size_t min_bytes,
                        size_t max_bytes) const {
  const JsonReader f = Field(key);
  return f.ReadOpt(out, [&](std::string* v) { return f.Str(v, min_bytes, max_bytes); });
}

bool JsonReader::OptInt(std::string_view key, std::optional<int64_t>* out, int64_t lo,
                        int64_t hi) const {
  const JsonReader f = Field(key);
  return f.ReadOpt(out, [&](int64_t* v) { return f.Int(v, lo, hi); });
}

bool JsonReader::OptUint(std::string_view key, std::optional<uint64_t>* out, uint64_t lo,
                         uint64_t hi) const {
  const JsonReader f = Field(key);
  return f.ReadOpt(out, [&](uint64_t* v) { return f.Uint(v, lo, hi); });
}

bool JsonReader::OptBool(std::string_view key, std::optional<bool>* out) const {
  const JsonReader f = Field(key);
  return f.ReadOpt(out, [&](bool* v) { return f.Bool(v); });
}

}  // namespace loyalty
