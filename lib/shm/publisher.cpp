#include "loopscale/shm/publisher.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "loopscale/clock.hpp"
#include "loopscale/detail/seqlock.hpp"
#include "loopscale/shm/figures.hpp"
#include "loopscale/shm/detail/file_layout.hpp"
#include "loopscale/shm/detail/file_lock.hpp"
#include "loopscale/shm/detail/process.hpp"
#include "loopscale/shm/detail/words.hpp"
#include "loopscale/shm/layout.hpp"

namespace loopscale::shm {

using detail::load;
using detail::store;
using detail::word;

// A writable mapping of the whole file, as it was when attached.
struct Publisher::Mapping {
  std::byte* data = nullptr;
  std::size_t size = 0;
  detail::FileLayout layout;
  // The kSchema rows this file has: a file of an older minor version (made
  // by an older process) lacks the newer rows, and has no room for them.
  std::vector<const FieldSpec*> rows;

  ~Mapping() {
    if (data != nullptr) munmap(data, size);
  }
};

namespace {

// The file grows in steps of this many bytes, so that a fleet of processes
// starting together does not reallocate it once each.
constexpr std::uint64_t kGrowStep = 64 * 1024;

std::string errno_text(int err) { return std::strerror(err); }

// Closes a file descriptor (and drops its flock) on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

absl::Status path_error(const std::string& path, absl::string_view what) {
  return absl::FailedPreconditionError(
      absl::StrCat("shared-memory metrics file ", path, ": ", what));
}


absl::Status grow(int fd, const std::string& path, std::uint64_t bytes) {
  const std::uint64_t rounded = (bytes + kGrowStep - 1) / kGrowStep * kGrowStep;
  // posix_fallocate reserves the pages now, so a full tmpfs fails here with
  // ENOSPC instead of killing a writer with SIGBUS later; it never shrinks.
  const int err = posix_fallocate(fd, 0, static_cast<off_t>(rounded));
  if (err != 0) {
    return path_error(path, absl::StrCat("cannot grow to ", rounded,
                                         " bytes: ", errno_text(err)));
  }
  return absl::OkStatus();
}

// Writes the header and schema of a new file, or over the zero magic of one
// whose creator died mid-way. The file is never shrunk (a reader may have it
// mapped): the header region is zeroed word by word instead. The magic goes
// last, so a reader never takes a half-written header for a valid one.
absl::Status initialize(int fd, const std::string& path) {
  if (absl::Status s = grow(fd, path, kHeaderSize); !s.ok()) return s;
  void* p = mmap(nullptr, kHeaderSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    return path_error(path, absl::StrCat("mmap: ", errno_text(errno)));
  }
  auto* data = static_cast<std::byte*>(p);
  for (std::size_t off = 8; off < kHeaderSize; off += 8) store(data, off, 0);
  FileHeader h{};
  h.version_major = kVersionMajor;
  h.version_minor = kVersionMinor;
  h.byte_order = kByteOrderMark;
  h.header_size = kHeaderSize;
  h.schema_offset = kSchemaOffset;
  h.schema_count = kSchema.size();
  h.schema_entry_size = sizeof(SchemaEntry);
  h.segment_header_size = sizeof(SegmentRecord);
  h.loop_slot_size = sizeof(LoopRecord);
  h.used_bytes = kHeaderSize;
  static_assert(kSchemaOffset + kSchema.size() * sizeof(SchemaEntry) <= kHeaderSize);
  for (std::size_t i = 0; i < kSchema.size(); ++i) {
    const FieldSpec& f = kSchema[i];
    SchemaEntry e{};
    std::memcpy(e.name, f.name.data(), std::min(f.name.size(), sizeof(e.name) - 1));
    std::memcpy(e.unit, f.unit.data(), std::min(f.unit.size(), sizeof(e.unit) - 1));
    e.record = f.record;
    e.type = f.type;
    e.offset = f.offset;
    e.size = f.size;
    e.aggregation = f.aggregation;
    detail::copy_in(data, kSchemaOffset + i * sizeof(SchemaEntry), &e, sizeof(e));
  }
  // Everything but the magic word, then the magic with release.
  detail::copy_in(data, 8, reinterpret_cast<const std::byte*>(&h) + 8,
                  sizeof(h) - 8);
  std::uint64_t magic;
  std::memcpy(&magic, kMagic.data(), 8);
  store(data, 0, magic, std::memory_order_release);
  munmap(p, kHeaderSize);
  return absl::OkStatus();
}

bool magic_is_zero(int fd) {
  char magic[8] = {};
  return pread(fd, magic, sizeof(magic), 0) != sizeof(magic) ||
         std::memcmp(magic, "\0\0\0\0\0\0\0\0", 8) == 0;
}

// True if the segment's owner is a process that has ended (the liveness
// rule: detail::process_gone_reason). An owner whose process runs but has not
// written its identity yet (it claimed the segment and is initializing it)
// is alive.
bool owner_is_dead(const std::byte* data, const detail::SegmentExtent& s) {
  std::uint64_t generation = 0;
  std::uint64_t start_time = 0;
  const bool read = loopscale::detail::seqlock_try_read(
      word(data, s.offset + offsetof(SegmentRecord, seq)),
      [&] {
        generation = load(data, s.offset + offsetof(SegmentRecord, generation));
        start_time = load(data, s.offset + offsetof(SegmentRecord, start_time));
      },
      detail::kSeqlockAttempts);
  const bool ours = read && generation == owner_generation(s.owner);
  return !detail::process_gone_reason(owner_pid(s.owner),
                                      ours ? std::optional(start_time) : std::nullopt)
              .empty();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Publisher::Mapping>> Publisher::map_file(
    int fd, const std::string& path) {
  struct stat st{};
  if (fstat(fd, &st) != 0) {
    return path_error(path, absl::StrCat("fstat: ", errno_text(errno)));
  }
  auto m = std::make_unique<Publisher::Mapping>();
  m->size = static_cast<std::size_t>(st.st_size);
  void* p = mmap(nullptr, m->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    return path_error(path, absl::StrCat("mmap: ", errno_text(errno)));
  }
  m->data = static_cast<std::byte*>(p);
  auto layout = detail::parse_header(m->data, m->size);
  if (!layout.ok()) {
    return path_error(path, absl::StrCat(layout.status().message(),
                                         "; remove the file if no process "
                                         "uses it"));
  }
  m->layout = *std::move(layout);
  if (m->layout.segment_header_size < sizeof(SegmentRecord) ||
      m->layout.loop_slot_size < kLoopRecordV10Size) {
    return path_error(path, "records are smaller than format 1.0's");
  }
  for (const FieldSpec& spec : kSchema) {
    const auto* f = m->layout.find(spec.record, spec.name);
    // A field newer than the file is not written: its readers would not
    // know it, and a loop slot may have no room for it.
    if (f == nullptr) continue;
    m->rows.push_back(&spec);
    if (f->offset != spec.offset || f->size != spec.size) {
      return path_error(path, absl::StrCat("field \"", std::string(spec.name),
                                           "\" is at another offset than this "
                                           "version writes"));
    }
  }
  return m;
}

absl::StatusOr<std::unique_ptr<Publisher>> Publisher::attach(
    const MetricsConfig& config, std::string_view pool_name,
    std::size_t loops) {
  const std::string path =
      config.shm_path.empty() ? std::string(kDefaultShmPath) : config.shm_path;
  const std::string service =
      config.service.empty() ? std::string(pool_name) : config.service;
  if (service.empty() || service.size() >= kNameBytes ||
      pool_name.size() >= kNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "service \"", service, "\" and pool name must be 1 to ",
        kNameBytes - 1, " bytes"));
  }
  if (loops == 0 || loops > detail::kMaxLoopCapacity) {
    return absl::InvalidArgumentError(
        absl::StrCat("loops = ", loops, ": must be in [1, ",
                     detail::kMaxLoopCapacity, "]"));
  }

