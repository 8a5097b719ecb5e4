#include "loopscale/shm/reader.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "loopscale/detail/seqlock.hpp"
#include "loopscale/shm/detail/file_layout.hpp"
#include "loopscale/shm/detail/process.hpp"
#include "loopscale/shm/detail/words.hpp"

namespace loopscale::shm {
namespace {

using detail::Field;
using detail::FileLayout;

constexpr std::string_view kStateNames[] = {"active", "draining", "suspending",
                                            "suspended", "stopped"};

std::string state_name(std::uint64_t state) {
  if (state < std::size(kStateNames)) return std::string(kStateNames[state]);
  return absl::StrCat("unknown(", state, ")");
}

std::uint64_t get_u64(const std::byte* record, const Field& f) {
  std::uint64_t v;
  std::memcpy(&v, record + f.offset, 8);
  return v;
}

double get_f64(const std::byte* record, const Field& f) {
  double v;
  std::memcpy(&v, record + f.offset, 8);
  return v;
}

// The numeric fields of `record` (a kind of record), in schema order.
std::vector<Figure> figures_of(const std::byte* base, const FileLayout& layout,
                               Record record) {
  std::vector<Figure> out;
  for (const Field& f : layout.schema) {
    if (f.record != record || f.type == FieldType::kString) continue;
    Figure g{f.name, f.unit, f.aggregation, f.type == FieldType::kF64, 0, 0.0};
    if (g.is_float) {
      g.f = get_f64(base, f);
    } else {
      g.u = get_u64(base, f);
    }
    out.push_back(std::move(g));
  }
  return out;
}

// Looks up a field every file has (parse_header checked it).
const Field& known(const FileLayout& layout, Record record,
                   std::string_view name) {
  return *layout.find(record, name);
}

absl::Status corrupt_segment(std::uint64_t offset, absl::string_view what) {
  return absl::DataLossError(absl::StrCat(
      "corrupt metrics file: segment at offset ", offset, ": ", what));
}

// Decodes a consistent copy of a segment into `p`.
absl::Status decode(const std::byte* seg, const detail::SegmentExtent& s,
                    const FileLayout& layout, ProcessSnapshot& p) {
  auto u = [&](std::string_view name) {
    return get_u64(seg, known(layout, Record::kSegment, name));
  };
  auto f = [&](std::string_view name) {
    return get_f64(seg, known(layout, Record::kSegment, name));
  };
  auto text = [&](std::string_view name) {
    return detail::field_text(seg, known(layout, Record::kSegment, name));
  };
  p.start_time = u("start_time");
  p.service = text("service");
  p.pool = text("pool");
  p.heartbeat_ns = u("heartbeat_ns");
  p.active_loops = u("active_loops");
  p.min_loops = u("min_loops");
  p.max_loops = u("max_loops");
  p.ticks = u("ticks");
  p.scale_ups = u("scale_ups");
  p.scale_downs = u("scale_downs");
  p.window_ns = u("window_ns");
  p.scale_down_threshold = f("scale_down_threshold");
  p.scale_up_threshold = f("scale_up_threshold");
  p.last_rule = u("last_rule");
  p.last_decision = text("last_decision");
  p.figures = figures_of(seg, layout, Record::kSegment);
  if (u("pid") != p.pid) {
    return corrupt_segment(s.offset, absl::StrCat("pid = ", u("pid"),
                                                  " but the owner word says ",
                                                  p.pid));
  }
  const std::uint64_t loops = u("loops");
  if (loops > s.loop_capacity) {
    return corrupt_segment(s.offset,
                           absl::StrCat("loops = ", loops,
                                        " exceeds loop_capacity ",
                                        s.loop_capacity));
  }
  p.loops.reserve(loops);
  for (std::uint64_t i = 0; i < loops; ++i) {
    const std::byte* slot =
        seg + layout.segment_header_size + i * layout.loop_slot_size;
    auto lu = [&](std::string_view name) {
      return get_u64(slot, known(layout, Record::kLoop, name));
    };
    LoopSnapshot l;
    l.index = lu("index");
    l.state = lu("state");
    l.state_name = state_name(l.state);
    l.utilization = get_f64(slot, known(layout, Record::kLoop, "utilization"));
    l.busy_ns = lu("busy_ns");
    l.handlers = lu("handlers");
    l.wakeups = lu("wakeups");
    l.registrations = lu("registrations");
    l.cpu_ns = lu("cpu_ns");
    l.suspensions = lu("suspensions");
    l.resumes = lu("resumes");
    l.figures = figures_of(slot, layout, Record::kLoop);
    p.loops.push_back(std::move(l));
  }
  return absl::OkStatus();
}

// Combines `items` (figure lists, all in the same schema order) by each
// figure's rule; figures whose rule is kNone are left out.
std::vector<Figure> aggregate(const std::vector<const std::vector<Figure>*>& items,
                              const std::vector<Figure>& prototype) {
  std::vector<Figure> out;
  for (std::size_t k = 0; k < prototype.size(); ++k) {
    Figure g = prototype[k];
    if (g.aggregation == Aggregation::kNone) continue;
    g.u = 0;
    g.f = 0.0;
    bool first = true;
    double sum = 0.0;
    for (const std::vector<Figure>* item : items) {
      const Figure& x = (*item)[k];
      switch (g.aggregation) {
        case Aggregation::kSum:
          if (g.is_float) {
            g.f += x.f;
          } else {
            g.u += x.u;
          }
          break;
        case Aggregation::kMax:
        case Aggregation::kMin: {
          const bool max = g.aggregation == Aggregation::kMax;
          if (g.is_float) {
            if (first || (max ? x.f > g.f : x.f < g.f)) g.f = x.f;
          } else {
            if (first || (max ? x.u > g.u : x.u < g.u)) g.u = x.u;
          }
          break;
        }
        case Aggregation::kMean:
          sum += x.as_double();
          break;
        case Aggregation::kNone:
          break;
      }
      first = false;
    }
    if (g.aggregation == Aggregation::kMean) {
      g.is_float = true;
      g.f = items.empty() ? 0.0 : sum / static_cast<double>(items.size());
    }
    out.push_back(std::move(g));
  }
  return out;
}

std::vector<ServiceSnapshot> services_of(const std::vector<ProcessSnapshot>& processes) {
  struct Group {
    std::set<std::uint64_t> pids;
    std::vector<const std::vector<Figure>*> pools;
    std::vector<const std::vector<Figure>*> loops;
  };
  std::map<std::string, Group> groups;  // sorted by name
  const std::vector<Figure>* segment_proto = nullptr;
  const std::vector<Figure>* loop_proto = nullptr;
  for (const ProcessSnapshot& p : processes) {
    if (p.stale || !p.consistent) continue;
    Group& g = groups[p.service];
    g.pids.insert(p.pid);
    g.pools.push_back(&p.figures);
    segment_proto = &p.figures;
    for (const LoopSnapshot& l : p.loops) {
      g.loops.push_back(&l.figures);
      loop_proto = &l.figures;
    }
  }
  std::vector<ServiceSnapshot> out;
  for (auto& [name, g] : groups) {
    ServiceSnapshot s;
    s.name = name;
    s.processes = g.pids.size();
    s.pools = g.pools.size();
    s.figures = aggregate(g.pools, *segment_proto);
    if (loop_proto != nullptr) {
      for (Figure& f : aggregate(g.loops, *loop_proto)) {
        s.figures.push_back(std::move(f));
      }
    }
    for (const Figure& f : s.figures) {
      if (f.name == "loops") s.loops = f.u;
      if (f.name == "active_loops") s.active_loops = f.u;
      if (f.name == "utilization") s.utilization = f.f;
    }
    out.push_back(std::move(s));
  }
  return out;
}

absl::Status open_error(const std::string& path, absl::string_view what) {
  return absl::FailedPreconditionError(
      absl::StrCat("shared-memory metrics file ", path, ": ", what));
}

// Opens `path` without following a symlink and checks it is a regular file.
absl::StatusOr<int> open_file(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ELOOP) return open_error(path, "is a symbolic link: refused");
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat(
          "shared-memory metrics file ", path,
          " does not exist (no pool with metrics.enabled has run)"));
    }
    return open_error(path, std::strerror(errno));
  }
  struct stat st{};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return open_error(path, "is not a regular file");
  }
  return fd;
}

}  // namespace

