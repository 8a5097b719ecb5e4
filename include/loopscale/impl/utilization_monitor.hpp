// Template definitions of UtilizationMonitor (utilization_monitor.hpp): one
// tick is observe -> decide (ScalingPolicy) -> apply -> report.

#ifndef LOOPSCALE_IMPL_UTILIZATION_MONITOR_HPP_
#define LOOPSCALE_IMPL_UTILIZATION_MONITOR_HPP_

namespace loopscale {

template <ScalableExecutor E>
ScaleDecision UtilizationMonitor<E>::tick(Clock::time_point now) {
  detail::MutexLock tick_lock(tick_mu_);
  take_pending_config();
  if (!have_baseline_) return take_baseline(now);
  const auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(
      now - last_tick_);
  if (elapsed <= std::chrono::nanoseconds::zero()) return skip_tick();
  ++tick_count_;
  Observation obs = observe(elapsed, last_busy_, /*read_lag=*/true);
  ScaleDecision d = policy_.decide(obs.loops);
  Applied applied = apply(d, obs);
  update_overload(now, obs, config());
  check_busy_ = obs.busy;
  last_busy_ = std::move(obs.busy);
  last_tick_ = last_check_ = now;
  report(now, d, obs, std::move(applied));
  return d;
}

template <ScalableExecutor E>
ScaleDecision UtilizationMonitor<E>::check_saturation(Clock::time_point now) {
  detail::MutexLock tick_lock(tick_mu_);
  take_pending_config();
  if (!have_baseline_) return {};
  const auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(
      now - last_check_);
  if (elapsed <= std::chrono::nanoseconds::zero()) return {};
  const ScalingConfig c = config();
  const bool overload_check = overload_checks(c);
  Observation obs = observe(elapsed, check_busy_, /*read_lag=*/overload_check);
  check_busy_ = std::move(obs.busy);
  last_check_ = now;
  if (overload_check) update_overload(now, obs, c);
  ScaleDecision d = policy_.decide_fast(obs.loops);
  if (!d.acted()) return d;
  // Until the next tick the saturated executors get no new work.
  Applied applied = apply(d, obs, d.voters);
  {
    detail::MutexLock lock(mu_);
    statuses_ = std::move(applied.statuses);
    ++stats_.fast_ups;
    count(d, applied);
  }
  const ScaleEvent event{now, tick_count_, d};
  for (const auto& listener : listeners_) call_guarded(listener, event);
  return d;
}

template <ScalableExecutor E>
void UtilizationMonitor<E>::take_pending_config() {
  detail::MutexLock lock(mu_);
  if (pending_config_) {
    policy_.set_config(*pending_config_);
    pending_config_.reset();
  }
}

template <ScalableExecutor E>
ScaleDecision UtilizationMonitor<E>::take_baseline(Clock::time_point now) {
  const std::size_t n = chooser_.size();
  std::vector<ExecutorStatus> statuses(n);
  std::vector<LoopObservation> obs(n);
  std::vector<std::size_t> active;
  for (std::size_t i = 0; i < n; ++i) {
    E& e = chooser_.executor(i);
    last_busy_[i] = e.busy_time();
    statuses[i] = status_of(i, ExecutorStatus::kActive);
    obs[i].status = statuses[i];
    const bool running = statuses[i] == ExecutorStatus::kActive;
    if constexpr (LagReportingExecutor<E>) {
      if (running) e.scheduling_lag();  // the first probe
    }
    // Executors running beyond the bound leave at the first decision;
    // meanwhile they get no new work.
    if (running && active.size() < policy_.max_active()) active.push_back(i);
  }
  policy_.baseline(obs);
  chooser_.publish(active);
  last_tick_ = now;
  have_baseline_ = true;
  ScaleDecision d;
  d.rule = ScaleRule::kBaseline;
  d.active_before = d.active_after = active.size();
  d.utilizations.assign(n, 0.0);
  {
    detail::MutexLock lock(mu_);
    statuses_ = std::move(statuses);
  }
  check_busy_ = last_busy_;
  last_check_ = now;
  run_sinks(ScaleEvent{now, tick_count_, d});
  return d;
}

template <ScalableExecutor E>
ScaleDecision UtilizationMonitor<E>::skip_tick() {
  ScaleDecision d;
  d.rule = ScaleRule::kClockSkipped;
  detail::MutexLock lock(mu_);
  ++stats_.skipped_ticks;
  return d;
}

template <ScalableExecutor E>
ExecutorStatus UtilizationMonitor<E>::status_of(std::size_t i,
                                                ExecutorStatus was) const {
  const E& e = chooser_.executor(i);
  const bool suspended = e.is_suspended();
  if constexpr (DrainingExecutor<E>) {
    if (!suspended) return ExecutorStatus::kActive;
    return e.is_draining() ? ExecutorStatus::kDraining
                           : ExecutorStatus::kSuspended;
  } else {
    // Without its own word for it, an executor is draining from a refusal
    // until it suspends.
    if (was == ExecutorStatus::kDraining) {
      return suspended ? ExecutorStatus::kSuspended : ExecutorStatus::kDraining;
    }
    return suspended ? ExecutorStatus::kSuspended : ExecutorStatus::kActive;
  }
}

template <ScalableExecutor E>
typename UtilizationMonitor<E>::Observation UtilizationMonitor<E>::observe(
    std::chrono::nanoseconds elapsed,
    const std::vector<std::chrono::nanoseconds>& since, bool read_lag) {
  const std::size_t n = chooser_.size();
  Observation obs;
  obs.elapsed = elapsed;
  obs.loops.resize(n);
  obs.busy.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    E& e = chooser_.executor(i);
    obs.busy[i] = e.busy_time();
    const ExecutorStatus st = status_of(i, statuses_[i]);
    const auto delta = obs.busy[i] - since[i];
    double u = static_cast<double>(delta.count()) /
               static_cast<double>(elapsed.count());
    if (st != ExecutorStatus::kActive || !(u > 0.0)) u = 0.0;
    std::chrono::nanoseconds lag{0};
    if constexpr (LagReportingExecutor<E>) {
      if (read_lag && st == ExecutorStatus::kActive) lag = e.scheduling_lag();
    }
    obs.loops[i] = LoopObservation{st, std::min(u, 1.0), e.registrations(), lag};
  }
  return obs;
}

