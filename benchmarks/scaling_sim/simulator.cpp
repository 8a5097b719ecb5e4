#include "simulator.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "loopscale/chooser.hpp"
#include "loopscale/utilization_monitor.hpp"
#include "netty_policy.hpp"
#include "sim_loop.hpp"

namespace loopscale::sim {
namespace {

constexpr Policy kPolicies[] = {Policy::kNetty,  Policy::kPerLoop,
                                Policy::kAverage, Policy::kTarget,
                                Policy::kConfig,  Policy::kOracle};

// Queueing delays are binned by the millisecond up to this many seconds.
constexpr double kMaxDelay = 300.0;
constexpr double kDelayBin = 0.001;
// Work queued below this (loop-seconds) is rounding, not overload.
constexpr double kQueuedEpsilon = 1e-6;

std::size_t bounded(double loops, const ScalingConfig& c, std::size_t n) {
  const auto [lo, hi] = active_bounds(c, n);
  const double raw = std::ceil(loops - 1e-9);
  const std::size_t k = raw <= 0 ? 0 : static_cast<std::size_t>(raw);
  return std::clamp(k, lo, hi);
}

std::size_t oracle_level(double demand, const ScalingConfig& c,
                         std::size_t n) {
  return bounded(demand / kOracleUtilization, c, n);
}

// Work-weighted delay histogram.
class DelayHistogram {
 public:
  DelayHistogram()
      : bins_(static_cast<std::size_t>(kMaxDelay / kDelayBin) + 1, 0.0) {}
  void add(double delay, double weight) {
    if (weight <= 0) return;
    const auto bin = static_cast<std::size_t>(
        std::min(delay, kMaxDelay) / kDelayBin);
    bins_[bin] += weight;
    total_ += weight;
  }
  double percentile(double p) const {
    double seen = 0;
    for (std::size_t i = 0; i < bins_.size(); ++i) {
      seen += bins_[i];
      if (seen >= p * total_ && total_ > 0) return (i + 1) * kDelayBin;
    }
    return 0.0;
  }

 private:
  std::vector<double> bins_;
  double total_ = 0;
};

// The policy under test, behind one interface.
class Driver {
 public:
  Driver(Policy policy, std::vector<SimLoop>& loops, const SimOptions& o)
      : policy_(policy), loops_(loops), options_(o) {
    std::vector<SimLoop*> ptrs;
    for (SimLoop& l : loops) ptrs.push_back(&l);
    ScalingConfig c = o.config;
    if (policy == Policy::kPerLoop) c.signal = ScaleSignal::kPerLoop;
    if (policy == Policy::kAverage) c.signal = ScaleSignal::kAverage;
    if (policy == Policy::kTarget) c.signal = ScaleSignal::kTarget;
    if (policy == Policy::kNetty) {
      netty_.emplace(ptrs, c);
    } else if (policy != Policy::kOracle) {
      chooser_ = std::make_unique<AutoScalingChooser<SimLoop>>(ptrs, c);
      monitor_ = std::make_unique<UtilizationMonitor<SimLoop>>(*chooser_, c);
      monitor_->tick(Clock::time_point{});
    }
    refresh();
  }

  // Ends a window at `now`: +1 woke loops, -1 suspended or drained, 0 none.
  int tick(double now) {
    int dir = 0;
    if (netty_) {
      dir = netty_->tick(now);
    } else if (monitor_) {
      const ScaleDecision d = monitor_->tick(
          Clock::time_point{} + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(now)));
      if (!d.wake.empty()) dir = 1;
      if (!d.suspend.empty() || !d.drain.empty()) dir = -1;
      reason_ = d.reason;
    }
    refresh();
    return dir;
  }

  // The oracle resizes at every step.
  void oracle(double demand) {
    if (policy_ != Policy::kOracle) return;
    const std::size_t level =
        oracle_level(demand, options_.config, loops_.size());
    for (std::size_t i = 0; i < loops_.size(); ++i) {
      loops_[i].suspended = i >= level;
    }
    refresh();
  }

  const std::vector<std::size_t>& active() const { return active_; }
  // Why the last tick acted (our policies only).
  const std::string& reason() const { return reason_; }

