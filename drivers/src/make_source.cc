#include "sources.h"

namespace loyalty::drivers {

Result<std::unique_ptr<Source>> MakeSource(const SourceOptions& options, SourceEvents events,
                                           const Clock& clock) {
  auto bad = [&](const std::string& why) {
    return Status::Error(ErrorCode::kInvalidArgument, "scanner '" + options.id + "': " + why);
  };
  if (options.id.empty()) return bad("id is required");
  if (options.debounce_ms < 0) return bad("debounce_ms must be >= 0");
  if (options.partial_timeout_ms <= 0) return bad("partial_timeout_ms must be > 0");
  if (options.reopen_interval_ms <= 0) return bad("reopen_interval_ms must be > 0");
  if (options.prefix.size() > kMaxScanBytes || options.suffix.size() > kMaxScanBytes)
    return bad("prefix/suffix too long");
  Result<std::unique_ptr<Source>> r = Status::Error(ErrorCode::kInvalidArgument, "unset");
  if (options.kind == "fifo") {
    r = internal::MakeFifoSource(options, std::move(events), clock);
  } else if (options.kind == "serial") {
    r = internal::MakeSerialSource(options, std::move(events), clock);
  } else if (options.kind == "image") {
    r = internal::MakeImageSource(options, std::move(events), clock);
  } else if (options.kind == "usb-hid-keyboard" || options.kind == "usb-hid-pos") {
    r = internal::MakeUsbSource(options, std::move(events), clock);
  } else {
    return bad("unknown kind '" + options.kind +
               "' (usb-hid-keyboard | usb-hid-pos | serial | image | fifo)");
  }
  if (!r.ok()) return bad(r.status().message());
  return r;
}

}  // namespace loyalty::drivers
