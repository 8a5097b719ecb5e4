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

#include <algorithm>
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
#include "request_sim.hpp"
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
ABSL_FLAG(bool, step, false,
          "the request-level model instead (request_sim.hpp): a load step on "
          "an idle pool of max_loops loops (demo.toml's unless --config), "
          "request by request, against each --step_server");
ABSL_FLAG(std::string, step_server, "today,before,plain",
          "--step: today (this library), before (77467a4: no fast up, moves "
          "only at boundaries), plain (a fixed pool)");
ABSL_FLAG(std::string, step_clients, "new,preconnect",
          "--step: new (connect with the step), preconnect (64 keep-alive "
          "connections made while the pool idled)");
ABSL_FLAG(double, step_rate, 320, "--step: requests per second after the step");
ABSL_FLAG(double, step_service_ms, 10, "--step: a request's handler time, ms");
ABSL_FLAG(int, step_rounds, 31,
          "--step: rounds, the step at evenly spread phases of a window");

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

// --step: each server x clients, the median over the rounds.
int run_step(loopscale::sim::StepOptions base) {
  using loopscale::sim::Clients;
  using loopscale::sim::Server;
  std::vector<Server> servers;
  for (absl::string_view name : absl::StrSplit(absl::GetFlag(FLAGS_step_server), ',',
                                               absl::SkipEmpty())) {
    auto s = loopscale::sim::parse_server(std::string(name));
    if (!s.ok()) return usage_error(std::string(s.status().message()));
    servers.push_back(*s);
  }
  std::vector<Clients> clients;
  for (absl::string_view name : absl::StrSplit(absl::GetFlag(FLAGS_step_clients), ',',
                                               absl::SkipEmpty())) {
    auto c = loopscale::sim::parse_clients(std::string(name));
    if (!c.ok()) return usage_error(std::string(c.status().message()));
    clients.push_back(*c);
  }
  const int rounds = absl::GetFlag(FLAGS_step_rounds);
  const double rate = absl::GetFlag(FLAGS_step_rate);
  const double service_ms = absl::GetFlag(FLAGS_step_service_ms);
  if (servers.empty() || clients.empty()) return usage_error("--step_server and --step_clients name none");
  if (rounds < 1 || rounds > 1000) return usage_error(absl::StrCat("--step_rounds=", rounds, ": must be in 1..1000"));
  if (!(rate > 0 && rate <= 1e6)) return usage_error(absl::StrCat("--step_rate=", rate, ": must be in (0, 1e6]"));
  if (!(service_ms > 0 && service_ms <= 1000)) {
    return usage_error(absl::StrCat("--step_service_ms=", service_ms, ": must be in (0, 1000]"));
  }
  base.rate = rate;
  base.service = service_ms / 1000;
  base.loops = base.config.max_loops;
  std::printf("step: %zu loops at most, window %.3gs, fast up every %.3gs; %g rps of %g ms "
              "for %g s after the pool idled; %d rounds\n",
              base.loops, std::chrono::duration<double>(base.config.window).count(),
              std::chrono::duration<double>(base.config.fast_up_interval).count(), rate,
              service_ms, base.duration, rounds);
  std::printf("%-7s %-10s %14s %21s %12s %6s %8s %6s  %s\n", "server", "clients",
              "p99 first 3 s", "(range of rounds)", "p99 run", "moves", "fast ups",
              "peak", "per-second p99 of the median round, ms");
  for (Server server : servers) {
    for (Clients c : clients) {
      loopscale::sim::StepOptions o = base;
      o.server = server;
      o.clients = c;
      const auto s = loopscale::sim::simulate_step_rounds(o, rounds);
      const auto& median = *std::find_if(s.rounds.begin(), s.rounds.end(), [&](const auto& r) {
        return r.p99_first == s.p99_first_median;
      });
      std::string seconds;
      for (double p : median.p99_per_second) absl::StrAppend(&seconds, absl::StrFormat(" %.0f", p * 1e3));
      std::printf("%-7s %-10s %11.1f ms  (%7.1f - %7.1f ms) %9.1f ms %6zu %8llu %6zu %s\n",
                  std::string(to_string(server)).c_str(), std::string(to_string(c)).c_str(),
                  s.p99_first_median * 1e3, s.p99_first_min * 1e3, s.p99_first_max * 1e3,
                  s.p99_run_median * 1e3, median.moves,
                  static_cast<unsigned long long>(median.fast_ups), median.peak_active,
                  seconds.c_str());
    }
  }
  return 0;
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

  if (absl::GetFlag(FLAGS_step)) {
    loopscale::sim::StepOptions step = loopscale::sim::default_step_options();
    if (const std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
      auto pool = loopscale::load_pool_options(path);
      if (!pool.ok()) return usage_error(std::string(pool.status().message()));
      step.config = pool->scaling;
    }
    return run_step(step);
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
