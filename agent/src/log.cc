#include "log.h"

#include "events.h"

#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "loyalty/base/file.h"
#include "loyalty/base/time.h"

namespace loyalty::agent {
namespace {

std::mutex g_mu;
std::shared_ptr<spdlog::logger> g_logger;
bool g_json = false;
Level g_level = Level::kInfo;
std::function<void(const std::string&, const nlohmann::json&)> g_observer;

const char* LevelName(Level l) {
  switch (l) {
    case Level::kTrace:
      return "trace";
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
    case Level::kCritical:
      return "critical";
    case Level::kOff:
      return "off";
  }
  return "info";
}

std::string NowStamp() {
  auto now = std::chrono::system_clock::now();
  int64_t ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::string s = FormatRfc3339(ms / 1000);
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03d", static_cast<int>(ms % 1000));
  return s.substr(0, s.size() - 1) + frac + "Z";
}

std::shared_ptr<spdlog::logger> Logger() {
  std::lock_guard<std::mutex> g(g_mu);
  if (!g_logger) {
    g_logger = std::make_shared<spdlog::logger>("loyalty",
                                                std::make_shared<spdlog::sinks::stdout_sink_mt>());
    g_logger->set_pattern("%v");
    g_logger->set_level(spdlog::level::trace);
    g_logger->flush_on(spdlog::level::trace);
  }
  return g_logger;
}

}  // namespace

Result<Level> ParseLevel(const std::string& s) {
  static const std::pair<const char*, Level> kLevels[] = {
      {"trace", Level::kTrace}, {"debug", Level::kDebug}, {"info", Level::kInfo},
      {"warn", Level::kWarn},   {"error", Level::kError}, {"critical", Level::kCritical},
      {"off", Level::kOff}};
  for (auto& [n, l] : kLevels)
    if (s == n) return l;
  return Status::Error(
      ErrorCode::kConfigInvalid,
      "log level '" + s + "' is not one of trace, debug, info, warn, error, critical, off");
}

Status CheckLogFile(const std::string& file) {
  if (file.empty()) return Status::Ok();
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(file, ec);
  if (fs::is_directory(st))
    return Status::Error(ErrorCode::kConfigInvalid, "log.file: " + file + " is a directory");
  if (fs::exists(st)) {
    if (::access(file.c_str(), W_OK) != 0)
      return Status::Error(ErrorCode::kConfigInvalid,
                           "log.file: " + file + ": " + std::strerror(errno));
    return Status::Ok();
  }
  // The logger makes the file and any missing folder.
  if (std::string why = WhyNoFileCanBeMadeAt(file); !why.empty())
    return Status::Error(ErrorCode::kConfigInvalid, "log.file: " + file + ": " + why);
  return Status::Ok();
}

Status InitLog(const LogOptions& o) {
  auto level = ParseLevel(o.level);
  if (!level.ok()) return level.status();
  bool json;
  if (o.format == "json") {
    json = true;
  } else if (o.format == "text") {
    json = false;
  } else if (o.format.empty()) {
    // Under systemd journald keeps JSON lines; on a terminal people read text.
    json = std::getenv("JOURNAL_STREAM") != nullptr || std::getenv("INVOCATION_ID") != nullptr;
  } else {
    return Status::Error(ErrorCode::kConfigInvalid,
                         "log.format: '" + o.format + "' is not json or text");
  }
  std::vector<spdlog::sink_ptr> sinks{std::make_shared<spdlog::sinks::stdout_sink_mt>()};
  if (!o.file.empty()) {
    try {
      sinks.push_back(std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
          o.file, static_cast<size_t>(o.file_max_bytes), static_cast<size_t>(o.file_count)));
    } catch (const std::exception& e) {
      return Status::Error(ErrorCode::kConfigInvalid, std::string("log.file: ") + e.what());
    }
  }
  auto logger = std::make_shared<spdlog::logger>("loyalty", sinks.begin(), sinks.end());
  logger->set_pattern("%v");
  logger->set_level(spdlog::level::trace);
  logger->flush_on(spdlog::level::trace);
  std::lock_guard<std::mutex> g(g_mu);
  g_logger = logger;
  g_json = json;
  g_level = *level;
  return Status::Ok();
}

void SetLogLevel(Level l) {
  std::lock_guard<std::mutex> g(g_mu);
  g_level = l;
}

bool UsingJson() {
  std::lock_guard<std::mutex> g(g_mu);
  return g_json;
}

void SetEventObserver(std::function<void(const std::string&, const nlohmann::json&)> f) {
  std::lock_guard<std::mutex> g(g_mu);
  g_observer = std::move(f);
}

void LogEvent(Level level, const std::string& event, const nlohmann::json& fields) {
  bool json;
  std::function<void(const std::string&, const nlohmann::json&)> observer;
  {
    std::lock_guard<std::mutex> g(g_mu);
    observer = g_observer;
  }
  if (observer) observer(event, fields);
  {
    std::lock_guard<std::mutex> g(g_mu);
    if (level < g_level || g_level == Level::kOff) return;
    json = g_json;
  }
  auto logger = Logger();
  if (!FindEvent(event)) LogEvent(Level::kError, "log_event_uncatalogued", {{"name", event}});
  if (json) {
    nlohmann::json line = {{"ts", NowStamp()}, {"level", LevelName(level)}, {"event", event}};
    if (fields.is_object())
      for (auto it = fields.begin(); it != fields.end(); ++it) line[it.key()] = it.value();
    logger->info(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    logger->info(EventTextLine(NowStamp(), LevelName(level), event, fields));
  }
}

}  // namespace loyalty::agent
