// An executor of your own, made auto-scaling.
//
// `TaskThread` below is not an EventLoop and knows nothing of Asio: it is a
// thread with a task queue, the kind of executor many programs already have.
// To let loopscale scale a set of them it offers the five members of the
// `ScalableExecutor` concept (chooser.hpp):
//
//   busy_time()      monotonic busy total, including the task in progress
//   try_suspend()    give the thread back once the queue is empty
//   resume()         cancel that, or start a fresh thread
//   is_suspended()   true once suspending
//   registrations()  long-lived work pinning it (refuses to suspend while > 0)
//
// and then an `AutoScalingChooser` hands new work to the active ones while a
// `UtilizationMonitor` grows and shrinks the active set. The program puts a
// burst of load on the pool, then lets it idle, and prints what the monitor
// did. It exits 0 if the pool grew under load and shrank after.
//
// Synchronization here is std::mutex, as in most user code; loopscale itself
// does not care how an executor synchronizes.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "loopscale/chooser.hpp"
#include "loopscale/utilization_monitor.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = loopscale::Clock;

class TaskThread {
 public:
  TaskThread() = default;
  TaskThread(const TaskThread&) = delete;
  TaskThread& operator=(const TaskThread&) = delete;
  ~TaskThread() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  // Queues a task. New work cancels a pending suspension or wakes the thread.
  void submit(std::function<void()> task) {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(task));
    suspend_requested_ = false;
    ensure_thread_locked();
    cv_.notify_one();
  }

  // --- ScalableExecutor ------------------------------------------------------
  std::chrono::nanoseconds busy_time() const {
    std::lock_guard lock(mu_);
    auto total = busy_;
    if (busy_since_) total += Clock::now() - *busy_since_;
    return total;
  }
  bool try_suspend() {
    std::lock_guard lock(mu_);
    if (registrations_ > 0) return false;  // the monitor asks again next tick
    suspend_requested_ = true;
    cv_.notify_one();
    return true;
  }
  void resume() {
    std::lock_guard lock(mu_);
    suspend_requested_ = false;
    ensure_thread_locked();
  }
  bool is_suspended() const {
    std::lock_guard lock(mu_);
    return suspend_requested_ || !running_;
  }
  std::size_t registrations() const {
    std::lock_guard lock(mu_);
    return registrations_;
  }
  // ---------------------------------------------------------------------------

  bool has_thread() const {
    std::lock_guard lock(mu_);
    return running_;
  }

 private:
  void ensure_thread_locked() {
    if (running_ || stopping_) return;
    if (thread_.joinable()) thread_.join();  // the previous thread has left
    running_ = true;
    thread_ = std::thread([this] { run(); });
  }

  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] {
        return !queue_.empty() || suspend_requested_ || stopping_;
      });
      if (queue_.empty()) {  // suspended or stopping: give the thread back
        running_ = false;
        return;
      }
      auto task = std::move(queue_.front());
      queue_.pop_front();
      busy_since_ = Clock::now();
      lock.unlock();
      task();
      lock.lock();
      busy_ += Clock::now() - *busy_since_;
      busy_since_.reset();
    }
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::chrono::nanoseconds busy_{0};
  std::optional<Clock::time_point> busy_since_;
  std::size_t registrations_ = 0;
  bool suspend_requested_ = false;
  bool running_ = false;
  bool stopping_ = false;
  std::thread thread_;
};
static_assert(loopscale::ScalableExecutor<TaskThread>);

}  // namespace

int main() {
  constexpr std::size_t kThreads = 4;
  std::vector<std::unique_ptr<TaskThread>> threads;
  std::vector<TaskThread*> executors;
  for (std::size_t i = 0; i < kThreads; ++i) {
    threads.push_back(std::make_unique<TaskThread>());
    executors.push_back(threads.back().get());
  }

  loopscale::ScalingConfig config;
  config.min_loops = 1;
  config.max_loops = kThreads;
  config.window = 50ms;
  config.patience_cycles = 2;
  config.scale_down_cooldown_cycles = 1;
  config.max_ramp_down_step = 2;

  // Start with one thread running; the chooser hands out only that one.
  threads[0]->resume();
  loopscale::AutoScalingChooser<TaskThread> chooser(executors, config);
  loopscale::UtilizationMonitor<TaskThread> monitor(chooser, config);
  monitor.add_listener([](const loopscale::ScaleEvent& e) {
    std::printf("  tick %3llu  %s\n", static_cast<unsigned long long>(e.tick),
                e.decision.reason.c_str());
  });
  monitor.start();

  std::size_t peak = 0;
  std::printf("load: 2 ms tasks, about 3 threads' worth, for 1.5 s\n");
  const auto load_end = Clock::now() + 1500ms;
  while (Clock::now() < load_end) {
    for (int i = 0; i < 3; ++i) {
      chooser.next().submit([] { std::this_thread::sleep_for(2ms); });
    }
    std::this_thread::sleep_for(2ms);  // paces the producer
    peak = std::max(peak, chooser.active_count());
  }

  std::printf("idle until the pool is back to min_loops (at most 10 s)\n");
  const auto idle_end = Clock::now() + 10s;
  while (chooser.active_count() > config.min_loops && Clock::now() < idle_end) {
    std::this_thread::sleep_for(10ms);  // polls the outcome
  }
  monitor.stop();

  std::size_t with_thread = 0;
  for (const auto& t : threads) with_thread += t->has_thread() ? 1 : 0;
  const loopscale::MonitorStats s = monitor.stats();
  std::printf("peak active %zu of %zu, now %zu active (%zu threads running); "
              "%llu scale-ups, %llu scale-downs\n",
              peak, kThreads, chooser.active_count(), with_thread,
              static_cast<unsigned long long>(s.scale_ups),
              static_cast<unsigned long long>(s.scale_downs));
  const bool ok = peak > 1 && chooser.active_count() == config.min_loops;
  std::printf("%s\n", ok ? "OK: grew under load, shrank when idle"
                         : "FAILED: the pool did not scale both ways");
  return ok ? 0 : 1;
}
