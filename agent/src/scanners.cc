#include "scanners.h"

#include <boost/asio/post.hpp>

#include "log.h"
#include "loyalty/base/time.h"

namespace loyalty::agent {

Scanners::Scanners(boost::asio::io_context& ioc, const Clock& clock,
                   std::function<void(const drivers::Scan&)> on_scan)
    : ioc_(ioc), clock_(clock), on_scan_(std::move(on_scan)) {}

Scanners::~Scanners() { Stop(); }

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
  std::weak_ptr<bool> alive = alive_;
  for (const auto& c : cfg) {
    drivers::SourceEvents ev;
    ev.on_scan = [this, alive](drivers::Scan s) {
      boost::asio::post(ioc_, [this, alive, s = std::move(s)]() {
        if (alive.expired()) return;
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
          if (it->second.state == name) return;
          it->second.state = name;
        }
        const char* event = st == drivers::SourceState::kConnected      ? "scanner_connected"
                            : st == drivers::SourceState::kDisconnected ? "scanner_disconnected"
                                                                        : "scanner_error";
        LogEvent(st == drivers::SourceState::kConnected ? Level::kInfo : Level::kWarn, event,
                 {{"scanner_id", id}, {"detail", detail}});
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
    if (!src.ok()) {
      Stop();
      return Status::Error(ErrorCode::kConfigInvalid,
                           "scanners." + c.id + ": " + src.status().message());
    }
    Entry e;
    e.id = c.id;
    e.kind = c.kind;
    e.source = std::move(*src);
    auto [it, _] = entries_.emplace(c.id, std::move(e));
    if (Status s = it->second.source->Start(); !s.ok()) {
      LogEvent(Level::kWarn, "scanner_disconnected",
               {{"scanner_id", c.id}, {"detail", s.message()}});
    } else {
      it->second.state = drivers::SourceStateName(it->second.source->state());
    }
  }
  return Status::Ok();
}

void Scanners::Stop() {
  alive_.reset();
  for (auto& [id, e] : entries_)
    if (e.source) e.source->Stop();
  entries_.clear();
}

Status Scanners::Reload(const std::vector<config::ScannerConfig>& cfg) {
  Stop();
  return Start(cfg);
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
