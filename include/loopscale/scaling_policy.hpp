// -----------------------------------------------------------------------------
// scaling_policy.hpp
// -----------------------------------------------------------------------------
//
// `ScalingPolicy` decides, one window at a time, which executors to wake and
// which to suspend or drain. It is pure: no threads, no clock, no executors.
// It is fed what the monitor observed in the window that just ended (each
// executor's status, utilization and registrations) and returns a
// `ScaleDecision` that says what to do and why. The same observations in the
// same order always give the same decisions, which is what makes every rule
// testable window by window (tests/scaling_policy_test.cpp) and lets the
// scaling simulator replay load traces in virtual time.
//
//   ScalingPolicy policy(config, executors.size());
//   policy.baseline(observations_at_start);
//   for (each window) {
//     ScaleDecision d = policy.decide(observations);
//     for (i : d.wake) resume i;  for (i : d.suspend, d.drain) try_suspend i;
//   }
//
// The rules (docs/scaling.md, "The rules", with Netty 4.2's known bugs
// fixed; each has a test that fails without it):
//
//   * Streaks. A loop is busy in a window if u > scale_up_threshold, idle if
//     u < scale_down_threshold; a busy window resets the idle streak and vice
//     versa, a window in between resets both. Loops that are not active have
//     no streaks.
//   * Scale up (`kPerLoop`): loops busy for `patience_cycles` windows vote;
//     the pool wakes min(voters, max_ramp_up_step, max - active) loops, and
//     the voters' streaks restart (Netty #17538: otherwise one hot loop adds
//     a loop every window). `kAverage`: the mean utilization of the active
//     loops has its own streak; once it reaches patience the pool grows to
//     ceil(sum of u / scale_up_threshold) loops, within the same limits.
//   * Scale down: loops idle for `patience_cycles` windows are candidates, at
//     most min(candidates, max_ramp_down_step, active - min) leave, the most
//     recently woken first (ties: highest index first) so that a stable core
//     of low-index loops stays hot. A candidate without registrations is
//     suspended; one with registrations is drained when
//     `drain_connected_loops`, otherwise kept (and the next candidate tried).
//   * One direction per window: a scale-up wins and a due scale-down waits.
//   * Cooldown: after any action at window T, windows T+1 ... T+C
//     (C = scale_down_cooldown_cycles) do not scale down. Scale-ups are never
//     held.
//   * Grace: in the first window after a loop becomes active (woken by the
//     policy or by anyone else), it cannot count as idle: a loop that has
//     just been woken has had no chance to receive work yet.
//   * Bounds: below min(min_loops, max) active loops, loops are woken at once
//     (`kBelowMin`); above max (`max_loops`, 0 = all, capped at the executor
//     count), the excess leaves at once (`kAboveMax`, loops with
//     registrations are drained whatever `drain_connected_loops` says:
//     `max_loops` is a hard bound). Neither waits for patience or cooldown.
//   * Which loops wake: draining loops first (they still have a thread), then
//     suspended loops, lowest index first.
//
// `kTarget` replaces the per-loop and mean streaks with a demand estimate
// (bounds, cooldown, ramps, draining and which loops wake as above):
//
//   * Demand D, in loops' worth of work: the sum of the active loops'
//     utilizations, except for saturated loops (u >= kSaturatedUtilization,
//     or a scheduling lag above kSaturatedLagFraction of the window, the lag
//     counted only up to the loop's busy time in the window: a probe that
//     waited for a CPU, not behind the loop's handlers, shows no work more
//     loops would take, and an idle loop behind CPU hogs or an exhausted
//     container quota must not grow the pool). A saturated loop's
//     utilization caps at 1 and hides how much work queues behind it, and
//     its lag shows that queue only a window late (the probe posted at the
//     last tick ran before the work piled up). So in the first window of a
//     saturation a loop counts for kSaturationGain * u, and in the windows
//     after for u + lag / (patience_cycles * window): its queued work,
//     cleared over the patience horizon.
//   * The level: ceil(D / target_utilization), within the bounds.
//   * Up: at once when a loop is saturated; otherwise once the mean
//     utilization of the active loops has stayed above scale_up_threshold for
//     `patience_cycles` windows. The pool grows to the level (ramp limit).
//   * Down: the pool shrinks to the highest level of the last
//     kTargetLookbackFactor * patience_cycles windows (a stabilization
//     window: the level that made it grow must age out first), once that is
//     below the active count and the cooldown is over; ramp limit; the
//     idlest loops leave first, then the most recently woken. The gap
//     between target_utilization (where a step lands) and
//     scale_up_threshold (where the next one starts) is the hysteresis.
//
// Fast up (`decide_fast`, every signal, `fast_up_interval` not zero): between
// two windows the monitor measures the loops every `fast_up_interval`; an
// active loop busy for at least kSaturatedUtilization of it wakes loops at
// once, sized as kTarget sizes its first saturated window (saturated loops
// count kSaturationGain times their utilization; the divisor is
// target_utilization, or scale_up_threshold under the other signals), within
// the bounds and the ramp. Up only, at most once per window; it starts the
// cooldown and, under kTarget, its level is remembered over the lookback
// like a window's, so the patient way down is unchanged.
//
// Thread-safety: none; the monitor serializes calls.

