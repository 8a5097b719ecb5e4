// next() from several threads while the active set is replaced continuously:
// every returned executor was active in some published set, never one that
// was left out of every set. Run under ThreadSanitizer by scripts/test.

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "loopscale/chooser.hpp"

namespace loopscale {
namespace {

// A ScalableExecutor whose members are safe from any thread.
struct AtomicExecutor {
  std::atomic<bool> suspended{false};
  std::chrono::nanoseconds busy_time() const { return {}; }
  bool try_suspend() { suspended = true; return true; }
  void resume() { suspended = false; }
  bool is_suspended() const { return suspended; }
  std::size_t registrations() const { return 0; }
};

TEST(ChooserStressTest, NextStaysWithinPublishedSetsWhileTheyChange) {
  constexpr std::size_t kExecutors = 8;
  // Executor 7 is never published: next() must never return it.
  constexpr std::size_t kNeverActive = 7;
  std::vector<AtomicExecutor> executors(kExecutors);
  std::vector<AtomicExecutor*> ptrs;
  for (auto& e : executors) ptrs.push_back(&e);
  ScalingConfig c;
  c.min_loops = 0;
  c.max_loops = kNeverActive;  // the initial set is 0..6
  AutoScalingChooser<AtomicExecutor> chooser(ptrs, c);

  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> bad{0}, calls{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      while (!done.load(std::memory_order_relaxed)) {
        for (int i = 0; i < 1024; ++i) {
          AtomicExecutor& e = chooser.next();
          if (&e == &executors[kNeverActive]) bad.fetch_add(1);
        }
        calls.fetch_add(1024);
      }
    });
  }
  std::mt19937 rng(42);
  // Publish until the readers have made 20M calls (and at least 20k sets).
  for (int round = 0; round < 20'000 || calls.load() < 20'000'000; ++round) {
    std::vector<std::size_t> set;
    for (std::size_t i = 0; i < kNeverActive; ++i) {
      if (rng() % 2) set.push_back(i);
    }
    std::shuffle(set.begin(), set.end(), rng);
    chooser.publish(set);  // sometimes empty: next() then wakes one
  }
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(calls.load(), 0u);
}

}  // namespace
}  // namespace loopscale
