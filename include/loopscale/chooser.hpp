// -----------------------------------------------------------------------------
// chooser.hpp
// -----------------------------------------------------------------------------
//
// `AutoScalingChooser<E>` hands out executors for new work (new connections,
// new sessions) round-robin over the *active* ones only, and
// `ScalableExecutor` is what an executor must offer to take part. `EventLoop`
// models it; so can an executor of your own (examples/custom_executor).
//
//   std::vector<MyExecutor*> executors = ...;
//   loopscale::AutoScalingChooser<MyExecutor> chooser(executors, config);
//   loopscale::UtilizationMonitor<MyExecutor> monitor(chooser, config);
//   monitor.start();                  // grows and shrinks the active set
//   chooser.next().submit(task);      // any thread, wait-free
//
// The chooser does not start, stop or measure executors: the monitor
// (utilization_monitor.hpp) decides which are active and publishes the set
// here at every tick. Until the first publication the executors within the
// bound (the first min(max_loops, size()) ones; `max_loops` 0 = all) are the
// active set.
//
// `next()`:
//   * is wait-free and takes no lock while at least one executor is active:
//     one acquire load of the active count, one relaxed load of a slot, and a
//     per-thread cursor. It does no read-modify-write on a shared cache line
//     (no reference count, no shared round-robin counter) except the first
//     time a thread uses a chooser, when a shared counter spreads threads'
//     starting points.
//   * round-robins per thread: successive calls from one thread visit the
//     active executors in turn; several threads each do so from their own
//     starting point, which spreads work evenly without a shared counter.
//     (A thread alternating between two choosers loses its cursor at every
//     switch and falls back to the shared counter: still round-robin, a few
//     nanoseconds slower.)
//   * with no active executor (`min_loops == 0` and an idle pool), wakes one
//     under a lock and returns it; concurrent callers wake at most one between
//     them, and `active_count()` counts it at once. It prefers an executor
//     that is already running, then the lowest index. If that executor's
//     `resume()` throws (an `EventLoop` that cannot create a thread), the
//     process terminates: `next()` is noexcept, and there is no executor to
//     return.
//
// Replacing the active set while `next()` runs is safe without reclamation:
// the set lives in a fixed array of `size()` atomic slots that always hold
// valid executor pointers, and a publication writes the slots before it
// stores the new count (release). A `next()` that races with a publication
// returns an executor that was active in the set current when it loaded the
// count or in a later one; with a concurrent scale-down it may therefore
// return an executor that is just being suspended. That race exists with
// any snapshot scheme (the caller may submit a nanosecond after the
// suspension), and is why submitting to a suspending executor must cancel
// the suspension (`EventLoop` does).
//
// Thread-safety: `next()`, `active_count()`, `size()`, `executor()` and
// `active()` may be called from any thread. `publish()` is for the monitor;
// publications are serialized with each other and with the wake in `next()`.
// Executors must outlive the chooser.

#ifndef LOOPSCALE_CHOOSER_HPP_
#define LOOPSCALE_CHOOSER_HPP_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "loopscale/config.hpp"
#include "loopscale/detail/mutex.hpp"

namespace loopscale {

// What an executor must offer to be scaled by `AutoScalingChooser` and
// `UtilizationMonitor`.
template <class E>
concept ScalableExecutor = requires(E& e, const E& c) {
  // Monotonic busy total, including the busy slice in progress.
  { c.busy_time() } -> std::convertible_to<std::chrono::nanoseconds>;
  // Asks the executor to give its thread back once its work is done. False =
  // refused (the monitor asks again at the next tick).
  { e.try_suspend() } -> std::same_as<bool>;
  // Idempotent; cancels a pending suspension or wakes a suspended executor.
  { e.resume() };
  // True once suspending or suspended.
  { c.is_suspended() } -> std::same_as<bool>;
  // Connections pinning the executor (see registration.hpp).
  { c.registrations() } -> std::convertible_to<std::size_t>;
};

namespace detail {

// A thread's position in the last chooser it used. One per thread, shared by
// all choosers: the common case (one chooser per acceptor thread) never
// touches shared memory.
struct ChooserCursor {
  const void* owner = nullptr;
  std::size_t pos = 0;
};
inline thread_local ChooserCursor tls_chooser_cursor;

}  // namespace detail

template <ScalableExecutor E>
class AutoScalingChooser {
 public:
  // `executors` must not be empty or hold null pointers, and `config` must be
  // valid: otherwise throws std::invalid_argument (`create()` returns the
  // same error as a status). Only the bounds of `config` are used here.
  AutoScalingChooser(std::vector<E*> executors, const ScalingConfig& config)
      : executors_(std::move(executors)),
        slots_(std::make_unique<std::atomic<E*>[]>(executors_.size())) {
    if (absl::Status s = check(executors_, config); !s.ok()) {
      throw std::invalid_argument(std::string(s.message()));
    }
    const std::size_t n = executors_.size();
    const std::size_t bound = active_bounds(config, n).max;
    for (std::size_t i = 0; i < n; ++i) {
      slots_[i].store(executors_[i], std::memory_order_relaxed);
    }
    count_.store(bound, std::memory_order_release);
  }
  AutoScalingChooser(const AutoScalingChooser&) = delete;
  AutoScalingChooser& operator=(const AutoScalingChooser&) = delete;

