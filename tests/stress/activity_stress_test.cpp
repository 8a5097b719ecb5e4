// A writer hammers an ActivityRecorder with slices on a synthetic clock whose
// figures are predictable from the wake-up count; readers check that every
// snapshot matches that prediction exactly. A torn read (busy total from one
// slice, flag or start from another) breaks the equation.

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <thread>
#include <vector>

#include "loopscale/activity.hpp"

namespace loopscale {
namespace {

using namespace std::chrono_literals;

// Slice k is busy over [2k, 2k+1) microseconds-units and idle over [2k+1, 2k+2).
constexpr std::int64_t kUnitNs = 1000;

Clock::time_point at(std::int64_t units) { return from_ns(units * kUnitNs); }

TEST(ActivityStressTest, SnapshotsAreNeverTorn) {
  ActivityRecorder rec;
  constexpr std::int64_t kSlices = 2'000'000;
  constexpr int kReaders = 2;
  std::atomic<bool> done{false};
  std::atomic<std::int64_t> checked{0};
  std::atomic<std::int64_t> bad{0};
  // The overlap is forced, not hoped for: the writer starts once every
  // reader is reading, and halfway through it waits until readers have
  // taken snapshots of the half-written recorder.
  std::latch readers_running(kReaders);
  std::thread writer([&] {
    readers_running.wait();
    for (std::int64_t k = 0; k < kSlices; ++k) {
      if (k == kSlices / 2) {
        const std::int64_t seen = checked.load();
        while (checked.load() < seen + 2 * kReaders) std::this_thread::yield();
      }
      rec.mark_busy(at(2 * k));
      rec.count_handler();
      rec.mark_idle(at(2 * k + 1));
    }
    done = true;
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&] {
      const Clock::time_point now = at(4 * kSlices);  // after every slice
      std::uint64_t last_wakeups = 0;
      bool first = true;
      while (!done) {
        const auto s = rec.snapshot(now);
        const auto w = static_cast<std::int64_t>(s.wakeups);
        std::int64_t expected_ns = 0;
        if (s.busy_now) {
          // w - 1 closed slices, plus the open one from 2(w-1) to now.
          expected_ns = (w - 1) * kUnitNs + (4 * kSlices - 2 * (w - 1)) * kUnitNs;
        } else {
          expected_ns = w * kUnitNs;
        }
        if (s.busy.count() != expected_ns || s.wakeups < last_wakeups) {
          bad.fetch_add(1);
        }
        last_wakeups = s.wakeups;
        checked.fetch_add(1);
        if (first) readers_running.count_down();
        first = false;
      }
    });
  }
  writer.join();
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0) << "of " << checked.load() << " snapshots";
  EXPECT_GE(checked.load(), 3 * kReaders);
  const auto final_snapshot = rec.snapshot(at(4 * kSlices));
  EXPECT_EQ(final_snapshot.busy.count(), kSlices * kUnitNs);
  EXPECT_EQ(final_snapshot.handlers, static_cast<std::uint64_t>(kSlices));
}

}  // namespace
}  // namespace loopscale
