// -----------------------------------------------------------------------------
// shm/reader.hpp
// -----------------------------------------------------------------------------
//
// `shm::Reader` reads the shared-memory metrics file that pools publish to
// (shm/publisher.hpp; format in docs/shm-format.md) and returns a snapshot:
// every pool of every process with its loops, and the figures aggregated per
// service (summed, maxed or averaged as the file's schema says), so that a
// supervisor or `loopscale-top` sees a fleet of processes without touching
// them.
//
//   auto reader = loopscale::shm::Reader::open("/dev/shm/loopscale");
//   if (!reader.ok()) { ... }
//   auto snap = reader->snapshot();
//   for (const auto& s : snap->services) print(s.name, s.loops, s.utilization);
//   for (const auto& p : snap->processes) if (p.stale) ...;
//
// The reader opens the file read-only (O_RDONLY, O_NOFOLLOW) and never writes
// to it. The file is untrusted input: every size, count and offset is checked
// before use, and a corrupt file yields an error naming what is wrong, never a
// crash. Each pool is copied under its seqlock, so its figures come from one
// publish; a pool whose writer died mid-write is reported as inconsistent
// rather than waited for.
//
// Stale pools: a pool whose process has died (its pid is gone, is a zombie,
// or was reused by a process with another start time) is listed with
// `stale = true` and left out of the service figures. `reclaim_stale()` frees
// the segments of such pools (the only call here that writes, on its own
// read-write descriptor).
//
// Limits: `Reader` reads copies of the file, never a mapping, and only as
// much as its header says is in use (at most kMaxReadBytes): a file that
// shrinks under it is an error or a shorter snapshot, and a huge file at the
// path costs a header's read. `reclaim_stale()` too reads and writes the
// file's words (pread/pwrite under the publishers' flock), never a mapping.
//
// Thread-safety: a `Reader` is not synchronized; use one per thread (they are
// cheap). `parse_snapshot()` and `reclaim_stale()` may run from any thread.

#ifndef LOOPSCALE_SHM_READER_HPP_
#define LOOPSCALE_SHM_READER_HPP_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "loopscale/shm/detail/process.hpp"
#include "loopscale/shm/layout.hpp"

namespace loopscale::shm {

// Returns why the process `pid` that started at `start_time` is no longer
// running, or "" if it is; `start_time` is nullopt for a segment that could
// not be read consistently (then only whether the pid runs is known). The
// default reads /proc and calls kill(pid, 0): the file's liveness rule
// (shm/detail/process.hpp), which publishers apply too.
using LivenessCheck = std::function<std::string(
    std::uint64_t pid, std::optional<std::uint64_t> start_time)>;
std::string default_liveness(std::uint64_t pid,
                             std::optional<std::uint64_t> start_time);

// A figure as the schema describes it: the file's name, unit and rule.
struct Figure {
  std::string name;
  std::string unit;
  Aggregation aggregation = Aggregation::kNone;
  bool is_float = false;
  std::uint64_t u = 0;  // when !is_float
  double f = 0.0;       // when is_float
  double as_double() const { return is_float ? f : static_cast<double>(u); }
};

// One job type's figures (format 1.4; loopscale/job_type.hpp): of a loop,
// or summed by name over a process's or a service's loops.
struct JobSnapshot {
  std::string name;
  std::uint64_t busy_ns = 0;
  std::uint64_t count = 0;
};

struct LoopSnapshot {
  std::uint64_t index = 0;
  std::uint64_t state = 0;     // LoopState's value
  std::string state_name;      // "active", ..., "unknown(N)"
  double utilization = 0.0;
  std::uint64_t busy_ns = 0;
  std::uint64_t handlers = 0;
  std::uint64_t wakeups = 0;
  std::uint64_t registrations = 0;
  std::uint64_t cpu_ns = 0;
  std::uint64_t suspensions = 0;
  std::uint64_t resumes = 0;
  // 0 in files of format 1.0, which lack the field.
  std::uint64_t scheduling_lag_ns = 0;
  // Connection moves (session.hpp); 0 in files before format 1.2.
  std::uint64_t moves_in = 0;
  std::uint64_t moves_out = 0;
  std::uint64_t moves_failed = 0;
  // By the process's job type id, the ones it registered ("other" first);
  // empty in files before format 1.4.
  std::vector<JobSnapshot> jobs;
  // Every numeric loop field of the schema but the job types', in schema
  // order.
  std::vector<Figure> figures;
};

// One pool of one process (one segment of the file).
struct ProcessSnapshot {
  std::uint64_t offset = 0;    // the segment's offset in the file
  std::uint64_t owner = 0;     // its owner word (for reclaim_stale)
  std::uint64_t pid = 0;
  std::uint64_t start_time = 0;
  std::uint64_t generation = 0;
  std::string service;
  std::string pool;
  // The figures are from one publish; false if the seqlock never settled
  // (a writer that died mid-write), and then only the identity is known.
  bool consistent = true;
  bool stale = false;
  std::string stale_reason;
  std::uint64_t heartbeat_ns = 0;  // CLOCK_MONOTONIC of the last publish
  std::uint64_t active_loops = 0;
  std::uint64_t min_loops = 0;
  std::uint64_t max_loops = 0;
  std::uint64_t ticks = 0;
  std::uint64_t scale_ups = 0;
  std::uint64_t scale_downs = 0;
  // 0 in files before format 1.2.
  std::uint64_t moves_requested = 0;
  std::uint64_t window_ns = 0;
  double scale_down_threshold = 0.0;
  double scale_up_threshold = 0.0;
  std::uint64_t last_rule = 0;
  std::string last_decision;
  std::vector<LoopSnapshot> loops;
  // The loops' job types summed, by id.
  std::vector<JobSnapshot> jobs;
  // Every numeric segment field of the schema, in schema order.
  std::vector<Figure> figures;
};

// The pools of one service that are live and consistent, combined.
struct ServiceSnapshot {
  std::string name;
  std::size_t processes = 0;  // distinct pids
  std::size_t pools = 0;
  // Shortcuts into `figures`.
  std::uint64_t loops = 0;
  std::uint64_t active_loops = 0;
  double utilization = 0.0;   // mean over the service's loops
  // The job types of its loops, summed by name: "other" first, then by
  // name.
  std::vector<JobSnapshot> jobs;
  // Every numeric field whose rule is not kNone: segment fields over the
  // pools, loop fields over the loops; in schema order.
  std::vector<Figure> figures;
};

struct Snapshot {
  std::uint32_t version_major = 0;
  std::uint32_t version_minor = 0;
  std::uint64_t file_size = 0;
  std::uint64_t used_bytes = 0;
  std::vector<ProcessSnapshot> processes;  // in file order
  std::vector<ServiceSnapshot> services;   // sorted by name
};

struct ReadOptions {
  LivenessCheck liveness = default_liveness;
  // Seqlock attempts per segment before it is reported inconsistent.
  int max_attempts = detail::kSeqlockAttempts;
};

// Decodes the `size` bytes at `data` (8-byte aligned; a mapping of the file or
// a copy of it).
absl::StatusOr<Snapshot> parse_snapshot(const std::byte* data, std::size_t size,
                                        const ReadOptions& options = {});

// The processes' figures aggregated by service (the figures' rules), as a
// snapshot holds them; stale and inconsistent processes are left out.
std::vector<ServiceSnapshot> services_of(const std::vector<ProcessSnapshot>& processes);

class Reader {
 public:
  // Opens `path` read-only, without blocking (a FIFO is refused, not waited
  // on). Refuses symbolic links and non-regular files.
  static absl::StatusOr<Reader> open(const std::string& path,
                                     ReadOptions options = {});
  Reader(Reader&& other) noexcept;
  Reader& operator=(Reader&& other) noexcept;
  ~Reader();

