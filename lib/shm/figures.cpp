#include "loopscale/shm/figures.hpp"

#include <chrono>
#include <string>
#include <utility>

#include "loopscale/clock.hpp"

namespace loopscale::shm {
namespace {

FigureValue u64(std::uint64_t v) { return FigureValue{false, v, 0.0}; }
FigureValue f64(double v) { return FigureValue{true, 0, v}; }
FigureValue ns(std::chrono::nanoseconds d) {
  return u64(static_cast<std::uint64_t>(d.count()));
}

template <std::size_t B>
FigureValue lag_bucket(const PoolStats& s) {
  return u64(s.lag_histogram.cumulative[B]);
}

template <class Stats>
struct Getter {
  std::string_view name;
  FigureValue (*value)(const Stats&);
};

// Every numeric figure of kSchema's segment rows that comes from PoolStats.
constexpr Getter<PoolStats> kPoolFigures[] = {
    {"active_loops", [](const PoolStats& s) { return u64(s.active_count); }},
    {"min_loops", [](const PoolStats& s) { return u64(s.min_loops); }},
    {"max_loops", [](const PoolStats& s) { return u64(s.max_loops); }},
    {"ticks", [](const PoolStats& s) { return u64(s.ticks); }},
    {"scale_ups", [](const PoolStats& s) { return u64(s.scale_ups); }},
    {"scale_downs", [](const PoolStats& s) { return u64(s.scale_downs); }},
    {"window_ns", [](const PoolStats& s) { return ns(s.scaling.window); }},
    {"scale_down_threshold",
     [](const PoolStats& s) { return f64(s.scaling.scale_down_threshold); }},
    {"scale_up_threshold",
     [](const PoolStats& s) { return f64(s.scaling.scale_up_threshold); }},
    {"last_rule",
     [](const PoolStats& s) {
       return u64(static_cast<std::uint64_t>(s.last_decision.rule));
     }},
    {"moves_requested", [](const PoolStats& s) { return u64(s.moves_requested); }},
    // In LagHistogram::kBounds' order (layout_test checks the names).
    {"lag_le_50us", lag_bucket<0>},
    {"lag_le_250us", lag_bucket<1>},
    {"lag_le_1ms", lag_bucket<2>},
    {"lag_le_5ms", lag_bucket<3>},
    {"lag_le_25ms", lag_bucket<4>},
    {"lag_le_100ms", lag_bucket<5>},
    {"lag_le_500ms", lag_bucket<6>},
    {"lag_count", [](const PoolStats& s) { return u64(s.lag_histogram.count); }},
    {"lag_sum_ns", [](const PoolStats& s) { return ns(s.lag_histogram.sum); }},
    {"overload_level", [](const PoolStats& s) { return f64(s.overload_level); }},
    {"overload_refused", [](const PoolStats& s) { return u64(s.overload_refused); }},
    {"overload_episodes", [](const PoolStats& s) { return u64(s.overload_episodes); }},
};

// Every figure of kSchema's loop rows.
constexpr Getter<LoopStats> kLoopFigures[] = {
    {"index", [](const LoopStats& l) { return u64(l.index); }},
    {"state",
     [](const LoopStats& l) { return u64(static_cast<std::uint64_t>(l.state)); }},
    {"busy_ns", [](const LoopStats& l) { return ns(l.busy); }},
    {"handlers", [](const LoopStats& l) { return u64(l.handlers); }},
    {"wakeups", [](const LoopStats& l) { return u64(l.wakeups); }},
    {"registrations", [](const LoopStats& l) { return u64(l.registrations); }},
    {"utilization", [](const LoopStats& l) { return f64(l.utilization); }},
    {"cpu_ns", [](const LoopStats& l) { return ns(l.cpu_time); }},
    {"suspensions", [](const LoopStats& l) { return u64(l.suspensions); }},
    {"resumes", [](const LoopStats& l) { return u64(l.resumes); }},
    {"scheduling_lag_ns", [](const LoopStats& l) { return ns(l.scheduling_lag); }},
    {"moves_in", [](const LoopStats& l) { return u64(l.moves_in); }},
    {"moves_out", [](const LoopStats& l) { return u64(l.moves_out); }},
    {"moves_failed", [](const LoopStats& l) { return u64(l.moves_failed); }},
    {"active_ns", [](const LoopStats& l) { return ns(l.active_time); }},
    {"registrations_total", [](const LoopStats& l) { return u64(l.registrations_total); }},
};

// The slot of job field `name` in `fields` (layout.hpp), if it is one.
std::optional<std::size_t> job_slot(
    const std::array<std::string_view, kJobSlots>& fields, std::string_view name) {
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (fields[i] == name) return i;
  }
  return std::nullopt;
}

template <class Stats, std::size_t N>
std::optional<FigureValue> find(const Getter<Stats> (&table)[N],
                                 std::string_view name, const Stats& stats) {
  for (const Getter<Stats>& g : table) {
    if (g.name == name) return g.value(stats);
  }
  return std::nullopt;
}

}  // namespace

std::optional<FigureValue> pool_figure_value(std::string_view name,
                                       const PoolStats& stats) {
  return find(kPoolFigures, name, stats);
}

