// The number of descriptors this process holds: what tests of leaks count.

#ifndef LOOPSCALE_TESTS_SUPPORT_OPEN_FDS_HPP_
#define LOOPSCALE_TESTS_SUPPORT_OPEN_FDS_HPP_

#include <cstddef>
#include <filesystem>
#include <iterator>

namespace loopscale::testing {

inline std::size_t open_fds() {
  const std::filesystem::directory_iterator fds("/proc/self/fd");
  return static_cast<std::size_t>(std::distance(begin(fds), end(fds)));
}

}  // namespace loopscale::testing

#endif  // LOOPSCALE_TESTS_SUPPORT_OPEN_FDS_HPP_
