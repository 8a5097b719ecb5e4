// -----------------------------------------------------------------------------
// shm/layout.hpp
// -----------------------------------------------------------------------------
//
// The shared-memory metrics file, version 1.5: the record layouts and the
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

#include "loopscale/job_type.hpp"

namespace loopscale::shm {

// The eight bytes at offset 0: "LOOPSCAL".
inline constexpr std::array<char, 8> kMagic = {'L', 'O', 'O', 'P',
                                               'S', 'C', 'A', 'L'};
// A reader refuses any other major version; a minor version only appends
// fields (in reserved space or by larger records) and never moves one.
inline constexpr std::uint32_t kVersionMajor = 1;
// 1.1 added the loop field `scheduling_lag_ns`; 1.2 the connection moves
// (loop fields `moves_in`, `moves_out`, `moves_failed`, segment field
// `moves_requested`); 1.3 the lag histogram, `active_ns` and
// `registrations_total`; 1.4 the job types (larger loop slots, see
// kJobSlots); 1.5 the overload figures (`overload_*`, loopscale/overload.hpp).
inline constexpr std::uint32_t kVersionMinor = 5;
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
  // Figures added by minor versions (kSchema gives their offsets: 536 ...).
  std::uint64_t added[61];
};

// One loop's slot: eight-byte words whose meaning is kSchema's loop rows
// (their offsets are fixed there, in order; a minor version only adds rows,
// in the words still free or by a larger slot). Files before 1.4 have slots
// of the first 16 words.
struct LoopRecord {
  std::uint64_t words[16 + 2 * kMaxJobTypes];
};
inline constexpr std::size_t kLoopRecordV10Size = 128;

// Job types (format 1.4; loopscale/job_type.hpp): slot i is the publishing
// process's job type of id i, slot 0 "other". Each loop has a busy time and
// a count per slot (`job<i>_busy_ns`, `job<i>_count`), the segment the
// slots' names (`job<i>_name`, empty for a slot not registered). Slots are
// per process: readers add job figures up by name, never by slot, and the
// generic per-service aggregation leaves them out (Aggregation::kNone).
inline constexpr std::size_t kJobSlots = kMaxJobTypes;
inline constexpr std::size_t kJobNameBytes = 24;
inline constexpr std::uint32_t kJobNamesOffset = 616;   // in SegmentRecord
inline constexpr std::uint32_t kJobFiguresOffset = 128;  // in LoopRecord
static_assert(kMaxJobTypeName < kJobNameBytes);

static_assert(sizeof(FileHeader) == 128);
static_assert(sizeof(SchemaEntry) == 64);
static_assert(sizeof(SegmentRecord) == 1024);
static_assert(sizeof(LoopRecord) == 384);
static_assert(offsetof(SegmentRecord, seq) == 8);
static_assert(offsetof(SegmentRecord, generation) == 32);
static_assert(offsetof(FileHeader, used_bytes) == 72);
static_assert(offsetof(SegmentRecord, added) == 536);

// The first byte under a segment's seqlock.
inline constexpr std::size_t kSeqlockedOffset = offsetof(SegmentRecord, generation);
// Where the schema table starts, and where segments start in files this
// version creates (room for the schema to grow in later minor versions;
// files before 1.4 have 4096).
inline constexpr std::size_t kSchemaOffset = sizeof(FileHeader);
inline constexpr std::size_t kHeaderSize = 8192;

// How a figure is exported in the Prometheus text format, by
// `loopscale-top --format prometheus` and the example server's /metrics
// (both print from this table). An empty name: not exported.
// Rows that share a family name are one family (the first row's type and
// help): `labels` tells their samples apart, and a histogram's rows add
// `suffix` (`_bucket`, `_count`, `_sum`) to the family's name.
struct Export {
  std::string_view name;
  std::string_view type;  // "counter", "gauge" or "histogram"
  std::string_view help;
  double scale = 1.0;     // applied to the value: 1e-9 turns ns into seconds
  std::string_view labels = {};  // e.g. direction="up"
  std::string_view suffix = {};
};

// A row of the schema table, as compiled in: the one description of a field
// that the writer, the readers and the exporters all go by. A new figure is
// a row here (at the next free offset, `since_minor` the new minor version)
// plus its value in shm/figures.cpp.
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
  Export prometheus = {};
};

