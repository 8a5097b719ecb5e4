#include "loopscale/shm/detail/file_lock.hpp"

#include <sys/file.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"

namespace loopscale::shm::detail {

absl::Status lock_file(int fd, const std::string& path) {
  const auto deadline = std::chrono::steady_clock::now() + kLockTimeout;
  while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      return absl::FailedPreconditionError(absl::StrCat(
          "shared-memory metrics file ", path, ": flock: ", std::strerror(errno)));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::FailedPreconditionError(absl::StrCat(
          "shared-memory metrics file ", path, ": locked by another process for more than 2 s"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return absl::OkStatus();
}

}  // namespace loopscale::shm::detail
