#include "loopscale/scaling_policy.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace loopscale {
namespace {

// Σu / threshold is compared with whole loop counts; without the slack a sum
// of 1.5 at threshold 0.75 could come out as 2.0000000001 and ask for 3.
constexpr double kCeilSlack = 1e-9;

std::string list(const std::vector<std::size_t>& indices) {
  std::string out;
  for (std::size_t i : indices) absl::StrAppend(&out, out.empty() ? "" : " ", i);
  return out;
}

std::string list_u(const std::vector<std::size_t>& indices,
                   const std::vector<double>& u) {
  std::string out;
  for (std::size_t i : indices) {
    absl::StrAppend(&out, out.empty() ? "" : " ", absl::StrFormat("%.2f", u[i]));
  }
  return out;
}

// "suspend 3 2 drain 1", leaving out an empty part.
std::string leaving(const ScaleDecision& d) {
  std::string out;
  if (!d.suspend.empty()) absl::StrAppend(&out, "suspend ", list(d.suspend));
  if (!d.drain.empty()) {
    absl::StrAppend(&out, out.empty() ? "" : " ", "drain ", list(d.drain));
  }
  return out;
}

}  // namespace

std::string_view to_string(ScaleRule rule) noexcept {
  switch (rule) {
    case ScaleRule::kNone:
      return "none";
    case ScaleRule::kBaseline:
      return "baseline";
    case ScaleRule::kClockSkipped:
      return "clock_skipped";
    case ScaleRule::kScaleUp:
      return "scale_up";
    case ScaleRule::kScaleDown:
      return "scale_down";
    case ScaleRule::kTargetUp:
      return "target_up";
    case ScaleRule::kTargetDown:
      return "target_down";
    case ScaleRule::kFastUp:
      return "fast_up";
    case ScaleRule::kBelowMin:
      return "below_min";
    case ScaleRule::kAboveMax:
      return "above_max";
  }
  return "unknown";
}

std::string_view to_string(HoldReason reason) noexcept {
  switch (reason) {
    case HoldReason::kNone:
      return "none";
    case HoldReason::kCooldown:
      return "cooldown";
    case HoldReason::kScaleUpWon:
      return "scale_up_won";
    case HoldReason::kAtMin:
      return "at_min";
    case HoldReason::kAtMax:
      return "at_max";
    case HoldReason::kVetoed:
      return "vetoed";
  }
  return "unknown";
}

ScalingPolicy::ScalingPolicy(const ScalingConfig& config,
                             std::size_t executors)
    : config_(config), loops_(executors) {
  assert(validate(config).ok());
}

void ScalingPolicy::set_config(const ScalingConfig& config) {
  assert(validate(config).ok());
  config_ = config;
  cooldown_left_ = std::min(cooldown_left_, config.scale_down_cooldown_cycles);
}

std::size_t ScalingPolicy::max_active() const noexcept {
  return active_bounds(config_, loops_.size()).max;
}

std::size_t ScalingPolicy::min_active() const noexcept {
  return active_bounds(config_, loops_.size()).min;
}

void ScalingPolicy::baseline(std::span<const LoopObservation> observations) {
  assert(observations.size() == loops_.size());
  for (std::size_t i = 0; i < loops_.size(); ++i) {
    loops_[i] = Loop{};
    loops_[i].was_active = observations[i].status == ExecutorStatus::kActive;
  }
  mean_busy_ = 0;
  cooldown_left_ = 0;
  target_levels_.clear();
  fast_up_done_ = false;
  fast_up_level_ = 0;
}

ScaleDecision ScalingPolicy::decide(std::span<const LoopObservation> obs) {
  assert(obs.size() == loops_.size());
  ScaleDecision d;
  const Window w = observe(obs, d);
  const bool cooling = cooldown_left_ > 0;
  if (cooling) --cooldown_left_;
  if (w.active.size() < min_active()) {
    wake_below_min(obs, w, d);
  } else if (w.active.size() > max_active()) {
    shed_above_max(obs, w, d);
  } else if (config_.signal == ScaleSignal::kTarget) {
    decide_target(obs, w, cooling, d);
  } else if (!threshold_scale_up(obs, w, d)) {
    threshold_scale_down(obs, w, cooling, d);
  } else {
    note_scale_down_held_by_up(w, d);
  }
  finish(w, d);
  fast_up_done_ = false;
  fast_up_level_ = 0;
  return d;
}

