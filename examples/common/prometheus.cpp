#include "prometheus.hpp"

namespace loopscale::prometheus {

std::string pool_metrics(const PoolStats& stats) {
  Family active(kPoolActiveLoops), size(kPoolLoops), ups(kPoolScaleUps),
      downs(kPoolScaleDowns), state(kLoopState), util(kLoopUtilization), busy(kLoopBusy),
      handlers(kLoopHandlers), regs(kLoopRegistrations), lag(kLoopSchedulingLag),
      moves_requested(kPoolMovesRequested), moves_in(kLoopMovesIn), moves_out(kLoopMovesOut),
      moves_failed(kLoopMovesFailed);
  const std::string pool = absl::StrCat("pool=\"", label_value(stats.name), "\"");
  active.add(pool, static_cast<double>(stats.active_count));
  size.add(pool, static_cast<double>(stats.size));
  ups.add(pool, static_cast<double>(stats.scale_ups));
  downs.add(pool, static_cast<double>(stats.scale_downs));
  moves_requested.add(pool, static_cast<double>(stats.moves_requested));
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
    lag.add(labels, std::chrono::duration<double>(l.scheduling_lag).count());
    moves_in.add(labels, static_cast<double>(l.moves_in));
    moves_out.add(labels, static_cast<double>(l.moves_out));
    moves_failed.add(labels, static_cast<double>(l.moves_failed));
  }
  std::string out;
  for (const Family* f : {&active, &size, &ups, &downs, &moves_requested, &state, &util, &busy,
                          &handlers, &regs, &lag, &moves_in, &moves_out, &moves_failed}) {
    f->append_to(out);
  }
  return out;
}

}  // namespace loopscale::prometheus