std::string default_liveness(std::uint64_t pid, std::uint64_t start_time) {
  return detail::process_gone_reason(pid, start_time);
}

absl::StatusOr<Snapshot> parse_snapshot(const std::byte* data, std::size_t size,
                                        const ReadOptions& options) {
  auto layout = detail::parse_header(data, size);
  if (!layout.ok()) return layout.status();
  auto segments = detail::list_segments(data, size, *layout);
  if (!segments.ok()) return segments.status();

  Snapshot snap;
  snap.version_major = layout->version_major;
  snap.version_minor = layout->version_minor;
  snap.file_size = size;
  snap.used_bytes = layout->used_bytes;
  std::vector<std::uint64_t> buf;  // 8-aligned copy of one segment
  for (const detail::SegmentExtent& s : *segments) {
    if (s.owner == 0) continue;  // free
    ProcessSnapshot p;
    p.offset = s.offset;
    p.owner = s.owner;
    p.pid = owner_pid(s.owner);
    buf.assign(s.size / 8, 0);
    auto* copy = reinterpret_cast<std::byte*>(buf.data());
    p.consistent = loopscale::detail::seqlock_try_read(
        detail::word(data, s.offset + offsetof(SegmentRecord, seq)),
        [&] { detail::copy_out(copy, data, s.offset, s.size); },
        options.max_attempts);
    const std::uint64_t generation =
        get_u64(copy, known(*layout, Record::kSegment, "generation"));
    p.generation = generation;
    if (p.consistent) {
      // A claimer between its compare-and-swap and its first write, or an
      // owner releasing: nothing to show yet.
      if (generation != owner_generation(s.owner)) continue;
      if (absl::Status st = decode(copy, s, *layout, p); !st.ok()) return st;
    } else {
      p.start_time = get_u64(copy, known(*layout, Record::kSegment, "start_time"));
    }
    p.stale_reason = options.liveness(p.pid, p.start_time);
    p.stale = !p.stale_reason.empty();
    snap.processes.push_back(std::move(p));
  }
  snap.services = services_of(snap.processes);
  return snap;
}

