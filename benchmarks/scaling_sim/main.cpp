// scaling_sim: replays load traces through the scaling policies in virtual
// time and prints, per trace and policy, what the pool cost and how the load
// fared. See simulator.hpp for the model, trace.hpp for the traces.
//
//   scaling_sim --all                      # every trace x every policy,
//                                          # without and with noise
//   scaling_sim --trace step --policy target,per_loop
//   scaling_sim --csv load.csv --config examples/config/balanced.toml
//
// Exit status: 0 on success, 2 on a bad flag, trace, CSV or config file.

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "loopscale/config.hpp"
#include "simulator.hpp"
#include "trace.hpp"

ABSL_FLAG(bool, all, false,
          "every built-in trace x {netty, per_loop, average, target, oracle}, "
          "without noise and with --noise (0.05 if not given)");
ABSL_FLAG(std::string, trace, "step", "a built-in trace (see --list)");
ABSL_FLAG(std::string, csv, "", "replay a CSV of time_s,demand instead");
ABSL_FLAG(bool, list, false, "list the built-in traces and exit");
ABSL_FLAG(std::string, policy, "netty,per_loop,average,target,oracle",
          "comma-separated: netty, per_loop, average, target, oracle, or "
          "config (the --config file's signal as given)");
ABSL_FLAG(std::string, config, "",
          "a pool TOML file whose [scaling] table replaces the default "
          "model's (min 1, max 8, window 0.5 s, 0.25/0.75, patience 3)");
ABSL_FLAG(double, noise, -1,
          "standard deviation of the error on each window's utilization");
ABSL_FLAG(double, imbalance, 0, "share skew in [0, 1): even loops get 1+x");
ABSL_FLAG(std::uint64_t, seed, 1, "seed of the noise");
ABSL_FLAG(int, loops, 8, "executors in the pool");
ABSL_FLAG(bool, log, false, "print every scaling action under its row");

namespace {

using loopscale::sim::Policy;
using loopscale::sim::SimOptions;
using loopscale::sim::SimResult;
using loopscale::sim::Trace;

int usage_error(const std::string& message) {
  std::cerr << "scaling_sim: " << message << "\n";
  return 2;
}

std::string edges(const SimResult& r) {
  std::string out;
  auto show = [](int w) { return w < 0 ? std::string("-") : absl::StrCat(w); };
  for (const auto& e : r.edges) {
    absl::StrAppend(&out, out.empty() ? "" : " ",
                    e.after > e.before ? "up" : "dn", "@",
                    absl::StrFormat("%g", e.at), ":", show(e.first_reaction),
                    "/", show(e.needed_level));
  }
  return out.empty() ? "-" : out;
}

void print_header() {
  std::printf("%-16s %-9s %8s %6s %8s %7s %7s %7s %5s  %s\n", "trace",
              "policy", "loop-s", "ratio", "overload", "peak-q", "p99", "actions",
              "flaps", "edges (dir@s: 1st reaction/needed level, windows)");
}

void print_row(const SimResult& r) {
  std::printf("%-16s %-9s %8.1f %6.2f %7.1fs %7.2f %6.2fs %7d %5d  %s\n",
              r.trace.c_str(), std::string(to_string(r.policy)).c_str(),
              r.loop_seconds, r.ratio, r.overload_seconds, r.peak_queued,
              r.p99_delay, r.scale_actions, r.flaps, edges(r).c_str());
}

void run(const std::vector<Trace>& traces, const std::vector<Policy>& policies,
         const SimOptions& options) {
  print_header();
  for (const Trace& t : traces) {
    for (Policy p : policies) {
      const SimResult r = simulate(t, p, options);
      print_row(r);
      for (const std::string& line : r.log) std::printf("    %s\n", line.c_str());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "replays load traces through scaling policies in virtual time");
  absl::ParseCommandLine(argc, argv);

  if (absl::GetFlag(FLAGS_list)) {
    for (const Trace& t : loopscale::sim::builtin_traces()) {
      std::printf("%-16s %s\n", t.name.c_str(), t.description.c_str());
    }
    return 0;
  }

  SimOptions options = loopscale::sim::default_options();
  if (const std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
    auto pool = loopscale::load_pool_options(path);
    if (!pool.ok()) return usage_error(std::string(pool.status().message()));
    options.config = pool->scaling;
  }
  const int loops = absl::GetFlag(FLAGS_loops);
  if (loops < 1 || loops > 1024) {
    return usage_error(absl::StrCat("--loops=", loops, ": must be in 1..1024"));
  }
  options.loops = static_cast<std::size_t>(loops);
  const double imbalance = absl::GetFlag(FLAGS_imbalance);
  if (!(imbalance >= 0 && imbalance < 1)) {
    return usage_error(absl::StrCat("--imbalance=", imbalance,
                                    ": must be in [0, 1)"));
  }
  options.imbalance = imbalance;
  const double noise = absl::GetFlag(FLAGS_noise);
  if (noise != -1 && !(noise >= 0 && noise <= 1)) {
    return usage_error(absl::StrCat("--noise=", noise, ": must be in [0, 1]"));
  }
  options.seed = absl::GetFlag(FLAGS_seed);
  options.log = absl::GetFlag(FLAGS_log);

  std::vector<Policy> policies;
  for (absl::string_view name :
       absl::StrSplit(absl::GetFlag(FLAGS_policy), ',', absl::SkipEmpty())) {
    auto p = loopscale::sim::parse_policy(std::string(name));
    if (!p.ok()) return usage_error(std::string(p.status().message()));
    policies.push_back(*p);
  }
  if (policies.empty()) return usage_error("--policy names no policy");

  std::vector<Trace> traces;
  if (absl::GetFlag(FLAGS_all)) {
    traces = loopscale::sim::builtin_traces();
  } else if (const std::string csv = absl::GetFlag(FLAGS_csv); !csv.empty()) {
    auto t = loopscale::sim::load_csv_trace(csv);
    if (!t.ok()) return usage_error(std::string(t.status().message()));
    traces.push_back(*std::move(t));
  } else {
    auto t = loopscale::sim::find_trace(absl::GetFlag(FLAGS_trace));
    if (!t.ok()) return usage_error(std::string(t.status().message()));
    traces.push_back(*std::move(t));
  }

  options.noise = noise == -1 ? 0.0 : noise;
  const auto& c = options.config;
  std::printf(
      "model: %zu loops, min %zu, max %zu, window %.3gs, thresholds %.2f/%.2f, "
      "patience %zu, target %.2f, imbalance %.2f\n",
      options.loops, c.min_loops, c.max_loops,
      std::chrono::duration<double>(c.window).count(), c.scale_down_threshold,
      c.scale_up_threshold, c.patience_cycles, c.target_utilization,
      options.imbalance);
  std::printf("\nnoise %.2f\n", options.noise);
  run(traces, policies, options);
  if (absl::GetFlag(FLAGS_all)) {
    options.noise = noise == -1 ? 0.05 : noise;
    std::printf("\nnoise %.2f (seed %llu)\n", options.noise,
                static_cast<unsigned long long>(options.seed));
    run(traces, policies, options);
  }
  return 0;
}
