// A ScalableExecutor that does nothing but answer: tests set its busy time,
// registrations and willingness to suspend, and read how it was asked.
// Not thread-safe: for deterministic, single-threaded monitor tests.

#ifndef LOOPSCALE_TESTS_SUPPORT_FAKE_EXECUTOR_HPP_
#define LOOPSCALE_TESTS_SUPPORT_FAKE_EXECUTOR_HPP_

#include <chrono>
#include <cstddef>
#include <memory>
#include <vector>

#include "loopscale/chooser.hpp"
#include "loopscale/clock.hpp"
#include "loopscale/utilization_monitor.hpp"

namespace loopscale::testing {

struct FakeExecutor {
  std::chrono::nanoseconds busy{0};
  bool suspended = false;
  std::size_t regs = 0;
  // try_suspend() returns false while registrations are held (an executor
  // that drains before it suspends).
  bool refuse_while_registered = false;
  // try_suspend() always returns false.
  bool refuse = false;
  int suspend_calls = 0;
  int resume_calls = 0;

  std::chrono::nanoseconds busy_time() const { return busy; }
  bool try_suspend() {
    ++suspend_calls;
    if (refuse || (refuse_while_registered && regs > 0)) return false;
    suspended = true;
    return true;
  }
  void resume() {
    ++resume_calls;
    suspended = false;
  }
  bool is_suspended() const { return suspended; }
  std::size_t registrations() const { return regs; }
};
static_assert(ScalableExecutor<FakeExecutor>);

// `n` fake executors, a chooser and a monitor over them, and a virtual clock.
// The constructor takes the baseline tick. `active` executors start running;
// the rest start suspended.
class FakePool {
 public:
  FakePool(std::size_t n, const ScalingConfig& config, std::size_t active)
      : config_(config),
        fakes_(make(n, active)),
        chooser_(pointers(fakes_), config),
        monitor_(chooser_, config) {
    monitor_.tick(now_);
  }

  // Ends a window in which each running executor was busy for `u[i]` of it
  // (missing entries: 0), and returns the tick's decision.
  ScaleDecision window(const std::vector<double>& u) {
    for (std::size_t i = 0; i < fakes_.size(); ++i) {
      if (i < u.size() && !fakes_[i]->suspended) {
        fakes_[i]->busy += std::chrono::duration_cast<std::chrono::nanoseconds>(
            config_.window * u[i]);
      }
    }
    now_ += config_.window;
    return monitor_.tick(now_);
  }
  // The same load on every executor.
  ScaleDecision window_all(double u) {
    return window(std::vector<double>(fakes_.size(), u));
  }

  FakeExecutor& fake(std::size_t i) { return *fakes_.at(i); }
  std::size_t running() const {
    std::size_t k = 0;
    for (const auto& f : fakes_) k += f->suspended ? 0 : 1;
    return k;
  }
  AutoScalingChooser<FakeExecutor>& chooser() { return chooser_; }
  UtilizationMonitor<FakeExecutor>& monitor() { return monitor_; }
  Clock::time_point& now() { return now_; }

 private:
  static std::vector<std::unique_ptr<FakeExecutor>> make(std::size_t n,
                                                         std::size_t active) {
    std::vector<std::unique_ptr<FakeExecutor>> out;
    for (std::size_t i = 0; i < n; ++i) {
      out.push_back(std::make_unique<FakeExecutor>());
      out.back()->suspended = i >= active;
    }
    return out;
  }
  static std::vector<FakeExecutor*> pointers(
      const std::vector<std::unique_ptr<FakeExecutor>>& fakes) {
    std::vector<FakeExecutor*> out;
    for (const auto& f : fakes) out.push_back(f.get());
    return out;
  }

  ScalingConfig config_;
  Clock::time_point now_{std::chrono::seconds(1000)};
  std::vector<std::unique_ptr<FakeExecutor>> fakes_;
  AutoScalingChooser<FakeExecutor> chooser_;
  UtilizationMonitor<FakeExecutor> monitor_;
};

}  // namespace loopscale::testing

#endif  // LOOPSCALE_TESTS_SUPPORT_FAKE_EXECUTOR_HPP_
