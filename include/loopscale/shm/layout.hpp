// -----------------------------------------------------------------------------
// shm/layout.hpp
// -----------------------------------------------------------------------------
//
// The shared-memory metrics file, version 1.0: the record layouts and the
// schema table that describes them. `docs/shm-format.md` is the prose version,
// written so that a reader in another language needs nothing else; this
// header is what the C++ publisher and reader compile against, and
// `kSchema` is generated from the same structs so the two cannot drift.
//
// The file, in one picture (every field 8-byte aligned, native byte order):
//
//   0      FileHeader           magic "LOOPSCAL", version, sizes, used_bytes
//   128    SchemaEntry[count]   name, record, type, offset, size, unit, aggregation
//   ...    (padding up to header_size)
//   header_size
//          Segment 0            SegmentRecord, then loop_capacity LoopRecords
//          Segment 1            ...
//   used_bytes                  end of the last allocated segment
//
// A segment is one pool of one process (usually one per process). Segments are
// only ever appended (under an flock of the file) and never move; the file
// only grows, so a mapping taken earlier stays valid for everything it covers.
//
// Ownership: `SegmentRecord::owner` is 0 for a free segment, otherwise
// (claim generation << 32) | pid. A publisher claims a free segment by a
// compare-and-swap from 0; a supervisor reclaims a dead process's segment by a
// compare-and-swap from the exact owner word it judged dead, so a segment
// re-claimed meanwhile (new generation) is never taken from its new owner.
//
// Consistency: everything in a segment after `seq` (the pool's figures and
// all its loop slots) is written by one thread under the seqlock `seq` (odd
// while a write is in progress), so a reader gets a whole pool from one
// instant. The `owner`, `seq`, `size` and `loop_capacity` words are outside
// the seqlock: `size` and `loop_capacity` never change once the segment is
// allocated, and `owner` is only changed by compare-and-swap.
//
// Memory model: the file is shared between processes, so every access to it
// goes through `std::atomic_ref` on its 8-byte words (see shm/detail/words.hpp);
// the structs below only fix offsets and are never read or written as plain
// objects in the mapping.

#ifndef LOOPSCALE_SHM_LAYOUT_HPP_
#define LOOPSCALE_SHM_LAYOUT_HPP_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace loopscale::shm {

// The eight bytes at offset 0: "LOOPSCAL".
inline constexpr std::array<char, 8> kMagic = {'L', 'O', 'O', 'P',
                                               'S', 'C', 'A', 'L'};
// A reader refuses any other major version; a minor version only appends
// fields (in reserved space or by larger records) and never moves one.
inline constexpr std::uint32_t kVersionMajor = 1;
// 1.1 added the loop field `scheduling_lag_ns`; 1.2 the connection moves
// (loop fields `moves_in`, `moves_out`, `moves_failed`, segment field
// `moves_requested`).
inline constexpr std::uint32_t kVersionMinor = 2;
// Written as a native u64: a reader that sees other bytes has the wrong
// byte order.
inline constexpr std::uint64_t kByteOrderMark = 0x0102030405060708ULL;

// Fixed-size text fields hold UTF-8 padded with NUL bytes.
inline constexpr std::size_t kNameBytes = 64;
inline constexpr std::size_t kDecisionBytes = 256;

struct FileHeader {
  char magic[8];
  std::uint32_t version_major;
  std::uint32_t version_minor;
  std::uint64_t byte_order;           // kByteOrderMark
  std::uint64_t header_size;          // offset of the first segment
  std::uint64_t schema_offset;        // offset of SchemaEntry[0]
  std::uint64_t schema_count;
  std::uint64_t schema_entry_size;    // bytes per SchemaEntry
  std::uint64_t segment_header_size;  // bytes of SegmentRecord in this file
  std::uint64_t loop_slot_size;       // bytes per LoopRecord in this file
  std::uint64_t used_bytes;           // end of the last segment (release-stored)
  std::uint64_t segments;             // segments allocated so far
  std::uint64_t reserved[5];
};

// What a schema entry describes.
enum class Record : std::uint32_t { kSegment = 1, kLoop = 2 };
enum class FieldType : std::uint32_t {
  kU64 = 1,     // unsigned 64-bit integer
  kF64 = 2,     // IEEE 754 double
  kString = 3,  // `size` bytes of UTF-8, NUL padded
};
// How loopscale-top and ShmReader combine a field across the loops (loop
// fields) or pools (segment fields) of a service.
enum class Aggregation : std::uint32_t {
  kNone = 0,  // identity or per-item only
  kSum = 1,
  kMax = 2,
  kMean = 3,
  kMin = 4,
};

struct SchemaEntry {
  char name[32];          // NUL padded
  Record record;
  FieldType type;
  std::uint32_t offset;   // from the start of the record
  std::uint32_t size;     // bytes
  char unit[8];           // "ns", "count", "ratio", "pid", "ticks", "enum", ""
  Aggregation aggregation;
  std::uint32_t reserved;
};

