#include "loopscale/prometheus.hpp"

#include <unistd.h>

#include <cmath>
#include <initializer_list>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "loopscale/loop_pool.hpp"
#include "loopscale/loop_state.hpp"
#include "loopscale/shm/figures.hpp"
#include "loopscale/version.hpp"

namespace loopscale::prometheus {
namespace {

// Abseil's string functions take absl::string_view, which this Abseil build
// does not alias to std::string_view.
absl::string_view sv(std::string_view s) { return {s.data(), s.size()}; }

// The families without a schema row of their own: the services' totals,
// liveness, the one-hot state and the job types. The pools' and loops'
// families are the schema's rows (`schema_families()`).
constexpr FamilySpec kServiceProcesses{"loopscale_service_processes", "gauge",
                                       "Live processes publishing pools of the service."};
constexpr FamilySpec kServiceLoops{"loopscale_service_loops", "gauge",
                                   "Loops of the service."};
constexpr FamilySpec kServiceActiveLoops{"loopscale_service_active_loops", "gauge",
                                         "Loops of the service taking new work."};
constexpr FamilySpec kServiceUtilization{
    "loopscale_service_utilization_ratio", "gauge",
    "Mean loop utilization of the service in the last window (0 to 1)."};
constexpr FamilySpec kServiceConnectionsActive{"loopscale_service_connections_active",
                                               "gauge",
                                               "Connections open on the service's loops."};
constexpr FamilySpec kServiceConnectionsTotal{
    "loopscale_service_connections_total", "counter",
    "Connections the service's loops ever took (registrations less moves in)."};
constexpr FamilySpec kPoolLoops{"loopscale_pool_loops", "gauge",
                                "Loops of the pool by state; their sum is the pool's size."};
constexpr FamilySpec kBuildInfo{
    "loopscale_build_info", "gauge",
    "1, labelled with the loopscale version and shared-memory format in use."};
constexpr FamilySpec kPoolStale{"loopscale_pool_stale", "gauge",
                                "1 if the pool's process has died (its slots can be reclaimed)."};
constexpr FamilySpec kLoopState{"loopscale_loop_state", "gauge",
                                "1 for the loop's current state."};
// Job types (loopscale/job_type.hpp): labelled `job`, "other" for the busy
// time no job claimed; a loop's job busy times add up to its busy time.
constexpr FamilySpec kLoopJobBusy{"loopscale_loop_job_busy_seconds_total", "counter",
                                  "Time the loop spent in each job type (job=\"other\": in none)."};
constexpr FamilySpec kLoopJobs{"loopscale_loop_jobs_total", "counter",
                               "Times the loop entered each job type."};
constexpr FamilySpec kServiceJobBusy{"loopscale_service_job_busy_seconds_total", "counter",
                                     "Time the service's loops spent in each job type."};
constexpr FamilySpec kServiceJobs{"loopscale_service_jobs_total", "counter",
                                  "Times the service's loops entered each job type."};

// The families of the exported rows of one record of the schema, in schema
// order (rows sharing a name share a family).
struct SchemaFamilies {
  std::vector<const shm::FieldSpec*> rows;
  std::vector<std::size_t> family_of;  // per row, an index into families
  std::vector<Family> families;