absl::StatusOr<Reader> Reader::open(const std::string& path,
                                    ReadOptions options) {
  auto fd = open_file(path, O_RDONLY);
  if (!fd.ok()) return fd.status();
  return Reader(path, *fd, std::move(options));
}

Reader::Reader(std::string path, int fd, ReadOptions options)
    : path_(std::move(path)), fd_(fd), options_(std::move(options)) {}

Reader::Reader(Reader&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      options_(std::move(other.options_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

Reader& Reader::operator=(Reader&& other) noexcept {
  if (this != &other) {
    unmap();
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    options_ = std::move(other.options_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Reader::~Reader() {
  unmap();
  if (fd_ >= 0) ::close(fd_);
}

void Reader::unmap() {
  if (data_ != nullptr) {
    munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
  }
}

absl::StatusOr<Snapshot> Reader::snapshot() {
  struct stat st{};
  if (fstat(fd_, &st) != 0) {
    return open_error(path_, absl::StrCat("fstat: ", std::strerror(errno)));
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size == 0) {
    return absl::UnavailableError(absl::StrCat(
        "shared-memory metrics file ", path_, " is empty (not initialized)"));
  }
  if (size != size_) {
    unmap();
    void* p = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd_, 0);
    if (p == MAP_FAILED) {
      return open_error(path_, absl::StrCat("mmap: ", std::strerror(errno)));
    }
    data_ = static_cast<const std::byte*>(p);
    size_ = size;
  }
  auto snap = parse_snapshot(data_, size_, options_);
  if (!snap.ok()) {
    return absl::Status(snap.status().code(),
                        absl::StrCat(path_, ": ", snap.status().message()));
  }
  return snap;
}

absl::StatusOr<std::size_t> reclaim_stale(const std::string& path,
                                          const ReadOptions& options) {
  auto fd = open_file(path, O_RDWR);
  if (!fd.ok()) return fd.status();
  struct stat st{};
  if (fstat(*fd, &st) != 0 || st.st_size == 0) {
    ::close(*fd);
    return open_error(path, "empty or unreadable");
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
  ::close(*fd);
  if (p == MAP_FAILED) {
    return open_error(path, absl::StrCat("mmap: ", std::strerror(errno)));
  }
  auto* data = static_cast<std::byte*>(p);
  std::size_t freed = 0;
  auto snap = parse_snapshot(data, size, options);
  if (snap.ok()) {
    for (const ProcessSnapshot& proc : snap->processes) {
      if (!proc.stale) continue;
      std::uint64_t expected = proc.owner;
      if (detail::word(data, proc.offset + offsetof(SegmentRecord, owner))
              .compare_exchange_strong(expected, 0)) {
        ++freed;
      }
    }
  }
  munmap(p, size);
  if (!snap.ok()) return snap.status();
  return freed;
}

}  // namespace loopscale::shm
