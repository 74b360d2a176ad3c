#include "test_util.h"

namespace loyalty::config {
namespace {

using testing::MustParse;
using testing::Parse;
using testing::Parts;

Parts WithScanners(const std::string& blocks) { return Parts{.tail = blocks}; }

const char kSerial[] = "[[scanners]]\nid = \"lane1\"\nkind = \"serial\"\npath = \"/dev/ttyACM0\"\n";
const char kFifo[] =
    "[[scanners]]\nid = \"pipe\"\nkind = \"fifo\"\npath = \"/run/loyaltyd/scans\"\n";
const char kKeyboard[] =
    "[[scanners]]\nid = \"kb\"\nkind = \"usb-hid-keyboard\"\nvendor_id = 0x05e0\nproduct_id = "
    "0x1200\n";

TEST(ScannersConfig, EveryKindWithItsDefaults) {
  AgentConfig c = MustParse(WithScanners(
      std::string(kSerial) + kFifo + kKeyboard +
      "[[scanners]]\nid = \"pos\"\nkind = \"usb-hid-pos\"\nvendor_id = 1\nproduct_id = 2\n"
      "[[scanners]]\nid = \"cam\"\nkind = \"image\"\ndirectory = \"/run/frames\"\n"));
  ASSERT_EQ(c.scanners.size(), 5u);
  const ScannerConfig& serial = c.scanners[0];
  EXPECT_EQ(serial.id, "lane1");
  EXPECT_EQ(serial.kind, "serial");
  EXPECT_EQ(serial.path, "/dev/ttyACM0");
  EXPECT_EQ(serial.baud, 9600);
  EXPECT_EQ(serial.terminator, "CR");
  EXPECT_EQ(serial.debounce_ms, 800);
  EXPECT_EQ(serial.prefix, "");
  EXPECT_EQ(c.scanners[1].kind, "fifo");
  const ScannerConfig& kb = c.scanners[2];
  EXPECT_EQ(kb.vendor_id, 0x05e0);
  EXPECT_EQ(kb.product_id, 0x1200);
  EXPECT_EQ(kb.suffix_key, "enter");
  EXPECT_EQ(kb.serial_number, "");
  EXPECT_EQ(kb.bus_path, "");
  const ScannerConfig& pos = c.scanners[3];
  EXPECT_EQ(pos.report_id, 2);
  EXPECT_EQ(pos.length_offset, 1);
  EXPECT_EQ(pos.symbology_offset, 2);
  EXPECT_EQ(pos.data_offset, 5);
  EXPECT_EQ(pos.data_len, 56);
  EXPECT_EQ(pos.flags_offset, 63);
  const ScannerConfig& cam = c.scanners[4];
  EXPECT_EQ(cam.directory, "/run/frames");
  EXPECT_EQ(cam.processed, "delete");
  EXPECT_EQ(cam.processed_dir, "");
}

TEST(ScannersConfig, SerialSettings) {
  AgentConfig c =
      MustParse(WithScanners(std::string(kSerial) + "baud = 115200\nterminator = \"CRLF\"\n"));
  EXPECT_EQ(c.scanners[0].baud, 115200);
  EXPECT_EQ(c.scanners[0].terminator, "CRLF");
  for (int baud : {1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600}) {
    EXPECT_EQ(
        MustParse(WithScanners(std::string(kSerial) + "baud = " + std::to_string(baud) + "\n"))
            .scanners[0]
            .baud,
        baud);
  }
  const std::string rates =
      "(1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)";
  EXPECT_CONFIG_ERROR(WithScanners(std::string(kSerial) + "baud = 9601\n"),
                      "scanners[0].baud: 9601 is not a standard baud rate " + rates);
  EXPECT_CONFIG_ERROR(WithScanners(std::string(kSerial) + "baud = 0\n"),
                      "scanners[0].baud: 0 is not a standard baud rate " + rates);
  EXPECT_CONFIG_ERROR(
      WithScanners(std::string(kSerial) + "baud = 9223372036854775807\n"),
      "scanners[0].baud: 9223372036854775807 is out of range -2147483648..2147483647");
  EXPECT_CONFIG_ERROR(WithScanners(std::string(kSerial) + "terminator = \"NUL\"\n"),
                      "scanners[0].terminator: 'NUL' is not one of CR | LF | CRLF");
  EXPECT_CONFIG_ERROR(WithScanners("[[scanners]]\nid = \"s\"\nkind = \"serial\"\n"),
                      "scanners[0].path: required for kind 'serial'");
}

TEST(ScannersConfig, TheIndexInMessagesCountsFromZero) {
  EXPECT_CONFIG_ERROR(
      WithScanners(
          std::string(kFifo) + kKeyboard +
          "[[scanners]]\nid = \"lane3\"\nkind = \"serial\"\npath = \"/dev/ttyS0\"\nbaud = 9601\n"),
      "scanners[2].baud: 9601 is not a standard baud rate "
      "(1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)");
}

TEST(ScannersConfig, IdAndKind) {
  EXPECT_CONFIG_ERROR(WithScanners("[[scanners]]\nkind = \"fifo\"\npath = \"/x\"\n"),
                      "scanners[0].id: required (1..32 characters of A-Z a-z 0-9 _ -)");
  EXPECT_CONFIG_ERROR(
      WithScanners("[[scanners]]\nid = \"lane 1\"\nkind = \"fifo\"\npath = \"/x\"\n"),
      "scanners[0].id: 'lane 1' must be 1..32 characters of A-Z a-z 0-9 _ -");
  EXPECT_CONFIG_ERROR(
      WithScanners("[[scanners]]\nid = \"a\"\npath = \"/x\"\n"),
      "scanners[0].kind: required (usb-hid-keyboard | usb-hid-pos | serial | image | fifo)");
  EXPECT_CONFIG_ERROR(WithScanners("[[scanners]]\nid = \"a\"\nkind = \"bluetooth\"\n"),
                      "scanners[0].kind: 'bluetooth' is not one of usb-hid-keyboard | usb-hid-pos "
                      "| serial | image | fifo");
  EXPECT_CONFIG_ERROR(
      WithScanners(std::string(kSerial) +
                   "[[scanners]]\nid = \"lane1\"\nkind = \"fifo\"\npath = \"/x\"\n"),
      "scanners[1].id: 'lane1' is already used by scanners[0]");
  EXPECT_CONFIG_ERROR(Parts{.tail = "scanners = 5\n"}, "log.scanners: unknown key");
  auto r = ParseAgentConfig("scanners = 5\n" + testing::Build(Parts{}), testing::kFile);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            std::string(testing::kFile) +
                ": scanners: expected an array of tables ([[scanners]]), got an integer");
  auto r2 = ParseAgentConfig("scanners = [1]\n" + testing::Build(Parts{}), testing::kFile);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().message(),
            std::string(testing::kFile) +
                ": scanners[0]: expected a table ([[scanners]]), got an integer");
}