 private:
  void refresh() {
    if (netty_) {
      active_ = netty_->active();
    } else if (chooser_) {
      active_ = chooser_->active();
    } else {
      active_.clear();
      for (std::size_t i = 0; i < loops_.size(); ++i) {
        if (!loops_[i].suspended) active_.push_back(i);
      }
    }
  }

  Policy policy_;
  std::vector<SimLoop>& loops_;
  const SimOptions& options_;
  std::optional<NettyPolicy> netty_;
  std::unique_ptr<AutoScalingChooser<SimLoop>> chooser_;
  std::unique_ptr<UtilizationMonitor<SimLoop>> monitor_;
  std::vector<std::size_t> active_;
  std::string reason_;
};

// Moves the connections the monitor asked to leave (SimLoop::move_quota),
// each to the active loop holding the fewest, as sessions do
// (LoopPool::rebalance_target: only where that evens the counts out, or off
// a loop out of rotation). A move costs the loop it leaves `cost` of work.
// Returns the number of moves.
int move_connections(std::vector<SimLoop>& loops,
                     const std::vector<std::size_t>& active, double cost) {
  int moves = 0;
  for (std::size_t i = 0; i < loops.size(); ++i) {
    SimLoop& from = loops[i];
    const bool in_rotation =
        std::find(active.begin(), active.end(), i) != active.end();
    while (from.move_quota > 0 && from.connections > 0) {
      SimLoop* to = nullptr;
      for (std::size_t j : active) {
        if (j != i && (to == nullptr || loops[j].connections < to->connections)) {
          to = &loops[j];
        }
      }
      if (to == nullptr || (in_rotation && to->connections + 2 > from.connections)) {
        break;
      }
      --from.move_quota;
      --from.connections;
      ++to->connections;
      from.arrive(cost);
      ++moves;
    }
  }
  return moves;
}

}  // namespace

std::string_view to_string(Policy policy) {
  switch (policy) {
    case Policy::kNetty:
      return "netty";
    case Policy::kPerLoop:
      return "per_loop";
    case Policy::kAverage:
      return "average";
    case Policy::kTarget:
      return "target";
    case Policy::kConfig:
      return "config";
    case Policy::kOracle:
      return "oracle";
  }
  return "unknown";
}

absl::StatusOr<Policy> parse_policy(std::string_view name) {
  for (Policy p : kPolicies) {
    if (to_string(p) == name) return p;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown policy \"", std::string(name),
      "\"; expected netty, per_loop, average, target, config or oracle"));
}

SimOptions default_options() {
  SimOptions o;
  o.config.min_loops = 1;
  o.config.max_loops = 8;
  o.config.window = std::chrono::milliseconds(500);
  o.config.scale_down_threshold = 0.25;
  o.config.scale_up_threshold = 0.75;
  o.config.patience_cycles = 3;
  return o;
}

