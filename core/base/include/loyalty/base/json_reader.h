// JsonReader: the one strict reader of fields in a parsed JSON tree (POS request bodies,
// sync messages, rules pushed by HQ, admin bodies at HQ).
//
// A reader is a view of one value in a tree plus the path that leads to it
// ("lines[3].unit_price_cents"). The root reader owns the errors; Field(key) and the
// elements handed out by Array() are readers of their own that report into the root's.
// Every typed read checks kind and range and, when the value does not fit, records a
// problem at the value's path and returns false:
//
//   JsonReader r(body, ErrorCode::kBadRequest);
//   r.Str("checkout_id", &id, 1, 64);
//   r.Array("lines", 1, 500, [&](const JsonReader& line) {
//     line.Int("qty", &qty, 1, 10000);  // "lines[3].qty must be 1..10000, got 0"
//   });
//   return r.status();
//
// The messages are "<path> <reason>", and the reasons have one form per kind of problem:
//   is missing                       a required field is absent
//   must be a string, got an array   the wrong kind (an integer, a float (1.5), null, ...)
//   must be 1..10000, got 10001      an integer out of its range
//   must be at most 64 bytes, got 65 (or "must be 1..64 bytes, got 0") a string's length
//   must hold 1..500 items, got 501  an array's length (or "must hold at most N items")
//   must be one of cash, card        a string that is none of the allowed words
// Paths are put together only when a problem is recorded, so reading a field that is
// fine costs a look-up and a kind check, nothing more.
//
// Errors: by default the first problem wins and every later read is a no-op that returns
// false, so a decoder reads as a list of its fields (ErrorMode::kFirst). With
// ErrorMode::kAll every problem is recorded and reading goes on (the rules file reports all
// its mistakes at once). status() is ok, or the caller's ErrorCode with the first problem
// (kFirst) or all of them joined by "; " (kAll); problems() gives them one by one.
//
// Missing and null: a required read (Str, Int, Uint, Bool, Object, Array) refuses a missing
// field ("is missing") and a null one ("must be ..., got null"). The Opt* reads take a
// missing field and a null one alike as absent and reset their std::optional.
//
// Unknown fields: the reader looks only at the fields it is asked for, so unknown ones are
// ignored (what the POS API and the sync protocol want: a newer peer may send more). A
// decoder that refuses them walks Fields() and fails every key it does not know.
//
// Lifetime and threads: a reader refers to the tree, to its parent and to its key; none of
// them may go before it. A child is used where it is made: Field() of a temporary is
// refused at compile time. Readers are not copyable; one root is used by one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "loyalty/base/status.h"

namespace loyalty {

// "an integer", "a float (1.5)", "a string", "a boolean", "an array", "an object", "null":
// what a value was, for "must be X, got Y".
std::string DescribeJson(const nlohmann::json& v);

struct JsonProblem {
  std::string path;  // "" for the root
  std::string reason;
};

enum class ErrorMode { kFirst, kAll };

class JsonReader {
 public:
  static constexpr int64_t kMinInt = std::numeric_limits<int64_t>::min();
  static constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();
  static constexpr uint64_t kMaxUint = std::numeric_limits<uint64_t>::max();
  static constexpr size_t kNoLimit = std::numeric_limits<size_t>::max();

  // The root: `value` at the empty path; problems are reported as `code`.
  JsonReader(const nlohmann::json& value, ErrorCode code, ErrorMode mode = ErrorMode::kFirst);
  JsonReader(const JsonReader&) = delete;
  JsonReader& operator=(const JsonReader&) = delete;

  // --- where and what
  // The value, or nullptr when the field is missing.
  const nlohmann::json* value() const { return value_; }
  // Missing or null.
  bool absent() const { return value_ == nullptr || value_->is_null(); }
  // "lines[3].qty"; "" at the root.
  std::string path() const;

  // The member `key` of this object; a reader whose value() is nullptr when there is no
  // such member (or this is not an object).
  JsonReader Field(std::string_view key) const&;
  JsonReader Field(std::string_view key) const&& = delete;
  // Whether the member `key` is there and not null.
  bool Has(std::string_view key) const;

  // --- errors
  // Records `reason` at this reader's path (or at `key` under it); always returns false.
  bool Fail(std::string_view reason) const;
  bool Fail(std::string_view key, std::string_view reason) const { return Field(key).Fail(reason); }
  // No problem recorded so far (in the whole tree read through the root).
  bool ok() const { return errors_->problems.empty(); }
  Status status() const;
  const std::vector<JsonProblem>& problems() const { return errors_->problems; }

  // --- this reader's own value. Each returns true and sets *out when the value fits.
  bool Require() const;  // "is missing" unless present (null counts as present)
  bool Str(std::string* out, size_t min_bytes = 0, size_t max_bytes = kNoLimit) const;
  bool Int(int64_t* out, int64_t lo = kMinInt, int64_t hi = kMaxInt) const;
  bool Uint(uint64_t* out, uint64_t lo = 0, uint64_t hi = kMaxUint) const;
  bool Bool(bool* out) const;
  // A string that is one of `allowed`.
  bool OneOf(std::string* out, std::initializer_list<std::string_view> allowed) const;
  // The value must be an object; `what` names what kind ("a table of rules").
  bool ExpectObject(std::string_view what = "an object") const;
  // An array of min_items..max_items; each(element) is called for every element in order
  // (each element's reader has the path "key[i]"). In kFirst mode it stops at the first problem.
  template <typename Fn>
  bool Array(size_t min_items, size_t max_items, Fn each) const;
  // Like Array, and every element must be an object.
  template <typename Fn>
  bool Objects(size_t min_items, size_t max_items, Fn each) const;
  // each(key, member) for every member of this object, in key order (nothing if it is not one).
  template <typename Fn>
  void Fields(Fn each) const;

