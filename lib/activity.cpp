#include "loopscale/activity.hpp"

#include <algorithm>

namespace loopscale {

ActivityRecorder::Snapshot ActivityRecorder::snapshot(
    Clock::time_point now) const noexcept {
  std::uint64_t closed = 0, start = 0, busy = 0, wakeups = 0;
  detail::seqlock_read(seq_, [&] {
    closed = closed_ns_.load(std::memory_order_relaxed);
    start = slice_start_ns_.load(std::memory_order_relaxed);
    busy = busy_.load(std::memory_order_relaxed);
    wakeups = wakeups_.load(std::memory_order_relaxed);
  });
  Snapshot s;
  s.at = now;
  s.busy_now = busy != 0;
  s.wakeups = wakeups;
  s.handlers = handlers_.load(std::memory_order_relaxed);
  std::int64_t total = static_cast<std::int64_t>(closed);
  if (s.busy_now) {
    const std::int64_t open = to_ns(now) - static_cast<std::int64_t>(start);
    if (open > 0) total += open;
  }
  s.busy = std::chrono::nanoseconds(total);
  return s;
}

void ActivityRecorder::close_job_part(std::size_t job,
                                      std::int64_t end_ns) noexcept {
  const std::int64_t start =
      static_cast<std::int64_t>(job_start_ns_.load(std::memory_order_relaxed));
  if (end_ns > start) {
    job_busy_ns_[job].store(job_busy_ns_[job].load(std::memory_order_relaxed) +
                                static_cast<std::uint64_t>(end_ns - start),
                            std::memory_order_relaxed);
  }
}

std::size_t ActivityRecorder::switch_job(std::size_t job, Clock::time_point now,
                                         bool count) noexcept {
  const std::size_t prev = current_job_.load(std::memory_order_relaxed);
  const std::int64_t t = to_ns(now);
  detail::seqlock_write_begin(seq_);
  if (busy_.load(std::memory_order_relaxed) != 0) {
    if (prev != 0) close_job_part(prev, t);
    job_start_ns_.store(static_cast<std::uint64_t>(t), std::memory_order_relaxed);
  }
  current_job_.store(job, std::memory_order_relaxed);
  if (count) {
    job_count_[job].store(job_count_[job].load(std::memory_order_relaxed) + 1,
                          std::memory_order_relaxed);
  }
  detail::seqlock_write_end(seq_);
  return prev;
}

ActivityRecorder::JobsSnapshot ActivityRecorder::jobs(
    Clock::time_point now) const noexcept {
  std::uint64_t closed = 0, start = 0, busy = 0, job_start = 0;
  std::size_t current = 0;
  std::array<std::uint64_t, kMaxJobTypes> job_busy{}, job_count{};
  detail::seqlock_read(seq_, [&] {
    closed = closed_ns_.load(std::memory_order_relaxed);
    start = slice_start_ns_.load(std::memory_order_relaxed);
    busy = busy_.load(std::memory_order_relaxed);
    current = current_job_.load(std::memory_order_relaxed);
    job_start = job_start_ns_.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < kMaxJobTypes; ++i) {
      job_busy[i] = job_busy_ns_[i].load(std::memory_order_relaxed);
      job_count[i] = job_count_[i].load(std::memory_order_relaxed);
    }
  });
  // A reader whose clock read came before the writer's last one (it read
  // the clock, then the writer switched) reads as of the writer's: else the
  // job closed at the switch would hold time the busy total does not.
  std::int64_t at = to_ns(now);
  if (busy != 0) {
    at = std::max({at, static_cast<std::int64_t>(start),
                   static_cast<std::int64_t>(job_start)});
  }
  auto open_since = [&](std::uint64_t since) -> std::int64_t {
    if (busy == 0) return 0;
    const std::int64_t d = at - static_cast<std::int64_t>(since);
    return d > 0 ? d : 0;
  };
  JobsSnapshot s;
  s.at = now;
  const std::int64_t total = static_cast<std::int64_t>(closed) + open_since(start);
  s.busy = std::chrono::nanoseconds(total);
  std::int64_t claimed = 0;
  for (std::size_t i = 1; i < kMaxJobTypes; ++i) {
    std::int64_t b = static_cast<std::int64_t>(job_busy[i]);
    if (i == current) b += open_since(job_start);
    s.jobs[i] = {std::chrono::nanoseconds(b), job_count[i]};
    claimed += b;
  }
  // The rest is "other"; the job parts lie within the slices, so it is
  // never negative but for a reader's `now` before the job's start.
  s.jobs[0] = {std::chrono::nanoseconds(total > claimed ? total - claimed : 0),
               job_count[0]};
  return s;
}

}  // namespace loopscale
