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
// loop's `io_context::executor_type`): one word, the loop's address with the
// property bits (blocking, relationship) in its low bits, as Asio's own
// io_context executor does, so Asio's `require`/`prefer` chains cost
// nothing. (A pointer plus a separate flag byte made every handler copy stall
// on store-to-load forwarding.) `require()` and `prefer()` return another
// `LoopExecutor` with the bit changed. Two executors are equal when they
// refer to the same loop.
//
// It is deliberately not trivially copyable (its copy constructor is
// user-provided and does what the implicit one would), like Asio's own
// io_context executor. A handler holding a trivially copyable executor is
// itself trivially copyable, and GCC 12 then copies it into Asio's queued
// operation as a block, with 16-byte loads over the 8- and 4-byte stores
// that had just built it; those loads cannot be forwarded from the stores
// and stall. A handler that re-posts itself (RepostChain in
// benchmarks/loop_bench.cpp) ran 1.09-1.12 of plain Asio's time that way and
// 0.96-0.98 with this copy constructor (and `post()`, impl/loop_executor.hpp).
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
// Outstanding work: `require(execution::outstanding_work.tracked)` returns a
// `TrackedLoopExecutor`, which counts as work on the loop while it (or a copy)
// lives, exactly like Asio's own tracked executors: the loop cannot finish
// suspending, and creating one wakes a suspended loop. Asio asks for one
// whenever an operation is started (a timer armed, a socket read), which is how
// those wake the loop. Asio requires executor copies to be `noexcept`; if
// resuming a loop from a tracked copy fails to create a thread, the process
// terminates.
//
// A tracked executor created on the loop's own thread (inside a handler, which
// is where Asio creates one for nearly every operation) holds no count of its
// own: the running handler is itself counted until it returns, and the
// operation it starts registers its own work (Asio counts every pending timer
// and socket operation), so the loop cannot run dry in between. This saves two
// atomic read-modify-writes per operation. Holding such an executor does not
// keep a loop from suspending later; submitting through it wakes the loop.
// Whether a tracked executor counts is decided once, when it is made from an
// untracked one: its copies (and the executors `require()` derives from it)
// count if and only if it does, wherever they are made. Asio copies the
// tracked executor of every operation several times on the loop's thread;
// this keeps those copies free.
//
// Thread-safety: all members are safe to call from any thread. An executor
// must not outlive its loop.

#ifndef LOOPSCALE_LOOP_EXECUTOR_HPP_
#define LOOPSCALE_LOOP_EXECUTOR_HPP_

#include <cstdint>

#include "loopscale/detail/asio_config.hpp"

#include <asio/execution.hpp>
#include <asio/io_context.hpp>

#include "absl/base/attributes.h"

namespace loopscale {

class EventLoop;
class LoopExecutor;
class TrackedLoopExecutor;

namespace detail {

// What LoopExecutor and TrackedLoopExecutor share: the loop, the blocking and
// relationship bits, the queries and execute(). Not for direct use.
class LoopExecutorBase {
 public:
  using inner_executor_type = asio::io_context::executor_type;

  // Returns the loop this executor submits to.
  EventLoop& loop() const noexcept { return *ptr(); }

  // Returns the loop's `io_context` executor, with no accounting and no
  // suspension handling: work submitted through it bypasses loopscale.
  inner_executor_type get_inner_executor() const noexcept;

  // Returns true if the caller runs on the loop's thread (where all code runs
  // inside one of the loop's handlers). A thread of your own that runs the
  // loop's `context()` is not the loop's thread: false there.
  bool running_in_this_thread() const noexcept;

  // Asio properties, called through asio::query.
  asio::io_context& query(asio::execution::context_t) const noexcept;
  asio::execution::blocking_t query(asio::execution::blocking_t) const noexcept;
  asio::execution::relationship_t query(
      asio::execution::relationship_t) const noexcept;
  asio::execution::mapping_t query(asio::execution::mapping_t) const noexcept {
    return asio::execution::mapping.thread;
  }

  // Submits `f` to the loop according to this executor's properties. `f` runs
  // on the loop's thread; with `blocking.possibly` and a caller already on that
  // thread it runs before `execute()` returns.
  template <class Function>
  ABSL_ATTRIBUTE_ALWAYS_INLINE void execute(Function&& f) const;

 protected:
  // Property bits, kept in the low bits of the loop's address (EventLoop is
  // aligned to a cache line, so its low six bits are zero).
  static constexpr std::uintptr_t kBlockingNever = 1;
  static constexpr std::uintptr_t kContinuation = 2;
  static constexpr std::uintptr_t kHoldsWork = 4;  // TrackedLoopExecutor only
  static constexpr std::uintptr_t kAllBits = 7;

  explicit LoopExecutorBase(std::uintptr_t target) noexcept : target_(target) {}
  static std::uintptr_t address_of(EventLoop& loop) noexcept {
    return reinterpret_cast<std::uintptr_t>(&loop);
  }
  EventLoop* ptr() const noexcept {
    return reinterpret_cast<EventLoop*>(target_ & ~kAllBits);
  }
  std::uintptr_t with(std::uintptr_t bit, bool on) const noexcept {
    return on ? (target_ | bit) : (target_ & ~bit);
  }
  bool same_loop(const LoopExecutorBase& other) const noexcept {
    return ptr() == other.ptr();
  }

