#include "loopscale/loop_pool.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "loopscale/cpu_limit.hpp"

namespace loopscale {
namespace {

std::vector<EventLoop*> pointers(
    const std::vector<std::unique_ptr<EventLoop>>& loops) {
  std::vector<EventLoop*> out;
  out.reserve(loops.size());
  for (const auto& loop : loops) out.push_back(loop.get());
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LoopPool>> LoopPool::create(
    PoolOptions options) {
  if (absl::Status s = validate(options); !s.ok()) return s;
  std::size_t n = options.scaling.max_loops;
  std::string size_limited_by;
  if (n == 0) {
    const CpuLimit cpus = detect_cpu_limit();
    n = cpus.cpus;
    size_limited_by = cpus.limited_by;
    if (!size_limited_by.empty()) {
      std::fprintf(stderr,
                   "loopscale: pool \"%s\": one loop per usable CPU, %zu of "
                   "%zu online, limited by %s\n",
                   options.name.c_str(), n, cpus.online, size_limited_by.c_str());
    }
  }
  std::vector<std::unique_ptr<EventLoop>> loops;
  loops.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    try {
      loops.push_back(std::make_unique<EventLoop>(i));
    } catch (const std::system_error& e) {  // out of descriptors, mostly
      return absl::ResourceExhaustedError(absl::StrFormat(
          "pool \"%s\": loop %zu of %zu: cannot make its reactor (three "
          "descriptors a loop): %s",
          options.name, i, n, e.what()));
    }
  }
  std::unique_ptr<shm::Publisher> publisher;
  absl::Status metrics_status;
  if (options.metrics.enabled) {
    auto attached = shm::Publisher::attach(options.metrics, options.name, n);
    if (attached.ok()) {
      publisher = *std::move(attached);
    } else {
      metrics_status = attached.status();
      std::fprintf(stderr,
                   "loopscale: pool \"%s\" runs without shared-memory "
                   "metrics: %s\n",
                   options.name.c_str(),
                   std::string(metrics_status.message()).c_str());
    }
  }
  return std::unique_ptr<LoopPool>(
      new LoopPool(std::move(options), std::move(loops), std::move(publisher),
                   std::move(metrics_status), std::move(size_limited_by)));
}

LoopPool::LoopPool(PoolOptions options,
                   std::vector<std::unique_ptr<EventLoop>> loops,
                   std::unique_ptr<shm::Publisher> publisher,
                   absl::Status metrics_status, std::string size_limited_by)
    : options_(std::move(options)),
      loops_(std::move(loops)),
      chooser_(pointers(loops_), options_.scaling),
      monitor_(chooser_, options_.scaling),
      publisher_(std::move(publisher)),
      metrics_status_(std::move(metrics_status)),
      size_limited_by_(std::move(size_limited_by)) {
  if (publisher_ != nullptr) {
    monitor_.add_sink([this](const TickReport& r) { publish(r.stats); });
    publish(monitor_.stats());
  }
}

LoopPool::~LoopPool() { stop(); }

void LoopPool::publish(const MonitorStats& monitor) {
  if (publisher_ != nullptr) publisher_->publish(stats(monitor));
}

EventLoop* LoopPool::rebalance_target(const EventLoop& from) const noexcept {
  EventLoop* target = chooser_.least_loaded(&from);
  if (target == nullptr) return nullptr;
  if (!from.is_suspended() &&
      target->registrations() + 2 > from.registrations()) {
    return nullptr;  // already even: a move would only swap the imbalance
  }
  return target;
}

void LoopPool::start() {
  detail::MutexLock lock(lifecycle_mu_);
  if (stopped_) return;
  for (const auto& loop : loops_) loop->start();
  monitor_.start();
}

void LoopPool::stop() {
  detail::MutexLock lock(lifecycle_mu_);
  if (stopped_) return;
  stopped_ = true;
  monitor_.stop();
  for (const auto& loop : loops_) loop->stop();
  if (publisher_ != nullptr) {
    publish(monitor_.stats());  // every loop reads kStopped: the last word
    publisher_->release();
  }
}

void LoopPool::close_connections() {
  for (const auto& loop : loops_) loop->request_close();
}

bool LoopPool::close_connections(std::chrono::steady_clock::time_point deadline) {
  close_connections();
  // Polled: a connection's end is a relaxed counter on its loop, with
  // nothing to wait on. A few milliseconds are nothing to a stop.
  constexpr auto kPoll = std::chrono::milliseconds(2);
  for (;;) {
    if (connections() == 0) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(kPoll, deadline - now));
  }
}

std::size_t LoopPool::connections() const noexcept {
  std::size_t n = 0;
  for (const auto& loop : loops_) n += loop->registrations();
  return n;
}

PoolStats LoopPool::stats() const { return stats(monitor_.stats()); }

PoolStats LoopPool::stats(const MonitorStats& m) const {
  PoolStats s;
  s.name = options_.name;
  s.size = loops_.size();
  s.active_count = chooser_.active_count();
  const ActiveBounds bounds = active_bounds(m.config, s.size);
  s.max_loops = bounds.max;
  s.min_loops = bounds.min;
  s.ticks = m.ticks;
  s.scale_ups = m.scale_ups;
  s.scale_downs = m.scale_downs;
  s.last_decision = m.last_decision;
  s.moves_requested = m.moves_requested;
  s.lag_histogram = m.lag_histogram;
  s.overload_level = m.overload_level;
  s.overload_refused = monitor_.admission().refused();
  s.overload_episodes = m.overload_episodes;
  s.scaling = m.config;
  s.size_limited_by = size_limited_by_;
  s.job_types = job_type_names();
  s.loops.reserve(loops_.size());
  for (const auto& loop : loops_) {
    const Clock::time_point now = Clock::now();
    const ActivityRecorder::Snapshot a = loop->activity(now);
    const ActivityRecorder::JobsSnapshot j = loop->jobs(now);
    LoopStats l;
    l.index = loop->index();
    l.state = loop->state();
    l.utilization = m.utilizations[l.index];
    // The busy total of the job split, so that the split adds up to it.
    l.busy = j.busy;
    l.jobs.reserve(s.job_types.size());
    for (std::size_t id = 0; id < s.job_types.size(); ++id) {
      l.jobs.push_back({j.jobs[id].busy, j.jobs[id].count});
    }
    l.handlers = a.handlers;
    l.wakeups = a.wakeups;
    l.registrations = loop->registrations();
    l.registrations_total = loop->registrations_total();
    l.active_time = m.active_time[l.index];
    l.suspensions = loop->suspensions();
    l.resumes = loop->resumes();
    l.cpu_time = loop->cpu_time();
    l.scheduling_lag = m.lags[l.index];
    l.moves_in = loop->moves_in();
    l.moves_out = loop->moves_out();
    l.moves_failed = loop->moves_failed();
    s.loops.push_back(l);
  }
  return s;
}

}  // namespace loopscale
