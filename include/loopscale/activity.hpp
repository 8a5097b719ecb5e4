// -----------------------------------------------------------------------------
// activity.hpp
// -----------------------------------------------------------------------------
//
// `ActivityRecorder` accounts one event loop's busy and idle time: how long the
// loop's thread spent running handlers, how many handlers it ran, and how many
// times it woke up from a wait. The utilization monitor divides the growth of
// the busy total over a window by the window's length.
//
// The loop marks a busy slice open when the first handler after a wait starts
// (`mark_busy()`) and closed when it is about to block again (`mark_idle()`):
// two clock reads per wake-up, none per handler. A reader adds the slice in
// progress, so a handler that has been running for 10 s reads as 10 s busy
// now, not when it returns.
//
// Example:
//
//   ActivityRecorder rec;
//   rec.mark_busy(t0);
//   rec.count_handler();
//   rec.mark_idle(t0 + 3ms);
//   rec.snapshot(t0 + 10ms).busy == 3ms;
//
// Thread-safety: one writer (the loop's thread, or whichever thread currently
// runs the loop) calls `mark_busy()`, `mark_idle()` and `count_handler()`;
// successive writers must be ordered by a happens-before edge (the loop hands
// its thread over under a mutex). Any thread may call `snapshot()` and
// `busy_time()` at any time; they never block the writer and never write.
//
// Consistency: the busy total, the open slice and the wake-up count are
// published together under a seqlock, so a snapshot never mixes a closed
// slice with the start of the next one. The handler count is a separate
// monotonic counter read in the same snapshot; it may be a few handlers ahead
// of or behind the busy figures.
//
// Job types (job_type.hpp): the writer also keeps the job the loop is doing
// (`switch_job()`, one clock read per switch, made by `JobScope`), and per
// job type the busy time spent in it and how many times it was entered.
// `jobs()` reads them with the busy total under the same seqlock, the job in
// progress extended to the reader's `now` like the open slice, and gives the
// busy time no job claims to "other" (id 0): the job types' busy times add
// up to the busy total exactly. A wake-up pays one more store and one
// branch; a handler nothing more.
//
// Monotonicity: closed busy time only grows. The open slice is extended to the
// reader's `now`; a reader whose `now` is earlier than the slice's start sees
// the slice as empty. Two readings taken with increasing `now` can differ by
// the few nanoseconds between the writer's clock read and its store, so
// consumers take deltas clamped at zero (the monitor does).

#ifndef LOOPSCALE_ACTIVITY_HPP_
#define LOOPSCALE_ACTIVITY_HPP_

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "absl/base/attributes.h"
#include "loopscale/clock.hpp"
#include "loopscale/detail/seqlock.hpp"
#include "loopscale/job_type.hpp"

namespace loopscale {

class ActivityRecorder {
 public:
  // A consistent reading of one loop's counters.
  struct Snapshot {
    // Busy time including the slice in progress up to `at`.
    std::chrono::nanoseconds busy{0};
    // Handlers started since the recorder was created.
    std::uint64_t handlers = 0;
    // Idle-to-busy transitions since the recorder was created.
    std::uint64_t wakeups = 0;
    // True if a busy slice was open at `at`.
    bool busy_now = false;
    // The time the snapshot describes.
    Clock::time_point at{};
  };

  // One job type's figures on one loop.
  struct JobFigures {
    // Busy time spent in the job, the part in progress up to `at` included.
    std::chrono::nanoseconds busy{0};
    // Times the job was entered (`switch_job()` with `count`).
    std::uint64_t count = 0;
  };
  // A consistent reading of the busy total and its split by job type.
  struct JobsSnapshot {
    // Busy time including the slice in progress up to `at`: the sum of
    // `jobs[i].busy`.
    std::chrono::nanoseconds busy{0};
    // By job type id; [0] is "other". Ids never registered read zero.
    std::array<JobFigures, kMaxJobTypes> jobs{};
    Clock::time_point at{};
  };

  ActivityRecorder() = default;
  ActivityRecorder(const ActivityRecorder&) = delete;
  ActivityRecorder& operator=(const ActivityRecorder&) = delete;

