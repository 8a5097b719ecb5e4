// -----------------------------------------------------------------------------
// config.hpp
// -----------------------------------------------------------------------------
//
// The knobs of a pool: how it scales (`ScalingConfig`), where it publishes its
// figures (`MetricsConfig`), and both together with the pool's name
// (`PoolOptions`). Every field has a working default, so `PoolOptions{}` is a
// valid pool of one loop per CPU.
//
//   auto options = loopscale::load_pool_options("/etc/myserver/pool.toml");
//   if (!options.ok()) { std::cerr << options.status() << "\n"; return 1; }
//   auto pool = loopscale::LoopPool::create(*std::move(options));
//
// The TOML form (every key optional; `examples/config/pool.toml` documents
// each one):
//
//   [pool]
//   name = "api"
//   [scaling]
//   min_loops = 1
//   max_loops = 8                 # 0 = one per CPU (LoopPool)
//   window = "500ms"              # a duration: "250ms", "1s", "1.5s", "2m"
//   scale_down_threshold = 0.25
//   scale_up_threshold = 0.75
//   patience_cycles = 3
//   max_ramp_up_step = 0          # 0 = no limit
//   max_ramp_down_step = 1
//   scale_down_cooldown_cycles = 2
//   signal = "target"             # or "per_loop", "average"
//   target_utilization = 0.7      # signal = "target" only
//   drain_connected_loops = true
//   rebalance_connections = true  # move connections where the pool wants them
//   max_moves_per_window = 64     # per loop
//   fast_up_interval = "20ms"     # saturation checks between windows; "0s" = off
//   [overload]                    # when the pool is full (loopscale/overload.hpp)
//   enabled = false
//   lag_target = "5ms"            # the queueing delay admitted work should see
//   utilization_start = 0.95      # the active loops' mean utilization to shed at
//   max_shed = 0.95               # the largest share of requests refused
//   keepalive_off_at = 1          # answers close their connection from this level
//   pause_accepting_at = 1        # listeners stop accepting from this level
//   [metrics]
//   enabled = false
//   shm_path = "/dev/shm/loopscale"
//   service = "api"
//   file_mode = 0o600             # when this process creates the file
//
// Errors: `validate()` and the TOML readers return `InvalidArgument` with a
// message that names the field and the offending value, and for TOML the line
// ("scaling.patience_cycles = 0: must be at least 1 (line 7)"). An unknown
// table or key is an error too: a misspelt knob must not be silently ignored.
//
// Thread-safety: these are plain values; the functions are pure and may be
// called from any thread.

#ifndef LOOPSCALE_CONFIG_HPP_
#define LOOPSCALE_CONFIG_HPP_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace loopscale {

// What the scale-up rule looks at.
enum class ScaleSignal {
  // Each loop votes on its own utilization; loops busy for `patience_cycles`
  // windows each add one loop. Reacts to one hot loop.
  kPerLoop,
  // The mean utilization of the active loops; when it stays above the
  // threshold, the pool grows to ceil(sum of utilizations / threshold) loops.
  // Ignores imbalance; sizes a step by demand.
  kAverage,
  // The default. A target controller: estimates the demand in loops' worth
  // of work (the sum of utilizations, with saturated loops weighted up by
  // what their scheduling lag shows queued) and sizes the active set to run
  // at `target_utilization`. It grows at once when a loop saturates, after
  // `patience_cycles` windows of mean utilization above
  // `scale_up_threshold` otherwise, and shrinks once fewer loops would have
  // done for 2 x `patience_cycles` windows. See scaling_policy.hpp and the
  // tuning guide in docs/scaling.md (benchmarks/scaling_sim measures it).
  kTarget,
};

// Returns "per_loop", "average" or "target".
std::string_view to_string(ScaleSignal signal) noexcept;

// What the pool does when it cannot grow any more (loopscale/overload.hpp,
// docs/operations.md "Overload"): past `max_loops`, with its active loops
// saturated, the monitor raises an overload level (0 to 1) that holds the
// queueing delay near `lag_target`; servers refuse that share of requests
// (`Admission::admit`, e.g. with 503), answer with `Connection: close` from
// `keepalive_off_at`, and listeners stop accepting from
// `pause_accepting_at`. Scale first, shed last: the level is 0 while the
// pool can still grow.
struct OverloadConfig {
  // Off by default: a library should not start refusing requests because it
  // was upgraded. With it off the level stays 0 (`Admission::inject` still
  // works, for tests).
  bool enabled = false;
  // The scheduling lag (mean over the active loops) the level is adjusted
  // to hold: the queueing delay admitted requests see at the bound. Between
  // kMinOverloadLagTarget and kMaxWindow.
  std::chrono::nanoseconds lag_target = std::chrono::milliseconds(5);
  // The active loops' mean utilization below which the level does not rise,
  // whatever the lag: a lag without busy loops (one hot loop among idle
  // ones, envoyproxy/envoy#22495) is for rebalancing, not shedding; nor is
  // the lag of a pool busy below its capacity (at 0.8 of it the demo's
  // loops wait about 4 ms). In [0, 1].
  double utilization_start = 0.95;
  // The largest share of requests refused, in [0, 1]: some always get
  // through, so the level can see the load fall.
  double max_shed = 0.95;
  // From this level on, answers close their connection (clients reconnect,
  // maybe to a less loaded replica behind a balancer), and idle connections
  // time out sooner (`Admission::idle_timeout`). In [0, 1]; above
  // `max_shed`, never (the default: a lone server only trades requests
  // for reconnections through its accept loop).
  double keepalive_off_at = 1.0;
  // From this level on, listeners stop accepting: new connections wait in
  // the kernel's listen backlog (worth it where a connection is costly, a
  // TLS handshake, say). In [0, 1]; above `max_shed`, never (the default).
  double pause_accepting_at = 1.0;

