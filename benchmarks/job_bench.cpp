// Job types (loopscale/job_scope.hpp): what marking costs.
//   JobScope/enter-leave   a JobScope opened and closed on a loop's thread,
//                          in a tight loop: two clock reads and two seqlock
//                          writes per iteration
//   RepostChain/unmarked   a chain of trivial handlers on a loop, none marked
//   RepostChain/marked     the same chain, every handler bound to a job type
//                          (bind_job): the difference per handler is the
//                          price of marking a whole handler
//   JobsSnapshot/read      a reader's consistent split of a loop's busy time
// A separate binary: loop_bench's cases (the busy accounting against plain
// Asio) are compiled exactly as before.

#include <benchmark/benchmark.h>

#include <asio/post.hpp>
#include <atomic>
#include <future>

#include "loopscale/event_loop.hpp"
#include "loopscale/job_scope.hpp"
#include "loopscale/job_type.hpp"

namespace {

const loopscale::JobType kJob = loopscale::register_job_type("bench").value();

constexpr int kChainLength = 10'000;

template <bool kMarked>
struct Chain {
  loopscale::LoopExecutor ex;
  int left;
  std::atomic<bool>* done;
  void operator()() {
    if (--left == 0) {
      done->store(true, std::memory_order_release);
      return;
    }
    if constexpr (kMarked) {
      asio::post(ex, loopscale::bind_job(kJob, std::move(*this)));
    } else {
      asio::post(ex, std::move(*this));
    }
  }
};

template <bool kMarked>
void BM_RepostChain(benchmark::State& state) {
  loopscale::EventLoop loop(0);
  loop.start();
  for (auto _ : state) {
    std::atomic<bool> done{false};
    asio::post(loop.get_executor(), Chain<kMarked>{loop.get_executor(), kChainLength, &done});
    while (!done.load(std::memory_order_acquire)) {
    }
  }
  state.SetItemsProcessed(state.iterations() * kChainLength);
  loop.stop();
}

void BM_EnterLeave(benchmark::State& state) {
  loopscale::EventLoop loop(0);
  loop.start();
  constexpr int kScopes = 100'000;
  for (auto _ : state) {
    std::promise<void> done;
    asio::post(loop.get_executor(), [&] {
      for (int i = 0; i < kScopes; ++i) {
        loopscale::JobScope scope(kJob);
        benchmark::ClobberMemory();
      }
      done.set_value();
    });
    done.get_future().wait();
  }
  state.SetItemsProcessed(state.iterations() * kScopes);
  loop.stop();
}

void BM_JobsSnapshot(benchmark::State& state) {
  loopscale::EventLoop loop(0);
  for (auto _ : state) benchmark::DoNotOptimize(loop.jobs());
}

BENCHMARK(BM_EnterLeave)->Name("JobScope/enter-leave")->UseRealTime();
BENCHMARK(BM_RepostChain<false>)->Name("RepostChain/unmarked")->UseRealTime();
BENCHMARK(BM_RepostChain<true>)->Name("RepostChain/marked")->UseRealTime();
BENCHMARK(BM_JobsSnapshot)->Name("JobsSnapshot/read");

}  // namespace

BENCHMARK_MAIN();
