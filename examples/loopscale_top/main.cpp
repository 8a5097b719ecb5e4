// loopscale-top: shows the loops of every process that publishes to a
// loopscale shared-memory metrics file, aggregated by service, without
// touching the processes.
//
//   loopscale-top                                  # refreshes like top
//   loopscale-top --once --format json             # one JSON document
//   loopscale-top --format json                    # one per interval (JSON Lines)
//   loopscale-top --once --format prometheus > /var/lib/node_exporter/loopscale.prom
//   loopscale-top --reclaim_stale                  # frees dead processes' slots
//
// Exit status: 0 on success, 1 if the file cannot be read, 2 on bad flags.

#include <signal.h>
#include <time.h>

#include <atomic>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "format.hpp"
#include "loopscale/config.hpp"
#include "loopscale/shm/reader.hpp"

ABSL_FLAG(std::string, shm, std::string(loopscale::kDefaultShmPath),
          "the shared-memory metrics file");
ABSL_FLAG(absl::Duration, interval, absl::Seconds(1),
          "time between refreshes of the table view");
ABSL_FLAG(bool, once, false, "print one snapshot and exit");
ABSL_FLAG(std::string, format, "table", "table, json or prometheus");
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

int fail(const std::string& message, int code) {
  std::fprintf(stderr, "loopscale-top: %s\n", message.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "shows the loops of loopscale pools from their shared-memory metrics.\n"
      "usage: loopscale-top [--shm PATH] [--interval 1s] [--once] "
      "[--format table|json|prometheus] [--reclaim_stale]");
  const auto positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    return fail(std::string("unexpected argument \"") + positional[1] +
                    "\"; see --help",
                2);
  }
  const std::string path = absl::GetFlag(FLAGS_shm);
  const std::string format = absl::GetFlag(FLAGS_format);
  const absl::Duration interval = absl::GetFlag(FLAGS_interval);
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
  for (;;) {
    auto snap = reader->snapshot();
    if (!snap.ok()) return fail(std::string(snap.status().message()), 1);
    std::string text;
    if (format == "json") {
      text = loopscale::top::format_json(*snap, monotonic_ns());
    } else if (format == "prometheus") {
      text = loopscale::top::format_prometheus(*snap);
    } else {
      text = loopscale::top::format_table(*snap, path, monotonic_ns());
      // Home the cursor and clear the screen, as top does.
      if (!once) text = "\x1b[H\x1b[2J" + text;
    }
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    if (once) return 0;
    const absl::Time until = absl::Now() + interval;
    while (!interrupted && absl::Now() < until) {
      absl::SleepFor(std::min(absl::Milliseconds(50), until - absl::Now()));
    }
    if (interrupted) return 0;
  }
}
