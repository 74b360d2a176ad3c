// Scanner sources: the interface the agent consumes.
//
// A Source owns one scanner (a USB device, a tty, a fifo or a watched directory) and a
// thread of its own that blocks on the scanner's descriptors. Complete, de-framed reads
// arrive through SourceEvents::on_scan after, in this order: bounding (kMaxScanBytes),
// prefix/suffix stripping, the UTF-8 check and debouncing. A source that loses its device
// reports kDisconnected and reopens it by itself when it comes back.
//
// The library knows nothing of members or points and does not read the agent's config:
// the caller fills SourceOptions.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "loyalty/base/clock.h"
#include "loyalty/base/status.h"
#include "loyalty/drivers/decoders.h"

namespace loyalty::drivers {

struct Scan {
  std::string scanner_id;
  std::string text;
  std::string symbology;  // AIM id like "]Q1" when known, else empty
  int64_t at_ms = 0;      // Clock::now_ms() when the read completed
  // More than kMaxScanBytes before the terminator: text is empty; the agent answers
  // rejected / code_malformed.
  bool overlong = false;
};

enum class SourceState { kConnected, kDisconnected, kError };
const char* SourceStateName(SourceState s);  // "connected" | "disconnected" | "error"

// An image file refused before decoding (image sources).
struct RefusedImage {
  std::string file;           // the file's name in the watched directory
  int width = 0, height = 0;  // as the header declares (0 when it could not be read)
  int channels = 0, bytes_per_channel = 0;
  int64_t decoded_bytes = 0;
  std::string reason;
};

// Called from the source's own thread; each must be cheap and must not call back into the
// source (post to your own loop). Any of them may be empty.
//  on_scan:    one delivered scan.
//  on_state:   every state change, with a human-readable detail.
//  on_garbage: once per burst of garbage (the first after a good scan or a state change,
//              then at most once a second while garbage continues); `what` names the kind
//              and the count since the last call. Every item is in Source::counters().
//  on_image_refused: image sources, once per file refused for its size (the decoded size
//              its header declares is over kMaxDecodedImageBytes, or its data inflates to
//              more than the header needs); the file is disposed of like any other.
struct SourceEvents {
  std::function<void(Scan)> on_scan;
  std::function<void(const std::string& scanner_id, SourceState, const std::string& detail)>
      on_state;
  std::function<void(const std::string& scanner_id, const std::string& what)> on_garbage;
  std::function<void(const std::string& scanner_id, const RefusedImage&)> on_image_refused;
};

// Plain options; the agent maps its [[scanners]] config tables onto this.
struct SourceOptions {
  std::string id;
  std::string kind;                   // usb-hid-keyboard | usb-hid-pos | serial | image | fifo
  std::string path;                   // serial: tty; fifo: the named pipe (created when missing)
  std::string directory;              // image: watched directory
  std::string processed = "delete";   // image: delete | move
  std::string processed_dir;          // image, processed = move: where files go
  std::string prefix;                 // stripped from the start of a read when present
  std::string suffix;                 // stripped from the end of a read when present
  std::string terminator = "CR";      // serial: CR | LF | CRLF (fifo: always one per line)
  std::string suffix_key = "enter";   // usb-hid-keyboard: enter | tab
  int baud = 9600;                    // serial
  int vendor_id = 0, product_id = 0;  // usb kinds (required)
  std::string serial_number;          // usb kinds: optional iSerialNumber match
  std::string bus_path;  // usb kinds: optional "<bus>-<port>[.<port>...]", e.g. "1-2.3"
  int debounce_ms = 800;
  int partial_timeout_ms = 1000;  // a half-finished read idle this long is dropped
  HidPosLayout hid_pos;           // usb-hid-pos
  // How often to retry opening an absent device (serial, fifo; usb kinds when libusb has
  // no hotplug).
  int reopen_interval_ms = 1000;
};

struct SourceCounters {
  uint64_t scans = 0;             // delivered through on_scan (overlong included)
  uint64_t debounced = 0;         // dropped as repeats
  uint64_t invalid_utf8 = 0;      // reads that were not valid UTF-8 (or held NUL)
  uint64_t overlong = 0;          // overlong scans delivered
  uint64_t partial_timeouts = 0;  // half-finished reads dropped after partial_timeout_ms
  uint64_t cut_off = 0;           // half-finished reads dropped because the device went away
  uint64_t decoder_garbage = 0;   // wrong-size/malformed reports, unknown usages
  uint64_t unreadable_files = 0;  // image: files that did not decode as images
  uint64_t images_without_code = 0;
  uint64_t oversized_images = 0;  // image: files refused for their (declared) decoded size
  uint64_t bytes_read = 0;        // serial/fifo bytes, USB report bytes
  uint64_t reconnects = 0;        // times the device came back after a disconnect
  uint64_t garbage() const {
    return invalid_utf8 + partial_timeouts + cut_off + decoder_garbage + unreadable_files +
           oversized_images;
  }
};

class Source {
 public:
  virtual ~Source() = default;
  virtual const std::string& id() const = 0;
  virtual std::string kind() const = 0;
  virtual SourceState state() const = 0;        // thread-safe
  virtual SourceCounters counters() const = 0;  // thread-safe snapshot
  // Starts the source's thread. A device that is absent at start is not an error: the
  // source reports kDisconnected and keeps looking. Errors: options that cannot work
  // ("invalid_argument"), an already started source ("failed_precondition").
  virtual Status Start() = 0;
  // Stops and joins the thread, releases the device (USB: reattaches the kernel driver it
  // detached). Safe to call twice and without Start(). No event is delivered after it returns.
  virtual void Stop() = 0;
};

// Validates the options and builds the source for options.kind (not started). The clock
// must outlive the source. Errors: "invalid_argument" with the offending option.
Result<std::unique_ptr<Source>> MakeSource(const SourceOptions& options, SourceEvents events,
                                           const Clock& clock);

}  // namespace loyalty::drivers
