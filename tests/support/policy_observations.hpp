// Observations for ScalingPolicy tests, window by window: the first `active`
// of eight executors running at given utilizations, and a policy that has
// taken its baseline.

#ifndef LOOPSCALE_TESTS_SUPPORT_POLICY_OBSERVATIONS_HPP_
#define LOOPSCALE_TESTS_SUPPORT_POLICY_OBSERVATIONS_HPP_

#include <cstddef>
#include <vector>

#include "loopscale/scaling_policy.hpp"

namespace loopscale::testing {

// The first `active` executors run with utilizations `u` (missing: 0); the
// others are suspended.
inline std::vector<LoopObservation> obs(std::vector<double> u, std::size_t active,
                                        std::size_t n = 8) {
  std::vector<LoopObservation> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    out[i].status = i < active ? ExecutorStatus::kActive : ExecutorStatus::kSuspended;
    out[i].utilization = i < u.size() && i < active ? u[i] : 0.0;
  }
  return out;
}

// A policy over eight executors whose baseline has the first `active` ones
// running.
inline ScalingPolicy started(const ScalingConfig& c, std::size_t active) {
  ScalingPolicy p(c, 8);
  p.baseline(obs({}, active));
  return p;
}

}  // namespace loopscale::testing

#endif  // LOOPSCALE_TESTS_SUPPORT_POLICY_OBSERVATIONS_HPP_
