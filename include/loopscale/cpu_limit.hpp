// -----------------------------------------------------------------------------
// cpu_limit.hpp
// -----------------------------------------------------------------------------
//
// How many CPUs this process can really use, which is what `max_loops = 0`
// ("one loop per CPU") sizes the pool to. `std::thread::hardware_concurrency()`
// counts the machine's online CPUs; a process pinned to a few of them (its
// affinity mask: `taskset`, a CPU manager's exclusive CPUs) or limited by a
// cgroup v2 CPU quota (a container's `--cpus`, a Kubernetes CPU limit, written
// to `cpu.max`) can use fewer. A pool sized to a 64-core node inside a pod
// limited to 2 CPUs runs 64 loops that the kernel throttles in turns (CFS
// bandwidth control), which shows as long stalls, not as load the scaler
// could see. This is the limit Go's GOMAXPROCS learned to read from `cpu.max`
// and the JVM's `availableProcessors()` reads.
//
// The rule: the online CPUs, narrowed to the CPUs in the affinity mask, then
// to the quota of the process's cgroup or of any of its ancestors (the
// smallest quota ÷ period on the path, rounded up: 1.5 CPUs of quota give 2
// loops, which together cannot exceed the quota anyway); never below 1. A
// `cpu.max` that cannot be read or parsed is ignored (the pool must start),
// and cgroup v1 is not read.
//
//   loopscale::CpuLimit limit = loopscale::detect_cpu_limit();
//   // limit.cpus, and limit.limited_by: "" or why fewer than limit.online
//
// Thread-safety: a pure function of the files it reads.

#ifndef LOOPSCALE_CPU_LIMIT_HPP_
#define LOOPSCALE_CPU_LIMIT_HPP_

#include <cstddef>
#include <optional>
#include <string>

namespace loopscale {

struct CpuLimit {
  // The CPUs the process can use: at least 1.
  std::size_t cpus = 1;
  // The machine's online CPUs (`std::thread::hardware_concurrency()`).
  std::size_t online = 0;
  // CPUs in the affinity mask; 0 when it could not be read.
  std::size_t affinity = 0;
  // The smallest cgroup CPU quota on the path, in CPUs (quota ÷ period);
  // 0 when none is set ("max") or none could be read.
  double quota = 0;
  // What made `cpus` smaller than `online`, for logs and stats, e.g.
  // "the cgroup CPU quota (cpu.max \"150000 100000\" in /sys/fs/cgroup/a)";
  // empty when nothing did.
  std::string limited_by;
};

// Where `detect_cpu_limit` reads from; tests point it at fake files.
struct CpuLimitSources {
  // The process's cgroup membership; its cgroup v2 line is "0::/path".
  std::string proc_self_cgroup = "/proc/self/cgroup";
  // Where the cgroup v2 hierarchy is mounted.
  std::string cgroup_root = "/sys/fs/cgroup";
  // Overrides for the machine's figures (tests); nullopt reads them.
  std::optional<std::size_t> online;
  std::optional<std::size_t> affinity;
};

// Returns the CPUs this process can use and why (see the rule above).
// The cgroup's directory is `cgroup_root` + the path in `proc_self_cgroup`;
// where that does not exist (a container that sees its own cgroup mounted
// at the root without a cgroup namespace), `cgroup_root` itself.
CpuLimit detect_cpu_limit(const CpuLimitSources& sources = {});

}  // namespace loopscale

#endif  // LOOPSCALE_CPU_LIMIT_HPP_