// Segment fields at fixed offsets of SegmentRecord.
#define LOOPSCALE_SHM_SEGMENT(type, field, unit, agg, ...)                  \
  FieldSpec {                                                              \
    #field, Record::kSegment, FieldType::type,                             \
        static_cast<std::uint32_t>(offsetof(SegmentRecord, field)),        \
        static_cast<std::uint32_t>(sizeof(SegmentRecord::field)), unit,    \
        Aggregation::agg, __VA_ARGS__                                      \
  }

// A figure in eight bytes at `offset` of its record.
constexpr FieldSpec figure(Record record, std::string_view name, FieldType type,
                           std::uint32_t offset, std::string_view unit,
                           Aggregation aggregation, std::uint32_t since_minor,
                           Export prometheus = {}) {
  return FieldSpec{name, record, type, offset, 8, unit, aggregation, since_minor,
                   prometheus};
}
constexpr FieldSpec loop_figure(std::string_view name, FieldType type,
                                std::uint32_t offset, std::string_view unit,
                                Aggregation aggregation, std::uint32_t since_minor,
                                Export prometheus = {}) {
  return figure(Record::kLoop, name, type, offset, unit, aggregation,
                since_minor, prometheus);
}

// A bucket of the pool's lag histogram (format 1.3).
constexpr FieldSpec lag_bucket(std::string_view name, std::uint32_t offset,
                               std::string_view le_label) {
  return figure(Record::kSegment, name, FieldType::kU64, offset, "count",
                Aggregation::kSum, 3,
                {"loopscale_pool_scheduling_lag_seconds", "histogram",
                 "Scheduling lags the monitor read, one per active loop per "
                 "window.",
                 1.0, le_label, "_bucket"});
}

