// Inline and template definitions of LoopExecutor and TrackedLoopExecutor
// (loop_executor.hpp). Kept apart because they need the complete EventLoop,
// which needs LoopExecutor.

#ifndef LOOPSCALE_IMPL_LOOP_EXECUTOR_HPP_
#define LOOPSCALE_IMPL_LOOP_EXECUTOR_HPP_

#include <type_traits>
#include <utility>

#include <asio/execution.hpp>
#include <asio/require.hpp>

namespace loopscale {
namespace detail {

// The function a LoopExecutor hands to the io_context: it tells the loop that
// a handler starts, then runs the user's function. Forced inline: GCC 12
// otherwise makes it a call of its own inside Asio's completion function,
// which RepostChain pays for in time (docs/performance.md).
template <class F>
struct LoopInvoker {
  EventLoop* loop;
  F function;

  ABSL_ATTRIBUTE_ALWAYS_INLINE void operator()() {
    loop->begin_handler();
    if constexpr (std::is_invocable_v<F&&>) {
      std::move(function)();
    } else {
      function();
    }
  }
};

inline LoopExecutorBase::inner_executor_type
LoopExecutorBase::get_inner_executor() const noexcept {
  return ptr()->ctx_.get_executor();
}

inline bool LoopExecutorBase::running_in_this_thread() const noexcept {
  return ptr()->on_own_thread();
}

inline asio::io_context& LoopExecutorBase::query(
    asio::execution::context_t) const noexcept {
  return ptr()->ctx_;
}

inline asio::execution::blocking_t LoopExecutorBase::query(
    asio::execution::blocking_t) const noexcept {
  if (target_ & kBlockingNever) return asio::execution::blocking.never;
  return asio::execution::blocking.possibly;
}

inline asio::execution::relationship_t LoopExecutorBase::query(
    asio::execution::relationship_t) const noexcept {
  if (target_ & kContinuation) return asio::execution::relationship.continuation;
  return asio::execution::relationship.fork;
}

template <class Function>
inline void LoopExecutorBase::execute(Function&& f) const {
  EventLoop* const loop = ptr();
  // blocking.possibly from inside one of this loop's handlers: run `f` now,
  // as Asio's own executor would. This is the path every I/O completion takes
  // through an any_io_executor (Asio dispatches it on the I/O executor), so it
  // skips the wrapper and the inner executor's second thread check.
  if ((target_ & kBlockingNever) == 0 && running_in_this_thread()) {
    std::decay_t<Function> tmp(std::forward<Function>(f));
    loop->run_nested(tmp);
    return;
  }
  // Past this point the caller is not on the loop's thread, or asked for
  // blocking.never: either way `f` is queued, through one spelling of the
  // inner executor for every property combination. The relationship bit is
  // not passed on: Asio uses it to keep a continuation on the posting
  // thread's private queue, which a one-thread io_context (concurrency hint
  // 1, as every loop's) does for all posts anyway. One instantiation instead
  // of four is fewer instructions per cross-thread post
  // (scripts/bench_instructions; docs/performance.md).
  //
  // The io_context executor's `post()` (Asio's TS-executor member) rather
  // than `execute()` on a blocking.never executor: `execute()` reads the
  // blocking bit at run time, so it carries a never-taken "already on this
  // thread, run it now" path, into which GCC inlined the wrapped handler
  // (and, for a handler that re-posts itself, the whole re-post); `post()`
  // has only the queueing path. Together with the non-trivial copy of
  // LoopExecutor (loop_executor.hpp), this is what brought RepostChain to
  // plain Asio's time (docs/performance.md). Without the TS members
  // (ASIO_NO_TS_EXECUTORS), `execute()` is correct, only slower.
#if !defined(ASIO_NO_TS_EXECUTORS)
  loop->ctx_.get_executor().post(
      LoopInvoker<std::decay_t<Function>>{loop, std::forward<Function>(f)},
      std::allocator<void>());
#else
  asio::execution::execute(
      asio::require(loop->ctx_.get_executor(), asio::execution::blocking.never),
      LoopInvoker<std::decay_t<Function>>{loop, std::forward<Function>(f)});
#endif
  loop->after_submit();
}

}  // namespace detail

inline TrackedLoopExecutor LoopExecutor::require(
    asio::execution::outstanding_work_t::tracked_t) const noexcept {
  return TrackedLoopExecutor(target_);
}

inline TrackedLoopExecutor::TrackedLoopExecutor(std::uintptr_t target) noexcept
    : LoopExecutorBase(target & ~kHoldsWork) {
  if (ptr()->acquire_work()) target_ |= kHoldsWork;
}

inline TrackedLoopExecutor::TrackedLoopExecutor(CopyTag,
                                                std::uintptr_t target) noexcept
    : LoopExecutorBase(target) {
  if (holds_work()) ptr()->acquire_work_slow();
}

inline TrackedLoopExecutor::TrackedLoopExecutor(
    const TrackedLoopExecutor& other) noexcept
    : TrackedLoopExecutor(kCopy, other.target_) {}

inline TrackedLoopExecutor::TrackedLoopExecutor(
    TrackedLoopExecutor&& other) noexcept
    : LoopExecutorBase(other.target_) {
  other.target_ &= ~kHoldsWork;
}

inline TrackedLoopExecutor& TrackedLoopExecutor::operator=(
    const TrackedLoopExecutor& other) noexcept {
  if (this != &other) *this = TrackedLoopExecutor(other);
  return *this;
}

inline TrackedLoopExecutor& TrackedLoopExecutor::operator=(
    TrackedLoopExecutor&& other) noexcept {
  if (this != &other) {
    if (holds_work()) ptr()->release_work();
    target_ = other.target_;
    other.target_ &= ~kHoldsWork;
  }
  return *this;
}

inline TrackedLoopExecutor::~TrackedLoopExecutor() {
  if (holds_work()) ptr()->release_work();
}

}  // namespace loopscale

#endif  // LOOPSCALE_IMPL_LOOP_EXECUTOR_HPP_
