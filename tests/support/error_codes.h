// Every ErrorCode the build knows, for tests that walk the whole list.
#pragma once

#include <set>

#include "loyalty/base/error_code.h"

namespace loyalty::testing {

inline std::set<ErrorCode> AllErrorCodes() {
  std::set<ErrorCode> all;
#define LOYALTY_TEST_COLLECT(name, text) all.insert(ErrorCode::name);
  LOYALTY_ERROR_CODES(LOYALTY_TEST_COLLECT)
#undef LOYALTY_TEST_COLLECT
  return all;
}

}  // namespace loyalty::testing
