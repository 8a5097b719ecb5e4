#include "loopscale/shm/layout.hpp"

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
