// Fast up: a loop that saturates between two windows wakes loops at once
// (ScalingPolicy::decide_fast, UtilizationMonitor::check_saturation). Each
// test fails if its rule is dropped.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loopscale/scaling_policy.hpp"
#include "loopscale/utilization_monitor.hpp"
#include "support/fake_executor.hpp"
#include "support/policy_observations.hpp"
#include "support/wait.hpp"

namespace loopscale {
namespace {

using namespace std::chrono_literals;
using ::loopscale::testing::obs;
using ::loopscale::testing::started;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

ScalingConfig fast_config() {
  ScalingConfig c;
  c.signal = ScaleSignal::kTarget;
  c.min_loops = 1;
  c.max_loops = 8;
  c.window = 100ms;
  c.patience_cycles = 3;
  c.target_utilization = 0.7;
  c.scale_down_cooldown_cycles = 2;
  c.max_ramp_down_step = 8;
  c.fast_up_interval = 25ms;
  return c;
}

TEST(FastUpPolicyTest, ASaturatedLoopWakesLoopsAsTheTargetsFirstSaturatedWindowWould) {
  ScalingPolicy p = started(fast_config(), 1);
  const ScaleDecision d = p.decide_fast(obs({1.0}, 1));
  EXPECT_EQ(d.rule, ScaleRule::kFastUp);
  // kSaturationGain x 1.0 = 3 loops' worth at 0.7: ceil(4.29) = 5 loops.
  EXPECT_THAT(d.wake, ElementsAre(1, 2, 3, 4));
  EXPECT_THAT(d.voters, ElementsAre(0));
  EXPECT_EQ(d.active_after, 5u);
  EXPECT_THAT(d.reason, HasSubstr("fast_up: wake 1 2 3 4"));
  EXPECT_THAT(d.reason, HasSubstr("1 -> 5 active"));
}

TEST(FastUpPolicyTest, NothingBelowSaturationAtTheBoundOrWhenOff) {
  ScalingPolicy p = started(fast_config(), 1);
  EXPECT_EQ(p.decide_fast(obs({0.94}, 1)).rule, ScaleRule::kNone);
  ScalingConfig at_max = fast_config();
  at_max.max_loops = 2;
  ScalingPolicy full = started(at_max, 2);
  EXPECT_EQ(full.decide_fast(obs({1.0, 1.0}, 2)).rule, ScaleRule::kNone);
  ScalingConfig off = fast_config();
  off.fast_up_interval = 0ns;
  ScalingPolicy never = started(off, 1);
  EXPECT_EQ(never.decide_fast(obs({1.0}, 1)).rule, ScaleRule::kNone);
}

TEST(FastUpPolicyTest, AtMostOnceBetweenTwoWindows) {
  ScalingPolicy p = started(fast_config(), 1);
  ASSERT_EQ(p.decide_fast(obs({1.0}, 1)).rule, ScaleRule::kFastUp);
  // Still saturated at the next check: the loops just woken get the rest of
  // the window to take the load.
  EXPECT_EQ(p.decide_fast(obs({1.0}, 5)).rule, ScaleRule::kNone);
  p.decide(obs({1.0, 0.9, 0.9, 0.9, 0.9}, 5));
  EXPECT_EQ(p.decide_fast(obs({1.0, 1.0}, 5)).rule, ScaleRule::kFastUp);
}

TEST(FastUpPolicyTest, TheThresholdSignalsSizeByTheScaleUpThreshold) {
  ScalingConfig c = fast_config();
  c.signal = ScaleSignal::kPerLoop;
  c.scale_up_threshold = 0.75;
  ScalingPolicy p = started(c, 1);
  // 3 loops' worth / 0.75 = 4 loops.
  EXPECT_THAT(p.decide_fast(obs({1.0}, 1)).wake, ElementsAre(1, 2, 3));
}

TEST(FastUpPolicyTest, TheRampLimitHolds) {
  ScalingConfig c = fast_config();
  c.max_ramp_up_step = 1;
  ScalingPolicy p = started(c, 1);
  EXPECT_THAT(p.decide_fast(obs({1.0}, 1)).wake, ElementsAre(1));
}

TEST(FastUpPolicyTest, ItsLevelIsKeptOverTheLookbackLikeAWindows) {
  ScalingPolicy p = started(fast_config(), 1);
  for (int i = 0; i < 6; ++i) p.decide(obs({0.1}, 1));  // a full lookback at 1
  ASSERT_EQ(p.decide_fast(obs({1.0}, 1)).rule, ScaleRule::kFastUp);
  // The load was a blip: five loops idle. They stay for the lookback
  // (2 x patience = 6 windows, the fast-up's own included), then leave.
  const std::vector<double> idle(5, 0.05);
  std::size_t windows = 0;
  for (;;) {
    ++windows;
    const ScaleDecision d = p.decide(obs(idle, 5));
    if (!d.suspend.empty() || windows == 7) break;
  }
  EXPECT_EQ(windows, 7u);
}

TEST(FastUpPolicyTest, ItStartsTheCooldown) {
  ScalingConfig c = fast_config();
  c.signal = ScaleSignal::kPerLoop;
  c.patience_cycles = 1;
  c.scale_down_cooldown_cycles = 2;
  ScalingPolicy p = started(c, 1);
  ASSERT_EQ(p.decide_fast(obs({1.0}, 1)).rule, ScaleRule::kFastUp);
  // Idle at once: patience 1 would let them go, the cooldown holds them for
  // the window of the fast-up and the next.
  EXPECT_EQ(p.decide(obs({}, 4)).held, HoldReason::kCooldown);
  EXPECT_EQ(p.decide(obs({}, 4)).held, HoldReason::kCooldown);
  EXPECT_EQ(p.decide(obs({}, 4)).rule, ScaleRule::kScaleDown);
}

// The monitor over fake executors and a virtual clock.
class FastUpMonitorTest : public ::testing::Test {
 protected:
  FastUpMonitorTest() : pool_(4, config(), 1) {
    pool_.monitor().add_listener([this](const ScaleEvent& e) { heard_.push_back(e.decision.reason); });
  }
  static ScalingConfig config() {
    ScalingConfig c = fast_config();
    c.max_loops = 4;
    return c;
  }
  // Executor `i` is busy for `busy` of the next `span`, then the monitor
  // checks.
  ScaleDecision check_after(std::chrono::nanoseconds span, std::chrono::nanoseconds busy,
                            std::size_t i = 0) {
    pool_.fake(i).busy += busy;
    pool_.now() += span;
    return pool_.monitor().check_saturation(pool_.now());
  }

