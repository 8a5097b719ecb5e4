// The scaling simulator: runs a load trace through a scaling policy in
// virtual time and measures what users pay for it (loop-seconds against an
// oracle) and what they suffer (queued work, queueing delay, flapping, slow
// reactions).
//
//   SimOptions options = default_options();   // min 1, max 8, window 0.5 s
//   SimResult r = simulate(*find_trace("step"), Policy::kTarget, options);
//   std::cout << r.ratio << "\n";              // loop-seconds / oracle's
//
// The model (sim_loop.hpp has the loop): every `dt` the trace's demand (in
// loop-units) is split across the active loops by the chooser (equal shares,
// or skewed by `imbalance`), or, for a trace of long-lived connections,
// across the loops by the connections they hold (moved by the pool's
// requests, as sessions move); each loop does at most one unit per second, and
// the rest queues on that loop and is worked off later. Our policies run in
// the real `UtilizationMonitor` and `AutoScalingChooser` over `SimLoop`s,
// ticked at every window of virtual time; Netty's in `NettyPolicy`; the
// oracle sets the active count to ceil(demand / 0.75) at every instant.
//
// Deterministic: the same trace, policy and options always give the same
// result (noise comes from a seeded generator).

#ifndef LOOPSCALE_BENCHMARKS_SCALING_SIM_SIMULATOR_HPP_
#define LOOPSCALE_BENCHMARKS_SCALING_SIM_SIMULATOR_HPP_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "loopscale/config.hpp"
#include "trace.hpp"

namespace loopscale::sim {

enum class Policy {
  kNetty,     // Netty 4.2's rules (netty_policy.hpp)
  kPerLoop,   // ScalingPolicy, ScaleSignal::kPerLoop
  kAverage,   // ScalingPolicy, ScaleSignal::kAverage
  kTarget,    // ScalingPolicy, ScaleSignal::kTarget
  kConfig,    // ScalingPolicy with the options' signal as given
  kOracle,    // ceil(demand / kOracleUtilization) loops at every instant
};

// "netty", "per_loop", "average", "target", "config", "oracle".
std::string_view to_string(Policy policy);
absl::StatusOr<Policy> parse_policy(std::string_view name);

// The utilization the oracle runs every loop at.
inline constexpr double kOracleUtilization = 0.75;

struct SimOptions {
  ScalingConfig config;
  // Executors in the pool (max_loops bounds the active ones).
  std::size_t loops = 8;
  // Simulation step, seconds.
  double dt = 0.005;
  // 0: the chooser's equal shares. x in (0, 1): even-indexed loops get
  // 1 + x shares and odd-indexed 1 - x (what a few heavy connections do).
  double imbalance = 0.0;
  // Standard deviation of the error on each window's measured utilization.
  double noise = 0.0;
  std::uint64_t seed = 1;
  // Keep one line per action in SimResult::log.
  bool log = false;
  // Work one connection move costs the loop it leaves, loop-seconds
  // (benchmarks/loop_bench measures a real move: tens of microseconds).
  double move_cost = 0.0001;
};

// The fluid model: min 1, max 8, window 0.5 s, thresholds
// 0.25/0.75, patience 3, the other knobs at their defaults.
SimOptions default_options();

// The reaction to one edge of a trace, in windows after the edge; -1 when it
// did not happen before the next edge (or the end).
struct EdgeReaction {
  double at = 0.0;
  double before = 0.0;
  double after = 0.0;
  // First action in the edge's direction.
  int first_reaction = -1;
  // Up: active loops >= ceil(after) (enough capacity; with long-lived
  // connections, active loops that hold some: capacity in use). Down:
  // active loops <= the oracle's level.
  int needed_level = -1;
};

struct SimResult {
  std::string trace;
  Policy policy = Policy::kTarget;
  // Seconds of loops holding a thread (active, draining or finishing their
  // queue), and the oracle's.
  double loop_seconds = 0.0;
  double oracle_loop_seconds = 0.0;
  double ratio = 0.0;
  // Seconds during which some work waited in a queue.
  double overload_seconds = 0.0;
  // Most work queued at once, loop-seconds.
  double peak_queued = 0.0;
  // 99th percentile of the time work waited before it ran, seconds
  // (weighted by work).
  double p99_delay = 0.0;
  // Work that arrived, work done, and work still queued at the end
  // (loop-seconds): arrived == done + queued, nothing is lost.
  double work_arrived = 0.0;
  double work_done = 0.0;
  double queued_at_end = 0.0;
  // Ticks that woke or suspended/drained loops.
  int scale_actions = 0;
  // Connections moved between loops (traces with connections).
  int moves = 0;
  // Actions that reversed the previous one within kFlapWindows windows.
  int flaps = 0;
  std::vector<EdgeReaction> edges;
  // Active loops after each window, for plots and tests.
  std::vector<std::size_t> active_per_window;
  // With SimOptions::log: "t=20.5s w=41 up 1->5: <the decision's reason>".
  std::vector<std::string> log;
};

// Opposite actions this close (in windows) are a flap.
inline constexpr int kFlapWindows = 4;

SimResult simulate(const Trace& trace, Policy policy,
                   const SimOptions& options);

}  // namespace loopscale::sim

#endif  // LOOPSCALE_BENCHMARKS_SCALING_SIM_SIMULATOR_HPP_