  // The same checks as the constructor, as a status instead of an
  // exception: InvalidArgument naming what is wrong.
  static absl::StatusOr<std::unique_ptr<AutoScalingChooser>> create(
      std::vector<E*> executors, const ScalingConfig& config) {
    if (absl::Status s = check(executors, config); !s.ok()) return s;
    return std::make_unique<AutoScalingChooser>(std::move(executors), config);
  }

  // Returns the next active executor (see the header comment).
  E& next() noexcept {
    const std::size_t count = count_.load(std::memory_order_acquire);
    if (count == 0) [[unlikely]] return wake_one();
    detail::ChooserCursor& cursor = detail::tls_chooser_cursor;
    std::size_t pos;
    if (cursor.owner == this) [[likely]] {
      pos = cursor.pos + 1;
      if (pos >= count) pos = 0;  // also when the set just shrank
    } else {
      cursor.owner = this;
      pos = spread_.fetch_add(1, std::memory_order_relaxed) % count;
    }
    cursor.pos = pos;
    return *slots_[pos].load(std::memory_order_relaxed);
  }

  // Returns the number of executors in the active set.
  std::size_t active_count() const noexcept {
    return count_.load(std::memory_order_acquire);
  }

  // Returns the number of executors (active or not).
  std::size_t size() const noexcept { return executors_.size(); }

  // Returns executor `index` (in the order given to the constructor).
  E& executor(std::size_t index) const { return *executors_.at(index); }

  // Returns the indices of the active set, in rotation order.
  std::vector<std::size_t> active() const {
    detail::MutexLock lock(mu_);
    std::vector<std::size_t> out;
    const std::size_t count = count_.load(std::memory_order_relaxed);
    for (std::size_t k = 0; k < count; ++k) {
      E* e = slots_[k].load(std::memory_order_relaxed);
      out.push_back(static_cast<std::size_t>(
          std::find(executors_.begin(), executors_.end(), e) -
          executors_.begin()));
    }
    return out;
  }

  // Returns the active executor with the fewest registrations, other than
  // `exclude` (ties: the first in rotation order), or nullptr if there is
  // none. Where a connection that leaves `exclude` goes (session.hpp).
  // Lock-free, like `next()`; O(active executors).
  E* least_loaded(const E* exclude) const noexcept {
    const std::size_t count = count_.load(std::memory_order_acquire);
    E* best = nullptr;
    std::size_t best_load = 0;
    for (std::size_t k = 0; k < count; ++k) {
      E* e = slots_[k].load(std::memory_order_relaxed);
      if (e == exclude) continue;
      const std::size_t load = e->registrations();
      if (best == nullptr || load < best_load) {
        best = e;
        best_load = load;
      }
    }
    return best;
  }

  // Replaces the active set with the executors at `indices` (each < size(),
  // no duplicates). For the monitor.
  void publish(std::span<const std::size_t> indices) {
    detail::MutexLock lock(mu_);
    for (std::size_t k = 0; k < indices.size(); ++k) {
      slots_[k].store(executors_[indices[k]], std::memory_order_relaxed);
    }
    count_.store(indices.size(), std::memory_order_release);
  }

 private:
  static absl::Status check(const std::vector<E*>& executors,
                            const ScalingConfig& config) {
    if (executors.empty()) {
      return absl::InvalidArgumentError("AutoScalingChooser: no executors");
    }
    if (std::find(executors.begin(), executors.end(), nullptr) !=
        executors.end()) {
      return absl::InvalidArgumentError("AutoScalingChooser: null executor");
    }
    if (absl::Status s = validate(config); !s.ok()) {
      return absl::InvalidArgumentError("AutoScalingChooser: " +
                                        std::string(s.message()));
    }
    return absl::OkStatus();
  }

  E& wake_one() noexcept {
    detail::MutexLock lock(mu_);
    if (count_.load(std::memory_order_relaxed) > 0) {
      return *slots_[0].load(std::memory_order_relaxed);
    }
    E* chosen = executors_.front();
    for (E* e : executors_) {
      if (!e->is_suspended()) {
        chosen = e;
        break;
      }
    }
    chosen->resume();
    slots_[0].store(chosen, std::memory_order_relaxed);
    count_.store(1, std::memory_order_release);
    return *chosen;
  }

  const std::vector<E*> executors_;
  const std::unique_ptr<std::atomic<E*>[]> slots_;
  // Read by every next(); written on publication.
  alignas(64) std::atomic<std::size_t> count_{0};
  // Touched once per thread that starts using the chooser.
  alignas(64) std::atomic<std::size_t> spread_{0};
  mutable detail::Mutex mu_;
};

}  // namespace loopscale

#endif  // LOOPSCALE_CHOOSER_HPP_
