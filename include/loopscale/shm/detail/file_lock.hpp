// -----------------------------------------------------------------------------
// shm/detail/file_lock.hpp
// -----------------------------------------------------------------------------
//
// The metrics file's lock: an exclusive flock held while a segment changes
// hands (a publisher claiming or appending one, `reclaim_stale()` freeing a
// dead process's). Held for microseconds, so a caller waits at most
// kLockTimeout for it and then reports the file as locked.
//
// Thread-safety: plain functions on a descriptor the caller owns.

#ifndef LOOPSCALE_SHM_DETAIL_FILE_LOCK_HPP_
#define LOOPSCALE_SHM_DETAIL_FILE_LOCK_HPP_

#include <chrono>
#include <string>

#include "absl/status/status.h"

namespace loopscale::shm::detail {

inline constexpr auto kLockTimeout = std::chrono::seconds(2);

// Takes the exclusive flock of `fd`, retrying until kLockTimeout. Errors
// (FailedPrecondition) name `path`.
absl::Status lock_file(int fd, const std::string& path);

}  // namespace loopscale::shm::detail

#endif  // LOOPSCALE_SHM_DETAIL_FILE_LOCK_HPP_
