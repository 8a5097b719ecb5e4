// -----------------------------------------------------------------------------
// overload.hpp
// -----------------------------------------------------------------------------
//
// `OverloadController` turns what the monitor measures into an overload
// level: the share of new requests a pool that cannot grow any more should
// refuse (0 to `OverloadConfig::max_shed`). The monitor runs one per pool,
// at every window and, while the pool is at its bound with overload on,
// every kOverloadCheckInterval between windows; servers act on the level
// through `Admission` (admission.hpp).
//
// Scale first, shed last: the level is 0 while the pool can still grow
// (fewer active loops than its bound), does not rise for two windows after the
// pool reached its bound (it is working off the queue it grew for), and does
// not rise while the active loops' mean utilization is below
// `utilization_start`. The level is
// per pool, not per loop: a loop whose lag is high while the others idle is
// a placement problem (its connections move; `ScalingPolicy::plan_moves`),
// not a reason to refuse work (envoyproxy/envoy#22495).
//
// At the bound, the level is a proportional-integral controller on the
// active loops' mean scheduling lag (the delay a new handler waits: the
// queue), held at `lag_target`:
//
//   level = clamp(kGain * e + integral, 0, max_shed)
//   integral += kIntegralGain * e * dt           (itself kept in 0..max_shed)
//   e = lag - lag_target                         (seconds)
//
// Why not Envoy's scaled trigger (a level rising linearly between a start
// and a saturation threshold of the signal): the lag is the integral of the
// excess load, and a proportional level alone settles where the refused
// share matches the excess, i.e. at a lag that grows with the load (at 4x
// capacity, three quarters of the way to saturation). The integral term
// brings the lag back to the target at any load; the proportional term damps
// it (the lag responds to the level like an integrator, so an integral
// controller alone would oscillate). The gains keep the loop stable from
// 1.5 to 4 times the capacity with updates every 5 ms and the lag read two
// of them late (tests/overload_test.cpp closes the loop around a fluid
// model of the queue); at a step to four times the capacity the lag peaks
// near 60 ms in that model before the level catches up (about 130 ms with
// updates every 20 ms, where these gains would oscillate).
//
// What it cannot see: requests that have not reached a loop's queue yet.
// New connections wait in the kernel's listen backlog until the listener's
// loop gets to them, and at a step to several times the capacity on new
// connections that backlog, not the loops' queues, holds most of the
// wait; the level refuses those requests only once they are read.
//
//   OverloadController c;
//   double level = c.update({.at_bound = true, .utilization = 0.99,
//                            .lag = 80ms, .now = Clock::now()}, config.overload);
//   admission.set(level, config.overload);
//
// Thread-safety: a plain value; the monitor updates it on its thread.

#ifndef LOOPSCALE_OVERLOAD_HPP_
#define LOOPSCALE_OVERLOAD_HPP_

#include <chrono>
#include <optional>
#include <string>

#include "loopscale/clock.hpp"
#include "loopscale/config.hpp"

namespace loopscale {

// How often the monitor updates the level between windows while the pool is
// at its bound (the window alone is too coarse: at twice the capacity a
// level wrong by a tenth lets a 250 ms window queue 50 ms of work; and at a
// step to four times the capacity the queue grows by 3 ms every
// millisecond until the level is seen to be wrong). A look costs the
// monitor's thread a read of each loop's busy total and lag; the loops
// pay a probe handler each.
inline constexpr std::chrono::nanoseconds kOverloadCheckInterval =
    std::chrono::milliseconds(5);

// What the controller sees of the pool since its last update.
struct OverloadInput {
  // The pool cannot grow: its active loops are at `max_loops`.
  bool at_bound = false;
  // The active loops' mean utilization over `elapsed`.
  double utilization = 0.0;
  // The active loops' mean scheduling lag, read now.
  std::chrono::nanoseconds lag{0};
  // When: the integral runs over the time since the previous update (the
  // monitor updates at ticks and at checks between them).
  Clock::time_point now;
  // How long the pool must have been at its bound before the level may
  // rise: a pool that has just grown is still working off the queue it grew
  // for, and a load it can absorb must not be refused meanwhile (the
  // monitor gives two windows).
  std::chrono::nanoseconds bound_grace{0};
};

class OverloadController {
 public:
  // Gains of the controller (see the header comment): level per second of
  // lag above the target, and level per second per second of it.
  static constexpr double kGain = 20.0;
  static constexpr double kIntegralGain = 200.0;
  // The time constant of the utilization the level's gate reads.
  static constexpr std::chrono::milliseconds kUtilizationSmoothing{100};
  // A lag this many times the target with the loops busy since the last
  // look opens the gate before the smoothed utilization does.
  static constexpr double kJumpLag = 2.0;

  // Returns the new level, in 0 .. `config.max_shed` (0 with overload off).
  double update(const OverloadInput& in, const OverloadConfig& config);

  // The level of the last update.
  double level() const noexcept { return level_; }
  // Why the level is what it is, for logs and the scaling events:
  // "at max 4 loops, lag 41 ms > 20 ms, utilization 0.99".
  const std::string& reason() const noexcept { return reason_; }

 private:
  double integral_ = 0.0;
  double level_ = 0.0;
  // The active loops' utilization, smoothed over kUtilizationSmoothing: over
  // one 20 ms check a loop running 10 ms handlers reads 0, 0.5 or 1.
  double utilization_ = 0.0;
  std::optional<Clock::time_point> last_;
  // When the pool reached its bound, while it is there.
  std::optional<Clock::time_point> at_bound_since_;
  std::string reason_ = "off";
};

}  // namespace loopscale

#endif  // LOOPSCALE_OVERLOAD_HPP_
