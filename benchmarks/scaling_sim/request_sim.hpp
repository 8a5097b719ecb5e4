// The request-level simulator: a load step on an idle pool, request by
// request, as `benchmarks/server_bench --only step` measures it on the real
// server. Where the fluid model (simulator.hpp) spreads demand over the
// active loops, this one keeps what a server has: requests queued on the
// connection they came on, connections bound to a loop, and the boundaries
// where a connection may move.
//
//   StepOptions o;                       // 320 rps of 10 ms on demo.toml's
//   o.config = pool->scaling;            // pool, new clients, today's library
//   StepResult r = simulate_step(o);
//   std::printf("%.0f ms\n", r.p99_first * 1e3);
//
// The model (request_loop.hpp has the loop):
//   * The pool idles at min_loops (the others suspended, the monitor's
//     lookback at that level) until the step at t = 0; then the client sends
//     `rate` requests per second at fixed intervals for `duration` seconds,
//     open loop, each taking `service` on the loop that serves it, plus
//     `overhead` (parsing, writing) and the client's `rtt`.
//   * Clients (loadgen's open loop): kNew takes the connection free longest,
//     or opens one; it waits in the listener's backlog until the listener's
//     loop accepts it (kBatch: up to 16 per turn; kOne: one per pass over the
//     loop's queue, as before f7039f8) and the chooser places it. kPreconnect
//     has `pool` connections, made while the pool idled (all on its one
//     loop), and takes a free one at random, or waits for one.
//   * The server (Server): its monitor and chooser are the library's,
//     ticked every window and checked for saturation every fast_up_interval
//     of the config. A connection claims a requested move at the boundary
//     after its answer, when interrupted while waiting, and (kShedReads)
//     when its read completes on a loop asked to shed: then its request is
//     served where it goes. A move costs `move_cost` on the loop it leaves
//     and goes to the least-loaded loop in rotation, only where that evens
//     the counts out (LoopPool::rebalance_target).
//   * kPlain: `loops` loops always running, connections placed round-robin
//     at accept, nothing moves (http_server --plain).
// Not modelled: CPU contention between the loops and the client (the
// handlers sleep), a thread's start-up when a loop wakes.
//
// Deterministic: the same options give the same result.

#ifndef LOOPSCALE_BENCHMARKS_SCALING_SIM_REQUEST_SIM_HPP_
#define LOOPSCALE_BENCHMARKS_SCALING_SIM_REQUEST_SIM_HPP_

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "loopscale/config.hpp"

namespace loopscale::sim {

enum class Clients {
  kNew,         // connect with the step (loadgen --mode open)
  kPreconnect,  // keep-alive, connected before it (--preconnect)
};

// Which server the step runs against.
enum class Server {
  kToday,   // fast up as configured, reads shed, the listener's batches
  kBefore,  // 77467a4, before issue 30: no fast up, moves only at a
            // connection's boundary or while it waits, one accept per pass
  kPlain,   // http_server --plain: a fixed pool, nothing moves
};

// "new", "preconnect"; "today", "before", "plain".
std::string_view to_string(Clients clients);
std::string_view to_string(Server server);
absl::StatusOr<Clients> parse_clients(std::string_view name);
absl::StatusOr<Server> parse_server(std::string_view name);

struct StepOptions {
  // The pool's scaling keys (examples/config/demo.toml's by default).
  ScalingConfig config;
  // Loops in the pool (max_loops bounds the active ones); kPlain's count.
  std::size_t loops = 4;
  Server server = Server::kToday;
  Clients clients = Clients::kNew;
  // Requests per second after the step, and for how long, seconds.
  double rate = 320;
  double duration = 8;
  // A request's handler time, and what parsing and writing add, seconds.
  double service = 0.010;
  double overhead = 0.00005;
  // The client's round trip (loopback, two processes).
  double rtt = 0.0001;
  // kPreconnect: connections in the client's pool.
  std::size_t pool = 64;
  // What a move costs the loop it leaves (benchmarks/loop_bench: ~18 us),
  // an accept, and a short handler (an interruption, a probe).
  double move_cost = 0.000018;
  double accept_cost = 0.00001;
  double short_cost = 0.000002;
  // Where in its window the step falls, in [0, 1) of a window.
  double phase = 0.0;
  std::uint64_t seed = 1;
};

// demo.toml's pool, 320 rps of 10 ms: the step.
StepOptions default_step_options();

struct StepResult {
  // Latencies (seconds), as the client sees them, by send time.
  double p99_first = 0.0;  // requests sent in the first 3 s
  double p99_run = 0.0;    // the whole run
  std::vector<double> p99_per_second;
  std::size_t requests = 0;
  std::size_t moves = 0;
  std::uint64_t fast_ups = 0;
  std::uint64_t scale_ups = 0;
  // Most loops active at once.
  std::size_t peak_active = 0;
};

// Seconds in which p99_first is measured.
inline constexpr double kFirstSeconds = 3.0;

StepResult simulate_step(const StepOptions& options);

// The step from `rounds` phases spread over a window (and seeds), as
// server_bench repeats its rounds: the median of their p99s, and the range.
struct StepSummary {
  double p99_first_median = 0.0;
  double p99_first_min = 0.0;
  double p99_first_max = 0.0;
  double p99_run_median = 0.0;
  std::vector<StepResult> rounds;
};
StepSummary simulate_step_rounds(StepOptions options, int rounds);

}  // namespace loopscale::sim

#endif  // LOOPSCALE_BENCHMARKS_SCALING_SIM_REQUEST_SIM_HPP_
