// Plain asio::io_context (one thread, what users would write instead) against
// EventLoop + LoopExecutor, on the same workloads in the same run:
//   RepostChain   a handler that re-posts itself from the loop's thread
//   CrossThread   trivial handlers posted from another thread
//   Timers        64 timers re-armed to expire at once, again and again
//   Coroutines    the same timers, each awaited in a loop by a coroutine
//                 (loop_bench_coroutines.cpp)
// plus ResumeLatency: post to a suspended loop until the handler starts,
// with the posting thread spinning until then (ResumeLatency/loopscale: a
// busy poster, whose CPU the fresh thread may have to wait for) or blocked
// (ResumeLatency/poster-blocks: thread creation and start-up alone).
//
// More variants take the gaps apart, each measured against CASE/plain:
//   CrossThread/plain-again  plain once more: the noise floor of the run;
//   CrossThread/raw,         an EventLoop fed through its raw io_context
//   RepostChain/raw
//                            executor: no wrapper, no per-handler accounting,
//                            only the loop's run_one() + poll() serve loop;
//   Timers/forwarding,       a plain io_context whose timers (and coroutines)
//   Coroutines/forwarding    hold a do-nothing executor around io_context's:
//                            what Asio charges any executor not its own.
//
// scripts/bench runs this with interleaved repetitions and prints the
// CASE/x : CASE/plain time ratio per case and variant.
//
// `--iterations=N` (ours, not Google Benchmark's) runs every benchmark for
// exactly N iterations and makes the benchmark thread block instead of spin
// while it waits for the loop: scripts/bench_instructions runs cases under
// callgrind that way and takes the difference between N = 1 and N = 3, which
// a spinning thread's timing-dependent instruction count would blur.

#include <benchmark/benchmark.h>

#include <unistd.h>  // gettid

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <asio/execution.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/query.hpp>
#include <asio/require.hpp>
#include <asio/steady_timer.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "loopscale/event_loop.hpp"
#include "loop_bench.hpp"

namespace loopscale_bench {
bool g_blocking_wait = false;
}  // namespace loopscale_bench

namespace {

using namespace std::chrono_literals;
using namespace loopscale_bench;

// An EventLoop fed through its raw io_context executor (bypassing loopscale).
class RawLoop {
 public:
  RawLoop() { loop_.start(); }
  asio::io_context::executor_type executor() {
    return loop_.get_executor().get_inner_executor();
  }

 private:
  loopscale::EventLoop loop_{0};
};

// Returns the kernel's id of the thread that runs `ex`'s handlers.
template <class Executor>
pid_t loop_thread_id(const Executor& ex) {
  std::atomic<bool> ran{false};
  pid_t tid = 0;
  asio::post(ex, [&] {
    tid = gettid();
    set_flag(ran);
  });
  wait_for(ran);
  return tid;
}

// Returns how many times thread `tid` of this process has blocked so far (its
// voluntary context switches), or -1 if /proc does not say.
long times_blocked(pid_t tid) {
  std::ifstream status("/proc/self/task/" + std::to_string(tid) + "/status");
  constexpr std::string_view kKey = "voluntary_ctxt_switches:";
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(kKey, 0) == 0) return std::atol(line.c_str() + kKey.size());
  }
  return -1;
}

template <class Executor>
struct Chain {
  Executor ex;
  int left;
  std::atomic<bool>* done;
  void operator()() {
    if (--left == 0) {
      set_flag(*done);
      return;
    }
    asio::post(ex, std::move(*this));
  }
};

constexpr int kChainLength = 10'000;

template <class Loop>
void BM_RepostChain(benchmark::State& state) {
  Loop loop;
  for (auto _ : state) {
    std::atomic<bool> done{false};
    asio::post(loop.executor(),
               Chain<decltype(loop.executor())>{loop.executor(), kChainLength, &done});
    wait_for(done);
  }
  state.SetItemsProcessed(state.iterations() * kChainLength);
}

constexpr int kCrossThreadBatch = 10'000;