template <ScalableExecutor E>
bool UtilizationMonitor<E>::ask_to_suspend(std::size_t i,
                                           ExecutorStatus& status) {
  const bool accepted = chooser_.executor(i).try_suspend();
  status = accepted ? status_of(i, ExecutorStatus::kSuspended)
                    : ExecutorStatus::kDraining;
  return accepted;
}

template <ScalableExecutor E>
void UtilizationMonitor<E>::publish_staying(const ScaleDecision& d,
                                            const std::vector<ExecutorStatus>& statuses,
                                            std::span<const std::size_t> out_of_rotation) {
  const auto in = [](std::span<const std::size_t> v, std::size_t i) {
    return std::find(v.begin(), v.end(), i) != v.end();
  };
  std::vector<std::size_t> rotation;
  std::vector<std::size_t> kept;  // if every active one is out of rotation
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    if (statuses[i] != ExecutorStatus::kActive || in(d.suspend, i) || in(d.drain, i)) continue;
    kept.push_back(i);
    if (!in(out_of_rotation, i)) rotation.push_back(i);
  }
  chooser_.publish(rotation.empty() ? kept : rotation);
}

template <ScalableExecutor E>
typename UtilizationMonitor<E>::Applied UtilizationMonitor<E>::apply(
    ScaleDecision& d, const Observation& obs,
    std::span<const std::size_t> out_of_rotation) {
  const std::size_t n = chooser_.size();
  Applied out;
  std::vector<ExecutorStatus>& statuses = out.statuses;
  statuses.resize(n);
  for (std::size_t i = 0; i < n; ++i) statuses[i] = obs.loops[i].status;
  if constexpr (ResumingExecutor<E>) {
    // A thread that could not be started before is tried again.
    for (std::size_t i = 0; i < n; ++i) {
      if (chooser_.executor(i).resume_pending()) chooser_.executor(i).resume();
    }
  }
  for (std::size_t i : d.wake) {
    chooser_.executor(i).resume();
    statuses[i] = ExecutorStatus::kActive;
  }
  // The new rotation goes out before any executor is asked to leave or to
  // let connections go: a connection or listener that moves in between
  // must choose among the loops that stay. With the old rotation it could
  // pick a victim, and its submission would take that loop back from
  // draining, unseen by this tick (server_bench's keep-alive case lost
  // windows to it).
  publish_staying(d, statuses, out_of_rotation);
  for (const auto* victims : {&d.suspend, &d.drain}) {
    for (std::size_t i : *victims) {
      if (!ask_to_suspend(i, statuses[i])) {
        d.refused.push_back(i);
        ++out.refusals;
      }
    }
  }
  // Executors that were draining are asked again.
  for (std::size_t i = 0; i < n; ++i) {
    if (obs.loops[i].status == ExecutorStatus::kDraining &&
        statuses[i] == ExecutorStatus::kDraining &&
        !ask_to_suspend(i, statuses[i])) {
      ++out.refusals;
    }
  }
  if constexpr (RebalancingExecutor<E>) {
    std::vector<LoopObservation> after = obs.loops;
    for (std::size_t i = 0; i < n; ++i) after[i].status = statuses[i];
    d.moves = policy_.plan_moves(after);
    for (std::size_t i = 0; i < n; ++i) {
      chooser_.executor(i).request_moves(d.moves.empty() ? 0 : d.moves[i]);
    }
  }
  return out;
}

