#include "loopscale/shm/reader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "loopscale/detail/seqlock.hpp"
#include "loopscale/loop_state.hpp"
#include "loopscale/shm/detail/file_layout.hpp"
#include "loopscale/shm/detail/file_lock.hpp"
#include "loopscale/shm/detail/process.hpp"
#include "loopscale/shm/detail/words.hpp"

namespace loopscale::shm {
namespace {

using detail::Field;
using detail::FileLayout;

// The file stores LoopState's value (loop_state.hpp).
std::string state_name(std::uint64_t state) {
  if (state <= static_cast<std::uint64_t>(LoopState::kStopped)) {
    return std::string(to_string(static_cast<LoopState>(state)));
  }
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

// The fields a snapshot decodes, looked up by name once per snapshot.
struct Resolved {
  explicit Resolved(const FileLayout& layout) {
    auto seg = [&](std::string_view name) {
      return layout.find(Record::kSegment, name);  // parse_header checked it
    };
    auto loop = [&](std::string_view name) {
      return layout.find(Record::kLoop, name);
    };
    generation = seg("generation");
    pid = seg("pid");
    start_time = seg("start_time");
    service = seg("service");
    pool = seg("pool");
    heartbeat_ns = seg("heartbeat_ns");
    loops = seg("loops");
    active_loops = seg("active_loops");
    min_loops = seg("min_loops");
    max_loops = seg("max_loops");
    ticks = seg("ticks");
    scale_ups = seg("scale_ups");
    scale_downs = seg("scale_downs");
    window_ns = seg("window_ns");
    scale_down_threshold = seg("scale_down_threshold");
    scale_up_threshold = seg("scale_up_threshold");
    last_rule = seg("last_rule");
    last_decision = seg("last_decision");
    index = loop("index");
    state = loop("state");
    utilization = loop("utilization");
    busy_ns = loop("busy_ns");
    handlers = loop("handlers");
    wakeups = loop("wakeups");
    registrations = loop("registrations");
    cpu_ns = loop("cpu_ns");
    suspensions = loop("suspensions");
    resumes = loop("resumes");
    scheduling_lag_ns = loop("scheduling_lag_ns");  // null in 1.0 files
    moves_requested = seg("moves_requested");       // null before 1.2
    moves_in = loop("moves_in");
    moves_out = loop("moves_out");
    moves_failed = loop("moves_failed");
    for (std::size_t i = 0; i < kJobSlots; ++i) {  // null before 1.4
      job_name[i] = seg(kJobNameFields[i]);
      job_busy_ns[i] = loop(kJobBusyFields[i]);
      job_count[i] = loop(kJobCountFields[i]);
    }
    for (const Field& f : layout.schema) {
      if (f.type == FieldType::kString || is_job_field(f.name)) continue;
      (f.record == Record::kSegment ? segment_numbers : loop_numbers).push_back(&f);
    }
  }
  const Field *generation, *pid, *start_time, *service, *pool, *heartbeat_ns,
      *loops, *active_loops, *min_loops, *max_loops, *ticks, *scale_ups,
      *scale_downs, *window_ns, *scale_down_threshold, *scale_up_threshold,
      *last_rule, *last_decision, *moves_requested;
  const Field *index, *state, *utilization, *busy_ns, *handlers, *wakeups,
      *registrations, *cpu_ns, *suspensions, *resumes, *scheduling_lag_ns,
      *moves_in, *moves_out, *moves_failed;
  std::array<const Field*, kJobSlots> job_name{}, job_busy_ns{}, job_count{};
  // Every numeric field of each record but the job types', in schema order.
  std::vector<const Field*> segment_numbers, loop_numbers;
};

// The numeric fields `fields` of the record at `base`.
std::vector<Figure> figures_of(const std::byte* base,
                               const std::vector<const Field*>& fields) {
  std::vector<Figure> out;
  out.reserve(fields.size());
  for (const Field* f : fields) {
    Figure g{f->name, f->unit, f->aggregation, f->type == FieldType::kF64, 0, 0.0};
    if (g.is_float) {
      g.f = get_f64(base, *f);
    } else {
      g.u = get_u64(base, *f);
    }
    out.push_back(std::move(g));
  }
  return out;
}

absl::Status corrupt_segment(std::uint64_t offset, absl::string_view what) {
  return absl::DataLossError(absl::StrCat(
      "corrupt metrics file: segment at offset ", offset, ": ", what));
}

// Decodes a consistent copy of a segment into `p`.
absl::Status decode(const std::byte* seg, const detail::SegmentExtent& s,
                    const FileLayout& layout, const Resolved& r,
                    ProcessSnapshot& p) {
  p.start_time = get_u64(seg, *r.start_time);
  p.service = detail::field_text(seg, *r.service);
  p.pool = detail::field_text(seg, *r.pool);
  p.heartbeat_ns = get_u64(seg, *r.heartbeat_ns);
  p.active_loops = get_u64(seg, *r.active_loops);
  p.min_loops = get_u64(seg, *r.min_loops);
  p.max_loops = get_u64(seg, *r.max_loops);
  p.ticks = get_u64(seg, *r.ticks);
  p.scale_ups = get_u64(seg, *r.scale_ups);
  p.scale_downs = get_u64(seg, *r.scale_downs);
  p.window_ns = get_u64(seg, *r.window_ns);
  p.scale_down_threshold = get_f64(seg, *r.scale_down_threshold);
  p.scale_up_threshold = get_f64(seg, *r.scale_up_threshold);
  p.last_rule = get_u64(seg, *r.last_rule);
  if (r.moves_requested != nullptr) {
    p.moves_requested = get_u64(seg, *r.moves_requested);
  }
  p.last_decision = detail::field_text(seg, *r.last_decision);
  p.figures = figures_of(seg, r.segment_numbers);
  if (const std::uint64_t pid = get_u64(seg, *r.pid); pid != p.pid) {
    return corrupt_segment(s.offset, absl::StrCat("pid = ", pid,
                                                  " but the owner word says ",
                                                  p.pid));
  }
  const std::uint64_t loops = get_u64(seg, *r.loops);
  if (loops > s.loop_capacity) {
    return corrupt_segment(s.offset,
                           absl::StrCat("loops = ", loops,
                                        " exceeds loop_capacity ",
                                        s.loop_capacity));
  }
  // The job type slots in use: those with a name.
  std::vector<std::size_t> job_slots;
  for (std::size_t j = 0; j < kJobSlots; ++j) {
    // A slot needs all three fields (a file of minor 1.3 or less may carry
    // some rows of a later version, or a corrupt one only some).
    if (r.job_name[j] == nullptr || r.job_busy_ns[j] == nullptr ||
        r.job_count[j] == nullptr) {
      continue;
    }
    std::string name = detail::field_text(seg, *r.job_name[j]);
    if (name.empty()) continue;
    job_slots.push_back(j);
    p.jobs.push_back({std::move(name), 0, 0});
  }
  p.loops.reserve(loops);
  for (std::uint64_t i = 0; i < loops; ++i) {
    const std::byte* slot =
        seg + layout.segment_header_size + i * layout.loop_slot_size;
    LoopSnapshot l;
    l.index = get_u64(slot, *r.index);
    l.state = get_u64(slot, *r.state);
    l.state_name = state_name(l.state);
    l.utilization = get_f64(slot, *r.utilization);
    l.busy_ns = get_u64(slot, *r.busy_ns);
    l.handlers = get_u64(slot, *r.handlers);
    l.wakeups = get_u64(slot, *r.wakeups);
    l.registrations = get_u64(slot, *r.registrations);
    l.cpu_ns = get_u64(slot, *r.cpu_ns);
    l.suspensions = get_u64(slot, *r.suspensions);
    l.resumes = get_u64(slot, *r.resumes);
    if (r.scheduling_lag_ns != nullptr) {
      l.scheduling_lag_ns = get_u64(slot, *r.scheduling_lag_ns);
    }
    if (r.moves_in != nullptr) l.moves_in = get_u64(slot, *r.moves_in);
    if (r.moves_out != nullptr) l.moves_out = get_u64(slot, *r.moves_out);
    if (r.moves_failed != nullptr) {
      l.moves_failed = get_u64(slot, *r.moves_failed);
    }
    l.figures = figures_of(slot, r.loop_numbers);
    for (std::size_t k = 0; k < job_slots.size(); ++k) {
      const std::size_t j = job_slots[k];
      JobSnapshot job{p.jobs[k].name, get_u64(slot, *r.job_busy_ns[j]),
                      get_u64(slot, *r.job_count[j])};
      p.jobs[k].busy_ns += job.busy_ns;
      p.jobs[k].count += job.count;
      l.jobs.push_back(std::move(job));
    }
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

}  // namespace

std::vector<ServiceSnapshot> services_of(const std::vector<ProcessSnapshot>& processes) {
  struct Group {
    std::set<std::uint64_t> pids;
    std::vector<const std::vector<Figure>*> pools;
    std::vector<const std::vector<Figure>*> loops;
    std::map<std::string, JobSnapshot> jobs;  // by name: ids are per process
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
    for (const JobSnapshot& j : p.jobs) {
      JobSnapshot& sum = g.jobs[j.name];
      sum.name = j.name;
      sum.busy_ns += j.busy_ns;
      sum.count += j.count;
    }
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
    if (auto other = g.jobs.find(std::string(kOtherJobName)); other != g.jobs.end()) {
      s.jobs.push_back(other->second);
      g.jobs.erase(other);
    }
    for (auto& [job_name, job] : g.jobs) s.jobs.push_back(std::move(job));
    for (const Figure& f : s.figures) {
      if (f.name == "loops") s.loops = f.u;
      if (f.name == "active_loops") s.active_loops = f.u;
      if (f.name == "utilization") s.utilization = f.f;
    }
    out.push_back(std::move(s));
  }
  return out;
}

namespace {

absl::Status open_error(const std::string& path, absl::string_view what) {
  return absl::FailedPreconditionError(
      absl::StrCat("shared-memory metrics file ", path, ": ", what));
}

// Opens `path` without following a symlink and checks it is a regular file.
absl::StatusOr<int> open_file(const std::string& path, int flags) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
  // writer, for ever (it is refused below as not a regular file).
  const int fd = ::open(path.c_str(), flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
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

std::string default_liveness(std::uint64_t pid,
                             std::optional<std::uint64_t> start_time) {
  return detail::process_gone_reason(pid, start_time);
}

absl::StatusOr<Snapshot> parse_snapshot(const std::byte* data, std::size_t size,
                                        const ReadOptions& options) {
  auto layout = detail::parse_header(data, size);
  if (!layout.ok()) return layout.status();
  auto segments = detail::list_segments(data, size, *layout);
  if (!segments.ok()) return segments.status();

  const Resolved fields(*layout);
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
    const std::uint64_t generation = get_u64(copy, *fields.generation);
    p.generation = generation;
    if (p.consistent) {
      // A claimer between its compare-and-swap and its first write, or an
      // owner releasing: nothing to show yet.
      if (generation != owner_generation(s.owner)) continue;
      if (absl::Status st = decode(copy, s, *layout, fields, p); !st.ok()) {
        return st;
      }
    }
    // A torn copy's start time may be half written: judge by the pid alone.
    p.stale_reason = options.liveness(
        p.pid, p.consistent ? std::optional(p.start_time) : std::nullopt);
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
      options_(std::move(other.options_)) {}

Reader& Reader::operator=(Reader&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    options_ = std::move(other.options_);
  }
  return *this;
}

bool Reader::file_replaced() const {
  struct stat now{}, held{};
  if (::stat(path_.c_str(), &now) != 0) return true;
  if (fstat(fd_, &held) != 0) return true;
  return now.st_dev != held.st_dev || now.st_ino != held.st_ino;
}

std::string Reader::trust_warning() const {
  struct stat st{};
  if (fstat(fd_, &st) != 0) return "";
  std::string why;
  if (st.st_uid != geteuid() && st.st_uid != 0) {
    why = absl::StrCat("belongs to uid ", st.st_uid, ", not to this user (uid ",
                       geteuid(), ")");
  }
  if ((st.st_mode & S_IWOTH) != 0) {
    absl::StrAppend(&why, why.empty() ? "" : " and ", "is writable by any user (mode 0",
                    absl::StrFormat("%o", st.st_mode & 07777), ")");
  }
  if (why.empty()) return "";
  return absl::StrCat(path_, " ", why, ": whoever can write it can forge its figures");
}

Reader::~Reader() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {

// Reads up to `size` bytes of `fd` from offset 0 into `buf` (resized to
// whole words); returns how many it got (fewer if the file shrank).
absl::StatusOr<std::size_t> read_all(int fd, std::size_t size,
                                     std::vector<std::uint64_t>& buf) {
  buf.assign((size + 7) / 8, 0);
  auto* out = reinterpret_cast<char*>(buf.data());
  std::size_t got = 0;
  while (got < size) {
    const ssize_t n = ::pread(fd, out + got, size - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(std::strerror(errno));
    if (n == 0) break;  // the file shrank
    got += static_cast<std::size_t>(n);
  }
  return got;
}

// How much of the file a snapshot reads: what its header says is in use
// (`used_bytes`), at most what the file holds. A file that is not a
// loopscale file is read only as far as a header goes, for the parser to
// name what is wrong; a header that claims more than kMaxReadBytes is
// refused. Never the file's size as such: an 8 GiB sparse file at the path
// must not cost 8 GiB.
absl::StatusOr<std::size_t> extent_to_read(int fd, std::size_t file_size,
                                           const std::string& path) {
  std::vector<std::uint64_t> head;
  auto got = read_all(fd, std::min(file_size, kHeaderSize), head);
  if (!got.ok()) return got.status();
  if (*got < sizeof(FileHeader) || std::memcmp(head.data(), kMagic.data(), kMagic.size()) != 0) {
    return *got;
  }
  const std::uint64_t used = head[offsetof(FileHeader, used_bytes) / 8];
  if (used > Reader::kMaxReadBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shared-memory metrics file ", path, ": its header says used_bytes = ", used,
        ", more than a reader reads (", Reader::kMaxReadBytes,
        " bytes); the file is corrupt or not loopscale's"));
  }
  return std::min<std::size_t>(file_size, std::max<std::size_t>(used, *got));
}

// Copies of the file agree when no writer touched it between the two reads:
// a segment's seq word changes whenever a write starts or ends, so equal
// copies hold no torn segment. Where two copies disagree, the segment's seq
// is made odd in `first`, so that the decoder reports it as being written
// rather than trusting bytes read in the middle of a write.
void mark_changed_segments(std::vector<std::uint64_t>& first, std::size_t size,
                           const std::vector<std::uint64_t>& second) {
  const auto* data = reinterpret_cast<const std::byte*>(first.data());
  auto layout = detail::parse_header(data, size);
  if (!layout.ok()) return;
  auto segments = detail::list_segments(data, size, *layout);
  if (!segments.ok()) return;
  for (const detail::SegmentExtent& seg : *segments) {
    const std::size_t from = seg.offset / 8;
    const std::size_t to = std::min(first.size(), (seg.offset + seg.size) / 8);
    if (to > second.size()) continue;
    if (!std::equal(first.begin() + from, first.begin() + to, second.begin() + from)) {
      first[(seg.offset + offsetof(SegmentRecord, seq)) / 8] |= 1;
    }
  }
}

}  // namespace

absl::StatusOr<Snapshot> Reader::snapshot() {
  // Read through copies, not a mapping: a file that shrinks while a
  // mapping of it is read kills the reader with SIGBUS; a copy is just
  // short. Two copies that agree hold no torn segment (see
  // mark_changed_segments); a writer busy through every attempt leaves
  // its pool reported as being written, as a seqlock reader would.
  struct stat st{};
  if (fstat(fd_, &st) != 0) {
    return open_error(path_, absl::StrCat("fstat: ", std::strerror(errno)));
  }
  if (st.st_size == 0) {
    return absl::UnavailableError(absl::StrCat(
        "shared-memory metrics file ", path_, " is empty (not initialized)"));
  }
  auto extent = extent_to_read(fd_, static_cast<std::size_t>(st.st_size), path_);
  if (!extent.ok()) {
    if (absl::IsInvalidArgument(extent.status())) return extent.status();
    return open_error(path_, extent.status().message());
  }
  const std::size_t size = *extent;
  std::vector<std::uint64_t> first, second;
  auto got = read_all(fd_, size, first);
  if (!got.ok()) return open_error(path_, got.status().message());
  bool agreed = false;
  for (int attempt = 0; attempt < kCopyAttempts && !agreed; ++attempt) {
    auto again = read_all(fd_, size, second);
    if (!again.ok()) return open_error(path_, again.status().message());
    agreed = *again == *got && first == second;
    if (!agreed) {
      std::swap(first, second);  // the newer copy becomes the one to check
      got = again;
    }
  }
  if (!agreed) mark_changed_segments(first, *got, second);
  auto snap = parse_snapshot(reinterpret_cast<const std::byte*>(first.data()), *got,
                             options_);
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
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }  // drops the flock too
  } closer{*fd};
  struct stat st{};
  if (fstat(*fd, &st) != 0 || st.st_size == 0) return open_error(path, "empty or unreadable");
  // Freeing a segment writes into the file: only into one's own.
  if (st.st_uid != geteuid()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "shared-memory metrics file ", path, " belongs to uid ", st.st_uid,
        ", not to this user (uid ", geteuid(), "): not reclaiming in another user's file"));
  }
  // Under the lock publishers hold while they claim a segment, so that none
  // is claimed between reading a dead owner and freeing it. Read and
  // written through pread/pwrite, never a mapping: a file that shrinks
  // meanwhile gives a short read or an error, not a SIGBUS.
  if (absl::Status s = detail::lock_file(*fd, path); !s.ok()) return s;
  auto extent = extent_to_read(*fd, static_cast<std::size_t>(st.st_size), path);
  if (!extent.ok()) return extent.status();
  std::vector<std::uint64_t> copy;
  auto got = read_all(*fd, *extent, copy);
  if (!got.ok()) return open_error(path, got.status().message());
  auto snap = parse_snapshot(reinterpret_cast<const std::byte*>(copy.data()), *got, options);
  if (!snap.ok()) {
    return absl::Status(snap.status().code(), absl::StrCat(path, ": ", snap.status().message()));
  }
  std::size_t freed = 0;
  for (const ProcessSnapshot& proc : snap->processes) {
    if (!proc.stale) continue;
    const auto at = static_cast<off_t>(proc.offset + offsetof(SegmentRecord, owner));
    std::uint64_t owner = 0;
    if (::pread(*fd, &owner, sizeof owner, at) != sizeof owner || owner != proc.owner) continue;
    const std::uint64_t zero = 0;
    if (::pwrite(*fd, &zero, sizeof zero, at) == sizeof zero) ++freed;
  }
  return freed;
}

}  // namespace loopscale::shm