  friend bool operator==(const OverloadConfig&, const OverloadConfig&) = default;
};

// The shortest `lag_target`: a loop's lag probe is itself a handler, and
// below a millisecond its noise is the signal.
inline constexpr std::chrono::nanoseconds kMinOverloadLagTarget = std::chrono::milliseconds(1);

// How a chooser and its monitor scale. The semantics of each field are in
// docs/scaling.md ("The rules", "Configuration reference") and
// scaling_policy.hpp.
struct ScalingConfig {
  // Fewest active loops. 0 is allowed: `next()` then wakes a loop on demand.
  std::size_t min_loops = 1;
  // Most active loops. 0 = one per CPU in `LoopPool`, every executor in an
  // `AutoScalingChooser`. Above the executor count, the executor count wins.
  std::size_t max_loops = 0;
  // Length of one utilization window (one monitor tick).
  std::chrono::nanoseconds window = std::chrono::milliseconds(500);
  // A loop is idle in a window if its utilization is below this.
  double scale_down_threshold = 0.25;
  // A loop is busy in a window if its utilization is above this.
  double scale_up_threshold = 0.75;
  // Consecutive busy (idle) windows before a loop votes to scale up (down).
  std::size_t patience_cycles = 3;
  // Most loops woken in one tick; 0 = no limit.
  std::size_t max_ramp_up_step = 0;
  // Most loops suspended or drained in one tick; at least 1.
  std::size_t max_ramp_down_step = 1;
  // Windows after any scaling action during which nothing scales down.
  std::size_t scale_down_cooldown_cycles = 2;
  ScaleSignal signal = ScaleSignal::kTarget;
  // `kTarget` only: the utilization the active loops are sized to run at,
  // in (0, 1]. Between scale_down_threshold and scale_up_threshold in any
  // sensible setting: the gap up to scale_up_threshold is the hysteresis.
  double target_utilization = 0.7;
  // An idle loop that still holds registrations (connections) is drained (no
  // new work, keeps serving, suspends when its work is done) if true, kept
  // active if false.
  bool drain_connected_loops = true;
  // Whether the monitor asks connections to move between loops
  // (docs/scaling.md, "Connections follow the scaler"; loopscale/session.hpp): all of a
  // draining loop's, and an active loop's excess over its share
  // (ceil(connections / active loops)). Connections that do not take part
  // (a server run with rebalancing off) simply never answer.
  bool rebalance_connections = true;
  // The most connections asked to leave one loop in one window, 1 ..
  // kMaxMovesPerWindow: a load that flaps cannot start a storm of moves.
  std::size_t max_moves_per_window = 64;
  // How often the monitor looks for a saturated loop between two ticks;
  // zero = never (decisions only at ticks), else kMinFastUpInterval ..
  // kMaxWindow. A loop busy for at least 95% of the time since the last
  // look wakes loops at once (scaling_policy.hpp, "Fast up"): a load step on
  // an idle pool is answered within about two intervals, whatever the
  // window. No checks while the pool is at `max_loops`, nor when the
  // interval is not shorter than the window. A check costs the monitor's
  // thread a wake-up and a read of each loop's busy total; the loops pay
  // nothing. Its price is noise: one handler that runs longer than the
  // interval reads as a saturated loop (and wakes loops for a lookback of
  // windows, as a window spent in it would). Servers whose handlers block
  // for tens of milliseconds should lengthen it or turn it off.
  std::chrono::nanoseconds fast_up_interval = std::chrono::milliseconds(20);
  // Overload protection at the bound (TOML table [overload]).
  OverloadConfig overload;

  friend bool operator==(const ScalingConfig&, const ScalingConfig&) = default;
};

// How many executors may be active at once under a configuration: `max` is
// `max_loops`, or `executors` when `max_loops` is 0 or larger; `min` is
// `min_loops`, at most `max`. The one place the bounds are computed (the
// chooser, the policy and the pool's statistics all ask here).
struct ActiveBounds {
  std::size_t min = 0;
  std::size_t max = 0;
};
constexpr ActiveBounds active_bounds(const ScalingConfig& config,
                                     std::size_t executors) noexcept {
  const std::size_t max = config.max_loops == 0 || config.max_loops > executors
                              ? executors
                              : config.max_loops;
  return {config.min_loops < max ? config.min_loops : max, max};
}

