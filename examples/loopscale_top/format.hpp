// -----------------------------------------------------------------------------
// loopscale_top/format.hpp
// -----------------------------------------------------------------------------
//
// The three views of a shared-memory snapshot that `loopscale-top` prints:
// a `top`-like table, one JSON document, and the Prometheus text exposition
// format (for node_exporter's textfile collector). Pure functions of the
// snapshot and a clock reading, so tests can check them on fixed input.

#ifndef LOOPSCALE_EXAMPLES_LOOPSCALE_TOP_FORMAT_HPP_
#define LOOPSCALE_EXAMPLES_LOOPSCALE_TOP_FORMAT_HPP_

#include <cstdint>
#include <string>

#include "loopscale/shm/reader.hpp"

namespace loopscale::top {

// `now_ns` is CLOCK_MONOTONIC (as the heartbeats), for heartbeat ages.
// Each service's busy time by job type follows its line; with
// `jobs_per_loop`, each loop's too.
std::string format_table(const shm::Snapshot& snap, const std::string& path,
                         std::uint64_t now_ns, bool jobs_per_loop = false);

// {"version", "services": [...], "processes": [...]}: every service figure
// the schema aggregates, and every pool with its loops; services, pools and
// loops each with "jobs": {name: {"busy_ns", "count"}} (empty before
// format 1.4).
std::string format_json(const shm::Snapshot& snap, std::uint64_t now_ns);

// The Prometheus format is the library's: loopscale/prometheus.hpp.

}  // namespace loopscale::top

#endif  // LOOPSCALE_EXAMPLES_LOOPSCALE_TOP_FORMAT_HPP_
