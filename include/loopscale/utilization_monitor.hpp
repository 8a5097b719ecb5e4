// -----------------------------------------------------------------------------
// utilization_monitor.hpp
// -----------------------------------------------------------------------------
//
// `UtilizationMonitor<E>` closes the loop: at every tick it reads each
// executor's busy time, turns the deltas into utilizations over the window,
// asks `ScalingPolicy` what to do, wakes, suspends or drains executors,
// publishes the new active set to the `AutoScalingChooser`, and tells its
// listeners what it did and why.
//
//   AutoScalingChooser<MyExecutor> chooser(executors, config);
//   UtilizationMonitor<MyExecutor> monitor(chooser, config);
//   monitor.add_listener([](const ScaleEvent& e) { log(e.decision.reason); });
//   monitor.start();                     // ticks every `window` on a thread
//   ...
//   monitor.update_config(retuned);      // applies at the next tick
//   monitor.stop();
//
// Or drive it by hand, as the deterministic tests and the simulator do:
//
//   monitor.tick(t0);                    // baseline: measures, decides nothing
//   monitor.tick(t0 + window);           // first decision
//
// A tick, precisely:
//   1. The first tick records a baseline (busy times, now, which executors
//      are running) and decides nothing: N windows take N + 1 ticks.
//   2. If `now` is not after the previous tick (a clock going backwards, or
//      two ticks at the same instant), the tick is skipped and changes
//      nothing (`ScaleRule::kClockSkipped`).
//   3. u = Δbusy / (now − previous tick), clamped to [0, 1]; 0 for an
//      executor that was suspended. An executor that offers
//      `scheduling_lag()` (`LagReportingExecutor`) is asked for it if it is
//      active: the wait of its last probe, which the call also replaces by a
//      new one, so one probe per loop per window (`ScaleSignal::kTarget`
//      uses it; every signal publishes it).
//   4. Statuses come from the executors themselves, every tick: an executor
//      that reads `!is_suspended()` is active even if the monitor had
//      suspended it (someone posted to it: Netty #15650), and one that reads
//      `is_suspended()` is not, whoever suspended it. "Draining" means one
//      thing: out of rotation, still serving, waiting for its connections
//      (or other work) to end. An executor that says so itself
//      (`DrainingExecutor`: an `EventLoop` that is kDraining or kSuspending)
//      is draining; so is one that refused `try_suspend()` and has not
//      suspended since.
//   5. Wake: `resume()`; a draining executor is taken back before a thread
//      is started for a suspended one. An executor whose thread could not be
//      started (`ResumingExecutor`) is tried again.
//   6. The active set that stays is published to the chooser before anything
//      is asked to leave, so that a connection or listener that moves
//      meanwhile goes to a loop that stays (work submitted to a draining
//      `EventLoop` would take it back).
//   7. Suspend or drain: `try_suspend()`. A draining executor is asked
//      again every tick, so it suspends within a tick of its work being
//      gone.
//   8. Connections (`RebalancingExecutor`, with
//      `ScalingConfig::rebalance_connections`): every executor is told how
//      many of its connections should leave it in the next window
//      (`ScalingPolicy::plan_moves`): all of a draining one's, the excess
//      of an active one that holds more than its share. Each request
//      replaces the last, so an unclaimed request does not pile up.
//   9. Overload (`ScalingConfig::overload`, overload.hpp): the active loops'
//      mean utilization and lag update the overload level, which goes to
//      `admission()`; while the pool is at its bound with overload on, the
//      level is also updated every kOverloadCheckInterval between ticks.
//      Overload listeners hear when shedding begins and ends.
//  10. Listeners run for a decision that acted, sinks for every measured
//      tick, on the thread that called `tick()`, before it returns.
//
// Between ticks (`ScalingConfig::fast_up_interval`) the monitor's thread
// also calls `check_saturation()` every interval while the pool can grow:
// a loop that saturates mid-window wakes loops then, not at the window's
// end (the scale-up path only, at most once per window; see
// scaling_policy.hpp, "Fast up"). A check reads the busy totals a tick
// reads and nothing else, so the loops pay nothing for it.
//
// A listener or sink that throws is counted (`MonitorStats::
// callback_failures`), reported once on stderr, and the tick goes on.
//
// A tick that takes longer than a window (a slow sink, a stalled machine)
// delays the next one; the monitor's thread then restarts its grid of
// windows from now instead of firing the ticks it missed back to back, and
// the next utilization is measured over the longer window.
//
// Thread-safety: every member function may be called from any thread.
// Ticks are serialized; `utilizations()`, `stats()` and `update_config()` do
// not wait for a tick in progress. Listeners must not call `tick()`,
// `add_listener()` or `stop()` (they run inside a tick), but may call the
// other members. The chooser and its executors must outlive the monitor.