// The range of `window`: shorter windows measure too few handlers to mean
// anything and make the monitor's thread a load of its own; longer ones
// never decide in a process's lifetime (a typo such as "99999999999h").
inline constexpr std::chrono::nanoseconds kMinWindow = std::chrono::milliseconds(1);
inline constexpr std::chrono::nanoseconds kMaxWindow = std::chrono::hours(1);
// The most windows `patience_cycles` and `scale_down_cooldown_cycles` may
// name.
inline constexpr std::size_t kMaxCycles = 10'000;

// The largest `max_moves_per_window`: more moves per loop per window than
// this is a typo, not a rate limit.
inline constexpr std::size_t kMaxMovesPerWindow = 1'000'000;

// The shortest `fast_up_interval`: over a shorter span one handler
// preempted by another process (a few milliseconds of the kernel's time
// slice) reads as a saturated loop, and the monitor's thread becomes a load.
inline constexpr std::chrono::nanoseconds kMinFastUpInterval =
    std::chrono::milliseconds(5);

// Returns OK, or InvalidArgument naming the first invalid field and its value:
// a threshold that is NaN or outside [0, 1], `scale_down_threshold >=
// scale_up_threshold`, `min_loops > max_loops` (when `max_loops` is not 0),
// `patience_cycles` 0 or above kMaxCycles (and the cooldown above it),
// `window` outside kMinWindow..kMaxWindow, `max_ramp_down_step == 0`, a ramp
// step or loop count above 4096,
// `target_utilization` NaN or outside (0, 1], `max_moves_per_window` outside
// 1 .. kMaxMovesPerWindow, `fast_up_interval` neither zero nor within
// kMinFastUpInterval .. kMaxWindow; in `overload`, a fraction NaN or outside
// [0, 1] or a `lag_target` outside kMinOverloadLagTarget .. kMaxWindow
// (named "overload.<field>").
absl::Status validate(const ScalingConfig& config);

// Where a pool publishes its per-loop figures (see shm/publisher.hpp).
struct MetricsConfig {
  bool enabled = false;
  // The shared-memory file; empty = "/dev/shm/loopscale".
  std::string shm_path;
  // The service the pool's loops are aggregated under; empty = the pool name.
  std::string service;
  // Permission bits of the file when this process creates it (before the
  // umask). Must give the owner read and write; at most 0666. Group bits let
  // services of several users in one group share a file.
  std::uint32_t file_mode = 0600;

  friend bool operator==(const MetricsConfig&, const MetricsConfig&) = default;
};

// The default shared-memory file (`MetricsConfig::shm_path` when empty).
inline constexpr std::string_view kDefaultShmPath = "/dev/shm/loopscale";

// Longest pool or service name: it must fit the shared-memory segment's
// fixed-size name field.
inline constexpr std::size_t kMaxNameLength = 63;

// Everything `LoopPool::create()` needs.
struct PoolOptions {
  // Names the pool in logs, thread names and metrics. Not empty, at most
  // `kMaxNameLength` bytes.
  std::string name = "loopscale";
  ScalingConfig scaling;
  MetricsConfig metrics;

  friend bool operator==(const PoolOptions&, const PoolOptions&) = default;
};

// Returns OK, or InvalidArgument naming the first invalid field: as
// `validate(ScalingConfig)`, plus an empty or over-long `name` or
// `metrics.service`, a `metrics.shm_path` that is not absolute, and a
// `metrics.file_mode` outside 0600..0666 (owner read-write, no execute bits).
absl::Status validate(const PoolOptions& options);

// Parses TOML text into validated options. Keys left out keep their defaults.
// Errors name the key and its line.
absl::StatusOr<PoolOptions> parse_pool_options(std::string_view toml_text);

// The largest config file accepted: a loopscale config is a few hundred
// bytes, and a bigger file is a mistake (`--config /dev/zero`), not a config.
inline constexpr std::size_t kMaxConfigBytes = 1 << 20;

// Reads a config file's text: it must be a regular file of at most
// kMaxConfigBytes. A directory, a FIFO (which would block), a device or an
// oversized file is InvalidArgument naming the path and what it is; a
// missing file NotFound. Never blocks on the file and never reads more than
// kMaxConfigBytes + 1 bytes.
absl::StatusOr<std::string> read_config_file(
    const std::filesystem::path& toml_file);

// Reads (as `read_config_file`) and parses a TOML file. Errors also name
// the file.
absl::StatusOr<PoolOptions> load_pool_options(
    const std::filesystem::path& toml_file);

// Parses a duration such as "250ms", "1s", "1.5s", "2m" or "100us" (Abseil's
// duration syntax). Returns InvalidArgument for anything else, including
// "inf".
absl::StatusOr<std::chrono::nanoseconds> parse_duration(std::string_view text);

}  // namespace loopscale

#endif  // LOOPSCALE_CONFIG_HPP_
