#include "loopscale/event_loop.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <limits>
#include <string>
#include <system_error>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "loopscale/detail/test_hooks.hpp"

namespace loopscale {
namespace {

// An io_context that only one thread runs at a time: Asio then keeps a
// handler's same-thread posts on a private queue, without locking.
constexpr int kOneThreadConcurrencyHint = 1;

// Linux limits thread names to 15 characters plus the terminator.
constexpr std::size_t kMaxThreadName = 15;

void name_this_thread(std::size_t index) {
  std::string name = "loopscale-" + std::to_string(index);
  if (name.size() > kMaxThreadName) name.resize(kMaxThreadName);
  pthread_setname_np(pthread_self(), name.c_str());
}

}  // namespace

// Handlers that throw are reported and the loop goes on (see event_loop.hpp).
void EventLoop::report_handler_exception() const noexcept {
  try {
    throw;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loopscale: loop %zu: a handler threw: %s\n", index_,
                 e.what());
  } catch (...) {
    std::fprintf(stderr, "loopscale: loop %zu: a handler threw\n", index_);
  }
}

EventLoop::EventLoop(std::size_t index)
    : index_(index), ctx_(kOneThreadConcurrencyHint) {
  // Asio makes a context's reactor (epoll, eventfd, timerfd: three
  // descriptors) with its first I/O object, and throws if the process is out
  // of descriptors then. A loop woken by a scale-up makes its first socket
  // exactly when descriptors are short (a connection flood), in the middle
  // of an accept or a connection's move. Made here, the failure comes at
  // construction, where the pool reports it, and never later.
  asio::steady_timer make_reactor(ctx_);
}

EventLoop::~EventLoop() {
  stop();
  detail::MutexLock lock(mu_);
  // stop() from the loop's own thread leaves the join to us.
  if (thread_.joinable()) thread_.join();
}

void EventLoop::resume() {
  bool started_thread = false;
  {
    detail::MutexLock lock(mu_);
    started_thread = resume_locked();
  }
  // Linux starts a new thread on its creator's CPU as a rule, and a new
  // thread does not preempt a running one: behind a creator that keeps its
  // CPU busy (a loop's thread posting to a suspended loop) the resumed loop
  // waited for the creator's time slice (a 4 ms tail of ResumeLatency in
  // benchmarks/loop_bench.cpp; docs/performance.md). Yielding once lets the
  // new thread start now; where
  // it started on another CPU, the yield returns at once. After mu_ is
  // released: the new thread may need it.
  if (started_thread) sched_yield();
}

bool EventLoop::resume_locked() {
  if (stop_requested_) return false;
  bool started_thread = false;
  switch (state_.load()) {
    case LoopState::kActive:
    case LoopState::kStopped:
      return false;
    case LoopState::kDraining:
    case LoopState::kSuspending:
      // The thread is still serving: put the guard back and it stays.
      guard_.emplace(ctx_.get_executor());
      break;
    case LoopState::kSuspended:
      // The previous thread stored kSuspended under mu_ and only returns after
      // that, so this join is short.
      if (thread_.joinable()) thread_.join();
      if (!start_thread_locked()) return false;  // stays suspended; retried
      // The thread cannot leave before we release mu_, so its clock is valid.
      thread_running_ =
          pthread_getcpuclockid(thread_.native_handle(), &cpu_clock_) == 0;
      if (ever_started_) resumes_.fetch_add(1, std::memory_order_relaxed);
      ever_started_ = true;
      // A probe queued as the last thread left would read the time the loop
      // spent suspended as lag: forget it.
      probe_posted_.store(0, std::memory_order_relaxed);
      last_lag_.store(0, std::memory_order_relaxed);
      started_thread = true;
      break;
  }
  ++epoch_;
  state_.store(LoopState::kActive);
  return started_thread;
}

bool EventLoop::start_thread_locked() {
  ctx_.restart();
  guard_.emplace(ctx_.get_executor());
  try {
    if (detail::fail_thread_starts_for_testing.load(std::memory_order_relaxed) > 0 &&
        detail::fail_thread_starts_for_testing.fetch_sub(1) > 0) {
      throw std::system_error(EAGAIN, std::generic_category(),
                              "thread creation refused by the test hook");
    }
    thread_ = std::thread([this] { thread_main(); });
  } catch (const std::system_error& e) {
    // RLIMIT_NPROC, memory, a container's pid limit. The work that asked for
    // the thread stays queued on the io_context, so nothing is lost; the
    // loop stays suspended and the next submission or monitor tick
    // (`resume_pending()`) tries again. Reported once per run of failures.
    guard_.reset();
    resume_failures_.fetch_add(1, std::memory_order_relaxed);
    if (!resume_pending_.exchange(true)) {
      std::fprintf(stderr,
                   "loopscale: loop %zu: cannot start a thread (%s); its work "
                   "waits and the start is retried\n",
                   index_, e.what());
    }
    return false;
  }
  if (resume_pending_.exchange(false)) {
    std::fprintf(stderr, "loopscale: loop %zu: thread started after %llu failures\n",
                 index_, static_cast<unsigned long long>(resume_failures_.load()));
  }
  return true;
}

