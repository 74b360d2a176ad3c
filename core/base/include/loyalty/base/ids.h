// Globally unique, time-ordered ids for ledger entries and runs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace loyalty {

// 16 bytes = 48-bit big-endian unix milliseconds + 80 random bits, as 32 lower-case hex
// characters. Ids sort by creation time (to the millisecond) and never collide in practice,
// across terminals and across a lost disk.
std::string NewEntryId(int64_t now_ms);
bool IsEntryId(std::string_view s);
int64_t EntryIdMillis(std::string_view id);  // the embedded time; requires IsEntryId(id)

}  // namespace loyalty