template <class Loop>
void BM_CrossThread(benchmark::State& state) {
  Loop loop;
  const pid_t tid = loop_thread_id(loop.executor());
  const long blocked_before = times_blocked(tid);
  for (auto _ : state) {
    std::atomic<int> left{kCrossThreadBatch};
    std::atomic<bool> done{false};
    // Counting instructions, the loop is held in a first handler until the
    // batch is queued: how often it would run dry and block depends on how
    // the two threads interleave, which is not what is being counted.
    std::atomic<bool> holding{false};
    std::atomic<bool> queued{false};
    if (g_blocking_wait) {
      asio::post(loop.executor(), [&] {
        set_flag(holding);
        wait_for(queued);
      });
      wait_for(holding);
    }
    for (int i = 0; i < kCrossThreadBatch; ++i) {
      asio::post(loop.executor(), [&] {
        if (left.fetch_sub(1, std::memory_order_relaxed) == 1) {
          set_flag(done);
        }
      });
    }
    set_flag(queued);
    wait_for(done);
  }
  state.SetItemsProcessed(state.iterations() * kCrossThreadBatch);
  // How often the loop thread ran dry and blocked (the same measure for every
  // variant): each time costs a futex wait and a wake-up, and it depends on
  // how fast the loop drains the queue against how fast it is filled.
  const long blocked = times_blocked(tid) - blocked_before;
  if (blocked_before >= 0 && blocked > 0) {
    state.counters["handlers_per_block"] =
        static_cast<double>(state.iterations() * kCrossThreadBatch) /
        static_cast<double>(blocked);
  }
}

template <class Loop, class Timer = asio::steady_timer>
void BM_Timers(benchmark::State& state) {
  Loop loop;
  const std::vector<std::unique_ptr<Timer>> timers = make_timers<Timer>(loop);
  for (auto _ : state) {
    std::atomic<int> running{kTimers};
    std::atomic<bool> done{false};
    struct Rearm {
      Timer* timer;
      int left;
      std::atomic<int>* running;
      std::atomic<bool>* done;
      void operator()(std::error_code) {
        if (--left == 0) {
          if (running->fetch_sub(1) == 1) set_flag(*done);
          return;
        }
        timer->expires_at(asio::steady_timer::clock_type::now());
        timer->async_wait(std::move(*this));
      }
    };
    asio::post(loop.executor(), [&] {
      for (auto& t : timers) {
        t->expires_at(asio::steady_timer::clock_type::now());
        t->async_wait(Rearm{t.get(), kFiresPerTimer, &running, &done});
      }
    });
    wait_for(done);
  }
  state.SetItemsProcessed(state.iterations() * kTimers * kFiresPerTimer);
}

// What the posting thread does until the handler has started.
enum class Poster { kSpins, kBlocks };

// Posts one handler and returns how long it took to start, in microseconds.
template <class Executor>
double time_to_start(const Executor& ex, Poster poster = Poster::kSpins) {
  std::atomic<bool> ran{false};
  std::chrono::steady_clock::time_point started;
  const auto posted = std::chrono::steady_clock::now();
  asio::post(ex, [&] {
    started = std::chrono::steady_clock::now();
    set_flag(ran);
  });
  if (poster == Poster::kBlocks) {
    block_until(ran);
  } else {
    wait_for(ran);
  }
  return std::chrono::duration<double, std::micro>(started - posted).count();
}

// Post to a suspended loop until its handler starts on the fresh thread.
template <Poster kPoster>
void BM_ResumeLatency(benchmark::State& state) {
  ScaledLoop scaled;
  loopscale::EventLoop& loop = scaled.loop();
  std::vector<double> samples;
  for (auto _ : state) {
    state.PauseTiming();
    (void)loop.try_suspend();
    while (loop.state() != loopscale::LoopState::kSuspended) {
      std::this_thread::yield();
    }
    state.ResumeTiming();
    samples.push_back(time_to_start(loop.get_executor(), kPoster));
  }
  report_percentiles(state, std::move(samples));
}