ScaleDecision ScalingPolicy::decide_fast(std::span<const LoopObservation> obs) {
  assert(obs.size() == loops_.size());
  const ScalingConfig& c = config_;
  ScaleDecision d;
  if (c.fast_up_interval == std::chrono::nanoseconds::zero() || fast_up_done_) return d;
  std::vector<std::size_t> active;
  double demand = 0.0;
  for (std::size_t i = 0; i < obs.size(); ++i) {
    if (obs[i].status != ExecutorStatus::kActive) continue;
    const double u = obs[i].utilization;
    active.push_back(i);
    if (u >= kSaturatedUtilization) {
      d.voters.push_back(i);
      demand += kSaturationGain * u;
    } else {
      demand += u;
    }
  }
  const std::size_t n = active.size();
  // Below the lower bound or above the upper one the next window acts.
  if (d.voters.empty() || n < min_active() || n >= max_active()) return {};
  const double divisor = c.signal == ScaleSignal::kTarget ? c.target_utilization
                                                          : c.scale_up_threshold;
  const double raw = std::ceil(demand / divisor - kCeilSlack);
  const std::size_t wanted =
      raw <= 0.0 ? 0 : static_cast<std::size_t>(std::min(raw, 1e6));
  const std::size_t level = std::clamp(wanted, min_active(), max_active());
  const std::size_t n_up = up_step(level > n ? level - n : 0, n);
  if (n_up == 0) return {};
  d.rule = ScaleRule::kFastUp;
  d.utilizations.reserve(obs.size());
  for (const LoopObservation& o : obs) d.utilizations.push_back(o.utilization);
  d.active_before = n;
  d.demand = demand;
  d.target_level = level;
  pick_wake(obs, n_up, d);
  d.active_after = n + d.wake.size();
  fast_up_done_ = true;
  fast_up_level_ = d.active_after;
  cooldown_left_ = c.scale_down_cooldown_cycles;
  d.reason = absl::StrFormat(
      "fast_up: wake %s (loops %s saturated at u=%s between windows; demand "
      "%.2f loops at %.2f needs %u); %u -> %u active",
      list(d.wake), list(d.voters), list_u(d.voters, d.utilizations), demand,
      divisor, level, n, d.active_after);
  return d;
}

ScalingPolicy::Window ScalingPolicy::observe(
    std::span<const LoopObservation> obs, ScaleDecision& d) {
  const ScalingConfig& c = config_;
  Window w;
  d.utilizations.reserve(obs.size());
  for (std::size_t i = 0; i < obs.size(); ++i) {
    Loop& loop = loops_[i];
    const double u = obs[i].utilization;
    d.utilizations.push_back(u);
    const bool is_active = obs[i].status == ExecutorStatus::kActive;
    const bool just_woken = is_active && !loop.was_active;
    loop.was_active = is_active;
    if (!is_active) {
      loop.busy = loop.idle = 0;
      loop.saturated = false;
      continue;
    }
    if (just_woken) loop.woken_seq = ++seq_;
    w.active.push_back(i);
    w.sum_u += u;
    if (u > c.scale_up_threshold) {
      ++loop.busy;
      loop.idle = 0;
    } else if (u < c.scale_down_threshold) {
      loop.busy = 0;
      // Grace: a loop that has just become active had no chance to get work.
      loop.idle = just_woken ? 0 : loop.idle + 1;
    } else {
      loop.busy = loop.idle = 0;
    }
  }
  const std::size_t n = w.active.size();
  d.active_before = n;
  d.mean_utilization = n == 0 ? 0.0 : w.sum_u / static_cast<double>(n);
  mean_busy_ =
      (n > 0 && d.mean_utilization > c.scale_up_threshold) ? mean_busy_ + 1 : 0;
  return w;
}

void ScalingPolicy::wake_below_min(std::span<const LoopObservation> obs,
                                   const Window& w, ScaleDecision& d) {
  d.rule = ScaleRule::kBelowMin;
  pick_wake(obs, min_active() - w.active.size(), d);
  d.reason = absl::StrFormat("below_min: wake %s (%u active, min %u)",
                             list(d.wake), w.active.size(), min_active());
}

void ScalingPolicy::shed_above_max(std::span<const LoopObservation> obs,
                                   const Window& w, ScaleDecision& d) {
  d.rule = ScaleRule::kAboveMax;
  pick_victims(obs, w.active, w.active.size() - max_active(), /*hard=*/true, d);
  d.reason = absl::StrFormat("above_max: %s (%u active, max %u)", leaving(d),
                             w.active.size(), max_active());
}

