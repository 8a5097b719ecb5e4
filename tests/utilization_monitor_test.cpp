// Every scaling rule, window by window, over fake executors and a virtual
// clock. Each test would fail if its rule were dropped.

#include "loopscale/utilization_monitor.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/fake_executor.hpp"
#include "support/wait.hpp"

namespace loopscale {
namespace {

using ::loopscale::testing::FakePool;
using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// Patience 3, no cooldown, no ramp limit unless a test sets them.
ScalingConfig base_config() {
  ScalingConfig c;
  // The per-loop rules (docs/scaling.md) are what these tests pin down; kTarget
  // has its own tests (scaling_policy_test, scaling_sim_test).
  c.signal = ScaleSignal::kPerLoop;
  c.min_loops = 1;
  c.max_loops = 0;
  c.window = std::chrono::milliseconds(100);
  c.patience_cycles = 3;
  c.scale_down_cooldown_cycles = 0;
  c.max_ramp_down_step = 1;
  return c;
}

TEST(UtilizationMonitorTest, FirstTickIsABaseline) {
  ScalingConfig c = base_config();
  testing::FakeExecutor e;
  AutoScalingChooser<testing::FakeExecutor> chooser({&e}, c);
  UtilizationMonitor<testing::FakeExecutor> monitor(chooser, c);
  e.busy = std::chrono::hours(1);  // busy before the baseline does not count
  ScaleDecision d = monitor.tick(Clock::time_point(std::chrono::seconds(5)));
  EXPECT_EQ(d.rule, ScaleRule::kBaseline);
  EXPECT_THAT(monitor.utilizations(), ElementsAre(0.0));
  d = monitor.tick(Clock::time_point(std::chrono::seconds(6)));
  EXPECT_EQ(d.rule, ScaleRule::kNone);
  EXPECT_THAT(monitor.utilizations(), ElementsAre(0.0));
}

// An executor that reports a scheduling lag.
struct LaggyExecutor : testing::FakeExecutor {
  std::chrono::nanoseconds lag{0};
  std::chrono::nanoseconds scheduling_lag() const { return lag; }
};
static_assert(LagReportingExecutor<LaggyExecutor>);

// Active time is summed a window at a time for executors active in it; the
// histogram counts the lag of every active executor at every window, and
// nothing of suspended ones.
TEST(UtilizationMonitorTest, ActiveTimeAndTheLagHistogramCountWhatWasActive) {
  using namespace std::chrono_literals;
  ScalingConfig c = base_config();
  c.patience_cycles = 100;  // no decision in this test
  LaggyExecutor a, b;
  b.suspended = true;
  a.lag = 3ms;
  AutoScalingChooser<LaggyExecutor> chooser({&a, &b}, c);
  UtilizationMonitor<LaggyExecutor> monitor(chooser, c);
  monitor.tick(Clock::time_point(0s));  // the baseline counts nothing
  EXPECT_THAT(monitor.stats().active_time, ElementsAre(0ns, 0ns));
  EXPECT_EQ(monitor.stats().lag_histogram.count, 0u);
  monitor.tick(Clock::time_point(100ms));
  a.lag = 200us;
  monitor.tick(Clock::time_point(250ms));
  MonitorStats s = monitor.stats();
  EXPECT_THAT(s.active_time, ElementsAre(250ms, 0ns));
  EXPECT_EQ(s.lag_histogram.count, 2u);
  EXPECT_EQ(s.lag_histogram.sum, 3200us);
  // Bounds 50us, 250us, 1ms, 5ms, 25ms, 100ms, 500ms; cumulative.
  EXPECT_THAT(s.lag_histogram.cumulative, ElementsAre(0, 1, 1, 2, 2, 2, 2));
  // Woken, the other executor counts from its first window.
  b.suspended = false;
  b.lag = 1s;
  monitor.tick(Clock::time_point(350ms));
  s = monitor.stats();
  EXPECT_THAT(s.active_time, ElementsAre(350ms, 100ms));
  EXPECT_EQ(s.lag_histogram.count, 4u);
  EXPECT_EQ(s.lag_histogram.cumulative.back(), 3u) << "1 s is beyond every bound";
}

TEST(UtilizationMonitorTest, UtilizationIsBusyDeltaOverElapsed) {
  FakePool pool(2, base_config(), 2);
  pool.window({0.4, 0.9});
  EXPECT_THAT(pool.monitor().utilizations(),
              ElementsAre(DoubleNear(0.4, 1e-9), DoubleNear(0.9, 1e-9)));
  pool.window({2.0, -1.0});  // clamped to [0, 1]
  EXPECT_THAT(pool.monitor().utilizations(), ElementsAre(1.0, 0.0));
}

TEST(UtilizationMonitorTest, ScalesUpAfterExactlyPatienceBusyWindows) {
  FakePool pool(4, base_config(), 1);
  EXPECT_TRUE(pool.window({0.9}).wake.empty());
  EXPECT_TRUE(pool.window({0.9}).wake.empty());
  ScaleDecision d = pool.window({0.9});
  EXPECT_EQ(d.rule, ScaleRule::kScaleUp);
  EXPECT_THAT(d.wake, ElementsAre(1));
  EXPECT_THAT(d.voters, ElementsAre(0));
  EXPECT_THAT(d.reason, HasSubstr("scale_up"));
  EXPECT_FALSE(pool.fake(1).suspended);
  EXPECT_EQ(pool.chooser().active_count(), 2u);
}

TEST(UtilizationMonitorTest, AWindowInTheBandRestartsTheBusyStreak) {
  FakePool pool(4, base_config(), 1);
  pool.window({0.9});
  pool.window({0.9});
  pool.window({0.5});  // between the thresholds: streak resets
  pool.window({0.9});
  EXPECT_TRUE(pool.window({0.9}).wake.empty());
  EXPECT_THAT(pool.window({0.9}).wake, ElementsAre(1));
}

TEST(UtilizationMonitorTest, NoOvershootAfterAScaleUp) {
  // Netty #17538: without resetting the voters, a loop that stays hot adds a
  // loop every window while the new loops warm up.
  FakePool pool(8, base_config(), 1);
  for (int i = 0; i < 3; ++i) pool.window({0.95});
  ASSERT_EQ(pool.running(), 2u);
  EXPECT_TRUE(pool.window({0.95, 0.5}).wake.empty());
  EXPECT_TRUE(pool.window({0.95, 0.5}).wake.empty());
  EXPECT_THAT(pool.window({0.95, 0.5}).wake, ElementsAre(2));
  EXPECT_EQ(pool.running(), 3u);
}

TEST(UtilizationMonitorTest, EachBusyLoopVotesForOneMoreLoop) {
  FakePool pool(8, base_config(), 3);
  for (int i = 0; i < 2; ++i) pool.window({0.9, 0.9, 0.9});
  ScaleDecision d = pool.window({0.9, 0.9, 0.9});
  EXPECT_THAT(d.wake, ElementsAre(3, 4, 5));
}

TEST(UtilizationMonitorTest, RampUpStepLimitsLoopsWokenPerTick) {
  ScalingConfig c = base_config();
  c.max_ramp_up_step = 2;
  FakePool pool(8, c, 3);
  for (int i = 0; i < 2; ++i) pool.window({0.9, 0.9, 0.9});
  EXPECT_THAT(pool.window({0.9, 0.9, 0.9}).wake, ElementsAre(3, 4));
}

TEST(UtilizationMonitorTest, MaxLoopsBelowExecutorCountBoundsScaleUp) {
  ScalingConfig c = base_config();
  c.max_loops = 2;
  FakePool pool(4, c, 1);
  for (int i = 0; i < 3; ++i) pool.window_all(0.95);
  EXPECT_EQ(pool.running(), 2u);
  ScaleDecision d;
  for (int i = 0; i < 6; ++i) d = pool.window_all(0.95);
  EXPECT_EQ(pool.running(), 2u);
  EXPECT_EQ(d.held, HoldReason::kAtMax);
  EXPECT_EQ(pool.fake(2).resume_calls + pool.fake(3).resume_calls, 0);
}

TEST(UtilizationMonitorTest, MaxLoopsZeroMeansEveryExecutor) {
  ScalingConfig c = base_config();
  c.max_loops = 0;
  FakePool pool(3, c, 1);
  for (int i = 0; i < 20; ++i) pool.window_all(0.95);
  EXPECT_EQ(pool.running(), 3u);
  EXPECT_EQ(pool.chooser().active_count(), 3u);
}

TEST(UtilizationMonitorTest, ExecutorsRunningBeyondMaxLeaveAtTheFirstDecision) {
  ScalingConfig c = base_config();
  c.max_loops = 2;
  FakePool pool(4, c, 4);  // all four running at the baseline
  // Until then the chooser hands out only the first two.
  EXPECT_THAT(pool.chooser().active(), ElementsAre(0, 1));
  ScaleDecision d = pool.window_all(0.5);
  EXPECT_EQ(d.rule, ScaleRule::kAboveMax);
  EXPECT_THAT(d.suspend, UnorderedElementsAre(2, 3));
  EXPECT_EQ(pool.running(), 2u);
}

TEST(UtilizationMonitorTest, ScalesDownOnlyAfterPatienceIdleWindows) {
  FakePool pool(4, base_config(), 2);
  EXPECT_TRUE(pool.window({0.5, 0.1}).suspend.empty());
  EXPECT_TRUE(pool.window({0.5, 0.1}).suspend.empty());
  ScaleDecision d = pool.window({0.5, 0.1});
  EXPECT_EQ(d.rule, ScaleRule::kScaleDown);
  EXPECT_THAT(d.suspend, ElementsAre(1));
  EXPECT_TRUE(pool.fake(1).suspended);
  EXPECT_THAT(pool.chooser().active(), ElementsAre(0));
}

TEST(UtilizationMonitorTest, RampDownStepAndMinLoopsBoundScaleDown) {
  ScalingConfig c = base_config();
  c.min_loops = 2;
  c.max_ramp_down_step = 1;
  FakePool pool(4, c, 4);
  for (int i = 0; i < 2; ++i) pool.window_all(0.0);
  EXPECT_EQ(pool.window_all(0.0).suspend.size(), 1u);
  EXPECT_EQ(pool.running(), 3u);
  EXPECT_EQ(pool.window_all(0.0).suspend.size(), 1u);
  EXPECT_EQ(pool.running(), 2u);
  ScaleDecision d = pool.window_all(0.0);
  EXPECT_TRUE(d.suspend.empty());
  EXPECT_EQ(d.held, HoldReason::kAtMin);
  EXPECT_EQ(pool.running(), 2u);
}

TEST(UtilizationMonitorTest, RampDownStepAllowsSeveralPerTick) {
  ScalingConfig c = base_config();
  c.max_ramp_down_step = 3;
  FakePool pool(4, c, 4);
  for (int i = 0; i < 2; ++i) pool.window_all(0.0);
  EXPECT_THAT(pool.window_all(0.0).suspend, ElementsAre(3, 2, 1));
}

TEST(UtilizationMonitorTest, CooldownHoldsScaleDownAfterAnAction) {
  ScalingConfig c = base_config();
  c.scale_down_cooldown_cycles = 2;
  c.max_ramp_down_step = 1;
  FakePool pool(4, c, 4);
  for (int i = 0; i < 2; ++i) pool.window_all(0.0);
  EXPECT_EQ(pool.window_all(0.0).suspend.size(), 1u);  // tick T
  ScaleDecision d = pool.window_all(0.0);              // T+1
  EXPECT_TRUE(d.suspend.empty());
  EXPECT_EQ(d.held, HoldReason::kCooldown);
  EXPECT_TRUE(pool.window_all(0.0).suspend.empty());   // T+2
  EXPECT_EQ(pool.window_all(0.0).suspend.size(), 1u);  // T+3
}

TEST(UtilizationMonitorTest, CooldownNeverHoldsScaleUp) {
  ScalingConfig c = base_config();
  c.scale_down_cooldown_cycles = 10;
  c.patience_cycles = 1;
  FakePool pool(4, c, 1);
  EXPECT_THAT(pool.window({0.9}).wake, ElementsAre(1));
  EXPECT_THAT(pool.window({0.9, 0.9}).wake, ElementsAre(2, 3));
}

TEST(UtilizationMonitorTest, JustWokenLoopHasOneWindowOfGrace) {
  ScalingConfig c = base_config();
  c.patience_cycles = 1;
  FakePool pool(4, c, 1);
  ASSERT_THAT(pool.window({0.9}).wake, ElementsAre(1));
  // Loop 1 got no work in its first window: not idle yet.
  ScaleDecision d = pool.window({0.5, 0.0});
  EXPECT_TRUE(d.suspend.empty());
  EXPECT_EQ(pool.monitor().stats().statuses[1], ExecutorStatus::kActive);
  // A second idle window counts.
  EXPECT_THAT(pool.window({0.5, 0.0}).suspend, ElementsAre(1));
}

TEST(UtilizationMonitorTest, UpAndDownNeverInTheSameTick) {
  ScalingConfig c = base_config();
  FakePool pool(4, c, 2);
  for (int i = 0; i < 2; ++i) pool.window({0.9, 0.1});
  ScaleDecision d = pool.window({0.9, 0.1});  // both ready
  EXPECT_EQ(d.rule, ScaleRule::kScaleUp);
  EXPECT_THAT(d.wake, ElementsAre(2));
  EXPECT_TRUE(d.suspend.empty());
  EXPECT_EQ(d.held, HoldReason::kScaleUpWon);
  // The scale-down waited; loop 1 is still a candidate at the next tick.
  d = pool.window({0.5, 0.1, 0.5});
  EXPECT_EQ(d.rule, ScaleRule::kScaleDown);
  EXPECT_THAT(d.suspend, ElementsAre(1));
}

TEST(UtilizationMonitorTest, MostRecentlyWokenLoopLeavesFirst) {
  ScalingConfig c = base_config();
  c.patience_cycles = 1;
  FakePool pool(3, c, 3);
  pool.fake(1).suspended = true;  // loop 1 leaves (suspended by someone)
  pool.window({0.5, 0.0, 0.5});
  // Loop 0 is busy: loop 1, the only suspended one, is woken.
  ASSERT_THAT(pool.window({0.9, 0.0, 0.5}).wake, ElementsAre(1));
  pool.window({0.5, 0.5, 0.5});
  // All three idle: loop 1 joined last, so it leaves first, although loop 2
  // has the higher index.
  EXPECT_THAT(pool.window({0.0, 0.0, 0.0}).suspend, ElementsAre(1));
  // Among loops that were there from the start, the highest index goes.
  EXPECT_THAT(pool.window({0.0, 0.0, 0.0}).suspend, ElementsAre(2));
}

TEST(UtilizationMonitorTest, IdleLoopWithRegistrationsDrainsThenSuspends) {
  FakePool pool(2, base_config(), 2);
  pool.fake(1).regs = 3;
  pool.fake(1).refuse_while_registered = true;
  for (int i = 0; i < 2; ++i) pool.window({0.5, 0.0});
  ScaleDecision d = pool.window({0.5, 0.0});
  EXPECT_EQ(d.rule, ScaleRule::kScaleDown);
  EXPECT_THAT(d.drain, ElementsAre(1));
  EXPECT_THAT(d.refused, ElementsAre(1));
  // Draining: out of rotation, still running, serving its connections.
  EXPECT_THAT(pool.chooser().active(), ElementsAre(0));
  EXPECT_FALSE(pool.fake(1).suspended);
  EXPECT_EQ(pool.monitor().statuses()[1], ExecutorStatus::kDraining);
  pool.window({0.5, 0.1});
  EXPECT_FALSE(pool.fake(1).suspended);  // still has connections
  EXPECT_THAT(pool.chooser().active(), ElementsAre(0));
  pool.fake(1).regs = 0;                 // the last one closes
  pool.window({0.5, 0.0});
  EXPECT_TRUE(pool.fake(1).suspended);   // within one tick
  EXPECT_EQ(pool.monitor().statuses()[1], ExecutorStatus::kSuspended);
}

// An executor that reports what the chooser's rotation was when it was asked
// to suspend or to let connections go.
struct RotationWitness : testing::FakeExecutor {
  std::function<std::vector<std::size_t>()> rotation;
  std::vector<std::size_t> rotation_at_suspend;
  std::vector<std::size_t> rotation_at_moves;
  bool try_suspend() {
    rotation_at_suspend = rotation();
    return FakeExecutor::try_suspend();
  }
  void request_moves(std::size_t n) {
    if (n > 0) rotation_at_moves = rotation();
  }
};
static_assert(RebalancingExecutor<RotationWitness>);

// A connection that moves while a loop is asked to drain must not choose
// that loop: the rotation without it is out before the loop is asked.
TEST(UtilizationMonitorTest, TheRotationLeavesBeforeTheLoopIsAskedToDrain) {
  ScalingConfig c = base_config();
  c.rebalance_connections = true;
  RotationWitness a, b, d;
  d.regs = 3;
  d.refuse_while_registered = true;
  AutoScalingChooser<RotationWitness> chooser({&a, &b, &d}, c);
  for (RotationWitness* e : {&a, &b, &d}) {
    e->rotation = [&chooser] { return chooser.active(); };
  }
  UtilizationMonitor<RotationWitness> monitor(chooser, c);
  Clock::time_point now{};
  monitor.tick(now);
  ScaleDecision decision;
  for (int i = 0; i < 3 && decision.drain.empty(); ++i) {
    a.busy += c.window / 2;
    b.busy += c.window / 2;
    now += c.window;
    decision = monitor.tick(now);
  }
  ASSERT_THAT(decision.drain, ElementsAre(2));
  EXPECT_THAT(d.rotation_at_suspend, ElementsAre(0, 1));
  EXPECT_THAT(d.rotation_at_moves, ElementsAre(0, 1));
}

TEST(UtilizationMonitorTest, RegistrationsVetoScaleDownWhenDrainIsOff) {
  ScalingConfig c = base_config();
  c.drain_connected_loops = false;
  FakePool pool(3, c, 3);
  pool.fake(2).regs = 1;
  for (int i = 0; i < 2; ++i) pool.window({0.5, 0.0, 0.0});
  ScaleDecision d = pool.window({0.5, 0.0, 0.0});
  // Loop 2 would go first (highest index) but holds a connection: loop 1
  // goes instead, and loop 2 is never asked.
  EXPECT_THAT(d.kept, ElementsAre(2));
  EXPECT_THAT(d.suspend, ElementsAre(1));
  EXPECT_EQ(pool.fake(2).suspend_calls, 0);
  for (int i = 0; i < 5; ++i) d = pool.window({0.5, 0.0, 0.0});
  EXPECT_EQ(d.held, HoldReason::kVetoed);
  EXPECT_EQ(pool.fake(2).suspend_calls, 0);
  EXPECT_FALSE(pool.fake(2).suspended);
}

TEST(UtilizationMonitorTest, RefusedSuspensionIsAskedAgainEveryTick) {
  FakePool pool(2, base_config(), 2);
  pool.fake(1).refuse = true;
  for (int i = 0; i < 3; ++i) pool.window({0.5, 0.0});
  EXPECT_EQ(pool.fake(1).suspend_calls, 1);
  EXPECT_THAT(pool.chooser().active(), ElementsAre(0));
  pool.window({0.5, 0.0});
  pool.window({0.5, 0.0});
  EXPECT_EQ(pool.fake(1).suspend_calls, 3);
  pool.fake(1).refuse = false;
  pool.window({0.5, 0.0});
  EXPECT_TRUE(pool.fake(1).suspended);
  EXPECT_EQ(pool.monitor().stats().refusals, 3u);
}

TEST(UtilizationMonitorTest, ExternallyWokenExecutorRejoinsTheActiveSet) {
  // Netty #15650: the active set is derived from the executors every tick.
  FakePool pool(3, base_config(), 1);
  pool.window({0.5});
  EXPECT_THAT(pool.chooser().active(), ElementsAre(0));
  pool.fake(2).resume();  // e.g. a direct post to it
  pool.window({0.5});
  EXPECT_THAT(pool.chooser().active(), ElementsAre(0, 2));
  EXPECT_EQ(pool.monitor().statuses()[2], ExecutorStatus::kActive);
}

TEST(UtilizationMonitorTest, ExternallySuspendedExecutorLeavesTheActiveSet) {
  ScalingConfig c = base_config();
  c.min_loops = 0;
  FakePool pool(3, c, 3);
  pool.window_all(0.5);
  pool.fake(1).suspended = true;
  pool.window_all(0.5);
  EXPECT_THAT(pool.chooser().active(), ElementsAre(0, 2));
}

TEST(UtilizationMonitorTest, BelowMinWakesAtOnce) {
  ScalingConfig c = base_config();
  c.min_loops = 3;
  FakePool pool(4, c, 1);
  ScaleDecision d = pool.window_all(0.0);
  EXPECT_EQ(d.rule, ScaleRule::kBelowMin);
  EXPECT_THAT(d.wake, ElementsAre(1, 2));
  EXPECT_EQ(pool.running(), 3u);
}

TEST(UtilizationMonitorTest, MinLoopsZeroSuspendsEverythingAndNextWakesOne) {
  ScalingConfig c = base_config();
  c.min_loops = 0;
  c.patience_cycles = 1;
  c.max_ramp_down_step = 4;
  FakePool pool(2, c, 2);
  pool.window_all(0.0);
  EXPECT_EQ(pool.running(), 0u);
  EXPECT_EQ(pool.chooser().active_count(), 0u);
  testing::FakeExecutor& e = pool.chooser().next();
  EXPECT_EQ(&e, &pool.fake(0));
  EXPECT_FALSE(e.suspended);
  EXPECT_EQ(pool.chooser().active_count(), 1u);
  EXPECT_EQ(&pool.chooser().next(), &e);  // no second wake
  EXPECT_EQ(pool.running(), 1u);
  // The monitor sees it as active at the next tick, with grace.
  ScaleDecision d = pool.window_all(0.0);
  EXPECT_TRUE(d.suspend.empty());
  EXPECT_THAT(pool.chooser().active(), ElementsAre(0));
}

TEST(UtilizationMonitorTest, AverageSignalSizesTheStepByDemand) {
  ScalingConfig c = base_config();
  c.signal = ScaleSignal::kAverage;
  FakePool pool(8, c, 4);
  for (int i = 0; i < 2; ++i) pool.window({0.8, 0.8, 0.8, 0.8});
  // Σu = 3.2 -> ceil(3.2 / 0.75) = 5 loops: one more (per_loop would add 4).
  ScaleDecision d = pool.window({0.8, 0.8, 0.8, 0.8});
  EXPECT_EQ(d.rule, ScaleRule::kScaleUp);
  EXPECT_THAT(d.wake, ElementsAre(4));
  EXPECT_THAT(d.mean_utilization, DoubleNear(0.8, 1e-9));
}

TEST(UtilizationMonitorTest, AverageSignalIgnoresOneHotLoopWhenTheMeanIsLow) {
  ScalingConfig c = base_config();
  c.signal = ScaleSignal::kAverage;
  FakePool pool(8, c, 4);
  for (int i = 0; i < 6; ++i) {
    EXPECT_TRUE(pool.window({1.0, 0.3, 0.3, 0.3}).wake.empty());
  }
}

TEST(UtilizationMonitorTest, PerLoopSignalReactsToOneHotLoop) {
  FakePool pool(8, base_config(), 4);
  for (int i = 0; i < 2; ++i) pool.window({1.0, 0.3, 0.3, 0.3});
  EXPECT_THAT(pool.window({1.0, 0.3, 0.3, 0.3}).wake, ElementsAre(4));
}

TEST(UtilizationMonitorTest, AverageSignalStillScalesDownIdleLoopsOneByOne) {
  ScalingConfig c = base_config();
  c.signal = ScaleSignal::kAverage;
  FakePool pool(4, c, 3);
  for (int i = 0; i < 2; ++i) pool.window({0.5, 0.5, 0.0});
  EXPECT_THAT(pool.window({0.5, 0.5, 0.0}).suspend, ElementsAre(2));
}

TEST(UtilizationMonitorTest, ClockGoingBackwardsSkipsTheTick) {
  FakePool pool(4, base_config(), 1);
  pool.window({0.9});
  pool.window({0.9});
  const Clock::time_point t = pool.now();
  pool.fake(0).busy += std::chrono::milliseconds(50);
  ScaleDecision d = pool.monitor().tick(t - std::chrono::seconds(3));
  EXPECT_EQ(d.rule, ScaleRule::kClockSkipped);
  d = pool.monitor().tick(t);  // same instant: skipped too
  EXPECT_EQ(d.rule, ScaleRule::kClockSkipped);
  EXPECT_EQ(pool.monitor().stats().skipped_ticks, 2u);
  EXPECT_EQ(pool.monitor().stats().ticks, 2u);
  // The skipped ticks measured nothing: the busy time added meanwhile falls
  // into the next window, which is the third busy one.
  pool.fake(0).busy += std::chrono::milliseconds(40);
  pool.now() += std::chrono::milliseconds(100);
  d = pool.monitor().tick(pool.now());
  EXPECT_THAT(pool.monitor().utilizations()[0], DoubleNear(0.9, 1e-9));
  EXPECT_THAT(d.wake, ElementsAre(1));
}

TEST(UtilizationMonitorTest, UpdateConfigAppliesAtTheNextTick) {
  FakePool pool(4, base_config(), 1);
  pool.window({0.6});
  pool.window({0.6});
  ScalingConfig lower = base_config();
  lower.scale_up_threshold = 0.5;
  lower.patience_cycles = 1;
  ASSERT_TRUE(pool.monitor().update_config(lower).ok());
  EXPECT_EQ(pool.monitor().config().scale_up_threshold, 0.5);
  // 0.6 is now busy, and one window is patience enough.
  EXPECT_THAT(pool.window({0.6}).wake, ElementsAre(1));
}

TEST(UtilizationMonitorTest, UpdateConfigCanLowerMaxLoops) {
  FakePool pool(4, base_config(), 4);
  pool.window_all(0.5);
  ScalingConfig c = base_config();
  c.max_loops = 2;
  ASSERT_TRUE(pool.monitor().update_config(c).ok());
  ScaleDecision d = pool.window_all(0.5);
  EXPECT_EQ(d.rule, ScaleRule::kAboveMax);
  EXPECT_EQ(pool.running(), 2u);
}

TEST(UtilizationMonitorTest, UpdateConfigRejectsInvalidConfig) {
  FakePool pool(2, base_config(), 1);
  ScalingConfig bad = base_config();
  bad.patience_cycles = 0;
  absl::Status s = pool.monitor().update_config(bad);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("patience_cycles"));
  EXPECT_EQ(pool.monitor().config().patience_cycles, 3u);
}

TEST(UtilizationMonitorTest, ListenersHearEveryActionWithItsReason) {
  FakePool pool(4, base_config(), 1);
  std::vector<ScaleEvent> events;
  pool.monitor().add_listener(
      [&events](const ScaleEvent& e) { events.push_back(e); });
  for (int i = 0; i < 3; ++i) pool.window({0.9});
  // One window of grace for the woken loop, then three idle ones.
  for (int i = 0; i < 4; ++i) pool.window({0.5, 0.0});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].decision.rule, ScaleRule::kScaleUp);
  EXPECT_EQ(events[0].tick, 3u);
  EXPECT_EQ(events[0].at, pool.now() - 4 * base_config().window);
  EXPECT_THAT(events[0].decision.reason, HasSubstr("busy for 3 windows"));
  EXPECT_EQ(events[1].decision.rule, ScaleRule::kScaleDown);
  EXPECT_THAT(events[1].decision.reason, HasSubstr("idle"));
  MonitorStats s = pool.monitor().stats();
  EXPECT_EQ(s.scale_ups, 1u);
  EXPECT_EQ(s.scale_downs, 1u);
  EXPECT_EQ(s.last_decision.rule, ScaleRule::kScaleDown);
}