std::chrono::nanoseconds EventLoop::scheduling_lag() {
  const std::int64_t now = Clock::now().time_since_epoch().count();
  detail::MutexLock lock(mu_);
  std::int64_t lag = last_lag_.load(std::memory_order_relaxed);
  const std::int64_t posted = probe_posted_.load(std::memory_order_relaxed);
  if (posted != 0) {
    lag = std::max(lag, now - posted);
  } else if (state_.load() == LoopState::kActive) {
    // mu_ orders this against the thread leaving: an active loop has a
    // thread, and a suspension started after this post waits for the probe.
    const std::int64_t stamp = now == 0 ? 1 : now;
    probe_posted_.store(stamp, std::memory_order_relaxed);
    asio::post(ctx_, [this, stamp] {
      const std::int64_t ran = Clock::now().time_since_epoch().count();
      std::int64_t expected = stamp;
      if (probe_posted_.compare_exchange_strong(expected, 0,
                                                std::memory_order_relaxed)) {
        last_lag_.store(ran - stamp, std::memory_order_relaxed);
      }
    });
  }
  lag = std::max<std::int64_t>(lag, 0);
  reported_lag_.store(lag, std::memory_order_relaxed);
  return std::chrono::nanoseconds(lag);
}

bool EventLoop::try_suspend() {
  detail::MutexLock lock(mu_);
  if (stop_requested_) return false;
  switch (state_.load()) {
    case LoopState::kActive:
      // Store the state before dropping the guard: see "Memory ordering".
      state_.store(registrations() > 0 ? LoopState::kDraining
                                       : LoopState::kSuspending);
      // A listener's pending accept would keep the thread: it is cut short,
      // and the listener moves to a loop in rotation. Posted to the
      // io_context like the lag probe, before the guard goes, so that the
      // thread runs it.
      if (listeners_.load() > 0) {
        asio::post(ctx_, [this] { sessions_.interrupt_listeners(); });
      }
      guard_.reset();
      return true;
    case LoopState::kDraining:
      if (registrations() == 0) state_.store(LoopState::kSuspending);
      return true;
    case LoopState::kSuspending:
    case LoopState::kSuspended:
      return true;
    case LoopState::kStopped:
      return false;
  }
  return false;
}

void EventLoop::after_submit_slow(LoopState seen) {
  // The loop's own handlers submitting to it while it winds down are its
  // remaining work: Asio's work count already holds the suspension off.
  if (seen != LoopState::kSuspended && on_own_thread()) return;
  resume();
}

void EventLoop::acquire_work_slow() noexcept {
  // Count first, then look at the state: see "Memory ordering" in the header.
  ctx_.get_executor().on_work_started();
  after_submit();
}

void EventLoop::release_work() noexcept {
  ctx_.get_executor().on_work_finished();
}

void EventLoop::stop() {
  const bool own_thread = on_own_thread();
  detail::MutexLock lock(mu_);
  if (!stop_requested_) {
    stop_requested_ = true;
    stopping_.store(true, std::memory_order_release);
    const LoopState s = state_.load();
    if (s == LoopState::kSuspended || s == LoopState::kStopped) {
      // No thread serves the loop, and work submitted to a suspended loop
      // would have resumed it: nothing is queued that was submitted before.
      guard_.reset();
      state_.store(LoopState::kStopped);
      stopped_cv_.SignalAll();
    } else {
      // Two hops: the first marker runs after everything queued before this
      // call; handlers the running handler had posted from the loop's thread
      // join the queue when it returns, i.e. before the first marker runs, so
      // the second marker (posted from the loop's thread) runs after them.
      asio::post(ctx_, [this] {
        asio::post(ctx_, [this] {
          stop_marker_ran_.store(true);
          ctx_.stop();
        });
      });
    }
  }
  if (own_thread) return;
  while (state_.load() != LoopState::kStopped) mu_.wait(stopped_cv_);
  if (thread_.joinable()) thread_.join();
}

ActivityRecorder* detail::this_thread_recorder() noexcept {
  // Only the loop's own thread writes its recorder; the loop is not const.
  EventLoop* loop = const_cast<EventLoop*>(this_thread_loop);
  return loop != nullptr ? &loop->recorder_ : nullptr;
}

