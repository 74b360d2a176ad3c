// A program's catalogue of log events: every event it writes, with its level, its fields
// and what IT should do about it. loyaltyd's is agent/src/events.h, loyalty-hq's
// loyalty/hq/events.h; docs/operations.md lists each as a table, and tests keep the two
// equal. A logger looks a name up here and flags one that is not listed.
#pragma once

#include <span>
#include <string_view>

namespace loyalty {

struct EventInfo {
  std::string_view name;
  std::string_view level;   // the level it is normally logged at
  std::string_view fields;  // besides ts, level, event
  std::string_view action;  // what IT should do ("-" for nothing)
};

// The entry of `name` in `catalogue`; nullptr when it is not listed.
inline const EventInfo* FindEvent(std::span<const EventInfo> catalogue, std::string_view name) {
  for (const auto& e : catalogue)
    if (e.name == name) return &e;
  return nullptr;
}

}  // namespace loyalty
