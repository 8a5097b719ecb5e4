// Fault injection for loopscale's own tests: not part of the API. Each hook
// makes a rare failure happen on demand, so that what the library does then
// is tested without ulimits, cgroups or luck.

#ifndef LOOPSCALE_DETAIL_TEST_HOOKS_HPP_
#define LOOPSCALE_DETAIL_TEST_HOOKS_HPP_

#include <atomic>

namespace loopscale::detail {

// The next this-many thread starts of any EventLoop fail as if the system
// refused (EAGAIN), to exercise what a failed resume does.
inline std::atomic<int> fail_thread_starts_for_testing{0};

// The next this-many descriptor hand-overs and listener accept steps fail as
// if the process had run out of descriptors (EMFILE): a hand-over once the
// descriptor has left its loop's reactor (the target refuses it), an accept
// step by throwing, as making a socket on a loop without a reactor used to
// (Asio's eventfd).
inline std::atomic<int> fail_descriptors_for_testing{0};

// True if the hook says this descriptor operation fails (and counts it).
inline bool descriptor_fault_for_testing() noexcept {
  return fail_descriptors_for_testing.load(std::memory_order_relaxed) > 0 &&
         fail_descriptors_for_testing.fetch_sub(1) > 0;
}

// Forgets every registered job type. Not safe while any other thread uses
// job types.
void reset_job_types_for_testing();

}  // namespace loopscale::detail

#endif  // LOOPSCALE_DETAIL_TEST_HOOKS_HPP_
