// -----------------------------------------------------------------------------
// loop_state.hpp
// -----------------------------------------------------------------------------
//
// The words for where a loop stands, shared by the loop (`EventLoop`), the
// monitor and policy (`ExecutorStatus`) and the shared-memory layer (which
// stores `LoopState`'s value): plain enums, no Asio.
//
//   LoopState     what an `EventLoop` is doing (its own state machine);
//   ExecutorStatus how the monitor sees any executor when a window ends.
//
// "Draining" means one thing in both: out of rotation (no new work from the
// chooser), thread still present, serving what it holds until it is gone
// (its connections asked to move, its pending work completing), then
// suspended. For an `EventLoop`, kDraining (connections registered) and
// kSuspending (none) are both draining to the monitor: `monitor_status()`.
//
// Thread-safety: plain values and pure functions.

#ifndef LOOPSCALE_LOOP_STATE_HPP_
#define LOOPSCALE_LOOP_STATE_HPP_

#include <cstdint>
#include <string_view>

namespace loopscale {

// An `EventLoop`'s state (event_loop.hpp has the transitions). The values
// are stored in the shared-memory file: append, never renumber.
enum class LoopState : std::uint8_t {
  kActive = 0,      // a thread runs it; takes new work
  kDraining = 1,    // out of rotation, serving its connections until they leave
  kSuspending = 2,  // out of rotation, finishing its pending work
  kSuspended = 3,   // no thread; work submitted to it resumes it
  kStopped = 4,     // terminal
};

// Every state, in order (for per-state output).
inline constexpr LoopState kLoopStates[] = {LoopState::kActive, LoopState::kDraining,
                                            LoopState::kSuspending, LoopState::kSuspended,
                                            LoopState::kStopped};

// Returns "active", "draining", "suspending", "suspended" or "stopped".
std::string_view to_string(LoopState state) noexcept;

// How the monitor sees one executor when a window ends.
enum class ExecutorStatus : std::uint8_t {
  // Takes new work from the chooser.
  kActive,
  // Out of rotation, still serving: an `EventLoop` that is kDraining or
  // kSuspending, or an executor that refused `try_suspend()` and has not
  // suspended yet. Asked to suspend again every tick; a scale-up takes it
  // back before it starts a thread for a suspended executor.
  kDraining,
  // Out of rotation, no thread (or accepted to suspend and holding nothing).
  kSuspended,
};

// Returns "active", "draining" or "suspended".
std::string_view to_string(ExecutorStatus status) noexcept;

// The monitor's view of a loop in `state`.
constexpr ExecutorStatus monitor_status(LoopState state) noexcept {
  switch (state) {
    case LoopState::kActive:
      return ExecutorStatus::kActive;
    case LoopState::kDraining:
    case LoopState::kSuspending:
      return ExecutorStatus::kDraining;
    case LoopState::kSuspended:
    case LoopState::kStopped:
      break;
  }
  return ExecutorStatus::kSuspended;
}

}  // namespace loopscale

#endif  // LOOPSCALE_LOOP_STATE_HPP_