  // --- the member `key` of this object, as above
  bool Require(std::string_view key) const { return Field(key).Require(); }
  bool Str(std::string_view key, std::string* out, size_t min_bytes = 0,
           size_t max_bytes = kNoLimit) const {
    return Field(key).Str(out, min_bytes, max_bytes);
  }
  bool Int(std::string_view key, int64_t* out, int64_t lo = kMinInt, int64_t hi = kMaxInt) const {
    return Field(key).Int(out, lo, hi);
  }
  bool Uint(std::string_view key, uint64_t* out, uint64_t lo = 0, uint64_t hi = kMaxUint) const {
    return Field(key).Uint(out, lo, hi);
  }
  bool Bool(std::string_view key, bool* out) const { return Field(key).Bool(out); }
  bool OneOf(std::string_view key, std::string* out,
             std::initializer_list<std::string_view> allowed) const {
    return Field(key).OneOf(out, allowed);
  }
  // The member must be an object; fn(member) reads it.
  template <typename Fn>
  bool Object(std::string_view key, Fn fn) const;
  template <typename Fn>
  bool Array(std::string_view key, size_t min_items, size_t max_items, Fn each) const {
    return Field(key).Array(min_items, max_items, each);
  }
  template <typename Fn>
  bool Objects(std::string_view key, size_t min_items, size_t max_items, Fn each) const {
    return Field(key).Objects(min_items, max_items, each);
  }

  // Optional members: missing or null resets *out and returns true; anything else is read
  // as the required form reads it.
  bool OptStr(std::string_view key, std::optional<std::string>* out, size_t min_bytes = 0,
              size_t max_bytes = kNoLimit) const;
  bool OptInt(std::string_view key, std::optional<int64_t>* out, int64_t lo = kMinInt,
              int64_t hi = kMaxInt) const;
  bool OptUint(std::string_view key, std::optional<uint64_t>* out, uint64_t lo = 0,
               uint64_t hi = kMaxUint) const;
  bool OptBool(std::string_view key, std::optional<bool>* out) const;

 private:
  struct Errors {
    ErrorCode code;
    ErrorMode mode;
    std::vector<JsonProblem> problems;
  };

  // A child: the member `key` (index == kNoIndex) or the element `index` of parent.
  static constexpr size_t kNoIndex = std::numeric_limits<size_t>::max();
  JsonReader(const JsonReader& parent, const nlohmann::json* value, std::string_view key,
             size_t index)
      : value_(value), parent_(&parent), key_(key), index_(index), errors_(parent.errors_) {}

  // Whether reading goes on: always in kAll mode, until the first problem in kFirst mode.
  bool live() const { return errors_->mode == ErrorMode::kAll || errors_->problems.empty(); }
  // Present and live; "is missing" when absent.
  bool Present() const;
  bool WrongKind(std::string_view expected) const;
  bool CheckCount(size_t min_items, size_t max_items) const;
  // The Opt* reads: absent resets *out, anything else goes through read(T*).
  template <typename T, typename Read>
  bool ReadOpt(std::optional<T>* out, Read read) const;

  const nlohmann::json* value_;
  const JsonReader* parent_ = nullptr;
  std::string_view key_;
  size_t index_ = kNoIndex;
  Errors own_{};  // used by a root only
  Errors* errors_;
};

template <typename Fn>
bool JsonReader::Array(size_t min_items, size_t max_items, Fn each) const {
  if (!Present()) return false;
  if (!value_->is_array()) return WrongKind("an array");
  if (!CheckCount(min_items, max_items)) return false;
  const size_t before = errors_->problems.size();
  for (size_t i = 0; i < value_->size() && live(); ++i) {
    const JsonReader element(*this, &(*value_)[i], {}, i);
    each(element);
  }
  return errors_->problems.size() == before;
}

template <typename Fn>
bool JsonReader::Objects(size_t min_items, size_t max_items, Fn each) const {
  return Array(min_items, max_items, [&](const JsonReader& element) {
    if (element.ExpectObject()) each(element);
  });
}

template <typename Fn>
void JsonReader::Fields(Fn each) const {
  if (value_ == nullptr || !value_->is_object()) return;
  for (auto it = value_->begin(); it != value_->end() && live(); ++it) {
    const JsonReader member(*this, &it.value(), it.key(), kNoIndex);
    each(it.key(), member);
  }
}

template <typename Fn>
bool JsonReader::Object(std::string_view key, Fn fn) const {
  const JsonReader member = Field(key);
  if (!member.ExpectObject()) return false;
  const size_t before = errors_->problems.size();
  fn(member);
  return errors_->problems.size() == before;
}

}  // namespace loyalty