bool ScalingPolicy::threshold_scale_up(std::span<const LoopObservation> obs,
                                       const Window& w, ScaleDecision& d) {
  const ScalingConfig& c = config_;
  const std::size_t n = w.active.size();
  std::size_t want = 0;
  if (c.signal == ScaleSignal::kPerLoop) {
    for (std::size_t i : w.active) {
      if (loops_[i].busy >= c.patience_cycles) d.voters.push_back(i);
    }
    want = d.voters.size();
  } else if (mean_busy_ >= c.patience_cycles) {
    d.voters = w.active;
    const double needed = std::ceil(w.sum_u / c.scale_up_threshold - kCeilSlack);
    want = needed > static_cast<double>(n) ? static_cast<std::size_t>(needed) - n
                                           : 1;
  }
  const std::size_t n_up = up_step(want, n);
  if (n_up == 0) {
    if (want > 0) {
      d.held = HoldReason::kAtMax;
      d.reason = absl::StrFormat("held scale_up at max %u (loops %s busy)",
                                 max_active(), list(d.voters));
    }
    return false;
  }
  d.rule = ScaleRule::kScaleUp;
  pick_wake(obs, n_up, d);
  // Netty #17538: the voters start counting afresh, so the loops just woken
  // get `patience_cycles` windows to take load off them.
  for (std::size_t i : d.voters) loops_[i].busy = 0;
  mean_busy_ = 0;
  d.reason = absl::StrFormat(
      "scale_up: wake %s (%s %s busy for %u windows at u=%s; mean %.2f)",
      list(d.wake), c.signal == ScaleSignal::kPerLoop ? "loops" : "mean of",
      list(d.voters), c.patience_cycles, list_u(d.voters, d.utilizations),
      d.mean_utilization);
  return true;
}

std::vector<std::size_t> ScalingPolicy::idle_candidates(const Window& w) const {
  std::vector<std::size_t> out;
  for (std::size_t i : w.active) {
    if (loops_[i].idle >= config_.patience_cycles) out.push_back(i);
  }
  return out;
}

void ScalingPolicy::note_scale_down_held_by_up(const Window& w,
                                               ScaleDecision& d) const {
  if (!idle_candidates(w).empty()) d.held = HoldReason::kScaleUpWon;
}

void ScalingPolicy::threshold_scale_down(std::span<const LoopObservation> obs,
                                         const Window& w, bool cooling,
                                         ScaleDecision& d) {
  const ScalingConfig& c = config_;
  const std::vector<std::size_t> candidates = idle_candidates(w);
  if (candidates.empty()) return;
  const std::size_t n = w.active.size();
  if (cooling) {
    d.held = HoldReason::kCooldown;
    d.reason = absl::StrFormat("held scale_down (cooldown): loops %s idle",
                               list(candidates));
    return;
  }
  if (n <= min_active()) {
    d.held = HoldReason::kAtMin;
    d.reason = absl::StrFormat("held scale_down at min %u: loops %s idle",
                               min_active(), list(candidates));
    return;
  }
  d.voters = candidates;
  pick_victims(obs, candidates,
               std::min({candidates.size(), c.max_ramp_down_step, n - min_active()}),
               /*hard=*/false, d);
  if (d.suspend.empty() && d.drain.empty()) {
    d.held = HoldReason::kVetoed;
    d.reason = absl::StrFormat(
        "held scale_down: idle loops %s hold registrations", list(d.kept));
    return;
  }
  d.rule = ScaleRule::kScaleDown;
  d.reason = absl::StrFormat(
      "scale_down: %s (loops %s idle for %u windows at u=%s)", leaving(d),
      list(candidates), c.patience_cycles, list_u(candidates, d.utilizations));
  if (!d.kept.empty()) {
    absl::StrAppend(&d.reason, "; kept ", list(d.kept), " (registrations)");
  }
}

std::size_t ScalingPolicy::up_step(std::size_t want, std::size_t active) const {
  std::size_t n_up = std::min(want, max_active() - active);
  if (config_.max_ramp_up_step != 0) {
    n_up = std::min(n_up, config_.max_ramp_up_step);
  }
  return n_up;
}

