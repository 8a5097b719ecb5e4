#include "loopscale/cpu_limit.hpp"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace loopscale {
namespace {

namespace fs = std::filesystem;

std::optional<std::string> read_small_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::string text;
  // cgroup files are one short line; a bound keeps a hostile file harmless.
  text.resize(4096);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return text;
}

std::size_t affinity_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
  return static_cast<std::size_t>(CPU_COUNT(&set));
}

// The cgroup v2 path from /proc/self/cgroup ("0::/a/b"), if there is one.
std::optional<std::string> cgroup_v2_path(const std::string& membership) {
  for (absl::string_view line : absl::StrSplit(membership, '\n')) {
    if (absl::ConsumePrefix(&line, "0::")) return std::string(line);
  }
  return std::nullopt;
}

// A cpu.max's quota in CPUs: "150000 100000" is 1.5; "max 100000", and
// anything malformed, is no quota.
std::optional<double> parse_cpu_max(absl::string_view text) {
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::StripAsciiWhitespace(text), ' ', absl::SkipEmpty());
  std::uint64_t quota = 0, period = 0;
  if (fields.size() != 2 || !absl::SimpleAtoi(fields[0], &quota) ||
      !absl::SimpleAtoi(fields[1], &period) || quota == 0 || period == 0) {
    return std::nullopt;
  }
  return static_cast<double>(quota) / static_cast<double>(period);
}

}  // namespace

CpuLimit detect_cpu_limit(const CpuLimitSources& sources) {
  CpuLimit limit;
  limit.online = sources.online.value_or(std::thread::hardware_concurrency());
  limit.affinity = sources.affinity.value_or(affinity_cpus());
  limit.cpus = std::max<std::size_t>(limit.online, 1);
  if (limit.affinity != 0 && limit.affinity < limit.cpus) {
    limit.cpus = limit.affinity;
    limit.limited_by = absl::StrCat("the affinity mask (", limit.affinity, " of ",
                                    limit.online, " CPUs)");
  }

  // Without a trailing separator, so that parent_path() walks up from it.
  fs::path root = fs::path(sources.cgroup_root).lexically_normal();
  if (!root.has_filename() && root.has_relative_path()) root = root.parent_path();
  fs::path dir = root;
  if (auto membership = read_small_file(sources.proc_self_cgroup)) {
    if (auto path = cgroup_v2_path(*membership)) {
      const fs::path rel = fs::path(*path).relative_path().lexically_normal();
      std::error_code ec;
      if (!rel.empty() && rel != "." && *rel.begin() != ".." &&
          fs::is_directory(root / rel, ec)) {
        dir = root / rel;
      }
    }
  }
  // The quota of every cgroup from the process's up to the mount's root
  // applies; the smallest wins. Never read above the mount.
  std::string quota_text;
  fs::path quota_dir;
  for (fs::path d = dir;; d = d.parent_path()) {
    if (auto text = read_small_file(d / "cpu.max")) {
      if (auto q = parse_cpu_max(*text);
          q.has_value() && (limit.quota == 0 || *q < limit.quota)) {
        limit.quota = *q;
        quota_text = std::string(absl::StripAsciiWhitespace(*text));
        quota_dir = d;
      }
    }
    if (d == root || d == d.parent_path()) break;
  }
  if (limit.quota > 0) {
    const auto by_quota = std::max<std::size_t>(
        1, static_cast<std::size_t>(std::ceil(limit.quota - 1e-9)));
    if (by_quota < limit.cpus) {
      limit.cpus = by_quota;
      limit.limited_by = absl::StrCat("the cgroup CPU quota (cpu.max \"", quota_text,
                                      "\" in ", quota_dir.string(), ")");
    }
  }
  return limit;
}

}  // namespace loopscale
