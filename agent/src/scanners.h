// The agent's scanners: one drivers::Source per configured [[scanners]] entry. Driver
// threads post every scan and state change to the event loop; there each scan is
// identified through the member-codes path and becomes a scan event in the ScanHub.
//
// Scanners is used on the event-loop thread only (Start/Stop/Reload/Health).
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loyalty/base/clock.h"
#include "loyalty/config/config.h"
#include "loyalty/drivers/source.h"

namespace loyalty::agent {

class Scanners {
 public:
  // on_scan runs on the event loop for every complete scan.
  Scanners(boost::asio::io_context& ioc, const Clock& clock,
           std::function<void(const drivers::Scan&)> on_scan);
  ~Scanners();

  // Starts a source per config entry; a source that cannot start now (device absent) is
  // reported disconnected and retried by its driver. Returns an error only for an entry
  // the drivers refuse (bad options).
  Status Start(const std::vector<config::ScannerConfig>& cfg);
  void Stop();
  // Replaces the running sources by the new configuration (SIGHUP).
  Status Reload(const std::vector<config::ScannerConfig>& cfg);

  // [{"id","kind","state","last_scan_at"}] for /v1/health.
  nlohmann::json Health() const;
  void NoteScan(const std::string& scanner_id, int64_t at_ms);

  static drivers::SourceOptions ToOptions(const config::ScannerConfig& c);

 private:
  struct Entry {
    std::string id, kind;
    std::string state = "disconnected";
    int64_t last_scan_at_ms = 0;
    std::unique_ptr<drivers::Source> source;
  };

  boost::asio::io_context& ioc_;
  const Clock& clock_;
  std::function<void(const drivers::Scan&)> on_scan_;
  std::shared_ptr<bool> alive_;  // guards posts that arrive after Stop
  std::map<std::string, Entry> entries_;
};

}  // namespace loyalty::agent
