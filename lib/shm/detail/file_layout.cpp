#include "loopscale/shm/detail/file_layout.hpp"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "loopscale/shm/detail/words.hpp"

namespace loopscale::shm::detail {
namespace {

absl::Status corrupt(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("corrupt metrics file: ", what));
}

bool aligned8(std::uint64_t v) { return v % 8 == 0; }

// Reads a NUL-padded fixed-size text field of a header or schema row.
std::string fixed_text(const char* p, std::size_t n) {
  std::size_t len = 0;
  while (len < n && p[len] != '\0') ++len;
  std::string out(p, len);
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

absl::string_view record_name(Record r) {
  return r == Record::kSegment ? "segment" : "loop";
}

}  // namespace

const Field* FileLayout::find(Record record, std::string_view name) const {
  for (const Field& f : schema) {
    if (f.record == record && f.name == name) return &f;
  }
  return nullptr;
}

absl::StatusOr<FileLayout> parse_header(const std::byte* data,
                                        std::size_t size) {
  if (size >= sizeof(kMagic)) {
    char magic[8];
    copy_out(magic, data, 0, 8);
    const char zero[8] = {};
    if (std::memcmp(magic, zero, 8) == 0) {
      return absl::UnavailableError(
          "metrics file not initialized yet (magic is zero)");
    }
    if (std::memcmp(magic, kMagic.data(), 8) != 0) {
      return absl::DataLossError(absl::StrCat(
          "bad magic \"", fixed_text(magic, 8),
          "\": not a loopscale metrics file (expected \"LOOPSCAL\")"));
    }
  }
  if (size < sizeof(FileHeader)) {
    return corrupt(absl::StrCat("truncated: ", size, " bytes, the header needs ",
                                sizeof(FileHeader)));
  }
  FileHeader h;
  copy_out(&h, data, 0, sizeof(h));
  if (h.byte_order != kByteOrderMark) {
    return corrupt(absl::StrFormat(
        "byte_order = 0x%016x: written with another byte order or damaged",
        h.byte_order));
  }
  if (h.version_major != kVersionMajor) {
    return absl::FailedPreconditionError(absl::StrCat(
        "unsupported metrics file version ", h.version_major, ".",
        h.version_minor, ": this reader knows major version ", kVersionMajor));
  }
  FileLayout out;
  out.version_major = h.version_major;
  out.version_minor = h.version_minor;
  out.header_size = h.header_size;
  out.segment_header_size = h.segment_header_size;
  out.loop_slot_size = h.loop_slot_size;

  if (h.header_size < sizeof(FileHeader) || !aligned8(h.header_size) ||
      h.header_size > size) {
    return corrupt(absl::StrCat("header_size = ", h.header_size,
                                ": must be a multiple of 8 in [",
                                sizeof(FileHeader), ", file size ", size, "]"));
  }
  if (h.schema_count == 0 || h.schema_count > kMaxSchemaCount) {
    return corrupt(absl::StrCat("schema_count = ", h.schema_count,
                                ": must be in [1, ", kMaxSchemaCount, "]"));
  }
  if (h.schema_entry_size < sizeof(SchemaEntry) ||
      h.schema_entry_size > kMaxRecordSize || !aligned8(h.schema_entry_size)) {
    return corrupt(absl::StrCat("schema_entry_size = ", h.schema_entry_size,
                                ": must be a multiple of 8, at least ",
                                sizeof(SchemaEntry)));
  }
  // count <= 1024 and entry size <= 1 MiB: the product cannot overflow.
  if (h.schema_offset < sizeof(FileHeader) || !aligned8(h.schema_offset) ||
      h.schema_offset > h.header_size ||
      h.schema_count * h.schema_entry_size > h.header_size - h.schema_offset) {
    return corrupt(absl::StrCat(
        "schema table (offset ", h.schema_offset, ", ", h.schema_count,
        " entries of ", h.schema_entry_size,
        " bytes) does not fit in the header of ", h.header_size, " bytes"));
  }
  for (auto [name, value, minimum] :
       {std::tuple{"segment_header_size", h.segment_header_size,
                   std::uint64_t{kSeqlockedOffset}},
        std::tuple{"loop_slot_size", h.loop_slot_size, std::uint64_t{8}}}) {
    if (value < minimum || value > kMaxRecordSize || !aligned8(value)) {
      return corrupt(absl::StrCat(name, " = ", value,
                                  ": must be a multiple of 8 in [", minimum,
                                  ", ", kMaxRecordSize, "]"));
    }
  }

  out.schema.reserve(h.schema_count);
  for (std::uint64_t i = 0; i < h.schema_count; ++i) {
    SchemaEntry e;
    copy_out(&e, data, h.schema_offset + i * h.schema_entry_size, sizeof(e));
    Field f;
    f.name = fixed_text(e.name, sizeof(e.name));
    f.unit = fixed_text(e.unit, sizeof(e.unit));
    f.record = e.record;
    f.type = e.type;
    f.offset = e.offset;
    f.size = e.size;
    f.aggregation = e.aggregation;
    const std::string where = absl::StrCat("schema entry ", i, " (\"", f.name, "\")");
    std::uint64_t record_size = 0;
    if (f.record == Record::kSegment) {
      record_size = h.segment_header_size;
    } else if (f.record == Record::kLoop) {
      record_size = h.loop_slot_size;
    } else {
      return corrupt(absl::StrCat(where, ": record = ",
                                  static_cast<std::uint32_t>(f.record),
                                  ", expected 1 (segment) or 2 (loop)"));
    }
    const bool numeric = f.type == FieldType::kU64 || f.type == FieldType::kF64;
    if (!numeric && f.type != FieldType::kString) {
      return corrupt(absl::StrCat(where, ": type = ",
                                  static_cast<std::uint32_t>(f.type),
                                  ", expected 1 (u64), 2 (f64) or 3 (string)"));
    }
    if ((numeric && f.size != 8) || f.size == 0 || !aligned8(f.size) ||
        !aligned8(f.offset) ||
        std::uint64_t{f.offset} + f.size > record_size ||
        (f.record == Record::kSegment && f.offset < kSeqlockedOffset)) {
      return corrupt(absl::StrCat(where, ": offset ", f.offset, " size ",
                                  f.size, " is not an aligned field inside its ",
                                  record_name(f.record), " record of ",
                                  record_size, " bytes"));
    }
    if (static_cast<std::uint32_t>(f.aggregation) > 4) {
      return corrupt(absl::StrCat(where, ": aggregation = ",
                                  static_cast<std::uint32_t>(f.aggregation),
                                  ", expected 0 to 4"));
    }
    out.schema.push_back(std::move(f));
  }
  for (const FieldSpec& spec : kSchema) {
    if (spec.since_minor > out.version_minor) continue;  // an older file
    const Field* f = out.find(spec.record, spec.name);
    if (f == nullptr || f->type != spec.type ||
        (spec.type != FieldType::kString && f->size != spec.size)) {
      return corrupt(absl::StrCat("the schema lacks the ",
                                  record_name(spec.record), " field \"",
                                  std::string(spec.name),
                                  "\" with its type"));
    }
  }

  out.used_bytes = load(data, offsetof(FileHeader, used_bytes),
                        std::memory_order_acquire);
  if (out.used_bytes < out.header_size || !aligned8(out.used_bytes)) {
    return corrupt(absl::StrCat("used_bytes = ", out.used_bytes,
                                ": must be a multiple of 8, at least "
                                "header_size ", out.header_size));
  }
  if (out.used_bytes > size) {
    return corrupt(absl::StrCat("truncated: used_bytes = ", out.used_bytes,
                                " but the file has ", size, " bytes"));
  }
  return out;
}

absl::StatusOr<std::vector<SegmentExtent>> list_segments(
    const std::byte* data, std::size_t size, const FileLayout& layout) {
  std::vector<SegmentExtent> out;
  const std::uint64_t end = std::min<std::uint64_t>(layout.used_bytes, size);
  std::uint64_t off = layout.header_size;
  while (off < end) {
    if (layout.segment_header_size > end - off) {
      return corrupt(absl::StrCat("segment at offset ", off,
                                  " runs past used_bytes ", end));
    }
    SegmentExtent s;
    s.offset = off;
    s.owner = load(data, off + offsetof(SegmentRecord, owner));
    s.size = load(data, off + offsetof(SegmentRecord, size));
    s.loop_capacity = load(data, off + offsetof(SegmentRecord, loop_capacity));
    if (s.size < layout.segment_header_size || !aligned8(s.size) ||
        s.size > end - off) {
      return corrupt(absl::StrCat("segment at offset ", off, ": size = ",
                                  s.size, ": must be a multiple of 8 in [",
                                  layout.segment_header_size, ", ", end - off,
                                  "]"));
    }
    if (s.loop_capacity > kMaxLoopCapacity ||
        s.loop_capacity * layout.loop_slot_size >
            s.size - layout.segment_header_size) {
      return corrupt(absl::StrCat("segment at offset ", off,
                                  ": loop_capacity = ", s.loop_capacity,
                                  " slots do not fit in its ", s.size,
                                  " bytes"));
    }
    out.push_back(s);
    off += s.size;
  }
  return out;
}

std::string field_text(const std::byte* record, const Field& field) {
  return fixed_text(reinterpret_cast<const char*>(record + field.offset),
                    field.size);
}

}  // namespace loopscale::shm::detail
