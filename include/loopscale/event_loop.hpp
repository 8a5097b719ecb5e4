// -----------------------------------------------------------------------------
// event_loop.hpp
// -----------------------------------------------------------------------------
//
// `EventLoop` is one single-threaded Asio event loop: one `asio::io_context`,
// the thread that runs it, an `ActivityRecorder` that accounts its busy time,
// and a state that lets it give its thread back when it is not needed.
//
//   loopscale::EventLoop loop(0);
//   loop.start();                                  // spawns the thread
//   asio::post(loop.get_executor(), [] { ... });   // runs on that thread
//   asio::steady_timer t(loop.get_executor());     // I/O objects on the loop
//   loop.busy_time();                              // includes the running slice
//   loop.try_suspend();                            // thread leaves when work is done
//   asio::post(loop.get_executor(), [] { ... });   // ... and comes back for this
//   loop.stop();                                   // runs what was posted, joins
//
// `EventLoop` models the `ScalableExecutor` concept (chooser.hpp).
//
// States (`state()`):
//
//   kActive      a thread runs the loop; an Asio work guard keeps it running
//                when it has nothing to do.
//   kDraining    suspension requested while connections are registered: the
//                guard is dropped, the loop keeps serving, and its thread leaves
//                once Asio's outstanding-work count reaches zero.
//   kSuspending  the same with no registration.
//   kSuspended   no thread. The io_context and every I/O object on it survive.
//   kStopped     terminal, after `stop()`.
//
// A new loop is kSuspended until `start()` (or until work is submitted to it).
//
// Suspension is gated by Asio's own outstanding-work count: pending timers,
// pending socket operations and queued handlers all keep a suspending loop
// serving. Work submitted through a `LoopExecutor` is never lost:
//   * to a kSuspending/kDraining loop from another thread: the suspension is
//     cancelled (the loop is kActive again when the submission returns);
//     from the loop's own thread it is the loop finishing its own business,
//     which Asio's work count already waits for, so nothing is cancelled;
//   * to a kSuspended loop: the loop resumes on a fresh thread before the
//     submission returns, so `is_suspended()` reads false right after
//     `asio::post` returns.
//
// Busy accounting: a busy slice opens when the first wrapped handler after a
// wait starts and closes when the loop is about to block (in `serve()`), so a
// handler pays one branch and one counter store, and a wake-up pays two clock
// reads. Handlers submitted through the raw `io_context` are not counted when
// they start a slice, but time they spend inside a slice is.
//
// Exceptions thrown by handlers are caught on the loop's thread, reported on
// stderr with the loop's index, and the loop keeps running: one bad handler
// must not take the pool's thread down with it.
//
// Thread-safety: every member function may be called from any thread,
// repeatedly, in any state. `stop()` and the destructor must not be called
// from the loop's own thread (`stop()` from a handler requests the stop and
// returns without waiting). Work submitted after `stop()` is not run; it is
// destroyed with the loop, as with a stopped `io_context`.
//
// Memory ordering: a submitter enqueues first (Asio increments its
// outstanding-work count, a sequentially consistent read-modify-write) and
// then loads the state (sequentially consistent). `try_suspend()` stores the
// new state before it drops the work guard. So either the submitter sees the
// suspension and acts on it, or the guard's release sees the submitter's work
// and the loop cannot run dry under it. The thread that leaves on suspension
// re-checks for work that landed after Asio stopped the context, under the
// loop's mutex, before it stores kSuspended (see `thread_main()`).

#ifndef LOOPSCALE_EVENT_LOOP_HPP_
#define LOOPSCALE_EVENT_LOOP_HPP_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <thread>

#include <time.h>  // clockid_t

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include "absl/base/attributes.h"
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "loopscale/detail/loop_thread.hpp"
#include "loopscale/detail/mutex.hpp"
#include "loopscale/detail/session_list.hpp"
#include "loopscale/activity.hpp"
#include "loopscale/clock.hpp"
#include "loopscale/loop_executor.hpp"
#include "loopscale/loop_state.hpp"
#include "loopscale/registration.hpp"

namespace loopscale {

template <class State, class Socket>
class Session;

namespace detail {
template <class F>
struct LoopInvoker;
// The recorder of the loop this thread runs; null on other threads
// (job_scope.hpp marks jobs there).
ActivityRecorder* this_thread_recorder() noexcept;

// Cache-line size on x86-64 and most ARM cores. EventLoop keeps data its
// thread writes per handler off the line submitters read per submission; the
// alignment also frees the low bits of its address for LoopExecutor's flags.
inline constexpr std::size_t kCacheLine = 64;
}  // namespace detail

class alignas(detail::kCacheLine) EventLoop {
 public:
  // Creates a suspended loop (no thread yet). `index` names the loop in
  // statistics, thread names and error messages. The loop's reactor is made
  // here (three descriptors: epoll, eventfd, timerfd), so that no I/O object
  // made on the loop later can fail for want of one; throws
  // `std::system_error` if the process is out of descriptors now.
  explicit EventLoop(std::size_t index = 0);
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  // Stops the loop (see `stop()`) and joins its thread.
  ~EventLoop();

