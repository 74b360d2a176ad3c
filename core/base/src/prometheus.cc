#include "loyalty/base/prometheus.h"

#include <algorithm>
#include <cstdio>

namespace loyalty {

LatencyHistogram::LatencyHistogram(std::span<const int64_t> bounds_us)
    : n_(std::min(bounds_us.size(), kMaxBounds)) {
  std::copy_n(bounds_us.begin(), n_, bounds_.begin());
}

void LatencyHistogram::Observe(int64_t us) {
  size_t i = 0;
  while (i < n_ && us > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(us, std::memory_order_relaxed);
}

LatencyHistogram::Snapshot LatencyHistogram::Read() const {
  Snapshot s;
  s.bounds_us.assign(bounds_.begin(), bounds_.begin() + static_cast<std::ptrdiff_t>(n_));
  uint64_t run = 0;
  for (size_t i = 0; i < n_; ++i) {
    run += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(run);
  }
  s.count = count_.load(std::memory_order_relaxed);
  s.sum_us = sum_us_.load(std::memory_order_relaxed);
  return s;
}

std::string MicrosAsSeconds(int64_t us) {
  bool neg = us < 0;
  uint64_t a = neg ? static_cast<uint64_t>(-us) : static_cast<uint64_t>(us);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s%llu.%06llu", neg ? "-" : "",
                static_cast<unsigned long long>(a / 1000000),
                static_cast<unsigned long long>(a % 1000000));
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

std::string EscapeLabel(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string Label(std::string_view key, std::string_view value) {
  std::string out(key);
  out += "=\"";
  out += EscapeLabel(value);
  out += '"';
  return out;
}

MetricsText& MetricsText::Family(std::string_view name, std::string_view type,
                                 std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += help;
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
  return *this;
}

MetricsText& MetricsText::Sample(std::string_view name, std::string_view labels,
                                 std::string_view value) {
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    out_ += labels;
    out_ += '}';
  }
  out_ += ' ';
  out_ += value;
  out_ += '\n';
  return *this;
}

MetricsText& MetricsText::Sample(std::string_view name, std::string_view labels, uint64_t value) {
  return Sample(name, labels, std::string_view(std::to_string(value)));
}

MetricsText& MetricsText::Sample(std::string_view name, std::string_view labels, int64_t value) {
  return Sample(name, labels, std::string_view(std::to_string(value)));
}

MetricsText& MetricsText::Histogram(std::string_view name, std::string_view labels,
                                    const LatencyHistogram::Snapshot& s) {
  const std::string bucket = std::string(name) + "_bucket";
  const std::string prefix = labels.empty() ? std::string() : std::string(labels) + ",";
  for (size_t i = 0; i < s.bounds_us.size(); ++i)
    Sample(bucket, prefix + Label("le", MicrosAsSeconds(s.bounds_us[i])), s.cumulative[i]);
  Sample(bucket, prefix + Label("le", "+Inf"), s.count);
  Sample(std::string(name) + "_sum", labels, std::string_view(MicrosAsSeconds(s.sum_us)));
  Sample(std::string(name) + "_count", labels, s.count);
  return *this;
}

}  // namespace loyalty
