#include "loopscale/loop_pool.hpp"

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"

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
  if (options.metrics.enabled) {
    return absl::UnimplementedError(
        "metrics.enabled = true: shared-memory metrics are not implemented "
        "yet; set it to false");
  }
  std::size_t n = options.scaling.max_loops;
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<EventLoop>> loops;
  loops.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    loops.push_back(std::make_unique<EventLoop>(i));
  }
  return std::unique_ptr<LoopPool>(
      new LoopPool(std::move(options), std::move(loops)));
}

LoopPool::LoopPool(PoolOptions options,
                   std::vector<std::unique_ptr<EventLoop>> loops)
    : options_(std::move(options)),
      loops_(std::move(loops)),
      chooser_(pointers(loops_), options_.scaling),
      monitor_(chooser_, options_.scaling) {}

LoopPool::~LoopPool() { stop(); }

void LoopPool::start() {
  detail::MutexLock lock(lifecycle_mu_);
  if (stopped_) return;
  for (const auto& loop : loops_) loop->start();
  monitor_.start();
}

void LoopPool::stop() {
  detail::MutexLock lock(lifecycle_mu_);
  stopped_ = true;
  monitor_.stop();
  for (const auto& loop : loops_) loop->stop();
}

PoolStats LoopPool::stats() const {
  PoolStats s;
  MonitorStats m = monitor_.stats();
  s.name = options_.name;
  s.size = loops_.size();
  s.active_count = chooser_.active_count();
  const std::size_t max = m.config.max_loops == 0
                              ? s.size
                              : std::min(m.config.max_loops, s.size);
  s.max_loops = max;
  s.min_loops = std::min(m.config.min_loops, max);
  s.ticks = m.ticks;
  s.scale_ups = m.scale_ups;
  s.scale_downs = m.scale_downs;
  s.last_decision = std::move(m.last_decision);
  s.scaling = m.config;
  s.loops.reserve(loops_.size());
  for (const auto& loop : loops_) {
    const ActivityRecorder::Snapshot a = loop->activity();
    LoopStats l;
    l.index = loop->index();
    l.state = loop->state();
    l.utilization = m.utilizations[l.index];
    l.busy = a.busy;
    l.handlers = a.handlers;
    l.wakeups = a.wakeups;
    l.registrations = loop->registrations();
    l.suspensions = loop->suspensions();
    l.resumes = loop->resumes();
    l.cpu_time = loop->cpu_time();
    s.loops.push_back(l);
  }
  return s;
}

}  // namespace loopscale