void ScalingPolicy::finish(const Window& w, ScaleDecision& d) {
  // Victims leave now: if anyone wakes one before the next window ends, it
  // comes back as just woken, with grace.
  for (const auto* victims : {&d.suspend, &d.drain}) {
    for (std::size_t i : *victims) {
      loops_[i].idle = 0;
      loops_[i].was_active = false;
    }
  }
  const std::size_t n = w.active.size();
  d.active_after = n + d.wake.size() - d.suspend.size() - d.drain.size();
  if (d.acted()) {
    cooldown_left_ = config_.scale_down_cooldown_cycles;
    absl::StrAppend(&d.reason, "; ", n, " -> ", d.active_after, " active");
  }
}

void ScalingPolicy::decide_target(std::span<const LoopObservation> obs,
                                  const Window& w, bool cooling,
                                  ScaleDecision& d) {
  const Demand demand = target_demand(obs, w, d);
  if (!target_up(obs, w, demand, d)) target_down(obs, w, cooling, d);
}

ScalingPolicy::Demand ScalingPolicy::target_demand(
    std::span<const LoopObservation> obs, const Window& w, ScaleDecision& d) {
  const ScalingConfig& c = config_;
  using Seconds = std::chrono::duration<double>;
  const double window = Seconds(c.window).count();
  const auto lag_floor = std::chrono::duration_cast<std::chrono::nanoseconds>(
      c.window * kSaturatedLagFraction);
  Demand out;
  for (std::size_t i : w.active) {
    Loop& loop = loops_[i];
    const double u = obs[i].utilization;
    // A probe waits behind the loop's handlers, or for the kernel to give
    // the loop's thread a CPU. Only the first is work more loops would take;
    // the second (CPU hogs, a container's exhausted CPU quota) would read an
    // idle loop as saturated and grow the pool with threads that wait for
    // the same CPUs. The wait behind handlers cannot exceed the time the
    // loop ran them in the window.
    const auto own_lag = std::min(
        obs[i].lag, std::chrono::duration_cast<std::chrono::nanoseconds>(
                        c.window * std::clamp(u, 0.0, 1.0)));
    const bool sat = u >= kSaturatedUtilization || own_lag > lag_floor;
    if (!sat) {
      out.loops += u;
    } else if (!loop.saturated) {
      out.loops += kSaturationGain * std::max(u, kSaturatedUtilization);
    } else {
      out.loops += u + Seconds(obs[i].lag).count() /
                           (static_cast<double>(c.patience_cycles) * window);
    }
    loop.saturated = sat;
    if (sat) out.saturated.push_back(i);
  }
  const double raw = std::ceil(out.loops / c.target_utilization - kCeilSlack);
  out.wanted = raw <= 0.0 ? 0 : static_cast<std::size_t>(std::min(raw, 1e6));
  out.level = std::clamp(out.wanted, min_active(), max_active());
  d.demand = out.loops;
  d.target_level = out.level;
  // Every window's level is remembered over the lookback, through actions:
  // the level that made the pool grow must age out before it can shrink.
  // So is a fast-up's within the window.
  target_levels_.push_back(std::max(out.level, fast_up_level_));
  while (target_levels_.size() > target_lookback()) target_levels_.pop_front();
  return out;
}

bool ScalingPolicy::target_up(std::span<const LoopObservation> obs,
                              const Window& w, const Demand& demand,
                              ScaleDecision& d) {
  const ScalingConfig& c = config_;
  const std::size_t n = w.active.size();
  // At once on saturation, after patience on a high mean otherwise.
  const bool saturated = !demand.saturated.empty();
  if (!saturated && mean_busy_ < c.patience_cycles) return false;
  d.voters = saturated ? demand.saturated : w.active;
  const std::size_t n_up = up_step(
      demand.level > n ? demand.level - n : (saturated ? 0 : 1), n);
  if (n_up > 0) {
    d.rule = ScaleRule::kTargetUp;
    pick_wake(obs, n_up, d);
    mean_busy_ = 0;
    d.reason = absl::StrFormat(
        "target_up: wake %s (demand %.2f loops at target %.2f needs %u; %s %s)",
        list(d.wake), demand.loops, c.target_utilization, demand.level,
        saturated ? "saturated loops" : "mean busy, u",
        saturated ? list(demand.saturated)
                  : absl::StrFormat("%.2f", d.mean_utilization));
    return true;
  }
  if (n >= max_active() && demand.wanted > n) {
    d.held = HoldReason::kAtMax;
    d.reason = absl::StrFormat("held target_up at max %u (demand %.2f needs %u)",
                               max_active(), demand.loops, demand.wanted);
    return true;
  }
  return false;
}

