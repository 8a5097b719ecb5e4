// The overload level (overload.hpp), the admission gate (admission.hpp) and
// the monitor that joins them: deterministic, on a virtual clock and fake
// executors; the level is injected where an action is tested.

#include "loopscale/overload.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cmath>
#include <thread>
#include <memory>
#include <vector>

#include <asio/post.hpp>

#include "loopscale/admission.hpp"
#include "loopscale/chooser.hpp"
#include "loopscale/loop_pool.hpp"
#include "loopscale/prometheus.hpp"
#include "loopscale/utilization_monitor.hpp"
#include "support/wait.hpp"

namespace loopscale {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

OverloadConfig on() {
  OverloadConfig c;
  c.enabled = true;
  c.lag_target = 10ms;
  return c;
}

// One update `dt` after the last.
struct Driver {
  OverloadController controller;
  Clock::time_point now{std::chrono::seconds(100)};
  double step(bool at_bound, double utilization, std::chrono::nanoseconds lag,
              const OverloadConfig& config, std::chrono::nanoseconds dt = 20ms) {
    now += dt;
    return controller.update({at_bound, utilization, lag, now}, config);
  }
};

TEST(OverloadControllerTest, ZeroWhenOffOrWhenThePoolCanStillGrow) {
  Driver d;
  OverloadConfig off = on();
  off.enabled = false;
  for (int i = 0; i < 50; ++i) EXPECT_EQ(d.step(true, 1.0, 500ms, off), 0.0);
  EXPECT_EQ(d.controller.reason(), "off");
  // Scale first: a saturated pool below its bound sheds nothing.
  for (int i = 0; i < 50; ++i) EXPECT_EQ(d.step(false, 1.0, 500ms, on()), 0.0);
  EXPECT_EQ(d.controller.reason(), "the pool can still grow");
}

TEST(OverloadControllerTest, RisesWithTheLagAtTheBoundUpToMaxShed) {
  Driver d;
  OverloadConfig c = on();
  c.max_shed = 0.8;
  d.step(true, 1.0, 0ms, c);
  const double first = d.step(true, 1.0, 30ms, c);
  // The proportional part at once: 20 ms above the target.
  EXPECT_NEAR(first, OverloadController::kGain * 0.020 +
                         OverloadController::kIntegralGain * 0.020 * 0.020,
              1e-9);
  double level = first;
  for (int i = 0; i < 100; ++i) {
    const double next = d.step(true, 1.0, 30ms, c);
    EXPECT_GE(next, level);  // the integral keeps climbing while above target
    level = next;
  }
  EXPECT_EQ(level, 0.8);
  EXPECT_THAT(d.controller.reason(), HasSubstr("lag 30.0 ms > target 10.0 ms"));
}

TEST(OverloadControllerTest, ALagWithoutBusyLoopsIsNotOverload) {
  // One hot loop among idle ones: a high mean lag, a low mean utilization.
  Driver d;
  for (int i = 0; i < 100; ++i) EXPECT_EQ(d.step(true, 0.3, 200ms, on()), 0.0);
  EXPECT_THAT(d.controller.reason(), HasSubstr("(not saturated)"));
}

// The load of a step the pool absorbs by growing: it reaches its bound with
// the step's queue on its loops, saturated and lagging for a while. That
// queue is not overload.
TEST(OverloadControllerTest, NothingRisesForAGraceAfterReachingTheBound) {
  Driver d;
  const OverloadConfig c = on();
  auto step = [&](std::chrono::nanoseconds lag) {
    d.now += 20ms;
    return d.controller.update({true, 1.0, lag, d.now, 250ms}, c);
  };
  for (int i = 0; i < 13; ++i) EXPECT_EQ(step(80ms), 0.0) << i;  // 0 .. 240 ms on
  EXPECT_THAT(d.controller.reason(), HasSubstr("just grew"));
  EXPECT_GT(step(80ms), 0.0);  // still lagging a window on: overload
  // Leaving the bound and coming back starts a new grace.
  d.step(false, 1.0, 80ms, c);
  EXPECT_EQ(step(80ms), 0.0);
}

TEST(OverloadControllerTest, ShedsNoMoreOnceTheLoadEnds) {
  Driver d;
  const OverloadConfig c = on();
  for (int i = 0; i < 200; ++i) d.step(true, 1.0, 40ms, c);
  ASSERT_EQ(d.controller.level(), c.max_shed);
  // The load falls below capacity: no queue, loops half busy. The level is
  // 0 within half a second (two of the demo's 250 ms windows).
  int steps = 0;
  while (d.step(true, 0.5, 0ms, c) > 0.0) ASSERT_LT(++steps, 25);
}

// The lag of a pool at r times its capacity, shedding `level` of the load,
// grows by (r (1 - level) - 1) seconds per second: the queue is the excess
// work. Closed around the controller, updated every kOverloadCheckInterval
// with the lag read two updates late (a probe reports the wait it saw), the
// lag settles at the target and the level at what the load needs, 1 - 1/r,
// at any overload, and a step from nothing to 4x queues less than 70 ms.
TEST(OverloadControllerTest, HoldsTheLagAtTheTargetAtAnyOverload) {
  const double dt = std::chrono::duration<double>(kOverloadCheckInterval).count();
  for (double r : {1.5, 2.0, 4.0}) {
    Driver d;
    const OverloadConfig c = on();
    std::vector<double> seen(3, 0.0);  // the lag now and the two updates before
    double lag = 0.0, level = 0.0, worst_late = 0.0, peak = 0.0;
    const int steps = static_cast<int>(10 / dt);  // 10 s
    for (int i = 0; i < steps; ++i) {
      level = d.step(true, 1.0,
                     std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::duration<double>(seen.front())),
                     c, kOverloadCheckInterval);
      lag = std::max(0.0, lag + (r * (1 - level) - 1) * dt);
      seen.erase(seen.begin());
      seen.push_back(lag);
      peak = std::max(peak, lag);
      if (i >= steps / 2) worst_late = std::max(worst_late, std::abs(lag - 0.010));
    }
    EXPECT_NEAR(level, 1 - 1 / r, 0.02) << r;
    EXPECT_LT(worst_late, 0.002) << r << "x: the lag strays from the target";
    EXPECT_LT(peak, 0.070) << r << "x: the step's queue";
  }
}