  Fd fd{open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
             static_cast<mode_t>(config.file_mode))};
  if (fd.fd < 0) {
    if (errno == ELOOP) {
      return path_error(path, "is a symbolic link: refused (a link could "
                              "redirect metrics writes to any file)");
    }
    return path_error(path, absl::StrCat("cannot open or create: ",
                                         errno_text(errno)));
  }
  struct stat st{};
  if (fstat(fd.fd, &st) != 0) {
    return path_error(path, absl::StrCat("fstat: ", errno_text(errno)));
  }
  if (!S_ISREG(st.st_mode)) return path_error(path, "is not a regular file");
  const bool group_shared = (config.file_mode & 0060) == 0060;
  if (st.st_uid != geteuid() && !(group_shared && st.st_gid == getegid())) {
    return path_error(path, absl::StrFormat(
                                "is owned by uid %d, not this process's uid "
                                "%d: refused",
                                st.st_uid, geteuid()));
  }
  if (absl::Status s = detail::lock_file(fd.fd, path); !s.ok()) return s;
  if (fstat(fd.fd, &st) != 0) {
    return path_error(path, absl::StrCat("fstat: ", errno_text(errno)));
  }
  // An empty file, or one whose creator died before writing the magic (it
  // held the lock we hold now), is ours to initialize.
  if (st.st_size == 0 || magic_is_zero(fd.fd)) {
    if (absl::Status s = initialize(fd.fd, path); !s.ok()) return s;
  }
  auto map = map_file(fd.fd, path);
  if (!map.ok()) return map.status();
  std::unique_ptr<Mapping> m = *std::move(map);

