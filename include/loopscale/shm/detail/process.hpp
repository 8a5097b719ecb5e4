// -----------------------------------------------------------------------------
// shm/detail/process.hpp
// -----------------------------------------------------------------------------
//
// Process identity for the metrics file: a pid alone is not enough, since the
// kernel reuses pids, so a segment also records its process's start time
// (field 22 of /proc/<pid>/stat, clock ticks since boot), and a process counts
// as the segment's owner only if both match. Pids are as seen in the caller's
// pid namespace: readers must share it with the writers.
//
// Thread-safety: plain functions; they read /proc and call kill(pid, 0).

#ifndef LOOPSCALE_SHM_DETAIL_PROCESS_HPP_
#define LOOPSCALE_SHM_DETAIL_PROCESS_HPP_

#include <cstdint>
#include <optional>
#include <string>

namespace loopscale::shm::detail {

// Linux's PID_MAX_LIMIT: no pid is larger.
inline constexpr std::uint64_t kMaxPid = 4194304;

struct ProcessInfo {
  char state = '?';  // R, S, D, Z (zombie), X (dead), ...
  std::uint64_t start_time = 0;
};

// Reads /proc/<pid>/stat; nullopt if it cannot be read or parsed.
std::optional<ProcessInfo> read_process(std::uint64_t pid);

// This process's start time (0 if /proc is unavailable).
std::uint64_t self_start_time();

// The liveness rule of the metrics file, the one place it is written.
// Returns why the process `pid` no longer runs ("" if it does): gone, a
// zombie, or, when its `start_time` is known (read from a consistent copy of
// its segment, of the current claim), its pid reused by a process started
// later. Without the start time (a segment torn by a writer that died
// mid-write, or claimed and not yet written) the process must merely run. A
// pid outside (0, kMaxPid] is reported as invalid without asking the kernel
// (kill() treats 0 and negative pids as process groups).
std::string process_gone_reason(std::uint64_t pid,
                                std::optional<std::uint64_t> start_time);

// How many times every reader of the file (readers, and publishers looking
// for dead owners) tries a segment's seqlock before it takes the segment as
// torn: a writer that died mid-write leaves it odd forever.
inline constexpr int kSeqlockAttempts = 10000;

}  // namespace loopscale::shm::detail

#endif  // LOOPSCALE_SHM_DETAIL_PROCESS_HPP_
