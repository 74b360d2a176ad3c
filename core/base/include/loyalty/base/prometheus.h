// The Prometheus text exposition format (version 0.0.4) as loyaltyd and loyalty-hq write it
// for GET /metrics: a latency histogram with fixed buckets, and a writer of families,
// samples and histograms. Values are written without floating point (seconds as decimal
// fractions of microseconds). LatencyHistogram is thread-safe (atomics); MetricsText is a
// plain value.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace loyalty {

// A latency histogram in microseconds with fixed upper bounds; exposed in seconds.
class LatencyHistogram {
 public:
  static constexpr size_t kMaxBounds = 16;
  // 100 µs … 1 s: requests answered from memory or one local transaction.
  static constexpr std::array<int64_t, 12> kDefaultBoundsUs = {
      100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000};

  LatencyHistogram() : LatencyHistogram(kDefaultBoundsUs) {}
  // `bounds_us`: ascending, at most kMaxBounds (more are ignored).
  explicit LatencyHistogram(std::span<const int64_t> bounds_us);

  void Observe(int64_t us);
  struct Snapshot {
    std::vector<int64_t> bounds_us;
    std::vector<uint64_t> cumulative;  // one per bound: observations <= it
    uint64_t count = 0;
    int64_t sum_us = 0;
  };
  Snapshot Read() const;

 private:
  std::array<int64_t, kMaxBounds> bounds_{};
  size_t n_ = 0;
  std::array<std::atomic<uint64_t>, kMaxBounds + 1> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<int64_t> sum_us_{0};
};

// Formats microseconds as seconds for the exposition ("0.00025"), without floating point.
std::string MicrosAsSeconds(int64_t us);
// Escapes a label value (backslash, double quote, newline).
std::string EscapeLabel(std::string_view v);
// One label, `key="value"` with the value escaped; join several with ','.
std::string Label(std::string_view key, std::string_view value);

// The text of one exposition, family by family.
class MetricsText {
 public:
  // The # HELP and # TYPE lines of a family (type: counter, gauge, histogram).
  MetricsText& Family(std::string_view name, std::string_view type, std::string_view help);
  // One sample line; `labels` is "" or `a="x",b="y"` (see Label).
  MetricsText& Sample(std::string_view name, std::string_view labels, std::string_view value);
  MetricsText& Sample(std::string_view name, std::string_view labels, uint64_t value);
  MetricsText& Sample(std::string_view name, std::string_view labels, int64_t value);
  // The _bucket (with le, and +Inf), _sum and _count samples of one histogram series.
  MetricsText& Histogram(std::string_view name, std::string_view labels,
                         const LatencyHistogram::Snapshot& s);

  const std::string& text() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace loyalty