#ifndef LOOPSCALE_SCALING_POLICY_HPP_
#define LOOPSCALE_SCALING_POLICY_HPP_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "loopscale/config.hpp"
#include "loopscale/loop_state.hpp"

namespace loopscale {

// One executor's figures for the window that just ended.
struct LoopObservation {
  ExecutorStatus status = ExecutorStatus::kActive;
  // Busy time / window length, in [0, 1].
  double utilization = 0.0;
  std::size_t registrations = 0;
  // How long the executor's last scheduling probe waited before it ran (or
  // has waited so far), if it reports one (`scheduling_lag()`); zero
  // otherwise. Only `kTarget` uses it.
  std::chrono::nanoseconds lag{0};
};

// The rule that produced a decision.
enum class ScaleRule : std::uint8_t {
  kNone,          // nothing was due
  kBaseline,      // first tick of a monitor: measured, decided nothing
  kClockSkipped,  // the clock did not advance: nothing measured or decided
  kScaleUp,       // busy loops (or the busy mean) for patience windows
  kScaleDown,     // idle loops for patience windows
  kTargetUp,      // kTarget: demand needs more loops
  kTargetDown,    // kTarget: fewer loops would have done over the lookback
  kBelowMin,      // fewer active loops than the lower bound
  kAboveMax,      // more active loops than the upper bound
  kFastUp,        // a loop saturated between two windows (decide_fast)
};
// The values are published to shared memory (`last_rule`,
// docs/shm-format.md): new rules go at the end.

// Returns "none", "baseline", "clock_skipped", "scale_up", "scale_down",
// "target_up", "target_down", "below_min", "above_max" or "fast_up".
std::string_view to_string(ScaleRule rule) noexcept;

// Why a scaling direction that was due did not act in a window.
enum class HoldReason : std::uint8_t {
  kNone,
  kCooldown,    // scale-down due, within the cooldown after an action
  kScaleUpWon,  // scale-down due, but this window scaled up
  kAtMin,       // scale-down due, but the pool is at its lower bound
  kAtMax,       // scale-up due, but the pool is at its upper bound
  kVetoed,      // scale-down due, but every candidate holds registrations
                // and drain_connected_loops is false
};

// Returns "none", "cooldown", "scale_up_won", "at_min", "at_max", "vetoed".
std::string_view to_string(HoldReason reason) noexcept;

// What to do at the end of a window, and why.
struct ScaleDecision {
  ScaleRule rule = ScaleRule::kNone;
  // Executor indices to resume.
  std::vector<std::size_t> wake;
  // Executor indices to ask to suspend (they hold no registrations).
  std::vector<std::size_t> suspend;
  // Executor indices to take out of rotation and ask to suspend while they
  // still hold registrations: they finish serving them first.
  std::vector<std::size_t> drain;
  // Idle candidates kept active because they hold registrations and
  // `drain_connected_loops` is false.
  std::vector<std::size_t> kept;
  // The loops whose streaks made the rule fire.
  std::vector<std::size_t> voters;
  // Filled by the monitor, not the policy: victims whose `try_suspend()`
  // returned false. They stay out of rotation and are asked again each tick.
  std::vector<std::size_t> refused;
  // Filled by the monitor (`ScalingPolicy::plan_moves`): per executor, how
  // many of its connections are asked to leave it in the next window.
  // Empty when none is.
  std::vector<std::size_t> moves;
  // Every executor's utilization in the window (as observed).
  std::vector<double> utilizations;
  // Mean utilization of the loops that were active in the window.
  double mean_utilization = 0.0;
  // kTarget: the demand estimate (loops' worth of work) and the level it
  // asks for; 0 under the other signals.
  double demand = 0.0;
  std::size_t target_level = 0;
  std::size_t active_before = 0;
  // Active loops once the decision is applied (before any refusal).
  std::size_t active_after = 0;
  // A direction that was due and did not act.
  HoldReason held = HoldReason::kNone;
  // One line for people: the rule, the loops and the figures that made it
  // fire, e.g. "scale_up: wake 2 (loops 0 1 busy for 3 windows at u=0.97
  // 0.91; 1 -> 2 active)". Empty when nothing happened or was held.
  std::string reason;

