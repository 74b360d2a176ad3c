// The agent's scanners: one drivers::Source per configured [[scanners]] entry. Driver
// threads post every scan and state change to the event loop; there each scan is
// identified through the member-codes path and becomes a scan event in the ScanHub.
//
// Scanners is used on the event-loop thread only (Start/Stop/Reload/Health).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
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
  // reported disconnected and retried by its driver. A source whose Start() fails (a fifo
  // that cannot be made or is not a fifo, an image folder that is missing) is reported
  // disconnected, logged once, and started again every reopen period of the drivers
  // (SourceOptions::reopen_interval_ms, 1 s) until it starts.
  // Returns an error only for an entry the drivers refuse (bad options).
  Status Start(const std::vector<config::ScannerConfig>& cfg);
  // Stops every source and the start retries.
  void Stop();
  // Replaces the running sources by the new configuration (SIGHUP). A scanner configured
  // exactly as before keeps running untouched (a fifo keeps its read end: no line written
  // meanwhile is lost); the others are stopped and started anew. A scan a stopped source
  // read before it stopped is still delivered.
  Status Reload(const std::vector<config::ScannerConfig>& cfg);

  // [{"id","kind","state","last_scan_at"}] for /v1/health.
  nlohmann::json Health() const;
  void NoteScan(const std::string& scanner_id, int64_t at_ms);

  // Garbage counted by each configured scanner since the agent started (kept across
  // reloads), by reason, for GET /metrics: every reason (kGarbageReasons in scanners.cc)
  // for every scanner, zeros included.
  struct GarbageCount {
    std::string scanner, reason;
    uint64_t count = 0;
  };
  std::vector<GarbageCount> Garbage() const;

  static drivers::SourceOptions ToOptions(const config::ScannerConfig& c);

 private:
  struct Entry {
    std::string id, kind;
    config::ScannerConfig config;        // as started: Reload keeps an entry configured the same
    std::shared_ptr<bool> alive;         // reset when the source stops: its late events are dropped
    std::string state = "disconnected";  // for health: the source's latest state
    // The state last logged (scanner_connected/_disconnected/_error): every change is
    // logged once, the first one included, whenever the source reports it.
    std::string logged_state;
    int64_t last_scan_at_ms = 0;  // kept across a reload that keeps the scanner's id
    std::unique_ptr<drivers::Source> source;
    bool start_pending = false;  // Start() failed; retried by retry_timer_
  };

  void ArmRetry();
  void RetryStarts();
  // Makes and starts the source of one entry (Start's loop body).
  Status StartOne(const config::ScannerConfig& c);
  // Stops one entry's source, keeping its garbage counts (retired_).
  void Retire(Entry& e);

  boost::asio::io_context& ioc_;
  const Clock& clock_;
  std::function<void(const drivers::Scan&)> on_scan_;
  // Guards posts that arrive after Stop: state, garbage and image events of sources since
  // stopped are dropped; scans are dropped only once the Scanners itself is gone (life_).
  std::shared_ptr<bool> alive_;
  std::shared_ptr<bool> life_ = std::make_shared<bool>(true);
  std::map<std::string, Entry> entries_;
  boost::asio::steady_timer retry_timer_;
  bool retry_armed_ = false;
  // Counters of the sources a Stop() ended, by scanner id (Garbage() adds them).
  std::map<std::string, drivers::SourceCounters> retired_;
};

}  // namespace loyalty::agent
