// Inline and template definitions of LoopExecutor (loop_executor.hpp). Kept
// apart because they need the complete EventLoop, which needs LoopExecutor.

#ifndef LOOPSCALE_IMPL_LOOP_EXECUTOR_HPP_
#define LOOPSCALE_IMPL_LOOP_EXECUTOR_HPP_

#include <type_traits>
#include <utility>

#include <asio/execution.hpp>
#include <asio/require.hpp>

namespace loopscale {
namespace detail {

// The function a LoopExecutor hands to the io_context: it tells the loop that
// a handler starts, then runs the user's function.
template <class F>
struct LoopInvoker {
  EventLoop* loop;
  F function;

  void operator()() {
    loop->begin_handler();
    if constexpr (std::is_invocable_v<F&&>) {
      std::move(function)();
    } else {
      function();
    }
  }
};

}  // namespace detail

inline LoopExecutor::LoopExecutor(EventLoop* loop, std::uint8_t bits) noexcept
    : loop_(loop), bits_(bits) {
  if (tracked()) [[unlikely]] loop_->acquire_work();
}

inline LoopExecutor::LoopExecutor(const LoopExecutor& other) noexcept
    : LoopExecutor(other.loop_, other.bits_) {}

inline LoopExecutor::LoopExecutor(LoopExecutor&& other) noexcept
    : loop_(other.loop_), bits_(other.bits_) {
  // The moved-from executor keeps its loop but no longer holds work.
  other.bits_ &= static_cast<std::uint8_t>(~kTracked);
}

inline LoopExecutor& LoopExecutor::operator=(const LoopExecutor& other) noexcept {
  if (this != &other) *this = LoopExecutor(other);
  return *this;
}

inline LoopExecutor& LoopExecutor::operator=(LoopExecutor&& other) noexcept {
  if (this != &other) {
    if (tracked()) loop_->release_work();
    loop_ = other.loop_;
    bits_ = other.bits_;
    other.bits_ &= static_cast<std::uint8_t>(~kTracked);
  }
  return *this;
}

inline LoopExecutor::~LoopExecutor() {
  if (tracked()) [[unlikely]] loop_->release_work();
}

inline LoopExecutor::inner_executor_type LoopExecutor::get_inner_executor()
    const noexcept {
  return loop_->ctx_.get_executor();
}

inline bool LoopExecutor::running_in_this_thread() const noexcept {
  return loop_->ctx_.get_executor().running_in_this_thread();
}

inline asio::io_context& LoopExecutor::query(
    asio::execution::context_t) const noexcept {
  return loop_->ctx_;
}

inline asio::execution::blocking_t LoopExecutor::query(
    asio::execution::blocking_t) const noexcept {
  if (bits_ & kBlockingNever) return asio::execution::blocking.never;
  return asio::execution::blocking.possibly;
}

inline asio::execution::relationship_t LoopExecutor::query(
    asio::execution::relationship_t) const noexcept {
  if (bits_ & kContinuation) return asio::execution::relationship.continuation;
  return asio::execution::relationship.fork;
}

inline asio::execution::outstanding_work_t LoopExecutor::query(
    asio::execution::outstanding_work_t) const noexcept {
  if (tracked()) return asio::execution::outstanding_work.tracked;
  return asio::execution::outstanding_work.untracked;
}

template <class Function>
void LoopExecutor::execute(Function&& f) const {
  detail::LoopInvoker<std::decay_t<Function>> invoker{
      loop_, std::forward<Function>(f)};
  const auto inner = loop_->ctx_.get_executor();
  // The inner executor's type encodes its properties, hence four spellings.
  switch (bits_ & (kBlockingNever | kContinuation)) {
    case 0:
      asio::execution::execute(inner, std::move(invoker));
      break;
    case kBlockingNever:
      asio::execution::execute(
          asio::require(inner, asio::execution::blocking.never),
          std::move(invoker));
      break;
    case kContinuation:
      asio::execution::execute(
          asio::require(inner, asio::execution::relationship.continuation),
          std::move(invoker));
      break;
    default:
      asio::execution::execute(
          asio::require(inner, asio::execution::blocking.never,
                        asio::execution::relationship.continuation),
          std::move(invoker));
      break;
  }
  loop_->after_submit();
}

}  // namespace loopscale

#endif  // LOOPSCALE_IMPL_LOOP_EXECUTOR_HPP_
