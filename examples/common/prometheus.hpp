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

// Collects the samples of one metric family, then prints HELP and TYPE once
// (the format wants a family's samples together).
class Family {
 public:
  Family(std::string name, std::string type, std::string help)
      : name_(std::move(name)), type_(std::move(type)), help_(std::move(help)) {}
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
