// -----------------------------------------------------------------------------
// clock.hpp
// -----------------------------------------------------------------------------
//
// The one clock loopscale measures with. Every busy time, window and
// timestamp in the library is taken from `loopscale::Clock`, a monotonic
// clock (never adjusted by NTP or the user), so deltas are always meaningful.
//
// `to_ns()` turns a time point into signed nanoseconds since the clock's
// epoch, the form in which time points are stored in atomics and in shared
// memory.

#ifndef LOOPSCALE_CLOCK_HPP_
#define LOOPSCALE_CLOCK_HPP_

#include <chrono>
#include <cstdint>

namespace loopscale {

using Clock = std::chrono::steady_clock;

// Returns `t` as nanoseconds since `Clock`'s epoch.
inline std::int64_t to_ns(Clock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             t.time_since_epoch())
      .count();
}

// Returns the time point `ns` nanoseconds after `Clock`'s epoch.
inline Clock::time_point from_ns(std::int64_t ns) noexcept {
  return Clock::time_point(
      std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

}  // namespace loopscale

#endif  // LOOPSCALE_CLOCK_HPP_
