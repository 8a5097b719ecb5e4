// Producers post through next() while the monitor scales the pool every few
// milliseconds: every handler runs exactly once. Run under ThreadSanitizer by
// scripts/test.

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <asio/post.hpp>

#include "gtest/gtest.h"
#include "loopscale/loop_pool.hpp"
#include "support/wait.hpp"

namespace loopscale {
namespace {

using namespace std::chrono_literals;
using ::loopscale::testing::eventually;

TEST(PoolScalingStressTest, ProducersLoseNothingWhileThePoolScales) {
  PoolOptions o;
  o.scaling.max_loops = 4;
  o.scaling.min_loops = 0;  // also exercises next() waking a loop
  o.scaling.window = 5ms;
  o.scaling.patience_cycles = 1;
  o.scaling.scale_down_cooldown_cycles = 0;
  o.scaling.max_ramp_down_step = 4;
  auto created = LoopPool::create(o);
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<LoopPool> pool = *std::move(created);
  pool->start();

  constexpr int kProducers = 2;
  constexpr int kPerProducer = 100'000;
  // Bursts of work separated by pauses of several windows: the pool grows
  // during a burst and shrinks (to no loop at all) in the pauses.
  constexpr int kBurst = 5'000;
  ASSERT_TRUE(eventually([&] { return pool->active_count() == 0; }));
  std::array<std::atomic<int>, kProducers> ran{};
  std::vector<std::thread> producers;
  // Halfway, the pool is made to scale both ways before the second half:
  // with the producers paused it shrinks (to no loop: min_loops is 0), then
  // producer 0 keeps the loop next() wakes saturated until the pool has
  // grown. The scaling the test is about happens between posts, every run,
  // not when the machine allows.
  std::atomic<int> at_half{0};
  std::atomic<bool> scaled_both_ways{false};
  std::atomic<int> saturating_ran{0};
  const auto scale_both_ways = [&] {
    const bool shrank = eventually([&] { return pool->active_count() == 0; });
    const std::uint64_t ups = pool->stats().scale_ups;
    const bool grew = eventually([&] {
      for (int k = 0; k < 4; ++k) {
        asio::post(pool->next(), [&] {
          std::this_thread::sleep_for(1ms);
          saturating_ran.fetch_add(1);
        });
      }
      return pool->stats().scale_ups > ups;
    });
    EXPECT_TRUE(grew && shrank) << "grew " << grew << ", shrank " << shrank;
    scaled_both_ways = true;
  };
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        if (i == kPerProducer / 2) {
          // The last producer to get here makes the pool scale, so that no
          // post of the first half is still coming.
          if (at_half.fetch_add(1) == kProducers - 1) scale_both_ways();
          ASSERT_TRUE(eventually([&] { return scaled_both_ways.load(); },
                                 std::chrono::minutes(2)));
        }
        // Every 20th handler is slow, so a burst keeps loops busy.
        asio::post(pool->next(), [&ran, p, slow = i % 20 == 0] {
          if (slow) std::this_thread::sleep_for(100us);
          ran[p].fetch_add(1, std::memory_order_relaxed);
        });
        if (i % kBurst == kBurst - 1) std::this_thread::sleep_for(30ms);
      }
    });
  }
  for (auto& t : producers) t.join();
  for (int p = 0; p < kProducers; ++p) {
    EXPECT_TRUE(eventually([&] { return ran[p].load() == kPerProducer; }))
        << "producer " << p << ": " << ran[p].load() << " of " << kPerProducer;
  }
  PoolStats s = pool->stats();
  pool->stop();
  for (int p = 0; p < kProducers; ++p) EXPECT_EQ(ran[p].load(), kPerProducer);
  // The test is only meaningful if the pool did scale meanwhile.
  EXPECT_GT(s.scale_ups, 0u);
  EXPECT_GT(s.scale_downs, 0u);
  std::printf("ticks %llu, scale-ups %llu, scale-downs %llu\n",
              static_cast<unsigned long long>(s.ticks),
              static_cast<unsigned long long>(s.scale_ups),
              static_cast<unsigned long long>(s.scale_downs));
}

}  // namespace
}  // namespace loopscale
