// -----------------------------------------------------------------------------
// examples/common/prometheus.hpp
// -----------------------------------------------------------------------------
//
// Writing the Prometheus text exposition format (version 0.0.4): metric
// families with HELP and TYPE lines, samples with escaped label values, and
// `pool_metrics()`, the `loopscale_*` figures of a running pool as the example
// HTTP server's /metrics serves them (the same family names loopscale-top
// prints from shared memory).

#ifndef LOOPSCALE_EXAMPLES_COMMON_PROMETHEUS_HPP_
#define LOOPSCALE_EXAMPLES_COMMON_PROMETHEUS_HPP_

#include <cmath>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include <vector>

#include "loopscale/pool_stats.hpp"
#include "loopscale/shm/layout.hpp"

namespace loopscale::prometheus {

// Escapes a label value: backslash, double quote and newline.
inline std::string label_value(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

inline std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return absl::StrFormat("%.17g", v);
}

// A metric family's name, type and help. The families of the pool's and the
// loops' figures come from the shared-memory schema's rows (`shm::Export`
// in loopscale/shm/layout.hpp: `schema_families()` below), so /metrics and
// loopscale-top agree by construction; the ones here have no row of their
// own (service totals, liveness, the one-hot state).
struct FamilySpec {
  std::string_view name, type, help;
};

inline constexpr FamilySpec kServiceProcesses{
    "loopscale_service_processes", "gauge", "Live processes publishing pools of the service."};
inline constexpr FamilySpec kServiceLoops{"loopscale_service_loops", "gauge",
                                          "Loops of the service."};
inline constexpr FamilySpec kServiceActiveLoops{"loopscale_service_active_loops", "gauge",
                                                "Loops of the service taking new work."};
inline constexpr FamilySpec kServiceUtilization{
    "loopscale_service_utilization", "gauge",
    "Mean loop utilization of the service in the last window (0 to 1)."};
inline constexpr FamilySpec kPoolLoops{"loopscale_pool_loops", "gauge", "Loops in the pool."};
inline constexpr FamilySpec kPoolStale{
    "loopscale_pool_stale", "gauge",
    "1 if the pool's process has died (its slots can be reclaimed)."};
inline constexpr FamilySpec kLoopState{"loopscale_loop_state", "gauge",
                                       "1 for the loop's current state."};

// Collects the samples of one metric family, then prints HELP and TYPE once
// (the format wants a family's samples together).
class Family {
 public:
  explicit Family(const FamilySpec& spec)
      : name_(spec.name), type_(spec.type), help_(spec.help) {}
  // A schema row's family; its values are scaled by `export_.scale`.
  explicit Family(const shm::Export& e)
      : name_(e.name), type_(e.type), help_(e.help), scale_(e.scale) {}
  // `labels` is `name="value",...` with values already escaped.
  void add(const std::string& labels, double value) {
    absl::StrAppend(&samples_, name_, "{", labels, "} ", number(value * scale_), "\n");
  }
  void append_to(std::string& out) const {
    if (samples_.empty()) return;
    absl::StrAppend(&out, "# HELP ", name_, " ", help_, "\n# TYPE ", name_, " ",
                    type_, "\n", samples_);
  }

 private:
  std::string name_, type_, help_, samples_;
  double scale_ = 1.0;
};

// One family per exported row of `record` in the schema, in schema order,
// and the rows they print.
struct SchemaFamilies {
  std::vector<const shm::FieldSpec*> rows;
  std::vector<Family> families;
  // Appends every family to `out`.
  void append_to(std::string& out) const {
    for (const Family& f : families) f.append_to(out);
  }
};
SchemaFamilies schema_families(shm::Record record);

// The pool's figures, labelled `pool` and `loop`.
std::string pool_metrics(const PoolStats& stats);

}  // namespace loopscale::prometheus

#endif  // LOOPSCALE_EXAMPLES_COMMON_PROMETHEUS_HPP_