std::optional<FigureValue> loop_figure_value(std::string_view name,
                                             const LoopStats& loop) {
  if (is_job_field(name)) {
    auto job = [&](std::size_t i) { return i < loop.jobs.size() ? loop.jobs[i] : JobStats{}; };
    if (auto i = job_slot(kJobBusyFields, name)) return ns(job(*i).busy);
    if (auto i = job_slot(kJobCountFields, name)) return u64(job(*i).count);
    return std::nullopt;
  }
  return find(kLoopFigures, name, loop);
}

std::optional<std::string_view> job_name_value(std::string_view name,
                                               const PoolStats& stats) {
  const auto i = job_slot(kJobNameFields, name);
  if (!i) return std::nullopt;
  return *i < stats.job_types.size() ? std::string_view(stats.job_types[*i])
                                     : std::string_view();
}

namespace {

// The figure of row `f` (a numeric row, not a job type's), as a reader
// decodes it.
Figure figure_of(const FieldSpec& f, const FigureValue& v) {
  return Figure{std::string(f.name), std::string(f.unit), f.aggregation, v.is_float, v.u, v.f};
}

// The rows a reader lists in `figures`: numeric, not a job type's.
bool listed(const FieldSpec& f, Record record) {
  return f.record == record && f.type != FieldType::kString && !is_job_field(f.name);
}

// The publisher's own segment figures: the process's identity and heartbeat.
FigureValue identity_value(std::string_view name, const PoolStats& stats, std::uint64_t pid,
                           std::uint64_t heartbeat_ns) {
  if (name == "pid") return u64(pid);
  if (name == "heartbeat_ns") return u64(heartbeat_ns);
  if (name == "loops") return u64(stats.loops.size());
  return u64(0);  // generation, start_time: a file's bookkeeping
}

LoopSnapshot loop_snapshot(const LoopStats& l, const std::vector<std::string>& job_types) {
  LoopSnapshot out;
  out.index = l.index;
  out.state = static_cast<std::uint64_t>(l.state);
  out.state_name = std::string(to_string(l.state));
  out.utilization = l.utilization;
  out.busy_ns = static_cast<std::uint64_t>(l.busy.count());
  out.handlers = l.handlers;
  out.wakeups = l.wakeups;
  out.registrations = l.registrations;
  out.cpu_ns = static_cast<std::uint64_t>(l.cpu_time.count());
  out.suspensions = l.suspensions;
  out.resumes = l.resumes;
  out.scheduling_lag_ns = static_cast<std::uint64_t>(l.scheduling_lag.count());
  out.moves_in = l.moves_in;
  out.moves_out = l.moves_out;
  out.moves_failed = l.moves_failed;
  for (std::size_t id = 0; id < l.jobs.size() && id < job_types.size(); ++id) {
    out.jobs.push_back({job_types[id], static_cast<std::uint64_t>(l.jobs[id].busy.count()),
                        l.jobs[id].count});
  }
  for (const FieldSpec& f : kSchema) {
    if (!listed(f, Record::kLoop)) continue;
    if (auto v = loop_figure_value(f.name, l)) out.figures.push_back(figure_of(f, *v));
  }
  return out;
}

}  // namespace

Snapshot snapshot_of(const PoolStats& stats, std::string_view service, std::uint64_t pid) {
  const auto heartbeat_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
          .count());
  ProcessSnapshot p;
  p.pid = pid;
  p.service = std::string(service);
  p.pool = stats.name;
  p.heartbeat_ns = heartbeat_ns;
  p.active_loops = stats.active_count;
  p.min_loops = stats.min_loops;
  p.max_loops = stats.max_loops;
  p.ticks = stats.ticks;
  p.scale_ups = stats.scale_ups;
  p.scale_downs = stats.scale_downs;
  p.moves_requested = stats.moves_requested;
  p.window_ns = static_cast<std::uint64_t>(stats.scaling.window.count());
  p.scale_down_threshold = stats.scaling.scale_down_threshold;
  p.scale_up_threshold = stats.scaling.scale_up_threshold;
  p.last_rule = static_cast<std::uint64_t>(stats.last_decision.rule);
  p.last_decision = stats.last_decision.reason;
  for (const FieldSpec& f : kSchema) {
    if (!listed(f, Record::kSegment)) continue;
    const std::optional<FigureValue> v = pool_figure_value(f.name, stats);
    p.figures.push_back(figure_of(f, v ? *v : identity_value(f.name, stats, pid, heartbeat_ns)));
  }
  for (const LoopStats& l : stats.loops) {
    p.loops.push_back(loop_snapshot(l, stats.job_types));
    for (std::size_t k = 0; k < p.loops.back().jobs.size(); ++k) {
      if (k == p.jobs.size()) p.jobs.push_back({p.loops.back().jobs[k].name, 0, 0});
      p.jobs[k].busy_ns += p.loops.back().jobs[k].busy_ns;
      p.jobs[k].count += p.loops.back().jobs[k].count;
    }
  }
  Snapshot out;
  out.version_major = kVersionMajor;
  out.version_minor = kVersionMinor;
  out.processes.push_back(std::move(p));
  out.services = services_of(out.processes);
  return out;
}

}  // namespace loopscale::shm
