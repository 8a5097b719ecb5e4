#include "loopscale/activity.hpp"

#include <gtest/gtest.h>

namespace loopscale {
namespace {

using namespace std::chrono_literals;

const Clock::time_point t0 = Clock::time_point(10s);

TEST(ActivityRecorderTest, StartsIdleWithNothingCounted) {
  ActivityRecorder rec;
  const auto s = rec.snapshot(t0);
  EXPECT_EQ(s.busy, 0ns);
  EXPECT_EQ(s.handlers, 0u);
  EXPECT_EQ(s.wakeups, 0u);
  EXPECT_FALSE(s.busy_now);
}

TEST(ActivityRecorderTest, ClosedSlicesAddUp) {
  ActivityRecorder rec;
  rec.mark_busy(t0);
  rec.mark_idle(t0 + 3ms);
  rec.mark_busy(t0 + 10ms);
  rec.mark_idle(t0 + 12ms);
  EXPECT_EQ(rec.busy_time(t0 + 100ms), 5ms);
  EXPECT_EQ(rec.snapshot(t0 + 100ms).wakeups, 2u);
}

TEST(ActivityRecorderTest, OpenSliceCountsUpToNow) {
  ActivityRecorder rec;
  rec.mark_busy(t0);
  rec.mark_idle(t0 + 1ms);
  rec.mark_busy(t0 + 2ms);
  const auto s = rec.snapshot(t0 + 10s);
  EXPECT_TRUE(s.busy_now);
  EXPECT_EQ(s.busy, 1ms + 10s - 2ms);
}

TEST(ActivityRecorderTest, ReaderBeforeSliceStartSeesEmptySlice) {
  ActivityRecorder rec;
  rec.mark_busy(t0);
  EXPECT_EQ(rec.busy_time(t0 - 1ms), 0ns);
}

TEST(ActivityRecorderTest, MarkBusyWhileBusyKeepsTheFirstStart) {
  ActivityRecorder rec;
  rec.mark_busy(t0);
  rec.mark_busy(t0 + 5ms);
  rec.mark_idle(t0 + 10ms);
  EXPECT_EQ(rec.busy_time(t0 + 20ms), 10ms);
  EXPECT_EQ(rec.snapshot(t0 + 20ms).wakeups, 1u);
}

TEST(ActivityRecorderTest, MarkIdleWhileIdleAddsNothing) {
  ActivityRecorder rec;
  rec.mark_idle(t0);
  rec.mark_busy(t0 + 1ms);
  rec.mark_idle(t0 + 2ms);
  rec.mark_idle(t0 + 50ms);
  EXPECT_EQ(rec.busy_time(t0 + 100ms), 1ms);
}

TEST(ActivityRecorderTest, ClockGoingBackwardsAddsZeroNotNegative) {
  ActivityRecorder rec;
  rec.mark_busy(t0);
  rec.mark_idle(t0 - 1ms);
  EXPECT_EQ(rec.busy_time(t0 + 1s), 0ns);
}

TEST(ActivityRecorderTest, CountsHandlers) {
  ActivityRecorder rec;
  for (int i = 0; i < 7; ++i) rec.count_handler();
  EXPECT_EQ(rec.snapshot(t0).handlers, 7u);
}

}  // namespace
}  // namespace loopscale
