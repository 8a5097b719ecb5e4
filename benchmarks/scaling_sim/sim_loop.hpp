// One event loop of the scaling simulator, as a fluid: work arrives in
// loop-seconds, queues in FIFO order, and is done at one loop-second per
// second while the loop holds a thread. `SimLoop` models ScalableExecutor and
// LagReportingExecutor, so the real `UtilizationMonitor` drives it.
//
// What it models, and what it leaves out:
//   * A loop holds a thread while it is not suspended, and while it still has
//     queued work after accepting to suspend (a suspending loop finishes its
//     queue, as an `EventLoop` does).
//   * Long-lived connections (traces with `connections`): a loop holds a
//     count of them; its work is theirs, and `try_suspend()` refuses while
//     it holds any. `request_moves()` (RebalancingExecutor) records how many
//     the monitor wants gone; the simulator moves them, one step later at
//     the latest, each at a cost in work on the loop it leaves.
//   * `scheduling_lag()` is a probe, as in `EventLoop`: it is posted behind
//     the queue at one tick and read at the next, so a queue that builds up
//     within a window shows only a window later, and a probe still waiting
//     reads its age so far.
//   * Measurement noise is added to the busy time the monitor reads (never
//     to the work done), as a seeded normal error on each window's
//     utilization.
// Not modelled: handler granularity (work is a fluid; request_sim.hpp models
// requests on connections), the cost of waking a thread, and work stealing
// (there is none in Asio either).
//
// Thread-safety: none; the simulator is single-threaded.

#ifndef LOOPSCALE_BENCHMARKS_SCALING_SIM_SIM_LOOP_HPP_
#define LOOPSCALE_BENCHMARKS_SCALING_SIM_SIM_LOOP_HPP_

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <limits>

#include "loopscale/chooser.hpp"
#include "loopscale/utilization_monitor.hpp"

namespace loopscale::sim {

inline std::chrono::nanoseconds to_ns(double seconds) {
  return std::chrono::nanoseconds(static_cast<std::int64_t>(seconds * 1e9));
}

struct SimLoop {
  // --- model state, driven by the simulator ---
  // Virtual time of the simulator, seconds.
  double now = 0.0;
  // Queued work, loop-seconds.
  double queue = 0.0;
  // Work done so far, loop-seconds.
  double busy = 0.0;
  // Accumulated measurement error added to what busy_time() reports.
  double noise = 0.0;
  bool suspended = false;
  // Long-lived connections held, and how many the monitor asked to leave.
  std::size_t connections = 0;
  std::size_t move_quota = 0;
  // The probe in flight: posted at `probe_at` behind `probe_ahead` of work.
  bool probe_pending = false;
  double probe_at = 0.0;
  double probe_ahead = 0.0;
  double last_lag = 0.0;

  // True while the loop holds a thread.
  bool running() const { return !suspended || queue > 0.0; }

  // Takes `amount` loop-seconds of new work; returns how long it will wait.
  double arrive(double amount) {
    const double wait = queue;
    queue += amount;
    return wait;
  }

  // Works for `dt` seconds if it holds a thread.
  void work(double dt) {
    if (!running()) return;
    const double done = std::min(queue, dt);
    queue -= done;
    busy += done;
  }

  // --- ScalableExecutor ---
  std::chrono::nanoseconds busy_time() const {
    return to_ns(std::max(0.0, busy + noise));
  }
  bool try_suspend() {
    if (registrations() > 0) return false;
    suspended = true;
    return true;
  }
  void resume() { suspended = false; }
  bool is_suspended() const { return suspended; }
  std::size_t registrations() const { return connections; }

  // --- RebalancingExecutor ---
  void request_moves(std::size_t n) { move_quota = n; }

  // --- LagReportingExecutor ---
  std::chrono::nanoseconds scheduling_lag() {
    if (probe_pending) {
      if (probe_at + probe_ahead <= now) {
        last_lag = probe_ahead;  // it ran: it waited for the work ahead
        probe_pending = false;
      } else {
        return to_ns(std::max(last_lag, now - probe_at));  // still waiting
      }
    }
    probe_pending = true;
    probe_at = now;
    probe_ahead = queue;
    return to_ns(last_lag);
  }
};
static_assert(ScalableExecutor<SimLoop>);
static_assert(LagReportingExecutor<SimLoop>);
static_assert(RebalancingExecutor<SimLoop>);

}  // namespace loopscale::sim

#endif  // LOOPSCALE_BENCHMARKS_SCALING_SIM_SIM_LOOP_HPP_
