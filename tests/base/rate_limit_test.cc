// The sliding-hour limit (base/rate_limit.h) at its edges: the cap, and a time leaving the
// window exactly an hour later.
#include "loyalty/base/rate_limit.h"

#include <gtest/gtest.h>

namespace loyalty {
namespace {

TEST(RateLimitTest, TheCapAndTheHourAtTheirEdges) {
  std::deque<int64_t> times;
  EXPECT_TRUE(TakeHourlySlot(times, 2, 1'000));
  EXPECT_TRUE(TakeHourlySlot(times, 2, 2'000));
  EXPECT_FALSE(TakeHourlySlot(times, 2, 3'000));              // a third in the hour: refused...
  EXPECT_EQ(times.size(), 2u);                                // ...and not recorded
  EXPECT_FALSE(TakeHourlySlot(times, 2, 1'000 + 3'599'999));  // the first still counts
  EXPECT_TRUE(TakeHourlySlot(times, 2, 1'000 + 3'600'000));   // an hour on, it does not
  EXPECT_FALSE(TakeHourlySlot(times, 0, 5'000'000));          // a cap of 0 allows nothing
}

}  // namespace
}  // namespace loyalty