TEST(ScannersConfig, KeysOfAnotherKindAreRefused) {
  EXPECT_CONFIG_ERROR(WithScanners(std::string(kFifo) + "baud = 9600\n"),
                      "scanners[0].baud: not used by kind 'fifo'");
  EXPECT_CONFIG_ERROR(WithScanners(std::string(kSerial) + "vendor_id = 1\n"),
                      "scanners[0].vendor_id: not used by kind 'serial'");
  EXPECT_CONFIG_ERROR(WithScanners(std::string(kKeyboard) + "data_len = 8\n"),
                      "scanners[0].data_len: not used by kind 'usb-hid-keyboard'");
  EXPECT_CONFIG_ERROR(WithScanners(std::string(kKeyboard) + "path = \"/dev/hidraw0\"\n"),
                      "scanners[0].path: not used by kind 'usb-hid-keyboard'");
  EXPECT_CONFIG_ERROR(WithScanners(std::string(kSerial) + "bauds = 9600\n"),
                      "scanners[0].bauds: unknown key (did you mean 'baud'?)");
}

TEST(ScannersConfig, UsbSelection) {
  EXPECT_CONFIG_ERROR(
      WithScanners("[[scanners]]\nid = \"kb\"\nkind = \"usb-hid-keyboard\"\nproduct_id = 1\n"),
      "scanners[0].vendor_id: required for kind 'usb-hid-keyboard' (e.g. vendor_id = 0x05e0)");
  EXPECT_CONFIG_ERROR(
      WithScanners("[[scanners]]\nid = \"kb\"\nkind = \"usb-hid-pos\"\nvendor_id = 1\n"),
      "scanners[0].product_id: required for kind 'usb-hid-pos' (e.g. product_id = 0x05e0)");
  EXPECT_CONFIG_ERROR(WithScanners("[[scanners]]\nid = \"kb\"\nkind = "
                                   "\"usb-hid-keyboard\"\nvendor_id = 0\nproduct_id = 1\n"),
                      "scanners[0].vendor_id: 0 is out of range 1..65535");
  EXPECT_CONFIG_ERROR(WithScanners("[[scanners]]\nid = \"kb\"\nkind = "
                                   "\"usb-hid-keyboard\"\nvendor_id = 0x10000\nproduct_id = 1\n"),
                      "scanners[0].vendor_id: 65536 is out of range 1..65535");
  EXPECT_EQ(
      MustParse(WithScanners("[[scanners]]\nid = \"kb\"\nkind = \"usb-hid-keyboard\"\nvendor_id = "
                             "0xffff\nproduct_id = 0xffff\n"))
          .scanners[0]
          .vendor_id,
      0xffff);
  AgentConfig c = MustParse(
      WithScanners(std::string(kKeyboard) +
                   "serial_number = \"SN-42\"\nbus_path = \"1-2.3\"\nsuffix_key = \"tab\"\n"));
  EXPECT_EQ(c.scanners[0].serial_number, "SN-42");
  EXPECT_EQ(c.scanners[0].bus_path, "1-2.3");
  EXPECT_EQ(c.scanners[0].suffix_key, "tab");
  for (const char* good : {"1-1", "3-10", "1-2.3.4.5.6.7.1"}) {
    EXPECT_EQ(MustParse(WithScanners(std::string(kKeyboard) + "bus_path = \"" + good + "\"\n"))
                  .scanners[0]
                  .bus_path,
              good);
  }
  for (const char* bad :
       {"x", "1", "1-", "-2", "1-2.", "1-2..3", "1-2.3.4.5.6.7.1.2", "1234-1", "1-1234"}) {
    EXPECT_CONFIG_ERROR(WithScanners(std::string(kKeyboard) + "bus_path = \"" + bad + "\"\n"),
                        std::string("scanners[0].bus_path: '") + bad +
                            "' is not a USB bus path such as 1-2 or 1-2.3");
  }
  EXPECT_CONFIG_ERROR(WithScanners(std::string(kKeyboard) + "suffix_key = \"space\"\n"),
                      "scanners[0].suffix_key: 'space' is not one of enter | tab");
  // Two scanners that would grab the same device.
  EXPECT_CONFIG_ERROR(WithScanners(std::string(kKeyboard) +
                                   "[[scanners]]\nid = \"kb2\"\nkind = \"usb-hid-pos\"\nvendor_id "
                                   "= 0x05e0\nproduct_id = 0x1200\n"),
                      "scanners[1]: selects the same USB device as scanners[0] (set serial_number "
                      "or bus_path to tell them apart)");
  MustParse(WithScanners(std::string(kKeyboard) + "bus_path = \"1-1\"\n" +
                         "[[scanners]]\nid = \"kb2\"\nkind = \"usb-hid-keyboard\"\nvendor_id = "
                         "0x05e0\nproduct_id = 0x1200\n"
                         "bus_path = \"1-2\"\n"));
}