template <ScalableExecutor E>
void UtilizationMonitor<E>::report(Clock::time_point now,
                                   const ScaleDecision& d,
                                   const Observation& obs, Applied applied) {
  {
    detail::MutexLock lock(mu_);
    statuses_ = std::move(applied.statuses);
    for (std::size_t i = 0; i < obs.loops.size(); ++i) {
      utilizations_[i] = obs.loops[i].utilization;
      lags_[i] = obs.loops[i].lag;
      if (obs.loops[i].status == ExecutorStatus::kActive) {
        stats_.active_time[i] += obs.elapsed;
        if constexpr (LagReportingExecutor<E>) {
          stats_.lag_histogram.observe(obs.loops[i].lag);
        }
      }
    }
    ++stats_.ticks;
    count(d, applied);
  }
  const ScaleEvent event{now, tick_count_, d};
  if (d.acted()) {
    for (const auto& listener : listeners_) call_guarded(listener, event);
  }
  run_sinks(event);
}

template <ScalableExecutor E>
void UtilizationMonitor<E>::count(const ScaleDecision& d,
                                  const Applied& applied) {
  if (!d.wake.empty()) ++stats_.scale_ups;
  if (!d.suspend.empty() || !d.drain.empty()) ++stats_.scale_downs;
  stats_.executors_woken += d.wake.size();
  stats_.executors_suspended += d.suspend.size();
  stats_.executors_drained += d.drain.size();
  stats_.refusals += applied.refusals;
  for (std::size_t m : d.moves) stats_.moves_requested += m;
  if (d.acted() || d.held != HoldReason::kNone) stats_.last_decision = d;
}

