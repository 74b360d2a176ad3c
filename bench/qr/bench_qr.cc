// bench_qr: the enrolment QR code (docs/enrolment-qr.md) for a 200-byte join link at level
// M, 4 pixels a module: PNG and SVG from the payload, against ZXing-C++'s bare encode of
// the same payload with the same settings. Prints p50/p99/max per call of the wall time
// and of the thread's CPU time (each call timed alone, the cases interleaved call by call
// so they share the machine's noise; on a loaded machine the CPU time is what the code
// costs and the wall time adds the scheduler's waits).
//
//   bench_qr [iterations]   (default 5000, after 200 untimed)
//
// Cases:
//   zxing       MultiFormatWriter::encode alone (margin 0, level M, no scaling): the floor
//   encode      qr::Encode: the payload's checks, ZXing's encode, the modules copied out
//   png         qr::MakePng: encode + the 1-bit PNG (zlib), what a receipt asks for
//   svg         qr::MakeSvg: encode + the SVG, what the customer display asks for
//   render png  qr::RenderPng alone, from a symbol encoded once
//   render svg  qr::RenderSvg alone
#define ZX_USE_UTF8 1
#include <ZXing/BitMatrix.h>
#include <ZXing/MultiFormatWriter.h>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "loyalty/qr/qr.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace loyalty;

struct Figures {
  double p50_us, p99_us, max_us;
};

Figures Summarize(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  auto at = [&](double q) {
    return us[std::min(us.size() - 1, static_cast<size_t>(q * us.size()))];
  };
  return {at(0.50), at(0.99), us.back()};
}

// The join page, a signed claim in base64url, store and lane: 200 bytes, as the route makes.
std::string Link() {
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string claim;
  for (int i = 0; i < 150; ++i) claim += alphabet[(i * 37 + 11) % 64];
  std::string link = "https://join.retailer.example/e?c=" + claim + "&s=S0042&t=T01";
  link.resize(200, 'x');
  return link;
}

size_t g_sink = 0;

double ThreadCpuUs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 5000;
  if (iterations <= 0) {
    std::fprintf(stderr, "usage: bench_qr [iterations]\n");
    return 2;
  }
  const std::string payload = Link();
  const qr::Options options;  // level M, 4 px a module
  Result<qr::Symbol> symbol = qr::Encode(payload, options.error_correction);
  if (!symbol.ok()) {
    std::fprintf(stderr, "encode: %s\n", symbol.status().ToString().c_str());
    return 1;
  }

  struct Case {
    const char* name;
    std::function<size_t()> run;
    std::vector<double> us, cpu_us;
  };
  std::vector<Case> cases;
  cases.push_back({"zxing",
                   [&] {
                     ZXing::MultiFormatWriter w(ZXing::BarcodeFormat::QRCode);
                     w.setMargin(0).setEccLevel(3);  // M, as qr::Encode asks for it
                     return static_cast<size_t>(w.encode(payload, 0, 0).width());
                   },
                   {},
                   {}});
  cases.push_back({"encode", [&] { return qr::Encode(payload)->dark.size(); }, {}, {}});
  cases.push_back({"png", [&] { return qr::MakePng(payload, options)->size(); }, {}, {}});
  cases.push_back({"svg", [&] { return qr::MakeSvg(payload, options)->size(); }, {}, {}});
  cases.push_back({"render png", [&] { return qr::RenderPng(*symbol, 4)->size(); }, {}, {}});
  cases.push_back({"render svg", [&] { return qr::RenderSvg(*symbol, 4)->size(); }, {}, {}});

  for (int i = 0; i < 200; ++i) {
    for (auto& c : cases) g_sink += c.run();
  }
  for (auto& c : cases) {
    c.us.reserve(iterations);
    c.cpu_us.reserve(iterations);
  }
  for (int i = 0; i < iterations; ++i) {
    for (auto& c : cases) {
      const double c0 = ThreadCpuUs();
      const auto t0 = Clock::now();
      g_sink += c.run();
      const auto t1 = Clock::now();
      const double c1 = ThreadCpuUs();
      c.us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      c.cpu_us.push_back(c1 - c0);
    }
  }

  std::printf("payload: %zu bytes, level M: version %d, %d modules (+%d quiet zone a side)\n",
              payload.size(), symbol->Version(), symbol->size, qr::kQuietZoneModules);
  std::printf("png: %zu bytes, %d x %d px (1-bit grey)   svg: %zu bytes\n",
              qr::MakePng(payload, options)->size(), symbol->SideWithQuietZone() * 4,
              symbol->SideWithQuietZone() * 4, qr::MakeSvg(payload, options)->size());
  std::printf("%-11s %-7s %31s   %31s\n", "", "", "wall", "thread CPU");
  std::vector<Figures> f;
  for (auto& c : cases) {
    f.push_back(Summarize(c.us));
    const Figures cpu = Summarize(c.cpu_us);
    std::printf("%-11s n=%-5zu p50 %7.1f p99 %7.1f max %7.1f   p50 %7.1f p99 %7.1f max %7.1f us\n",
                c.name, c.us.size(), f.back().p50_us, f.back().p99_us, f.back().max_us, cpu.p50_us,
                cpu.p99_us, cpu.max_us);
  }
  std::printf("wall png/zxing: p50 %.2f  p99 %.2f    svg/zxing: p50 %.2f  p99 %.2f\n",
              f[2].p50_us / f[0].p50_us, f[2].p99_us / f[0].p99_us, f[3].p50_us / f[0].p50_us,
              f[3].p99_us / f[0].p99_us);
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) == 3)
    std::printf("load average at the end: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
  return g_sink == 0 ? 1 : 0;
}
