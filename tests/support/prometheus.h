// A GET /metrics exposition as tests read it: the samples by name and labels as written,
// and the same text through a real Prometheus parser (Debian's python3-prometheus-client)
// when it is installed. Header-only; link loyalty_test_support.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "support/process.h"

namespace loyalty::testing {

// "name{labels}" (or "name" without labels), exactly as written -> the value's text. Comment
// lines are skipped.
inline std::map<std::string, std::string> MetricSamples(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(at, end - at);
    at = end + 1;
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    out[line.substr(0, space)] = line.substr(space + 1);
  }
  return out;
}

// The value of one sample as an integer; -1 when there is no such sample.
inline long long MetricValue(const std::map<std::string, std::string>& samples,
                             const std::string& key) {
  auto it = samples.find(key);
  return it == samples.end() ? -1 : std::atoll(it->second.c_str());
}

// The number of samples python3-prometheus-client reads from `text`, as "<n>\n"; its error
// when it cannot parse it; "" when the parser is not installed (the check is skipped).
inline std::string PrometheusClientSampleCount(const std::string& text) {
  if (std::system("/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null") != 0) return "";
  std::string path = "/tmp/loyalty_metrics_" + std::to_string(::getpid()) + ".txt";
  std::ofstream(path) << text;
  std::string out = ShellOutput(
      "/usr/bin/python3 -c 'import sys\n"
      "from prometheus_client.parser import text_string_to_metric_families as parse\n"
      "print(sum(len(f.samples) for f in parse(open(sys.argv[1]).read())))' " +
      path + " 2>&1");
  std::remove(path.c_str());
  return out;
}

// `text` parses with python3-prometheus-client into as many samples as MetricSamples reads;
// nothing is checked when the parser is not installed.
inline void ExpectPrometheusClientParses(const std::string& text) {
  std::string parsed = PrometheusClientSampleCount(text);
  if (!parsed.empty()) {
    EXPECT_EQ(parsed, std::to_string(MetricSamples(text).size()) + "\n") << text;
  }
}

}  // namespace loyalty::testing
