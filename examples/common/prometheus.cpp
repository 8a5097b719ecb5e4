#include "prometheus.hpp"

#include "loopscale/loop_state.hpp"
#include "loopscale/shm/figures.hpp"

namespace loopscale::prometheus {

SchemaFamilies schema_families(shm::Record record) {
  SchemaFamilies out;
  for (const shm::FieldSpec& f : shm::kSchema) {
    if (f.record != record || f.prometheus.name.empty()) continue;
    out.rows.push_back(&f);
    out.families.emplace_back(f.prometheus);
  }
  return out;
}

std::string pool_metrics(const PoolStats& stats) {
  Family size(kPoolLoops), state(kLoopState);
  SchemaFamilies pool_families = schema_families(shm::Record::kSegment);
  SchemaFamilies loop_families = schema_families(shm::Record::kLoop);
  const std::string pool = absl::StrCat("pool=\"", label_value(stats.name), "\"");
  size.add(pool, static_cast<double>(stats.size));
  for (std::size_t k = 0; k < pool_families.rows.size(); ++k) {
    if (auto v = shm::pool_figure_value(pool_families.rows[k]->name, stats)) {
      pool_families.families[k].add(pool, v->as_double());
    }
  }
  for (const LoopStats& l : stats.loops) {
    const std::string labels = absl::StrCat(pool, ",loop=\"", l.index, "\"");
    for (LoopState s : {LoopState::kActive, LoopState::kDraining, LoopState::kSuspending,
                        LoopState::kSuspended, LoopState::kStopped}) {
      state.add(absl::StrCat(labels, ",state=\"", std::string(to_string(s)), "\""),
                l.state == s ? 1 : 0);
    }
    for (std::size_t k = 0; k < loop_families.rows.size(); ++k) {
      if (auto v = shm::loop_figure_value(loop_families.rows[k]->name, l)) {
        loop_families.families[k].add(labels, v->as_double());
      }
    }
  }
  std::string out;
  size.append_to(out);
  pool_families.append_to(out);
  state.append_to(out);
  loop_families.append_to(out);
  return out;
}

}  // namespace loopscale::prometheus
