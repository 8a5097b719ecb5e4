#include "prometheus.hpp"

namespace loopscale::prometheus {

std::string pool_metrics(const PoolStats& stats) {
  Family active("loopscale_pool_active_loops", "gauge", "Loops taking new work.");
  Family size("loopscale_pool_loops", "gauge", "Loops in the pool.");
  Family ups("loopscale_pool_scale_ups_total", "counter", "Decisions that woke loops.");
  Family downs("loopscale_pool_scale_downs_total", "counter",
               "Decisions that suspended or drained loops.");
  Family state("loopscale_loop_state", "gauge", "1 for the loop's current state.");
  Family util("loopscale_loop_utilization", "gauge",
              "Busy fraction of the loop in the last window (0 to 1).");
  Family busy("loopscale_loop_busy_seconds_total", "counter",
              "Time the loop spent running handlers.");
  Family handlers("loopscale_loop_handlers_total", "counter", "Handlers run.");
  Family regs("loopscale_loop_registrations", "gauge",
              "Connections registered on the loop.");
  const std::string pool = absl::StrCat("pool=\"", label_value(stats.name), "\"");
  active.add(pool, static_cast<double>(stats.active_count));
  size.add(pool, static_cast<double>(stats.size));
  ups.add(pool, static_cast<double>(stats.scale_ups));
  downs.add(pool, static_cast<double>(stats.scale_downs));
  for (const LoopStats& l : stats.loops) {
    const std::string labels = absl::StrCat(pool, ",loop=\"", l.index, "\"");
    for (LoopState s : {LoopState::kActive, LoopState::kDraining, LoopState::kSuspending,
                        LoopState::kSuspended, LoopState::kStopped}) {
      state.add(absl::StrCat(labels, ",state=\"", std::string(to_string(s)), "\""),
                l.state == s ? 1 : 0);
    }
    util.add(labels, l.utilization);
    busy.add(labels, std::chrono::duration<double>(l.busy).count());
    handlers.add(labels, static_cast<double>(l.handlers));
    regs.add(labels, static_cast<double>(l.registrations));
  }
  std::string out;
  for (const Family* f : {&active, &size, &ups, &downs, &state, &util, &busy, &handlers, &regs}) {
    f->append_to(out);
  }
  return out;
}

}  // namespace loopscale::prometheus
