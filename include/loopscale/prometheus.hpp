// -----------------------------------------------------------------------------
// prometheus.hpp
// -----------------------------------------------------------------------------
//
// The `loopscale_*` figures in the Prometheus text exposition format
// (version 0.0.4): one renderer for every place that serves them, a
// server's /metrics, `loopscale-top --format prometheus` (node_exporter's
// textfile collector) and a user's own server on the pool.
//
//   // /metrics of a server on a LoopPool:
//   std::string body = loopscale::prometheus::render(*pool);
//
//   // The families of every process publishing to a shared-memory file:
//   auto snap = reader.snapshot();
//   if (snap.ok()) body = loopscale::prometheus::render(*snap);
//
// Both go through one input type, `shm::Snapshot` (shm/reader.hpp): a live
// pool's statistics are turned into a one-process snapshot
// (`shm::snapshot_of`), so the two outputs have the same families, labels
// (`service`, `pid`, `pool`, `loop`, and `state` or `job` where they apply)
// and help text. The pool's and loops' families come from the shared-memory
// schema's rows (`shm::Export` in shm/layout.hpp); the few without a row
// (service totals, liveness, the one-hot state, job types) are defined in
// lib/prometheus.cpp. docs/operations.md lists them all.
//
// A server adds families of its own with `Family` and appends them to the
// body; `Family` writes HELP and TYPE once and escapes nothing itself:
// labels go through `label_value`.
//
//   loopscale::prometheus::Family requests(loopscale::prometheus::FamilySpec{
//       "myserver_requests_total", "counter", "Requests answered."});
//   requests.add("code=\"200\"", ok_count);
//   requests.append_to(body);
//
// Thread-safety: free functions are pure; a `Family` is a plain value.

#ifndef LOOPSCALE_PROMETHEUS_HPP_
#define LOOPSCALE_PROMETHEUS_HPP_

#include <string>
#include <string_view>

#include "loopscale/shm/layout.hpp"
#include "loopscale/shm/reader.hpp"

namespace loopscale {
class LoopPool;
}

namespace loopscale::prometheus {

// Every family of `snapshot`: `loopscale_build_info`, then the services',
// the pools' and the loops' figures. A stale or inconsistent process shows
// only its `loopscale_pool_stale`.
std::string render(const shm::Snapshot& snapshot);

// Every family of `pool`'s figures now, as `render(shm::snapshot_of(...))`
// with this process's pid and the pool's service (`metrics.service`, or the
// pool's name).
std::string render(const LoopPool& pool);

// Escapes a label value: backslash, double quote and newline.
std::string label_value(std::string_view s);

// A sample value: 17 significant digits, NaN, +Inf or -Inf.
std::string number(double v);

// A metric family's name, type ("counter", "gauge", "histogram") and help.
struct FamilySpec {
  std::string_view name, type, help;
};

// Collects the samples of one metric family, then prints HELP and TYPE once
// (the format wants a family's samples together).
class Family {
 public:
  explicit Family(const FamilySpec& spec);
  // A schema row's family (shm/layout.hpp).
  explicit Family(const shm::Export& e);

  std::string_view name() const { return name_; }
  // Adds a sample; `labels` is `name="value",...` with values escaped by
  // `label_value`, or empty.
  void add(std::string_view labels, double value);
  // Adds a schema row's sample: the row's scale, name suffix and labels (a
  // histogram's `_count` row also writes the `+Inf` bucket).
  void add(const shm::Export& row, std::string_view labels, double value);
  // Appends HELP, TYPE and the samples to `out`; nothing if none was added.
  void append_to(std::string& out) const;

 private:
  void sample(std::string_view name, std::string_view labels, double value);

  std::string name_, type_, help_, samples_;
};

}  // namespace loopscale::prometheus

#endif  // LOOPSCALE_PROMETHEUS_HPP_