void EventLoop::open_slice() noexcept {
  in_slice_ = true;
  recorder_.mark_busy(Clock::now());
}

void EventLoop::close_slice() noexcept {
  if (in_slice_) {
    recorder_.mark_idle(Clock::now());
    in_slice_ = false;
  }
}

void EventLoop::serve() {
  for (;;) {
    try {
      for (;;) {
        close_slice();  // about to block
        if (ctx_.run_one() == 0) break;
        ctx_.poll();
      }
      close_slice();
      return;
    } catch (...) {
      report_handler_exception();
    }
  }
}

void EventLoop::thread_main() {
  name_this_thread(index_);
  detail::enter_loop_thread(*this);
  for (;;) {
    serve();  // returns once ctx_ is stopped
    std::uint64_t epoch = 0;
    {
      detail::MutexLock lock(mu_);
      ctx_.restart();
      if (stop_requested_) {
        if (stop_marker_ran_.load()) {
          guard_.reset();
          leave_thread_locked();
          state_.store(LoopState::kStopped);
          stopped_cv_.SignalAll();
          return;
        }
        continue;  // the marker is still queued: serve until it runs
      }
      // A submitter cancelled the suspension while Asio was stopping ctx_.
      if (state_.load() == LoopState::kActive) continue;
      epoch = epoch_;
    }
    // Asio stopped ctx_ when its work count reached zero, but a submitter that
    // read kSuspending/kDraining may have enqueued since: run what is there.
    // Submitters after this poll see kSuspending/kDraining (or kSuspended) and
    // take mu_, so they are ordered after the decision below.
    std::size_t ran = 0;
    try {
      ran = ctx_.poll();
    } catch (...) {
      report_handler_exception();
      ran = 1;  // a handler ran, and more may be queued behind it
    }
    close_slice();
    if (ran > 0) continue;
    detail::MutexLock lock(mu_);
    if (epoch != epoch_ || stop_requested_) continue;
    ctx_.restart();
    leave_thread_locked();
    // Counted before the state is published: whoever sees kSuspended sees
    // this suspension counted.
    suspensions_.fetch_add(1, std::memory_order_relaxed);
    state_.store(LoopState::kSuspended);
    return;
  }
}

void EventLoop::request_close() {
  closing_.store(true, std::memory_order_release);
  // Every session is asked: the boundary check sees a request at once.
  request_moves(std::numeric_limits<std::size_t>::max());
}

void EventLoop::request_moves(std::size_t n) {
  // A loop closing its connections keeps asking all of them.
  if (closing()) n = std::numeric_limits<std::size_t>::max();
  move_quota_.store(n, std::memory_order_relaxed);
  if (n == 0 || interrupt_queued_.exchange(true, std::memory_order_acq_rel)) {
    return;
  }
  // Straight to the io_context, like the lag probe: a request must not wake
  // a suspended loop or cancel a suspension (a draining loop is asked to let
  // its connections go, not to take them back).
  asio::post(ctx_, [this] {
    interrupt_queued_.store(false, std::memory_order_release);
    sessions_.interrupt_waiting(move_quota_.load(std::memory_order_relaxed),
                                closing());
  });
}

bool EventLoop::claim_move() noexcept {
  std::size_t left = move_quota_.load(std::memory_order_relaxed);
  while (left > 0) {
    if (move_quota_.compare_exchange_weak(left, left - 1,
                                          std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

namespace {

std::chrono::nanoseconds read_cpu_clock(clockid_t clock) {
  timespec ts{};
  if (clock_gettime(clock, &ts) != 0) return std::chrono::nanoseconds(0);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

}  // namespace

void EventLoop::leave_thread_locked() {
  past_cpu_ += read_cpu_clock(CLOCK_THREAD_CPUTIME_ID);
  thread_running_ = false;
}

std::chrono::nanoseconds EventLoop::cpu_time() const {
  detail::MutexLock lock(mu_);
  if (!thread_running_) return past_cpu_;
  return past_cpu_ + read_cpu_clock(cpu_clock_);
}

Registration::Registration(EventLoop& loop) noexcept : loop_(&loop) {
  loop.registrations_.fetch_add(1, std::memory_order_relaxed);
  loop.registrations_total_.fetch_add(1, std::memory_order_relaxed);
}

void Registration::release() noexcept {
  if (loop_ != nullptr) {
    loop_->registrations_.fetch_sub(1, std::memory_order_relaxed);
    loop_ = nullptr;
  }
}

}  // namespace loopscale