  auto segments = detail::list_segments(m->data, m->size, m->layout);
  if (!segments.ok()) {
    return path_error(path, absl::StrCat(segments.status().message(),
                                         "; remove the file if no process "
                                         "uses it"));
  }
  const auto pid = static_cast<std::uint32_t>(getpid());
  std::uint64_t offset = 0;
  std::uint64_t owner = 0;
  auto next_owner = [&](std::uint64_t segment_offset) {
    const auto generation = static_cast<std::uint32_t>(
        load(m->data, segment_offset + offsetof(SegmentRecord, generation)) + 1);
    return make_owner(generation == 0 ? 1 : generation, pid);
  };
  for (const detail::SegmentExtent& s : *segments) {
    if (s.loop_capacity < loops) continue;
    std::uint64_t expected = s.owner;
    if (expected != 0 && !owner_is_dead(m->data, s)) continue;
    const std::uint64_t mine = next_owner(s.offset);
    if (word(m->data, s.offset + offsetof(SegmentRecord, owner))
            .compare_exchange_strong(expected, mine)) {
      offset = s.offset;
      owner = mine;
      break;
    }
  }
  if (owner == 0) {
    // Append a segment. Nothing reads past used_bytes, so its fixed words
    // are written before used_bytes is release-stored to cover it.
    const std::uint64_t at = m->layout.used_bytes;
    const std::uint64_t bytes = segment_bytes(
        m->layout.segment_header_size, m->layout.loop_slot_size, loops);
    if (at + bytes > m->size) {
      if (absl::Status s = grow(fd.fd, path, at + bytes); !s.ok()) return s;
      map = map_file(fd.fd, path);
      if (!map.ok()) return map.status();
      m = *std::move(map);
    }
    owner = make_owner(1, pid);
    offset = at;
    store(m->data, at + offsetof(SegmentRecord, size), bytes);
    store(m->data, at + offsetof(SegmentRecord, loop_capacity), loops);
    store(m->data, at + offsetof(SegmentRecord, owner), owner);
    store(m->data, offsetof(FileHeader, segments),
          load(m->data, offsetof(FileHeader, segments)) + 1);
    store(m->data, offsetof(FileHeader, used_bytes), at + bytes,
          std::memory_order_release);
  }
  // A mapping holds a reference to the open file description, and so would
  // keep the flock past close(): drop it explicitly.
  flock(fd.fd, LOCK_UN);
  return std::unique_ptr<Publisher>(
      new Publisher(path, service, std::string(pool_name), std::move(m), offset,
                    owner, loops));
}

Publisher::Publisher(std::string path, std::string service,
                     std::string pool_name, std::unique_ptr<Mapping> map,
                     std::uint64_t offset, std::uint64_t owner,
                     std::size_t loops)
    : path_(std::move(path)),
      service_(std::move(service)),
      map_(std::move(map)),
      offset_(offset),
      owner_(owner),
      loops_(loops) {
  loopscale::detail::MutexLock lock(mu_);
  const std::uint64_t size = load(map_->data, offset_ + offsetof(SegmentRecord, size));
  // Zero every byte under the seqlock (a reclaimed segment holds the last
  // owner's figures), then write the identity.
  image_.assign(size - kSeqlockedOffset, std::byte{0});
  write_image_locked();
  image_.resize(map_->layout.segment_header_size - kSeqlockedOffset +
                loops_ * map_->layout.loop_slot_size);
  // Readers show a segment once its identity matches its owner word.
  PoolStats empty;
  empty.name = std::move(pool_name);
  write_locked(empty);
}

