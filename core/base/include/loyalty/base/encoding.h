// Byte encodings used at the edges: hex, strict base64url (RFC 4648 §5, no padding).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace loyalty {

std::string HexEncode(std::string_view bytes);               // lower case
std::optional<std::string> HexDecode(std::string_view hex);  // accepts either case, even length

std::string Base64UrlEncode(std::string_view bytes);  // no '=' padding
// Strict: only [A-Za-z0-9_-], no padding, no length ≡ 1 (mod 4), and the unused low bits
// of the last character must be zero (canonical). Anything else → nullopt.
std::optional<std::string> Base64UrlDecode(std::string_view text);

// Standard base64 with padding (PEM bodies and the like).
std::string Base64Encode(std::string_view bytes);

bool IsValidUtf8(std::string_view s);

}  // namespace loyalty
