// Netty 4.2's auto-scaling decisions (AutoScalingEventExecutorChooserFactory's
// UtilizationMonitor), warts included, for the simulator only: the table
// shows side by side what loopscale's rules buy over it.
//
// Faithful to Netty, and different from `ScalingPolicy`:
//   * A loop counts as consistently busy (idle) when its counter *before*
//     this window's increment had reached the patience (`getAndIncrement`),
//     so it acts one window later than its patience suggests.
//   * No voter reset: after a scale-up the busy counters keep counting, so a
//     loop that stays busy adds a loop every window (Netty #17538).
//   * No cooldown, and no grace for a loop just woken.
//   * Victims are the first idle loops by index, and a loop holding
//     connections refuses to suspend and stays in rotation (the count of
//     victims still includes it): with long-lived connections nothing ever
//     scales down.
//   * Woken loops are taken round-robin from a wake cursor.
// Thread-safety: none.

#ifndef LOOPSCALE_BENCHMARKS_SCALING_SIM_NETTY_POLICY_HPP_
#define LOOPSCALE_BENCHMARKS_SCALING_SIM_NETTY_POLICY_HPP_

#include <cstddef>
#include <vector>

#include "loopscale/config.hpp"
#include "sim_loop.hpp"

namespace loopscale::sim {

class NettyPolicy {
 public:
  // Every loop in `loops` must outlive the policy; the loops that are not
  // suspended form the first active set.
  NettyPolicy(std::vector<SimLoop*> loops, const ScalingConfig& config);

  // One monitor run at virtual time `now`; returns +1 if it woke loops, -1
  // if it suspended any, 0 otherwise.
  int tick(double now);

  // The loops new work goes to, in rotation order.
  const std::vector<std::size_t>& active() const { return active_; }

 private:
  void rebuild();

  std::vector<SimLoop*> loops_;
  ScalingConfig config_;
  std::vector<int> busy_cycles_;
  std::vector<int> idle_cycles_;
  std::vector<double> last_busy_;
  std::vector<std::size_t> active_;
  std::size_t wake_cursor_ = 0;
  double last_tick_ = -1.0;
};

}  // namespace loopscale::sim

#endif  // LOOPSCALE_BENCHMARKS_SCALING_SIM_NETTY_POLICY_HPP_
