// Scanner driver figures: scan → callback latency for fifo and serial (pty), QR decode
// time of our path against a bare ZXing ReadBarcodes call on the same frames, and the
// idle CPU of poll-driven sources. Prints figures; not a test.
//
//   bench_drivers [--iterations N] [--idle-seconds S]
#define ZX_USE_UTF8 1
#include <ZXing/BitMatrix.h>
#include <ZXing/MultiFormatWriter.h>
#include <ZXing/ReadBarcode.h>
#include <fcntl.h>
#include <pty.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "loyalty/base/clock.h"
#include "loyalty/drivers/image_decode.h"
#include "loyalty/drivers/source.h"

using namespace loyalty;
using namespace loyalty::drivers;
using Clk = std::chrono::steady_clock;

namespace {

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

struct Waiter {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t delivered = 0;
  Clk::time_point at;
  SourceEvents Events() {
    SourceEvents e;
    e.on_scan = [this](Scan) {
      const auto now = Clk::now();
      std::lock_guard<std::mutex> l(mu);
      at = now;
      ++delivered;
      cv.notify_all();
    };
    return e;
  }
  bool WaitFor(uint64_t n, Clk::time_point* when) {
    std::unique_lock<std::mutex> l(mu);
    if (!cv.wait_for(l, std::chrono::seconds(5), [&] { return delivered >= n; })) return false;
    *when = at;
    return true;
  }
};

void Latency(const char* name, int write_fd, Waiter& w, int iterations, const char* term) {
  std::vector<double> us;
  const std::string base = "LM1:" + std::string(238, 'A');
  for (int i = 0; i < iterations; ++i) {
    const std::string line = base + std::to_string(i) + term;  // distinct: no debouncing
    const auto t0 = Clk::now();
    if (write(write_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      std::printf("%s: short write\n", name);
      return;
    }
    Clk::time_point t1;
    if (!w.WaitFor(static_cast<uint64_t>(i + 1), &t1)) {
      std::printf("%s: scan %d not delivered\n", name, i);
      return;
    }
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::printf("%-22s n=%d  p50=%.1f us  p99=%.1f us  max=%.1f us\n", name, iterations,
              Percentile(us, 0.5), Percentile(us, 0.99), *std::max_element(us.begin(), us.end()));
}

double CpuSeconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

// A w×h noisy grey frame with the QR of `text` pasted in the middle (module size 4 px).
std::vector<uint8_t> QrFrame(const std::string& text, int w, int h) {
  ZXing::BitMatrix m =
      ZXing::MultiFormatWriter(ZXing::BarcodeFormat::QRCode).setMargin(4).encode(text, 0, 0);
  auto mat = ZXing::ToMatrix<uint8_t>(m);
  const int scale = 4;
  std::vector<uint8_t> f(static_cast<size_t>(w) * h, 170);
  const int x0 = (w - mat.width() * scale) / 2, y0 = (h - mat.height() * scale) / 2;
  for (int y = 0; y < mat.height() * scale; ++y)
    for (int x = 0; x < mat.width() * scale; ++x)
      f[static_cast<size_t>(y0 + y) * w + x0 + x] =
          mat.data()[(y / scale) * mat.width() + x / scale] ? 220 : 30;
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> noise(-20, 20);
  for (uint8_t& p : f) p = static_cast<uint8_t>(std::clamp(p + noise(rng), 0, 255));
  return f;
}

void Decode(int w, int h, int rounds) {
  const std::string text = "LM1:" + std::string(238, 'Q');
  const std::vector<uint8_t> frame = QrFrame(text, w, h);
  const auto hints = ZXing::DecodeHints()
                         .setFormats(ZXing::BarcodeFormat::QRCode | ZXing::BarcodeFormat::Code128)
                         .setTryHarder(true)
                         .setTryRotate(true);
  std::vector<double> ours, bare;
  for (int i = 0; i < rounds; ++i) {  // interleaved so both see the same machine state
    auto t0 = Clk::now();
    auto r = DecodeImage(frame.data(), w, h);
    auto t1 = Clk::now();
    auto z =
        ZXing::ReadBarcodes(ZXing::ImageView(frame.data(), w, h, ZXing::ImageFormat::Lum), hints);
    auto t2 = Clk::now();
    if (!r.ok() || r->size() != 1 || (*r)[0].text != text || z.size() != 1) {
      std::printf("decode %dx%d: unexpected result\n", w, h);
      return;
    }
    ours.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    bare.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
  }
  const double po = Percentile(ours, 0.5), pb = Percentile(bare, 0.5);
  std::printf(
      "QR decode %4dx%-4d     ours p50=%.2f ms  bare ReadBarcodes p50=%.2f ms  ratio=%.3f\n", w, h,
      po, pb, po / pb);
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 2000, idle_seconds = 5, rounds = 40;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--iterations")) iterations = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--idle-seconds")) idle_seconds = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--rounds")) rounds = std::atoi(argv[i + 1]);
  }
  const std::string dir =
      std::filesystem::temp_directory_path() / ("bench-drivers-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  SystemClock& clock = SystemClock::Instance();

  // fifo
  SourceOptions fo;
  fo.id = "fifo";
  fo.kind = "fifo";
  fo.path = dir + "/scans";
  Waiter fw;
  auto fifo = MakeSource(fo, fw.Events(), clock);
  if (!fifo.ok() || !(*fifo)->Start().ok()) return 1;
  const int fifo_w = open(fo.path.c_str(), O_WRONLY);

  // serial over a pty pair: the source opens the slave, the bench writes the master.
  int master = -1, slave = -1;
  char slave_name[256];
  if (openpty(&master, &slave, slave_name, nullptr, nullptr) != 0) return 1;
  termios tio;
  tcgetattr(master, &tio);
  cfmakeraw(&tio);
  tcsetattr(master, TCSANOW, &tio);
  SourceOptions so;
  so.id = "serial";
  so.kind = "serial";
  so.path = slave_name;
  so.baud = 115200;
  Waiter sw;
  auto serial = MakeSource(so, sw.Events(), clock);
  if (!serial.ok() || !(*serial)->Start().ok()) return 1;
  while ((*serial)->state() != SourceState::kConnected)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));

  std::printf("scan -> on_scan callback (242-byte LM1 code, one at a time)\n");
  Latency("fifo", fifo_w, fw, iterations, "\n");
  Latency("serial (pty, CR)", master, sw, iterations, "\r");

  // Two USB sources waiting for scanners that are not plugged in: their threads block in
  // libusb's event handler (hotplug monitor + 1 s timeout).
  std::vector<std::unique_ptr<Source>> usb;
  for (const char* kind : {"usb-hid-keyboard", "usb-hid-pos"}) {
    SourceOptions uo;
    uo.id = kind;
    uo.kind = kind;
    uo.vendor_id = 0x05e0;
    uo.product_id = 0x7fff;
    auto u = MakeSource(uo, {}, clock);
    if (u.ok() && (*u)->Start().ok()) usb.push_back(std::move(u).value());
  }
  std::printf(
      "\nidle: fifo + serial sources started, nothing written; %zu usb sources without device\n",
      usb.size());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const double c0 = CpuSeconds();
  const auto w0 = Clk::now();
  std::this_thread::sleep_for(std::chrono::seconds(idle_seconds));
  const double cpu = CpuSeconds() - c0;
  const double wall = std::chrono::duration<double>(Clk::now() - w0).count();
  std::printf("idle CPU over %.1f s: %.4f s = %.4f %% of one core\n", wall, cpu,
              100.0 * cpu / wall);

  (*fifo)->Stop();
  (*serial)->Stop();
  for (auto& u : usb) u->Stop();
  close(fifo_w);
  close(master);
  close(slave);
  std::filesystem::remove_all(dir);

  std::printf(
      "\nQR decode (QR + Code 128, tryHarder, tryRotate), median of %d interleaved rounds\n",
      rounds);
  Decode(640, 480, rounds);
  Decode(1280, 720, rounds);
  return 0;
}
