// loop_bench's coroutine cases: 64 coroutines, each awaiting its timer
// re-armed to expire at once, again and again.
//   Coroutines       `asio::awaitable<void>` and `asio::steady_timer`, as
//                    usually spelled: on a loop, every completion goes through
//                    an any_io_executor holding a LoopExecutor;
//   Coroutines/forwarding  the same on a plain io_context whose coroutines and
//                    timers hold a do-nothing forwarding executor: what Asio
//                    charges any executor that is not its own;
//   TypedCoroutines  coroutine and timer typed on the executor
//                    (loopscale::awaitable and loopscale::steady_timer on the
//                    loop, the io_context's executor for plain).

#include <atomic>
#include <memory>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include "loop_bench.hpp"

namespace loopscale_bench {
namespace {

// One coroutine: awaits `timer` `fires` times, each time re-armed to expire at
// once. `Executor` is the coroutine's executor type: asio::any_io_executor
// (what `asio::awaitable<void>` means) or the loop's own.
template <class Executor, class Timer>
asio::awaitable<void, Executor> await_timer(Timer& timer, int fires,
                                            std::atomic<int>& running,
                                            std::atomic<bool>& done) {
  constexpr asio::use_awaitable_t<Executor> use_awaitable;
  for (int i = 0; i < fires; ++i) {
    timer.expires_at(asio::steady_timer::clock_type::now());
    co_await timer.async_wait(use_awaitable);
  }
  if (running.fetch_sub(1) == 1) set_flag(done);
}

template <class Loop, class Executor = asio::any_io_executor,
          class Timer = asio::steady_timer>
void BM_Coroutines(benchmark::State& state) {
  Loop loop;
  const std::vector<std::unique_ptr<Timer>> timers = make_timers<Timer>(loop);
  for (auto _ : state) {
    std::atomic<int> running{kTimers};
    std::atomic<bool> done{false};
    for (auto& t : timers) {
      asio::co_spawn(loop.executor(),
                     await_timer<Executor>(*t, kFiresPerTimer, running, done),
                     asio::detached);
    }
    wait_for(done);
  }
  state.SetItemsProcessed(state.iterations() * kTimers * kFiresPerTimer);
}

}  // namespace

void register_coroutine_benchmarks(AddBenchmark add) {
  add("Coroutines/plain", BM_Coroutines<PlainLoop>);
  add("Coroutines/loopscale", BM_Coroutines<ScaledLoop>);
  add("Coroutines/forwarding", BM_Coroutines<ForwardingLoop>);
  add("TypedCoroutines/plain",
      BM_Coroutines<PlainLoop, asio::io_context::executor_type,
                    TypedTimer<asio::io_context::executor_type>>);
  add("TypedCoroutines/loopscale",
      BM_Coroutines<ScaledLoop, loopscale::LoopExecutor,
                    TypedTimer<loopscale::LoopExecutor>>);
}

}  // namespace loopscale_bench