#ifndef LOOPSCALE_UTILIZATION_MONITOR_HPP_
#define LOOPSCALE_UTILIZATION_MONITOR_HPP_

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "loopscale/admission.hpp"
#include "loopscale/chooser.hpp"
#include "loopscale/clock.hpp"
#include "loopscale/config.hpp"
#include "loopscale/detail/mutex.hpp"
#include "loopscale/lag_histogram.hpp"
#include "loopscale/overload.hpp"
#include "loopscale/scaling_policy.hpp"

namespace loopscale {

// An executor that measures its scheduling lag: how long a handler posted to
// it waits before it runs (Node's `monitorEventLoopDelay`, Envoy's
// `poll_delay`). Optional: the monitor uses it when an executor offers it.
// `scheduling_lag()` returns the wait of the last probe, or how long the
// probe in flight has waited so far if that is longer (a loop stuck in one
// long handler must not read as prompt), and starts the next probe. The
// monitor calls it once per tick per active executor, from its thread.
template <class E>
concept LagReportingExecutor = requires(E& e) {
  { e.scheduling_lag() } -> std::convertible_to<std::chrono::nanoseconds>;
};

// An executor that says when it is out of rotation but still serving
// (draining): the monitor takes such an executor back before it starts a
// thread for a suspended one, and asks it to suspend again at every tick.
// Optional; without it an executor is draining while it refuses
// `try_suspend()`.
template <class E>
concept DrainingExecutor = requires(const E& e) {
  { e.is_draining() } -> std::same_as<bool>;
};

// An executor that can fail to start its thread and retry later
// (`EventLoop`: work waits queued). The monitor retries at every tick.
template <class E>
concept ResumingExecutor = requires(const E& e) {
  { e.resume_pending() } -> std::same_as<bool>;
};

// An executor whose connections can move to another executor
// (`EventLoop`: loopscale/session.hpp). `request_moves(n)` asks up to `n`
// of its connections to leave, replacing the previous request; connections
// claim the request at their next boundary. Called by the monitor once per
// tick, from its thread.
template <class E>
concept RebalancingExecutor = requires(E& e, std::size_t n) {
  { e.request_moves(n) };
};

// One scaling action, as told to listeners.
struct ScaleEvent {
  // The `now` of the tick that acted.
  Clock::time_point at;
  // The tick's number: 0 is the baseline.
  std::uint64_t tick = 0;
  // What was done and why.
  ScaleDecision decision;
};

// Shedding began (the overload level rose from 0) or ended (fell to 0).
struct OverloadEvent {
  Clock::time_point at;
  // The new level: above 0 when shedding began, 0 when it ended.
  double level = 0.0;
  // `OverloadController::reason()`.
  std::string reason;
};

// What a monitor has done so far. A snapshot.
struct MonitorStats {
  // Ticks that measured a window (the baseline and skipped ticks excluded).
  std::uint64_t ticks = 0;
  std::uint64_t skipped_ticks = 0;
  // Decisions that woke executors (scale_up, target_up, fast_up, below_min).
  std::uint64_t scale_ups = 0;
  // Of those, the ones taken between ticks (fast_up).
  std::uint64_t fast_ups = 0;
  // Decisions that suspended or drained executors (scale_down, above_max).
  std::uint64_t scale_downs = 0;
  std::uint64_t executors_woken = 0;
  std::uint64_t executors_suspended = 0;
  std::uint64_t executors_drained = 0;
  // try_suspend() calls that returned false.
  std::uint64_t refusals = 0;
  // Listener and sink calls that threw (the first is reported on stderr;
  // the monitor goes on).
  std::uint64_t callback_failures = 0;
  // The last decision that acted or held a due action; rule kNone if none.
  ScaleDecision last_decision;
  // Per executor, after the last tick.
  std::vector<double> utilizations;
  std::vector<ExecutorStatus> statuses;
  // Per executor, the scheduling lag read at the last tick; zero for an
  // executor that is not active or does not report lag.
  std::vector<std::chrono::nanoseconds> lags;
  // Connections asked to move, summed over ticks (each tick's requests,
  // `ScaleDecision::moves`; a connection asked at two ticks counts twice).
  std::uint64_t moves_requested = 0;
  // Per executor, the length of every window it was active in, summed: over
  // a range, busy time ÷ active time is its utilization while it served.
  std::vector<std::chrono::nanoseconds> active_time;
  // The lags above of active executors, every window's (executors that
  // report lag only).
  LagHistogram lag_histogram;
  // The overload level in force (admission.hpp; an injected one included),
  // why the controller set it, and how many times shedding began.
  double overload_level = 0.0;
  std::string overload_reason;
  std::uint64_t overload_episodes = 0;
  ScalingConfig config;
};

// What sinks hear at the end of every tick that took the baseline or
// measured a window: the tick's decision and the monitor's figures as the
// tick left them, so that a sink publishing them does not ask again.
struct TickReport {
  ScaleEvent event;
  MonitorStats stats;
};

template <ScalableExecutor E>
class UtilizationMonitor {
 public:
  // `config` must be valid, or this throws std::invalid_argument naming the
  // field (`create()` returns it as a status). It should be the
  // configuration the chooser was built with.
  UtilizationMonitor(AutoScalingChooser<E>& chooser, const ScalingConfig& config)
      : chooser_(chooser),
        config_(checked(config)),
        stats_(initial_stats(chooser.size())),
        policy_(config, chooser.size()),
        last_busy_(chooser.size()),
        check_busy_(chooser.size()),
        statuses_(chooser.size(), ExecutorStatus::kActive),
        utilizations_(chooser.size(), 0.0),
        lags_(chooser.size()),
        admission_(chooser.size()),
        timer_(timer_ctx_) {}
  UtilizationMonitor(const UtilizationMonitor&) = delete;
  UtilizationMonitor& operator=(const UtilizationMonitor&) = delete;