  // Returns an executor that submits to this loop.
  LoopExecutor get_executor() noexcept { return LoopExecutor(*this); }

  // Returns the loop's io_context. I/O objects created on it directly bypass
  // busy accounting and do not wake a suspended loop: use `get_executor()`.
  asio::io_context& context() noexcept { return ctx_; }

  // Returns the index given at construction.
  std::size_t index() const noexcept { return index_; }

  // Starts the loop's thread; the same as `resume()`.
  void start() { resume(); }

  // Stops the loop: every handler submitted before `stop()` was called runs,
  // then pending timers and socket operations are abandoned (as with
  // `io_context::stop()`), the thread is joined and the state is kStopped.
  // Idempotent; concurrent callers all wait for the stop to finish.
  void stop();

  // Returns the current state. A snapshot: it may change right after.
  LoopState state() const noexcept {
    return state_.load(std::memory_order_seq_cst);
  }

  // Returns the busy total, including the slice in progress. Monotonic.
  std::chrono::nanoseconds busy_time() const noexcept {
    return recorder_.busy_time();
  }

  // Returns the loop's busy/handler/wake-up counters, consistently.
  ActivityRecorder::Snapshot activity() const noexcept {
    return recorder_.snapshot();
  }
  ActivityRecorder::Snapshot activity(Clock::time_point now) const noexcept {
    return recorder_.snapshot(now);
  }
  // Returns the busy total and its split by job type (job_type.hpp),
  // consistently.
  ActivityRecorder::JobsSnapshot jobs(Clock::time_point now = Clock::now()) const noexcept {
    return recorder_.jobs(now);
  }

  // Asks the loop to give its thread back once its outstanding work is done:
  // kActive becomes kDraining (registrations held) or kSuspending. Returns
  // true if the loop is now suspending, draining or suspended, false if it is
  // stopped or stopping (refused).
  [[nodiscard]] bool try_suspend();

  // Brings the loop back into service: cancels a pending suspension, or starts
  // a fresh thread for a suspended loop. Idempotent. Does nothing once
  // `stop()` was called. After starting a thread the caller yields its CPU
  // once (`sched_yield()`): Linux usually starts the new thread on the
  // caller's CPU, where it would otherwise wait out the caller's time slice.
  // The caller may then wait for the new thread instead, until one of them
  // blocks or the kernel moves one to another CPU; the resumed loop is the
  // one holding the work that made it resume.
  void resume();

  // True once suspending, draining, suspended or stopped: the loop does not
  // take new work from a chooser.
  bool is_suspended() const noexcept { return state() != LoopState::kActive; }

  // True while the loop is out of rotation but still has its thread,
  // serving what it holds until it is gone (kDraining or kSuspending): the
  // monitor's "draining" (`DrainingExecutor`), which it takes back before it
  // starts a thread for a suspended loop.
  bool is_draining() const noexcept {
    return monitor_status(state()) == ExecutorStatus::kDraining;
  }

  // True once `stop()` was called: work submitted now may never run, and
  // sessions refuse to move here.
  bool stopping() const noexcept {
    return stopping_.load(std::memory_order_acquire);
  }

  // Returns the number of live registrations.
  std::size_t registrations() const noexcept {
    return registrations_.load(std::memory_order_relaxed);
  }
  // Returns how many registrations were ever made on this loop, those of
  // connections that moved here included (subtract `moves_in()` for the
  // connections that began here).
  std::uint64_t registrations_total() const noexcept {
    return registrations_total_.load(std::memory_order_relaxed);
  }

  // Counts one connection on this loop while the result lives.
  [[nodiscard]] Registration register_connection() noexcept {
    return Registration(*this);
  }

  // Returns how many times the loop's thread left on suspension.
  std::uint64_t suspensions() const noexcept {
    return suspensions_.load(std::memory_order_relaxed);
  }
  // Returns the CPU time (user + system) of every thread the loop has had,
  // including the running one up to now. Costs a system call while a thread
  // runs (about 0.5 us: the monitor calls it once per loop per window, not
  // the hot path).
  std::chrono::nanoseconds cpu_time() const;

