// libFuzzer target: the shared-memory reader on arbitrary bytes. The file is
// untrusted input, so no byte string may crash, hang, or read out of bounds
// (built with ASan and UBSan). Liveness is stubbed: fuzzed pids must not
// reach kill(). Build: CXX=clang++ meson setup build-fuzz -Dfuzz=true ...
// (scripts/test does; tests/fuzz/run_fuzz.sh runs it for a bounded time).
// Seeds: a file of format 1.3 and one of 1.4 with job types.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "loopscale/shm/reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The reader needs 8-byte alignment, as a mapping has.
  std::vector<std::uint64_t> words((size + 7) / 8);
  if (size > 0) std::memcpy(words.data(), data, size);
  loopscale::shm::ReadOptions options;
  options.max_attempts = 4;  // an odd seq must not make a fuzz run spin
  options.liveness = [](std::uint64_t pid, std::optional<std::uint64_t>) {
    return pid % 2 == 0 ? std::string() : std::string("stale");
  };
  auto snap = loopscale::shm::parse_snapshot(
      reinterpret_cast<const std::byte*>(words.data()), size, options);
  if (snap.ok()) {
    // Touch what a tool would print.
    std::size_t n = 0;
    for (const auto& s : snap->services) {
      n += s.name.size() + s.figures.size();
      for (const auto& j : s.jobs) n += j.name.size();
    }
    for (const auto& p : snap->processes) {
      n += p.loops.size() + p.last_decision.size() + p.jobs.size();
      for (const auto& l : p.loops) {
        for (const auto& j : l.jobs) n += j.name.size() + (j.busy_ns & 1);
      }
    }
    if (n == 0xFFFFFFFF) return 1;
  }
  return 0;
}
