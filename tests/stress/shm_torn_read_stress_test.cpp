// A writer publishes as fast as it can while readers snapshot the same file
// through their own mappings. Every publish k writes k into every loop of the
// pool (handlers = k, busy = k * 1000 + i) and into the pool's figures
// (ticks = scale_ups = k), so a snapshot that mixed two publishes breaks the
// invariant. Run under TSan too: all accesses to the mapping are atomic.

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "loopscale/shm/publisher.hpp"
#include "loopscale/shm/reader.hpp"
#include "support/shm_file.hpp"

namespace loopscale::shm {
namespace {

using testing::stats_at;
using testing::TempShmPath;

TEST(ShmTornReadStressTest, SnapshotsNeverMixTwoPublishes) {
  constexpr std::size_t kLoops = 16;
  constexpr int kSnapshotsPerReader = 3000;
  TempShmPath file;
  auto pub = Publisher::attach(file.config("stress"), "p", kLoops);
  ASSERT_TRUE(pub.ok()) << pub.status();
  (*pub)->publish(stats_at("p", kLoops, 0));

  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> published{0};
  std::thread writer([&] {
    // Precomputed figures, so the writer spends its time in publish().
    std::vector<PoolStats> steps;
    for (std::uint64_t k = 1; k <= 64; ++k) steps.push_back(stats_at("p", kLoops, k));
    for (std::uint64_t k = 0; !done.load(std::memory_order_relaxed); ++k) {
      (*pub)->publish(steps[k % steps.size()]);
      published.fetch_add(1, std::memory_order_relaxed);
    }
  });

  std::atomic<int> torn{0};
  std::atomic<int> inconsistent{0};
  std::atomic<int> errors{0};
  auto read_many = [&] {
    auto reader = Reader::open(file.path());
    if (!reader.ok()) {
      ++errors;
      return;
    }
    for (int n = 0; n < kSnapshotsPerReader; ++n) {
      auto snap = reader->snapshot();
      if (!snap.ok() || snap->processes.size() != 1) {
        ++errors;
        continue;
      }
      const ProcessSnapshot& p = snap->processes[0];
      if (!p.consistent) {
        ++inconsistent;
        continue;
      }
      const std::uint64_t k = p.ticks;
      bool ok = p.scale_ups == k && p.scale_downs == k / 2 && p.loops.size() == kLoops;
      for (std::size_t i = 0; ok && i < p.loops.size(); ++i) {
        const LoopSnapshot& l = p.loops[i];
        ok = l.handlers == k && l.busy_ns == k * 1000 + i && l.wakeups == k + 1 &&
             l.cpu_ns == k * 10 && l.index == i;
      }
      if (!ok) ++torn;
    }
  };
  std::thread r1(read_many), r2(read_many);
  r1.join();
  r2.join();
  done = true;
  writer.join();

  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GT(published.load(), 1000u) << "the writer must really race the readers";
  // A reader may give up on a segment only if the writer never paused for
  // 10000 attempts; that is not a torn read, but it should be rare.
  EXPECT_LT(inconsistent.load(), kSnapshotsPerReader / 10);
}

}  // namespace
}  // namespace loopscale::shm