// The fields before the job types (formats 1.0 to 1.3).
inline constexpr std::array kSchemaBeforeJobs = {
    LOOPSCALE_SHM_SEGMENT(kU64, generation, "count", kNone, 0),
    LOOPSCALE_SHM_SEGMENT(kU64, pid, "pid", kNone, 0),
    LOOPSCALE_SHM_SEGMENT(kU64, start_time, "ticks", kNone, 0),
    LOOPSCALE_SHM_SEGMENT(kU64, heartbeat_ns, "ns", kMax, 0),
    LOOPSCALE_SHM_SEGMENT(kU64, loops, "count", kSum, 0),
    LOOPSCALE_SHM_SEGMENT(kU64, active_loops, "count", kSum, 0,
                          {"loopscale_pool_active_loops", "gauge",
                           "Loops taking new work."}),
    LOOPSCALE_SHM_SEGMENT(kU64, min_loops, "count", kSum, 0,
                          {"loopscale_pool_min_loops", "gauge",
                           "Lower bound on active loops."}),
    LOOPSCALE_SHM_SEGMENT(kU64, max_loops, "count", kSum, 0,
                          {"loopscale_pool_max_loops", "gauge",
                           "Upper bound on active loops."}),
    LOOPSCALE_SHM_SEGMENT(kU64, ticks, "count", kMax, 0),
    LOOPSCALE_SHM_SEGMENT(kU64, scale_ups, "count", kSum, 0,
                          {"loopscale_pool_scale_events_total", "counter",
                           "Scaling decisions that acted: up woke loops, down "
                           "suspended or drained them.",
                           1.0, "direction=\"up\""}),
    LOOPSCALE_SHM_SEGMENT(kU64, scale_downs, "count", kSum, 0,
                          {"loopscale_pool_scale_events_total", "counter", "",
                           1.0, "direction=\"down\""}),
    LOOPSCALE_SHM_SEGMENT(kU64, window_ns, "ns", kNone, 0),
    LOOPSCALE_SHM_SEGMENT(kF64, scale_down_threshold, "ratio", kNone, 0),
    LOOPSCALE_SHM_SEGMENT(kF64, scale_up_threshold, "ratio", kNone, 0),
    LOOPSCALE_SHM_SEGMENT(kU64, last_rule, "enum", kNone, 0),
    LOOPSCALE_SHM_SEGMENT(kString, service, "", kNone, 0),
    LOOPSCALE_SHM_SEGMENT(kString, pool, "", kNone, 0),
    LOOPSCALE_SHM_SEGMENT(kString, last_decision, "", kNone, 0),
    loop_figure("index", FieldType::kU64, 0, "count", Aggregation::kNone, 0),
    loop_figure("state", FieldType::kU64, 8, "enum", Aggregation::kNone, 0),
    loop_figure("busy_ns", FieldType::kU64, 16, "ns", Aggregation::kSum, 0,
                {"loopscale_loop_busy_seconds_total", "counter",
                 "Time the loop spent running handlers.", 1e-9}),
    loop_figure("handlers", FieldType::kU64, 24, "count", Aggregation::kSum, 0,
                {"loopscale_loop_handlers_total", "counter", "Handlers run."}),
    loop_figure("wakeups", FieldType::kU64, 32, "count", Aggregation::kSum, 0,
                {"loopscale_loop_wakeups_total", "counter",
                 "Idle-to-busy transitions."}),
    loop_figure("registrations", FieldType::kU64, 40, "count",
                Aggregation::kSum, 0,
                {"loopscale_loop_connections_active", "gauge",
                 "Connections open on the loop (registrations)."}),
    loop_figure("utilization", FieldType::kF64, 48, "ratio", Aggregation::kMean,
                0,
                {"loopscale_loop_utilization_ratio", "gauge",
                 "Busy fraction of the loop in the last window (0 to 1)."}),
    loop_figure("cpu_ns", FieldType::kU64, 56, "ns", Aggregation::kSum, 0,
                {"loopscale_loop_cpu_seconds_total", "counter",
                 "CPU time of the loop's threads.", 1e-9}),
    loop_figure("suspensions", FieldType::kU64, 64, "count", Aggregation::kSum,
                0,
                {"loopscale_loop_suspensions_total", "counter",
                 "Times the loop gave its thread back."}),
    loop_figure("resumes", FieldType::kU64, 72, "count", Aggregation::kSum, 0,
                {"loopscale_loop_resumes_total", "counter",
                 "Times the loop was given a fresh thread."}),
    loop_figure("scheduling_lag_ns", FieldType::kU64, 80, "ns",
                Aggregation::kMax, 1,
                {"loopscale_loop_scheduling_lag_seconds", "gauge",
                 "How long the monitor's last probe waited in the loop's queue.",
                 1e-9}),
    figure(Record::kSegment, "moves_requested", FieldType::kU64, 536, "count",
           Aggregation::kSum, 2,
           {"loopscale_pool_moves_requested_total", "counter",
            "Connections the monitor asked to move to another loop."}),
    loop_figure("moves_in", FieldType::kU64, 88, "count", Aggregation::kSum, 2,
                {"loopscale_loop_moves_in_total", "counter",
                 "Connections that moved to the loop from another."}),
    loop_figure("moves_out", FieldType::kU64, 96, "count", Aggregation::kSum, 2,
                {"loopscale_loop_moves_out_total", "counter",
                 "Connections that left the loop for another."}),
    loop_figure("moves_failed", FieldType::kU64, 104, "count",
                Aggregation::kSum, 2,
                {"loopscale_loop_moves_failed_total", "counter",
                 "Connections asked to leave the loop that could not."}),
    loop_figure("active_ns", FieldType::kU64, 112, "ns", Aggregation::kSum, 3,
                {"loopscale_loop_active_seconds_total", "counter",
                 "Time the loop was active (taking new work), a monitor window "
                 "at a time.",
                 1e-9}),
    loop_figure("registrations_total", FieldType::kU64, 120, "count",
                Aggregation::kSum, 3,
                {"loopscale_loop_connections_total", "counter",
                 "Registrations made on the loop, moved-in connections "
                 "included."}),
    // LagHistogram: cumulative buckets by its kBounds, then count and sum.
    lag_bucket("lag_le_50us", 544, "le=\"0.00005\""),
    lag_bucket("lag_le_250us", 552, "le=\"0.00025\""),
    lag_bucket("lag_le_1ms", 560, "le=\"0.001\""),
    lag_bucket("lag_le_5ms", 568, "le=\"0.005\""),
    lag_bucket("lag_le_25ms", 576, "le=\"0.025\""),
    lag_bucket("lag_le_100ms", 584, "le=\"0.1\""),
    lag_bucket("lag_le_500ms", 592, "le=\"0.5\""),
    figure(Record::kSegment, "lag_count", FieldType::kU64, 600, "count",
           Aggregation::kSum, 3,
           {"loopscale_pool_scheduling_lag_seconds", "histogram", "", 1.0, {},
            "_count"}),
    figure(Record::kSegment, "lag_sum_ns", FieldType::kU64, 608, "ns",
           Aggregation::kSum, 3,
           {"loopscale_pool_scheduling_lag_seconds", "histogram", "", 1e-9, {},
            "_sum"}),
};

