// Test helpers for the shared-memory metrics: a private file path that is
// removed afterwards, and pool figures with recognizable values.

#ifndef LOOPSCALE_TESTS_SUPPORT_SHM_FILE_HPP_
#define LOOPSCALE_TESTS_SUPPORT_SHM_FILE_HPP_

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "loopscale/config.hpp"
#include "loopscale/pool_stats.hpp"

namespace loopscale::testing {

// A path under /dev/shm unique to this process and call; the file (and a
// symlink or directory a test put there) is removed on destruction.
class TempShmPath {
 public:
  TempShmPath() {
    static std::atomic<int> counter{0};
    path_ = "/dev/shm/loopscale-test-" + std::to_string(getpid()) + "-" +
            std::to_string(counter++);
    std::filesystem::remove_all(path_);
  }
  ~TempShmPath() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

  MetricsConfig config(std::string service) const {
    MetricsConfig c;
    c.enabled = true;
    c.shm_path = path_;
    c.service = std::move(service);
    return c;
  }

  // The file's bytes, 8-aligned.
  std::vector<std::uint64_t> words() const {
    std::ifstream in(path_, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)),
                      std::istreambuf_iterator<char>());
    std::vector<std::uint64_t> out((bytes.size() + 7) / 8, 0);
    std::copy(bytes.begin(), bytes.end(), reinterpret_cast<char*>(out.data()));
    return out;
  }

 private:
  std::string path_;
};

// Figures where every loop i of a pool published at step k reads
// handlers = k, busy = k * 1000 + i, utilization = (i % 4) / 4.0, so a reader
// can tell which publish a value came from. Job types: "parse" k * 100 + i
// ns busy, k entries; "work" k * 200 ns, 2k entries; "other" the rest.
inline PoolStats stats_at(std::string name, std::size_t loops, std::uint64_t k) {
  PoolStats s;
  s.name = std::move(name);
  s.size = loops;
  s.active_count = loops / 2;
  s.min_loops = 1;
  s.max_loops = loops;
  s.ticks = k;
  s.scale_ups = k;
  s.scale_downs = k / 2;
  s.moves_requested = 3 * k;
  for (std::size_t b = 0; b < s.lag_histogram.cumulative.size(); ++b) {
    s.lag_histogram.cumulative[b] = k + b;
  }
  s.lag_histogram.count = k + 10;
  s.lag_histogram.sum = std::chrono::nanoseconds(k * 11);
  s.job_types = {"other", "parse", "work"};
  for (std::size_t i = 0; i < loops; ++i) {
    LoopStats l;
    l.index = i;
    l.state = i < loops / 2 ? LoopState::kActive : LoopState::kSuspended;
    l.utilization = static_cast<double>(i % 4) / 4.0;
    l.busy = std::chrono::nanoseconds(k * 1000 + i);
    l.handlers = k;
    l.wakeups = k + 1;
    l.registrations = i;
    l.suspensions = k;
    l.resumes = k;
    l.cpu_time = std::chrono::nanoseconds(k * 10);
    l.scheduling_lag = std::chrono::nanoseconds(k * 7);
    l.moves_in = k + 2;
    l.moves_out = k + 3;
    l.moves_failed = i;
    l.active_time = std::chrono::nanoseconds(k * 13 + i);
    l.registrations_total = k + i + 4;
    const std::chrono::nanoseconds parse(k * 100 + i), work(k * 200);
    l.jobs = {{l.busy - parse - work, 0}, {parse, k}, {work, 2 * k}};
    s.loops.push_back(l);
  }
  return s;
}

}  // namespace loopscale::testing

#endif  // LOOPSCALE_TESTS_SUPPORT_SHM_FILE_HPP_
