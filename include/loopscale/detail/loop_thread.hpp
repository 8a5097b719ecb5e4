// -----------------------------------------------------------------------------
// detail/loop_thread.hpp
// -----------------------------------------------------------------------------
//
// Which loop, if any, the calling thread runs, in thread-local storage. It is
// how `LoopExecutor::running_in_this_thread()` and the submission paths tell
// that they run on the loop's own thread: one thread-local load and a
// compare, where Asio's `io_context` executor walks its call stack (a loop
// over a linked list, in a function GCC 12 did not inline): fewer
// instructions per timer completion (docs/performance.md).
//
// It answers "is this the loop's thread?", not "is this thread inside the
// loop's `run()`?". On a loop's thread the two are the same: all code that
// runs there runs inside one of the loop's handlers. A thread of the user's
// own that runs the loop's `EventLoop::context()` is not the loop's thread.
//
// Finding the running loop's counters here as each handler starts, so that
// the wrapper around a queued function needs no loop pointer, was tried and
// rejected: fewer instructions, slower in time
// (benchmarks/experiments/pointer_free_wrapper.patch, docs/performance.md).
//
// Initial-exec TLS: an access is one load relative to the thread pointer,
// also from code in other shared objects, not a call to __tls_get_addr. glibc
// keeps room for such variables of libraries opened later with dlopen().
//
// Thread-safety: each thread reads and writes only its own copy. Not for use
// outside loopscale.

#ifndef LOOPSCALE_DETAIL_LOOP_THREAD_HPP_
#define LOOPSCALE_DETAIL_LOOP_THREAD_HPP_

#include "absl/base/attributes.h"

namespace loopscale {

class EventLoop;

namespace detail {

// The loop this thread runs; null on other threads.
extern constinit thread_local const EventLoop* this_thread_loop
    ABSL_ATTRIBUTE_INITIAL_EXEC;

// Makes this thread `loop`'s thread. Called first thing by each thread a loop
// gets.
inline void enter_loop_thread(const EventLoop& loop) noexcept {
  this_thread_loop = &loop;
}

// Returns true on `loop`'s thread.
inline bool is_loop_thread_of(const EventLoop& loop) noexcept {
  return this_thread_loop == &loop;
}

}  // namespace detail

}  // namespace loopscale

#endif  // LOOPSCALE_DETAIL_LOOP_THREAD_HPP_