void ScalingPolicy::target_down(std::span<const LoopObservation> obs,
                                const Window& w, bool cooling,
                                ScaleDecision& d) {
  const ScalingConfig& c = config_;
  const std::size_t n = w.active.size();
  // The highest level of the lookback windows is below the active count,
  // and the cooldown is over.
  const std::size_t recent =
      *std::max_element(target_levels_.begin(), target_levels_.end());
  if (recent >= n) return;
  if (cooling) {
    d.held = HoldReason::kCooldown;
    d.reason = absl::StrFormat(
        "held target_down (cooldown): at most %u of %u loops needed for %u "
        "windows",
        recent, n, target_levels_.size());
    return;
  }
  if (target_levels_.size() < target_lookback()) return;
  // Every active loop is a candidate: the set is sized as a whole.
  pick_victims(obs, w.active, std::min(n - recent, c.max_ramp_down_step),
               /*hard=*/false, d);
  if (d.suspend.empty() && d.drain.empty()) {
    d.held = HoldReason::kVetoed;
    d.reason = absl::StrFormat("held target_down: loops %s hold registrations",
                               list(d.kept));
    return;
  }
  d.rule = ScaleRule::kTargetDown;
  d.voters = w.active;
  d.reason = absl::StrFormat(
      "target_down: %s (demand %.2f loops at target %.2f; at most %u loops "
      "needed for %u windows)",
      leaving(d), d.demand, c.target_utilization, recent,
      target_levels_.size());
}

std::vector<std::size_t> ScalingPolicy::plan_moves(
    std::span<const LoopObservation> after) const {
  if (!config_.rebalance_connections) return {};
  std::size_t active = 0;
  std::size_t connections = 0;
  for (const LoopObservation& o : after) {
    if (o.status == ExecutorStatus::kSuspended) continue;
    connections += o.registrations;
    if (o.status == ExecutorStatus::kActive) ++active;
  }
  if (active == 0 || connections == 0) return {};
  const std::size_t share = (connections + active - 1) / active;
  std::vector<std::size_t> moves(after.size(), 0);
  bool any = false;
  for (std::size_t i = 0; i < after.size(); ++i) {
    const LoopObservation& o = after[i];
    std::size_t leave = 0;
    if (o.status == ExecutorStatus::kDraining) {
      leave = o.registrations;
    } else if (o.status == ExecutorStatus::kActive && o.registrations > share) {
      leave = o.registrations - share;
    }
    moves[i] = std::min(leave, config_.max_moves_per_window);
    any = any || moves[i] > 0;
  }
  if (!any) return {};
  return moves;
}

void ScalingPolicy::pick_wake(std::span<const LoopObservation> obs,
                              std::size_t count, ScaleDecision& d) {
  for (ExecutorStatus wanted :
       {ExecutorStatus::kDraining, ExecutorStatus::kSuspended}) {
    for (std::size_t i = 0; i < obs.size() && d.wake.size() < count; ++i) {
      if (obs[i].status == wanted) d.wake.push_back(i);
    }
  }
}

void ScalingPolicy::pick_victims(std::span<const LoopObservation> obs,
                                 std::vector<std::size_t> candidates,
                                 std::size_t count, bool hard,
                                 ScaleDecision& d) {
  // Most recently woken first, then highest index: the loops that joined
  // last leave first, and the low-index core stays warm.
  // kTarget sizes the set as a whole, so any active loop is a candidate:
  // the idlest leave first (in steps of kIdlestFirstStep utilization, so
  // that jitter does not reorder loops that are equally loaded).
  const bool by_load = config_.signal == ScaleSignal::kTarget;
  auto bucket = [&obs](std::size_t i) {
    return static_cast<int>(obs[i].utilization / kIdlestFirstStep);
  };
  std::sort(candidates.begin(), candidates.end(),
            [&](std::size_t a, std::size_t b) {
              if (by_load && bucket(a) != bucket(b)) {
                return bucket(a) < bucket(b);
              }
              if (loops_[a].woken_seq != loops_[b].woken_seq) {
                return loops_[a].woken_seq > loops_[b].woken_seq;
              }
              return a > b;
            });
  std::size_t taken = 0;
  for (std::size_t i : candidates) {
    if (taken == count) break;
    if (obs[i].registrations == 0) {
      d.suspend.push_back(i);
    } else if (hard || config_.drain_connected_loops) {
      d.drain.push_back(i);
    } else {
      d.kept.push_back(i);
      continue;
    }
    ++taken;
  }
}

}  // namespace loopscale