  explicit SchemaFamilies(shm::Record record) {
    for (const shm::FieldSpec& f : shm::kSchema) {
      if (f.record != record || f.prometheus.name.empty()) continue;
      std::size_t k = 0;
      while (k < families.size() && families[k].name() != f.prometheus.name) ++k;
      if (k == families.size()) families.emplace_back(f.prometheus);
      rows.push_back(&f);
      family_of.push_back(k);
    }
  }
  // A sample of every row whose figure `figures` holds (a file of an older
  // format may lack some).
  void add(const std::vector<shm::Figure>& figures, const std::string& labels) {
    for (std::size_t k = 0; k < rows.size(); ++k) {
      for (const shm::Figure& f : figures) {
        if (f.name != rows[k]->name) continue;
        families[family_of[k]].add(rows[k]->prometheus, labels, f.as_double());
        break;
      }
    }
  }
  void append_to(std::string& out) const {
    for (const Family& f : families) f.append_to(out);
  }
};

const shm::Figure* find_figure(const std::vector<shm::Figure>& figures,
                               std::string_view name) {
  for (const shm::Figure& f : figures) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// A job's samples: its busy seconds and its count.
void add_jobs(Family& busy, Family& count, const std::string& labels,
              const std::vector<shm::JobSnapshot>& jobs) {
  for (const shm::JobSnapshot& j : jobs) {
    const std::string jl = absl::StrCat(labels, ",job=\"", label_value(j.name), "\"");
    busy.add(jl, static_cast<double>(j.busy_ns) * 1e-9);
    count.add(jl, static_cast<double>(j.count));
  }
}

std::string build_info() {
  Family info(kBuildInfo);
  info.add(absl::StrCat("version=\"", label_value(kVersion), "\",shm_format=\"",
                        shm::kVersionMajor, ".", shm::kVersionMinor, "\""),
           1);
  std::string out;
  info.append_to(out);
  return out;
}

// The services' families.
std::string services(const std::vector<shm::ServiceSnapshot>& services) {
  Family procs(kServiceProcesses), loops(kServiceLoops), active(kServiceActiveLoops),
      util(kServiceUtilization), conns(kServiceConnectionsActive),
      conns_total(kServiceConnectionsTotal), job_busy(kServiceJobBusy), jobs(kServiceJobs);
  for (const shm::ServiceSnapshot& s : services) {
    const std::string labels = absl::StrCat("service=\"", label_value(s.name), "\"");
    procs.add(labels, static_cast<double>(s.processes));
    loops.add(labels, static_cast<double>(s.loops));
    active.add(labels, static_cast<double>(s.active_loops));
    util.add(labels, s.utilization);
    if (const shm::Figure* open = find_figure(s.figures, "registrations")) {
      conns.add(labels, open->as_double());
    }
    // Format 1.3 on: a connection that moved was registered twice.
    const shm::Figure* made = find_figure(s.figures, "registrations_total");
    const shm::Figure* moved_in = find_figure(s.figures, "moves_in");
    if (made != nullptr && moved_in != nullptr) {
      conns_total.add(labels, made->as_double() - moved_in->as_double());
    }
    add_jobs(job_busy, jobs, labels, s.jobs);
  }
  std::string out;
  for (const Family* f : {&procs, &loops, &active, &util, &conns, &conns_total, &job_busy, &jobs}) {
    f->append_to(out);
  }
  return out;
}

// One sample per loop state: `count(state)`.
template <class Count>
void add_states(Family& family, const std::string& labels, Count count) {
  for (LoopState s : kLoopStates) {
    const std::string_view state = to_string(s);
    family.add(absl::StrCat(labels, ",state=\"", sv(state), "\""),
               static_cast<double>(count(state)));
  }
}

// The pools' and loops' families.
std::string processes(const std::vector<shm::ProcessSnapshot>& processes) {
  Family stale(kPoolStale), pool_loops(kPoolLoops), loop_state(kLoopState),
      job_busy(kLoopJobBusy), jobs(kLoopJobs);
  SchemaFamilies pool_rows(shm::Record::kSegment), loop_rows(shm::Record::kLoop);
  for (const shm::ProcessSnapshot& p : processes) {
    const std::string labels =
        absl::StrCat("service=\"", label_value(p.service), "\",pid=\"", p.pid, "\",pool=\"",
                     label_value(p.pool), "\"");
    stale.add(labels, p.stale ? 1 : 0);
    if (p.stale || !p.consistent) continue;
    pool_rows.add(p.figures, labels);
    add_states(pool_loops, labels, [&](std::string_view state) {
      std::size_t n = 0;
      for (const shm::LoopSnapshot& l : p.loops) n += l.state_name == state ? 1 : 0;
      return n;
    });
    for (const shm::LoopSnapshot& l : p.loops) {
      const std::string ll = absl::StrCat(labels, ",loop=\"", l.index, "\"");
      add_states(loop_state, ll,
                 [&](std::string_view state) { return l.state_name == state ? 1 : 0; });
      loop_rows.add(l.figures, ll);
      add_jobs(job_busy, jobs, ll, l.jobs);
    }
  }
  std::string out;
  stale.append_to(out);
  pool_loops.append_to(out);
  pool_rows.append_to(out);
  loop_state.append_to(out);
  loop_rows.append_to(out);
  job_busy.append_to(out);
  jobs.append_to(out);
  return out;
}

}  // namespace

std::string render(const shm::Snapshot& snapshot) {
  return absl::StrCat(build_info(), services(snapshot.services),
                      processes(snapshot.processes));
}

std::string render(const LoopPool& pool) {
  const PoolOptions& o = pool.options();
  const std::string& service = o.metrics.service.empty() ? o.name : o.metrics.service;
  return render(shm::snapshot_of(pool.stats(), service, static_cast<std::uint64_t>(getpid())));
}

std::string label_value(std::string_view s) {
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

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return absl::StrFormat("%.17g", v);
}

Family::Family(const FamilySpec& spec) : name_(spec.name), type_(spec.type), help_(spec.help) {}

Family::Family(const shm::Export& e) : name_(e.name), type_(e.type), help_(e.help) {}

void Family::add(std::string_view labels, double value) { sample(name_, labels, value); }

void Family::add(const shm::Export& row, std::string_view labels, double value) {
  std::string all(labels);
  if (!row.labels.empty()) absl::StrAppend(&all, all.empty() ? "" : ",", sv(row.labels));
  if (type_ == "histogram" && row.suffix == "_count") {
    // The +Inf bucket is the count.
    sample(absl::StrCat(name_, "_bucket"),
           absl::StrCat(all, all.empty() ? "" : ",", "le=\"+Inf\""), value);
  }
  sample(absl::StrCat(name_, sv(row.suffix)), all, value * row.scale);
}

void Family::append_to(std::string& out) const {
  if (samples_.empty()) return;
  absl::StrAppend(&out, "# HELP ", name_, " ", help_, "\n# TYPE ", name_, " ", type_, "\n",
                  samples_);
}

void Family::sample(std::string_view name, std::string_view labels, double value) {
  absl::StrAppend(&samples_, sv(name), labels.empty() ? "" : "{", sv(labels),
                  labels.empty() ? "" : "}", " ", number(value), "\n");
}

}  // namespace loopscale::prometheus
