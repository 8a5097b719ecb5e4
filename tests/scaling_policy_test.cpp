// The policy on its own: observations in, decisions out. The rules are
// tested window by window through the monitor in utilization_monitor_test;
// these cover what only the pure component shows.

#include "loopscale/scaling_policy.hpp"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loopscale {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<LoopObservation> obs(std::vector<double> u, std::size_t active) {
  std::vector<LoopObservation> out;
  for (std::size_t i = 0; i < u.size(); ++i) {
    out.push_back({i < active ? ExecutorStatus::kActive
                              : ExecutorStatus::kSuspended,
                   u[i], 0});
  }
  return out;
}

TEST(ScalingPolicyTest, SameObservationsGiveSameDecisions) {
  ScalingConfig c;
  c.signal = ScaleSignal::kPerLoop;  // the rules under test
  c.patience_cycles = 2;
  ScalingPolicy a(c, 4), b(c, 4);
  a.baseline(obs({0, 0, 0, 0}, 2));
  b.baseline(obs({0, 0, 0, 0}, 2));
  const std::vector<std::vector<double>> trace = {
      {0.9, 0.1}, {0.9, 0.1}, {0.8, 0.2, 0.3}, {0.1, 0.1, 0.1}, {0.0, 0.0}};
  std::size_t active = 2;
  for (const auto& u : trace) {
    std::vector<double> full = u;
    full.resize(4, 0.0);
    ScaleDecision da = a.decide(obs(full, active));
    ScaleDecision db = b.decide(obs(full, active));
    EXPECT_EQ(da.rule, db.rule);
    EXPECT_EQ(da.wake, db.wake);
    EXPECT_EQ(da.suspend, db.suspend);
    EXPECT_EQ(da.reason, db.reason);
    active = da.active_after;
  }
}

TEST(ScalingPolicyTest, BoundsFollowConfigAndExecutorCount) {
  ScalingConfig c;
  c.signal = ScaleSignal::kPerLoop;  // the rules under test
  c.min_loops = 6;
  c.max_loops = 10;
  ScalingPolicy p(c, 4);
  EXPECT_EQ(p.max_active(), 4u);
  EXPECT_EQ(p.min_active(), 4u);
  c.min_loops = 1;
  c.max_loops = 0;
  p.set_config(c);
  EXPECT_EQ(p.max_active(), 4u);
  EXPECT_EQ(p.min_active(), 1u);
}

TEST(ScalingPolicyTest, BaselineLoopsDoNotGetGrace) {
  ScalingConfig c;
  c.signal = ScaleSignal::kPerLoop;  // the rules under test
  c.patience_cycles = 1;
  c.scale_down_cooldown_cycles = 0;
  ScalingPolicy p(c, 2);
  p.baseline(obs({0, 0}, 2));
  // Loop 1 was active at the baseline: its first idle window counts.
  EXPECT_THAT(p.decide(obs({0.5, 0.0}, 2)).suspend, ElementsAre(1));
}

TEST(ScalingPolicyTest, AverageStepIsNotInflatedByRounding) {
  ScalingConfig c;
  c.signal = ScaleSignal::kPerLoop;  // the rules under test
  c.signal = ScaleSignal::kAverage;
  c.patience_cycles = 1;
  c.scale_up_threshold = 0.3;
  c.scale_down_threshold = 0.1;
  ScalingPolicy p(c, 12);
  p.baseline(obs(std::vector<double>(12, 0.0), 3));
  // Σu / threshold = 2.7 / 0.3, which is 9.000000000000002 in doubles: nine
  // loops are needed, so six are woken, not seven.
  std::vector<double> u(12, 0.0);
  u[0] = u[1] = u[2] = 0.9;
  EXPECT_EQ(p.decide(obs(u, 3)).wake.size(), 6u);
}

TEST(ScalingPolicyTest, ShorterCooldownTakesEffectAtOnce) {
  ScalingConfig c;
  c.signal = ScaleSignal::kPerLoop;  // the rules under test
  c.patience_cycles = 1;
  c.scale_down_cooldown_cycles = 10;
  c.max_ramp_down_step = 1;
  ScalingPolicy p(c, 4);
  p.baseline(obs({0, 0, 0, 0}, 4));
  EXPECT_EQ(p.decide(obs({0, 0, 0, 0}, 4)).suspend.size(), 1u);
  EXPECT_EQ(p.decide(obs({0, 0, 0, 0}, 3)).held, HoldReason::kCooldown);
  c.scale_down_cooldown_cycles = 0;
  p.set_config(c);
  EXPECT_EQ(p.decide(obs({0, 0, 0, 0}, 3)).suspend.size(), 1u);
}

