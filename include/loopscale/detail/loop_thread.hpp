// -----------------------------------------------------------------------------
// detail/loop_thread.hpp
// -----------------------------------------------------------------------------
//
// Which loop, if any, the calling thread runs, in thread-local storage. It is
// how `LoopExecutor::running_in_this_thread()` and the submission paths tell
// that they run on the loop's own thread: one thread-local load and a
// compare, where Asio's `io_context` executor walks its call stack (a loop
// over a linked list, in a function GCC 12 did not inline). Per handler, per
// scripts/bench_instructions: Timers 11 instructions fewer, TypedTimers 4.
//
// It answers "is this the loop's thread?", not "is this thread inside the
// loop's `run()`?". On a loop's thread the two are the same: all code that
// runs there runs inside one of the loop's handlers. A thread of the user's
// own that runs the loop's `EventLoop::context()` is not the loop's thread.
//
// Tried and rejected (2026-11-30): finding the running loop's counters here
// as each handler starts, so that the wrapper around a queued function needs
// no loop pointer. That took 18 of 315 instructions per handler off
// RepostChain, and made it 15-20% slower in time, in every one of four builds
// timed against the one with the pointer. A likely cause was found later:
// handlers were block-copied into stalls (loop_executor.hpp, "not trivially
// copyable"); the experiment has not been timed again since that fix.
// `scripts/bench_ab --patch
// benchmarks/experiments/pointer_free_wrapper.patch a72c817` repeats it.
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
