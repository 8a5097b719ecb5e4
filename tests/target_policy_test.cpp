// ScaleSignal::kTarget window by window: the demand estimate, saturation,
// the lag term, the stabilization window on the way down, cooldown, bounds
// and which loops leave. The traces it is tuned on are in
// scaling_sim_test.cpp.

#include <chrono>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loopscale/scaling_policy.hpp"
#include "support/policy_observations.hpp"

namespace loopscale {
namespace {

using namespace std::chrono_literals;
using ::loopscale::testing::obs;
using ::loopscale::testing::started;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

ScalingConfig target_config() {
  ScalingConfig c;
  c.signal = ScaleSignal::kTarget;
  c.min_loops = 1;
  c.max_loops = 8;
  c.window = 500ms;
  c.patience_cycles = 3;
  c.target_utilization = 0.7;
  return c;
}

TEST(TargetPolicyTest, DefaultSignalIsTarget) {
  EXPECT_EQ(ScalingConfig{}.signal, ScaleSignal::kTarget);
}

TEST(TargetPolicyTest, SaturatedLoopGrowsThePoolInTheFirstWindow) {
  ScalingPolicy p = started(target_config(), 1);
  ScaleDecision d = p.decide(obs({1.0}, 1));
  EXPECT_EQ(d.rule, ScaleRule::kTargetUp);
  // A saturated loop counts for kSaturationGain loops: ceil(3 / 0.7) = 5.
  EXPECT_DOUBLE_EQ(d.demand, kSaturationGain);
  EXPECT_EQ(d.target_level, 5u);
  EXPECT_THAT(d.wake, ElementsAre(1, 2, 3, 4));
  EXPECT_EQ(d.active_after, 5u);
  EXPECT_THAT(d.reason, HasSubstr("saturated loops 0"));
}

TEST(TargetPolicyTest, LagAboveATenthOfTheWindowIsSaturation) {
  ScalingPolicy p = started(target_config(), 2);
  auto o = obs({0.6, 0.6}, 2);
  o[1].lag = 60ms;  // the window is 500 ms
  ScaleDecision d = p.decide(o);
  EXPECT_EQ(d.rule, ScaleRule::kTargetUp);
  EXPECT_THAT(d.voters, ElementsAre(1));
  // 0.6 + 3 * 0.95 = 3.45 -> ceil(3.45 / 0.7) = 5
  EXPECT_EQ(d.target_level, 5u);

  ScalingPolicy q = started(target_config(), 2);
  o[1].lag = 40ms;
  EXPECT_EQ(q.decide(o).rule, ScaleRule::kNone);
}

TEST(TargetPolicyTest, LagCountsOnlyUpToTheLoopsBusyTime) {
  // An idle loop whose probe waited 200 ms for a CPU (hogs, an exhausted
  // container quota): 1% of a 500 ms window is 5 ms of handlers, so at most
  // 5 ms of the wait was behind them. Not saturated; the pool stays.
  ScalingPolicy p = started(target_config(), 2);
  auto o = obs({0.01, 0.01}, 2);
  o[0].lag = 200ms;
  ScaleDecision d = p.decide(o);
  EXPECT_EQ(d.rule, ScaleRule::kNone) << d.reason;
  EXPECT_THAT(d.voters, IsEmpty());
  // At 12% busy (60 ms of handlers) the same wait counts for 60 ms, above
  // the 50 ms floor: the loop is saturated and the pool grows at once.
  ScalingPolicy q = started(target_config(), 2);
  o = obs({0.12, 0.01}, 2);
  o[0].lag = 200ms;
  d = q.decide(o);
  EXPECT_EQ(d.rule, ScaleRule::kTargetUp) << d.reason;
  EXPECT_THAT(d.voters, ElementsAre(0));
  // 40 ms of handlers: below the floor again.
  ScalingPolicy r = started(target_config(), 2);
  o = obs({0.08, 0.01}, 2);
  o[0].lag = 200ms;
  EXPECT_EQ(r.decide(o).rule, ScaleRule::kNone);
}

TEST(TargetPolicyTest, LongerSaturationAddsTheQueueTheLagShows) {
  ScalingPolicy p = started(target_config(), 8);
  auto o = obs({1, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7}, 8);
  p.decide(o);  // first saturated window (at max: held)
  o[0].lag = 1500ms;
  ScaleDecision d = p.decide(o);
  // 1 + 1.5 s / (3 windows * 0.5 s) = 2, plus 7 * 0.7: 10 loops wanted.
  EXPECT_NEAR(d.demand, 2.0 + 4.9, 1e-9);
  EXPECT_EQ(d.held, HoldReason::kAtMax);
  EXPECT_THAT(d.reason, HasSubstr("needs 10"));
}

TEST(TargetPolicyTest, HighMeanWithoutSaturationWaitsForPatience) {
  ScalingPolicy p = started(target_config(), 2);
  for (int w = 1; w < 3; ++w) {
    ScaleDecision d = p.decide(obs({0.85, 0.85}, 2));
    EXPECT_EQ(d.rule, ScaleRule::kNone) << "window " << w;
  }
  ScaleDecision d = p.decide(obs({0.85, 0.85}, 2));
  EXPECT_EQ(d.rule, ScaleRule::kTargetUp);
  EXPECT_EQ(d.target_level, 3u);  // ceil(1.7 / 0.7)
  EXPECT_THAT(d.wake, ElementsAre(2));
}

TEST(TargetPolicyTest, ShrinksOnlyAfterTheLookbackAndToItsHighestLevel) {
  ScalingPolicy p = started(target_config(), 4);
  // Demand 1.3 on 4 loops needs 2; the lookback is 2 * patience = 6.
  for (int w = 1; w < 6; ++w) {
    ScaleDecision d = p.decide(obs({0.325, 0.325, 0.325, 0.325}, 4));
    EXPECT_FALSE(d.acted()) << "window " << w;
  }
  ScaleDecision d = p.decide(obs({0.325, 0.325, 0.325, 0.325}, 4));
  EXPECT_EQ(d.rule, ScaleRule::kTargetDown);
  EXPECT_EQ(d.suspend.size(), 1u);  // max_ramp_down_step
  EXPECT_EQ(d.active_after, 3u);
}

TEST(TargetPolicyTest, ALevelInTheLookbackHoldsTheScaleDown) {
  ScalingPolicy p = started(target_config(), 3);
  // Demand swings between 1.3 (needs 2) and 1.6 (needs 3): the pool stays.
  for (int w = 0; w < 40; ++w) {
    const double u = (w % 6 == 0) ? 1.6 / 3 : 1.3 / 3;
    ScaleDecision d = p.decide(obs({u, u, u}, 3));
    EXPECT_FALSE(d.acted()) << "window " << w << ": " << d.reason;
  }
}

TEST(TargetPolicyTest, CooldownHoldsTheScaleDown) {
  ScalingConfig c = target_config();
  c.scale_down_cooldown_cycles = 10;
  ScalingPolicy p = started(c, 1);
  ASSERT_EQ(p.decide(obs({1.0}, 1)).active_after, 5u);
  for (int w = 1; w <= 10; ++w) {
    ScaleDecision d = p.decide(obs({0.1, 0.1, 0.1, 0.1, 0.1}, 5));
    EXPECT_FALSE(d.acted()) << "window " << w;
    if (w > 6) {
      EXPECT_EQ(d.held, HoldReason::kCooldown) << "window " << w;
    }
  }
  EXPECT_EQ(p.decide(obs({0.1, 0.1, 0.1, 0.1, 0.1}, 5)).rule,
            ScaleRule::kTargetDown);
}

TEST(TargetPolicyTest, IdlestLoopsLeaveFirst) {
  ScalingConfig c = target_config();
  c.max_ramp_down_step = 2;
  ScalingPolicy p = started(c, 4);
  ScaleDecision d;
  for (int w = 0; w < 6; ++w) d = p.decide(obs({0.1, 0.5, 0.05, 0.3}, 4));
  EXPECT_EQ(d.rule, ScaleRule::kTargetDown);
  EXPECT_THAT(d.suspend, ElementsAre(2, 0));
}

TEST(TargetPolicyTest, LoopsWithRegistrationsAreDrained) {
  ScalingPolicy p = started(target_config(), 2);
  ScaleDecision d;
  for (int w = 0; w < 6; ++w) {
    auto o = obs({0.1, 0.1}, 2);
    o[0].registrations = o[1].registrations = 3;
    d = p.decide(o);
  }
  EXPECT_EQ(d.rule, ScaleRule::kTargetDown);
  EXPECT_THAT(d.suspend, IsEmpty());
  EXPECT_EQ(d.drain.size(), 1u);
}

TEST(TargetPolicyTest, NeverBelowMinOrAboveMax) {
  ScalingConfig c = target_config();
  c.min_loops = 2;
  c.max_loops = 3;
  ScalingPolicy p = started(c, 2);
  ScaleDecision d = p.decide(obs({1.0, 1.0}, 2));
  EXPECT_EQ(d.active_after, 3u);
  for (int w = 0; w < 30; ++w) {
    d = p.decide(obs({0, 0, 0}, d.active_after));
    EXPECT_GE(d.active_after, 2u);
  }
  EXPECT_EQ(d.active_after, 2u);
}

TEST(TargetPolicyTest, RampUpLimitHolds) {
  ScalingConfig c = target_config();
  c.max_ramp_up_step = 2;
  ScalingPolicy p = started(c, 1);
  EXPECT_EQ(p.decide(obs({1.0}, 1)).active_after, 3u);
}

}  // namespace
}  // namespace loopscale
