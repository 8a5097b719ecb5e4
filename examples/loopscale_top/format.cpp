#include "format.hpp"

#include <algorithm>
#include <cmath>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "loopscale/loop_state.hpp"

namespace loopscale::top {
namespace {

// ---- JSON ----------------------------------------------------------------

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// Doubles round-trip with 17 digits; NaN and infinities (a corrupt file can
// hold them) are not JSON numbers.
std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.17g", v);
}

std::string json_figure(const shm::Figure& f) {
  return absl::StrCat(json_string(f.name), ": ",
                      f.is_float ? json_number(f.f) : absl::StrCat(f.u));
}

// Seconds since a heartbeat, or null if none was written yet.
std::string heartbeat_age(std::uint64_t heartbeat_ns, std::uint64_t now_ns) {
  if (heartbeat_ns == 0 || heartbeat_ns > now_ns) return "null";
  return json_number(static_cast<double>(now_ns - heartbeat_ns) / 1e9);
}

// The figure named `name` among `figures`, or nullptr (a file of an older
// format lacks it).
const shm::Figure* find_figure(const std::vector<shm::Figure>& figures,
                               std::string_view name) {
  for (const shm::Figure& f : figures) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// {"other": {"busy_ns": N, "count": N}, ...}
std::string json_jobs(const std::vector<shm::JobSnapshot>& jobs) {
  std::string out = "{";
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    absl::StrAppend(&out, i ? ", " : "", json_string(jobs[i].name), ": {\"busy_ns\": ",
                    jobs[i].busy_ns, ", \"count\": ", jobs[i].count, "}");
  }
  return out + "}";
}

// ---- table --------------------------------------------------------------------

std::string bar(double u, int width) {
  const double clamped = std::clamp(std::isfinite(u) ? u : 0.0, 0.0, 1.0);
  const int filled = static_cast<int>(std::lround(clamped * width));
  return absl::StrCat("[", std::string(filled, '#'),
                      std::string(width - filled, '.'), "]");
}

std::string seconds(std::uint64_t ns) {
  return absl::StrFormat("%.1fs", static_cast<double>(ns) / 1e9);
}

std::string cut(std::string_view s, std::size_t width) {
  return std::string(s.substr(0, width));
}

// "work 62.0% (10)  parse 3.1% (10)  other 34.9%": each job's share of the
// busy time since the loops started, busiest first, and its count.
std::string job_breakdown(std::vector<shm::JobSnapshot> jobs) {
  std::uint64_t busy = 0;
  for (const shm::JobSnapshot& j : jobs) busy += j.busy_ns;
  std::stable_sort(jobs.begin(), jobs.end(),
                   [](const auto& a, const auto& b) { return a.busy_ns > b.busy_ns; });
  std::string out;
  for (const shm::JobSnapshot& j : jobs) {
    const double share = busy == 0 ? 0.0 : 100.0 * static_cast<double>(j.busy_ns) /
                                                 static_cast<double>(busy);
    absl::StrAppendFormat(&out, "%s%s %.1f%%", out.empty() ? "" : "  ", j.name, share);
    if (j.name != kOtherJobName) absl::StrAppendFormat(&out, " (%u)", j.count);
  }
  return out;
}

}  // namespace

std::string format_json(const shm::Snapshot& snap, std::uint64_t now_ns) {
  std::string out = absl::StrCat("{\"version\": \"", snap.version_major, ".",
                                 snap.version_minor, "\", \"services\": [");
  for (std::size_t i = 0; i < snap.services.size(); ++i) {
    const shm::ServiceSnapshot& s = snap.services[i];
    absl::StrAppend(&out, i ? ", " : "", "{\"name\": ", json_string(s.name),
                    ", \"processes\": ", s.processes, ", \"pools\": ", s.pools);
    for (const shm::Figure& f : s.figures) absl::StrAppend(&out, ", ", json_figure(f));
    absl::StrAppend(&out, ", \"jobs\": ", json_jobs(s.jobs), "}");
  }
  out += "], \"processes\": [";
  for (std::size_t i = 0; i < snap.processes.size(); ++i) {
    const shm::ProcessSnapshot& p = snap.processes[i];
    absl::StrAppend(
        &out, i ? ", " : "", "{\"pid\": ", p.pid, ", \"service\": ",
        json_string(p.service), ", \"pool\": ", json_string(p.pool),
        ", \"stale\": ", p.stale ? "true" : "false", ", \"stale_reason\": ",
        json_string(p.stale_reason), ", \"consistent\": ",
        p.consistent ? "true" : "false", ", \"heartbeat_age_s\": ",
        heartbeat_age(p.heartbeat_ns, now_ns), ", \"last_decision\": ",
        json_string(p.last_decision));
    for (const shm::Figure& f : p.figures) absl::StrAppend(&out, ", ", json_figure(f));
    absl::StrAppend(&out, ", \"jobs\": ", json_jobs(p.jobs));
    out += ", \"loops\": [";
    for (std::size_t j = 0; j < p.loops.size(); ++j) {
      const shm::LoopSnapshot& l = p.loops[j];
      absl::StrAppend(&out, j ? ", " : "", "{\"state\": ", json_string(l.state_name));
      for (const shm::Figure& f : l.figures) {
        // The state is given by name above; its number would repeat the key.
        if (f.name != "state") absl::StrAppend(&out, ", ", json_figure(f));
      }
      absl::StrAppend(&out, ", \"jobs\": ", json_jobs(l.jobs), "}");
    }
    out += "]}";
  }
  out += "]}\n";
  return out;
}