TEST(UtilizationMonitorTest, SinksHearEveryMeasuredTickActingOrNot) {
  FakePool pool(4, base_config(), 1);
  std::vector<ScaleEvent> events;
  std::vector<std::uint64_t> ticks_reported;
  pool.monitor().add_sink([&](const TickReport& r) {
    events.push_back(r.event);
    ticks_reported.push_back(r.stats.ticks);
  });
  for (int i = 0; i < 3; ++i) pool.window({0.9});
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].decision.rule, ScaleRule::kNone);
  EXPECT_EQ(events[2].decision.rule, ScaleRule::kScaleUp);
  EXPECT_EQ(events[2].tick, 3u);
  // The figures come with the report, as the tick left them.
  EXPECT_THAT(ticks_reported, ElementsAre(1u, 2u, 3u));
  pool.monitor().tick(pool.now());  // no time passed: skipped, not sunk
  EXPECT_EQ(events.size(), 3u);
}

TEST(UtilizationMonitorTest, InvalidConfigThrowsNamingTheField) {
  testing::FakeExecutor e;
  ScalingConfig c = base_config();
  AutoScalingChooser<testing::FakeExecutor> chooser({&e}, c);
  c.scale_up_threshold = 2.0;
  try {
    UtilizationMonitor<testing::FakeExecutor> monitor(chooser, c);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& ex) {
    EXPECT_THAT(ex.what(), HasSubstr("scale_up_threshold"));
  }
}