// One pool of one process. `loop_capacity` LoopRecords follow it.
struct SegmentRecord {
  // -- outside the seqlock --
  std::uint64_t owner;          // 0 free; (generation << 32) | pid
  std::uint64_t seq;            // seqlock over everything below and the slots
  std::uint64_t size;           // bytes of the segment, slots included
  std::uint64_t loop_capacity;  // LoopRecords that follow
  // -- under the seqlock --
  std::uint64_t generation;     // the claim's generation (owner >> 32)
  std::uint64_t pid;
  std::uint64_t start_time;     // the process's start, clock ticks since boot
                                // (field 22 of /proc/<pid>/stat)
  std::uint64_t heartbeat_ns;   // CLOCK_MONOTONIC at the last publish
  std::uint64_t loops;          // slots in use (the pool's size)
  std::uint64_t active_loops;
  std::uint64_t min_loops;
  std::uint64_t max_loops;
  std::uint64_t ticks;          // monitor windows measured
  std::uint64_t scale_ups;
  std::uint64_t scale_downs;
  std::uint64_t window_ns;
  double scale_down_threshold;
  double scale_up_threshold;
  std::uint64_t last_rule;      // ScaleRule of the last decision (see docs)
  char service[kNameBytes];
  char pool[kNameBytes];
  char last_decision[kDecisionBytes];  // its one-line reason
  std::uint64_t moves_requested;  // since 1.2: connections asked to move
  std::uint64_t reserved[60];
};

// One loop.
struct LoopRecord {
  std::uint64_t index;
  std::uint64_t state;          // LoopState: 0 active, 1 draining,
                                // 2 suspending, 3 suspended, 4 stopped
  std::uint64_t busy_ns;        // includes the busy slice in progress
  std::uint64_t handlers;
  std::uint64_t wakeups;        // idle-to-busy transitions
  std::uint64_t registrations;
  double utilization;           // last window, 0..1
  std::uint64_t cpu_ns;         // CPU time of the loop's threads
  std::uint64_t suspensions;
  std::uint64_t resumes;
  std::uint64_t scheduling_lag_ns;  // since 1.1: the last probe's wait
  std::uint64_t moves_in;       // since 1.2: connections that moved here
  std::uint64_t moves_out;      // since 1.2: connections that left for another loop
  std::uint64_t moves_failed;   // since 1.2: asked to leave, could not
  std::uint64_t reserved[2];
};

static_assert(sizeof(FileHeader) == 128);
static_assert(sizeof(SchemaEntry) == 64);
static_assert(sizeof(SegmentRecord) == 1024);
static_assert(sizeof(LoopRecord) == 128);
static_assert(offsetof(SegmentRecord, seq) == 8);
static_assert(offsetof(SegmentRecord, generation) == 32);
static_assert(offsetof(FileHeader, used_bytes) == 72);

// The first byte under a segment's seqlock.
inline constexpr std::size_t kSeqlockedOffset = offsetof(SegmentRecord, generation);
// Where the schema table starts, and where segments start in files this
// version creates (room for the schema to grow in later minor versions).
inline constexpr std::size_t kSchemaOffset = sizeof(FileHeader);
inline constexpr std::size_t kHeaderSize = 4096;

// A row of the schema table, as compiled in.
struct FieldSpec {
  std::string_view name;
  Record record;
  FieldType type;
  std::uint32_t offset;
  std::uint32_t size;
  std::string_view unit;
  Aggregation aggregation;
  // The minor version that added the field: files of an older minor lack
  // it, and readers and writers go without it there.
  std::uint32_t since_minor = 0;
};

#define LOOPSCALE_SHM_FIELD(rec, type, st, field, unit, agg)               \
  FieldSpec {                                                              \
    #field, Record::rec, FieldType::type,                                  \
        static_cast<std::uint32_t>(offsetof(st, field)),                   \
        static_cast<std::uint32_t>(sizeof(st::field)), unit, Aggregation::agg \
  }
#define LOOPSCALE_SHM_FIELD_SINCE(minor, rec, type, st, field, unit, agg)   \
  FieldSpec {                                                              \
    #field, Record::rec, FieldType::type,                                  \
        static_cast<std::uint32_t>(offsetof(st, field)),                   \
        static_cast<std::uint32_t>(sizeof(st::field)), unit,               \
        Aggregation::agg, minor                                            \
  }

