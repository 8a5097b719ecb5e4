#include "netty_policy.hpp"

#include <algorithm>

namespace loopscale::sim {

NettyPolicy::NettyPolicy(std::vector<SimLoop*> loops,
                         const ScalingConfig& config)
    : loops_(std::move(loops)),
      config_(config),
      busy_cycles_(loops_.size(), 0),
      idle_cycles_(loops_.size(), 0),
      last_busy_(loops_.size(), 0.0) {
  rebuild();
}

void NettyPolicy::rebuild() {
  active_.clear();
  for (std::size_t i = 0; i < loops_.size(); ++i) {
    if (!loops_[i]->is_suspended()) active_.push_back(i);
  }
}

int NettyPolicy::tick(double now) {
  const std::size_t n = loops_.size();
  const double elapsed = last_tick_ < 0 ? 0.0 : now - last_tick_;
  last_tick_ = now;
  std::vector<double> busy(n);
  // Netty reads the busy time through the same (noisy) accounting.
  for (std::size_t i = 0; i < n; ++i) {
    busy[i] = std::chrono::duration<double>(loops_[i]->busy_time()).count();
  }
  if (elapsed <= 0.0) {
    last_busy_ = busy;
    return 0;
  }
  const int patience = static_cast<int>(config_.patience_cycles);
  const std::size_t max_active =
      config_.max_loops == 0 ? n : std::min(config_.max_loops, n);
  std::size_t consistently_busy = 0;
  std::vector<std::size_t> idle;
  for (std::size_t i = 0; i < n; ++i) {
    const double delta = busy[i] - last_busy_[i];
    if (loops_[i]->is_suspended()) continue;
    const double u = std::clamp(delta / elapsed, 0.0, 1.0);
    if (u < config_.scale_down_threshold) {
      const int before = idle_cycles_[i]++;
      busy_cycles_[i] = 0;
      if (before >= patience) idle.push_back(i);
    } else if (u > config_.scale_up_threshold) {
      const int before = busy_cycles_[i]++;
      idle_cycles_[i] = 0;
      if (before >= patience) ++consistently_busy;
    } else {
      busy_cycles_[i] = idle_cycles_[i] = 0;
    }
  }
  last_busy_ = busy;
  rebuild();
  const std::size_t active = active_.size();

  if (consistently_busy > 0 && active < max_active) {
    std::size_t add = std::min(consistently_busy, max_active - active);
    if (config_.max_ramp_up_step != 0) {
      add = std::min(add, config_.max_ramp_up_step);
    }
    std::size_t woken = 0;
    for (std::size_t k = 0; k < n && woken < add; ++k) {
      SimLoop* loop = loops_[(wake_cursor_ + k) % n];
      if (loop->is_suspended()) {
        loop->resume();
        ++woken;
      }
    }
    wake_cursor_ += woken;
    rebuild();
    return woken > 0 ? 1 : 0;
  }

  int result = 0;
  if (active > config_.min_loops && !idle.empty()) {
    const std::size_t count = std::min(
        {idle.size(), config_.max_ramp_down_step, active - config_.min_loops});
    for (std::size_t k = 0; k < count; ++k) {
      const std::size_t i = idle[k];  // first by index
      if (loops_[i]->try_suspend()) {
        busy_cycles_[i] = idle_cycles_[i] = 0;
        result = -1;
      }
    }
    rebuild();
  }
  return result;
}

}  // namespace loopscale::sim
