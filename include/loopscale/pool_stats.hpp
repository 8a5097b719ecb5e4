// -----------------------------------------------------------------------------
// pool_stats.hpp
// -----------------------------------------------------------------------------
//
// `PoolStats` and `LoopStats`: a pool's figures at one instant, as returned
// by `LoopPool::stats()` and written to shared memory by `shm::Publisher`.
// Plain values; counters are monotonic since the loop was created (readers
// take deltas), `utilization` is the monitor's last window.

#ifndef LOOPSCALE_POOL_STATS_HPP_
#define LOOPSCALE_POOL_STATS_HPP_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "loopscale/config.hpp"
#include "loopscale/job_type.hpp"
#include "loopscale/lag_histogram.hpp"
#include "loopscale/loop_state.hpp"
#include "loopscale/scaling_policy.hpp"

namespace loopscale {

// One job type's figures on one loop (job_type.hpp).
struct JobStats {
  // Busy time spent in the job, the part in progress included.
  std::chrono::nanoseconds busy{0};
  // Times the job was entered (`JobScope`s, `bind_job` handlers).
  std::uint64_t count = 0;
};

// One loop's figures in `PoolStats`.
struct LoopStats {
  std::size_t index = 0;
  LoopState state = LoopState::kSuspended;
  // Utilization in the monitor's last window.
  double utilization = 0.0;
  // Monotonic totals since the loop was created.
  std::chrono::nanoseconds busy{0};
  std::uint64_t handlers = 0;
  std::uint64_t wakeups = 0;
  // Connections open on the loop, and registrations ever made on it
  // (`EventLoop::registrations_total()`).
  std::size_t registrations = 0;
  std::uint64_t registrations_total = 0;
  // Time the loop was active (taking new work), counted by the monitor a
  // window at a time (`MonitorStats::active_time`).
  std::chrono::nanoseconds active_time{0};
  std::uint64_t suspensions = 0;
  std::uint64_t resumes = 0;
  // CPU time of the loop's threads (user + system), every thread it had.
  std::chrono::nanoseconds cpu_time{0};
  // How long the monitor's last probe waited before the loop ran it (or has
  // waited so far): the delay new work sees. Zero while suspended.
  std::chrono::nanoseconds scheduling_lag{0};
  // Connections that moved here from another loop, left for another, or
  // were asked to leave and could not (loopscale/session.hpp).
  std::uint64_t moves_in = 0;
  std::uint64_t moves_out = 0;
  std::uint64_t moves_failed = 0;
  // Busy time and count by job type id, as `PoolStats::job_types` names
  // them; [0] is "other". Read with `busy` in one reading: their busy
  // times add up to it.
  std::vector<JobStats> jobs;
};

// A pool's figures at one instant.
struct PoolStats {
  std::string name;
  std::vector<LoopStats> loops;
  std::size_t size = 0;
  std::size_t active_count = 0;
  // The bounds in force: min(min_loops, max) and min(max_loops or all, size).
  std::size_t min_loops = 0;
  std::size_t max_loops = 0;
  std::uint64_t ticks = 0;
  std::uint64_t scale_ups = 0;
  std::uint64_t scale_downs = 0;
  // Connections the monitor asked to move, summed over its ticks.
  std::uint64_t moves_requested = 0;
  // The scheduling lags the monitor read (`MonitorStats::lag_histogram`).
  LagHistogram lag_histogram;
  // The last decision that acted or held an action.
  ScaleDecision last_decision;
  // Overload (loopscale/overload.hpp): the level in force (0 to 1), the
  // requests servers refused (`Admission::admit`), and how many times
  // shedding began.
  double overload_level = 0.0;
  std::uint64_t overload_refused = 0;
  std::uint64_t overload_episodes = 0;
  // The scaling configuration in force (retuned by `update_config()`).
  ScalingConfig scaling;
  // With `max_loops` 0 the pool has one loop per CPU the process can use
  // (loopscale/cpu_limit.hpp): what made that fewer than the machine's
  // online CPUs (an affinity mask, a cgroup quota); empty otherwise.
  std::string size_limited_by;
  // The job types registered in the process, by id ([0] is "other"): the
  // names of `LoopStats::jobs`.
  std::vector<std::string> job_types;
};

}  // namespace loopscale

#endif  // LOOPSCALE_POOL_STATS_HPP_
