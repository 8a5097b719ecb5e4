// LoopPool in real time: small windows, generous deadlines, busy time made by
// sleeping inside handlers (so CPU contention does not change the reading).

#include "loopscale/loop_pool.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loopscale/shm/reader.hpp"
#include "support/shm_file.hpp"
#include "support/wait.hpp"

namespace loopscale {
namespace {

using namespace std::chrono_literals;
using ::loopscale::testing::eventually;
using ::loopscale::testing::thread_count;
using ::testing::HasSubstr;

PoolOptions fast_options(std::size_t max_loops, std::size_t min_loops) {
  PoolOptions o;
  o.name = "test";
  o.scaling.max_loops = max_loops;
  o.scaling.min_loops = min_loops;
  o.scaling.window = 20ms;
  o.scaling.patience_cycles = 2;
  o.scaling.scale_down_cooldown_cycles = 0;
  o.scaling.max_ramp_down_step = 4;
  return o;
}

std::unique_ptr<LoopPool> make_pool(const PoolOptions& o) {
  auto pool = LoopPool::create(o);
  EXPECT_TRUE(pool.ok()) << pool.status();
  return *std::move(pool);
}

// Keeps the handler on one loop busy for `busy` of every `period`, until
// `stop` is set.
class PeriodicLoad {
 public:
  PeriodicLoad(LoopExecutor ex, std::chrono::milliseconds period,
               std::chrono::milliseconds busy)
      : timer_(ex), period_(period), busy_(busy) {
    timer_.expires_after(period_);
    timer_.async_wait([this](std::error_code ec) { run(ec); });
  }
  void stop() { stop_ = true; }

 private:
  void run(std::error_code ec) {
    if (ec || stop_) return;
    std::this_thread::sleep_for(busy_);
    timer_.expires_at(timer_.expiry() + period_);
    if (timer_.expiry() < Clock::now()) timer_.expires_after(period_ - busy_);
    timer_.async_wait([this](std::error_code e) { run(e); });
  }

