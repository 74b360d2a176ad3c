// USB sources through the real libusb code path against umockdev: the device descriptions
// in data/ and usbmon captures written here. Runs under umockdev-wrapper (see CMakeLists).
#include <umockdev.h>

#include <gtest/gtest.h>

#include <cstdlib>

#include "event_collector.h"
#include "hid_test_util.h"
#include "image_test_util.h"
#include "loyalty/base/clock.h"
#include "loyalty/drivers/source.h"
#include "usbmon_pcap.h"

namespace loyalty::drivers {
namespace {

using testing::EventCollector;
using testing::Report;
using testing::TempDir;
using testing::UsbmonPcap;

const std::string kData = std::string(LOYALTY_DRIVERS_TEST_DATA);
const char kKeyboardSysfs[] = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-2";
const char kPosSysfs[] = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3";
constexpr uint8_t kSetProtocolBoot[8] = {0x21, 0x0b, 0, 0, 0, 0, 0, 0};
constexpr uint8_t kSetIdle[8] = {0x21, 0x0a, 0, 0, 0, 0, 0, 0};

bool InMockEnvironment() {
  const char* p = std::getenv("LD_PRELOAD");
  return p != nullptr && std::string(p).find("umockdev") != std::string::npos;
}

class UsbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!InMockEnvironment()) GTEST_SKIP() << "run under umockdev-wrapper (ctest does)";
    testbed_ = umockdev_testbed_new();
    ASSERT_NE(testbed_, nullptr);
  }
  void TearDown() override {
    if (source_) source_->Stop();
    source_.reset();
    if (testbed_) g_object_unref(testbed_);
  }
  void AddDevice(const std::string& file) {
    GError* error = nullptr;
    ASSERT_TRUE(umockdev_testbed_add_from_file(testbed_, (kData + "/" + file).c_str(), &error))
        << (error ? error->message : "");
  }
  void LoadPcap(const char* sysfs, const UsbmonPcap& pcap) {
    const std::string file = dir_ / ("capture" + std::to_string(++pcaps_) + ".pcap");
    ASSERT_TRUE(pcap.Save(file));
    GError* error = nullptr;
    ASSERT_TRUE(umockdev_testbed_load_pcap(testbed_, sysfs, file.c_str(), &error))
        << (error ? error->message : "");
  }
  void Start(SourceOptions o) {
    auto r = MakeSource(o, events_.Events(), clock_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    source_ = std::move(r).value();
    ASSERT_TRUE(source_->Start().ok());
  }
  static SourceOptions KeyboardOptions() {
    SourceOptions o;
    o.id = "wedge";
    o.kind = "usb-hid-keyboard";
    o.vendor_id = 0x05e0;
    o.product_id = 0x1200;
    return o;
  }
  static void Type(UsbmonPcap& pcap, const std::vector<Report>& reports) {
    for (const Report& r : reports) pcap.InterruptIn(0x81, 8, r);
  }
  static void KeyboardOpening(UsbmonPcap& pcap) {
    pcap.ControlOut(kSetProtocolBoot);
    pcap.ControlOut(kSetIdle);
  }

  UMockdevTestbed* testbed_ = nullptr;
  TempDir dir_;
  int pcaps_ = 0;
  FakeClock clock_{1'700'000'000'000};
  EventCollector events_;
  std::unique_ptr<Source> source_;
};

TEST_F(UsbTest, KeyboardWedgeTypesAnLm1CodeAsOneScan) {
  AddDevice("keyboard-scanner.umockdev");
  const std::string code = testing::MakeLm1Code(42);
  UsbmonPcap pcap(1, 5);
  KeyboardOpening(pcap);
  Type(pcap, testing::TypeReports(code));
  // A repeated character, an ErrorRollOver report and an unknown usage mid-scan.
  std::vector<Report> second = testing::TypeReports("zz-AA_:9", 0);
  second.insert(second.begin() + 3, Report{0, 0, 1, 1, 1, 1, 1, 1});
  second.insert(second.begin() + 6, testing::KeyReport(0, 0x46));  // PrintScreen
  second.push_back(testing::KeyReport(0, 0x28));
  second.push_back(testing::ReleaseReport());
  Type(pcap, second);
  LoadPcap(kKeyboardSysfs, pcap);

  Start(KeyboardOptions());
  ASSERT_TRUE(events_.WaitScans(2)) << "scans: " << events_.scan_count();
  auto scans = events_.scans();
  EXPECT_EQ(scans[0].text, code);
  EXPECT_EQ(scans[0].scanner_id, "wedge");
  EXPECT_EQ(scans[0].symbology, "");
  EXPECT_EQ(scans[1].text, "zz-AA_:9");
  EXPECT_EQ(source_->state(), SourceState::kConnected);
  EXPECT_EQ(source_->counters().decoder_garbage, 1u);  // the unknown usage
}