SimResult simulate(const Trace& trace, Policy policy,
                   const SimOptions& options) {
  const ScalingConfig& c = options.config;
  const std::size_t n = options.loops;
  const double window = std::chrono::duration<double>(c.window).count();
  const double dt = options.dt;

  // Start at the oracle's level for the first demand, as a pool that has
  // been running a while would be.
  std::vector<SimLoop> loops(n);
  const std::size_t start = oracle_level(trace.demand(0), c, n);
  for (std::size_t i = 0; i < n; ++i) loops[i].suspended = i >= start;
  // The oracle spreads work ideally; everyone else serves connections where
  // they are.
  const bool pinned = trace.connections > 0 && policy != Policy::kOracle;
  if (pinned) {
    for (std::size_t k = 0; k < trace.connections; ++k) {
      ++loops[k % std::max<std::size_t>(start, 1)].connections;
    }
  }
  Driver driver(policy, loops, options);
  std::mt19937_64 rng(options.seed);
  std::normal_distribution<double> noise(0.0, options.noise);
  DelayHistogram delays;

  SimResult r;
  r.trace = trace.name;
  r.policy = policy;
  struct Action {
    int window;
    int dir;
  };
  std::vector<Action> actions;
  for (double e : trace.edges) {
    r.edges.push_back(EdgeReaction{e, trace.demand(e - dt / 2),
                                   trace.demand(e + dt / 2), -1, -1});
  }

  const auto steps = static_cast<std::int64_t>(std::llround(trace.duration / dt));
  const auto steps_per_window = static_cast<std::int64_t>(std::llround(window / dt));
  std::vector<double> weight(n, 1.0);
  for (std::size_t i = 0; i < n; ++i) {
    weight[i] = 1.0 + (i % 2 == 0 ? options.imbalance : -options.imbalance);
  }

  for (std::int64_t k = 0; k < steps; ++k) {
    const double t = static_cast<double>(k) * dt;
    const double demand = trace.demand(t);
    driver.oracle(demand);
    for (SimLoop& l : loops) l.now = t;

    const std::vector<std::size_t>& active = driver.active();
    if (pinned) {
      const int moved = move_connections(loops, active, options.move_cost);
      r.moves += moved;
      r.work_arrived += moved * options.move_cost;  // the moves' own work
      const double per_connection =
          demand * dt / static_cast<double>(trace.connections);
      for (SimLoop& l : loops) {
        const double share = per_connection * static_cast<double>(l.connections);
        delays.add(l.arrive(share), share);
        r.work_arrived += share;
      }
    } else {
      double total_weight = 0;
      for (std::size_t i : active) total_weight += weight[i];
      for (std::size_t i : active) {
        const double share = demand * dt * weight[i] / total_weight;
        delays.add(loops[i].arrive(share), share);
        r.work_arrived += share;
      }
    }
    double queued = 0;
    std::size_t running = 0;
    for (SimLoop& l : loops) {
      l.work(dt);
      queued += l.queue;
      running += l.running() ? 1 : 0;
    }
    r.loop_seconds += dt * static_cast<double>(running);
    r.oracle_loop_seconds +=
        dt * static_cast<double>(oracle_level(demand, c, n));
    r.peak_queued = std::max(r.peak_queued, queued);
    if (queued > kQueuedEpsilon) r.overload_seconds += dt;

    if ((k + 1) % steps_per_window != 0) continue;
    // A window ends.
    const double now = static_cast<double>(k + 1) * dt;
    const int w = static_cast<int>((k + 1) / steps_per_window);
    for (SimLoop& l : loops) {
      l.now = now;
      if (options.noise > 0) l.noise += noise(rng) * window;
    }
    const std::size_t active_before = driver.active().size();
    const int dir = driver.tick(now);
    const std::size_t n_active = driver.active().size();
    if (options.log && dir != 0) {
      r.log.push_back(absl::StrFormat("t=%.1fs w=%d d=%.2f %s %u->%u: %s", now,
                                      w, demand, dir > 0 ? "up" : "down",
                                      active_before, n_active,
                                      driver.reason()));
    }
    r.active_per_window.push_back(n_active);
    if (dir != 0) {
      ++r.scale_actions;
      if (!actions.empty() && actions.back().dir == -dir &&
          w - actions.back().window <= kFlapWindows) {
        ++r.flaps;
      }
      actions.push_back({w, dir});
    }
    for (std::size_t e = 0; e < r.edges.size(); ++e) {
      EdgeReaction& edge = r.edges[e];
      const double next = e + 1 < r.edges.size() ? r.edges[e + 1].at
                                                  : trace.duration;
      if (now <= edge.at || now > next) continue;
      const int since = static_cast<int>(std::ceil((now - edge.at) / window - 1e-9));
      const bool up = edge.after > edge.before;
      if (edge.first_reaction < 0 && dir == (up ? 1 : -1)) {
        edge.first_reaction = since;
      }
      if (edge.needed_level < 0) {
        std::size_t serving = n_active;
        if (pinned) {
          serving = 0;
          for (std::size_t i : driver.active()) {
            serving += loops[i].connections > 0 ? 1 : 0;
          }
        }
        const bool reached =
            up ? serving >= bounded(edge.after, c, n)
               : n_active <= oracle_level(edge.after, c, n);
        if (reached) edge.needed_level = since;
      }
    }
  }
  for (const SimLoop& l : loops) {
    r.work_done += l.busy;
    r.queued_at_end += l.queue;
  }
  r.ratio = r.oracle_loop_seconds > 0 ? r.loop_seconds / r.oracle_loop_seconds
                                      : 0.0;
  r.p99_delay = delays.percentile(0.99);
  return r;
}

}  // namespace loopscale::sim