TEST(ScalingPolicyTest, DrainingLoopsAreWokenBeforeSuspendedOnes) {
  ScalingConfig c;
  c.signal = ScaleSignal::kPerLoop;  // the rules under test
  c.patience_cycles = 1;
  ScalingPolicy p(c, 4);
  std::vector<LoopObservation> o = obs({0.95, 0, 0, 0}, 1);
  o[3].status = ExecutorStatus::kDraining;
  p.baseline(o);
  ScaleDecision d = p.decide(o);
  EXPECT_THAT(d.wake, ElementsAre(3));
  EXPECT_THAT(d.reason, HasSubstr("1 -> 2 active"));
}

TEST(ScalingPolicyTest, NamesAreStable) {
  EXPECT_EQ(to_string(ScaleRule::kScaleUp), "scale_up");
  EXPECT_EQ(to_string(ScaleRule::kAboveMax), "above_max");
  EXPECT_EQ(to_string(HoldReason::kCooldown), "cooldown");
  EXPECT_EQ(to_string(ExecutorStatus::kDraining), "draining");
  EXPECT_EQ(to_string(ScaleSignal::kAverage), "average");
}

// Connections: who is asked to leave, as a pure function of the statuses and
// connection counts the decision left behind.
LoopObservation at(ExecutorStatus status, std::size_t connections) {
  return LoopObservation{status, 0.0, connections, {}};
}

constexpr ExecutorStatus kActive = ExecutorStatus::kActive;
constexpr ExecutorStatus kDraining = ExecutorStatus::kDraining;
constexpr ExecutorStatus kSuspended = ExecutorStatus::kSuspended;

TEST(PlanMovesTest, AfterAScaleUpLoopsAboveTheirShareShedTheExcess) {
  ScalingPolicy p(ScalingConfig{}, 4);
  // Eight connections that came while one loop was active; four are now.
  const std::vector<LoopObservation> after = {
      at(kActive, 8), at(kActive, 0), at(kActive, 0), at(kActive, 0)};
  EXPECT_THAT(p.plan_moves(after), ElementsAre(6, 0, 0, 0));
  // Share rounds up: 9 over 4 is 3 each at most.
  EXPECT_THAT(p.plan_moves(std::vector<LoopObservation>{
                  at(kActive, 5), at(kActive, 4), at(kActive, 0), at(kActive, 0)}),
              ElementsAre(2, 1, 0, 0));
}

TEST(PlanMovesTest, ADrainingLoopAsksAllItsConnectionsToLeave) {
  ScalingPolicy p(ScalingConfig{}, 3);
  EXPECT_THAT(p.plan_moves(std::vector<LoopObservation>{
                  at(kActive, 2), at(kActive, 2), at(kDraining, 3)}),
              ElementsAre(0, 0, 3));
}

TEST(PlanMovesTest, NothingMovesBetweenLoopsInBalance) {
  ScalingPolicy p(ScalingConfig{}, 3);
  EXPECT_TRUE(p.plan_moves(std::vector<LoopObservation>{
                               at(kActive, 3), at(kActive, 2), at(kActive, 3)})
                  .empty());
  // A suspended loop holds nothing that could move, and takes nothing.
  EXPECT_TRUE(p.plan_moves(std::vector<LoopObservation>{
                               at(kActive, 2), at(kSuspended, 0), at(kActive, 2)})
                  .empty());
}

TEST(PlanMovesTest, MovesPerLoopAreCappedPerWindow) {
  ScalingConfig c;
  c.max_moves_per_window = 5;
  ScalingPolicy p(c, 3);
  EXPECT_THAT(p.plan_moves(std::vector<LoopObservation>{
                  at(kActive, 100), at(kActive, 0), at(kDraining, 40)}),
              ElementsAre(5, 0, 5));
}

TEST(PlanMovesTest, RebalancingOffAsksNothing) {
  ScalingConfig c;
  c.rebalance_connections = false;
  ScalingPolicy p(c, 2);
  EXPECT_TRUE(p.plan_moves(std::vector<LoopObservation>{
                               at(kActive, 10), at(kDraining, 3)})
                  .empty());
}

TEST(PlanMovesTest, WithNoActiveLoopNothingMoves) {
  ScalingPolicy p(ScalingConfig{}, 2);
  EXPECT_TRUE(p.plan_moves(std::vector<LoopObservation>{
                               at(kDraining, 4), at(kSuspended, 0)})
                  .empty());
}

}  // namespace
}  // namespace loopscale
