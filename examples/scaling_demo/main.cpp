// scaling_demo: a LoopPool of four loops under a load that comes and goes.
// Every window it prints the offered load, each loop's state and utilization,
// and every scaling decision with its reason. Exits 0 if the pool grew under
// load and shrank back after it.
//
//   scaling_demo [--config FILE]     (default: built-in fast settings)

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include <asio/post.hpp>

#include "loopscale/config.hpp"
#include "loopscale/loop_pool.hpp"

namespace {

using namespace std::chrono_literals;
using loopscale::Clock;

// Busy time per task: tasks sleep, so the load is the same on a loaded
// machine and on an idle one.
constexpr auto kTaskCost = 2ms;

// The load, in loops' worth of work, at time `t` since the start.
double offered_load(std::chrono::duration<double> t) {
  const double s = t.count();
  if (s < 1.5) return 0.1;
  if (s < 5.0) return 2.6;  // peak: needs three loops at 0.75 or more
  return 0.1;
}
constexpr auto kRunTime = 10s;

std::string bar(double u) {
  const int filled = static_cast<int>(u * 10 + 0.5);
  return std::string(static_cast<std::size_t>(filled), '#') +
         std::string(static_cast<std::size_t>(10 - filled), '.');
}

}  // namespace

int main(int argc, char** argv) {
  loopscale::PoolOptions options;
  options.name = "scaling-demo";
  options.scaling.max_loops = 4;
  options.scaling.min_loops = 1;
  options.scaling.window = 250ms;
  options.scaling.patience_cycles = 2;
  options.scaling.scale_down_cooldown_cycles = 1;
  if (argc == 3 && std::strcmp(argv[1], "--config") == 0) {
    auto loaded = loopscale::load_pool_options(argv[2]);
    if (!loaded.ok()) {
      std::fprintf(stderr, "scaling_demo: %s\n",
                   std::string(loaded.status().message()).c_str());
      return 2;
    }
    options = *std::move(loaded);
  } else if (argc != 1) {
    std::fprintf(stderr, "usage: %s [--config FILE]\n", argv[0]);
    return 2;
  }

  auto created = loopscale::LoopPool::create(options);
  if (!created.ok()) {
    std::fprintf(stderr, "scaling_demo: %s\n",
                 std::string(created.status().message()).c_str());
    return 2;
  }
  loopscale::LoopPool& pool = **created;
  pool.monitor().add_listener([start = Clock::now()](const loopscale::ScaleEvent& e) {
    std::printf("        -> %5.2fs %s\n",
                std::chrono::duration<double>(e.at - start).count(),
                e.decision.reason.c_str());
  });
  pool.start();

  // The producer posts tasks through next() at the rate the load asks for.
  const auto start = Clock::now();
  std::atomic<bool> done{false};
  std::atomic<double> load_now{0.0};
  std::thread producer([&] {
    double owed = 0.0;  // tasks due but not yet posted
    auto last = Clock::now();
    while (!done.load()) {
      const auto now = Clock::now();
      const double load = offered_load(now - start);
      load_now = load;
      owed += load * std::chrono::duration<double>(now - last) /
              std::chrono::duration<double>(kTaskCost);
      last = now;
      for (; owed >= 1.0; owed -= 1.0) {
        asio::post(pool.next(), [] { std::this_thread::sleep_for(kTaskCost); });
      }
      std::this_thread::sleep_for(1ms);  // paces the producer
    }
  });

  std::printf("%d loops, window %lld ms, thresholds %.2f/%.2f, patience %zu\n",
              static_cast<int>(pool.size()),
              static_cast<long long>(options.scaling.window / 1ms),
              options.scaling.scale_down_threshold,
              options.scaling.scale_up_threshold,
              options.scaling.patience_cycles);
  std::printf("  time  load  active  per loop: state utilization\n");
  std::size_t peak = 0, after_peak_min = pool.size();
  while (Clock::now() - start < kRunTime) {
    std::this_thread::sleep_for(options.scaling.window);  // one line per window
    const loopscale::PoolStats s = pool.stats();
    const double t = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("%5.1fs %5.1f %7zu ", t, load_now.load(), s.active_count);
    for (const auto& l : s.loops) {
      std::printf(" %-10.10s %s", std::string(to_string(l.state)).c_str(),
                  bar(l.utilization).c_str());
    }
    std::printf("\n");
    if (t < 5.0) peak = std::max(peak, s.active_count);
    if (t > 8.0) after_peak_min = std::min(after_peak_min, s.active_count);
  }
  done = true;
  producer.join();
  const loopscale::PoolStats s = pool.stats();
  pool.stop();

  std::printf("\npeak %zu active loops under load, %zu after it; %llu scale-ups, "
              "%llu scale-downs\n",
              peak, after_peak_min, static_cast<unsigned long long>(s.scale_ups),
              static_cast<unsigned long long>(s.scale_downs));
  const bool ok = peak >= 2 && after_peak_min < peak;
  std::printf("%s\n", ok ? "OK: the pool grew under load and shrank after"
                         : "FAILED: the pool did not scale both ways");
  return ok ? 0 : 1;
}
