// What loop_bench's translation units share: the loops a case runs on, the
// benchmark thread's wait, and the timer cases' sizes.

#ifndef LOOPSCALE_BENCHMARKS_LOOP_BENCH_HPP_
#define LOOPSCALE_BENCHMARKS_LOOP_BENCH_HPP_

#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include <asio/basic_waitable_timer.hpp>
#include <asio/execution.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/query.hpp>
#include <asio/require.hpp>

#include "absl/functional/function_ref.h"
#include "loopscale/event_loop.hpp"

namespace loopscale_bench {

// A plain io_context run by one thread, as a user would write it.
class PlainLoop {
 public:
  PlainLoop() : guard_(ctx_.get_executor()), thread_([this] { ctx_.run(); }) {}
  ~PlainLoop() {
    guard_.reset();
    ctx_.stop();
    thread_.join();
  }
  asio::io_context::executor_type executor() { return ctx_.get_executor(); }

 private:
  asio::io_context ctx_{1};  // same concurrency hint as EventLoop
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
};

class ScaledLoop {
 public:
  ScaledLoop() { loop_.start(); }
  loopscale::LoopExecutor executor() { return loop_.get_executor(); }
  loopscale::EventLoop& loop() { return loop_; }

 private:
  loopscale::EventLoop loop_{0};
};

// The least an executor can be and still go into an any_io_executor: it
// forwards everything to an io_context executor.
template <class Inner>
struct ForwardingExecutor {
  Inner inner;

  asio::execution_context& query(asio::execution::context_t) const noexcept {
    return asio::query(inner, asio::execution::context);
  }
  asio::execution::blocking_t query(asio::execution::blocking_t) const noexcept {
    return asio::query(inner, asio::execution::blocking);
  }
  auto require(asio::execution::blocking_t::never_t) const noexcept {
    auto never = asio::require(inner, asio::execution::blocking.never);
    return ForwardingExecutor<decltype(never)>{never};
  }
  template <class F>
  void execute(F&& f) const {
    asio::execution::execute(inner, std::forward<F>(f));
  }
  friend bool operator==(const ForwardingExecutor& a,
                         const ForwardingExecutor& b) noexcept {
    return a.inner == b.inner;
  }
  friend bool operator!=(const ForwardingExecutor& a,
                         const ForwardingExecutor& b) noexcept {
    return !(a == b);
  }
};

class ForwardingLoop {
 public:
  ForwardingExecutor<asio::io_context::executor_type> executor() {
    return {plain_.executor()};
  }

 private:
  PlainLoop plain_;
};

// True when the benchmark thread blocks rather than spins (--iterations).
extern bool g_blocking_wait;

// Blocks until `flag` is set.
inline void block_until(const std::atomic<bool>& flag) {
  while (!flag.load(std::memory_order_acquire)) {
    flag.wait(false, std::memory_order_acquire);
  }
}

// Waits until `flag` is set (the benchmark thread waits for the loop):
// spinning, so that a wake-up costs the benchmark nothing, unless counting.
inline void wait_for(const std::atomic<bool>& flag) {
  if (g_blocking_wait) {
    block_until(flag);
    return;
  }
  while (!flag.load(std::memory_order_acquire)) {
  }
}

// Sets `flag` and wakes a blocked wait_for().
inline void set_flag(std::atomic<bool>& flag) {
  flag.store(true, std::memory_order_release);
  flag.notify_all();
}

inline constexpr int kTimers = 64;
inline constexpr int kFiresPerTimer = 200;

// A steady_timer typed with the executor itself instead of any_io_executor.
template <class Executor>
using TypedTimer =
    asio::basic_waitable_timer<std::chrono::steady_clock,
                               asio::wait_traits<std::chrono::steady_clock>,
                               Executor>;

// Makes kTimers timers on `loop`.
template <class Timer, class Loop>
std::vector<std::unique_ptr<Timer>> make_timers(Loop& loop) {
  std::vector<std::unique_ptr<Timer>> timers;
  for (int i = 0; i < kTimers; ++i) {
    timers.push_back(std::make_unique<Timer>(loop.executor()));
  }
  return timers;
}

// Registers a benchmark (real time, the iteration count loop_bench was given).
using AddBenchmark =
    absl::FunctionRef<void(const char* name, void (*fn)(benchmark::State&))>;

// Registers the Coroutines and TypedCoroutines cases (loop_bench_coroutines.cpp).
void register_coroutine_benchmarks(AddBenchmark add);
// The session cases (loop_bench_sessions.cpp).
void register_session_benchmarks(AddBenchmark add);

// Reports the p50 and p99 of `samples` (microseconds) as the counters p50_us
// and p99_us.
void report_percentiles(benchmark::State& state, std::vector<double> samples);

}  // namespace loopscale_bench

#endif  // LOOPSCALE_BENCHMARKS_LOOP_BENCH_HPP_
