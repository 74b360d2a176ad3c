#include "loyalty/base/phone.h"

namespace loyalty {

std::string PhoneLookupDigits(std::string_view phone) {
  std::string d;
  d.reserve(phone.size());
  for (char c : phone)
    if (c >= '0' && c <= '9') d.push_back(c);
  auto mobile_after = [&d](size_t prefix) { return d.size() == prefix + 11 && d[prefix] == '1'; };
  if (d.rfind("0086", 0) == 0 && mobile_after(4)) return d.substr(4);
  if (d.rfind("86", 0) == 0 && mobile_after(2)) return d.substr(2);
  return d;
}

std::optional<std::string> ParseTypedPhone(std::string_view typed) {
  if (typed.empty() || typed.size() > 32) return std::nullopt;
  size_t digits = 0;
  for (char c : typed) {
    if (c >= '0' && c <= '9') {
      ++digits;
    } else if (c != ' ' && c != '-' && c != '+' && c != '(' && c != ')') {
      return std::nullopt;
    }
  }
  if (digits < 5 || digits > 20) return std::nullopt;
  return PhoneLookupDigits(typed);
}

}  // namespace loyalty
