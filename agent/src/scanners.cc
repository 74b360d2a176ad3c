#include "scanners.h"

#include <boost/asio/post.hpp>
#include <chrono>

#include "log.h"
#include "loyalty/base/time.h"

namespace loyalty::agent {
namespace {

// The garbage counters of drivers::SourceCounters, with their reason label on /metrics.
struct GarbageReason {
  const char* reason;
  uint64_t drivers::SourceCounters::*counter;
};
constexpr GarbageReason kGarbageReasons[] = {
    {"invalid_utf8", &drivers::SourceCounters::invalid_utf8},
    {"partial_timeout", &drivers::SourceCounters::partial_timeouts},
    {"cut_off", &drivers::SourceCounters::cut_off},
    {"bad_report", &drivers::SourceCounters::decoder_garbage},
    {"unreadable_image", &drivers::SourceCounters::unreadable_files},
    {"oversized_image", &drivers::SourceCounters::oversized_images},
};

// A source that failed to start is started again at the period the drivers use to reopen
// an absent device, so it is up within the same bound as a reconnect (operations.md: five
// seconds).
std::chrono::milliseconds RetryStartPeriod() {
  return std::chrono::milliseconds(drivers::SourceOptions{}.reopen_interval_ms);
}

}  // namespace

Scanners::Scanners(boost::asio::io_context& ioc, const Clock& clock,
                   std::function<void(const drivers::Scan&)> on_scan)
    : ioc_(ioc), clock_(clock), on_scan_(std::move(on_scan)), retry_timer_(ioc) {}

Scanners::~Scanners() {
  life_.reset();
  Stop();
}

drivers::SourceOptions Scanners::ToOptions(const config::ScannerConfig& c) {
  drivers::SourceOptions o;
  o.id = c.id;
  o.kind = c.kind;
  o.path = c.path;
  o.directory = c.directory;
  o.processed = c.processed;
  o.processed_dir = c.processed_dir;
  o.prefix = c.prefix;
  o.suffix = c.suffix;
  o.terminator = c.terminator;
  o.suffix_key = c.suffix_key;
  o.baud = c.baud;
  o.vendor_id = c.vendor_id;
  o.product_id = c.product_id;
  o.serial_number = c.serial_number;
  o.bus_path = c.bus_path;
  o.debounce_ms = c.debounce_ms;
  o.hid_pos.report_id = c.report_id;
  o.hid_pos.length_offset = c.length_offset;
  o.hid_pos.symbology_offset = c.symbology_offset;
  o.hid_pos.data_offset = c.data_offset;
  o.hid_pos.data_len = c.data_len;
  o.hid_pos.flags_offset = c.flags_offset;
  return o;
}

Status Scanners::Start(const std::vector<config::ScannerConfig>& cfg) {
  alive_ = std::make_shared<bool>(true);
  for (const auto& c : cfg) {
    if (Status s = StartOne(c); !s.ok()) {
      Stop();
      return s;
    }
  }
  return Status::Ok();
}

Status Scanners::StartOne(const config::ScannerConfig& c) {
  auto token = std::make_shared<bool>(true);
  std::weak_ptr<bool> alive = token;
  std::weak_ptr<bool> life = life_;
  drivers::SourceEvents ev;
  // A scan read is delivered even when its source was stopped since (a reload): the
  // customer's code was read, and the reader closed only after.
  ev.on_scan = [this, life](drivers::Scan s) {
    boost::asio::post(ioc_, [this, life, s = std::move(s)]() {
      if (life.expired()) return;
      NoteScan(s.scanner_id, s.at_ms);
      on_scan_(s);
    });
  };
  ev.on_state = [this, alive](const std::string& id, drivers::SourceState st,
                              const std::string& detail) {
    boost::asio::post(ioc_, [this, alive, id, st, detail]() {
      if (alive.expired()) return;
      auto it = entries_.find(id);
      std::string name = drivers::SourceStateName(st);
      if (it != entries_.end()) {
        // Health follows the source; the log says each change once. Start() may already
        // have read this state from the source (a source can connect before Start()
        // returns): that is not a reason to leave the change unsaid.
        it->second.state = name;
        if (it->second.logged_state == name) return;
        it->second.logged_state = name;
      }
      const char* event = st == drivers::SourceState::kConnected      ? "scanner_connected"
                          : st == drivers::SourceState::kDisconnected ? "scanner_disconnected"
                                                                      : "scanner_error";
      LogEvent(st == drivers::SourceState::kConnected      ? Level::kInfo
               : st == drivers::SourceState::kDisconnected ? Level::kWarn
                                                           : Level::kError,
               event, {{"scanner_id", id}, {"detail", detail}});
    });
  };
  ev.on_garbage = [this, alive](const std::string& id, const std::string& what) {
    boost::asio::post(ioc_, [alive, id, what]() {
      if (alive.expired()) return;
      LogEvent(Level::kWarn, "scanner_garbage", {{"scanner_id", id}, {"what", what}});
    });
  };
  ev.on_image_refused = [this, alive](const std::string& id, const drivers::RefusedImage& r) {
    boost::asio::post(ioc_, [alive, id, r]() {
      if (alive.expired()) return;
      LogEvent(Level::kWarn, "scanner_image_refused",
               {{"scanner_id", id},
                {"file", r.file},
                {"width", r.width},
                {"height", r.height},
                {"channels", r.channels},
                {"bytes_per_channel", r.bytes_per_channel},
                {"decoded_bytes", r.decoded_bytes},
                {"reason", r.reason}});
    });
  };
  auto src = drivers::MakeSource(ToOptions(c), std::move(ev), clock_);
  if (!src.ok())
    return Status::Error(ErrorCode::kConfigInvalid,
                         "scanners." + c.id + ": " + src.status().message());
  Entry e;
  e.id = c.id;
  e.kind = c.kind;
  e.config = c;
  e.alive = std::move(token);
  e.source = std::move(*src);
  auto [it, _] = entries_.emplace(c.id, std::move(e));
  if (Status s = it->second.source->Start(); !s.ok()) {
    // Logged once here, not once per retry; the source's own state events follow once
    // it starts.
    LogEvent(Level::kWarn, "scanner_disconnected", {{"scanner_id", c.id}, {"detail", s.message()}});
    it->second.start_pending = true;
    it->second.logged_state = "disconnected";
    ArmRetry();
  } else {
    it->second.state = drivers::SourceStateName(it->second.source->state());
  }
  return Status::Ok();
}

void Scanners::ArmRetry() {
  if (retry_armed_) return;
  retry_armed_ = true;
  std::weak_ptr<bool> alive = alive_;
  retry_timer_.expires_after(RetryStartPeriod());
  retry_timer_.async_wait([this, alive](const boost::system::error_code& ec) {
    // Cancelled by Stop(), or from before a Stop(): the entries are not this timer's.
    if (ec || alive.expired()) return;
    retry_armed_ = false;
    RetryStarts();
  });
}

void Scanners::RetryStarts() {
  bool pending = false;
  for (auto& [id, e] : entries_) {
    if (!e.start_pending) continue;
    // Started: the source reports its state itself (scanner_connected once it is up), as
    // after any other start. Still failing: already logged, disconnected.
    if (e.source->Start().ok())
      e.start_pending = false;
    else
      pending = true;
  }
  if (pending) ArmRetry();
}

void Scanners::Retire(Entry& e) {
  e.alive.reset();
  if (!e.source) return;
  e.source->Stop();
  const drivers::SourceCounters c = e.source->counters();
  drivers::SourceCounters& kept = retired_[e.id];
  for (const GarbageReason& g : kGarbageReasons) kept.*g.counter += c.*g.counter;
  e.source.reset();
}

void Scanners::Stop() {
  alive_.reset();
  retry_timer_.cancel();
  retry_armed_ = false;
  for (auto& [id, e] : entries_) Retire(e);
  entries_.clear();
}

std::vector<Scanners::GarbageCount> Scanners::Garbage() const {
  std::vector<GarbageCount> out;
  for (const auto& [id, e] : entries_) {
    const drivers::SourceCounters now = e.source ? e.source->counters() : drivers::SourceCounters{};
    auto kept = retired_.find(id);
    for (const GarbageReason& g : kGarbageReasons) {
      uint64_t n = now.*g.counter;
      if (kept != retired_.end()) n += kept->second.*g.counter;
      out.push_back({id, g.reason, n});
    }
  }
  return out;
}

Status Scanners::Reload(const std::vector<config::ScannerConfig>& cfg) {
  if (!alive_) alive_ = std::make_shared<bool>(true);
  std::map<std::string, const config::ScannerConfig*> wanted;
  for (const auto& c : cfg) wanted[c.id] = &c;
  // A scanner the new configuration keeps (the same id) keeps its last scan in health.
  std::map<std::string, int64_t> last_scans;
  for (auto it = entries_.begin(); it != entries_.end();) {
    auto w = wanted.find(it->first);
    if (w != wanted.end() && *w->second == it->second.config) {
      ++it;  // configured as before: left running
      continue;
    }
    last_scans[it->first] = it->second.last_scan_at_ms;
    Retire(it->second);
    it = entries_.erase(it);
  }
  for (const auto& c : cfg) {
    if (entries_.count(c.id)) continue;
    if (Status s = StartOne(c); !s.ok()) {
      Stop();
      return s;
    }
    if (auto it = last_scans.find(c.id); it != last_scans.end())
      entries_[c.id].last_scan_at_ms = it->second;
  }
  return Status::Ok();
}

void Scanners::NoteScan(const std::string& scanner_id, int64_t at_ms) {
  auto it = entries_.find(scanner_id);
  if (it != entries_.end()) it->second.last_scan_at_ms = at_ms;
}

nlohmann::json Scanners::Health() const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [id, e] : entries_) {
    out.push_back({{"id", id},
                   {"kind", e.kind},
                   {"state", e.state},
                   {"last_scan_at", e.last_scan_at_ms
                                        ? nlohmann::json(FormatRfc3339(e.last_scan_at_ms / 1000))
                                        : nlohmann::json(nullptr)}});
  }
  return out;
}

}  // namespace loyalty::agent
