// Costs of the shared-memory metrics, per monitor tick:
//   Publish/64         shm::Publisher::publish() of a 64-loop pool's figures
//                      (the write into the file; per loop = time / 64)
//   StatsPublish/64    LoopPool::stats() + publish() on a started 64-loop
//                      pool: what a tick really pays, including each loop's
//                      CPU-time system call
//   Snapshot/64        shm::Reader::snapshot() of a file holding one 64-loop
//                      pool (map check, seqlock copy, decode, liveness check
//                      of its process, service aggregation)
// Targets (issue 4): < 200 ns per loop per tick; snapshot < 50 us.

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "loopscale/loop_pool.hpp"
#include "loopscale/shm/publisher.hpp"
#include "loopscale/shm/reader.hpp"

namespace {

constexpr std::size_t kLoops = 64;

struct TempPath {
  std::string path = "/dev/shm/loopscale-bench-" + std::to_string(getpid());
  ~TempPath() { std::remove(path.c_str()); }
  loopscale::MetricsConfig config() const {
    loopscale::MetricsConfig c;
    c.enabled = true;
    c.shm_path = path;
    c.service = "bench";
    return c;
  }
};

loopscale::PoolStats figures() {
  loopscale::PoolStats s;
  s.name = "bench";
  s.size = kLoops;
  s.last_decision.reason = "scale down: loops 5, 6 idle for 3 windows";
  for (std::size_t i = 0; i < kLoops; ++i) {
    loopscale::LoopStats l;
    l.index = i;
    l.utilization = 0.5;
    l.busy = std::chrono::nanoseconds(i * 1000);
    l.handlers = i;
    s.loops.push_back(l);
  }
  return s;
}

void BM_Publish(benchmark::State& state) {
  TempPath file;
  auto pub = loopscale::shm::Publisher::attach(file.config(), "bench", kLoops);
  if (!pub.ok()) {
    state.SkipWithError(std::string(pub.status().message()).c_str());
    return;
  }
  const loopscale::PoolStats stats = figures();
  for (auto _ : state) (*pub)->publish(stats);
}
BENCHMARK(BM_Publish)->Name("Publish64/loopscale")->UseRealTime();

void BM_StatsPublish(benchmark::State& state) {
  TempPath file;
  loopscale::PoolOptions o;
  o.name = "bench";
  o.scaling.max_loops = kLoops;
  o.scaling.min_loops = kLoops;  // every loop keeps its thread
  o.scaling.window = std::chrono::hours(1);  // no tick during the run
  o.metrics = file.config();
  auto pool = loopscale::LoopPool::create(o);
  if (!pool.ok() || (*pool)->publisher() == nullptr) {
    state.SkipWithError("cannot create the pool");
    return;
  }
  (*pool)->start();
  const auto* pub = (*pool)->publisher();
  for (auto _ : state) {
    const_cast<loopscale::shm::Publisher*>(pub)->publish((*pool)->stats());
  }
  (*pool)->stop();
}
BENCHMARK(BM_StatsPublish)->Name("StatsPublish64/loopscale")->UseRealTime();

void BM_Snapshot(benchmark::State& state) {
  TempPath file;
  auto pub = loopscale::shm::Publisher::attach(file.config(), "bench", kLoops);
  loopscale::shm::ReadOptions options;
  if (state.range(0) == 0) {
    options.liveness = [](std::uint64_t, std::optional<std::uint64_t>) { return std::string(); };
  }
  auto reader = loopscale::shm::Reader::open(file.path, options);
  if (!pub.ok() || !reader.ok()) {
    state.SkipWithError("cannot attach");
    return;
  }
  (*pub)->publish(figures());
  for (auto _ : state) {
    auto snap = reader->snapshot();
    benchmark::DoNotOptimize(snap);
  }
}
BENCHMARK(BM_Snapshot)->Name("Snapshot64/loopscale")->Arg(1)->UseRealTime();
// The same without the liveness check (kill() and /proc), to show its share.
BENCHMARK(BM_Snapshot)->Name("Snapshot64NoLiveness/loopscale")->Arg(0)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
