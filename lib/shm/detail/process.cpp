#include "loopscale/shm/detail/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace loopscale::shm::detail {

std::optional<ProcessInfo> read_process(std::uint64_t pid) {
  // open/read rather than iostreams: readers call this for every pool of
  // every snapshot.
  const int fd = open(absl::StrCat("/proc/", pid, "/stat").c_str(),
                      O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[1024];
  const ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return std::nullopt;
  const std::string line(buf, static_cast<std::size_t>(n));
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
  // the fields start after the last ')'.
  const std::size_t close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) return std::nullopt;
  std::vector<absl::string_view> fields = absl::StrSplit(
      absl::string_view(line).substr(close + 2), ' ', absl::SkipEmpty());
  // fields[0] is field 3 (state); start time is field 22.
  constexpr std::size_t kStartTime = 22 - 3;
  ProcessInfo info;
  if (fields.size() <= kStartTime || fields[0].empty()) return std::nullopt;
  info.state = fields[0][0];
  if (!absl::SimpleAtoi(fields[kStartTime], &info.start_time)) return std::nullopt;
  return info;
}

std::uint64_t self_start_time() {
  const std::optional<ProcessInfo> info = read_process(getpid());
  return info ? info->start_time : 0;
}

std::string process_gone_reason(std::uint64_t pid,
                                std::optional<std::uint64_t> start_time) {
  if (pid == 0 || pid > kMaxPid) return absl::StrCat("invalid pid ", pid);
  auto gone = [pid] {
    return kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
  };
  if (gone()) return absl::StrCat("process ", pid, " is gone");
  const std::optional<ProcessInfo> info = read_process(pid);
  if (!info) {
    // It may have exited since; otherwise /proc is hidden from us (hidepid)
    // and kill() is all we can go on.
    return gone() ? absl::StrCat("process ", pid, " is gone") : "";
  }
  if (info->state == 'Z' || info->state == 'X') {
    return absl::StrCat("process ", pid, " has exited (zombie)");
  }
  if (start_time && info->start_time != *start_time) {
    return absl::StrCat("pid ", pid, " was reused (process started at tick ",
                        info->start_time, ", segment written by one started at ",
                        *start_time, ")");
  }
  return "";
}

}  // namespace loopscale::shm::detail
