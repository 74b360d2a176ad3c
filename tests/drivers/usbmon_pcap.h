// Writes usbmon captures (pcap link type 220, DLT_USB_LINUX_MMAPPED, 64-byte headers) that
// umockdev replays to libusb: one submit (S) and one complete (C) record per URB. A real
// capture (usbmon + Wireshark) has the same shape.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace loyalty::drivers::testing {

class UsbmonPcap {
 public:
  UsbmonPcap(int bus, int devnum) : bus_(bus), devnum_(devnum) {
    Put32(0xa1b2c3d4);  // magic, microsecond timestamps
    Put16(2);
    Put16(4);
    Put32(0);      // thiszone
    Put32(0);      // sigfigs
    Put32(65535);  // snaplen
    Put32(220);    // LINKTYPE_USB_LINUX_MMAPPED
  }

  // A class/vendor control request without a data stage (SET_IDLE, SET_PROTOCOL, ...).
  void ControlOut(const uint8_t setup[8]) {
    const uint64_t id = next_id_++;
    Record(id, 'S', 2, 0x00, setup, 0, {}, 0);
    Record(id, 'C', 2, 0x00, nullptr, 0, {}, 0);
  }

  // One interrupt IN URB of `requested` bytes completed with `data` (may be shorter).
  void InterruptIn(uint8_t endpoint, size_t requested, const std::vector<uint8_t>& data) {
    const uint64_t id = next_id_++;
    Record(id, 'S', 1, endpoint, nullptr, static_cast<uint32_t>(requested), {}, 0);
    Record(id, 'C', 1, endpoint, nullptr, static_cast<uint32_t>(data.size()), data, 0);
  }

  bool Save(const std::string& path) const {
    std::ofstream o(path, std::ios::binary);
    o.write(bytes_.data(), static_cast<std::streamsize>(bytes_.size()));
    return static_cast<bool>(o);
  }

 private:
  void Put8(uint8_t v) { bytes_.push_back(static_cast<char>(v)); }
  void Put16(uint16_t v) {
    Put8(v & 0xFF);
    Put8(v >> 8);
  }
  void Put32(uint32_t v) {
    Put16(v & 0xFFFF);
    Put16(v >> 16);
  }
  void Put64(uint64_t v) {
    Put32(static_cast<uint32_t>(v));
    Put32(static_cast<uint32_t>(v >> 32));
  }

  void Record(uint64_t id, char event, uint8_t xfer, uint8_t ep, const uint8_t* setup,
              uint32_t urb_len, const std::vector<uint8_t>& data, int32_t status) {
    ++usec_;
    const uint32_t caplen = 64 + static_cast<uint32_t>(data.size());
    Put32(static_cast<uint32_t>(usec_ / 1000000));  // pcap record header
    Put32(static_cast<uint32_t>(usec_ % 1000000));
    Put32(caplen);
    Put32(caplen);
    Put64(id);  // usbmon mmapped header
    Put8(static_cast<uint8_t>(event));
    Put8(xfer);
    Put8(ep);
    Put8(static_cast<uint8_t>(devnum_));
    Put16(static_cast<uint16_t>(bus_));
    Put8(setup ? 0 : '-');                                // setup_flag: 0 = setup present
    Put8(data.empty() ? (event == 'S' ? '<' : '>') : 0);  // data_flag: 0 = data present
    Put64(usec_ / 1000000);
    Put32(static_cast<uint32_t>(usec_ % 1000000));
    Put32(static_cast<uint32_t>(status));
    Put32(urb_len);
    Put32(static_cast<uint32_t>(data.size()));
    for (int i = 0; i < 8; ++i) Put8(setup ? setup[i] : 0);
    Put32(xfer == 1 ? 10 : 0);  // interval
    Put32(0);                   // start_frame
    Put32(0);                   // xfer_flags
    Put32(0);                   // ndesc
    bytes_.append(reinterpret_cast<const char*>(data.data()), data.size());
  }

  int bus_, devnum_;
  uint64_t next_id_ = 0xffff88810a000000ull;
  uint64_t usec_ = 1'700'000'000'000'000ull;
  std::string bytes_;
};

}  // namespace loyalty::drivers::testing
