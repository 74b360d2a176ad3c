// Phone numbers as both ends hash them for look-up (docs/pos-api.md, "Phone look-up"): the
// digits alone, so that "+86 138-1234-5678", "0086 13812345678" and "13812345678" are one
// number, hashed the same at HQ and at the till.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace loyalty {

// The digits of `phone`, with a leading country code 86 dropped when what follows is an
// 11-digit mainland mobile number ("+86…", "0086…", "86…" with 13 or 15 digits in all).
std::string PhoneLookupDigits(std::string_view phone);

// What a cashier may type: 1–32 characters of digits, spaces, '-', '+', '(' and ')' holding
// 5–20 digits. The look-up digits, or nullopt for anything else.
std::optional<std::string> ParseTypedPhone(std::string_view typed);

}  // namespace loyalty