TEST_F(UsbTest, KeyboardWedgeTabSuffixAndPrefixStripping) {
  AddDevice("keyboard-scanner.umockdev");
  UsbmonPcap pcap(1, 5);
  KeyboardOpening(pcap);
  Type(pcap, testing::TypeReports("PRE8800123456789", 0x2B));
  LoadPcap(kKeyboardSysfs, pcap);
  SourceOptions o = KeyboardOptions();
  o.suffix_key = "tab";
  o.prefix = "PRE";
  Start(o);
  ASSERT_TRUE(events_.WaitScans(1));
  EXPECT_EQ(events_.scans()[0].text, "8800123456789");
}

TEST_F(UsbTest, ScanCutOffByRemovalIsDiscardedAndTheSourceReconnects) {
  AddDevice("keyboard-scanner.umockdev");
  const std::string code = testing::MakeLm1Code(43);
  UsbmonPcap pcap(1, 5);
  KeyboardOpening(pcap);
  const auto half = testing::TypeReports("LM1:cut-off", 0);
  Type(pcap, half);
  // The replay waits here: the next record is a request the source sends only when it
  // opens the device again.
  KeyboardOpening(pcap);
  Type(pcap, testing::TypeReports(code));
  LoadPcap(kKeyboardSysfs, pcap);

  Start(KeyboardOptions());
  ASSERT_TRUE(events_.WaitState(SourceState::kConnected));
  ASSERT_TRUE(EventCollector::Eventually(
      [&] { return source_->counters().bytes_read == half.size() * 8; }));
  umockdev_testbed_uevent(testbed_, kKeyboardSysfs, "remove");
  ASSERT_TRUE(events_.WaitState(SourceState::kDisconnected));
  EXPECT_EQ(source_->counters().cut_off, 1u);
  EXPECT_EQ(events_.scan_count(), 0u);

  umockdev_testbed_uevent(testbed_, kKeyboardSysfs, "add");
  ASSERT_TRUE(events_.WaitState(SourceState::kConnected, 2));
  ASSERT_TRUE(events_.WaitScans(1));
  EXPECT_EQ(events_.scans()[0].text, code);
  EXPECT_EQ(source_->counters().reconnects, 1u);
}

TEST_F(UsbTest, AbsentDeviceIsDisconnectedNotAnError) {
  AddDevice("keyboard-scanner.umockdev");
  SourceOptions o = KeyboardOptions();
  o.product_id = 0x9999;
  Start(o);
  ASSERT_TRUE(events_.WaitState(SourceState::kDisconnected));
  EXPECT_EQ(source_->state(), SourceState::kDisconnected);
}

TEST_F(UsbTest, BusPathSelectsTheDevice) {
  AddDevice("keyboard-scanner.umockdev");
  UsbmonPcap pcap(1, 5);
  KeyboardOpening(pcap);
  Type(pcap, testing::TypeReports("onport2"));
  LoadPcap(kKeyboardSysfs, pcap);
  SourceOptions o = KeyboardOptions();
  o.bus_path = "1-3";  // nothing there
  Start(o);
  ASSERT_TRUE(events_.WaitState(SourceState::kDisconnected));
  source_->Stop();
  o.bus_path = "1-2";
  EventCollector second;
  auto r = MakeSource(o, second.Events(), clock_);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE((*r)->Start().ok());
  ASSERT_TRUE(second.WaitScans(1));
  EXPECT_EQ(second.scans()[0].text, "onport2");
  (*r)->Stop();
}

TEST_F(UsbTest, HidPosReassemblesTwoHundredBytesWithSymbology) {
  AddDevice("hidpos-scanner.umockdev");
  std::string payload;
  for (int i = 0; i < 200; ++i) payload.push_back(static_cast<char>('A' + i % 26));
  auto reports = testing::HidPosReports(payload, "]Q1");
  ASSERT_EQ(reports.size(), 4u);
  UsbmonPcap pcap(1, 6);
  pcap.ControlOut(kSetIdle);
  pcap.InterruptIn(0x81, 64, reports[0]);
  pcap.InterruptIn(0x81, 64, std::vector<uint8_t>(reports[1].begin(), reports[1].begin() + 40));
  for (size_t i = 1; i < reports.size(); ++i) pcap.InterruptIn(0x81, 64, reports[i]);
  LoadPcap(kPosSysfs, pcap);

  SourceOptions o;
  o.id = "pos";
  o.kind = "usb-hid-pos";
  o.vendor_id = 0x05e0;
  o.product_id = 0x1300;
  Start(o);
  ASSERT_TRUE(events_.WaitScans(1));
  auto scans = events_.scans();
  EXPECT_EQ(scans[0].text, payload);
  EXPECT_EQ(scans[0].symbology, "]Q1");
  EXPECT_EQ(source_->counters().decoder_garbage, 1u);  // the short report
  EXPECT_FALSE(events_.garbage().empty());
}

}  // namespace
}  // namespace loyalty::drivers
