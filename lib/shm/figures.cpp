#include "loopscale/shm/figures.hpp"

#include <chrono>

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

}  // namespace loopscale::shm
