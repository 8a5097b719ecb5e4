// -----------------------------------------------------------------------------
// loop_pool.hpp
// -----------------------------------------------------------------------------
//
// `LoopPool` is the main entry point: `max_loops` event loops, an
// `AutoScalingChooser` over them and a `UtilizationMonitor` that scales the
// active set between `min_loops` and `max_loops`.
//
//   auto pool = loopscale::LoopPool::create(options);   // validated
//   if (!pool.ok()) { ...pool.status()... }
//   (*pool)->start();
//   asio::ip::tcp::acceptor acceptor((*pool)->loop(0).get_executor(), ep);
//   acceptor.async_accept((*pool)->next(), on_accept);  // socket on a chosen loop
//   ...
//   (*pool)->stop();
//
// `max_loops` 0 makes one loop per CPU (`std::thread::hardware_concurrency()`).
// `start()` starts every loop and the monitor; loops that are not needed are
// suspended as the windows pass, down to `min_loops`. A suspended loop holds
// no thread and wakes when work is submitted to it (a direct post, a timer or
// socket operation on it), so an acceptor or a timer pinned to a loop keeps
// working whatever the monitor decides.
//
// Not yet: `metrics.enabled` (shared-memory publication) is rejected by
// `create()` until the shared-memory publisher lands.
//
// Thread-safety: every member function may be called from any thread, except
// that `stop()` and the destructor must not run on one of the pool's loops.
// `stop()` is terminal: loops do not start again.

#ifndef LOOPSCALE_LOOP_POOL_HPP_
#define LOOPSCALE_LOOP_POOL_HPP_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "loopscale/chooser.hpp"
#include "loopscale/config.hpp"
#include "loopscale/detail/mutex.hpp"
#include "loopscale/event_loop.hpp"
#include "loopscale/pool_stats.hpp"
#include "loopscale/scaling_policy.hpp"
#include "loopscale/utilization_monitor.hpp"

namespace loopscale {

class LoopPool {
 public:
  // Validates `options` and builds the loops (no thread yet). Returns
  // InvalidArgument naming the field for invalid options.
  static absl::StatusOr<std::unique_ptr<LoopPool>> create(PoolOptions options);

  LoopPool(const LoopPool&) = delete;
  LoopPool& operator=(const LoopPool&) = delete;
  // Stops the pool (see `stop()`).
  ~LoopPool();

  // Starts every loop and the monitor thread. Idempotent; does nothing once
  // `stop()` was called.
  void start();
  // Stops the monitor, then every loop: handlers posted before `stop()` run,
  // pending timers and socket operations are abandoned, every thread is
  // joined, and every loop reads kStopped. Idempotent.
  void stop();

  // Returns an executor for new work on the next active loop (the chooser's
  // pick). Wait-free while any loop is active.
  LoopExecutor next() noexcept { return chooser_.next().get_executor(); }

  // Returns loop `index` (< size()).
  EventLoop& loop(std::size_t index) { return *loops_.at(index); }
  // Returns the number of loops: `max_loops`, or one per CPU.
  std::size_t size() const noexcept { return loops_.size(); }
  // Returns the number of loops taking new work.
  std::size_t active_count() const noexcept { return chooser_.active_count(); }

  // Returns every loop's figures and the scaling counters.
  PoolStats stats() const;

  const PoolOptions& options() const noexcept { return options_; }
  UtilizationMonitor<EventLoop>& monitor() noexcept { return monitor_; }
  AutoScalingChooser<EventLoop>& chooser() noexcept { return chooser_; }

 private:
  LoopPool(PoolOptions options, std::vector<std::unique_ptr<EventLoop>> loops);

  const PoolOptions options_;
  const std::vector<std::unique_ptr<EventLoop>> loops_;
  AutoScalingChooser<EventLoop> chooser_;
  UtilizationMonitor<EventLoop> monitor_;
  // Serializes start() and stop(); stop() is terminal.
  detail::Mutex lifecycle_mu_;
  bool stopped_ ABSL_GUARDED_BY(lifecycle_mu_) = false;
};

}  // namespace loopscale

#endif  // LOOPSCALE_LOOP_POOL_HPP_