TEST(AdmissionTest, EverythingPassesWithoutPressure) {
  Admission a(2);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(a.admit(i % 2));
  EXPECT_TRUE(a.keep_alive());
  EXPECT_TRUE(a.accepting());
  EXPECT_EQ(a.idle_timeout(30s), 30s);
  EXPECT_EQ(a.refused(), 0u);
  EXPECT_EQ(a.level(), 0.0);
}

TEST(AdmissionTest, RefusesTheLevelsShareEvenlySpread) {
  Admission a(2);
  a.inject(0.25, on());
  EXPECT_TRUE(a.injected());
  EXPECT_DOUBLE_EQ(a.level(), 0.25);
  std::vector<bool> loop0;
  for (int i = 0; i < 100; ++i) loop0.push_back(a.admit(0));
  EXPECT_EQ(std::count(loop0.begin(), loop0.end(), false), 25);
  for (std::size_t i = 1; i < loop0.size(); ++i) {
    EXPECT_FALSE(!loop0[i] && !loop0[i - 1]) << "two refusals in a row at " << i;
  }
  for (int i = 0; i < 40; ++i) a.admit(1);  // each loop keeps its own count
  EXPECT_EQ(a.refused(), 35u);
  EXPECT_TRUE(a.admit(7));  // a loop the pool does not have: admitted
  // The monitor's level does not override an injected one.
  a.set(0.0, on());
  EXPECT_DOUBLE_EQ(a.level(), 0.25);
  a.clear_injection();
  EXPECT_EQ(a.level(), 0.0);
  a.set(0.5, on());
  EXPECT_DOUBLE_EQ(a.level(), 0.5);
}