  // Scheduling lag (LagReportingExecutor, utilization_monitor.hpp): returns
  // how long the last probe waited in the loop's queue before it ran, or how
  // long the probe in flight has waited so far if that is longer (a loop
  // stuck in a long handler reads as late now, not when it is done), and
  // posts the next probe if none is in flight and the loop is kActive. The
  // monitor calls it once per tick; any thread may. The probe goes straight
  // to the io_context: it is not counted as a handler or as busy time, and
  // it neither wakes a suspended loop nor cancels a suspension (a suspending
  // loop runs it before its thread leaves). A resumed loop starts from zero.
  std::chrono::nanoseconds scheduling_lag();
  // Returns what `scheduling_lag()` last returned, without probing.
  std::chrono::nanoseconds last_scheduling_lag() const noexcept {
    return std::chrono::nanoseconds(reported_lag_.load(std::memory_order_relaxed));
  }

  // True while work waits for a thread that could not be started (thread
  // creation failed: RLIMIT_NPROC, memory, a container's pid limit). The
  // work stays queued, nothing is lost; every submission and every monitor
  // tick (`ResumingExecutor`) tries `resume()` again.
  bool resume_pending() const noexcept {
    return resume_pending_.load(std::memory_order_relaxed);
  }
  // Returns how many thread starts failed so far.
  std::uint64_t resume_failures() const noexcept {
    return resume_failures_.load(std::memory_order_relaxed);
  }

  // Returns how many times a suspended loop was given a fresh thread (the
  // first start is not counted).
  std::uint64_t resumes() const noexcept {
    return resumes_.load(std::memory_order_relaxed);
  }

  // ---- Connections that move (loopscale/session.hpp) ------------------------
  //
  // The monitor (`RebalancingExecutor`) asks up to `n` of the loop's
  // connections to leave it, replacing its previous request. Sessions claim
  // the request at their next boundary (`claim_move()`); the ones waiting
  // for input are interrupted at once, on the loop's thread (a handler
  // posted to the io_context directly, like the lag probe: it neither wakes
  // a suspended loop nor cancels a suspension). Any thread may call it.
  void request_moves(std::size_t n);
  // Returns how many moves are asked and not yet claimed: the boundary
  // check, one relaxed load.
  std::size_t moves_requested() const noexcept {
    return move_quota_.load(std::memory_order_relaxed);
  }
  // Claims one requested move; false if none is left.
  [[nodiscard]] bool claim_move() noexcept;
  // Connections that left this loop for another (`moves_out()`), arrived
  // from another (`moves_in()`), or were asked to leave and could not
  // (the target was stopping, or the socket could not be handed over).
  std::uint64_t moves_out() const noexcept {
    return moves_out_.load(std::memory_order_relaxed);
  }
  std::uint64_t moves_in() const noexcept {
    return moves_in_.load(std::memory_order_relaxed);
  }
  std::uint64_t moves_failed() const noexcept {
    return moves_failed_.load(std::memory_order_relaxed);
  }

  // Asks every session on this loop to close at its next boundary (a
  // server shutting down gracefully): each answers what it is answering,
  // then closes (`Session::close_requested()`), and one waiting for input
  // is closed at once; sessions do not move here any more. For good: a
  // loop closing its connections stays so. Any thread may call it.
  void request_close();
  // True once `request_close()` was called.
  bool closing() const noexcept {
    return closing_.load(std::memory_order_acquire);
  }

 private:
  friend class detail::LoopExecutorBase;
  friend class TrackedLoopExecutor;
  friend class Registration;
  friend class Listener;
  template <class F>
  friend struct detail::LoopInvoker;
  template <class State, class Socket>
  friend class Session;
  friend ActivityRecorder* detail::this_thread_recorder() noexcept;

  // Returns true on the loop's thread (detail/loop_thread.hpp).
  bool on_own_thread() const noexcept {
    return detail::is_loop_thread_of(*this);
  }

  // Called at the start of every handler submitted through a LoopExecutor, on
  // the loop's thread: opens a busy slice if none is open, counts a handler.
  ABSL_ATTRIBUTE_ALWAYS_INLINE void begin_handler() noexcept {
    if (!in_slice_) [[unlikely]] open_slice();
    recorder_.count_handler();
  }

  // Runs `f` inside the handler that is running on the loop's thread (a
  // blocking.possibly submission from that thread), as a handler of its own.
  // An exception from `f` is reported and does not unwind the enclosing
  // handler, as Asio's own executor captures it instead of letting it unwind.
  template <class F>
  void run_nested(F& f) noexcept {
    begin_handler();
    try {
      f();
    } catch (...) {
      report_handler_exception();
    }
  }
  // Reports the exception being handled on stderr, naming the loop.
  void report_handler_exception() const noexcept;

