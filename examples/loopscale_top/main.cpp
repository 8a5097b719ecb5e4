// loopscale-top: shows the loops of every process that publishes to a
// loopscale shared-memory metrics file, aggregated by service, without
// touching the processes.
//
//   loopscale-top                                  # refreshes like top
//   loopscale-top --jobs                           # and each loop's job types
//   loopscale-top --once --format json             # one JSON document
//   loopscale-top --format json                    # one per interval (JSON Lines)
//   loopscale-top --format prometheus --output /var/lib/node_exporter/loopscale.prom
//                                                  # node_exporter's textfile mode
//   loopscale-top --reclaim_stale                  # frees dead processes' slots
//
// With --output, every refresh replaces FILE atomically (written to a
// temporary file beside it, then renamed over it), so a collector reading it
// (node_exporter's textfile collector reads `*.prom`) never sees half a file.
//
// Refreshing (without --once), a file that cannot be read (being rewritten,
// deleted, corrupt) is reported once on stderr and tried again at every
// refresh, and a file replaced at the path (a server that started afresh)
// is followed: the tool outlives the servers it watches.
//
// Exit status: 0 on success, 1 if the file cannot be read (--once, or at
// the start) or the output written, 2 on bad flags.

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "format.hpp"
#include "loopscale/config.hpp"
#include "loopscale/prometheus.hpp"
#include "loopscale/shm/reader.hpp"

ABSL_FLAG(std::string, shm, std::string(loopscale::kDefaultShmPath),
          "the shared-memory metrics file");
ABSL_FLAG(absl::Duration, interval, absl::Seconds(1),
          "time between refreshes of the table view");
ABSL_FLAG(bool, once, false, "print one snapshot and exit");
ABSL_FLAG(bool, jobs, false,
          "table: each loop's busy time by job type, not only each service's");
ABSL_FLAG(std::string, format, "table", "table, json or prometheus");
ABSL_FLAG(std::string, output, "",
          "write each snapshot to this file, replacing it atomically, instead "
          "of to standard output");
ABSL_FLAG(bool, reclaim_stale, false,
          "free the slots of processes that died, then exit");

namespace {

std::atomic<bool> interrupted{false};

void on_signal(int) { interrupted = true; }

std::uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// Replaces `path` by a file holding `text`: a temporary file in the same
// directory (so that rename() is atomic), mode 0644, renamed over it. The
// temporary name does not end in `.prom`, so the textfile collector skips it.
absl::Status write_atomically(const std::string& path, absl::string_view text) {
  std::string temp = path + ".XXXXXX";
  const int fd = mkstemp(temp.data());
  auto error = [&](absl::string_view what) {
    return absl::UnavailableError(
        absl::StrCat("--output=", path, ": ", what, ": ", std::strerror(errno)));
  };
  if (fd < 0) return error("cannot create a temporary file beside it");
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      absl::Status st = error("write");
      ::close(fd);
      ::unlink(temp.c_str());
      return st;
    }
    done += static_cast<std::size_t>(n);
  }
  if (fchmod(fd, 0644) != 0 || ::close(fd) != 0) {
    absl::Status st = error("close");
    ::unlink(temp.c_str());
    return st;
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    absl::Status st = error("rename");
    ::unlink(temp.c_str());
    return st;
  }
  return absl::OkStatus();
}

int fail(const std::string& message, int code) {
  std::fprintf(stderr, "loopscale-top: %s\n", message.c_str());
  return code;
}

}  // namespace

// Waits `interval`, or less if SIGINT or SIGTERM arrives; false then.
bool wait_for(absl::Duration interval) {
  const absl::Time until = absl::Now() + interval;
  while (!interrupted && absl::Now() < until) {
    absl::SleepFor(std::min(absl::Milliseconds(50), until - absl::Now()));
  }
  return !interrupted;
}

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "shows the loops of loopscale pools from their shared-memory metrics.\n"
      "usage: loopscale-top [--shm PATH] [--interval 1s] [--once] [--jobs] "
      "[--format table|json|prometheus] [--output FILE] [--reclaim_stale]");
  const auto positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    return fail(std::string("unexpected argument \"") + positional[1] +
                    "\"; see --help",
                2);
  }
  const std::string path = absl::GetFlag(FLAGS_shm);
  const std::string format = absl::GetFlag(FLAGS_format);
  const absl::Duration interval = absl::GetFlag(FLAGS_interval);
  const std::string output = absl::GetFlag(FLAGS_output);
  if (format != "table" && format != "json" && format != "prometheus") {
    return fail("--format=" + format + ": expected table, json or prometheus", 2);
  }
  if (interval <= absl::ZeroDuration()) {
    return fail("--interval=" + absl::FormatDuration(interval) +
                    ": must be positive",
                2);
  }

  if (absl::GetFlag(FLAGS_reclaim_stale)) {
    auto freed = loopscale::shm::reclaim_stale(path);
    if (!freed.ok()) return fail(std::string(freed.status().message()), 1);
    std::printf("freed %zu stale segment(s) in %s\n", *freed, path.c_str());
    return 0;
  }

  auto reader = loopscale::shm::Reader::open(path);
  if (!reader.ok()) return fail(std::string(reader.status().message()), 1);

  const bool once = absl::GetFlag(FLAGS_once);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  // Refreshing, a read that fails (a file being rewritten, deleted, or
  // replaced by a server that started afresh) is reported once per run of
  // failures and tried again at the next refresh, on the file the path
  // names by then.
  bool failing = false;
  std::string warned;  // the last trust warning printed, printed once
  for (;;) {
    if (!once && (!reader.ok() || reader->file_replaced())) {
      reader = loopscale::shm::Reader::open(path);
    }
    if (reader.ok()) {
      if (std::string w = reader->trust_warning(); !w.empty() && w != warned) {
        std::fprintf(stderr, "loopscale-top: warning: %s\n", w.c_str());
        warned = std::move(w);
      }
    }
    absl::StatusOr<loopscale::shm::Snapshot> snap =
        reader.ok() ? reader->snapshot() : reader.status();
    if (!snap.ok() && once) return fail(std::string(snap.status().message()), 1);
    if (!snap.ok()) {
      if (!std::exchange(failing, true)) {
        std::fprintf(stderr, "loopscale-top: %s (trying again every %s)\n",
                     std::string(snap.status().message()).c_str(),
                     absl::FormatDuration(interval).c_str());
      }
      if (!wait_for(interval)) return 0;
      continue;
    }
    if (std::exchange(failing, false)) {
      std::fprintf(stderr, "loopscale-top: reading %s again\n", path.c_str());
    }
    std::string text;
    if (format == "json") {
      text = loopscale::top::format_json(*snap, monotonic_ns());
    } else if (format == "prometheus") {
      text = loopscale::prometheus::render(*snap);
    } else {
      text = loopscale::top::format_table(*snap, path, monotonic_ns(),
                                          absl::GetFlag(FLAGS_jobs));
      // Home the cursor and clear the screen, as top does.
      if (!once && output.empty()) text = "\x1b[H\x1b[2J" + text;
    }
    if (!output.empty()) {
      if (absl::Status st = write_atomically(output, text); !st.ok()) {
        return fail(std::string(st.message()), 1);
      }
    } else {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    }
    if (once) return 0;
    if (!wait_for(interval)) return 0;
  }
}