  // The constructor's check as a status: InvalidArgument naming the field.
  static absl::StatusOr<std::unique_ptr<UtilizationMonitor>> create(
      AutoScalingChooser<E>& chooser, const ScalingConfig& config) {
    if (absl::Status s = validate(config); !s.ok()) {
      return absl::InvalidArgumentError("UtilizationMonitor: " +
                                        std::string(s.message()));
    }
    return std::make_unique<UtilizationMonitor>(chooser, config);
  }
  ~UtilizationMonitor() { stop(); }

  // Runs one cycle for the window that ends at `now` (see the header
  // comment) and returns its decision. Deterministic given the executors'
  // answers.
  ScaleDecision tick(Clock::time_point now);

  // Between two ticks: measures the executors over the time since the last
  // tick or check and, if an active one is saturated and the pool can grow,
  // wakes executors at once (`ScalingPolicy::decide_fast`, rule kFastUp),
  // applied as a tick's decision is (moves included); listeners hear it.
  // Until the next tick the saturated executors stay out of the chooser's
  // rotation, so that new work goes to the others. Returns rule kNone and
  // changes nothing otherwise. Runs no sinks (the next tick publishes), and
  // reads no lag unless overload is on and the pool at its bound: then it
  // updates the overload level too (step 9 of a tick). The monitor's thread
  // calls it; tests call it by hand.
  ScaleDecision check_saturation(Clock::time_point now);

  // Starts a thread that ticks every `window` (the current configuration's;
  // a retuned window applies from the next tick), beginning with a baseline
  // if none was taken. Idempotent.
  void start();
  // Stops and joins the thread. Idempotent; `start()` may follow.
  void stop();

  // Returns each executor's utilization in the last window; 0 while
  // suspended and before the first window.
  std::vector<double> utilizations() const {
    detail::MutexLock lock(mu_);
    return utilizations_;
  }

  // Returns each executor's status as of the last tick.
  std::vector<ExecutorStatus> statuses() const {
    detail::MutexLock lock(mu_);
    return statuses_;
  }

