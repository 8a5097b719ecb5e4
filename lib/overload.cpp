#include "loopscale/overload.hpp"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace loopscale {

double OverloadController::update(const OverloadInput& in, const OverloadConfig& config) {
  if (!config.enabled || !in.at_bound) {
    integral_ = level_ = 0.0;
    reason_ = config.enabled ? "the pool can still grow" : "off";
    return level_;
  }
  const double seconds = std::chrono::duration<double>(in.elapsed).count();
  const double lag = std::chrono::duration<double>(in.lag).count();
  const double target = std::chrono::duration<double>(config.lag_target).count();
  double e = lag - target;
  // Loops that are not saturated have spare time: whatever their lag says,
  // the load does not exceed them, so the level may fall but not rise.
  const bool saturated = in.utilization >= config.utilization_start;
  if (!saturated) e = std::min(e, 0.0);
  integral_ = std::clamp(integral_ + kIntegralGain * e * seconds, 0.0, config.max_shed);
  level_ = std::clamp(kGain * e + integral_, 0.0, config.max_shed);
  reason_ = absl::StrFormat("at the bound, lag %.1f ms %s target %.1f ms, utilization %.2f%s",
                            lag * 1e3, lag > target ? ">" : "<=", target * 1e3, in.utilization,
                            saturated ? "" : " (not saturated)");
  return level_;
}

}  // namespace loopscale
