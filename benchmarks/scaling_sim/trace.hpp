// Load traces for the scaling simulator: demand over time, in loop-units
// (1.0 = one loop's worth of work per second).
//
//   std::vector<Trace> all = builtin_traces();
//   absl::StatusOr<Trace> replay = load_csv_trace("prod.csv");  // time_s,demand
//
// The built-in levels avoid sitting exactly on a threshold (0.45 rather than
// 0.5: half a unit split over two loops would be exactly 0.25), so that a
// policy's behaviour does not hinge on a comparison of equal doubles.

#ifndef LOOPSCALE_BENCHMARKS_SCALING_SIM_TRACE_HPP_
#define LOOPSCALE_BENCHMARKS_SCALING_SIM_TRACE_HPP_

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace loopscale::sim {

struct Trace {
  std::string name;
  std::string description;
  // Seconds of virtual time.
  double duration = 0.0;
  // Demand at time t, in loop-units, >= 0.
  std::function<double(double)> demand;
  // Instants where the demand jumps: the simulator measures the reaction to
  // each.
  std::vector<double> edges;
  // Long-lived connections (0: none; the chooser spreads the demand over the
  // active loops). Otherwise the demand comes from this many connections,
  // evenly, each pinned to a loop until the pool moves it
  // (ScalingConfig::rebalance_connections): a loop's work is its
  // connections' share, and it cannot suspend while it holds any.
  // They connect before the trace starts, spread over the loops active at
  // its start.
  std::size_t connections = 0;
};

// The traces `scaling_sim --all` runs, in table order.
std::vector<Trace> builtin_traces();

// Returns the built-in trace called `name`, or NotFound listing the names.
absl::StatusOr<Trace> find_trace(std::string_view name);

// Reads a CSV of `time_s,demand` rows (a header line is allowed; times
// strictly increasing, from 0; demand >= 0). The demand holds from each row's
// time to the next; the last row ends the trace. Edges are detected where
// the demand changes by at least half a loop. Errors name the file, the line
// and what is wrong.
absl::StatusOr<Trace> load_csv_trace(const std::string& path);

// Parses CSV text as load_csv_trace() does; `source` names it in errors.
absl::StatusOr<Trace> parse_csv_trace(std::string_view text,
                                      std::string_view source);

}  // namespace loopscale::sim

#endif  // LOOPSCALE_BENCHMARKS_SCALING_SIM_TRACE_HPP_