  // Reads the file as it is now and decodes it. Reads copies of the file
  // (pread), never a mapping, so a file that shrinks or is truncated under
  // the reader is an error or a shorter file, not a SIGBUS; a pool whose
  // writer was busy through every attempt reads as not consistent.
  absl::StatusOr<Snapshot> snapshot();

  // Copies of the file read per snapshot, at most, until two agree.
  static constexpr int kCopyAttempts = 8;
  // The most a snapshot reads: it reads the header, then what the header
  // says is in use (`used_bytes`), never the file's size as such. A header
  // claiming more is refused as corrupt. 64 MiB holds thousands of pools.
  static constexpr std::size_t kMaxReadBytes = std::size_t{64} << 20;

  // True if `path()` no longer names the file this reader has open: it was
  // deleted, or replaced by another (a server that started afresh and made
  // a new one). A reader that runs for long should then open the path
  // again; the file it holds only ever shows the old one's last figures.
  bool file_replaced() const;

  // Why the figures in this file may not be what its servers wrote, or an
  // empty string: the file belongs to a user other than this process's (and
  // other than root), or any user may write it. Whoever can write the file
  // can forge its figures; a supervisor that acts on them should know.
  // Readers say so (loopscale-top on stderr) and read on: a file shared on
  // purpose (`[metrics] file_mode`) is legitimate.
  std::string trust_warning() const;

  const std::string& path() const noexcept { return path_; }

 private:
  Reader(std::string path, int fd, ReadOptions options);

  std::string path_;
  int fd_ = -1;
  ReadOptions options_;
};

// Frees the segments of stale pools in the file at `path` (opened read-write,
// O_NOFOLLOW): under the flock publishers take to claim a segment, each dead
// owner word that still holds the owner judged dead is set to 0, so a
// segment claimed meanwhile is left alone. Through pread/pwrite, never a
// mapping: a file that shrinks meanwhile gives an error, not a SIGBUS.
// Refuses (PermissionDenied) a file that belongs to another user: it writes.
// Returns how many segments were freed.
absl::StatusOr<std::size_t> reclaim_stale(const std::string& path,
                                          const ReadOptions& options = {});

}  // namespace loopscale::shm

#endif  // LOOPSCALE_SHM_READER_HPP_
