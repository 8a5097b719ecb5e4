// Test helpers: wait for a condition with a deadline instead of sleeping for a
// guessed time. The deadlines are generous because CI machines are shared
// 2-core VMs; a passing test usually returns in milliseconds.

#ifndef LOOPSCALE_TESTS_SUPPORT_WAIT_HPP_
#define LOOPSCALE_TESTS_SUPPORT_WAIT_HPP_

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <iterator>
#include <thread>

namespace loopscale::testing {

// How long a condition that should become true quickly may take on a loaded
// machine (sanitizers slow things down up to ~20x).
inline constexpr std::chrono::seconds kDeadline{30};

// Polls `condition` until it is true or `deadline` passes; returns its value.
template <class Condition>
bool eventually(Condition condition,
                std::chrono::steady_clock::duration deadline = kDeadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::microseconds(200));  // poll interval
  }
}

// Returns the number of threads of this process.
inline std::size_t thread_count() {
  const std::filesystem::directory_iterator tasks("/proc/self/task");
  return static_cast<std::size_t>(
      std::distance(begin(tasks), end(tasks)));
}

}  // namespace loopscale::testing

#endif  // LOOPSCALE_TESTS_SUPPORT_WAIT_HPP_