TEST(UtilizationMonitorTest, ThreadTicksEveryWindow) {
  ScalingConfig c = base_config();
  c.window = std::chrono::milliseconds(5);
  testing::FakeExecutor e;
  AutoScalingChooser<testing::FakeExecutor> chooser({&e}, c);
  UtilizationMonitor<testing::FakeExecutor> monitor(chooser, c);
  monitor.start();
  monitor.start();  // idempotent
  testing::eventually([&] { return monitor.stats().ticks >= 3; });
  monitor.stop();
  const std::uint64_t ticks = monitor.stats().ticks;
  EXPECT_GE(ticks, 3u);
  monitor.stop();  // idempotent
  EXPECT_EQ(monitor.stats().ticks, ticks);  // stopped means stopped
}

TEST(UtilizationMonitorTest, AListenerThatThrowsDoesNotStopTheMonitor) {
  FakePool pool(4, base_config(), 1);
  int heard_after = 0;
  pool.monitor().add_listener([](const ScaleEvent&) { throw std::runtime_error("boom"); });
  pool.monitor().add_listener([&](const ScaleEvent&) { ++heard_after; });
  pool.monitor().add_sink([](const TickReport&) { throw 42; });
  for (int i = 0; i < 3; ++i) pool.window({0.9});  // acts at the third
  EXPECT_EQ(heard_after, 1);  // the listener after the throwing one still hears
  EXPECT_EQ(pool.running(), 2u);
  for (int i = 0; i < 3; ++i) pool.window({0.9, 0.9});
  const MonitorStats s = pool.monitor().stats();
  EXPECT_EQ(s.ticks, 6u);
  EXPECT_EQ(s.callback_failures, 6u + 2u);  // the sink every tick, the listener twice
}

TEST(UtilizationMonitorTest, ATickLongerThanAWindowDelaysTheNextWithoutABurst) {
  ScalingConfig c = base_config();
  c.window = std::chrono::milliseconds(5);
  testing::FakeExecutor e;
  AutoScalingChooser<testing::FakeExecutor> chooser({&e}, c);
  UtilizationMonitor<testing::FakeExecutor> monitor(chooser, c);
  std::atomic<int> sunk{0};
  monitor.add_sink([&](const TickReport&) {
    // The second tick stalls for ten windows.
    if (sunk.fetch_add(1) == 1) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  });
  monitor.start();
  testing::eventually([&] { return monitor.stats().ticks >= 6; });
  monitor.stop();
  const MonitorStats s = monitor.stats();
  EXPECT_GE(s.ticks, 6u);  // it went on after the stall
  // The missed windows were not fired back to back at one instant (a burst
  // would have measured zero-length windows: skipped ticks).
  EXPECT_EQ(s.skipped_ticks, 0u);
}

}  // namespace
}  // namespace loopscale
