// -----------------------------------------------------------------------------
// shm/publisher.hpp
// -----------------------------------------------------------------------------
//
// `shm::Publisher` writes one pool's figures into the shared-memory metrics
// file (format: shm/layout.hpp and docs/shm-format.md), where `loopscale-top`
// and supervisors read them with `shm::Reader` without touching the workers.
// `LoopPool` makes one when `metrics.enabled` is set and publishes at every
// monitor tick; embedders with their own executors can drive one directly:
//
//   auto pub = loopscale::shm::Publisher::attach(metrics, "api-pool", loops);
//   if (!pub.ok()) { log(pub.status()); }    // run on, without metrics
//   ...
//   (*pub)->publish(stats);                  // at every tick
//   (*pub).reset();                          // releases the segment
//
// Attaching opens the file (`metrics.shm_path`, default /dev/shm/loopscale)
// with O_NOFOLLOW, so a symbolic link at the path is refused, and refuses a
// file that is not a regular file or not owned by this user. A missing file is
// created with `metrics.file_mode` (0600 by default). Under an flock of the
// file it then claims a segment for the pool: a free one large enough (a
// compare-and-swap of its owner word from 0), else one whose process died
// (pid gone or reused), else a new one appended at the end, growing the file
// with posix_fallocate so that a full tmpfs is an error here (ENOSPC) rather
// than a SIGBUS later. The file never shrinks, so processes that mapped it
// earlier keep working. The claimed segment is zeroed before use.
//
// Errors name the path and the cause: a symlink, another user's file, a
// foreign or corrupt file, a full or unwritable location. None of them is
// fatal to a pool: it runs on without metrics (see `LoopPool::metrics_status`).
//
// Thread-safety: `publish()` may be called from any thread; calls are
// serialized (the segment has one writer). Readers in other processes see
// each publish as a whole (seqlock over the segment).

#ifndef LOOPSCALE_SHM_PUBLISHER_HPP_
#define LOOPSCALE_SHM_PUBLISHER_HPP_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "loopscale/config.hpp"
#include "loopscale/detail/mutex.hpp"
#include "loopscale/pool_stats.hpp"

namespace loopscale::shm {

class Publisher {
 public:
  // Opens or creates the file of `config` and claims a segment for `loops`
  // loops of the pool `pool_name`, aggregated under `config.service` (the
  // pool name if empty).
  static absl::StatusOr<std::unique_ptr<Publisher>> attach(
      const MetricsConfig& config, std::string_view pool_name,
      std::size_t loops);

  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;
  // Releases the segment.
  ~Publisher();

  // Writes `stats` (at most the attached number of loops) and a heartbeat.
  // Does nothing once released, or if the segment was taken away (a
  // supervisor reclaimed it by mistake): `attached()` then reads false.
  void publish(const PoolStats& stats);

  // Zeroes the segment and frees it for another process. Idempotent.
  void release();

  bool attached() const;
  const std::string& path() const noexcept { return path_; }
  // Where the segment lives in the file, and its owner word.
  std::uint64_t segment_offset() const noexcept { return offset_; }
  std::uint64_t owner() const noexcept { return owner_; }

 private:
  struct Mapping;
  static absl::StatusOr<std::unique_ptr<Mapping>> map_file(
      int fd, const std::string& path);
  Publisher(std::string path, std::string service, std::string pool_name,
            std::unique_ptr<Mapping> map,
            std::uint64_t offset, std::uint64_t owner, std::size_t loops);

  // Builds the segment image from `stats` and writes it under the seqlock.
  void write_locked(const PoolStats& stats) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Copies `image_` into the segment under its seqlock.
  void write_image_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True while the owner word is still ours.
  bool still_owner() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  const std::string service_;
  mutable loopscale::detail::Mutex mu_;
  std::unique_ptr<Mapping> map_ ABSL_GUARDED_BY(mu_);
  const std::uint64_t offset_;
  const std::uint64_t owner_;
  const std::size_t loops_;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  // The segment's seqlocked bytes, built here and copied in with one write.
  std::vector<std::byte> image_ ABSL_GUARDED_BY(mu_);
};

}  // namespace loopscale::shm

#endif  // LOOPSCALE_SHM_PUBLISHER_HPP_