std::string format_table(const shm::Snapshot& snap, const std::string& path,
                         std::uint64_t now_ns, bool jobs_per_loop) {
  std::string out = absl::StrFormat(
      "loopscale-top  %s  format %u.%u  %zu services, %zu pools\n\n", path,
      snap.version_major, snap.version_minor, snap.services.size(),
      snap.processes.size());
  absl::StrAppendFormat(&out, "%-20s %5s %5s %6s %6s %7s\n", "SERVICE", "PROCS",
                        "POOLS", "LOOPS", "ACTIVE", "UTIL");
  for (const shm::ServiceSnapshot& s : snap.services) {
    absl::StrAppendFormat(&out, "%-20s %5zu %5zu %6u %6u %6.1f%%\n",
                          cut(s.name, 20), s.processes, s.pools, s.loops,
                          s.active_loops, 100.0 * s.utilization);
    if (s.jobs.size() > 1) absl::StrAppend(&out, "  busy with: ", job_breakdown(s.jobs), "\n");
  }
  for (const shm::ProcessSnapshot& p : snap.processes) {
    absl::StrAppendFormat(&out, "\npid %u  %s / %s", p.pid, p.service, p.pool);
    if (p.stale) {
      absl::StrAppendFormat(&out, "  STALE: %s\n", p.stale_reason);
      continue;
    }
    if (!p.consistent) {
      out += "  (being written; figures unavailable)\n";
      continue;
    }
    const std::string age =
        p.heartbeat_ns == 0 || p.heartbeat_ns > now_ns
            ? std::string("-")
            : absl::StrFormat("%.1fs",
                              static_cast<double>(now_ns - p.heartbeat_ns) / 1e9);
    absl::StrAppendFormat(&out,
                          "  active %u (min %u, max %u)  ups %u  downs %u  "
                          "moves asked %u  heartbeat %s ago\n",
                          p.active_loops, p.min_loops, p.max_loops, p.scale_ups,
                          p.scale_downs, p.moves_requested, age);
    if (!p.last_decision.empty()) {
      absl::StrAppendFormat(&out, "  last: %s\n", cut(p.last_decision, 100));
    }
    // Format 1.5 on, and only once the pool has ever shed.
    const shm::Figure* level = find_figure(p.figures, "overload_level");
    const shm::Figure* refused = find_figure(p.figures, "overload_refused");
    if (level != nullptr && refused != nullptr && (level->f > 0 || refused->u > 0)) {
      absl::StrAppendFormat(&out, "  overload: level %.2f, %u requests refused\n", level->f,
                            refused->u);
    }
    absl::StrAppendFormat(&out, "  %4s %-10s %-22s %6s %10s %12s %6s %8s %6s %6s\n",
                          "LOOP", "STATE", "UTILIZATION", "", "BUSY", "HANDLERS",
                          "CONNS", "LAG", "IN", "OUT");
    for (const shm::LoopSnapshot& l : p.loops) {
      absl::StrAppendFormat(&out,
                            "  %4u %-10s %-22s %5.1f%% %10s %12u %6u %6.1fms %6u %6u\n",
                            l.index, l.state_name, bar(l.utilization, 20),
                            100.0 * l.utilization, seconds(l.busy_ns), l.handlers,
                            l.registrations,
                            static_cast<double>(l.scheduling_lag_ns) / 1e6, l.moves_in,
                            l.moves_out);
      if (jobs_per_loop && l.jobs.size() > 1) {
        absl::StrAppend(&out, "       busy with: ", job_breakdown(l.jobs), "\n");
      }
    }
  }
  return out;
}

}  // namespace loopscale::top
