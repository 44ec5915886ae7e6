// modules/status: the history of the status page, a fixed ring sampled at most once an interval.
#include "modules/status/status_history.h"

#include <gtest/gtest.h>

namespace subgate {
namespace {

using namespace std::chrono_literals;

StatusSample sampleOf(uint64_t requests_2xx) {
  StatusSample sample;
  sample.requests[1] = requests_2xx;
  return sample;
}

TEST(StatusHistory, SamplesAtMostOncePerInterval) {
  StatusHistory history(1000ms, 10);
  int taken = 0;
  auto take = [&] {
    ++taken;
    return sampleOf(static_cast<uint64_t>(taken));
  };
  EXPECT_TRUE(history.sampleIfDue(10'000, take));  // the first is always due
  EXPECT_FALSE(history.sampleIfDue(10'500, take));
  EXPECT_FALSE(history.sampleIfDue(10'899, take));
  EXPECT_TRUE(history.sampleIfDue(10'900, take)) << "a tick a little early still counts";
  EXPECT_FALSE(history.sampleIfDue(11'000, take));
  EXPECT_TRUE(history.sampleIfDue(15'000, take)) << "a late one is a longer step";
  EXPECT_EQ(taken, 3) << "the sample is only taken when due";
  const auto samples = history.samples();
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_EQ(samples[0].time_ms, 10'000);
  EXPECT_EQ(samples[1].time_ms, 10'900);
  EXPECT_EQ(samples[2].time_ms, 15'000);
  EXPECT_EQ(samples[2].requests[1], 3u);
}

TEST(StatusHistory, KeepsTheNewestOldestFirst) {
  StatusHistory history(1000ms, 3);
  for (int i = 0; i < 7; ++i)
    history.sampleIfDue(1000 * i, [i] { return sampleOf(static_cast<uint64_t>(i)); });
  const auto samples = history.samples();
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_EQ(samples[0].requests[1], 4u);
  EXPECT_EQ(samples[1].requests[1], 5u);
  EXPECT_EQ(samples[2].requests[1], 6u);
  EXPECT_EQ(samples[2].time_ms, 6000);
}

TEST(StatusHistory, TheDefaultIsFiveMinutesEveryTwoSeconds) {
  StatusHistory history;
  EXPECT_EQ(history.interval(), 2000ms);
  EXPECT_EQ(StatusHistory::kSamples * StatusHistory::kInterval, 300s);
  EXPECT_TRUE(history.samples().empty());
}

}  // namespace
}  // namespace subgate
