// The exposition helpers both servers' GET /metrics are written with.
#include "loyalty/base/prometheus.h"

#include <gtest/gtest.h>

namespace loyalty {
namespace {

TEST(Prometheus, SecondsWithoutFloatingPoint) {
  EXPECT_EQ(MicrosAsSeconds(250), "0.00025");
  EXPECT_EQ(MicrosAsSeconds(1000000), "1");
  EXPECT_EQ(MicrosAsSeconds(1500000), "1.5");
  EXPECT_EQ(MicrosAsSeconds(0), "0");
  EXPECT_EQ(EscapeLabel("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(Label("route", "x\"y"), "route=\"x\\\"y\"");
}

TEST(Prometheus, HistogramIsCumulative) {
  LatencyHistogram h;
  h.Observe(50);
  h.Observe(100);  // on the bound: counted in le=0.0001
  h.Observe(101);
  h.Observe(5000000);  // beyond every bound: only +Inf
  auto s = h.Read();
  ASSERT_EQ(s.bounds_us.size(), LatencyHistogram::kDefaultBoundsUs.size());
  EXPECT_EQ(s.cumulative[0], 2u);
  EXPECT_EQ(s.cumulative[1], 3u);
  EXPECT_EQ(s.cumulative.back(), 3u);
  EXPECT_EQ(s.count, 4u);
  EXPECT_EQ(s.sum_us, 50 + 100 + 101 + 5000000);
}

TEST(Prometheus, HistogramWithItsOwnBoundsWritesEveryBucket) {
  static constexpr int64_t kBounds[] = {1000, 10000000};
  LatencyHistogram h(kBounds);
  h.Observe(999);
  h.Observe(2500000);
  h.Observe(20000000);
  MetricsText t;
  t.Family("x_seconds", "histogram", "Test.");
  t.Histogram("x_seconds", Label("route", "a"), h.Read());
  t.Histogram("y_seconds", "", LatencyHistogram(kBounds).Read());
  EXPECT_EQ(t.text(),
            "# HELP x_seconds Test.\n"
            "# TYPE x_seconds histogram\n"
            "x_seconds_bucket{route=\"a\",le=\"0.001\"} 1\n"
            "x_seconds_bucket{route=\"a\",le=\"10\"} 2\n"
            "x_seconds_bucket{route=\"a\",le=\"+Inf\"} 3\n"
            "x_seconds_sum{route=\"a\"} 22.500999\n"
            "x_seconds_count{route=\"a\"} 3\n"
            "y_seconds_bucket{le=\"0.001\"} 0\n"
            "y_seconds_bucket{le=\"10\"} 0\n"
            "y_seconds_bucket{le=\"+Inf\"} 0\n"
            "y_seconds_sum 0\n"
            "y_seconds_count 0\n");
}

}  // namespace
}  // namespace loyalty
