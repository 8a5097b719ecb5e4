// -----------------------------------------------------------------------------
// shm/detail/file_layout.hpp
// -----------------------------------------------------------------------------
//
// Validation of a metrics file's header, schema and segment chain, shared by
// the reader and the publisher (which joins files other processes created).
// The file is untrusted input: every size, count and offset read from it is
// checked against the bytes actually mapped before anything is read at it,
// with overflow-safe arithmetic, and each error names the field, its value
// and the limit it broke.
//
// Thread-safety: plain functions over a mapping; they only read it.

#ifndef LOOPSCALE_SHM_DETAIL_FILE_LAYOUT_HPP_
#define LOOPSCALE_SHM_DETAIL_FILE_LAYOUT_HPP_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "loopscale/shm/layout.hpp"

namespace loopscale::shm::detail {

// Limits on what a file may declare, far above what any real file needs, so
// a corrupt header cannot make a reader allocate or loop without bound.
inline constexpr std::uint64_t kMaxSchemaCount = 1024;
inline constexpr std::uint64_t kMaxRecordSize = 1 << 20;
inline constexpr std::uint64_t kMaxLoopCapacity = 1 << 16;

// One schema row as found in the file, checked.
struct Field {
  std::string name;
  Record record = Record::kSegment;
  FieldType type = FieldType::kU64;
  std::uint32_t offset = 0;
  std::uint32_t size = 0;
  std::string unit;
  Aggregation aggregation = Aggregation::kNone;
};

struct FileLayout {
  std::uint32_t version_major = 0;
  std::uint32_t version_minor = 0;
  std::uint64_t header_size = 0;
  std::uint64_t segment_header_size = 0;
  std::uint64_t loop_slot_size = 0;
  std::uint64_t used_bytes = 0;
  // The file's schema, in file order.
  std::vector<Field> schema;

  // Returns the row named `name` in `record`, or nullptr.
  const Field* find(Record record, std::string_view name) const;
};

// Checks the header and schema of the `size` bytes at `data` (8-byte aligned)
// and that every field this build uses is present with its type and size.
absl::StatusOr<FileLayout> parse_header(const std::byte* data, std::size_t size);

// A segment's fixed words, as found in the chain.
struct SegmentExtent {
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  std::uint64_t loop_capacity = 0;
  std::uint64_t owner = 0;
};

// Walks the segment chain [header_size, used_bytes), checking each segment's
// size and capacity against the file.
absl::StatusOr<std::vector<SegmentExtent>> list_segments(
    const std::byte* data, std::size_t size, const FileLayout& layout);

// Returns the NUL-terminated text of a string field copied out of the file,
// with every byte outside printable ASCII replaced by '?' (names are written
// by other processes; a reader must never pass control bytes to a terminal).
std::string field_text(const std::byte* record, const Field& field);

}  // namespace loopscale::shm::detail

#endif  // LOOPSCALE_SHM_DETAIL_FILE_LAYOUT_HPP_
