// Job types under concurrency. A writer marks jobs on a recorder with a
// synthetic clock whose every state is predictable; readers check that each
// reading is exactly one of those states (a torn read mixes two). Then real
// loops mark jobs with JobScope while other threads read them: the split
// always adds up to the busy total, counts never go back, and at the end
// every scope is counted.

#include <gtest/gtest.h>

#include <asio/post.hpp>
#include <array>
#include <atomic>
#include <memory>
#include <latch>
#include <thread>
#include <vector>

#include "loopscale/activity.hpp"
#include "loopscale/detail/test_hooks.hpp"
#include "loopscale/event_loop.hpp"
#include "loopscale/job_scope.hpp"
#include "loopscale/job_type.hpp"
#include "support/wait.hpp"

namespace loopscale {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t kUnitNs = 1000;
Clock::time_point at(std::int64_t units) { return from_ns(units * kUnitNs); }

// Slice k: busy from 4k; job 1 + k % 3 from 4k+1 to 4k+2; idle at 4k+3.
std::size_t job_of(std::int64_t k) { return 1 + static_cast<std::size_t>(k % 3); }

// The reading at `now` after the writer's step `step` of slice `k` (0: slice
// opened, 1: job entered, 2: job left, 3: slice closed).
ActivityRecorder::JobsSnapshot expected(std::int64_t k, int step, std::int64_t now) {
  // Slices before k: 3 units busy each, 1 of them job_of(i)'s.
  std::int64_t busy = 3 * k, other = 2 * k;
  std::array<std::int64_t, kMaxJobTypes> job{};
  std::array<std::uint64_t, kMaxJobTypes> count{};
  for (std::int64_t i = 0; i < k; ++i) {
    job[job_of(i)] += 1;
    count[job_of(i)] += 1;
  }
  const std::int64_t open = now - 4 * k;  // the slice in progress so far
  switch (step) {
    case 0:
      busy += open;
      other += open;
      break;
    case 1:
      busy += open;
      other += 1;
      job[job_of(k)] += open - 1;
      break;
    case 2:
      busy += open;
      other += 1 + (open - 2);
      job[job_of(k)] += 1;
      break;
    default:
      busy += 3;
      other += 2;
      job[job_of(k)] += 1;
  }
  if (step >= 1) count[job_of(k)] += 1;
  ActivityRecorder::JobsSnapshot s;
  s.busy = std::chrono::nanoseconds(busy * kUnitNs);
  s.jobs[0].busy = std::chrono::nanoseconds(other * kUnitNs);
  for (std::size_t i = 1; i < kMaxJobTypes; ++i) {
    s.jobs[i] = {std::chrono::nanoseconds(job[i] * kUnitNs), count[i]};
  }
  return s;
}

bool same(const ActivityRecorder::JobsSnapshot& a, const ActivityRecorder::JobsSnapshot& b) {
  if (a.busy != b.busy) return false;
  for (std::size_t i = 0; i < kMaxJobTypes; ++i) {
    if (a.jobs[i].busy != b.jobs[i].busy || a.jobs[i].count != b.jobs[i].count) return false;
  }
  return true;
}

TEST(JobStressTest, ReadingsAreNeverTorn) {
  ActivityRecorder rec;
  constexpr std::int64_t kSlices = 300'000;
  constexpr int kReaders = 2;
  constexpr std::int64_t kNow = 4 * kSlices + 100;  // after every step
  std::atomic<bool> done{false};
  std::atomic<std::int64_t> checked{0}, bad{0};
  std::latch readers_running(kReaders);
  std::thread writer([&] {
    readers_running.wait();
    for (std::int64_t k = 0; k < kSlices; ++k) {
      if (k == kSlices / 2) {  // readers read a half-written recorder
        const std::int64_t seen = checked.load();
        while (checked.load() < seen + 2 * kReaders) std::this_thread::yield();
      }
      rec.mark_busy(at(4 * k));
      rec.switch_job(job_of(k), at(4 * k + 1), true);
      rec.switch_job(0, at(4 * k + 2), false);
      rec.mark_idle(at(4 * k + 3));
    }
    done = true;
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&] {
      readers_running.count_down();
      while (!done) {
        const auto s = rec.jobs(at(kNow));
        // Which slice: the counts say how many jobs were entered.
        std::int64_t entered = 0;
        for (std::size_t i = 1; i < kMaxJobTypes; ++i) entered += static_cast<std::int64_t>(s.jobs[i].count);
        bool ok = false;
        for (std::int64_t k : {entered - 1, entered}) {
          for (int step = 0; step < 4 && k >= 0 && !ok; ++step) ok = same(s, expected(k, step, kNow));
        }
        ok = ok || (entered == 0 && same(s, ActivityRecorder::JobsSnapshot{}));
        if (!ok) bad.fetch_add(1);
        checked.fetch_add(1);
      }
    });
  }
  writer.join();
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0) << "of " << checked.load() << " readings";
  EXPECT_GE(checked.load(), 2 * kReaders);
  EXPECT_TRUE(same(rec.jobs(at(kNow)), expected(kSlices - 1, 3, kNow)));
}

TEST(JobStressTest, LoopsMarkingWhileOthersReadAddUp) {
  detail::reset_job_types_for_testing();
  const JobType a = register_job_type("a").value();
  const JobType b = register_job_type("b").value();
  constexpr int kLoops = 2, kHandlers = 20'000, kReaders = 2;
  std::vector<std::unique_ptr<EventLoop>> loops;
  for (int i = 0; i < kLoops; ++i) {
    loops.push_back(std::make_unique<EventLoop>(i));
    loops.back()->start();
  }
  std::atomic<bool> done{false};
  std::atomic<std::int64_t> readings{0}, bad{0};
  std::latch readers_running(kReaders);
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&] {
      readers_running.count_down();
      std::vector<std::uint64_t> last(kLoops * kMaxJobTypes, 0);
      while (!done) {
        for (int i = 0; i < kLoops; ++i) {
          const auto s = loops[i]->jobs();
          std::chrono::nanoseconds sum{0};
          for (std::size_t j = 0; j < kMaxJobTypes; ++j) {
            sum += s.jobs[j].busy;
            if (s.jobs[j].count < last[i * kMaxJobTypes + j]) bad.fetch_add(1);
            last[i * kMaxJobTypes + j] = s.jobs[j].count;
          }
          if (sum != s.busy) bad.fetch_add(1);
        }
        readings.fetch_add(1);
      }
    });
  }
  readers_running.wait();
  std::atomic<int> ran{0};
  for (int h = 0; h < kHandlers; ++h) {
    for (auto& loop : loops) {
      asio::post(loop->get_executor(), [&, h] {
        JobScope outer(a);
        if (h % 2 == 0) JobScope inner(b);
        ran.fetch_add(1);
      });
    }
    // Halfway, readers have read loops with handlers queued and running.
    if (h == kHandlers / 2) {
      const std::int64_t seen = readings.load();
      ASSERT_TRUE(testing::eventually([&] { return readings.load() >= seen + 2 * kReaders; }));
    }
  }
  ASSERT_TRUE(testing::eventually([&] { return ran.load() == kLoops * kHandlers; }));
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0) << "of " << readings.load() << " readings";
  for (auto& loop : loops) {
    const auto s = loop->jobs();
    EXPECT_EQ(s.jobs[a.id()].count, static_cast<std::uint64_t>(kHandlers));
    EXPECT_EQ(s.jobs[b.id()].count, static_cast<std::uint64_t>(kHandlers / 2));
    loop->stop();
  }
  detail::reset_job_types_for_testing();
}

}  // namespace
}  // namespace loopscale
