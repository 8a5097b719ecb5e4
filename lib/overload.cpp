#include "loopscale/overload.hpp"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"

namespace loopscale {

double OverloadController::update(const OverloadInput& in, const OverloadConfig& config) {
  const double seconds =
      last_ ? std::max(0.0, std::chrono::duration<double>(in.now - *last_).count()) : 0.0;
  last_ = in.now;
  utilization_ += (in.utilization - utilization_) *
                  std::min(1.0, seconds / std::chrono::duration<double>(kUtilizationSmoothing).count());
  if (!config.enabled || !in.at_bound) {
    integral_ = level_ = 0.0;
    at_bound_since_.reset();
    reason_ = config.enabled ? "the pool can still grow" : "off";
    return level_;
  }
  if (!at_bound_since_) at_bound_since_ = in.now;
  const bool settling = in.now - *at_bound_since_ < in.bound_grace;
  const double lag = std::chrono::duration<double>(in.lag).count();
  const double target = std::chrono::duration<double>(config.lag_target).count();
  double e = lag - target;
  // Loops that are not saturated have spare time: whatever their lag says,
  // the load does not exceed them, so the level may fall but not rise, and
  // falls fast (the load has dropped, or the level overshot): the integral
  // decays with the utilization's time constant, so that shedding stops
  // within a few hundred milliseconds of an overload's end rather than at
  // the integral's pace. Saturated means the smoothed utilization at
  // `utilization_start`, or the instant one there with the lag far above
  // the target: a load that jumps is seen at once (smoothing alone would
  // take a hundred milliseconds, queueing all along), while a pool busy
  // below its capacity, whose loops are all busy in many a 5 ms look, is
  // not taken for overloaded.
  const bool saturated =
      utilization_ >= config.utilization_start ||
      (in.utilization >= config.utilization_start && lag >= kJumpLag * target);
  if (settling) e = std::min(e, 0.0);
  if (!saturated) {
    e = std::min(e, 0.0);
    integral_ *= std::exp(-seconds / std::chrono::duration<double>(kUtilizationSmoothing).count());
  }
  integral_ = std::clamp(integral_ + kIntegralGain * e * seconds, 0.0, config.max_shed);
  level_ = std::clamp(kGain * e + integral_, 0.0, config.max_shed);
  reason_ = absl::StrFormat("at the bound, lag %.1f ms %s target %.1f ms, utilization %.2f%s",
                            lag * 1e3, lag > target ? ">" : "<=", target * 1e3, utilization_,
                            !saturated ? " (not saturated)"
                            : settling ? " (just grew: working off its queue)"
                                       : "");
  return level_;
}

}  // namespace loopscale
