// A program's catalogue of log events: every event it writes, with its level, its fields
// and what IT should do about it. loyaltyd's is agent/src/events.h, loyalty-hq's
// loyalty/hq/events.h; docs/operations.md lists each as a table, and tests keep the two
// equal. A logger looks a name up here and flags one that is not listed.
#pragma once

#include <nlohmann/json.hpp>

#include <span>
#include <string>
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

// An event as a line of text, for people reading a terminal: "<ts> <level> <event>" then
// " key=value" for each field (strings as they are, other values as JSON). Both programs'
// loggers write this when [log] format is text.
inline std::string EventTextLine(std::string_view ts, std::string_view level,
                                 std::string_view event, const nlohmann::json& fields) {
  std::string line = std::string(ts) + " " + std::string(level) + " " + std::string(event);
  if (fields.is_object())
    for (auto it = fields.begin(); it != fields.end(); ++it)
      line += " " + it.key() + "=" +
              (it.value().is_string()
                   ? it.value().get<std::string>()
                   : it.value().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  return line;
}

}  // namespace loyalty