  // True if the decision wakes, suspends or drains any executor.
  bool acted() const noexcept {
    return !wake.empty() || !suspend.empty() || !drain.empty();
  }
};

// kTarget: a loop at or above this utilization is saturated.
inline constexpr double kSaturatedUtilization = 0.95;
// kTarget: so is a loop whose scheduling lag, up to its busy time in the
// window, exceeds this fraction of the window: work waits behind it although
// its busy time cannot show more.
inline constexpr double kSaturatedLagFraction = 0.1;
// kTarget: a saturated loop counts for this many times its utilization in
// the demand estimate, because its queue is invisible for a window (a probe
// posted at the last tick ran before the work piled up). Chosen with
// benchmarks/scaling_sim: 3 keeps its 0.45 -> 4.6 step under 3 loop-seconds
// of queued work.
inline constexpr double kSaturationGain = 3.0;
// kTarget: a scale-down looks back this many times `patience_cycles`
// windows and keeps the highest level it saw (a stabilization window, as
// Kubernetes' autoscaler has): load that swings around a level does not
// make the pool flap.
inline constexpr std::size_t kTargetLookbackFactor = 2;
// kTarget scale-down: loops are ordered idlest first in steps of this much
// utilization, so that jitter does not reorder loops equally loaded (then
// the most recently woken leave first).
inline constexpr double kIdlestFirstStep = 0.05;

class ScalingPolicy {
 public:
  // `config` must be valid (`validate(config).ok()`); `executors` is the
  // number of executors observed at every call.
  ScalingPolicy(const ScalingConfig& config, std::size_t executors);

  // Replaces the configuration from the next `decide()` on. Streaks are kept
  // (and compared with the new patience); a pending cooldown is shortened to
  // the new length if that is shorter. `config` must be valid.
  void set_config(const ScalingConfig& config);
  const ScalingConfig& config() const noexcept { return config_; }

  // Returns the number of executors.
  std::size_t size() const noexcept { return loops_.size(); }
  // Returns the upper bound on active loops: `max_loops`, or the executor
  // count if `max_loops` is 0 or larger.
  std::size_t max_active() const noexcept;
  // Returns the lower bound on active loops: `min_loops`, at most
  // `max_active()`.
  std::size_t min_active() const noexcept;

  // Records which loops are active at the start, without deciding anything,
  // so that they do not count as just woken in the first window.
  void baseline(std::span<const LoopObservation> observations);

  // Decides for the window that just ended. `observations` has `size()`
  // entries.
  ScaleDecision decide(std::span<const LoopObservation> observations);

  // Decides between two windows, on `observations` measured over the part
  // of the window since the last check (lag is not read): wakes loops at
  // once if an active loop is saturated and the pool can grow (see "Fast up"
  // above), else returns rule kNone and changes nothing. `voters` are the
  // saturated loops. At most one fast-up acts between two `decide()` calls.
  ScaleDecision decide_fast(std::span<const LoopObservation> observations);

  // Returns, per executor, how many of its connections should leave it in
  // the next window, given the statuses the decision left the executors in
  // (`after`): every connection of a draining executor, and on an active
  // executor those above its share, ceil(connections of all executors that
  // are not suspended / active executors). At most `max_moves_per_window`
  // each. Empty when `rebalance_connections` is off, no executor is active,
  // or nothing needs to move. Between active executors in balance nothing
  // moves: an executor at its share is never asked.
  std::vector<std::size_t> plan_moves(
      std::span<const LoopObservation> after) const;