// The same wake-up on a loop that is merely idle (blocked in epoll), for
// scale: the part of the resume latency that is thread creation.
template <class Loop>
void BM_WakeLatency(benchmark::State& state) {
  Loop loop;
  std::vector<double> samples;
  for (auto _ : state) {
    state.PauseTiming();
    std::this_thread::sleep_for(200us);  // let the loop block again
    state.ResumeTiming();
    samples.push_back(time_to_start(loop.executor()));
  }
  report_percentiles(state, std::move(samples));
}

// Registers every benchmark; `iterations` > 0 fixes their iteration count.
void register_benchmarks(benchmark::IterationCount iterations) {
  using benchmark::RegisterBenchmark;
  const auto add = [&](const char* name, void (*fn)(benchmark::State&),
                       benchmark::IterationCount fixed = 0) {
    benchmark::internal::Benchmark* b = RegisterBenchmark(name, fn);
    b->UseRealTime();
    if (iterations > 0) {
      b->Iterations(iterations);
    } else if (fixed > 0) {
      b->Iterations(fixed);
    }
  };
  add("RepostChain/plain", BM_RepostChain<PlainLoop>);
  add("RepostChain/loopscale", BM_RepostChain<ScaledLoop>);
  add("RepostChain/raw", BM_RepostChain<RawLoop>);
  add("CrossThread/plain", BM_CrossThread<PlainLoop>);
  add("CrossThread/loopscale", BM_CrossThread<ScaledLoop>);
  add("CrossThread/plain-again", BM_CrossThread<PlainLoop>);
  add("CrossThread/raw", BM_CrossThread<RawLoop>);
  add("Timers/plain", BM_Timers<PlainLoop>);
  add("Timers/loopscale", BM_Timers<ScaledLoop>);
  add("Timers/forwarding", BM_Timers<ForwardingLoop>);
  // The same with timers typed on the executor (no any_io_executor): Asio
  // short-cuts its own executor inside any_io_executor, not ours.
  add("TypedTimers/plain",
      BM_Timers<PlainLoop, TypedTimer<asio::io_context::executor_type>>);
  add("TypedTimers/loopscale",
      BM_Timers<ScaledLoop, TypedTimer<loopscale::LoopExecutor>>);
  // In loop_bench_coroutines.cpp: a translation unit of its own, so that
  // adding them did not change how GCC compiles the cases above.
  register_coroutine_benchmarks(
      [&](const char* name, void (*fn)(benchmark::State&)) { add(name, fn); });
  add("WakeLatency/plain", BM_WakeLatency<PlainLoop>, 300);
  add("WakeLatency/loopscale", BM_WakeLatency<ScaledLoop>, 300);
  add("ResumeLatency/loopscale", BM_ResumeLatency<Poster::kSpins>, 300);
  add("ResumeLatency/poster-blocks", BM_ResumeLatency<Poster::kBlocks>, 300);
  register_session_benchmarks(
      [&](const char* name, void (*fn)(benchmark::State&)) { add(name, fn); });
}

}  // namespace

// See loop_bench.hpp.
void loopscale_bench::report_percentiles(benchmark::State& state,
                                         std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  auto pct = [&](double p) {
    return samples[static_cast<std::size_t>(
        p * static_cast<double>(samples.size() - 1))];
  };
  state.counters["p50_us"] = pct(0.50);
  state.counters["p99_us"] = pct(0.99);
}


int main(int argc, char** argv) {
  // Our one flag, taken out before Google Benchmark sees the rest.
  benchmark::IterationCount iterations = 0;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (!absl::ConsumePrefix(&arg, "--iterations=")) {
      argv[kept++] = argv[i];
      continue;
    }
    if (!absl::SimpleAtoi(arg, &iterations) || iterations < 1) {
      std::fprintf(stderr,
                   "loop_bench: --iterations wants a positive integer, got '%s'\n",
                   std::string(arg).c_str());
      return 2;
    }
    g_blocking_wait = true;
  }
  argc = kept;
  register_benchmarks(iterations);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