  asio::steady_timer timer_;
  std::chrono::milliseconds period_, busy_;
  std::atomic<bool> stop_{false};
};

TEST(LoopPoolTest, CreateRejectsInvalidOptionsNamingTheField) {
  PoolOptions o;
  o.scaling.scale_down_threshold = 0.9;
  auto pool = LoopPool::create(o);
  EXPECT_EQ(pool.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(pool.status().message()),
              HasSubstr("scaling.scale_down_threshold"));
}

TEST(LoopPoolTest, MaxLoopsZeroMakesOneLoopPerCpu) {
  PoolOptions o;
  auto pool = make_pool(o);
  EXPECT_EQ(pool->size(), std::max(1u, std::thread::hardware_concurrency()));
}

TEST(LoopPoolTest, StatsDescribeEveryLoop) {
  auto pool = make_pool(fast_options(3, 1));
  pool->start();
  std::atomic<int> ran{0};
  asio::post(pool->loop(1).get_executor(), [&] { ++ran; });
  ASSERT_TRUE(eventually([&] { return ran.load() == 1; }));
  PoolStats s = pool->stats();
  EXPECT_EQ(s.name, "test");
  EXPECT_EQ(s.size, 3u);
  EXPECT_EQ(s.min_loops, 1u);
  EXPECT_EQ(s.max_loops, 3u);
  ASSERT_EQ(s.loops.size(), 3u);
  EXPECT_EQ(s.loops[1].index, 1u);
  EXPECT_GE(s.loops[1].handlers, 1u);
  pool->stop();
  for (const LoopStats& l : pool->stats().loops) {
    EXPECT_EQ(l.state, LoopState::kStopped);
  }
  pool->start();  // stop() is terminal
  for (const LoopStats& l : pool->stats().loops) {
    EXPECT_EQ(l.state, LoopState::kStopped);
  }
}

TEST(LoopPoolTest, MetricsArePublishedEveryTickAndReleasedAtStop) {
  testing::TempShmPath file;
  PoolOptions o = fast_options(3, 1);
  o.metrics = file.config("svc");
  auto pool = make_pool(o);
  ASSERT_TRUE(pool->metrics_status().ok());
  ASSERT_NE(pool->publisher(), nullptr);
  auto reader = shm::Reader::open(file.path());
  ASSERT_TRUE(reader.ok()) << reader.status();
  pool->start();
  std::atomic<int> ran{0};
  for (int i = 0; i < 10; ++i) asio::post(pool->loop(2).get_executor(), [&] { ++ran; });
  // The figures follow the pool: ticks advance and the handlers show up.
  ASSERT_TRUE(eventually([&] {
    auto snap = reader->snapshot();
    if (!snap.ok() || snap->processes.size() != 1) return false;
    const shm::ProcessSnapshot& p = snap->processes[0];
    return p.service == "svc" && p.pool == "test" && p.ticks >= 3 &&
           p.loops.size() == 3 && p.loops[2].handlers >= 10;
  }));
  pool->stop();
  auto snap = reader->snapshot();
  ASSERT_TRUE(snap.ok());
  EXPECT_TRUE(snap->processes.empty()) << "stop() releases the segment";
}

TEST(LoopPoolTest, AnUnusableMetricsFileLeavesThePoolRunning) {
  PoolOptions o = fast_options(2, 1);
  o.metrics.enabled = true;
  o.metrics.shm_path = "/dev/null/loopscale";
  auto pool = make_pool(o);
  EXPECT_THAT(std::string(pool->metrics_status().message()),
              HasSubstr("/dev/null/loopscale"));
  EXPECT_EQ(pool->publisher(), nullptr);
  pool->start();
  std::atomic<bool> ran{false};
  asio::post(pool->next(), [&] { ran = true; });
  EXPECT_TRUE(eventually([&] { return ran.load(); }));
}

TEST(LoopPoolTest, IdlePoolShrinksToMinLoopsAndGivesThreadsBack) {
  const std::size_t before = thread_count();
  auto pool = make_pool(fast_options(4, 1));
  pool->start();
  EXPECT_GE(thread_count(), before + 4);  // four loops (and the monitor)
  ASSERT_TRUE(eventually([&] { return pool->active_count() == 1; }));
  ASSERT_TRUE(eventually([&] {
    std::size_t suspended = 0;
    for (std::size_t i = 0; i < pool->size(); ++i) {
      suspended += pool->loop(i).state() == LoopState::kSuspended;
    }
    return suspended == 3;
  }));
  // One loop and the monitor are left.
  EXPECT_TRUE(eventually([&] { return thread_count() <= before + 2; }))
      << thread_count() << " threads, " << before << " before start";
  EXPECT_GE(pool->stats().scale_downs, 1u);
}

TEST(LoopPoolTest, ABusyLoopMakesThePoolGrow) {
  auto pool = make_pool(fast_options(4, 1));
  pool->start();
  ASSERT_TRUE(eventually([&] { return pool->active_count() == 1; }));
  std::uint64_t ups_before = pool->stats().scale_ups;
  PeriodicLoad load(pool->next(), 10ms, 9ms);  // 90% busy
  EXPECT_TRUE(eventually([&] { return pool->active_count() >= 2; }));
  EXPECT_GT(pool->stats().scale_ups, ups_before);
  load.stop();
  pool->stop();
}

TEST(LoopPoolTest, ATrickleOfTinyTasksDoesNotWakeSuspendedLoops) {
  // The test ticks the monitor itself, an hour of its clock per window, so
  // that how the threads happen to be scheduled (a probe that waits 3 ms
  // behind two CPU hogs reads as a saturated loop in a 20 ms window) cannot
  // change a decision. What is tested is the pool's wiring: work handed out
  // by next() lands on the active loop, and posting it wakes no other loop.
  PoolOptions o = fast_options(4, 1);
  o.scaling.window = 1h;  // the monitor's own thread takes the baseline only
  auto pool = make_pool(o);
  pool->start();
  Clock::time_point now = Clock::now();
  auto tick = [&] {
    now += o.scaling.window;
    pool->monitor().tick(now);
  };
  for (int i = 0; i < 16 && pool->active_count() != 1; ++i) tick();
  ASSERT_EQ(pool->active_count(), 1u);
  ASSERT_TRUE(eventually([&] {
    std::size_t suspended = 0;
    for (std::size_t i = 0; i < pool->size(); ++i) {
      suspended += pool->loop(i).state() == LoopState::kSuspended;
    }
    return suspended == 3;
  }));
  std::uint64_t resumes_before = 0;
  for (std::size_t i = 0; i < pool->size(); ++i) {
    resumes_before += pool->loop(i).resumes();
  }
  constexpr int kTasks = 300;
  constexpr int kTasksPerWindow = 20;
  std::atomic<int> ran{0};
  std::size_t max_active = 0;
  for (int i = 0; i < kTasks; ++i) {
    asio::post(pool->next(), [&] { ++ran; });
    max_active = std::max(max_active, pool->active_count());
    if (i % kTasksPerWindow == kTasksPerWindow - 1) tick();
  }
  ASSERT_TRUE(eventually([&] { return ran.load() == kTasks; }));
  std::uint64_t resumes_after = 0;
  for (std::size_t i = 0; i < pool->size(); ++i) {
    resumes_after += pool->loop(i).resumes();
  }
  EXPECT_EQ(resumes_after, resumes_before);
  EXPECT_EQ(max_active, 1u);
  EXPECT_GE(pool->stats().ticks, static_cast<std::uint64_t>(kTasks / kTasksPerWindow));
}

TEST(LoopPoolTest, DirectPostToASuspendedLoopBringsItBackIntoRotation) {
  auto pool = make_pool(fast_options(3, 1));
  pool->start();
  // A loop leaves the active set before its thread has gone: wait for one
  // that is fully suspended.
  std::size_t suspended = pool->size();
  ASSERT_TRUE(eventually([&] {
    for (std::size_t i = 0; i < pool->size(); ++i) {
      if (pool->loop(i).state() == LoopState::kSuspended) suspended = i;
    }
    return suspended < pool->size();
  }));
  // Keep it a little busy so it does not leave again at once.
  PeriodicLoad load(pool->loop(suspended).get_executor(), 10ms, 5ms);
  EXPECT_FALSE(pool->loop(suspended).is_suspended());
  EXPECT_TRUE(eventually([&] {
    auto active = pool->chooser().active();
    return std::find(active.begin(), active.end(), suspended) != active.end();
  }));
  load.stop();
  pool->stop();
}

TEST(LoopPoolTest, MinLoopsZeroSuspendsEveryLoopAndNextWakesOne) {
  auto pool = make_pool(fast_options(2, 0));
  pool->start();
  ASSERT_TRUE(eventually([&] { return pool->active_count() == 0; }));
  ASSERT_TRUE(eventually([&] {
    return pool->loop(0).state() == LoopState::kSuspended &&
           pool->loop(1).state() == LoopState::kSuspended;
  }));
  std::atomic<bool> ran{false};
  asio::post(pool->next(), [&] { ran = true; });
  EXPECT_EQ(pool->active_count(), 1u);
  EXPECT_TRUE(eventually([&] { return ran.load(); }));
}

TEST(LoopPoolTest, ADrainingLoopIsTakenBackBeforeASuspendedOneIsStarted) {
  // Loop 1 is suspended (no thread). Loop 2 drains: it holds a connection
  // and pending work (a timer), so it keeps its thread, out of rotation.
  EventLoop a(0), b(1), c(2);
  for (EventLoop* l : {&a, &b, &c}) l->start();
  Registration connection = c.register_connection();
  asio::steady_timer pending(c.get_executor(), 1h);
  pending.async_wait([](std::error_code) {});
  ASSERT_TRUE(b.try_suspend());
  ASSERT_TRUE(c.try_suspend());
  ASSERT_TRUE(eventually([&] { return b.state() == LoopState::kSuspended; }));
  ASSERT_EQ(c.state(), LoopState::kDraining);
  EXPECT_TRUE(c.is_draining());
  EXPECT_FALSE(b.is_draining());

  ScalingConfig config;
  config.min_loops = 2;  // one loop short: the monitor wakes one at once
  config.max_loops = 3;
  AutoScalingChooser<EventLoop> chooser({&a, &b, &c}, config);
  UtilizationMonitor<EventLoop> monitor(chooser, config);
  Clock::time_point now = Clock::now();
  monitor.tick(now);
  EXPECT_EQ(monitor.statuses()[2], ExecutorStatus::kDraining);
  EXPECT_EQ(monitor.statuses()[1], ExecutorStatus::kSuspended);
  const ScaleDecision d = monitor.tick(now + 1s);
  EXPECT_EQ(d.rule, ScaleRule::kBelowMin);
  EXPECT_THAT(d.wake, ::testing::ElementsAre(2));
  EXPECT_EQ(c.state(), LoopState::kActive);
  EXPECT_EQ(b.state(), LoopState::kSuspended);
  pending.cancel();
  for (EventLoop* l : {&a, &b, &c}) l->stop();
}

TEST(LoopPoolTest, ListenersAndRetuningGoThroughThePool) {
  PoolOptions o = fast_options(3, 1);
  o.scaling.window = 1h;  // ticked by hand
  auto pool = make_pool(o);
  std::vector<ScaleEvent> events;
  pool->add_listener([&](const ScaleEvent& e) { events.push_back(e); });
  ScalingConfig bad = o.scaling;
  bad.min_loops = 5;  // above max_loops
  EXPECT_THAT(std::string(pool->update_config(bad).message()), HasSubstr("min_loops"));
  ScalingConfig two = o.scaling;
  two.min_loops = 2;
  ASSERT_TRUE(pool->update_config(two).ok());
  pool->start();
  Clock::time_point now = Clock::now();
  for (int i = 0; i < 16 && pool->active_count() != 2; ++i) {
    pool->monitor().tick(now += 1h);
  }
  EXPECT_EQ(pool->active_count(), 2u);  // the retuned lower bound holds
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(pool->stats().min_loops, 2u);
}

TEST(LoopPoolTest, TheMonitorRetriesALoopWhoseThreadCouldNotStart) {
  PoolOptions o = fast_options(2, 1);
  o.scaling.window = 1h;  // ticked by hand
  auto pool = make_pool(o);
  pool->start();
  Clock::time_point now = Clock::now();
  for (int i = 0; i < 16 && pool->loop(1).state() != LoopState::kSuspended; ++i) {
    pool->monitor().tick(now += 1h);
    (void)eventually([&] { return pool->loop(1).state() == LoopState::kSuspended; },
                     std::chrono::milliseconds(50));
  }
  ASSERT_EQ(pool->loop(1).state(), LoopState::kSuspended);
  detail::fail_thread_starts_for_testing = 1;
  std::atomic<bool> ran{false};
  asio::post(pool->loop(1).get_executor(), [&] { ran = true; });
  EXPECT_TRUE(pool->loop(1).resume_pending());
  // The pool keeps serving on its active loop meanwhile.
  std::atomic<bool> served{false};
  asio::post(pool->next(), [&] { served = true; });
  EXPECT_TRUE(eventually([&] { return served.load(); }));
  pool->monitor().tick(now += 1h);  // retries the start
  EXPECT_TRUE(eventually([&] { return ran.load(); }));
  EXPECT_FALSE(pool->loop(1).resume_pending());
}

TEST(LoopPoolTest, StopRunsEveryHandlerPostedBeforeIt) {
  auto pool = make_pool(fast_options(2, 1));
  pool->start();
  std::atomic<int> ran{0};
  for (int i = 0; i < 1000; ++i) asio::post(pool->next(), [&] { ++ran; });
  pool->stop();
  EXPECT_EQ(ran.load(), 1000);
}

}  // namespace
}  // namespace loopscale

namespace loopscale {
namespace {

using namespace std::chrono_literals;
using testing::eventually;

TEST(LoopPoolLagTest, StatsShowTheLagOfABlockedLoop) {
  auto pool = make_pool(fast_options(1, 1));
  pool->start();
  std::atomic<bool> release{false};
  asio::post(pool->loop(0).get_executor(), [&] {
    while (!release) std::this_thread::yield();
  });
  // The monitor probes every 20 ms window; the probe waits behind the
  // handler, and stats() shows its wait so far.
  EXPECT_TRUE(eventually(
      [&] { return pool->stats().loops[0].scheduling_lag >= 100ms; }));
  release = true;
  EXPECT_TRUE(eventually(
      [&] { return pool->stats().loops[0].scheduling_lag < 20ms; }));
  pool->stop();
}

}  // namespace
}  // namespace loopscale