Publisher::~Publisher() { release(); }

void Publisher::write_image_locked() {
  std::byte* seg = map_->data + offset_;
  loopscale::detail::seqlock_write_begin(word(seg, offsetof(SegmentRecord, seq)));
  detail::copy_in(seg, kSeqlockedOffset, image_.data(), image_.size());
  loopscale::detail::seqlock_write_end(word(seg, offsetof(SegmentRecord, seq)));
}

bool Publisher::still_owner() const {
  return !released_ &&
         load(map_->data, offset_ + offsetof(SegmentRecord, owner)) == owner_;
}

bool Publisher::attached() const {
  loopscale::detail::MutexLock lock(mu_);
  return still_owner();
}

void Publisher::publish(const PoolStats& stats) {
  loopscale::detail::MutexLock lock(mu_);
  if (!still_owner()) return;
  write_locked(stats);
}

void Publisher::write_locked(const PoolStats& stats) {
  // The process's identity, the heartbeat and the texts are the publisher's
  // own; every other field is a kSchema figure (shm/figures.hpp).
  SegmentRecord h{};
  h.generation = owner_generation(owner_);
  h.pid = owner_pid(owner_);
  static const std::uint64_t start_time = detail::self_start_time();
  h.start_time = start_time;
  h.heartbeat_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          Clock::now().time_since_epoch())
          .count());
  h.loops = loops_;
  auto put_text = [](char* dst, std::size_t cap, std::string_view text) {
    std::memcpy(dst, text.data(), std::min(text.size(), cap - 1));
  };
  put_text(h.service, sizeof(h.service), service_);
  put_text(h.pool, sizeof(h.pool), stats.name);
  put_text(h.last_decision, sizeof(h.last_decision), stats.last_decision.reason);

  std::fill(image_.begin(), image_.end(), std::byte{0});
  std::memcpy(image_.data(), reinterpret_cast<const std::byte*>(&h) + kSeqlockedOffset,
              sizeof(h) - kSeqlockedOffset);
  // Copies a figure's eight bytes to `at` in the image.
  auto put = [this](std::size_t at, const FigureValue& v) {
    if (v.is_float) {
      std::memcpy(image_.data() + at, &v.f, sizeof(v.f));
    } else {
      std::memcpy(image_.data() + at, &v.u, sizeof(v.u));
    }
  };
  for (const FieldSpec* f : map_->rows) {
    if (f->record != Record::kSegment) continue;
    if (f->type == FieldType::kString) {
      // The job types' names (the texts above are the record's own).
      if (auto name = job_name_value(f->name, stats); name && !name->empty()) {
        std::memcpy(image_.data() + f->offset - kSeqlockedOffset, name->data(),
                    std::min<std::size_t>(name->size(), f->size - 1));
      }
      continue;
    }
    if (auto v = pool_figure_value(f->name, stats)) put(f->offset - kSeqlockedOffset, *v);
  }
  const std::size_t slots = map_->layout.segment_header_size - kSeqlockedOffset;
  const std::size_t n = std::min(loops_, stats.loops.size());
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t slot = slots + i * map_->layout.loop_slot_size;
    for (const FieldSpec* f : map_->rows) {
      if (f->record != Record::kLoop) continue;
      if (auto v = loop_figure_value(f->name, stats.loops[i])) put(slot + f->offset, *v);
    }
  }
  write_image_locked();
}

void Publisher::release() {
  loopscale::detail::MutexLock lock(mu_);
  if (released_) return;
  if (still_owner()) {
    std::fill(image_.begin(), image_.end(), std::byte{0});
    write_image_locked();
    std::uint64_t expected = owner_;
    word(map_->data + offset_, offsetof(SegmentRecord, owner))
        .compare_exchange_strong(expected, 0);
  }
  released_ = true;
  map_.reset();
}

}  // namespace loopscale::shm