// The job types' rows' names, by slot.
inline constexpr std::array<std::string_view, kJobSlots> kJobNameFields = {
    "job0_name",  "job1_name",  "job2_name",  "job3_name",
    "job4_name",  "job5_name",  "job6_name",  "job7_name",
    "job8_name",  "job9_name",  "job10_name", "job11_name",
    "job12_name", "job13_name", "job14_name", "job15_name"};
inline constexpr std::array<std::string_view, kJobSlots> kJobBusyFields = {
    "job0_busy_ns",  "job1_busy_ns",  "job2_busy_ns",  "job3_busy_ns",
    "job4_busy_ns",  "job5_busy_ns",  "job6_busy_ns",  "job7_busy_ns",
    "job8_busy_ns",  "job9_busy_ns",  "job10_busy_ns", "job11_busy_ns",
    "job12_busy_ns", "job13_busy_ns", "job14_busy_ns", "job15_busy_ns"};
inline constexpr std::array<std::string_view, kJobSlots> kJobCountFields = {
    "job0_count",  "job1_count",  "job2_count",  "job3_count",
    "job4_count",  "job5_count",  "job6_count",  "job7_count",
    "job8_count",  "job9_count",  "job10_count", "job11_count",
    "job12_count", "job13_count", "job14_count", "job15_count"};

// True for the job types' rows, which readers and exporters handle by name
// (above) rather than as figures of their own.
constexpr bool is_job_field(std::string_view name) {
  return name.size() > 3 && name.substr(0, 3) == "job" && name[3] >= '0' &&
         name[3] <= '9';
}

// The overload figures (format 1.5), in the segment's last three words.
inline constexpr std::array kSchemaOverload = {
    figure(Record::kSegment, "overload_level", FieldType::kF64, 1000, "ratio",
           Aggregation::kMax, 5,
           {"loopscale_overload_level_ratio", "gauge",
            "Share of requests servers on the pool are asked to refuse (0 while the pool "
            "can still grow)."}),
    figure(Record::kSegment, "overload_refused", FieldType::kU64, 1008, "count",
           Aggregation::kSum, 5,
           {"loopscale_overload_refused_total", "counter",
            "Requests servers on the pool refused because it was overloaded."}),
    figure(Record::kSegment, "overload_episodes", FieldType::kU64, 1016, "count",
           Aggregation::kSum, 5,
           {"loopscale_overload_episodes_total", "counter",
            "Times the pool began to shed load."}),
};

constexpr auto with_job_rows() {
  std::array<FieldSpec, kSchemaBeforeJobs.size() + 3 * kJobSlots + kSchemaOverload.size()>
      out{};
  std::size_t n = 0;
  for (const FieldSpec& f : kSchemaBeforeJobs) out[n++] = f;
  for (std::size_t i = 0; i < kJobSlots; ++i) {
    out[n++] = FieldSpec{kJobNameFields[i], Record::kSegment, FieldType::kString,
                         static_cast<std::uint32_t>(kJobNamesOffset + i * kJobNameBytes),
                         static_cast<std::uint32_t>(kJobNameBytes), "",
                         Aggregation::kNone, 4};
  }
  for (std::size_t i = 0; i < kJobSlots; ++i) {
    const auto at = static_cast<std::uint32_t>(kJobFiguresOffset + 16 * i);
    out[n++] = loop_figure(kJobBusyFields[i], FieldType::kU64, at, "ns",
                           Aggregation::kNone, 4);
    out[n++] = loop_figure(kJobCountFields[i], FieldType::kU64, at + 8, "count",
                           Aggregation::kNone, 4);
  }
  for (const FieldSpec& f : kSchemaOverload) out[n++] = f;
  return out;
}

// Every field a reader may use, in the order they are written to the file.
// Names are unique across both records; rows added by a minor version come
// after those of the versions before it.
inline constexpr auto kSchema = with_job_rows();
static_assert(kJobNamesOffset + kJobSlots * kJobNameBytes <= 1000);
static_assert(1016 + 8 == sizeof(SegmentRecord));

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
