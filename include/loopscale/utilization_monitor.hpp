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
//      `is_suspended()` is not, whoever suspended it.
//   5. Wake: `resume()`. Suspend or drain: `try_suspend()`; an executor that
//      refuses is out of rotation ("draining") and asked again every tick
//      until it accepts, so a draining executor suspends within a tick of its
//      work being gone.
//   6. The active set is published to the chooser; listeners run for a
//      decision that acted, on the thread that called `tick()`, before it
//      returns.
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
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "loopscale/chooser.hpp"
#include "loopscale/clock.hpp"
#include "loopscale/config.hpp"
#include "loopscale/detail/mutex.hpp"
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

// One scaling action, as told to listeners.
struct ScaleEvent {
  // The `now` of the tick that acted.
  Clock::time_point at;
  // The tick's number: 0 is the baseline.
  std::uint64_t tick = 0;
  // What was done and why.
  ScaleDecision decision;
};

// What a monitor has done so far. A snapshot.
struct MonitorStats {
  // Ticks that measured a window (the baseline and skipped ticks excluded).
  std::uint64_t ticks = 0;
  std::uint64_t skipped_ticks = 0;
  // Decisions that woke executors (scale_up, below_min).
  std::uint64_t scale_ups = 0;
  // Decisions that suspended or drained executors (scale_down, above_max).
  std::uint64_t scale_downs = 0;
  std::uint64_t executors_woken = 0;
  std::uint64_t executors_suspended = 0;
  std::uint64_t executors_drained = 0;
  // try_suspend() calls that returned false.
  std::uint64_t refusals = 0;
  // The last decision that acted or held a due action; rule kNone if none.
  ScaleDecision last_decision;
  // Per executor, after the last tick.
  std::vector<double> utilizations;
  std::vector<ExecutorStatus> statuses;
  // Per executor, the scheduling lag read at the last tick; zero for an
  // executor that is not active or does not report lag.
  std::vector<std::chrono::nanoseconds> lags;
  ScalingConfig config;
};

template <ScalableExecutor E>
class UtilizationMonitor {
 public:
  // `config` must be valid, or this throws std::invalid_argument naming the
  // field. It should be the configuration the chooser was built with.
  UtilizationMonitor(AutoScalingChooser<E>& chooser, const ScalingConfig& config)
      : chooser_(chooser),
        config_(checked(config)),
        policy_(config, chooser.size()),
        last_busy_(chooser.size()),
        statuses_(chooser.size(), ExecutorStatus::kActive),
        utilizations_(chooser.size(), 0.0),
        lags_(chooser.size()),
        timer_(timer_ctx_) {}
  UtilizationMonitor(const UtilizationMonitor&) = delete;
  UtilizationMonitor& operator=(const UtilizationMonitor&) = delete;
  ~UtilizationMonitor() { stop(); }

  // Runs one cycle for the window that ends at `now` (see the header
  // comment) and returns its decision. Deterministic given the executors'
  // answers.
  ScaleDecision tick(Clock::time_point now);

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
  void add_sink(std::function<void(const ScaleEvent&)> sink) {
    detail::MutexLock lock(tick_mu_);
    sinks_.push_back(std::move(sink));
  }

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

  void arm_timer(Clock::time_point deadline);

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
  bool have_baseline_ ABSL_GUARDED_BY(tick_mu_) = false;
  std::uint64_t tick_count_ ABSL_GUARDED_BY(tick_mu_) = 0;
  std::vector<std::function<void(const ScaleEvent&)>> listeners_
      ABSL_GUARDED_BY(tick_mu_);
  std::vector<std::function<void(const ScaleEvent&)>> sinks_
      ABSL_GUARDED_BY(tick_mu_);
  // Written under both mutexes: ticks read them under tick_mu_, readers
  // under mu_.
  std::vector<ExecutorStatus> statuses_;
  std::vector<double> utilizations_;
  std::vector<std::chrono::nanoseconds> lags_;

  // The periodic thread: an io_context with one timer.
  detail::Mutex life_mu_;
  asio::io_context timer_ctx_;
  asio::steady_timer timer_;
  std::thread thread_ ABSL_GUARDED_BY(life_mu_);
};

// ---- implementation ----------------------------------------------------------