  // Called after work was submitted to the loop (the handler is queued or has
  // run). Only a loop that is not kActive needs attention.
  ABSL_ATTRIBUTE_ALWAYS_INLINE void after_submit() {
    const LoopState s = state_.load(std::memory_order_seq_cst);
    if (s != LoopState::kActive) [[unlikely]] after_submit_slow(s);
  }
  void after_submit_slow(LoopState seen);
  // A TrackedLoopExecutor is being created: counts it as Asio work unless the
  // caller runs on the loop's thread (see loop_executor.hpp), and wakes the
  // loop. Returns whether it counted, i.e. whether release_work() is due.
  ABSL_ATTRIBUTE_ALWAYS_INLINE bool acquire_work() noexcept {
    if (on_own_thread()) return false;
    acquire_work_slow();
    return true;
  }
  void acquire_work_slow() noexcept;
  void release_work() noexcept;

  // Returns true if it started a thread (the loop was suspended).
  bool resume_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts the loop's thread; false (and reported) if the system refuses.
  bool start_thread_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void thread_main();
  void serve();
  // Open and close the busy slice (once per wake-up, so out of line: the
  // handler's completion function stays small).
  void open_slice() noexcept;
  void close_slice() noexcept;

  const std::size_t index_;
  // Loop thread only. Declared before ctx_: sessions whose coroutines are
  // destroyed with ctx_ detach from it.
  detail::SessionList sessions_;
  // The listeners (listener.hpp) in sessions_: leaving rotation interrupts
  // them. Sequentially consistent with state_: a listener that attaches and
  // then reads the state, and try_suspend() that stores the state and then
  // reads this count, cannot both miss the other. Before ctx_ too.
  std::atomic<std::size_t> listeners_{0};
  asio::io_context ctx_;
  // Written by the loop's thread per handler and per wake-up.
  alignas(detail::kCacheLine) ActivityRecorder recorder_;
  // Loop thread only: true while a busy slice is open. A handler wrapped for
  // this loop only ever runs on the thread running ctx_, so no other thread
  // touches it; successive threads are ordered by mu_ and thread creation.
  bool in_slice_ = false;

  // Written under mu_ (rarely); read by every submission.
  alignas(detail::kCacheLine) std::atomic<LoopState> state_{LoopState::kSuspended};
  // Written by connections opening and closing, from any thread.
  alignas(detail::kCacheLine) std::atomic<std::size_t> registrations_{0};
  std::atomic<std::uint64_t> registrations_total_{0};
  std::atomic<std::uint64_t> suspensions_{0};
  std::atomic<std::uint64_t> resumes_{0};
  // Moves asked and not yet claimed; whether an interruption is queued.
  std::atomic<std::size_t> move_quota_{0};
  std::atomic<bool> interrupt_queued_{false};
  std::atomic<std::uint64_t> moves_out_{0};
  std::atomic<std::uint64_t> moves_in_{0};
  std::atomic<std::uint64_t> moves_failed_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> closing_{false};
  std::atomic<bool> resume_pending_{false};
  std::atomic<std::uint64_t> resume_failures_{0};
  // The probe in flight: when it was posted (Clock ticks since the epoch),
  // 0 if none. The probe clears it when it runs, if it is still its own.
  std::atomic<std::int64_t> probe_posted_{0};
  // The wait of the last probe that ran, and the last value reported.
  std::atomic<std::int64_t> last_lag_{0};
  std::atomic<std::int64_t> reported_lag_{0};
  // Set by the loop's thread when the stop marker ran.
  std::atomic<bool> stop_marker_ran_{false};

  mutable detail::Mutex mu_;
  // CPU time of the threads that have left, and the clock of the one
  // running (valid while `thread_running_`): a thread folds its time into
  // `past_cpu_` and clears the flag under mu_ before it returns, so a reader
  // holding mu_ never reads the clock of a thread that is gone (its id could
  // be reused).
  std::chrono::nanoseconds past_cpu_ ABSL_GUARDED_BY(mu_){0};
  clockid_t cpu_clock_ ABSL_GUARDED_BY(mu_){};
  bool thread_running_ ABSL_GUARDED_BY(mu_) = false;
  void leave_thread_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Signalled when the state becomes kStopped.
  absl::CondVar stopped_cv_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>>
      guard_ ABSL_GUARDED_BY(mu_);
  std::thread thread_ ABSL_GUARDED_BY(mu_);
  // Bumped whenever a suspension is cancelled or a thread started, so the
  // leaving thread can tell that its re-check is stale.
  std::uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool ever_started_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace loopscale

#include "loopscale/impl/loop_executor.hpp"

#endif  // LOOPSCALE_EVENT_LOOP_HPP_
