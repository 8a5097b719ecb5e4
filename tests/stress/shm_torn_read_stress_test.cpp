// A writer publishes while readers snapshot the same file through their own
// descriptors. Every publish k writes k into every loop of the pool
// (handlers = k, busy = k * 1000 + i) and into the pool's figures
// (ticks = scale_ups = k), so a snapshot that mixed two publishes breaks the
// invariant. Run under TSan too: all accesses to the mapping are atomic.
//
// The race is made, not hoped for, and the run is bounded by rounds, not by
// time. In each round the writer publishes once per snapshot a reader starts,
// so that publishes land inside snapshots, until readers have reported
// kRacedPerRound consistent snapshots during which a publish completed (the
// case the seqlock and the double copy exist for). Then it stops until every
// reader has taken a snapshot that started after it stopped (which must be
// consistent: nothing is being written). Publishing flat out instead leaves
// readers mostly giving up, the more so the slower the machine. Each phase
// ends on a condition that any scheduling eventually meets; the deadline only
// turns a bug into a failure instead of a hang.

#include <gtest/gtest.h>

#include <array>
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
  constexpr int kRounds = 50;
  constexpr int kReaders = 2;
  constexpr int kRacedPerRound = 20;
  TempShmPath file;
  auto pub = Publisher::attach(file.config("stress"), "p", kLoops);
  ASSERT_TRUE(pub.ok()) << pub.status();
  (*pub)->publish(stats_at("p", kLoops, 0));

  // Precomputed figures, so the writer spends its time in publish().
  std::vector<PoolStats> steps;
  for (std::uint64_t k = 1; k <= 64; ++k) steps.push_back(stats_at("p", kLoops, k));

  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> published{0};
  // The round the writer is paused in (-1: publishing).
  std::atomic<int> paused_round{-1};
  // Per reader: the last round whose pause a consistent snapshot fell in.
  std::array<std::atomic<int>, kReaders> quiet_seen{};
  for (auto& q : quiet_seen) q = -1;
  std::atomic<int> overlapped_consistent{0};  // this round's, reset by the writer
  std::atomic<std::uint64_t> starts{0};       // snapshots begun

  std::atomic<int> torn{0}, errors{0}, checked{0}, given_up{0}, raced{0};
  auto read_many = [&](int me) {
    auto reader = Reader::open(file.path());
    if (!reader.ok()) {
      ++errors;
      return;
    }
    while (!done.load()) {
      const int pause = paused_round.load();
      starts.fetch_add(1);
      const std::uint64_t before = published.load();
      auto snap = reader->snapshot();
      const bool overlapped = published.load() != before;
      if (!snap.ok() || snap->processes.size() != 1) {
        ++errors;
        continue;
      }
      const ProcessSnapshot& p = snap->processes[0];
      if (!p.consistent) {
        ++given_up;  // the writer held the seqlock through every attempt
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
      ++checked;
      if (overlapped) {
        ++raced;
        ++overlapped_consistent;
      }
      if (pause >= 0) quiet_seen[me] = pause;
    }
  };

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  auto late = [&] { return std::chrono::steady_clock::now() > deadline; };
  std::string stuck;
  std::thread writer([&] {
    std::uint64_t k = 0;
    for (int round = 0; round < kRounds && stuck.empty(); ++round) {
      overlapped_consistent = 0;
      paused_round = -1;
      while (overlapped_consistent.load() < kRacedPerRound && !late()) {
        const std::uint64_t begun = starts.load();
        (*pub)->publish(steps[k++ % steps.size()]);
        published.fetch_add(1);
        while (starts.load() == begun && overlapped_consistent.load() < kRacedPerRound &&
               !late()) {
          std::this_thread::yield();
        }
      }
      paused_round = round;
      auto quiet = [&] {
        for (auto& q : quiet_seen) {
          if (q.load() < round) return false;
        }
        return true;
      };
      while (!quiet() && !late()) std::this_thread::yield();
      if (late()) stuck = "the deadline passed in round " + std::to_string(round);
    }
    done = true;
  });
  std::thread r0(read_many, 0), r1(read_many, 1);
  writer.join();
  r0.join();
  r1.join();

  EXPECT_EQ(stuck, "");
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(errors.load(), 0);
  // Forced by the rounds: each had a consistent snapshot across publishes and
  // one per reader in the pause after it.
  EXPECT_GE(raced.load(), kRounds * kRacedPerRound);
  EXPECT_GE(checked.load(), kRounds * (1 + kReaders));
  std::printf("%d snapshots checked (%d across publishes), %d given up, %llu publishes\n",
              checked.load(), raced.load(), given_up.load(),
              static_cast<unsigned long long>(published.load()));
}

}  // namespace
}  // namespace loopscale::shm
