// -----------------------------------------------------------------------------
// loop_executor.hpp
// -----------------------------------------------------------------------------
//
// `LoopExecutor` is the Asio executor of one `EventLoop`. It models
// `asio::execution::executor`, so everything Asio offers works on it:
// `asio::post`, `dispatch`, `defer`, `asio::make_strand`, timers, sockets,
// acceptors and `asio::co_spawn`. Create I/O objects with it (not with the raw
// `io_context`) so that their completions are counted as busy time and so that
// starting an operation wakes a suspended loop.
//
// Like `asio::strand`, it is a small value type around an inner executor (the
// loop's `io_context::executor_type`): a pointer to the loop plus three
// property bits (blocking, relationship, outstanding work). `require()` and
// `prefer()` return another `LoopExecutor` with the bit changed, so the type
// stays the same whatever Asio asks of it. Two executors are equal when they
// refer to the same loop.
//
// What `execute()` adds to the inner executor:
//   * The function is wrapped so that, when it runs, the loop opens a busy
//     slice if none is open (one clock read per wake-up, not per handler) and
//     counts a handler.
//   * After submitting, it reads the loop's state (one load). If the loop is
//     suspending and the submitter is another thread, the suspension is
//     cancelled; if it is suspended, it resumes on a fresh thread before
//     `execute()` returns. Work is never lost to a suspension.
//
// Outstanding work: `require(execution::outstanding_work.tracked)` returns an
// executor that counts as work on the loop while it (or a copy) lives, exactly
// like Asio's own tracked executors: the loop cannot finish suspending, and
// creating it wakes a suspended loop. Asio asks for it whenever an operation is
// started (a timer armed, a socket read), which is how those wake the loop.
// Asio requires executor copies to be `noexcept`; if resuming a loop from a
// tracked copy fails to create a thread, the process terminates.
//
// Thread-safety: all members are safe to call from any thread. The executor
// must not outlive its loop.

#ifndef LOOPSCALE_LOOP_EXECUTOR_HPP_
#define LOOPSCALE_LOOP_EXECUTOR_HPP_

#include <cstdint>

#include <asio/execution.hpp>
#include <asio/io_context.hpp>

namespace loopscale {

class EventLoop;

class LoopExecutor {
 public:
  using inner_executor_type = asio::io_context::executor_type;

  // An untracked, possibly-blocking, fork executor for `loop`.
  explicit LoopExecutor(EventLoop& loop) noexcept : loop_(&loop), bits_(0) {}

  LoopExecutor(const LoopExecutor& other) noexcept;
  LoopExecutor(LoopExecutor&& other) noexcept;
  LoopExecutor& operator=(const LoopExecutor& other) noexcept;
  LoopExecutor& operator=(LoopExecutor&& other) noexcept;
  ~LoopExecutor();

  // Returns the loop this executor submits to.
  EventLoop& loop() const noexcept { return *loop_; }

  // Returns the loop's `io_context` executor, with no accounting and no
  // suspension handling: work submitted through it bypasses loopscale.
  inner_executor_type get_inner_executor() const noexcept;

  // Returns true if the caller runs on the loop's thread, inside a handler.
  bool running_in_this_thread() const noexcept;

  // ---- Asio properties (called through asio::query/require/prefer) --------

  asio::io_context& query(asio::execution::context_t) const noexcept;
  asio::execution::blocking_t query(asio::execution::blocking_t) const noexcept;
  asio::execution::relationship_t query(
      asio::execution::relationship_t) const noexcept;
  asio::execution::outstanding_work_t query(
      asio::execution::outstanding_work_t) const noexcept;
  asio::execution::mapping_t query(asio::execution::mapping_t) const noexcept {
    return asio::execution::mapping.thread;
  }

  LoopExecutor require(asio::execution::blocking_t::possibly_t) const noexcept {
    return with(kBlockingNever, false);
  }
  LoopExecutor require(asio::execution::blocking_t::never_t) const noexcept {
    return with(kBlockingNever, true);
  }
  LoopExecutor require(asio::execution::relationship_t::fork_t) const noexcept {
    return with(kContinuation, false);
  }
  LoopExecutor require(
      asio::execution::relationship_t::continuation_t) const noexcept {
    return with(kContinuation, true);
  }
  LoopExecutor require(
      asio::execution::outstanding_work_t::tracked_t) const noexcept {
    return with(kTracked, true);
  }
  LoopExecutor require(
      asio::execution::outstanding_work_t::untracked_t) const noexcept {
    return with(kTracked, false);
  }

  // Submits `f` to the loop according to this executor's properties. `f` runs
  // on the loop's thread; with `blocking.possibly` and a caller already on that
  // thread it runs before `execute()` returns.
  template <class Function>
  void execute(Function&& f) const;

  friend bool operator==(const LoopExecutor& a,
                         const LoopExecutor& b) noexcept {
    return a.loop_ == b.loop_;
  }
  friend bool operator!=(const LoopExecutor& a,
                         const LoopExecutor& b) noexcept {
    return a.loop_ != b.loop_;
  }

 private:
  static constexpr std::uint8_t kBlockingNever = 1;
  static constexpr std::uint8_t kContinuation = 2;
  static constexpr std::uint8_t kTracked = 4;

  LoopExecutor(EventLoop* loop, std::uint8_t bits) noexcept;
  LoopExecutor with(std::uint8_t bit, bool on) const noexcept {
    return LoopExecutor(loop_, on ? (bits_ | bit) : (bits_ & ~bit));
  }
  bool tracked() const noexcept { return (bits_ & kTracked) != 0; }

  EventLoop* loop_;
  std::uint8_t bits_;
};

}  // namespace loopscale

#include "loopscale/event_loop.hpp"

#endif  // LOOPSCALE_LOOP_EXECUTOR_HPP_
