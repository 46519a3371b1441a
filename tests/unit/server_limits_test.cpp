// The per-client limit rules that decide on their own, with times given explicitly (the
// integration side is robustness_test's Output*Limit* tests).

#include <gtest/gtest.h>

#include <cstdint>

#include "disque/server/client.h"

namespace disque::server {
namespace {

constexpr int64_t kHard = 1000, kSoft = 100, kSoftSeconds = 2;

TEST(OutputLimitTest, NoLimitsNeverCloses) {
  OutputLimit limit;
  for (int64_t t = 0; t < 100000; t += 1000) EXPECT_FALSE(limit.Over(INT64_MAX / 2, 0, 0, 0, t));
}

TEST(OutputLimitTest, HardLimitClosesAtOnceAboveItOnly) {
  OutputLimit limit;
  EXPECT_FALSE(limit.Over(kHard, kHard, 0, 0, 0));
  EXPECT_TRUE(limit.Over(kHard + 1, kHard, 0, 0, 0));
}

TEST(OutputLimitTest, SoftLimitClosesAfterItsSecondsAboveIt) {
  OutputLimit limit;
  EXPECT_FALSE(limit.Over(kSoft + 1, kHard, kSoft, kSoftSeconds, 10'000));  // starts the count
  EXPECT_FALSE(limit.Over(kSoft + 1, kHard, kSoft, kSoftSeconds, 11'999));
  EXPECT_TRUE(limit.Over(kSoft + 1, kHard, kSoft, kSoftSeconds, 12'000));
}

TEST(OutputLimitTest, DroppingToTheSoftLimitStartsTheCountAgain) {
  OutputLimit limit;
  EXPECT_FALSE(limit.Over(kSoft + 1, kHard, kSoft, kSoftSeconds, 0));
  EXPECT_FALSE(limit.Over(kSoft, kHard, kSoft, kSoftSeconds, 1'500));  // at the limit: not above
  EXPECT_FALSE(limit.Over(kSoft + 1, kHard, kSoft, kSoftSeconds, 1'600));
  EXPECT_FALSE(limit.Over(kSoft + 1, kHard, kSoft, kSoftSeconds, 3'599));
  EXPECT_TRUE(limit.Over(kSoft + 1, kHard, kSoft, kSoftSeconds, 3'600));
}

TEST(OutputLimitTest, SoftLimitWithZeroSecondsClosesAtOnce) {
  OutputLimit limit;
  EXPECT_TRUE(limit.Over(kSoft + 1, 0, kSoft, 0, 5));
}

TEST(OutputLimitTest, HugeSoftSecondsDoNotOverflow) {
  OutputLimit limit;
  EXPECT_FALSE(limit.Over(kSoft + 1, 0, kSoft, INT64_MAX, 0));
  EXPECT_FALSE(limit.Over(kSoft + 1, 0, kSoft, INT64_MAX, INT64_MAX / 2));
}

}  // namespace
}  // namespace disque::server
