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
    reason_ = config.enabled ? "the pool can still grow" : "off";
    return level_;
  }
  const double lag = std::chrono::duration<double>(in.lag).count();
  const double target = std::chrono::duration<double>(config.lag_target).count();
  double e = lag - target;
  // Loops that are not saturated have spare time: whatever their lag says,
  // the load does not exceed them, so the level may fall but not rise, and
  // falls fast (the load has dropped, or the level overshot): the integral
  // decays with the utilization's time constant, so that shedding stops
  // within a few hundred milliseconds of an overload's end rather than at
  // the integral's pace. The smoothed figure keeps a saturated pool's noisy
  // checks from closing the gate; the instant one opens it at once when a
  // load arrives (the smoothed one would take a hundred milliseconds,
  // queueing all along).
  const bool saturated = std::max(utilization_, in.utilization) >= config.utilization_start;
  if (!saturated) {
    e = std::min(e, 0.0);
    integral_ *= std::exp(-seconds / std::chrono::duration<double>(kUtilizationSmoothing).count());
  }
  integral_ = std::clamp(integral_ + kIntegralGain * e * seconds, 0.0, config.max_shed);
  level_ = std::clamp(kGain * e + integral_, 0.0, config.max_shed);
  reason_ = absl::StrFormat("at the bound, lag %.1f ms %s target %.1f ms, utilization %.2f%s",
                            lag * 1e3, lag > target ? ">" : "<=", target * 1e3, utilization_,
                            saturated ? "" : " (not saturated)");
  return level_;
}

}  // namespace loopscale