  // Returns the counters, the last decision and the current figures.
  MonitorStats stats() const {
    detail::MutexLock lock(mu_);
    MonitorStats s = stats_;
    s.utilizations = utilizations_;
    s.statuses = statuses_;
    s.lags = lags_;
    s.config = config_;
    s.overload_level = admission_.level();
    return s;
  }

  // Calls `listener` for every tick that acts, from the ticking thread.
  void add_listener(std::function<void(const ScaleEvent&)> listener) {
    detail::MutexLock lock(tick_mu_);
    listeners_.push_back(std::move(listener));
  }

  // Calls `sink` at the end of every tick that took the baseline or measured
  // a window, whether it acted or not, from the ticking thread: where a
  // pool publishes its figures (shm::Publisher). Same rules as listeners.
  void add_sink(std::function<void(const TickReport&)> sink) {
    detail::MutexLock lock(tick_mu_);
    sinks_.push_back(std::move(sink));
  }

  // Calls `listener` when shedding begins or ends (overload.hpp), from the
  // ticking thread. Same rules as listeners.
  void add_overload_listener(std::function<void(const OverloadEvent&)> listener) {
    detail::MutexLock lock(tick_mu_);
    overload_listeners_.push_back(std::move(listener));
  }

  // Where servers ask whether to take on work (admission.hpp): the level
  // this monitor sets.
  Admission& admission() noexcept { return admission_; }
  const Admission& admission() const noexcept { return admission_; }

  // Replaces the configuration from the next tick on; thresholds, patience,
  // bounds, ramps, cooldown, signal and window can all be retuned live.
  // Returns InvalidArgument (and changes nothing) for an invalid config.
  absl::Status update_config(const ScalingConfig& config) {
    if (absl::Status s = validate(config); !s.ok()) return s;
    detail::MutexLock lock(mu_);
    config_ = config;
    pending_config_ = config;
    return absl::OkStatus();
  }

  // Returns the configuration most recently given (applied at the next tick).
  ScalingConfig config() const {
    detail::MutexLock lock(mu_);
    return config_;
  }

 private:
  static const ScalingConfig& checked(const ScalingConfig& config) {
    if (absl::Status s = validate(config); !s.ok()) {
      throw std::invalid_argument("UtilizationMonitor: " +
                                  std::string(s.message()));
    }
    return config;
  }

  // What one tick saw of the executors: their figures for the policy, and
  // the busy totals that become the next tick's baseline.
  struct Observation {
    std::chrono::nanoseconds elapsed{0};
    std::vector<LoopObservation> loops;
    std::vector<std::chrono::nanoseconds> busy;
  };