// Every field a reader may use, in the order they are written to the file.
// Names are unique across both records.
inline constexpr std::array kSchema = {
    LOOPSCALE_SHM_FIELD(kSegment, kU64, SegmentRecord, generation, "count", kNone),
    LOOPSCALE_SHM_FIELD(kSegment, kU64, SegmentRecord, pid, "pid", kNone),
    LOOPSCALE_SHM_FIELD(kSegment, kU64, SegmentRecord, start_time, "ticks", kNone),
    LOOPSCALE_SHM_FIELD(kSegment, kU64, SegmentRecord, heartbeat_ns, "ns", kMax),
    LOOPSCALE_SHM_FIELD(kSegment, kU64, SegmentRecord, loops, "count", kSum),
    LOOPSCALE_SHM_FIELD(kSegment, kU64, SegmentRecord, active_loops, "count", kSum),
    LOOPSCALE_SHM_FIELD(kSegment, kU64, SegmentRecord, min_loops, "count", kSum),
    LOOPSCALE_SHM_FIELD(kSegment, kU64, SegmentRecord, max_loops, "count", kSum),
    LOOPSCALE_SHM_FIELD(kSegment, kU64, SegmentRecord, ticks, "count", kMax),
    LOOPSCALE_SHM_FIELD(kSegment, kU64, SegmentRecord, scale_ups, "count", kSum),
    LOOPSCALE_SHM_FIELD(kSegment, kU64, SegmentRecord, scale_downs, "count", kSum),
    LOOPSCALE_SHM_FIELD(kSegment, kU64, SegmentRecord, window_ns, "ns", kNone),
    LOOPSCALE_SHM_FIELD(kSegment, kF64, SegmentRecord, scale_down_threshold, "ratio", kNone),
    LOOPSCALE_SHM_FIELD(kSegment, kF64, SegmentRecord, scale_up_threshold, "ratio", kNone),
    LOOPSCALE_SHM_FIELD(kSegment, kU64, SegmentRecord, last_rule, "enum", kNone),
    LOOPSCALE_SHM_FIELD(kSegment, kString, SegmentRecord, service, "", kNone),
    LOOPSCALE_SHM_FIELD(kSegment, kString, SegmentRecord, pool, "", kNone),
    LOOPSCALE_SHM_FIELD(kSegment, kString, SegmentRecord, last_decision, "", kNone),
    LOOPSCALE_SHM_FIELD(kLoop, kU64, LoopRecord, index, "count", kNone),
    LOOPSCALE_SHM_FIELD(kLoop, kU64, LoopRecord, state, "enum", kNone),
    LOOPSCALE_SHM_FIELD(kLoop, kU64, LoopRecord, busy_ns, "ns", kSum),
    LOOPSCALE_SHM_FIELD(kLoop, kU64, LoopRecord, handlers, "count", kSum),
    LOOPSCALE_SHM_FIELD(kLoop, kU64, LoopRecord, wakeups, "count", kSum),
    LOOPSCALE_SHM_FIELD(kLoop, kU64, LoopRecord, registrations, "count", kSum),
    LOOPSCALE_SHM_FIELD(kLoop, kF64, LoopRecord, utilization, "ratio", kMean),
    LOOPSCALE_SHM_FIELD(kLoop, kU64, LoopRecord, cpu_ns, "ns", kSum),
    LOOPSCALE_SHM_FIELD(kLoop, kU64, LoopRecord, suspensions, "count", kSum),
    LOOPSCALE_SHM_FIELD(kLoop, kU64, LoopRecord, resumes, "count", kSum),
    LOOPSCALE_SHM_FIELD_SINCE(1, kLoop, kU64, LoopRecord, scheduling_lag_ns, "ns", kMax),
    LOOPSCALE_SHM_FIELD_SINCE(2, kSegment, kU64, SegmentRecord, moves_requested, "count", kSum),
    LOOPSCALE_SHM_FIELD_SINCE(2, kLoop, kU64, LoopRecord, moves_in, "count", kSum),
    LOOPSCALE_SHM_FIELD_SINCE(2, kLoop, kU64, LoopRecord, moves_out, "count", kSum),
    LOOPSCALE_SHM_FIELD_SINCE(2, kLoop, kU64, LoopRecord, moves_failed, "count", kSum),
};

#undef LOOPSCALE_SHM_FIELD
#undef LOOPSCALE_SHM_FIELD_SINCE

// Bytes of a segment with `loops` slots in a file with these record sizes,
// rounded up to 64 so that segments start on a cache line.
constexpr std::uint64_t segment_bytes(std::uint64_t segment_header_size,
                                      std::uint64_t loop_slot_size,
                                      std::uint64_t loops) {
  const std::uint64_t raw = segment_header_size + loops * loop_slot_size;
  return (raw + 63) / 64 * 64;
}

// Packs and unpacks the owner word.
constexpr std::uint64_t make_owner(std::uint32_t generation, std::uint32_t pid) {
  return (std::uint64_t{generation} << 32) | pid;
}
constexpr std::uint32_t owner_pid(std::uint64_t owner) {
  return static_cast<std::uint32_t>(owner & 0xffffffffu);
}
constexpr std::uint32_t owner_generation(std::uint64_t owner) {
  return static_cast<std::uint32_t>(owner >> 32);
}

}  // namespace loopscale::shm

#endif  // LOOPSCALE_SHM_LAYOUT_HPP_
