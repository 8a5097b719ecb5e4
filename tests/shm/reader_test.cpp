#include "loopscale/shm/reader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <iterator>
#include <latch>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

#include "loopscale/shm/layout.hpp"
#include "loopscale/shm/publisher.hpp"
#include "support/shm_file.hpp"

namespace loopscale::shm {
namespace {

using ::testing::HasSubstr;
using testing::stats_at;
using testing::TempShmPath;

// A valid file with two pools, as 8-aligned words, for corruption tests.
class CorruptFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto a = Publisher::attach(file_.config("alpha"), "a", 4);
    auto b = Publisher::attach(file_.config("beta"), "b", 2);
    ASSERT_TRUE(a.ok() && b.ok());
    (*a)->publish(stats_at("a", 4, 1));
    (*b)->publish(stats_at("b", 2, 2));
    words_ = file_.words();
    second_segment_ = (*b)->segment_offset();
    // Keep the segments claimed in the copy: the publishers release theirs
    // when they go out of scope, but the copy was taken before.
  }

  std::byte* bytes() { return reinterpret_cast<std::byte*>(words_.data()); }
  std::size_t size() const { return words_.size() * 8; }
  void put(std::size_t offset, std::uint64_t v) {
    std::memcpy(bytes() + offset, &v, 8);
  }
  absl::StatusOr<Snapshot> parse(std::size_t size) {
    return parse_snapshot(bytes(), size);
  }
  absl::StatusOr<Snapshot> parse() { return parse(size()); }

  TempShmPath file_;
  std::vector<std::uint64_t> words_;
  std::uint64_t second_segment_ = 0;
};

TEST_F(CorruptFileTest, TheUncorruptedCopyParses) {
  auto snap = parse();
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_EQ(snap->processes.size(), 2u);
  EXPECT_EQ(snap->services.size(), 2u);
}

TEST_F(CorruptFileTest, BadMagic) {
  std::memcpy(bytes(), "NOTOURS!", 8);
  EXPECT_THAT(parse().status().message(), HasSubstr("bad magic \"NOTOURS!\""));
}

