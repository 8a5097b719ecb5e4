#include "prometheus.hpp"

#include "loopscale/loop_state.hpp"
#include "loopscale/shm/figures.hpp"
#include "loopscale/version.hpp"

namespace loopscale::prometheus {

SchemaFamilies schema_families(shm::Record record) {
  SchemaFamilies out;
  for (const shm::FieldSpec& f : shm::kSchema) {
    if (f.record != record || f.prometheus.name.empty()) continue;
    std::size_t k = 0;
    while (k < out.families.size() && out.families[k].name() != f.prometheus.name) ++k;
    if (k == out.families.size()) out.families.emplace_back(f.prometheus);
    out.rows.push_back(&f);
    out.family_of.push_back(k);
  }
  return out;
}

std::string build_info() {
  Family info(kBuildInfo);
  info.add(absl::StrCat("version=\"", label_value(kVersion), "\",shm_format=\"",
                        shm::kVersionMajor, ".", shm::kVersionMinor, "\""),
           1);
  std::string out;
  info.append_to(out);
  return out;
}

std::string pool_metrics(const PoolStats& stats) {
  Family by_state(kPoolLoops), state(kLoopState), job_busy(kLoopJobBusy), jobs(kLoopJobs);
  SchemaFamilies pool_families = schema_families(shm::Record::kSegment);
  SchemaFamilies loop_families = schema_families(shm::Record::kLoop);
  const std::string pool = absl::StrCat("pool=\"", label_value(stats.name), "\"");
  for (LoopState s : kLoopStates) {
    std::size_t n = 0;
    for (const LoopStats& l : stats.loops) n += l.state == s ? 1 : 0;
    by_state.add(absl::StrCat(pool, ",state=\"", std::string(to_string(s)), "\""),
                 static_cast<double>(n));
  }
  for (std::size_t k = 0; k < pool_families.rows.size(); ++k) {
    if (auto v = shm::pool_figure_value(pool_families.rows[k]->name, stats)) {
      pool_families.add(k, pool, v->as_double());
    }
  }
  for (const LoopStats& l : stats.loops) {
    const std::string labels = absl::StrCat(pool, ",loop=\"", l.index, "\"");
    for (LoopState s : kLoopStates) {
      state.add(absl::StrCat(labels, ",state=\"", std::string(to_string(s)), "\""),
                l.state == s ? 1 : 0);
    }
    for (std::size_t k = 0; k < loop_families.rows.size(); ++k) {
      if (auto v = shm::loop_figure_value(loop_families.rows[k]->name, l)) {
        loop_families.add(k, labels, v->as_double());
      }
    }
    for (std::size_t id = 0; id < l.jobs.size() && id < stats.job_types.size(); ++id) {
      const std::string jl =
          absl::StrCat(labels, ",job=\"", label_value(stats.job_types[id]), "\"");
      job_busy.add(jl, static_cast<double>(l.jobs[id].busy.count()) * 1e-9);
      jobs.add(jl, static_cast<double>(l.jobs[id].count));
    }
  }
  std::string out;
  by_state.append_to(out);
  pool_families.append_to(out);
  state.append_to(out);
  loop_families.append_to(out);
  job_busy.append_to(out);
  jobs.append_to(out);
  return out;
}

}  // namespace loopscale::prometheus
