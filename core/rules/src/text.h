// Text checks shared by the line limits and the rules' category names.
#pragma once

#include <string>
#include <string_view>

namespace loyalty::rules::internal {

// Valid UTF-8 without C0 controls, DEL or C1 controls (U+0080..U+009F).
bool IsCleanText(std::string_view s);

// For messages: the text with control and non-ASCII bytes escaped, cut at 80 bytes.
std::string Printable(std::string_view s);

}  // namespace loyalty::rules::internal