  testing::FakePool pool_;
  std::vector<std::string> heard_;
};

TEST_F(FastUpMonitorTest, ASaturatedLoopWakesLoopsBeforeTheWindowEnds) {
  const ScaleDecision d = check_after(25ms, 25ms);
  EXPECT_EQ(d.rule, ScaleRule::kFastUp);
  EXPECT_EQ(pool_.running(), 4u);
  ASSERT_EQ(heard_.size(), 1u);
  EXPECT_THAT(heard_[0], HasSubstr("fast_up"));
  const MonitorStats s = pool_.monitor().stats();
  EXPECT_EQ(s.fast_ups, 1u);
  EXPECT_EQ(s.scale_ups, 1u);
  EXPECT_EQ(s.executors_woken, 3u);
  EXPECT_EQ(s.ticks, 0u);  // a check is not a window
}

TEST_F(FastUpMonitorTest, NewWorkAvoidsTheSaturatedLoopUntilTheNextTick) {
  ASSERT_EQ(check_after(25ms, 25ms).rule, ScaleRule::kFastUp);
  EXPECT_THAT(pool_.chooser().active(), ElementsAre(1, 2, 3));
  pool_.now() += 75ms;
  pool_.monitor().tick(pool_.now());
  EXPECT_THAT(pool_.chooser().active(), ElementsAre(0, 1, 2, 3));
}

TEST_F(FastUpMonitorTest, ACheckMeasuresTheTimeSinceTheLastCheck) {
  // Half busy over the first quarter: not saturated.
  EXPECT_EQ(check_after(25ms, 12500us).rule, ScaleRule::kNone);
  // Busy through the second quarter: saturated there, although the window
  // so far is only three quarters busy.
  EXPECT_EQ(check_after(25ms, 25ms).rule, ScaleRule::kFastUp);
}

TEST_F(FastUpMonitorTest, ATickRestartsTheChecksMeasurement) {
  pool_.fake(0).busy += 90ms;  // busy, not saturated: the tick does nothing
  pool_.now() += 100ms;
  ASSERT_EQ(pool_.monitor().tick(pool_.now()).rule, ScaleRule::kNone);
  // Saturated since the tick (measured from the start of the window it
  // would read 0.92).
  EXPECT_EQ(check_after(25ms, 25ms).rule, ScaleRule::kFastUp);
}

// An executor whose connections can move.
struct MovingExecutor : testing::FakeExecutor {
  std::size_t asked = 0;
  void request_moves(std::size_t n) { asked = n; }
};

TEST(FastUpMovesTest, TheSaturatedLoopsConnectionsAreAskedToSpread) {
  ScalingConfig c = fast_config();
  c.max_loops = 4;
  std::vector<MovingExecutor> e(4);
  for (std::size_t i = 1; i < 4; ++i) e[i].suspended = true;
  e[0].regs = 40;
  AutoScalingChooser<MovingExecutor> chooser({&e[0], &e[1], &e[2], &e[3]}, c);
  UtilizationMonitor<MovingExecutor> monitor(chooser, c);
  Clock::time_point now{10s};
  monitor.tick(now);
  e[0].busy += 25ms;
  ASSERT_EQ(monitor.check_saturation(now + 25ms).rule, ScaleRule::kFastUp);
  EXPECT_EQ(e[0].asked, 30u);  // 40 over four loops: 10 stay
  EXPECT_EQ(monitor.stats().moves_requested, 30u);
}

// An executor for the monitor's own thread: busy all the time since it was
// made if `saturated`, never otherwise.
struct ClockExecutor {
  const Clock::time_point made = Clock::now();
  const bool saturated = false;
  std::atomic<bool> suspended{false};
  std::atomic<int> resumes{0};

  std::chrono::nanoseconds busy_time() const {
    return saturated ? Clock::now() - made : std::chrono::nanoseconds(0);
  }
  bool try_suspend() {
    suspended = true;
    return true;
  }
  void resume() {
    ++resumes;
    suspended = false;
  }
  bool is_suspended() const { return suspended; }
  std::size_t registrations() const { return 0; }
};

TEST(FastUpThreadTest, TheMonitorsThreadChecksBetweenTicks) {
  ScalingConfig c = fast_config();
  c.max_loops = 2;
  c.window = 60s;  // no tick during the test
  ClockExecutor hot{.saturated = true};
  ClockExecutor idle;
  idle.suspended = true;
  AutoScalingChooser<ClockExecutor> chooser({&hot, &idle}, c);
  UtilizationMonitor<ClockExecutor> monitor(chooser, c);
  monitor.start();
  EXPECT_TRUE(testing::eventually([&] { return monitor.stats().fast_ups == 1; }));
  monitor.stop();
  EXPECT_FALSE(idle.is_suspended());
  EXPECT_EQ(monitor.stats().ticks, 0u);
  EXPECT_EQ(monitor.stats().last_decision.rule, ScaleRule::kFastUp);
}

}  // namespace
}  // namespace loopscale
