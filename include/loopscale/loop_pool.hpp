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
// `max_loops` 0 makes one loop per CPU the process can use: the online CPUs
// narrowed by its affinity mask and its cgroup's CPU quota
// (loopscale/cpu_limit.hpp); `stats().size_limited_by` and one line on
// stderr say what narrowed them.
// `start()` starts every loop and the monitor; loops that are not needed are
// suspended as the windows pass, down to `min_loops`. A suspended loop holds
// no thread and wakes when work is submitted to it (a direct post, a timer or
// socket operation on it), so an acceptor or a timer pinned to a loop keeps
// working whatever the monitor decides.
//
// Metrics: with `metrics.enabled`, `create()` attaches a `shm::Publisher` to
// the shared-memory file and the pool publishes its figures at every monitor
// tick (and once at `start()` and `stop()`); `stop()` releases the segment.
// A file that cannot be used (a symlink, a full or unwritable location,
// another user's or a corrupt file) does not stop the pool: it runs without
// metrics, `metrics_status()` returns the error, and one line goes to stderr.
//
// Thread-safety: every member function may be called from any thread, except
// that `stop()` and the destructor must not run on one of the pool's loops.
// `stop()` is terminal: loops do not start again.

#ifndef LOOPSCALE_LOOP_POOL_HPP_
#define LOOPSCALE_LOOP_POOL_HPP_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "loopscale/chooser.hpp"
#include "loopscale/config.hpp"
#include "loopscale/detail/mutex.hpp"
#include "loopscale/event_loop.hpp"
#include "loopscale/pool_stats.hpp"
#include "loopscale/scaling_policy.hpp"
#include "loopscale/shm/publisher.hpp"
#include "loopscale/utilization_monitor.hpp"

namespace loopscale {

class LoopPool {
 public:
  // Validates `options` and builds the loops (no thread yet). Returns
  // InvalidArgument naming the field for invalid options, ResourceExhausted
  // if a loop's reactor cannot be made (out of descriptors: each loop holds
  // three from here on, see `EventLoop::EventLoop`).
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

  // Returns the loop a connection leaving `from` should move to: the active
  // loop with the fewest connections, if moving there evens the counts out
  // (`from` is out of rotation, or the target holds at least two fewer);
  // nullptr otherwise, and when `from` is the only active loop. Lock-free.
  EventLoop* rebalance_target(const EventLoop& from) const noexcept;

  // For a graceful shutdown: asks every session on every loop to close
  // after the answer it is giving (`EventLoop::request_close()`); idle ones
  // close at once. Then wait for `connections()` to reach zero (with a
  // deadline of your choosing: the overload below) before `stop()`.
  void close_connections();
  // The graceful stop in one call: `close_connections()`, then waits until
  // no connection is left or `deadline` passes, whichever comes first.
  // Returns true if none is left. Call it from outside the pool's loops
  // (their sessions could not finish while one of them waits), after
  // closing the listeners (a connection accepted meanwhile counts too):
  //
  //   listener->close();
  //   listener->wait_closed();
  //   pool.close_connections(std::chrono::steady_clock::now() + 10s);
  //   pool.stop();
  bool close_connections(std::chrono::steady_clock::time_point deadline);
  // Returns the connections (registrations) on all loops.
  std::size_t connections() const noexcept;

  // Returns every loop's figures and the scaling counters.
  PoolStats stats() const;

  // OK if metrics are off or being published; otherwise why they are not.
  const absl::Status& metrics_status() const noexcept { return metrics_status_; }
  // The publisher, or nullptr when metrics are off or failed to attach.
  const shm::Publisher* publisher() const noexcept { return publisher_.get(); }

  // Calls `listener` for every tick of the monitor that acts, with what it
  // did and why (`UtilizationMonitor::add_listener`).
  void add_listener(std::function<void(const ScaleEvent&)> listener) {
    monitor_.add_listener(std::move(listener));
  }
  // Calls `sink` at the end of every monitor tick that measured a window (or
  // took the baseline), whether it acted or not, with the tick's decision and
  // figures (`UtilizationMonitor::add_sink`): a load report refreshed once a
  // window reads them here instead of asking the loops again.
  void add_sink(std::function<void(const TickReport&)> sink) {
    monitor_.add_sink(std::move(sink));
  }
  // Calls `listener` when shedding begins or ends (overload.hpp).
  void add_overload_listener(std::function<void(const OverloadEvent&)> listener) {
    monitor_.add_overload_listener(std::move(listener));
  }
  // Where servers on the pool ask whether to take on work while it is
  // overloaded (admission.hpp; `Session::admit()` asks here).
  Admission& admission() noexcept { return monitor_.admission(); }
  // Retunes the scaling from the next tick on (`UtilizationMonitor::
  // update_config`): InvalidArgument naming the field, and no change, for an
  // invalid config. The pool keeps its number of loops.
  absl::Status update_config(const ScalingConfig& config) {
    return monitor_.update_config(config);
  }

  const PoolOptions& options() const noexcept { return options_; }
  UtilizationMonitor<EventLoop>& monitor() noexcept { return monitor_; }
  AutoScalingChooser<EventLoop>& chooser() noexcept { return chooser_; }

 private:
  LoopPool(PoolOptions options, std::vector<std::unique_ptr<EventLoop>> loops,
           std::unique_ptr<shm::Publisher> publisher, absl::Status metrics_status,
           std::string size_limited_by);

  // Publishes the figures a tick left (or, with no report, the current
  // ones) if metrics are on.
  void publish(const MonitorStats& monitor);
  // The pool's figures, with the monitor's from `monitor`.
  PoolStats stats(const MonitorStats& monitor) const;

  const PoolOptions options_;
  const std::vector<std::unique_ptr<EventLoop>> loops_;
  AutoScalingChooser<EventLoop> chooser_;
  UtilizationMonitor<EventLoop> monitor_;
  const std::unique_ptr<shm::Publisher> publisher_;
  const absl::Status metrics_status_;
  const std::string size_limited_by_;
  // Serializes start() and stop(); stop() is terminal.
  detail::Mutex lifecycle_mu_;
  bool stopped_ ABSL_GUARDED_BY(lifecycle_mu_) = false;
};

}  // namespace loopscale

#endif  // LOOPSCALE_LOOP_POOL_HPP_
