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

// Abseil's string functions take absl::string_view, which this Abseil build
// does not alias to std::string_view.
inline absl::string_view sv(std::string_view s) { return {s.data(), s.size()}; }

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
    "loopscale_service_utilization_ratio", "gauge",
    "Mean loop utilization of the service in the last window (0 to 1)."};
inline constexpr FamilySpec kServiceConnectionsActive{
    "loopscale_service_connections_active", "gauge",
    "Connections open on the service's loops."};
inline constexpr FamilySpec kServiceConnectionsTotal{
    "loopscale_service_connections_total", "counter",
    "Connections the service's loops ever took (registrations less moves in)."};
inline constexpr FamilySpec kPoolLoops{"loopscale_pool_loops", "gauge",
                                       "Loops of the pool by state; their sum is the pool's size."};
inline constexpr FamilySpec kBuildInfo{
    "loopscale_build_info", "gauge",
    "1, labelled with the loopscale version and shared-memory format in use."};
inline constexpr FamilySpec kPoolStale{
    "loopscale_pool_stale", "gauge",
    "1 if the pool's process has died (its slots can be reclaimed)."};
inline constexpr FamilySpec kLoopState{"loopscale_loop_state", "gauge",
                                       "1 for the loop's current state."};
// Job types (loopscale/job_type.hpp): labelled `job`, "other" for the busy
// time no job claimed; a loop's job busy times add up to its busy time.
inline constexpr FamilySpec kLoopJobBusy{
    "loopscale_loop_job_busy_seconds_total", "counter",
    "Time the loop spent in each job type (job=\"other\": in none)."};
inline constexpr FamilySpec kLoopJobs{"loopscale_loop_jobs_total", "counter",
                                      "Times the loop entered each job type."};
inline constexpr FamilySpec kServiceJobBusy{
    "loopscale_service_job_busy_seconds_total", "counter",
    "Time the service's loops spent in each job type."};
inline constexpr FamilySpec kServiceJobs{"loopscale_service_jobs_total", "counter",
                                         "Times the service's loops entered each job type."};

// Collects the samples of one metric family, then prints HELP and TYPE once
// (the format wants a family's samples together).
class Family {
 public:
  explicit Family(const FamilySpec& spec)
      : name_(spec.name), type_(spec.type), help_(spec.help) {}
  // A schema row's family; its values are scaled by `export_.scale`.
  explicit Family(const shm::Export& e) : name_(e.name), type_(e.type), help_(e.help) {}
  std::string_view name() const { return name_; }
  // `labels` is `name="value",...` with values already escaped.
  void add(const std::string& labels, double value) {
    sample(name_, labels, value * scale_);
  }
  // A schema row's sample: the row's scale, name suffix and labels.
  void add(const shm::Export& row, const std::string& labels, double value) {
    std::string all = labels;
    if (!row.labels.empty()) absl::StrAppend(&all, all.empty() ? "" : ",", sv(row.labels));
    if (type_ == "histogram" && row.suffix == "_count") {
      // The +Inf bucket is the count.
      sample(absl::StrCat(name_, "_bucket"),
             absl::StrCat(all, all.empty() ? "" : ",", "le=\"+Inf\""), value);
    }
    sample(absl::StrCat(name_, sv(row.suffix)), all, value * row.scale);
  }
  void append_to(std::string& out) const {
    if (samples_.empty()) return;
    absl::StrAppend(&out, "# HELP ", name_, " ", help_, "\n# TYPE ", name_, " ",
                    type_, "\n", samples_);
  }

 private:
  void sample(std::string_view name, std::string_view labels, double value) {
    absl::StrAppend(&samples_, sv(name), labels.empty() ? "" : "{", sv(labels),
                    labels.empty() ? "" : "}", " ", number(value), "\n");
  }

  std::string name_, type_, help_, samples_;
  double scale_ = 1.0;
};

// The families of the exported rows of `record` in the schema, in schema
// order, and the rows they print (rows sharing a name share a family).
struct SchemaFamilies {
  std::vector<const shm::FieldSpec*> rows;
  std::vector<std::size_t> family_of;  // per row, an index into families
  std::vector<Family> families;
  // Adds row `row`'s sample.
  void add(std::size_t row, const std::string& labels, double value) {
    families[family_of[row]].add(rows[row]->prometheus, labels, value);
  }
  // Appends every family to `out`.
  void append_to(std::string& out) const {
    for (const Family& f : families) f.append_to(out);
  }
};
SchemaFamilies schema_families(shm::Record record);

// `loopscale_build_info`, the one sample.
std::string build_info();

// The pool's figures, labelled `pool` and `loop`.
std::string pool_metrics(const PoolStats& stats);

}  // namespace loopscale::prometheus

#endif  // LOOPSCALE_EXAMPLES_COMMON_PROMETHEUS_HPP_