TEST_F(CorruptFileTest, ZeroMagicIsNotInitializedYet) {
  put(0, 0);
  EXPECT_EQ(parse().status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(CorruptFileTest, UnknownMajorVersion) {
  std::uint32_t major = 2;
  std::memcpy(bytes() + offsetof(FileHeader, version_major), &major, 4);
  EXPECT_THAT(parse().status().message(),
              HasSubstr(absl::StrCat("unsupported metrics file version 2.",
                                     kVersionMinor)));
}

// Rows added by later minor versions come last in kSchema.
std::size_t rows_up_to_minor(std::uint32_t minor) {
  std::size_t n = 0;
  for (const FieldSpec& f : kSchema) n += f.since_minor <= minor ? 1 : 0;
  return n;
}

// The numeric rows of `record` up to `minor`, but the job types'.
std::size_t rows_of(Record record, std::uint32_t minor) {
  std::size_t n = 0;
  for (const FieldSpec& f : kSchema) {
    n += f.record == record && f.since_minor <= minor && f.type != FieldType::kString &&
         !is_job_field(f.name);
  }
  return n;
}

// A file written by format 1.0 lacks `scheduling_lag_ns` and the moves: it
// still reads, with those at zero.
TEST_F(CorruptFileTest, FormatOneZeroFilesStillRead) {
  for (std::size_t i = 0; i < kSchema.size(); ++i) {
    ASSERT_EQ(i < rows_up_to_minor(0), kSchema[i].since_minor == 0) << i;
  }
  std::uint32_t minor = 0;
  std::memcpy(bytes() + offsetof(FileHeader, version_minor), &minor, 4);
  put(offsetof(FileHeader, schema_count), rows_up_to_minor(0));
  auto snap = parse();
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_EQ(snap->version_minor, 0u);
  ASSERT_FALSE(snap->processes.empty());
  for (const auto& l : snap->processes[0].loops) {
    EXPECT_EQ(l.scheduling_lag_ns, 0u);
    EXPECT_EQ(l.moves_in, 0u);
  }
}

// A file written by format 1.1 has the lag but not the moves.
TEST_F(CorruptFileTest, FormatOneOneFilesStillRead) {
  std::uint32_t minor = 1;
  std::memcpy(bytes() + offsetof(FileHeader, version_minor), &minor, 4);
  put(offsetof(FileHeader, schema_count), rows_up_to_minor(1));
  auto snap = parse();
  ASSERT_TRUE(snap.ok()) << snap.status();
  ASSERT_FALSE(snap->processes.empty());
  EXPECT_EQ(snap->processes[0].moves_requested, 0u);
  for (const auto& l : snap->processes[0].loops) EXPECT_EQ(l.moves_out, 0u);
}

// A file written by format 1.2 has the moves but not the lag histogram,
// the active time or the registration counter: they are simply absent.
TEST_F(CorruptFileTest, FormatOneTwoFilesStillRead) {
  std::uint32_t minor = 2;
  std::memcpy(bytes() + offsetof(FileHeader, version_minor), &minor, 4);
  put(offsetof(FileHeader, schema_count), rows_up_to_minor(2));
  auto snap = parse();
  ASSERT_TRUE(snap.ok()) << snap.status();
  ASSERT_FALSE(snap->processes.empty());
  const ProcessSnapshot& p = snap->processes[0];
  EXPECT_GT(p.moves_requested, 0u);
  for (const Figure& f : p.figures) EXPECT_NE(f.name, "lag_count");
  for (const Figure& f : p.loops[0].figures) EXPECT_NE(f.name, "registrations_total");
  for (const Figure& f : snap->services[0].figures) EXPECT_NE(f.name, "active_ns");
}

// A file written by loopscale at format 1.3 (tests/shm/compat/format-1.3.bin:
// shm_fixture's pools alpha:a1:4:10, alpha:a2:2:20, beta:b:3:30, their
// process gone) reads with every figure it had and no job types.
TEST(FormatCompatibilityTest, AFileOfFormatOneThreeReads) {
  std::ifstream in(LOOPSCALE_SOURCE_DIR "/tests/shm/compat/format-1.3.bin",
                   std::ios::binary);
  ASSERT_TRUE(in);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::uint64_t> words((bytes.size() + 7) / 8);
  std::memcpy(words.data(), bytes.data(), bytes.size());
  ReadOptions live;
  live.liveness = [](std::uint64_t, std::optional<std::uint64_t>) { return std::string(); };
  auto snap = parse_snapshot(reinterpret_cast<const std::byte*>(words.data()),
                             bytes.size(), live);
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_EQ(snap->version_minor, 3u);
  ASSERT_EQ(snap->processes.size(), 3u);
  const ProcessSnapshot& a2 = snap->processes[1];
  EXPECT_EQ(a2.pool, "a2");
  ASSERT_EQ(a2.loops.size(), 2u);
  EXPECT_EQ(a2.loops[1].busy_ns, 20u * 1000 + 1);
  EXPECT_EQ(a2.loops[1].moves_out, 20u + 3);
  EXPECT_EQ(a2.figures.size(), rows_of(Record::kSegment, 3));
  EXPECT_TRUE(a2.jobs.empty());
  EXPECT_TRUE(a2.loops[1].jobs.empty());
  ASSERT_EQ(snap->services.size(), 2u);
  EXPECT_TRUE(snap->services[0].jobs.empty());
}

// A job type slot whose name row is there but whose figures are not (a
// corrupt schema of an older minor that carries some newer rows) is left
// out, not read through a missing field.
TEST_F(CorruptFileTest, AJobSlotWithoutItsFiguresIsLeftOut) {
  std::uint32_t minor = 3;
  std::memcpy(bytes() + offsetof(FileHeader, version_minor), &minor, 4);
  // The 1.3 rows and the 16 name rows, which come first among 1.4's.
  put(offsetof(FileHeader, schema_count), rows_up_to_minor(3) + kJobSlots);
  auto snap = parse();
  ASSERT_TRUE(snap.ok()) << snap.status();
  ASSERT_FALSE(snap->processes.empty());
  EXPECT_TRUE(snap->processes[0].jobs.empty());
  EXPECT_TRUE(snap->processes[0].loops[0].jobs.empty());
}

// A 1.4 file must have the job types.
TEST_F(CorruptFileTest, FormatOneFourWithoutJobTypesIsCorrupt) {
  put(offsetof(FileHeader, schema_count), rows_up_to_minor(3));
  EXPECT_THAT(parse().status().message(), HasSubstr("lacks the"));
}

// A 1.3 file must have the histogram.
TEST_F(CorruptFileTest, FormatOneThreeWithoutTheHistogramIsCorrupt) {
  put(offsetof(FileHeader, schema_count), rows_up_to_minor(2));
  EXPECT_THAT(parse().status().message(), HasSubstr("lacks the"));
}

// A 1.2 file must have the moves.
TEST_F(CorruptFileTest, FormatOneTwoWithoutMovesIsCorrupt) {
  put(offsetof(FileHeader, schema_count), rows_up_to_minor(1));
  EXPECT_THAT(parse().status().message(), HasSubstr("lacks the"));
}

// A 1.1 file must have the lag.
TEST_F(CorruptFileTest, FormatOneOneWithoutLagIsCorrupt) {
  std::uint32_t minor = 1;
  std::memcpy(bytes() + offsetof(FileHeader, version_minor), &minor, 4);
  put(offsetof(FileHeader, schema_count), rows_up_to_minor(0));
  EXPECT_THAT(parse().status().message(),
              HasSubstr("lacks the loop field \"scheduling_lag_ns\""));
}

TEST_F(CorruptFileTest, WrongByteOrder) {
  put(offsetof(FileHeader, byte_order), 0x0807060504030201ULL);
  EXPECT_THAT(parse().status().message(), HasSubstr("byte_order"));
}

TEST_F(CorruptFileTest, TruncatedFiles) {
  EXPECT_THAT(parse(64).status().message(), HasSubstr("truncated: 64 bytes"));
  EXPECT_THAT(parse(kHeaderSize).status().message(),
              HasSubstr("truncated: used_bytes"));
  EXPECT_THAT(parse(2048).status().message(),
              HasSubstr(absl::StrCat("header_size = ", kHeaderSize)));
}

TEST_F(CorruptFileTest, HugeSchemaCount) {
  put(offsetof(FileHeader, schema_count), ~std::uint64_t{0});
  EXPECT_THAT(parse().status().message(), HasSubstr("schema_count = 18446744073709551615"));
  put(offsetof(FileHeader, schema_count), 1000);  // allowed, but not in the header
  EXPECT_THAT(parse().status().message(), HasSubstr("does not fit in the header"));
}

TEST_F(CorruptFileTest, SchemaOffsetOutsideTheFile) {
  put(offsetof(FileHeader, schema_offset), std::uint64_t{1} << 40);
  EXPECT_THAT(parse().status().message(), HasSubstr("schema table"));
}

TEST_F(CorruptFileTest, FieldOffsetOutsideItsRecord) {
  // The first schema entry's offset field.
  std::uint32_t bad = 1u << 30;
  std::memcpy(bytes() + kSchemaOffset + offsetof(SchemaEntry, offset), &bad, 4);
  EXPECT_THAT(parse().status().message(), HasSubstr("schema entry 0"));
}

TEST_F(CorruptFileTest, MissingField) {
  std::memcpy(bytes() + kSchemaOffset + offsetof(SchemaEntry, name), "renamed", 8);
  EXPECT_THAT(parse().status().message(), HasSubstr("lacks the segment field \"generation\""));
}

TEST_F(CorruptFileTest, RecordSizesOutOfRange) {
  put(offsetof(FileHeader, loop_slot_size), std::uint64_t{1} << 62);
  EXPECT_THAT(parse().status().message(), HasSubstr("loop_slot_size"));
}

TEST_F(CorruptFileTest, UsedBytesBeyondTheFile) {
  put(offsetof(FileHeader, used_bytes), size() + 4096);
  EXPECT_THAT(parse().status().message(), HasSubstr("truncated: used_bytes"));
}

TEST_F(CorruptFileTest, SegmentSizePointingOutsideTheFile) {
  put(second_segment_ + offsetof(SegmentRecord, size), std::uint64_t{1} << 50);
  EXPECT_THAT(parse().status().message(),
              HasSubstr("segment at offset " + std::to_string(second_segment_)));
  put(second_segment_ + offsetof(SegmentRecord, size), 0);
  EXPECT_THAT(parse().status().message(), HasSubstr("size = 0"));
}

TEST_F(CorruptFileTest, LoopCapacityBeyondTheSegment) {
  put(second_segment_ + offsetof(SegmentRecord, loop_capacity), 1000000);
  EXPECT_THAT(parse().status().message(), HasSubstr("loop_capacity = 1000000"));
}

TEST_F(CorruptFileTest, LoopsBeyondCapacity) {
  put(second_segment_ + offsetof(SegmentRecord, loops), 3);
  EXPECT_THAT(parse().status().message(), HasSubstr("loops = 3 exceeds loop_capacity 2"));
}

TEST_F(CorruptFileTest, AWriterThatDiedMidWriteIsInconsistentNotAHang) {
  put(second_segment_ + offsetof(SegmentRecord, seq), 7);  // odd for ever
  ReadOptions options;
  options.max_attempts = 100;
  auto snap = parse_snapshot(bytes(), size(), options);
  ASSERT_TRUE(snap.ok()) << snap.status();
  ASSERT_EQ(snap->processes.size(), 2u);
  EXPECT_FALSE(snap->processes[1].consistent);
  EXPECT_EQ(snap->services.size(), 1u) << "left out of the aggregates";
}

TEST_F(CorruptFileTest, ControlBytesInNamesAreReplaced) {
  const std::size_t at = second_segment_ + offsetof(SegmentRecord, service);
  std::memcpy(bytes() + at, "be\x1b[2Jta", 9);
  auto snap = parse();
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->processes[1].service, "be?[2Jta");
}

TEST_F(CorruptFileTest, InvalidPidIsStaleWithoutAskingTheKernel) {
  // An owner word whose pid is 0 would make kill(0, 0) address our group.
  const std::uint64_t owner = make_owner(1, 0);
  put(second_segment_ + offsetof(SegmentRecord, owner), owner);
  put(second_segment_ + offsetof(SegmentRecord, generation), 1);
  put(second_segment_ + offsetof(SegmentRecord, pid), 0);
  auto snap = parse();
  ASSERT_TRUE(snap.ok()) << snap.status();
  ASSERT_EQ(snap->processes.size(), 2u);
  EXPECT_TRUE(snap->processes[1].stale);
  EXPECT_THAT(snap->processes[1].stale_reason, HasSubstr("invalid pid 0"));
}

TEST(ReaderTest, MissingAndEmptyFiles) {
  TempShmPath file;
  auto reader = Reader::open(file.path());
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(reader.status().message(), HasSubstr(file.path()));
  { std::ofstream touch(file.path()); }
  reader = Reader::open(file.path());
  ASSERT_TRUE(reader.ok());
  EXPECT_THAT(reader->snapshot().status().message(), HasSubstr("is empty"));
}

TEST(ReaderTest, PidReuseIsDetectedByStartTime) {
  const std::string alive = default_liveness(getpid(), 1);
  EXPECT_THAT(alive, HasSubstr("was reused"));
}

// A FIFO at the path is refused at once (opening it used to wait for a
// writer, for ever: loopscale-top hung in open()).
TEST(ReaderTest, AFifoIsRefusedWithoutBlocking) {
  TempShmPath file;
  ASSERT_EQ(::mkfifo(file.path().c_str(), 0600), 0);
  auto reader = Reader::open(file.path());
  ASSERT_FALSE(reader.ok());
  EXPECT_THAT(reader.status().message(), HasSubstr("not a regular file"));
}

// A file that shrinks under a reader gives an error or a shorter snapshot,
// never a SIGBUS (readers read copies, not a mapping of the file).
TEST(ReaderTest, AFileThatShrinksUnderTheReaderIsNoSignal) {
  TempShmPath file;
  auto pub = Publisher::attach(file.config("svc"), "pool", 8);
  ASSERT_TRUE(pub.ok()) << pub.status();
  (*pub)->publish(testing::stats_at("pool", 8, 3));
  auto reader = Reader::open(file.path());
  ASSERT_TRUE(reader.ok()) << reader.status();
  ASSERT_TRUE(reader->snapshot().ok());
  pub->reset();  // a publisher's own mapping is not what is tested here
  for (off_t size : {off_t{5000}, off_t{4096}, off_t{100}, off_t{0}}) {
    ASSERT_EQ(::truncate(file.path().c_str(), size), 0);
    auto snap = reader->snapshot();  // must return, whatever it says
    if (size == 0) {
      EXPECT_THAT(snap.status().message(), HasSubstr("is empty"));
    }
  }
}

// A huge file at the path costs a header's read, not its size (an 8 GiB
// sparse file made loopscale-top die of bad_alloc; a 1 GiB one cost 2 GiB).
TEST(ReaderTest, AHugeFileIsReadOnlyAsFarAsItsHeaderSays) {
  TempShmPath file;
  {
    std::ofstream touch(file.path());
  }
  ASSERT_EQ(::truncate(file.path().c_str(), off_t{8} << 30), 0);  // sparse zeros
  auto reader = Reader::open(file.path());
  ASSERT_TRUE(reader.ok()) << reader.status();
  auto snap = reader->snapshot();
  EXPECT_FALSE(snap.ok());  // zeros: not initialized, named as such
  EXPECT_THAT(snap.status().message(), HasSubstr(file.path()));

  // A valid file whose header claims far more than any pool set needs.
  TempShmPath big;
  auto pub = Publisher::attach(big.config("svc"), "pool", 2);
  ASSERT_TRUE(pub.ok()) << pub.status();
  (*pub)->publish(testing::stats_at("pool", 2, 1));
  pub->reset();
  const std::uint64_t claimed = std::uint64_t{1} << 33;
  ASSERT_EQ(::truncate(big.path().c_str(), static_cast<off_t>(claimed)), 0);
  {
    std::fstream f(big.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(offsetof(FileHeader, used_bytes));
    f.write(reinterpret_cast<const char*>(&claimed), sizeof claimed);
  }
  auto huge = Reader::open(big.path());
  ASSERT_TRUE(huge.ok()) << huge.status();
  snap = huge->snapshot();
  ASSERT_FALSE(snap.ok());
  EXPECT_EQ(snap.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(snap.status().message(), HasSubstr("used_bytes = 8589934592"));
}

// Whoever can write the file can forge its figures: a reader says when
// that is anyone, or another user, and still reads.
TEST(ReaderTest, TrustWarningNamesAWorldWritableFile) {
  TempShmPath file;
  auto pub = Publisher::attach(file.config("svc"), "pool", 2);
  ASSERT_TRUE(pub.ok()) << pub.status();
  ASSERT_EQ(::chmod(file.path().c_str(), 0600), 0);
  auto reader = Reader::open(file.path());
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ(reader->trust_warning(), "");
  ASSERT_EQ(::chmod(file.path().c_str(), 0666), 0);
  EXPECT_THAT(reader->trust_warning(), HasSubstr("is writable by any user (mode 0666)"));
  EXPECT_THAT(reader->trust_warning(), HasSubstr(file.path()));
  EXPECT_TRUE(reader->snapshot().ok());  // a warning, not a refusal
}

TEST(ReaderTest, TrustWarningNamesAnotherUsersFile) {
  TempShmPath file;
  auto pub = Publisher::attach(file.config("svc"), "pool", 2);
  ASSERT_TRUE(pub.ok()) << pub.status();
  ASSERT_EQ(::chmod(file.path().c_str(), 0644), 0);
  auto reader = Reader::open(file.path());
  ASSERT_TRUE(reader.ok()) << reader.status();
  if (::chown(file.path().c_str(), 65534, 65534) != 0) {
    GTEST_SKIP() << "cannot give the file to another user (not root)";
  }
  EXPECT_THAT(reader->trust_warning(), HasSubstr("belongs to uid 65534, not to this user"));
  EXPECT_TRUE(reader->snapshot().ok());
}

// reclaim_stale writes into the file: never into another user's.
TEST(ReclaimStaleTest, RefusesAFileThatBelongsToAnotherUser) {
  TempShmPath file;
  auto pub = Publisher::attach(file.config("svc"), "pool", 2);
  ASSERT_TRUE(pub.ok()) << pub.status();
  pub->reset();
  if (::chown(file.path().c_str(), 65534, 65534) != 0) {
    GTEST_SKIP() << "cannot give the file to another user (not root)";
  }
  auto freed = reclaim_stale(file.path());
  ASSERT_FALSE(freed.ok());
  EXPECT_EQ(freed.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(freed.status().message(), HasSubstr("belongs to uid 65534"));
}

// A file that shrinks and grows back while reclaim_stale works on it is an
// error or a result, never a SIGBUS (it used to map the file: 94 of 692
// such races killed loopscale-top --reclaim_stale).
TEST(ReclaimStaleTest, SurvivesAFileShrinkingUnderIt) {
  TempShmPath file;
  auto pub = Publisher::attach(file.config("svc"), "pool", 2);
  ASSERT_TRUE(pub.ok()) << pub.status();
  (*pub)->publish(testing::stats_at("pool", 2, 1));
  pub->reset();
  const std::vector<std::uint64_t> whole = file.words();
  std::atomic<bool> stop{false};
  std::latch started(1);
  std::thread shrinker([&] {
    const int fd = ::open(file.path().c_str(), O_WRONLY);
    started.count_down();
    while (!stop.load()) {
      (void)::ftruncate(fd, 4096);
      (void)::pwrite(fd, whole.data(), whole.size() * 8, 0);
    }
    ::close(fd);
  });
  started.wait();
  for (int i = 0; i < 1000; ++i) (void)reclaim_stale(file.path());  // must return
  stop = true;
  shrinker.join();
  SUCCEED();
}

}  // namespace
}  // namespace loopscale::shm
