// USB HID scanners through libusb: the keyboard wedge (boot keyboard reports) and HID POS
// (usage page 0x8C) kinds.
//
// Threading: each source owns a libusb context and one thread that blocks in
// libusb_handle_events_timeout_completed(). Transfer and hotplug callbacks run inside that
// call, on that thread, so the decoders and the device handle need no locks. Stop() wakes
// the thread with libusb_interrupt_event_handler(). The timeout is 1 s while idle (one
// wake-up a second), 100 ms while a half-finished read waits for its partial timeout.
//
// Device loss: a real device completes the pending transfer with NO_DEVICE; an emulated one
// (umockdev) may only send the hotplug LEFT event. Either way the source cancels, releases,
// reattaches the kernel driver it detached, drops any half-finished read and reports
// kDisconnected; ARRIVED (or, without hotplug, polling) reopens it.
#include <libusb.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>

#include "source_base.h"
#include "sources.h"

namespace loyalty::drivers::internal {
namespace {

constexpr unsigned kControlTimeoutMs = 250;
constexpr int kIdleEventTimeoutMs = 1000;
constexpr int kPartialCheckMs = 100;

// HID class requests (HID 1.11 §7.2).
constexpr uint8_t kHidSetIdle = 0x0A;
constexpr uint8_t kHidSetProtocol = 0x0B;

std::string UsbError(const std::string& what, int rc) {
  return what + ": " + libusb_error_name(rc);
}

std::string Hex4(int v) {
  char b[8];
  std::snprintf(b, sizeof b, "%04x", v & 0xFFFF);
  return b;
}

struct BusPath {
  int bus = -1;
  std::vector<uint8_t> ports;
};

std::optional<BusPath> ParseBusPath(const std::string& s) {
  if (s.empty()) return BusPath{};
  BusPath p;
  const size_t dash = s.find('-');
  if (dash == std::string::npos || dash == 0) return std::nullopt;
  auto number = [](const std::string& t) -> int {
    if (t.empty() || t.size() > 3) return -1;
    int v = 0;
    for (char c : t) {
      if (c < '0' || c > '9') return -1;
      v = v * 10 + (c - '0');
    }
    return v <= 255 ? v : -1;
  };
  p.bus = number(s.substr(0, dash));
  if (p.bus < 0) return std::nullopt;
  size_t start = dash + 1;
  for (;;) {
    const size_t dot = s.find('.', start);
    const int port =
        number(s.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (port <= 0) return std::nullopt;
    p.ports.push_back(static_cast<uint8_t>(port));
    if (dot == std::string::npos) break;
    start = dot + 1;
    if (p.ports.size() >= 7) return std::nullopt;  // USB allows 7 tiers
  }
  return p;
}

class UsbSource final : public SourceBase {
 public:
  UsbSource(const SourceOptions& o, SourceEvents e, const Clock& c, BusPath bus_path)
      : SourceBase(o, std::move(e), c),
        keyboard_(o.kind == "usb-hid-keyboard"),
        bus_path_(std::move(bus_path)),
        kbd_(o.suffix_key == "tab" ? SuffixKey::kTab : SuffixKey::kEnter),
        pos_(o.hid_pos) {}

  ~UsbSource() override {
    Stop();
    if (ctx_ != nullptr) libusb_exit(ctx_);
  }

 protected:
  Status Prepare() override {
    libusb_context* ctx = nullptr;
    const int rc = libusb_init(&ctx);
    if (rc != 0) return Status::Error(ErrorCode::kUnavailable, UsbError("libusb_init", rc));
    ctx_ = ctx;
    return Status::Ok();
  }

  void Interrupt() override {
    if (ctx_ != nullptr) libusb_interrupt_event_handler(ctx_);
  }

  void Run() override {
    hotplug_ = libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG) != 0;
    if (hotplug_) {
      const int rc = libusb_hotplug_register_callback(
          ctx_, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT,
          LIBUSB_HOTPLUG_NO_FLAGS, options_.vendor_id, options_.product_id,
          LIBUSB_HOTPLUG_MATCH_ANY, &UsbSource::OnHotplug, this, &hotplug_handle_);
      if (rc != LIBUSB_SUCCESS) hotplug_ = false;  // fall back to polling
    }
    try_open_now_ = true;
    while (!stopping()) {
      if (handle_ == nullptr && (try_open_now_ || (!hotplug_ && PollDue()))) {
        try_open_now_ = false;
        TryOpen();
      }
      const int wait_ms =
          handle_ != nullptr && Decoding().has_partial ? kPartialCheckMs : kIdleEventTimeoutMs;
      timeval tv{wait_ms / 1000, (wait_ms % 1000) * 1000};
      libusb_handle_events_timeout_completed(ctx_, &tv, nullptr);
      if (stopping()) break;
      if (handle_ != nullptr && device_lost_) {
        CloseDevice(lost_reason_);
        // Still enumerated (e.g. a stall we could not clear): retry after the interval.
        if (hotplug_) retry_at_ = Now() + std::chrono::milliseconds(options_.reopen_interval_ms);
      }
      if (handle_ == nullptr && hotplug_ && retry_at_ && Now() >= *retry_at_) {
        retry_at_.reset();
        try_open_now_ = true;
      }
      CheckPartialTimeout();
    }
    if (handle_ != nullptr) CloseDevice("stopped");
    if (hotplug_) libusb_hotplug_deregister_callback(ctx_, hotplug_handle_);
  }

 private:
  struct DecodingState {
    bool has_partial;
  };

  static std::chrono::steady_clock::time_point Now() { return std::chrono::steady_clock::now(); }

  DecodingState Decoding() const { return {keyboard_ ? kbd_.has_partial() : pos_.has_partial()}; }

  bool PollDue() {
    // Reconnect scheduling is operational, not observable: real time, not the injected clock.
    if (Now() < next_poll_) return false;
    next_poll_ = Now() + std::chrono::milliseconds(options_.reopen_interval_ms);
    return true;
  }

  static int LIBUSB_CALL OnHotplug(libusb_context*, libusb_device* dev, libusb_hotplug_event event,
                                   void* user) {
    auto* self = static_cast<UsbSource*>(user);
    if (event == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED) {
      if (self->handle_ == nullptr) self->try_open_now_ = true;
    } else if (event == LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT) {
      if (self->handle_ != nullptr && dev == libusb_get_device(self->handle_)) {
        self->device_lost_ = true;
        self->lost_reason_ = "device removed";
      }
    }
    return 0;  // stay registered
  }

  bool MatchesPath(libusb_device* dev) const {
    if (bus_path_.bus < 0) return true;
    if (libusb_get_bus_number(dev) != bus_path_.bus) return false;
    uint8_t ports[8];
    const int n = libusb_get_port_numbers(dev, ports, sizeof ports);
    return n == static_cast<int>(bus_path_.ports.size()) &&
           std::memcmp(ports, bus_path_.ports.data(), bus_path_.ports.size()) == 0;
  }

  // Picks the HID interface and its interrupt IN endpoint.
  bool FindEndpoint(libusb_device* dev, int* iface, uint8_t* ep, int* packet) const {
    libusb_config_descriptor* cfg = nullptr;
    if (libusb_get_active_config_descriptor(dev, &cfg) != 0 || cfg == nullptr) return false;
    int best_score = -1;
    for (int i = 0; i < cfg->bNumInterfaces; ++i) {
      if (cfg->interface[i].num_altsetting < 1) continue;
      const libusb_interface_descriptor& alt = cfg->interface[i].altsetting[0];
      if (alt.bInterfaceClass != LIBUSB_CLASS_HID) continue;
      for (int e = 0; e < alt.bNumEndpoints; ++e) {
        const libusb_endpoint_descriptor& d = alt.endpoint[e];
        if ((d.bEndpointAddress & LIBUSB_ENDPOINT_DIR_MASK) != LIBUSB_ENDPOINT_IN) continue;
        if ((d.bmAttributes & LIBUSB_TRANSFER_TYPE_MASK) != LIBUSB_TRANSFER_TYPE_INTERRUPT)
          continue;
        const int size = d.wMaxPacketSize & 0x7FF;
        int score = 0;
        if (keyboard_) {
          score = (alt.bInterfaceSubClass == 1 && alt.bInterfaceProtocol == 1) ? 2 : 1;
        } else {
          const HidPosLayout& l = options_.hid_pos;
          score = (l.report_size != 0 ? size == l.report_size : size >= l.MinReportSize()) ? 2 : 1;
        }
        if (score > best_score && size > 0) {
          best_score = score;
          *iface = alt.bInterfaceNumber;
          *ep = d.bEndpointAddress;
          *packet = size;
        }
      }
    }
    libusb_free_config_descriptor(cfg);
    return best_score >= 0;
  }

  bool MatchesSerial(libusb_device_handle* h, const libusb_device_descriptor& desc) const {
    if (options_.serial_number.empty()) return true;
    if (desc.iSerialNumber == 0) return false;
    unsigned char buf[256];
    const int n = libusb_get_string_descriptor_ascii(h, desc.iSerialNumber, buf, sizeof buf);
    return n >= 0 && options_.serial_number == std::string(reinterpret_cast<char*>(buf), n);
  }

  void TryOpen() {
    libusb_device** list = nullptr;
    const ssize_t n = libusb_get_device_list(ctx_, &list);
    std::string why = "no device " + Hex4(options_.vendor_id) + ":" + Hex4(options_.product_id);
    SourceState fail_state = SourceState::kDisconnected;
    for (ssize_t i = 0; i < n && handle_ == nullptr; ++i) {
      libusb_device* dev = list[i];
      libusb_device_descriptor desc;
      if (libusb_get_device_descriptor(dev, &desc) != 0) continue;
      if (desc.idVendor != options_.vendor_id || desc.idProduct != options_.product_id) continue;
      if (!MatchesPath(dev)) continue;
      libusb_device_handle* h = nullptr;
      int rc = libusb_open(dev, &h);
      if (rc != 0) {
        // Usually permissions: the udev rule is missing.
        why = UsbError("open", rc);
        fail_state = SourceState::kError;
        continue;
      }
      if (!MatchesSerial(h, desc)) {
        libusb_close(h);
        continue;
      }
      std::string err;
      if (!Claim(dev, h, &err)) {
        libusb_close(h);
        why = err;
        fail_state = SourceState::kError;
        continue;
      }
      handle_ = h;
    }
    if (n >= 0) libusb_free_device_list(list, 1);
    if (handle_ == nullptr) {
      SetState(fail_state, why);
      if (hotplug_ && fail_state == SourceState::kError)
        retry_at_ = Now() + std::chrono::milliseconds(options_.reopen_interval_ms);
      return;
    }
    device_lost_ = false;
    SetState(SourceState::kConnected, "usb " + Hex4(options_.vendor_id) + ":" +
                                          Hex4(options_.product_id) + " interface " +
                                          std::to_string(iface_));
  }

  bool Claim(libusb_device* dev, libusb_device_handle* h, std::string* err) {
    int iface = 0;
    uint8_t ep = 0;
    int packet = 0;
    if (!FindEndpoint(dev, &iface, &ep, &packet)) {
      *err = "no HID interface with an interrupt IN endpoint";
      return false;
    }
    // Detach only a driver that is really there: auto-detach and blind detaches fail on
    // some stacks (and under umockdev), and an error answer means "no driver" here.
    detached_ = false;
    if (libusb_kernel_driver_active(h, iface) == 1) {
      const int rc = libusb_detach_kernel_driver(h, iface);
      if (rc != 0 && rc != LIBUSB_ERROR_NOT_FOUND) {
        *err = UsbError("detach kernel driver", rc);
        return false;
      }
      detached_ = rc == 0;
    }
    int rc = libusb_claim_interface(h, iface);
    if (rc != 0) {
      if (detached_) libusb_attach_kernel_driver(h, iface);
      detached_ = false;
      *err = UsbError("claim interface", rc);
      return false;
    }
    constexpr uint8_t type = 0x21;  // class request, to the interface, host to device
    // Boot protocol makes the keyboard's reports the 8-byte layout whatever its report
    // descriptor says; SET_IDLE 0 asks for reports only on change. Devices that stall
    // either request still work, so failures are ignored.
    if (keyboard_)
      libusb_control_transfer(h, type, kHidSetProtocol, 0, iface, nullptr, 0, kControlTimeoutMs);
    libusb_control_transfer(h, type, kHidSetIdle, 0, iface, nullptr, 0, kControlTimeoutMs);

    iface_ = iface;
    buffer_.assign(static_cast<size_t>(packet), 0);
    transfer_ = libusb_alloc_transfer(0);
    // Transfers are the endpoint's wMaxPacketSize, as the kernel's own HID driver submits.
    libusb_fill_interrupt_transfer(transfer_, h, ep, buffer_.data(), packet, &UsbSource::OnTransfer,
                                   this, 0);
    rc = libusb_submit_transfer(transfer_);
    if (rc != 0) {
      libusb_free_transfer(transfer_);
      transfer_ = nullptr;
      libusb_release_interface(h, iface);
      if (detached_) libusb_attach_kernel_driver(h, iface);
      detached_ = false;
      *err = UsbError("submit transfer", rc);
      return false;
    }
    transfer_active_ = true;
    return true;
  }

  static void LIBUSB_CALL OnTransfer(libusb_transfer* t) {
    auto* self = static_cast<UsbSource*>(t->user_data);
    self->transfer_active_ = false;
    switch (t->status) {
      case LIBUSB_TRANSFER_COMPLETED: {
        self->OnReport(std::span<const uint8_t>(t->buffer, static_cast<size_t>(t->actual_length)));
        if (self->stopping() || self->device_lost_) return;
        const int rc = libusb_submit_transfer(t);
        if (rc == 0) {
          self->transfer_active_ = true;
        } else {
          self->device_lost_ = true;
          self->lost_reason_ = UsbError("resubmit", rc);
        }
        return;
      }
      case LIBUSB_TRANSFER_CANCELLED:
        return;
      case LIBUSB_TRANSFER_NO_DEVICE:
        self->device_lost_ = true;
        self->lost_reason_ = "device removed";
        return;
      default:
        self->device_lost_ = true;
        self->lost_reason_ =
            std::string("transfer failed: ") + libusb_error_name(t->status == LIBUSB_TRANSFER_STALL
                                                                     ? LIBUSB_ERROR_PIPE
                                                                     : LIBUSB_ERROR_IO);
        return;
    }
  }

  void OnReport(std::span<const uint8_t> report) {
    last_report_mono_ms_ = clock_.mono_ms();  // before the counter others can observe
    UpdateCounters([&](SourceCounters& c) { c.bytes_read += report.size(); });
    if (keyboard_) {
      kbd_.Feed(report, &frames_);
      SyncDecoderCounters(kbd_.counters());
    } else {
      pos_.Feed(report, &frames_);
      SyncDecoderCounters(pos_.counters());
    }
    Deliver(&frames_);
  }

  void DiscardPartial() {
    if (keyboard_)
      kbd_.DiscardPartial();
    else
      pos_.DiscardPartial();
  }

  void CheckPartialTimeout() {
    if (handle_ == nullptr || !Decoding().has_partial) return;
    if (clock_.mono_ms() - last_report_mono_ms_ < options_.partial_timeout_ms) return;
    DiscardPartial();
    Garbage(&SourceCounters::partial_timeouts, "unfinished scan timed out");
  }

  void CloseDevice(const std::string& reason) {
    if (transfer_ != nullptr) {
      if (transfer_active_ && libusb_cancel_transfer(transfer_) == 0) {
        // The cancellation completes through the event loop; bounded so a wedged stack
        // cannot hang Stop().
        for (int i = 0; i < 50 && transfer_active_; ++i) {
          timeval tv{0, 20 * 1000};
          libusb_handle_events_timeout_completed(ctx_, &tv, nullptr);
        }
      }
      if (!transfer_active_) libusb_free_transfer(transfer_);
      // else: leaked on purpose; freeing a transfer libusb still owns is worse.
      transfer_ = nullptr;
      transfer_active_ = false;
    }
    libusb_release_interface(handle_, iface_);
    if (detached_) {
      libusb_attach_kernel_driver(handle_, iface_);
      detached_ = false;
    }
    libusb_close(handle_);
    handle_ = nullptr;
    device_lost_ = false;
    // A read the device did not finish will never be finished.
    if (Decoding().has_partial) {
      DiscardPartial();
      Garbage(&SourceCounters::cut_off, "scan cut off by disconnect");
    }
    if (keyboard_) kbd_.DiscardPartial();  // forget held keys too
    SetState(SourceState::kDisconnected, reason);
  }

  const bool keyboard_;
  const BusPath bus_path_;
  libusb_context* ctx_ = nullptr;
  bool hotplug_ = false;
  libusb_hotplug_callback_handle hotplug_handle_ = 0;
  std::chrono::steady_clock::time_point next_poll_{};
  std::optional<std::chrono::steady_clock::time_point> retry_at_;

  // Owned by the source thread.
  libusb_device_handle* handle_ = nullptr;
  libusb_transfer* transfer_ = nullptr;
  bool transfer_active_ = false;
  bool detached_ = false;
  int iface_ = 0;
  bool try_open_now_ = false;
  bool device_lost_ = false;
  std::string lost_reason_;
  std::vector<uint8_t> buffer_;
  std::vector<Frame> frames_;
  int64_t last_report_mono_ms_ = 0;
  KeyboardReportDecoder kbd_;
  HidPosReassembler pos_;
};

}  // namespace

Result<std::unique_ptr<Source>> MakeUsbSource(const SourceOptions& o, SourceEvents e,
                                              const Clock& c) {
  if (o.vendor_id <= 0 || o.vendor_id > 0xFFFF || o.product_id < 0 || o.product_id > 0xFFFF)
    return Status::Error(ErrorCode::kInvalidArgument,
                         o.kind + ": vendor_id and product_id are required (1..0xffff)");
  std::optional<BusPath> bus_path = ParseBusPath(o.bus_path);
  if (!bus_path)
    return Status::Error(ErrorCode::kInvalidArgument,
                         o.kind + ": bus_path must look like 1-2 or 1-2.3");
  if (o.kind == "usb-hid-keyboard") {
    if (o.suffix_key != "enter" && o.suffix_key != "tab")
      return Status::Error(ErrorCode::kInvalidArgument,
                           "usb-hid-keyboard: suffix_key must be enter or tab");
  } else {
    Status s = o.hid_pos.Validate();
    if (!s.ok()) return Status::Error(ErrorCode::kInvalidArgument, "usb-hid-pos: " + s.message());
  }
  return std::unique_ptr<Source>(new UsbSource(o, std::move(e), c, std::move(*bus_path)));
}

}  // namespace loyalty::drivers::internal