  // Current streaks, for diagnostics and tests.
  std::size_t busy_streak(std::size_t index) const {
    return loops_.at(index).busy;
  }
  std::size_t idle_streak(std::size_t index) const {
    return loops_.at(index).idle;
  }

 private:
  struct Loop {
    std::size_t busy = 0;
    std::size_t idle = 0;
    // kTarget: saturated in the previous window.
    bool saturated = false;
    // When the loop last became active; higher is more recent.
    std::uint64_t woken_seq = 0;
    bool was_active = false;
  };

  // What the frame of every window observed: the active loops (in index
  // order) and the sum of their utilizations.
  struct Window {
    std::vector<std::size_t> active;
    double sum_u = 0.0;
  };
  // kTarget's estimate for a window.
  struct Demand {
    double loops = 0.0;        // D, in loops' worth of work
    std::vector<std::size_t> saturated;
    std::size_t wanted = 0;    // ceil(D / target_utilization)
    std::size_t level = 0;     // `wanted` within the bounds
  };

  // The frame: streaks, grace and the active set as the executors report it.
  Window observe(std::span<const LoopObservation> obs, ScaleDecision& d);
  // The bounds, which act at once.
  void wake_below_min(std::span<const LoopObservation> obs, const Window& w,
                      ScaleDecision& d);
  void shed_above_max(std::span<const LoopObservation> obs, const Window& w,
                      ScaleDecision& d);
  // kPerLoop and kAverage. Returns true if it scaled up.
  bool threshold_scale_up(std::span<const LoopObservation> obs, const Window& w,
                          ScaleDecision& d);
  void threshold_scale_down(std::span<const LoopObservation> obs,
                            const Window& w, bool cooling, ScaleDecision& d);
  std::vector<std::size_t> idle_candidates(const Window& w) const;
  void note_scale_down_held_by_up(const Window& w, ScaleDecision& d) const;
  // kTarget. `target_up` returns true if it scaled up or held at max.
  void decide_target(std::span<const LoopObservation> obs, const Window& w,
                     bool cooling, ScaleDecision& d);
  Demand target_demand(std::span<const LoopObservation> obs, const Window& w,
                       ScaleDecision& d);
  bool target_up(std::span<const LoopObservation> obs, const Window& w,
                 const Demand& demand, ScaleDecision& d);
  void target_down(std::span<const LoopObservation> obs, const Window& w,
                   bool cooling, ScaleDecision& d);
  std::size_t target_lookback() const noexcept {
    return kTargetLookbackFactor * config_.patience_cycles;
  }
  // Loops to wake for `want` more, within the upper bound and the ramp.
  std::size_t up_step(std::size_t want, std::size_t active) const;
  // Victims leave the streaks; the count after; the cooldown starts.
  void finish(const Window& w, ScaleDecision& d);

  // Fills d.wake with up to `count` executors that are not active.
  void pick_wake(std::span<const LoopObservation> obs, std::size_t count,
                 ScaleDecision& d);
  // Fills d.suspend/drain/kept from `candidates` (most recently woken
  // first) until `count` leave. `hard` ignores drain_connected_loops.
  void pick_victims(std::span<const LoopObservation> obs,
                    std::vector<std::size_t> candidates, std::size_t count,
                    bool hard, ScaleDecision& d);

  ScalingConfig config_;
  std::vector<Loop> loops_;
  std::uint64_t seq_ = 0;
  // Streak of windows whose mean utilization was above the threshold
  // (kAverage).
  std::size_t mean_busy_ = 0;
  // Windows left during which nothing scales down.
  std::size_t cooldown_left_ = 0;
  // kTarget: the levels of the last kTargetLookbackFactor * patience
  // windows, most recent last.
  std::deque<std::size_t> target_levels_;
  // A fast-up acted since the last decide(); the level it sized the pool to
  // (joins the window's level in the lookback).
  bool fast_up_done_ = false;
  std::size_t fast_up_level_ = 0;
};

}  // namespace loopscale

#endif  // LOOPSCALE_SCALING_POLICY_HPP_
