#include "loopscale/shm/layout.hpp"
#include "loopscale/shm/figures.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace loopscale::shm {
namespace {

std::string type_name(const FieldSpec& f) {
  switch (f.type) {
    case FieldType::kU64:
      return "u64";
    case FieldType::kF64:
      return "f64";
    case FieldType::kString:
      return "text[" + std::to_string(f.size) + "]";
  }
  return "?";
}

std::string aggregation_name(Aggregation a) {
  constexpr const char* kNames[] = {"none", "sum", "max", "mean", "min"};
  return kNames[static_cast<int>(a)];
}

TEST(ShmLayoutTest, SchemaNamesAreUniqueAndFieldsAligned) {
  std::set<std::string_view> names;
  for (const FieldSpec& f : kSchema) {
    EXPECT_TRUE(names.insert(f.name).second) << f.name;
    EXPECT_EQ(f.offset % 8, 0u) << f.name;
    EXPECT_LT(f.name.size(), sizeof(SchemaEntry::name)) << f.name;
    EXPECT_LT(f.unit.size(), sizeof(SchemaEntry::unit)) << f.name;
    if (f.record == Record::kSegment) {
      EXPECT_GE(f.offset, kSeqlockedOffset);
    }
  }
}

// The table is the one description of a figure: every numeric row has a
// value computed from the pool's statistics (but the process's identity,
// which the publisher writes itself), rows do not overlap and fit their
// record, and exported families follow Prometheus' naming (counters end in
// _total, ratios in _ratio, durations are seconds; the rows of one family
// are adjacent, agree on its type and differ in labels or suffix).
TEST(ShmLayoutTest, EveryFigureHasAValueAPlaceAndAWellFormedFamily) {
  const std::set<std::string_view> identity = {"generation", "pid", "start_time",
                                               "heartbeat_ns", "loops"};
  const PoolStats stats;
  const LoopStats loop;
  std::set<std::pair<Record, std::uint32_t>> words;
  std::set<std::string_view> families;
  std::string_view family, family_type;
  for (const FieldSpec& f : kSchema) {
    if (f.type == FieldType::kString) continue;
    if (f.record == Record::kSegment) {
      EXPECT_EQ(pool_figure_value(f.name, stats).has_value(), !identity.contains(f.name))
          << f.name;
      EXPECT_LE(f.offset + f.size, sizeof(SegmentRecord)) << f.name;
    } else {
      EXPECT_TRUE(loop_figure_value(f.name, loop).has_value()) << f.name;
      EXPECT_LE(f.offset + f.size, sizeof(LoopRecord)) << f.name;
    }
    EXPECT_EQ(f.size, 8u) << f.name;
    EXPECT_TRUE(words.insert({f.record, f.offset}).second) << f.name << " overlaps";
    const Export& e = f.prometheus;
    if (e.name.empty()) continue;
    if (e.name != family) {
      EXPECT_TRUE(families.insert(e.name).second) << e.name << ": rows not adjacent";
      EXPECT_FALSE(e.help.empty()) << e.name;
      family = e.name;
      family_type = e.type;
    } else {
      EXPECT_EQ(e.type, family_type) << f.name;
      EXPECT_FALSE(e.labels.empty() && e.suffix.empty()) << f.name << ": same sample twice";
    }
    EXPECT_TRUE(e.name.starts_with("loopscale_")) << e.name;
    EXPECT_EQ(e.type == "counter", e.name.ends_with("_total")) << e.name;
    EXPECT_TRUE(e.type == "counter" || e.type == "gauge" || e.type == "histogram") << e.name;
    EXPECT_EQ(e.type == "histogram", !e.suffix.empty()) << f.name;
    if (f.unit == "ratio") {
      EXPECT_TRUE(e.name.ends_with("_ratio")) << e.name;
    }
    if (f.unit == "ns") {
      EXPECT_NE(e.name.find("_seconds"), std::string_view::npos) << e.name;
      EXPECT_EQ(e.scale, 1e-9) << f.name;
    }
  }
  // Rows of a later minor version come after the earlier ones.
  std::uint32_t since = 0;
  for (const FieldSpec& f : kSchema) {
    EXPECT_GE(f.since_minor, since) << f.name;
    since = f.since_minor;
  }
  EXPECT_EQ(since, kVersionMinor);
}

// docs/shm-format.md is the contract for readers in other languages: each
// field's row there must say what the code writes.
TEST(ShmLayoutTest, TheFormatDocumentMatchesTheSchema) {
  std::ifstream in(LOOPSCALE_SOURCE_DIR "/docs/shm-format.md");
  ASSERT_TRUE(in) << "docs/shm-format.md not found";
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  for (const FieldSpec& f : kSchema) {
    const std::string row = "| " + std::to_string(f.offset) + " | `" +
                            std::string(f.name) + "` | " + type_name(f) + " | " +
                            (f.unit.empty() ? "" : std::string(f.unit) + " ") +
                            "| " + aggregation_name(f.aggregation) + " |";
    EXPECT_NE(doc.find(row), std::string::npos) << "missing row: " << row;
  }
}

}  // namespace
}  // namespace loopscale::shm
