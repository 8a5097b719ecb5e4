// One event loop of the request-level simulator (request_sim.hpp): a FIFO of
// handlers run one at a time, each taking a known time, as an `EventLoop`
// runs its ready completions. `RequestLoop` models ScalableExecutor,
// LagReportingExecutor and RebalancingExecutor, so the real
// `UtilizationMonitor` and `AutoScalingChooser` drive it.
//
// A handler's effect (a request served, a connection moved) is decided when
// it starts, as the library's session decides when its read completion runs,
// and takes place when it ends. The simulator (request_sim.cpp) owns the
// decisions; this type keeps the queue, the clock readings and the answers
// the monitor asks for.
//
// Thread-safety: none; the simulator is single-threaded.

#ifndef LOOPSCALE_BENCHMARKS_SCALING_SIM_REQUEST_LOOP_HPP_
#define LOOPSCALE_BENCHMARKS_SCALING_SIM_REQUEST_LOOP_HPP_

#include <chrono>
#include <cstddef>
#include <deque>

#include "loopscale/chooser.hpp"
#include "loopscale/utilization_monitor.hpp"
#include "sim_loop.hpp"

namespace loopscale::sim {

// What a loop's queue holds.
struct Handler {
  enum class Kind {
    kRead,         // a request has arrived on `connection`
    kAccept,       // the listener's accept completion (this loop holds it)
    kInterrupt,    // request_moves' post: interrupts waiting connections
    kInterrupted,  // a waiting connection's cancelled read
    kProbe,        // the lag probe
  };
  Kind kind = Kind::kRead;
  std::size_t connection = 0;
  // kRead: when the client sent the request. kProbe: when it was posted.
  double at = 0.0;
};

struct RequestLoop {
  // The simulator's clock, seconds (shared by every loop).
  const double* clock = nullptr;
  std::deque<Handler> queue;
  // The handler running, if `running`, and when it ends.
  bool running = false;
  Handler current;
  double started = 0.0;
  double ends = 0.0;
  // Busy seconds of the handlers that ended.
  double busy = 0.0;
  bool suspended = false;
  std::size_t connections = 0;
  std::size_t move_quota = 0;
  // An interruption is queued and has not run yet (EventLoop's
  // interrupt_queued_): request_moves posts at most one.
  bool interrupt_queued = false;
  // The lag probe: its last reading, and the one in flight.
  double last_lag = 0.0;
  bool probe_pending = false;
  double probe_posted = 0.0;

  // --- ScalableExecutor ---
  // Includes the handler in progress, as an EventLoop's busy total does.
  std::chrono::nanoseconds busy_time() const {
    const double in_progress = running ? *clock - started : 0.0;
    return to_ns(busy + in_progress);
  }
  bool try_suspend() {
    if (connections > 0) return false;
    suspended = true;
    return true;
  }
  void resume() { suspended = false; }
  bool is_suspended() const { return suspended; }
  std::size_t registrations() const { return connections; }

  // --- RebalancingExecutor ---
  void request_moves(std::size_t n) {
    move_quota = n;
    if (n == 0 || interrupt_queued) return;
    interrupt_queued = true;
    queue.push_back({Handler::Kind::kInterrupt, 0, *clock});
  }
  bool claim_move() {
    if (move_quota == 0) return false;
    --move_quota;
    return true;
  }

  // --- LagReportingExecutor ---
  // Posted behind the queue at one call, read at the next; a probe still
  // waiting reads its age so far.
  std::chrono::nanoseconds scheduling_lag() {
    if (probe_pending) return to_ns(std::max(last_lag, *clock - probe_posted));
    probe_pending = true;
    probe_posted = *clock;
    queue.push_back({Handler::Kind::kProbe, 0, *clock});
    return to_ns(last_lag);
  }
};
static_assert(ScalableExecutor<RequestLoop>);
static_assert(LagReportingExecutor<RequestLoop>);
static_assert(RebalancingExecutor<RequestLoop>);

}  // namespace loopscale::sim

#endif  // LOOPSCALE_BENCHMARKS_SCALING_SIM_REQUEST_LOOP_HPP_
