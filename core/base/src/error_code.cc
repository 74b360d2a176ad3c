#include "loyalty/base/error_code.h"

#include <ostream>

namespace loyalty {

std::string_view ErrorCodeName(ErrorCode c) {
  switch (c) {
    case ErrorCode::kOk:
      return "ok";
#define LOYALTY_ERROR_CODE_NAME(name, text) \
  case ErrorCode::name:                     \
    return text;
      LOYALTY_ERROR_CODES(LOYALTY_ERROR_CODE_NAME)
#undef LOYALTY_ERROR_CODE_NAME
  }
  return "internal";
}

std::optional<ErrorCode> ErrorCodeFromName(std::string_view name) {
#define LOYALTY_ERROR_CODE_FROM(name_, text) \
  if (name == text) return ErrorCode::name_;
  LOYALTY_ERROR_CODES(LOYALTY_ERROR_CODE_FROM)
#undef LOYALTY_ERROR_CODE_FROM
  return std::nullopt;
}

std::ostream& operator<<(std::ostream& os, ErrorCode c) { return os << ErrorCodeName(c); }

}  // namespace loyalty
