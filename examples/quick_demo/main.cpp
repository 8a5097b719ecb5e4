// quick_demo: four event loops, work posted to each, then each loop's busy
// time and state, a suspension and a resumption. The scaling monitor and the
// server demo build on this.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <asio/post.hpp>

#include "loopscale/event_loop.hpp"
#include "loopscale/io.hpp"  // loopscale::steady_timer

namespace {

using namespace std::chrono_literals;

void print_loops(const char* title,
                 const std::vector<std::unique_ptr<loopscale::EventLoop>>& loops) {
  std::printf("%s\n", title);
  std::printf("  %-5s %-11s %12s %10s %8s\n", "loop", "state", "busy_ms",
              "handlers", "wakeups");
  for (const auto& loop : loops) {
    const auto a = loop->activity();
    std::printf("  %-5zu %-11s %12.1f %10llu %8llu\n", loop->index(),
                std::string(to_string(loop->state())).c_str(),
                std::chrono::duration<double, std::milli>(a.busy).count(),
                static_cast<unsigned long long>(a.handlers),
                static_cast<unsigned long long>(a.wakeups));
  }
}

// Blocks until `done()` is true or `deadline` passes; returns done().
template <class Pred>
bool wait_for(Pred done, std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!done() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(1ms);
  }
  return done();
}

}  // namespace

int main() {
  constexpr int kLoops = 4;
  std::vector<std::unique_ptr<loopscale::EventLoop>> loops;
  for (int i = 0; i < kLoops; ++i) {
    loops.push_back(std::make_unique<loopscale::EventLoop>(i));
    loops.back()->start();
  }

  // Loop i gets i * 20 handlers that each keep it busy for 1 ms.
  std::atomic<int> remaining{0};
  for (int i = 0; i < kLoops; ++i) {
    for (int n = 0; n < i * 20; ++n) {
      remaining.fetch_add(1);
      asio::post(loops[i]->get_executor(), [&remaining] {
        const auto until = std::chrono::steady_clock::now() + 1ms;
        while (std::chrono::steady_clock::now() < until) {
        }
        remaining.fetch_sub(1);
      });
    }
  }
  if (!wait_for([&] { return remaining.load() == 0; }, 10s)) {
    std::fprintf(stderr, "quick_demo: work did not finish within 10 s\n");
    return 1;
  }
  print_loops("after posting i*20 one-millisecond handlers to loop i:", loops);

  // Loops 2 and 3 give their threads back; loop 3 has a timer pending, so it
  // stays suspending until the timer fires.
  loopscale::steady_timer timer(loops[3]->get_executor(), 200ms);
  timer.async_wait([](std::error_code) {});
  (void)loops[2]->try_suspend();
  (void)loops[3]->try_suspend();
  print_loops("right after try_suspend() on loops 2 and 3 (3 has a 200 ms timer):",
              loops);
  wait_for([&] { return loops[3]->state() == loopscale::LoopState::kSuspended; },
           5s);
  print_loops("after the timer fired:", loops);

  // A post resumes a suspended loop on a fresh thread.
  std::atomic<bool> ran{false};
  asio::post(loops[2]->get_executor(), [&ran] { ran = true; });
  wait_for([&] { return ran.load(); }, 5s);
  print_loops("after posting one handler to loop 2:", loops);

  for (auto& loop : loops) loop->stop();
  print_loops("after stop():", loops);
  return ran.load() ? 0 : 1;
}
