#include "loopscale/loop_state.hpp"

namespace loopscale {

std::string_view to_string(LoopState state) noexcept {
  switch (state) {
    case LoopState::kActive:
      return "active";
    case LoopState::kDraining:
      return "draining";
    case LoopState::kSuspending:
      return "suspending";
    case LoopState::kSuspended:
      return "suspended";
    case LoopState::kStopped:
      return "stopped";
  }
  return "unknown";
}

std::string_view to_string(ExecutorStatus status) noexcept {
  switch (status) {
    case ExecutorStatus::kActive:
      return "active";
    case ExecutorStatus::kDraining:
      return "draining";
    case ExecutorStatus::kSuspended:
      return "suspended";
  }
  return "unknown";
}

}  // namespace loopscale
