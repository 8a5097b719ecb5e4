#include "loopscale/activity.hpp"

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

}  // namespace loopscale