TEST(ScannersConfig, HidPosReportLayout) {
  const std::string pos =
      "[[scanners]]\nid = \"pos\"\nkind = \"usb-hid-pos\"\nvendor_id = 1\nproduct_id = 2\n";
  AgentConfig c =
      MustParse(WithScanners(
          pos + "report_id = -1\nlength_offset = 0\nsymbology_offset = -1\ndata_offset = 1\n"
                "data_len = 62\nflags_offset = -1\n"));
  const ScannerConfig& s = c.scanners[0];
  EXPECT_EQ(s.report_id, -1);  // the device sends no report id (docs/scanners.md)
  EXPECT_EQ(s.symbology_offset, -1);
  EXPECT_EQ(s.data_len, 62);
  EXPECT_EQ(s.flags_offset, -1);
  EXPECT_CONFIG_ERROR(WithScanners(pos + "report_id = 256\n"),
                      "scanners[0].report_id: 256 is out of range -1..255");
  EXPECT_CONFIG_ERROR(WithScanners(pos + "report_id = -2\n"),
                      "scanners[0].report_id: -2 is out of range -1..255");
  // With a report id, byte 0 is the id: it cannot also be the length or the data (the
  // driver would refuse the layout at start).
  EXPECT_CONFIG_ERROR(WithScanners(pos + "report_id = 0\nlength_offset = 0\ndata_offset = 1\n"),
                      "scanners[0].length_offset: byte 0 is the report id (report_id = 0); set "
                      "report_id = -1 for a device that sends none");
  EXPECT_CONFIG_ERROR(WithScanners(pos + "data_offset = 0\n"),
                      "scanners[0].data_offset: byte 0 is the report id (report_id = 2); set "
                      "report_id = -1 for a device that sends none");
  EXPECT_CONFIG_ERROR(WithScanners(pos + "symbology_offset = -2\n"),
                      "scanners[0].symbology_offset: -2 is out of range -1..1021");
  EXPECT_CONFIG_ERROR(WithScanners(pos + "data_len = 0\n"),
                      "scanners[0].data_len: 0 is out of range 1..1024");
  MustParse(WithScanners(pos + "data_offset = 1000\ndata_len = 24\n"));
  EXPECT_CONFIG_ERROR(WithScanners(pos + "data_offset = 1000\ndata_len = 25\n"),
                      "scanners[0].data_len: data_offset + data_len = 1025 exceeds the largest "
                      "report (1024 bytes)");
}