  std::uintptr_t target_;
};

}  // namespace detail

class LoopExecutor : public detail::LoopExecutorBase {
 public:
  // An untracked, possibly-blocking, fork executor for `loop`.
  explicit LoopExecutor(EventLoop& loop) noexcept
      : LoopExecutorBase(address_of(loop)) {}
  // User-provided on purpose: see "not trivially copyable" above.
  LoopExecutor(const LoopExecutor& other) noexcept
      : LoopExecutorBase(other.target_) {}
  LoopExecutor& operator=(const LoopExecutor& other) noexcept {
    target_ = other.target_;
    return *this;
  }

  using LoopExecutorBase::query;
  asio::execution::outstanding_work_t query(
      asio::execution::outstanding_work_t) const noexcept {
    return asio::execution::outstanding_work.untracked;
  }

  // Asio properties, called through asio::require and asio::prefer.
  LoopExecutor require(asio::execution::blocking_t::possibly_t) const noexcept {
    return LoopExecutor(with(kBlockingNever, false));
  }
  LoopExecutor require(asio::execution::blocking_t::never_t) const noexcept {
    return LoopExecutor(with(kBlockingNever, true));
  }
  LoopExecutor require(asio::execution::relationship_t::fork_t) const noexcept {
    return LoopExecutor(with(kContinuation, false));
  }
  LoopExecutor require(
      asio::execution::relationship_t::continuation_t) const noexcept {
    return LoopExecutor(with(kContinuation, true));
  }
  TrackedLoopExecutor require(
      asio::execution::outstanding_work_t::tracked_t) const noexcept;
  LoopExecutor require(
      asio::execution::outstanding_work_t::untracked_t) const noexcept {
    return *this;
  }

  friend bool operator==(const LoopExecutor& a,
                         const LoopExecutor& b) noexcept {
    return a.same_loop(b);
  }
  friend bool operator!=(const LoopExecutor& a,
                         const LoopExecutor& b) noexcept {
    return !a.same_loop(b);
  }

 private:
  friend class TrackedLoopExecutor;
  explicit LoopExecutor(std::uintptr_t target) noexcept
      : LoopExecutorBase(target) {}
};

// A LoopExecutor that holds outstanding work on its loop while it lives (see
// the header comment). Obtained with
// `asio::require(ex, asio::execution::outstanding_work.tracked)`.
class TrackedLoopExecutor : public detail::LoopExecutorBase {
 public:
  TrackedLoopExecutor(const TrackedLoopExecutor& other) noexcept;
  TrackedLoopExecutor(TrackedLoopExecutor&& other) noexcept;
  TrackedLoopExecutor& operator=(const TrackedLoopExecutor& other) noexcept;
  TrackedLoopExecutor& operator=(TrackedLoopExecutor&& other) noexcept;
  ~TrackedLoopExecutor();

  using LoopExecutorBase::query;
  asio::execution::outstanding_work_t query(
      asio::execution::outstanding_work_t) const noexcept {
    return asio::execution::outstanding_work.tracked;
  }

  TrackedLoopExecutor require(
      asio::execution::blocking_t::possibly_t) const noexcept {
    return TrackedLoopExecutor(kCopy, with(kBlockingNever, false));
  }
  TrackedLoopExecutor require(
      asio::execution::blocking_t::never_t) const noexcept {
    return TrackedLoopExecutor(kCopy, with(kBlockingNever, true));
  }
  TrackedLoopExecutor require(
      asio::execution::relationship_t::fork_t) const noexcept {
    return TrackedLoopExecutor(kCopy, with(kContinuation, false));
  }
  TrackedLoopExecutor require(
      asio::execution::relationship_t::continuation_t) const noexcept {
    return TrackedLoopExecutor(kCopy, with(kContinuation, true));
  }
  TrackedLoopExecutor require(
      asio::execution::outstanding_work_t::tracked_t) const noexcept {
    return *this;
  }
  LoopExecutor require(
      asio::execution::outstanding_work_t::untracked_t) const noexcept {
    return LoopExecutor(target_ & ~kHoldsWork);
  }

  friend bool operator==(const TrackedLoopExecutor& a,
                         const TrackedLoopExecutor& b) noexcept {
    return a.same_loop(b);
  }
  friend bool operator!=(const TrackedLoopExecutor& a,
                         const TrackedLoopExecutor& b) noexcept {
    return !a.same_loop(b);
  }

 private:
  friend class LoopExecutor;
  // Takes `target` without kHoldsWork and sets it if the work was counted.
  explicit TrackedLoopExecutor(std::uintptr_t target) noexcept;
  // A copy of the executor `target` came from, kHoldsWork included: counts
  // one more work item if that one holds work.
  enum CopyTag { kCopy };
  TrackedLoopExecutor(CopyTag, std::uintptr_t target) noexcept;
  // kHoldsWork is clear when created on the loop's own thread, and once moved
  // from (the address stays, for equality).
  bool holds_work() const noexcept { return (target_ & kHoldsWork) != 0; }
};

}  // namespace loopscale

#include "loopscale/event_loop.hpp"

#endif  // LOOPSCALE_LOOP_EXECUTOR_HPP_
