#include "load_report.hpp"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace loopscale::http {
namespace {

double finite_or_zero(double v) { return std::isfinite(v) && v > 0 ? v : 0.0; }

// Six significant digits: more than a balancer's weights need.
std::string number(double v) { return absl::StrFormat("%.6g", v); }

}  // namespace

absl::StatusOr<OrcaFormat> parse_orca_format(std::string_view s) {
  const std::string lower = absl::AsciiStrToLower(absl::string_view(s.data(), s.size()));
  if (lower == "text") return OrcaFormat::kText;
  if (lower == "json") return OrcaFormat::kJson;
  if (lower == "off") return OrcaFormat::kOff;
  return absl::InvalidArgumentError(
      absl::StrCat("\"", absl::string_view(s.data(), s.size()),
                   "\" is not an ORCA format: expected text, json or off"));
}

std::string format_orca(const OrcaValues& v, OrcaFormat format) {
  const std::string util = number(finite_or_zero(v.application_utilization));
  const std::string rps = number(std::max(finite_or_zero(v.rps_fractional), kMinRps));
  if (format == OrcaFormat::kJson) {
    return absl::StrCat("JSON {\"application_utilization\":", util,
                        ",\"rps_fractional\":", rps,
                        ",\"named_metrics\":{\"active_loops\":", v.active_loops,
                        ",\"max_loops\":", v.max_loops, "}}");
  }
  return absl::StrCat("TEXT application_utilization=", util, ",rps_fractional=", rps,
                      ",named_metrics.active_loops=", v.active_loops,
                      ",named_metrics.max_loops=", v.max_loops);
}

LoadReport::LoadReport(std::size_t loops, OrcaFormat format)
    : default_format_(format == OrcaFormat::kOff ? OrcaFormat::kText : format),
      counters_(loops) {}

void LoadReport::refresh(const TickReport& tick) {
  std::uint64_t responses = 0;
  for (const Counter& c : counters_) responses += c.responses.load(std::memory_order_relaxed);
  const bool first = !have_baseline_;
  const double seconds = std::chrono::duration<double>(tick.event.at - last_time_).count();
  const std::uint64_t answered = responses - last_responses_;
  have_baseline_ = true;
  last_time_ = tick.event.at;
  last_responses_ = responses;
  if (first || !(seconds > 0)) return;
  const MonitorStats& m = tick.stats;
  double busy = 0;  // loop-seconds per second
  for (double u : m.utilizations) busy += u;
  const std::size_t max_loops = active_bounds(m.config, m.utilizations.size()).max;
  OrcaValues v;
  v.application_utilization = max_loops == 0 ? 0 : busy / static_cast<double>(max_loops);
  v.rps_fractional = static_cast<double>(answered) / seconds;
  v.active_loops = static_cast<std::uint64_t>(
      std::count(m.statuses.begin(), m.statuses.end(), ExecutorStatus::kActive));
  v.max_loops = max_loops;
  auto text = std::make_shared<const std::string>(
      absl::StrCat("endpoint-load-metrics: ", format_orca(v, OrcaFormat::kText), "\r\n"));
  auto json = std::make_shared<const std::string>(
      absl::StrCat("endpoint-load-metrics: ", format_orca(v, OrcaFormat::kJson), "\r\n"));
  loopscale::detail::MutexLock lock(mu_);
  text_ = std::move(text);
  json_ = std::move(json);
}

std::shared_ptr<const std::string> LoadReport::header(OrcaFormat requested) const {
  const OrcaFormat f = requested == OrcaFormat::kOff ? default_format_ : requested;
  loopscale::detail::MutexLock lock(mu_);
  return f == OrcaFormat::kJson ? json_ : text_;
}

}  // namespace loopscale::http
