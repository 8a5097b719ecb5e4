// -----------------------------------------------------------------------------
// shm/figures.hpp
// -----------------------------------------------------------------------------
//
// The value of every figure of the shared-memory schema (layout.hpp's
// kSchema), computed from a pool's statistics: what `shm::Publisher` writes,
// and, through `snapshot_of`, what loopscale/prometheus.hpp renders for a
// live pool. Adding a figure is a row in kSchema and its value here.
//
//   for (const FieldSpec& f : kSchema) {
//     if (auto v = pool_figure_value(f.name, stats)) write(f.offset, *v);
//   }
//
// Thread-safety: pure functions.

#ifndef LOOPSCALE_SHM_FIGURES_HPP_
#define LOOPSCALE_SHM_FIGURES_HPP_

#include <cstdint>
#include <optional>
#include <string_view>

#include "loopscale/pool_stats.hpp"
#include "loopscale/shm/layout.hpp"
#include "loopscale/shm/reader.hpp"

namespace loopscale::shm {

// One figure's value: an unsigned integer or a double, as its FieldType.
struct FigureValue {
  bool is_float = false;
  std::uint64_t u = 0;
  double f = 0.0;
  double as_double() const { return is_float ? f : static_cast<double>(u); }
};

// The value of pool figure `name` (a segment row of kSchema) for `stats`;
// nullopt for a row the publisher fills itself (the process's identity, the
// heartbeat, the texts) or an unknown name.
std::optional<FigureValue> pool_figure_value(std::string_view name,
                                       const PoolStats& stats);

// The value of loop figure `name` (a loop row of kSchema); nullopt for an
// unknown name. A job type's slot the process has not registered reads 0.
std::optional<FigureValue> loop_figure_value(std::string_view name,
                                             const LoopStats& loop);

// The job type name of slot field `name` (`job<i>_name`): the process's job
// type of id i, empty if not registered; nullopt for another field.
std::optional<std::string_view> job_name_value(std::string_view name,
                                               const PoolStats& stats);

// `stats` as a reader would see them once published by process `pid` under
// `service`: one consistent, live process (its figures in schema order, the
// heartbeat now) and its service. What loopscale/prometheus.hpp renders for
// a live pool, so that it and loopscale-top print the same families.
Snapshot snapshot_of(const PoolStats& stats, std::string_view service,
                     std::uint64_t pid);

}  // namespace loopscale::shm

#endif  // LOOPSCALE_SHM_FIGURES_HPP_
