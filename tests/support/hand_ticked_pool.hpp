// A started LoopPool whose monitor never ticks by itself: it takes its
// baseline and then waits an hour, so the test decides which loops are in
// rotation (by hand, as the monitor does) and no scheduling delay on a
// loaded machine can change that.

#ifndef LOOPSCALE_TESTS_SUPPORT_HAND_TICKED_POOL_HPP_
#define LOOPSCALE_TESTS_SUPPORT_HAND_TICKED_POOL_HPP_

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "loopscale/loop_pool.hpp"

namespace loopscale::testing {

// Creates and starts a pool named `name` of `loops` loops, all active,
// min_loops 1.
inline absl::StatusOr<std::unique_ptr<LoopPool>> start_hand_ticked_pool(
    std::string name, std::size_t loops) {
  PoolOptions o;
  o.name = std::move(name);
  o.scaling.min_loops = 1;
  o.scaling.max_loops = loops;
  o.scaling.window = std::chrono::hours(1);
  o.scaling.fast_up_interval = std::chrono::nanoseconds::zero();  // by hand only
  auto pool = LoopPool::create(o);
  if (pool.ok()) (*pool)->start();
  return pool;
}

}  // namespace loopscale::testing

#endif  // LOOPSCALE_TESTS_SUPPORT_HAND_TICKED_POOL_HPP_