TEST(ScannersConfig, ImageDirectories) {
  const std::string img =
      "[[scanners]]\nid = \"cam\"\nkind = \"image\"\ndirectory = \"/run/frames\"\n";
  AgentConfig c =
      MustParse(WithScanners(img + "processed = \"move\"\nprocessed_dir = \"/run/done\"\n"));
  EXPECT_EQ(c.scanners[0].processed, "move");
  EXPECT_EQ(c.scanners[0].processed_dir, "/run/done");
  EXPECT_CONFIG_ERROR(WithScanners("[[scanners]]\nid = \"cam\"\nkind = \"image\"\n"),
                      "scanners[0].directory: required for kind 'image'");
  EXPECT_CONFIG_ERROR(WithScanners(img + "processed = \"move\"\n"),
                      "scanners[0].processed_dir: required when processed = \"move\"");
  EXPECT_CONFIG_ERROR(WithScanners(img + "processed_dir = \"/run/done\"\n"),
                      "scanners[0].processed_dir: only used when processed = \"move\"");
  EXPECT_CONFIG_ERROR(
      WithScanners(img + "processed = \"move\"\nprocessed_dir = \"/run/frames/\"\n"),
      "scanners[0].processed_dir: must differ from directory (processed images would be read "
      "again)");
  EXPECT_CONFIG_ERROR(WithScanners(img + "processed = \"archive\"\n"),
                      "scanners[0].processed: 'archive' is not one of delete | move");
}

TEST(ScannersConfig, TwoScannersCannotShareADevice) {
  EXPECT_CONFIG_ERROR(
      WithScanners(std::string(kSerial) +
                   "[[scanners]]\nid = \"b\"\nkind = \"fifo\"\npath = \"/dev/ttyACM0\"\n"),
      "scanners[1].path: '/dev/ttyACM0' is already used by scanners[0]");
  EXPECT_CONFIG_ERROR(
      WithScanners("[[scanners]]\nid = \"a\"\nkind = \"image\"\ndirectory = \"/f\"\n"
                   "[[scanners]]\nid = \"b\"\nkind = \"image\"\ndirectory = \"/f\"\n"),
      "scanners[1].directory: '/f' is already used by scanners[0]");
}

TEST(ScannersConfig, PrefixSuffixAndDebounce) {
  AgentConfig c =
      MustParse(WithScanners(std::string(kFifo) + "prefix = \"\\u0002\"\nsuffix = \"\\u0003\"\n"));
  EXPECT_EQ(c.scanners[0].prefix, "\x02");
  EXPECT_EQ(c.scanners[0].suffix, "\x03");
  MustParse(WithScanners(std::string(kFifo) + "prefix = \"" + std::string(32, 'p') + "\"\n"));
  EXPECT_CONFIG_ERROR(
      WithScanners(std::string(kFifo) + "prefix = \"" + std::string(33, 'p') + "\"\n"),
      "scanners[0].prefix: longer than 32 bytes");
  EXPECT_CONFIG_ERROR(WithScanners(std::string(kFifo) + "suffix = \"\\u0000\"\n"),
                      "scanners[0].suffix: '\\x00' contains a control character");
  EXPECT_EQ(
      MustParse(WithScanners(std::string(kFifo) + "debounce_ms = 0\n")).scanners[0].debounce_ms, 0);
  EXPECT_EQ(
      MustParse(WithScanners(std::string(kFifo) + "debounce_ms = 10000\n")).scanners[0].debounce_ms,
      10000);
  EXPECT_CONFIG_ERROR(WithScanners(std::string(kFifo) + "debounce_ms = 10001\n"),
                      "scanners[0].debounce_ms: 10001 is out of range 0..10000");
  EXPECT_CONFIG_ERROR(WithScanners(std::string(kFifo) + "debounce_ms = -1\n"),
                      "scanners[0].debounce_ms: -1 is out of range 0..10000");
}

}  // namespace
}  // namespace loyalty::config