  // Opens a busy slice at `now`. Does nothing if one is open. Writer only.
  void mark_busy(Clock::time_point now) noexcept {
    if (busy_.load(std::memory_order_relaxed) != 0) return;
    detail::seqlock_write_begin(seq_);
    slice_start_ns_.store(static_cast<std::uint64_t>(to_ns(now)),
                          std::memory_order_relaxed);
    // The job in progress (if any) accrues from here.
    job_start_ns_.store(static_cast<std::uint64_t>(to_ns(now)),
                        std::memory_order_relaxed);
    busy_.store(1, std::memory_order_relaxed);
    wakeups_.store(wakeups_.load(std::memory_order_relaxed) + 1,
                   std::memory_order_relaxed);
    detail::seqlock_write_end(seq_);
  }

  // Closes the open busy slice at `now`, adding it to the busy total. Does
  // nothing if no slice is open. A `now` before the slice's start adds zero.
  // Writer only.
  void mark_idle(Clock::time_point now) noexcept {
    if (busy_.load(std::memory_order_relaxed) == 0) return;
    const std::int64_t start =
        static_cast<std::int64_t>(slice_start_ns_.load(std::memory_order_relaxed));
    const std::int64_t end = to_ns(now);
    const std::uint64_t slice =
        end > start ? static_cast<std::uint64_t>(end - start) : 0;
    const std::size_t job = current_job_.load(std::memory_order_relaxed);
    detail::seqlock_write_begin(seq_);
    closed_ns_.store(closed_ns_.load(std::memory_order_relaxed) + slice,
                     std::memory_order_relaxed);
    if (job != 0) [[unlikely]] {
      // No handler runs between two slices, so no job scope is open: one
      // left open across a co_await (a misuse) ends here, not on whatever
      // the loop runs next.
      close_job_part(job, end);
      current_job_.store(0, std::memory_order_relaxed);
    }
    busy_.store(0, std::memory_order_relaxed);
    detail::seqlock_write_end(seq_);
  }

  // Makes `job` (a `JobType::id()`) the job the loop is doing from `now`
  // and returns the one it was doing. The busy time up to `now` goes to the
  // previous job; with `count`, the new job's count grows by one (a job
  // entered, not one returned to). Outside a busy slice no time accrues.
  // Writer only.
  std::size_t switch_job(std::size_t job, Clock::time_point now,
                         bool count) noexcept;

  // Returns the busy total and its split by job type, consistently, with
  // the open slice and the job in progress extended to `now`; a `now`
  // before the writer's last clock reading counts as that reading, so the
  // split always adds up to the total.
  JobsSnapshot jobs(Clock::time_point now) const noexcept;

  // Counts one handler. A plain load and store, not a read-modify-write: there
  // is one writer, and this runs once per handler. Writer only.
  ABSL_ATTRIBUTE_ALWAYS_INLINE void count_handler() noexcept {
    handlers_.store(handlers_.load(std::memory_order_relaxed) + 1,
                    std::memory_order_relaxed);
  }

  // Returns a consistent reading with the open slice extended to `now`.
  Snapshot snapshot(Clock::time_point now) const noexcept;

  // Returns a consistent reading as of `Clock::now()`.
  Snapshot snapshot() const noexcept { return snapshot(Clock::now()); }

  // Returns the busy total including the open slice up to `now`.
  std::chrono::nanoseconds busy_time(Clock::time_point now) const noexcept {
    return snapshot(now).busy;
  }

  // Returns the busy total including the open slice up to `Clock::now()`.
  std::chrono::nanoseconds busy_time() const noexcept {
    return snapshot().busy;
  }

 private:
  std::atomic<std::uint64_t> seq_{0};
  // Protected by seq_:
  std::atomic<std::uint64_t> closed_ns_{0};       // sum of closed slices
  std::atomic<std::uint64_t> slice_start_ns_{0};  // to_ns() of the open slice
  std::atomic<std::uint64_t> busy_{0};            // 1 while a slice is open
  std::atomic<std::uint64_t> wakeups_{0};
  std::atomic<std::size_t> current_job_{0};       // the job in progress
  std::atomic<std::uint64_t> job_start_ns_{0};    // to_ns() it began accruing
  std::array<std::atomic<std::uint64_t>, kMaxJobTypes> job_busy_ns_{};  // closed parts
  std::array<std::atomic<std::uint64_t>, kMaxJobTypes> job_count_{};
  // Adds the part of `job` from job_start_ns_ to `end_ns`. Inside a write.
  void close_job_part(std::size_t job, std::int64_t end_ns) noexcept;
  // Not protected by seq_ (monotonic on its own):
  std::atomic<std::uint64_t> handlers_{0};
};

}  // namespace loopscale

#endif  // LOOPSCALE_ACTIVITY_HPP_
