// Test helpers for images: a temporary directory, qrencode, and frame synthesis.
#pragma once

#include <stb_image.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace loyalty::drivers::testing {

struct Gray {
  int w = 0, h = 0;
  std::vector<uint8_t> px;
  uint8_t at(int x, int y) const { return px[static_cast<size_t>(y) * w + x]; }
};

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "drivers-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline bool HaveQrencode() { return std::system("command -v qrencode >/dev/null 2>&1") == 0; }

// Runs the qrencode tool (an encoder that is not ours) to write a PNG.
inline bool Qrencode(const std::string& text, const std::string& png, int module_px = 4) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'')
      quoted += "'\\''";
    else
      quoted += c;
  }
  quoted += "'";
  const std::string cmd =
      "qrencode -o '" + png + "' -s " + std::to_string(module_px) + " " + quoted;
  return std::system(cmd.c_str()) == 0;
}

inline Gray LoadGray(const std::string& path) {
  Gray g;
  int n = 0;
  uint8_t* p = stbi_load(path.c_str(), &g.w, &g.h, &n, 1);
  if (p) {
    g.px.assign(p, p + static_cast<size_t>(g.w) * g.h);
    stbi_image_free(p);
  }
  return g;
}

// Rotates by `degrees` around the centre onto a canvas large enough to hold the result,
// background white (nearest neighbour: hard edges, like a printed code under a camera).
inline Gray Rotate(const Gray& in, double degrees) {
  const double rad = degrees * M_PI / 180.0;
  const double c = std::cos(rad), s = std::sin(rad);
  Gray out;
  out.w = static_cast<int>(std::ceil(std::abs(in.w * c) + std::abs(in.h * s)));
  out.h = static_cast<int>(std::ceil(std::abs(in.w * s) + std::abs(in.h * c)));
  out.px.assign(static_cast<size_t>(out.w) * out.h, 255);
  const double icx = in.w / 2.0, icy = in.h / 2.0, ocx = out.w / 2.0, ocy = out.h / 2.0;
  for (int y = 0; y < out.h; ++y) {
    for (int x = 0; x < out.w; ++x) {
      const double dx = x + 0.5 - ocx, dy = y + 0.5 - ocy;
      const int sx = static_cast<int>(std::floor(c * dx + s * dy + icx));
      const int sy = static_cast<int>(std::floor(-s * dx + c * dy + icy));
      if (sx >= 0 && sx < in.w && sy >= 0 && sy < in.h)
        out.px[static_cast<size_t>(y) * out.w + x] = in.at(sx, sy);
    }
  }
  return out;
}

// A w×h frame: grey background, `code` pasted at (x0, y0), contrast reduced and uniform
// noise of ±amplitude from a seeded generator.
inline Gray Frame(int w, int h, const Gray& code, int x0, int y0, int amplitude, uint32_t seed) {
  Gray f;
  f.w = w;
  f.h = h;
  f.px.assign(static_cast<size_t>(w) * h, 170);
  for (int y = 0; y < code.h && y0 + y < h; ++y)
    for (int x = 0; x < code.w && x0 + x < w; ++x)
      f.px[static_cast<size_t>(y0 + y) * w + x0 + x] =
          static_cast<uint8_t>(40 + code.at(x, y) * 180 / 255);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> noise(-amplitude, amplitude);
  for (uint8_t& p : f.px) p = static_cast<uint8_t>(std::clamp(p + noise(rng), 0, 255));
  return f;
}

inline void WritePgm(const Gray& g, const std::string& path) {
  std::ofstream o(path, std::ios::binary);
  o << "P5\n" << g.w << " " << g.h << "\n255\n";
  o.write(reinterpret_cast<const char*>(g.px.data()), static_cast<std::streamsize>(g.px.size()));
}

inline void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream o(path, std::ios::binary);
  o.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string ReadBytes(const std::string& path) {
  std::ifstream i(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(i), {});
}

}  // namespace loyalty::drivers::testing
