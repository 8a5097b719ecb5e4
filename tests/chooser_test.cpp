#include "loopscale/chooser.hpp"
#include "loopscale/utilization_monitor.hpp"

#include <map>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/fake_executor.hpp"

namespace loopscale {
namespace {

using ::loopscale::testing::FakeExecutor;
using ::testing::ElementsAre;

std::vector<FakeExecutor*> ptrs(std::vector<FakeExecutor>& v) {
  std::vector<FakeExecutor*> out;
  for (auto& e : v) out.push_back(&e);
  return out;
}

TEST(AutoScalingChooserTest, StartsWithTheExecutorsWithinTheBound) {
  std::vector<FakeExecutor> e(4);
  ScalingConfig c;
  c.max_loops = 3;
  AutoScalingChooser<FakeExecutor> chooser(ptrs(e), c);
  EXPECT_EQ(chooser.size(), 4u);
  EXPECT_EQ(chooser.active_count(), 3u);
  EXPECT_THAT(chooser.active(), ElementsAre(0, 1, 2));
}

TEST(AutoScalingChooserTest, NextRoundRobinsOverActiveExecutorsOnly) {
  std::vector<FakeExecutor> e(5);
  AutoScalingChooser<FakeExecutor> chooser(ptrs(e), ScalingConfig{});
  const std::vector<std::size_t> active = {1, 3, 4};
  chooser.publish(active);
  std::map<FakeExecutor*, int> hits;
  for (int i = 0; i < 300; ++i) ++hits[&chooser.next()];
  ASSERT_EQ(hits.size(), 3u);
  EXPECT_EQ(hits[&e[1]], 100);
  EXPECT_EQ(hits[&e[3]], 100);
  EXPECT_EQ(hits[&e[4]], 100);
  // Consecutive calls visit each in turn.
  FakeExecutor* a = &chooser.next();
  FakeExecutor* b = &chooser.next();
  FakeExecutor* c = &chooser.next();
  EXPECT_NE(a, b);
  EXPECT_NE(b, c);
  EXPECT_NE(a, c);
  EXPECT_EQ(&chooser.next(), a);
}

TEST(AutoScalingChooserTest, ShrinkingTheSetTakesEffectAtOnce) {
  std::vector<FakeExecutor> e(4);
  AutoScalingChooser<FakeExecutor> chooser(ptrs(e), ScalingConfig{});
  for (int i = 0; i < 3; ++i) chooser.next();  // cursor at position 2
  const std::vector<std::size_t> one = {2};
  chooser.publish(one);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(&chooser.next(), &e[2]);
}

TEST(AutoScalingChooserTest, EmptySetWakesOneExecutor) {
  std::vector<FakeExecutor> e(3);
  for (auto& x : e) x.suspended = true;
  ScalingConfig c;
  c.min_loops = 0;
  AutoScalingChooser<FakeExecutor> chooser(ptrs(e), c);
  chooser.publish({});
  EXPECT_EQ(chooser.active_count(), 0u);
  EXPECT_EQ(&chooser.next(), &e[0]);
  EXPECT_EQ(e[0].resume_calls, 1);
  EXPECT_EQ(chooser.active_count(), 1u);
}

TEST(AutoScalingChooserTest, EmptySetPrefersAnExecutorThatIsRunning) {
  std::vector<FakeExecutor> e(3);
  e[0].suspended = true;
  e[2].suspended = true;
  ScalingConfig c;
  c.min_loops = 0;
  AutoScalingChooser<FakeExecutor> chooser(ptrs(e), c);
  chooser.publish({});
  EXPECT_EQ(&chooser.next(), &e[1]);
}

TEST(AutoScalingChooserTest, RejectsBadArguments) {
  EXPECT_THROW(AutoScalingChooser<FakeExecutor>({}, ScalingConfig{}),
               std::invalid_argument);
  EXPECT_THROW(AutoScalingChooser<FakeExecutor>({nullptr}, ScalingConfig{}),
               std::invalid_argument);
  FakeExecutor e;
  ScalingConfig bad;
  bad.patience_cycles = 0;
  EXPECT_THROW(AutoScalingChooser<FakeExecutor>({&e}, bad),
               std::invalid_argument);
}

TEST(AutoScalingChooserTest, CreateReturnsTheSameErrorsAsAStatus) {
  auto empty = AutoScalingChooser<FakeExecutor>::create({}, ScalingConfig{});
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(empty.status().message().find("no executors"), std::string::npos);
  FakeExecutor e;
  ScalingConfig bad;
  bad.patience_cycles = 0;
  auto invalid = AutoScalingChooser<FakeExecutor>::create({&e}, bad);
  EXPECT_NE(invalid.status().message().find("patience_cycles"), std::string::npos);
  auto ok = AutoScalingChooser<FakeExecutor>::create({&e}, ScalingConfig{});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(&(*ok)->next(), &e);
  // And the monitor's.
  auto monitor = UtilizationMonitor<FakeExecutor>::create(**ok, bad);
  EXPECT_NE(monitor.status().message().find("patience_cycles"), std::string::npos);
  EXPECT_TRUE(UtilizationMonitor<FakeExecutor>::create(**ok, ScalingConfig{}).ok());
}

TEST(AutoScalingChooserTest, ThreadsEachRoundRobinFromTheirOwnStart) {
  std::vector<FakeExecutor> e(2);
  AutoScalingChooser<FakeExecutor> chooser(ptrs(e), ScalingConfig{});
  FakeExecutor* first_main = &chooser.next();
  FakeExecutor* first_other = nullptr;
  std::thread([&] { first_other = &chooser.next(); }).join();
  // The second thread's cursor starts where the shared counter sends it: the
  // other executor.
  EXPECT_NE(first_main, first_other);
}

}  // namespace
}  // namespace loopscale