template <ScalableExecutor E>
void UtilizationMonitor<E>::update_overload(Clock::time_point now, const Observation& obs,
                                            const ScalingConfig& c) {
  OverloadInput in;
  in.at_bound = chooser_.active_count() >= active_bounds(c, chooser_.size()).max;
  in.now = now;
  in.bound_grace = 2 * c.window;
  std::size_t n = 0;
  for (const LoopObservation& l : obs.loops) {
    if (l.status != ExecutorStatus::kActive) continue;
    in.utilization += l.utilization;
    in.lag += l.lag;
    ++n;
  }
  if (n > 0) {
    in.utilization /= static_cast<double>(n);
    in.lag /= static_cast<std::int64_t>(n);
  }
  const double was = overload_.level();
  const double level = overload_.update(in, c.overload);
  admission_.set(level, c.overload);
  const bool began = was == 0.0 && level > 0.0;
  const bool ended = was > 0.0 && level == 0.0;
  {
    detail::MutexLock lock(mu_);
    stats_.overload_reason = overload_.reason();
    if (began) ++stats_.overload_episodes;
  }
  if (began || ended) {
    const OverloadEvent event{now, level, overload_.reason()};
    for (const auto& listener : overload_listeners_) call_guarded(listener, event);
  }
}

template <ScalableExecutor E>
bool UtilizationMonitor<E>::overload_checks(const ScalingConfig& c) const {
  return c.overload.enabled &&
         chooser_.active_count() >= active_bounds(c, chooser_.size()).max;
}

template <ScalableExecutor E>
void UtilizationMonitor<E>::run_sinks(const ScaleEvent& event) {
  if (sinks_.empty()) return;
  const TickReport report{event, stats()};
  for (const auto& sink : sinks_) call_guarded(sink, report);
}

template <ScalableExecutor E>
template <class Callback, class Arg>
void UtilizationMonitor<E>::call_guarded(const Callback& callback, const Arg& arg) {
  // A listener's exception must not take the monitor (and with it the
  // scaling of the whole pool) down: it is counted, reported the first
  // time, and the tick goes on.
  try {
    callback(arg);
  } catch (const std::exception& e) {
    note_callback_failure(e.what());
  } catch (...) {
    note_callback_failure("an exception that is not a std::exception");
  }
}

template <ScalableExecutor E>
void UtilizationMonitor<E>::note_callback_failure(const char* what) {
  std::uint64_t failures = 0;
  {
    detail::MutexLock lock(mu_);
    failures = ++stats_.callback_failures;
  }
  if (failures == 1) {
    std::fprintf(stderr,
                 "loopscale: a scaling listener or sink threw (%s); the monitor "
                 "goes on (MonitorStats::callback_failures counts them)\n",
                 what);
  }
}

template <ScalableExecutor E>
void UtilizationMonitor<E>::start() {
  detail::MutexLock lock(life_mu_);
  if (thread_.joinable()) return;
  const Clock::time_point now = Clock::now();
  tick(now);  // the baseline, if none was taken yet
  timer_ctx_.restart();
  next_tick_ = now + config().window;
  arm_timer(next_wakeup(now));
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
    if (now < next_tick_) {
      check_saturation(now);
    } else {
      tick(now);
      // Ticks stay on a fixed grid of windows unless the thread fell a
      // whole window behind (a stalled machine): then the grid restarts
      // from now rather than firing a burst of back-to-back ticks.
      next_tick_ += config().window;
      if (next_tick_ <= now) next_tick_ = now + config().window;
    }
    arm_timer(next_wakeup(now));
  });
}

template <ScalableExecutor E>
Clock::time_point UtilizationMonitor<E>::next_wakeup(Clock::time_point now) const {
  const ScalingConfig c = config();
  // At the bound, fast up has nothing to add but overload checks may be due.
  const bool at_bound = chooser_.active_count() >= active_bounds(c, chooser_.size()).max;
  const auto interval = overload_checks(c) ? kOverloadCheckInterval
                        : at_bound         ? std::chrono::nanoseconds::zero()
                                           : c.fast_up_interval;
  if (interval == std::chrono::nanoseconds::zero()) return next_tick_;
  // A check due within half an interval of the tick is left to the tick.
  const Clock::time_point check = now + interval;
  return check + interval / 2 < next_tick_ ? check : next_tick_;
}

}  // namespace loopscale

#endif  // LOOPSCALE_IMPL_UTILIZATION_MONITOR_HPP_
