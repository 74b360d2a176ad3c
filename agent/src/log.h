// Structured event log for store IT: one line per event, flushed as written.
//
// JSON lines ({"ts","level","event",...fields}) when format is "json" (or unset and the
// process runs under systemd), readable text otherwise. Every event name comes from the
// catalogue in docs/operations.md. Thread-safe.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "loyalty/base/status.h"

namespace loyalty::agent {

enum class Level { kTrace, kDebug, kInfo, kWarn, kError, kCritical, kOff };

Result<Level> ParseLevel(const std::string& s);

struct LogOptions {
  std::string level = "info";
  std::string format;  // "", "json", "text"
  std::string file;    // optional size-rotated file
  int64_t file_max_bytes = 10 << 20;
  int file_count = 3;
};

// (Re)configures the process-wide event log. Returns an error for a bad level/format.
Status InitLog(const LogOptions& o);
// What would stop InitLog opening `file` (log.file), checked without writing, as the user
// running the check (loyaltyd --check-config): a folder, a file it cannot write, or no
// folder it could make the file in. "" (no file) is ok.
Status CheckLogFile(const std::string& file);
void SetLogLevel(Level l);
bool UsingJson();

void LogEvent(Level level, const std::string& event,
              const nlohmann::json& fields = nlohmann::json::object());

// Sees every event, whatever the log level (metrics count events this way). Called on the
// thread that logs; must be cheap and must not log.
void SetEventObserver(
    std::function<void(const std::string& event, const nlohmann::json& fields)> f);

}  // namespace loyalty::agent