TEST(AdmissionTest, KeepAliveAndAcceptingTurnOffAtTheirLevels) {
  OverloadConfig c = on();
  c.keepalive_off_at = 0.5;
  c.pause_accepting_at = 0.8;
  Admission a(1);
  a.set(0.49, c);
  EXPECT_TRUE(a.keep_alive());
  EXPECT_TRUE(a.accepting());
  a.set(0.5, c);
  EXPECT_FALSE(a.keep_alive());
  EXPECT_TRUE(a.accepting());
  EXPECT_EQ(a.idle_timeout(30s), 3s);
  a.set(0.8, c);
  EXPECT_FALSE(a.accepting());
  a.set(0.0, c);
  EXPECT_TRUE(a.keep_alive());
  EXPECT_TRUE(a.accepting());
  // With the defaults (above max_shed) neither ever turns off.
  a.set(1.0, on());
  EXPECT_FALSE(a.admit(0));
  a.set(0.95, on());
  EXPECT_TRUE(a.keep_alive());
  EXPECT_TRUE(a.accepting());
}

// An executor that reports a scheduling lag, as EventLoop does.
struct LaggingExecutor {
  std::chrono::nanoseconds busy{0};
  std::chrono::nanoseconds lag{0};
  bool suspended = false;
  std::chrono::nanoseconds busy_time() const { return busy; }
  bool try_suspend() { return false; }
  void resume() { suspended = false; }
  bool is_suspended() const { return suspended; }
  std::size_t registrations() const { return 0; }
  std::chrono::nanoseconds scheduling_lag() const { return lag; }
};
static_assert(LagReportingExecutor<LaggingExecutor>);

class MonitorOverloadTest : public ::testing::Test {
 protected:
  MonitorOverloadTest() {
    config_.max_loops = 2;
    config_.min_loops = 2;
    config_.overload = on();
    for (auto& e : execs_) pointers_.push_back(&e);
    chooser_ = std::make_unique<AutoScalingChooser<LaggingExecutor>>(pointers_, config_);
    monitor_ = std::make_unique<UtilizationMonitor<LaggingExecutor>>(*chooser_, config_);
    monitor_->add_overload_listener([this](const OverloadEvent& e) { events_.push_back(e); });
    monitor_->tick(now_);
  }
  // `dt` in which every executor was busy for `u` of the time, with `lag`.
  void pass(std::chrono::nanoseconds dt, double u, std::chrono::nanoseconds lag, bool tick) {
    for (auto& e : execs_) {
      e.busy += std::chrono::duration_cast<std::chrono::nanoseconds>(dt * u);
      e.lag = lag;
    }
    now_ += dt;
    if (tick) {
      monitor_->tick(now_);
    } else {
      monitor_->check_saturation(now_);
    }
  }

  ScalingConfig config_;
  std::vector<LaggingExecutor> execs_ = std::vector<LaggingExecutor>(2);
  std::vector<LaggingExecutor*> pointers_;
  std::unique_ptr<AutoScalingChooser<LaggingExecutor>> chooser_;
  std::unique_ptr<UtilizationMonitor<LaggingExecutor>> monitor_;
  std::vector<OverloadEvent> events_;
  Clock::time_point now_{std::chrono::seconds(100)};
};

