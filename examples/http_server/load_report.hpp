// -----------------------------------------------------------------------------
// examples/http_server/load_report.hpp
// -----------------------------------------------------------------------------
//
// ORCA load reports (Open Request Cost Aggregation, xds.data.orca.v3): the
// `endpoint-load-metrics` response header that a load balancer reads to
// weight this server against its peers. Envoy's client-side weighted round
// robin takes `application_utilization` (falling back to `cpu_utilization`)
// and `rps_fractional`, and weights an endpoint by rps / utilization.
//
// What is reported, over the last monitor window:
//   application_utilization  busy loop-seconds per second ÷ max_loops: the
//                            capacity in use, which rises with the load
//                            (the utilization of active loops does not: the
//                            pool holds it near its target by adding loops)
//   rps_fractional           responses per second, never 0 (a balancer
//                            divides by it; 0 would read as "no data")
//   named_metrics.*          active_loops, max_loops
// Only keys the report format defines are used; every value is finite.
//
//   TEXT application_utilization=0.25,rps_fractional=120,named_metrics.active_loops=2,...
//   JSON {"application_utilization":0.25,"rps_fractional":120,"named_metrics":{...}}
//
// The header's value is formatted once per window, from the monitor's own
// report of it (a sink on the pool calls `refresh(tick)`: no second reading
// of the loops), not per response: responses copy the current one. A request
// may ask for a format with `endpoint-load-metrics-format: TEXT|JSON`.
//
// Thread-safety: `count_response(i)` from loop i's thread only;
// `refresh()` from one thread (the monitor's); `header()` from any.

#ifndef LOOPSCALE_EXAMPLES_HTTP_SERVER_LOAD_REPORT_HPP_
#define LOOPSCALE_EXAMPLES_HTTP_SERVER_LOAD_REPORT_HPP_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "loopscale/detail/mutex.hpp"
#include "loopscale/utilization_monitor.hpp"

namespace loopscale::http {

enum class OrcaFormat { kOff, kText, kJson };

// "text", "json" or "off" (case-insensitive, as flags and request headers
// spell them); an error naming the value otherwise.
absl::StatusOr<OrcaFormat> parse_orca_format(std::string_view s);

struct OrcaValues {
  double application_utilization = 0;
  double rps_fractional = 0;
  std::uint64_t active_loops = 0;
  std::uint64_t max_loops = 0;
};

// The header's value, "TEXT ..." or "JSON ...". Non-finite or negative
// figures are reported as 0, rps_fractional at least kMinRps.
std::string format_orca(const OrcaValues& v, OrcaFormat format);
inline constexpr double kMinRps = 0.001;

class LoadReport {
 public:
  // `loops`: the pool's size; `format`: the one used when a request does
  // not ask (not kOff).
  LoadReport(std::size_t loops, OrcaFormat format);

  // Counts a response made on loop `loop`.
  void count_response(std::size_t loop) noexcept {
    counters_[loop].responses.fetch_add(1, std::memory_order_relaxed);
  }

  // Recomputes the report from a monitor tick's: the loops' utilizations
  // (busy loop-seconds per second, summed), their statuses and the bounds
  // of its configuration. The first tick is the baseline of the response
  // rate: the header appears from the second on.
  void refresh(const TickReport& tick);

  // The header line (name, value, CRLF) in `requested` if a request asked
  // for a format (kOff: the default), or "" before the first window.
  std::shared_ptr<const std::string> header(OrcaFormat requested) const;

 private:
  struct alignas(64) Counter {
    std::atomic<std::uint64_t> responses{0};
  };
  const OrcaFormat default_format_;
  std::vector<Counter> counters_;
  // refresh() only.
  bool have_baseline_ = false;
  std::chrono::steady_clock::time_point last_time_;
  std::uint64_t last_responses_ = 0;

  // An absl::Mutex that ThreadSanitizer sees through (Debian's Abseil is
  // not instrumented).
  mutable loopscale::detail::Mutex mu_;
  std::shared_ptr<const std::string> text_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const std::string> json_ ABSL_GUARDED_BY(mu_);
};

}  // namespace loopscale::http

#endif  // LOOPSCALE_EXAMPLES_HTTP_SERVER_LOAD_REPORT_HPP_
