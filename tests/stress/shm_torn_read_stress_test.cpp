// A writer publishes as fast as it can while readers snapshot the same file
// through their own mappings. Every publish k writes k into every loop of the
// pool (handlers = k, busy = k * 1000 + i) and into the pool's figures
// (ticks = scale_ups = k), so a snapshot that mixed two publishes breaks the
// invariant. Run under TSan too: all accesses to the mapping are atomic.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
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
  std::atomic<int> checked{0};
  // Readers go on until each has checked kSnapshotsPerReader consistent
  // snapshots *and* the writer has published kMinPublishes times meanwhile:
  // the race is made, not hoped for. (A snapshot a reader gives up on, the
  // writer holding the seqlock for all its attempts, say while preempted
  // mid-write, is not torn: it is counted, and does not count as checked.)
  constexpr std::uint64_t kMinPublishes = 2000;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  auto read_many = [&] {
    auto reader = Reader::open(file.path());
    if (!reader.ok()) {
      ++errors;
      return;
    }
    int mine = 0;
    const std::uint64_t start = published.load();
    while ((mine < kSnapshotsPerReader || published.load() < start + kMinPublishes) &&
           std::chrono::steady_clock::now() < deadline) {
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
      ++mine;
      ++checked;
    }
  };
  std::thread r1(read_many), r2(read_many);
  r1.join();
  r2.join();
  done = true;
  writer.join();

  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GE(checked.load(), 2 * kSnapshotsPerReader) << "the deadline passed";
  EXPECT_GE(published.load(), kMinPublishes);
  std::printf("%d snapshots checked, %d given up, %llu publishes\n", checked.load(),
              inconsistent.load(), static_cast<unsigned long long>(published.load()));
}

}  // namespace
}  // namespace loopscale::shm