TEST_F(MonitorOverloadTest, ChecksBetweenTicksRaiseTheLevelAndListenersHearIt) {
  // At the bound for more than a window (the grace of a pool that just grew).
  for (int i = 0; i < 3; ++i) pass(config_.window, 0.5, 0ms, /*tick=*/true);
  for (int i = 0; i < 5; ++i) pass(20ms, 1.0, 60ms, /*tick=*/false);
  EXPECT_GT(monitor_->admission().level(), 0.5);
  EXPECT_GT(monitor_->stats().overload_level, 0.5);
  EXPECT_EQ(monitor_->stats().overload_episodes, 1u);
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_GT(events_[0].level, 0.0);
  EXPECT_THAT(events_[0].reason, HasSubstr("lag 60.0 ms"));
  // Refusals follow: about the level's share.
  int refused = 0;
  for (int i = 0; i < 100; ++i) refused += monitor_->admission().admit(0) ? 0 : 1;
  EXPECT_GT(refused, 50);
  // The load ends: the level falls to 0 and listeners hear that too.
  for (int i = 0; i < 25 && monitor_->admission().level() > 0; ++i) {
    pass(20ms, 0.2, 0ms, /*tick=*/false);
  }
  EXPECT_EQ(monitor_->admission().level(), 0.0);
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_EQ(events_[1].level, 0.0);
}

TEST_F(MonitorOverloadTest, AnInjectedLevelHoldsWhateverTheMonitorMeasures) {
  monitor_->admission().inject(0.3, config_.overload);
  for (int i = 0; i < 10; ++i) pass(config_.window, 0.1, 0ms, /*tick=*/true);
  EXPECT_DOUBLE_EQ(monitor_->admission().level(), 0.3);
  EXPECT_DOUBLE_EQ(monitor_->stats().overload_level, 0.3);
  EXPECT_TRUE(events_.empty());  // the controller itself never shed
}

// A real pool kept saturated by handlers that spin and re-post themselves:
// its monitor's thread raises the level while the loops admit and another
// thread reads the figures (for ThreadSanitizer). Every refusal the loops
// saw is in the pool's count.
TEST(PoolOverloadTest, ASaturatedPoolShedsAndCountsWhatItRefused) {
  PoolOptions options;
  options.name = "overload-test";
  options.scaling.min_loops = options.scaling.max_loops = 2;
  options.scaling.window = 20ms;
  options.scaling.overload.enabled = true;
  options.scaling.overload.lag_target = 1ms;
  options.scaling.overload.utilization_start = 0.5;
  auto created = LoopPool::create(options);
  ASSERT_TRUE(created.ok()) << created.status();
  LoopPool& pool = **created;
  pool.start();
  std::atomic<bool> stop{false};
  std::array<std::atomic<std::uint64_t>, 2> refused{};
  std::array<std::atomic<int>, 2> running{};
  struct Spin {
    LoopPool* pool;
    std::size_t loop;
    std::atomic<bool>* stop;
    std::atomic<std::uint64_t>* refused;
    std::atomic<int>* running;
    void operator()() const {
      if (stop->load()) {
        running->store(0);
        return;
      }
      const auto until = std::chrono::steady_clock::now() + 2ms;
      while (std::chrono::steady_clock::now() < until) {
      }
      if (!pool->admission().admit(loop)) refused->fetch_add(1);
      asio::post(pool->loop(loop).get_executor(), *this);
    }
  };
  for (std::size_t i = 0; i < 2; ++i) {
    running[i] = 1;
    asio::post(pool.loop(i).get_executor(), Spin{&pool, i, &stop, &refused[i], &running[i]});
  }
  std::thread reader([&] {
    while (!stop.load()) {
      const PoolStats stats = pool.stats();
      EXPECT_LE(stats.overload_level, options.scaling.overload.max_shed);
      EXPECT_FALSE(prometheus::render(pool).empty());
    }
  });
  EXPECT_TRUE(testing::eventually([&] { return refused[0] + refused[1] >= 50; }));
  stop = true;
  reader.join();
  ASSERT_TRUE(testing::eventually([&] { return running[0] == 0 && running[1] == 0; }));
  const PoolStats stats = pool.stats();
  EXPECT_EQ(stats.overload_refused, refused[0] + refused[1]);
  EXPECT_GE(stats.overload_episodes, 1u);
  pool.stop();
}

}  // namespace
}  // namespace loopscale
