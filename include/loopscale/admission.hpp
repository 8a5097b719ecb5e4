// -----------------------------------------------------------------------------
// admission.hpp
// -----------------------------------------------------------------------------
//
// `Admission` is where servers on a pool ask whether to take on work while
// the pool is overloaded (overload.hpp): the monitor sets the level, and
//
//   * a session asks `admit()` at each request boundary, before the
//     request's work, and refuses the request if it returns false (the
//     example HTTP server answers 503 Service Unavailable with Retry-After):
//     of every N requests on a loop, level x N are refused, evenly spread;
//   * `keep_alive()` turns false from `keepalive_off_at`: answers then close
//     their connection, and `idle_timeout()` shortens idle connections';
//   * `accepting()` turns false from `pause_accepting_at`: a `Listener`
//     stops accepting and lets the kernel's listen backlog hold a burst.
//
// The cheapest action first: refusing a request costs its parse and a short
// answer, closing a connection a reconnect, and a paused listener the
// connect latency of every new client.
//
//   if (!pool.admission().admit(loop)) {
//     co_await write(socket, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n...");
//     continue;
//   }
//
// Sessions ask through `Session::admit()`. With no pressure every query is
// one relaxed atomic load (the level, the flags and nothing else share one
// word); `admit()` touches the loop's own slot only under pressure.
//
// `inject()` holds the level at a chosen value whatever the monitor
// computes, until `clear_injection()` (Envoy's `injected_resource`): tests
// drive every action with it, without timing, and an operator can shed by
// hand.
//
// Thread-safety: `admit(loop)` on loop `loop`'s thread only (its slot is that
// thread's; an index out of range is admitted); the other queries from any
// thread; `set()`, `inject()` and `clear_injection()` from any thread,
// serialized by a mutex. Queries see a new level with relaxed ordering: a
// request or two on the old one is the point of being cheap.

#ifndef LOOPSCALE_ADMISSION_HPP_
#define LOOPSCALE_ADMISSION_HPP_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include "absl/base/optimization.h"
#include "absl/base/thread_annotations.h"
#include "loopscale/config.hpp"
#include "loopscale/detail/mutex.hpp"

namespace loopscale {

class Admission {
 public:
  // For a pool of `loops` loops (indices 0 .. loops - 1).
  explicit Admission(std::size_t loops);
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;

  // Whether a request on loop `loop` is to be served: true while the level
  // is 0; under pressure, false for `level()` of the requests, evenly spread.
  bool admit(std::size_t loop) noexcept {
    const std::uint64_t s = state_.load(std::memory_order_relaxed);
    if (ABSL_PREDICT_TRUE(s == 0)) return true;
    return admit_slow(loop, s);
  }
  // False from `keepalive_off_at`: answer with `Connection: close`.
  bool keep_alive() const noexcept {
    return (state_.load(std::memory_order_relaxed) & kKeepAliveOff) == 0;
  }
  // False from `pause_accepting_at`: accept no new connection.
  bool accepting() const noexcept {
    return (state_.load(std::memory_order_relaxed) & kPaused) == 0;
  }
  // `normal` while keep-alive is on; from `keepalive_off_at`, a tenth of it
  // (idle connections give their descriptors and memory back sooner).
  std::chrono::nanoseconds idle_timeout(std::chrono::nanoseconds normal) const noexcept {
    return keep_alive() ? normal : normal / 10;
  }
  // The level in force, 0 .. 1.
  double level() const noexcept {
    return static_cast<double>(state_.load(std::memory_order_relaxed) & kLevelMask) / kScale;
  }
  // Requests refused so far, all loops.
  std::uint64_t refused() const noexcept;
  // True while a level is injected.
  bool injected() const;

  // The monitor's level, applied with `config`'s thresholds (ignored while
  // one is injected).
  void set(double level, const OverloadConfig& config);
  // Holds the level at `level` (clamped to 0 .. 1), with `config`'s
  // thresholds, until `clear_injection()`.
  void inject(double level, const OverloadConfig& config);
  // Back to the monitor's level (0 until it sets one again).
  void clear_injection();

 private:
  // The word every query reads: the level in millionths, and two flags.
  static constexpr std::uint64_t kScale = 1'000'000;
  static constexpr std::uint64_t kLevelMask = (std::uint64_t{1} << 32) - 1;
  static constexpr std::uint64_t kKeepAliveOff = std::uint64_t{1} << 32;
  static constexpr std::uint64_t kPaused = std::uint64_t{1} << 33;
  static std::uint64_t encode(double level, const OverloadConfig& config);

  bool admit_slow(std::size_t loop, std::uint64_t state) noexcept;
  void store(double level, const OverloadConfig& config) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // A loop's share of the accounting, on its own cache line: `credit`
  // gathers the level at each request and a request is refused each time
  // it reaches one (error diffusion: exact shares, no random numbers).
  struct alignas(64) Slot {
    std::uint64_t credit = 0;              // millionths; the loop's thread only
    std::atomic<std::uint64_t> refused{0};  // written by the loop's thread only
  };

  std::atomic<std::uint64_t> state_{0};
  const std::size_t loops_;
  const std::unique_ptr<Slot[]> slots_;
  mutable detail::Mutex mu_;
  bool injected_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace loopscale

#endif  // LOOPSCALE_ADMISSION_HPP_