template <ScalableExecutor E>
ScaleDecision UtilizationMonitor<E>::tick(Clock::time_point now) {
  detail::MutexLock tick_lock(tick_mu_);
  const std::size_t n = chooser_.size();
  {
    detail::MutexLock lock(mu_);
    if (pending_config_) {
      policy_.set_config(*pending_config_);
      pending_config_.reset();
    }
  }

  std::vector<std::chrono::nanoseconds> busy(n);
  for (std::size_t i = 0; i < n; ++i) {
    busy[i] = chooser_.executor(i).busy_time();
  }

  std::vector<ExecutorStatus> statuses = statuses_;
  std::vector<LoopObservation> obs(n);
  ScaleDecision d;

  if (!have_baseline_) {
    std::vector<std::size_t> active;
    for (std::size_t i = 0; i < n; ++i) {
      const bool running = !chooser_.executor(i).is_suspended();
      statuses[i] = running ? ExecutorStatus::kActive : ExecutorStatus::kSuspended;
      obs[i].status = statuses[i];
      if constexpr (LagReportingExecutor<E>) {
        if (running) chooser_.executor(i).scheduling_lag();  // first probe
      }
      // Executors running beyond the bound leave at the first decision;
      // meanwhile they get no new work.
      if (running && active.size() < policy_.max_active()) active.push_back(i);
    }
    policy_.baseline(obs);
    chooser_.publish(active);
    last_busy_ = std::move(busy);
    last_tick_ = now;
    have_baseline_ = true;
    d.rule = ScaleRule::kBaseline;
    d.active_before = d.active_after = active.size();
    d.utilizations.assign(n, 0.0);
    {
      detail::MutexLock lock(mu_);
      statuses_ = std::move(statuses);
    }
    if (!sinks_.empty()) {
      const ScaleEvent event{now, tick_count_, d};
      for (const auto& sink : sinks_) sink(event);
    }
    return d;
  }

  const auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(
      now - last_tick_);
  if (elapsed <= std::chrono::nanoseconds::zero()) {
    d.rule = ScaleRule::kClockSkipped;
    detail::MutexLock lock(mu_);
    ++stats_.skipped_ticks;
    return d;
  }
  ++tick_count_;

  for (std::size_t i = 0; i < n; ++i) {
    E& e = chooser_.executor(i);
    const bool suspended = e.is_suspended();
    ExecutorStatus& st = statuses[i];
    if (st == ExecutorStatus::kDraining) {
      if (suspended) st = ExecutorStatus::kSuspended;
    } else {
      st = suspended ? ExecutorStatus::kSuspended : ExecutorStatus::kActive;
    }
    const auto delta = busy[i] - last_busy_[i];
    double u = static_cast<double>(delta.count()) /
               static_cast<double>(elapsed.count());
    if (st == ExecutorStatus::kSuspended || !(u > 0.0)) u = 0.0;
    std::chrono::nanoseconds lag{0};
    if constexpr (LagReportingExecutor<E>) {
      if (st == ExecutorStatus::kActive) lag = e.scheduling_lag();
    }
    obs[i] = LoopObservation{st, std::min(u, 1.0), e.registrations(), lag};
  }

  d = policy_.decide(obs);

  for (std::size_t i : d.wake) {
    chooser_.executor(i).resume();
    statuses[i] = ExecutorStatus::kActive;
  }
  std::uint64_t refusals = 0;
  auto ask_to_suspend = [&](std::size_t i) {
    const bool accepted = chooser_.executor(i).try_suspend();
    statuses[i] = accepted ? ExecutorStatus::kSuspended : ExecutorStatus::kDraining;
    if (!accepted) ++refusals;
    return accepted;
  };
  for (const auto* victims : {&d.suspend, &d.drain}) {
    for (std::size_t i : *victims) {
      if (!ask_to_suspend(i)) d.refused.push_back(i);
    }
  }
  // Executors that refused at an earlier tick are asked again.
  for (std::size_t i = 0; i < n; ++i) {
    if (obs[i].status == ExecutorStatus::kDraining &&
        statuses[i] == ExecutorStatus::kDraining) {
      ask_to_suspend(i);
    }
  }

  std::vector<std::size_t> active;
  for (std::size_t i = 0; i < n; ++i) {
    if (statuses[i] == ExecutorStatus::kActive) active.push_back(i);
  }
  chooser_.publish(active);
  last_busy_ = std::move(busy);
  last_tick_ = now;

  {
    detail::MutexLock lock(mu_);
    statuses_ = std::move(statuses);
    for (std::size_t i = 0; i < n; ++i) {
      utilizations_[i] = obs[i].utilization;
      lags_[i] = obs[i].lag;
    }
    ++stats_.ticks;
    if (!d.wake.empty()) ++stats_.scale_ups;
    if (!d.suspend.empty() || !d.drain.empty()) ++stats_.scale_downs;
    stats_.executors_woken += d.wake.size();
    stats_.executors_suspended += d.suspend.size();
    stats_.executors_drained += d.drain.size();
    stats_.refusals += refusals;
    if (d.acted() || d.held != HoldReason::kNone) stats_.last_decision = d;
  }

  if (d.acted() || !sinks_.empty()) {
    const ScaleEvent event{now, tick_count_, d};
    if (d.acted()) {
      for (const auto& listener : listeners_) listener(event);
    }
    for (const auto& sink : sinks_) sink(event);
  }
  return d;
}

template <ScalableExecutor E>
void UtilizationMonitor<E>::start() {
  detail::MutexLock lock(life_mu_);
  if (thread_.joinable()) return;
  const Clock::time_point now = Clock::now();
  tick(now);  // the baseline, if none was taken yet
  timer_ctx_.restart();
  arm_timer(now + config().window);
  thread_ = std::thread([this] { timer_ctx_.run(); });
}

template <ScalableExecutor E>
void UtilizationMonitor<E>::stop() {
  detail::MutexLock lock(life_mu_);
  if (!thread_.joinable()) return;
  timer_ctx_.stop();
  thread_.join();
}

template <ScalableExecutor E>
void UtilizationMonitor<E>::arm_timer(Clock::time_point deadline) {
  timer_.expires_at(deadline);
  timer_.async_wait([this](const std::error_code& ec) {
    if (ec) return;  // cancelled by a restart
    const Clock::time_point now = Clock::now();
    tick(now);
    // Ticks stay on a fixed grid of windows unless the thread fell a whole
    // window behind (a stalled machine): then the grid restarts from now
    // rather than firing a burst of back-to-back ticks.
    Clock::time_point next = timer_.expiry() + config().window;
    if (next <= now) next = now + config().window;
    arm_timer(next);
  });
}

}  // namespace loopscale

#endif  // LOOPSCALE_UTILIZATION_MONITOR_HPP_
