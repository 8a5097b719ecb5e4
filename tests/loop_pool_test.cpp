// LoopPool with real loops and threads. The tests of what the pool does with
// a decision (shrinking, waking, taking a loop back) tick its monitor by hand
// over hour-long windows, so that no scheduling delay changes a decision; the
// few that need its own thread (growth, publishing, lag) make busy time by
// sleeping inside handlers, which CPU contention cannot shorten, and wait for
// what only more load could delay.

#include "loopscale/loop_pool.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <thread>

#include <sys/resource.h>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loopscale/detail/test_hooks.hpp"
#include "loopscale/shm/reader.hpp"
#include "support/open_fds.hpp"
#include "support/shm_file.hpp"
#include "support/wait.hpp"

namespace loopscale {
namespace {

using namespace std::chrono_literals;
using ::loopscale::testing::eventually;
using ::loopscale::testing::thread_count;
using ::testing::AllOf;
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

// For the tests of what the pool does with a decision. Its monitor's own
// thread takes the baseline and then waits an hour; the test ticks it by
// hand with `tick_until`. In a 20 ms window an idle loop whose probe waits
// 2 ms for a CPU behind two hogs reads as saturated, and the pool grows
// instead of shrinking; no wait a loaded machine makes is a visible part of
// an hour, so every decision is the same on any machine.
PoolOptions hand_ticked(std::size_t max_loops, std::size_t min_loops) {
  PoolOptions o = fast_options(max_loops, min_loops);
  o.scaling.window = 1h;
  o.scaling.fast_up_interval = 0ns;  // every decision by hand
  return o;
}

// Ticks `pool`'s monitor an hour of its clock at a time until `done()`
// holds; false if 32 windows (far more than any bound, patience or lookback
// in these tests needs) did not make it hold.
template <class Done>
bool tick_until(LoopPool& pool, Clock::time_point& now, Done done) {
  for (int i = 0; i < 32; ++i) {
    if (done()) return true;
    pool.monitor().tick(now += 1h);
  }
  return done();
}

// Returns how many of `pool`'s loops have given their thread back.
std::size_t suspended_count(LoopPool& pool) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < pool.size(); ++i) {
    n += pool.loop(i).state() == LoopState::kSuspended;
  }
  return n;
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

// Each loop makes its reactor (three descriptors) when it is built, so a
// process short of descriptors hears it from create(), not from the first
// socket of a loop woken under load.
TEST(LoopPoolTest, CreateReportsLoopsThatCannotMakeTheirReactors) {
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = testing::open_fds() + 4;  // about one loop's three, not four loops' 12
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  PoolOptions o;
  o.name = "short";
  o.scaling.max_loops = 4;
  auto pool = LoopPool::create(o);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_EQ(pool.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(pool.status().message()),
              AllOf(HasSubstr("pool \"short\": loop "), HasSubstr(" of 4: cannot make its reactor"),
                    HasSubstr("Too many open files")));
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
  auto pool = make_pool(hand_ticked(4, 1));
  pool->start();
  EXPECT_GE(thread_count(), before + 4);  // four loops (and the monitor)
  Clock::time_point now = Clock::now();
  ASSERT_TRUE(tick_until(*pool, now, [&] { return pool->active_count() == 1; }));
  EXPECT_GE(pool->stats().scale_downs, 1u);
  ASSERT_TRUE(eventually([&] { return suspended_count(*pool) == 3; }));
  // One loop and the monitor are left.
  EXPECT_TRUE(eventually([&] { return thread_count() <= before + 2; }))
      << thread_count() << " threads, " << before << " before start";
}

TEST(LoopPoolTest, ABusyLoopMakesThePoolGrow) {
  auto pool = make_pool(fast_options(4, 1));
  pool->start();
  ASSERT_TRUE(eventually([&] { return pool->active_count() == 1; }));
  std::uint64_t ups_before = pool->stats().scale_ups;
  PeriodicLoad load(pool->next(), 10ms, 9ms);  // 90% busy
  // The monitor wakes a loop before it counts the scale-up: wait for both.
  EXPECT_TRUE(eventually([&] {
    return pool->active_count() >= 2 && pool->stats().scale_ups > ups_before;
  })) << pool->active_count() << " active, " << pool->stats().scale_ups
      << " scale-ups, " << ups_before << " before";
  load.stop();
  pool->stop();
}

TEST(LoopPoolTest, ATrickleOfTinyTasksDoesNotWakeSuspendedLoops) {
  // What is tested is the pool's wiring: work handed out by next() lands on
  // the active loop, and posting it wakes no other loop.
  auto pool = make_pool(hand_ticked(4, 1));
  pool->start();
  Clock::time_point now = Clock::now();
  ASSERT_TRUE(tick_until(*pool, now, [&] { return pool->active_count() == 1; }));
  ASSERT_TRUE(eventually([&] { return suspended_count(*pool) == 3; }));
  std::uint64_t resumes_before = 0;
  for (std::size_t i = 0; i < pool->size(); ++i) {
    resumes_before += pool->loop(i).resumes();
  }
  constexpr int kTasks = 300;
  constexpr int kTasksPerWindow = 20;
  std::atomic<int> ran{0};
  std::size_t max_active = 0;
  const std::uint64_t ticks_before = pool->stats().ticks;
  for (int i = 0; i < kTasks; ++i) {
    asio::post(pool->next(), [&] { ++ran; });
    max_active = std::max(max_active, pool->active_count());
    if (i % kTasksPerWindow == kTasksPerWindow - 1) pool->monitor().tick(now += 1h);
  }
  ASSERT_TRUE(eventually([&] { return ran.load() == kTasks; }));
  std::uint64_t resumes_after = 0;
  for (std::size_t i = 0; i < pool->size(); ++i) {
    resumes_after += pool->loop(i).resumes();
  }
  EXPECT_EQ(resumes_after, resumes_before);
  EXPECT_EQ(max_active, 1u);
  EXPECT_EQ(pool->stats().ticks - ticks_before,
            static_cast<std::uint64_t>(kTasks / kTasksPerWindow));
}

TEST(LoopPoolTest, DirectPostToASuspendedLoopBringsItBackIntoRotation) {
  PoolOptions o = hand_ticked(3, 1);
  // After the first scale-down the pool does not shrink again for 1000
  // windows: the loop woken below must not be taken back by the tick that
  // sees it (an hour-long window reads it idle).
  o.scaling.scale_down_cooldown_cycles = 1000;
  auto pool = make_pool(o);
  pool->start();
  Clock::time_point now = Clock::now();
  ASSERT_TRUE(tick_until(*pool, now, [&] { return pool->active_count() == 1; }));
  // A loop leaves the active set before its thread has gone: wait for one
  // that is fully suspended.
  std::size_t suspended = pool->size();
  ASSERT_TRUE(eventually([&] {
    for (std::size_t i = 0; i < pool->size(); ++i) {
      if (pool->loop(i).state() == LoopState::kSuspended) suspended = i;
    }
    return suspended < pool->size();
  }));
  std::atomic<bool> ran{false};
  asio::post(pool->loop(suspended).get_executor(), [&] { ran = true; });
  EXPECT_FALSE(pool->loop(suspended).is_suspended()) << "after post returned";
  EXPECT_TRUE(eventually([&] { return ran.load(); }));
  auto in_rotation = [&] {
    auto active = pool->chooser().active();
    return std::find(active.begin(), active.end(), suspended) != active.end();
  };
  EXPECT_FALSE(in_rotation()) << "before the monitor saw it";
  pool->monitor().tick(now += 1h);
  EXPECT_TRUE(in_rotation()) << "the monitor's next tick did not take it in";
  pool->stop();
}

// The graceful stop in one call: false at the deadline while a connection
// stays; true once the last one has closed.
TEST(LoopPoolTest, CloseConnectionsWaitsForTheLastOneOrTheDeadline) {
  auto pool = make_pool(hand_ticked(2, 2));
  pool->start();
  std::optional<Registration> connection = pool->loop(1).register_connection();
  EXPECT_FALSE(pool->close_connections(std::chrono::steady_clock::now() + 20ms));
  EXPECT_TRUE(pool->loop(1).closing());
  // A session asked to close closes on its loop; here a thread that waits
  // for the request does it.
  std::thread closer([&] {
    EXPECT_TRUE(eventually([&] { return pool->loop(0).closing() && pool->loop(1).closing(); }));
    connection.reset();
  });
  EXPECT_TRUE(pool->close_connections(std::chrono::steady_clock::now() + 60s));
  EXPECT_EQ(pool->connections(), 0u);
  closer.join();
  pool->stop();
}

TEST(LoopPoolTest, MinLoopsZeroSuspendsEveryLoopAndNextWakesOne) {
  auto pool = make_pool(hand_ticked(2, 0));
  pool->start();
  Clock::time_point now = Clock::now();
  ASSERT_TRUE(tick_until(*pool, now, [&] { return pool->active_count() == 0; }));
  ASSERT_TRUE(eventually([&] { return suspended_count(*pool) == 2; }));
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
  o.scaling.fast_up_interval = 0ns;
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
  o.scaling.fast_up_interval = 0ns;
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
