// Status and Result<T>: errors as values across module boundaries.
//
// A Status is either ok or carries an ErrorCode (loyalty/base/error_code.h: the contract's
// error codes and the internal ones) and a message for humans. Result<T> holds a T or
// a non-ok Status. Both are plain values: copyable, no exceptions, thread-compatible.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

#include "loyalty/base/error_code.h"

namespace loyalty {

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  static Status Ok() { return Status(); }
  // An error; kOk is taken as kInternal (an error always has a code).
  static Status Error(ErrorCode code, std::string message) {
    Status s;
    s.code_ = code == ErrorCode::kOk ? ErrorCode::kInternal : code;
    s.message_ = std::move(message);
    return s;
  }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  // The code's wire name: "ok", "bad_request", ...
  std::string_view code_name() const { return ErrorCodeName(code_); }
  const std::string& message() const { return message_; }
  std::string ToString() const { return ok() ? "ok" : std::string(code_name()) + ": " + message_; }

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(v_).ok() && "Result from an ok Status has no value");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &std::get<T>(v_); }
  const T* operator->() const { return &std::get<T>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace loyalty