  // The steps of `tick()`, in order (see the header comment).
  void take_pending_config() ABSL_EXCLUSIVE_LOCKS_REQUIRED(tick_mu_);
  ScaleDecision take_baseline(Clock::time_point now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(tick_mu_);
  ScaleDecision skip_tick();
  // Utilizations over `elapsed`, from the busy totals `since`; asks
  // executors for their lag (and so starts a new probe) if `read_lag`.
  Observation observe(std::chrono::nanoseconds elapsed,
                      const std::vector<std::chrono::nanoseconds>& since,
                      bool read_lag) ABSL_EXCLUSIVE_LOCKS_REQUIRED(tick_mu_);
  // What applying a decision left behind.
  struct Applied {
    std::vector<ExecutorStatus> statuses;
    // try_suspend() calls that returned false.
    std::uint64_t refusals = 0;
  };
  // Wakes as `d` says, publishes the active set that stays (without
  // `out_of_rotation`, unless that leaves none), then suspends and drains,
  // asks draining executors again and requests connection moves. Fills
  // `d.refused` and `d.moves`.
  Applied apply(ScaleDecision& d, const Observation& obs,
                std::span<const std::size_t> out_of_rotation = {})
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(tick_mu_);
  // Publishes the executors active in `statuses` that `d` does not suspend
  // or drain, without `out_of_rotation` unless that leaves none.
  void publish_staying(const ScaleDecision& d, const std::vector<ExecutorStatus>& statuses,
                       std::span<const std::size_t> out_of_rotation)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(tick_mu_);
  void report(Clock::time_point now, const ScaleDecision& d,
              const Observation& obs, Applied applied)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(tick_mu_);
  // The counters every decision adds to. Caller holds mu_.
  void count(const ScaleDecision& d, const Applied& applied)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void run_sinks(const ScaleEvent& event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(tick_mu_);
  // Step 9: updates the overload level from `obs` under `config` (the
  // caller's copy: one read of the configuration per tick or check).
  void update_overload(Clock::time_point now, const Observation& obs,
                       const ScalingConfig& config) ABSL_EXCLUSIVE_LOCKS_REQUIRED(tick_mu_);
  // Whether overload checks run between ticks now: overload on and the pool
  // at its bound.
  bool overload_checks(const ScalingConfig& c) const;
  // Calls a listener or sink; an exception is counted and reported.
  template <class Callback, class Arg>
  void call_guarded(const Callback& callback, const Arg& arg);
  void note_callback_failure(const char* what);

  // Returns executor `i`'s status as it reports it; `was` is the status the
  // monitor last left it in (a refusal is remembered as draining).
  ExecutorStatus status_of(std::size_t i, ExecutorStatus was) const;
  // Asks executor `i` to suspend; sets `status` to the status it is left
  // in and returns whether it accepted.
  bool ask_to_suspend(std::size_t i, ExecutorStatus& status);

  void arm_timer(Clock::time_point deadline);
  // When the monitor's thread wakes next: the next tick, or the next
  // saturation check before it.
  Clock::time_point next_wakeup(Clock::time_point now) const;

  static MonitorStats initial_stats(std::size_t executors) {
    MonitorStats s;
    s.active_time.assign(executors, std::chrono::nanoseconds(0));
    return s;
  }

  AutoScalingChooser<E>& chooser_;

  // Guards the figures readers see, and the configuration.
  mutable detail::Mutex mu_;
  ScalingConfig config_ ABSL_GUARDED_BY(mu_);
  std::optional<ScalingConfig> pending_config_ ABSL_GUARDED_BY(mu_);
  MonitorStats stats_ ABSL_GUARDED_BY(mu_);

  // Serializes ticks; guards the decision state.
  detail::Mutex tick_mu_;
  ScalingPolicy policy_ ABSL_GUARDED_BY(tick_mu_);
  std::vector<std::chrono::nanoseconds> last_busy_ ABSL_GUARDED_BY(tick_mu_);
  Clock::time_point last_tick_ ABSL_GUARDED_BY(tick_mu_);
  // The busy totals and time of the last tick or saturation check.
  std::vector<std::chrono::nanoseconds> check_busy_ ABSL_GUARDED_BY(tick_mu_);
  Clock::time_point last_check_ ABSL_GUARDED_BY(tick_mu_);
  bool have_baseline_ ABSL_GUARDED_BY(tick_mu_) = false;
  std::uint64_t tick_count_ ABSL_GUARDED_BY(tick_mu_) = 0;
  std::vector<std::function<void(const ScaleEvent&)>> listeners_
      ABSL_GUARDED_BY(tick_mu_);
  std::vector<std::function<void(const TickReport&)>> sinks_
      ABSL_GUARDED_BY(tick_mu_);
  std::vector<std::function<void(const OverloadEvent&)>> overload_listeners_
      ABSL_GUARDED_BY(tick_mu_);
  OverloadController overload_ ABSL_GUARDED_BY(tick_mu_);
  // Written under both mutexes: ticks read them under tick_mu_, readers
  // under mu_.
  std::vector<ExecutorStatus> statuses_;
  std::vector<double> utilizations_;
  std::vector<std::chrono::nanoseconds> lags_;
  Admission admission_;

  // The periodic thread: an io_context with one timer.
  detail::Mutex life_mu_;
  asio::io_context timer_ctx_;
  asio::steady_timer timer_;
  // The timer thread's (and start()'s before it runs): when the next tick is
  // due.
  Clock::time_point next_tick_;
  std::thread thread_ ABSL_GUARDED_BY(life_mu_);
};

}  // namespace loopscale

#include "loopscale/impl/utilization_monitor.hpp"

#endif  // LOOPSCALE_UTILIZATION_MONITOR_HPP_
