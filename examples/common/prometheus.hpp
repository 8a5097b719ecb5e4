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
#include "loopscale/pool_stats.hpp"

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

// A metric family's name, type and help: every family loopscale's tools
// print is declared once, below, so /metrics and loopscale-top agree.
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
inline constexpr FamilySpec kPoolActiveLoops{"loopscale_pool_active_loops", "gauge",
                                             "Loops taking new work."};
inline constexpr FamilySpec kPoolLoops{"loopscale_pool_loops", "gauge", "Loops in the pool."};
inline constexpr FamilySpec kPoolMinLoops{"loopscale_pool_min_loops", "gauge",
                                          "Lower bound on active loops."};
inline constexpr FamilySpec kPoolMaxLoops{"loopscale_pool_max_loops", "gauge",
                                          "Upper bound on active loops."};
inline constexpr FamilySpec kPoolScaleUps{"loopscale_pool_scale_ups_total", "counter",
                                          "Decisions that woke loops."};
inline constexpr FamilySpec kPoolScaleDowns{"loopscale_pool_scale_downs_total", "counter",
                                            "Decisions that suspended or drained loops."};
inline constexpr FamilySpec kPoolStale{
    "loopscale_pool_stale", "gauge",
    "1 if the pool's process has died (its slots can be reclaimed)."};
inline constexpr FamilySpec kLoopState{"loopscale_loop_state", "gauge",
                                       "1 for the loop's current state."};
inline constexpr FamilySpec kLoopUtilization{
    "loopscale_loop_utilization", "gauge",
    "Busy fraction of the loop in the last window (0 to 1)."};
inline constexpr FamilySpec kLoopBusy{"loopscale_loop_busy_seconds_total", "counter",
                                      "Time the loop spent running handlers."};
inline constexpr FamilySpec kLoopHandlers{"loopscale_loop_handlers_total", "counter",
                                          "Handlers run."};
inline constexpr FamilySpec kLoopWakeups{"loopscale_loop_wakeups_total", "counter",
                                         "Idle-to-busy transitions."};
inline constexpr FamilySpec kLoopRegistrations{"loopscale_loop_registrations", "gauge",
                                               "Connections registered on the loop."};
inline constexpr FamilySpec kLoopCpu{"loopscale_loop_cpu_seconds_total", "counter",
                                     "CPU time of the loop's threads."};
inline constexpr FamilySpec kLoopSuspensions{"loopscale_loop_suspensions_total", "counter",
                                             "Times the loop gave its thread back."};
inline constexpr FamilySpec kLoopSchedulingLag{
    "loopscale_loop_scheduling_lag_seconds", "gauge",
    "How long the monitor's last probe waited in the loop's queue."};
inline constexpr FamilySpec kLoopResumes{"loopscale_loop_resumes_total", "counter",
                                         "Times the loop was given a fresh thread."};
inline constexpr FamilySpec kPoolMovesRequested{
    "loopscale_pool_moves_requested_total", "counter",
    "Connections the monitor asked to move to another loop, summed over its ticks."};
inline constexpr FamilySpec kLoopMovesIn{"loopscale_loop_moves_in_total", "counter",
                                         "Connections that moved to the loop from another."};
inline constexpr FamilySpec kLoopMovesOut{"loopscale_loop_moves_out_total", "counter",
                                          "Connections that left the loop for another."};
inline constexpr FamilySpec kLoopMovesFailed{
    "loopscale_loop_moves_failed_total", "counter",
    "Connections asked to leave the loop that could not."};

// Collects the samples of one metric family, then prints HELP and TYPE once
// (the format wants a family's samples together).
class Family {
 public:
  explicit Family(const FamilySpec& spec)
      : name_(spec.name), type_(spec.type), help_(spec.help) {}
  // `labels` is `name="value",...` with values already escaped.
  void add(const std::string& labels, double value) {
    absl::StrAppend(&samples_, name_, "{", labels, "} ", number(value), "\n");
  }
  void append_to(std::string& out) const {
    if (samples_.empty()) return;
    absl::StrAppend(&out, "# HELP ", name_, " ", help_, "\n# TYPE ", name_, " ",
                    type_, "\n", samples_);
  }

 private:
  std::string name_, type_, help_, samples_;
};

// The pool's figures, labelled `pool` and `loop`.
std::string pool_metrics(const PoolStats& stats);

}  // namespace loopscale::prometheus

#endif  // LOOPSCALE_EXAMPLES_COMMON_PROMETHEUS_HPP_
