#include "loopscale/shm/publisher.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "loopscale/shm/figures.hpp"
#include "loopscale/shm/layout.hpp"
#include "loopscale/shm/reader.hpp"
#include "support/shm_file.hpp"

namespace loopscale::shm {
namespace {

using ::testing::HasSubstr;
using testing::stats_at;
using testing::TempShmPath;

Snapshot read(const TempShmPath& file) {
  auto reader = Reader::open(file.path());
  EXPECT_TRUE(reader.ok()) << reader.status();
  auto snap = reader->snapshot();
  EXPECT_TRUE(snap.ok()) << snap.status();
  return *snap;
}

TEST(PublisherTest, CreatesThePrivateFileAndShowsThePool) {
  TempShmPath file;
  auto pub = Publisher::attach(file.config("api"), "pool-a", 4);
  ASSERT_TRUE(pub.ok()) << pub.status();
  struct stat st{};
  ASSERT_EQ(stat(file.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  (*pub)->publish(stats_at("pool-a", 4, 7));

  const Snapshot snap = read(file);
  EXPECT_EQ(snap.version_major, kVersionMajor);
  ASSERT_EQ(snap.processes.size(), 1u);
  const ProcessSnapshot& p = snap.processes[0];
  EXPECT_EQ(p.pid, static_cast<std::uint64_t>(getpid()));
  EXPECT_EQ(p.service, "api");
  EXPECT_EQ(p.pool, "pool-a");
  EXPECT_FALSE(p.stale) << p.stale_reason;
  EXPECT_TRUE(p.consistent);
  EXPECT_GT(p.heartbeat_ns, 0u);
  EXPECT_EQ(p.ticks, 7u);
  EXPECT_EQ(p.scale_ups, 7u);
  EXPECT_EQ(p.scale_downs, 3u);
  EXPECT_EQ(p.active_loops, 2u);
  EXPECT_EQ(p.moves_requested, 21u);
  ASSERT_EQ(p.loops.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    const LoopSnapshot& l = p.loops[i];
    EXPECT_EQ(l.index, i);
    EXPECT_EQ(l.busy_ns, 7000 + i);
    EXPECT_EQ(l.handlers, 7u);
    EXPECT_EQ(l.wakeups, 8u);
    EXPECT_EQ(l.registrations, i);
    EXPECT_EQ(l.cpu_ns, 70u);
    EXPECT_EQ(l.scheduling_lag_ns, 49u);
    EXPECT_EQ(l.moves_in, 9u);
    EXPECT_EQ(l.moves_out, 10u);
    EXPECT_EQ(l.moves_failed, i);
    EXPECT_DOUBLE_EQ(l.utilization, static_cast<double>(i % 4) / 4.0);
    EXPECT_EQ(l.state_name, i < 2 ? "active" : "suspended");
  }
}

// Every numeric row of the schema reads back as the value figures.cpp
// computed: a new row cannot be forgotten by the writer or the reader.
TEST(PublisherTest, EveryFigureReadsBackAsPublished) {
  TempShmPath file;
  auto pub = Publisher::attach(file.config("api"), "p", 3);
  ASSERT_TRUE(pub.ok()) << pub.status();
  const PoolStats stats = stats_at("p", 3, 5);
  (*pub)->publish(stats);
  const Snapshot snap = read(file);
  ASSERT_EQ(snap.processes.size(), 1u);
  const ProcessSnapshot& p = snap.processes[0];
  auto same = [](const Figure& read, const FigureValue& wrote) {
    return wrote.is_float ? read.is_float && read.f == wrote.f : !read.is_float && read.u == wrote.u;
  };
  auto find = [](const std::vector<Figure>& figures, std::string_view name) {
    for (const Figure& f : figures) {
      if (f.name == name) return &f;
    }
    return static_cast<const Figure*>(nullptr);
  };
  int checked = 0;
  for (const FieldSpec& row : kSchema) {
    // The job types' rows are read by name (JobsReadBackByName).
    if (row.type == FieldType::kString || is_job_field(row.name)) continue;
    if (row.record == Record::kSegment) {
      const auto wrote = pool_figure_value(row.name, stats);
      if (!wrote) continue;  // the process's identity
      const Figure* f = find(p.figures, row.name);
      ASSERT_NE(f, nullptr) << row.name;
      EXPECT_TRUE(same(*f, *wrote)) << row.name;
      ++checked;
    } else {
      for (std::size_t i = 0; i < p.loops.size(); ++i) {
        const auto wrote = loop_figure_value(row.name, stats.loops[i]);
        ASSERT_TRUE(wrote.has_value()) << row.name;
        const Figure* f = find(p.loops[i].figures, row.name);
        ASSERT_NE(f, nullptr) << row.name;
        EXPECT_TRUE(same(*f, *wrote)) << row.name << " of loop " << i;
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, 30);
}

// Job types are read back per loop, summed per process by id, and per
// service by name: here two processes' worth of pools registered them in
// different orders.
TEST(PublisherTest, JobsReadBackByName) {
  TempShmPath file;
  auto a = Publisher::attach(file.config("api"), "a", 2);
  auto b = Publisher::attach(file.config("api"), "b", 1);
  ASSERT_TRUE(a.ok() && b.ok());
  (*a)->publish(stats_at("a", 2, 10));
  PoolStats other_order = stats_at("b", 1, 20);
  other_order.job_types = {"other", "work", "parse"};
  std::swap(other_order.loops[0].jobs[1], other_order.loops[0].jobs[2]);
  (*b)->publish(other_order);

  const Snapshot snap = read(file);
  ASSERT_EQ(snap.processes.size(), 2u);
  const LoopSnapshot& l1 = snap.processes[0].loops[1];
  ASSERT_EQ(l1.jobs.size(), 3u);
  EXPECT_EQ(l1.jobs[1].name, "parse");
  EXPECT_EQ(l1.jobs[1].busy_ns, 10u * 100 + 1);
  EXPECT_EQ(l1.jobs[1].count, 10u);
  EXPECT_EQ(l1.jobs[2].busy_ns, 10u * 200);
  EXPECT_EQ(l1.jobs[2].count, 20u);
  std::uint64_t sum = 0;
  for (const JobSnapshot& j : l1.jobs) sum += j.busy_ns;
  EXPECT_EQ(sum, l1.busy_ns) << "the split adds up to the busy time";
  EXPECT_EQ(snap.processes[0].jobs[1].busy_ns, (1000u + 0) + (1000u + 1))
      << "a process sums its loops";
  for (const Figure& f : l1.figures) EXPECT_FALSE(is_job_field(f.name)) << f.name;

  ASSERT_EQ(snap.services.size(), 1u);
  const auto& jobs = snap.services[0].jobs;
  ASSERT_EQ(jobs.size(), 3u);
  EXPECT_EQ(jobs[0].name, "other");
  EXPECT_EQ(jobs[1].name, "parse");
  EXPECT_EQ(jobs[1].busy_ns, (1000u + 0) + (1000u + 1) + 2000u);
  EXPECT_EQ(jobs[1].count, 10u + 10 + 20);
  EXPECT_EQ(jobs[2].name, "work");
  EXPECT_EQ(jobs[2].count, 20u + 20 + 40);
}

// A process of this version joins a file that a process of format 1.3
// created (tests/shm/compat/format-1.3.bin, written by loopscale at format
// 1.3): it claims a segment of the file's sizes and writes only the fields
// the file has, so the 1.3 pools in it read as before.
TEST(PublisherTest, JoinsAFileOfFormatOneThree) {
  TempShmPath file;
  std::filesystem::copy_file(LOOPSCALE_SOURCE_DIR "/tests/shm/compat/format-1.3.bin",
                             file.path());
  std::filesystem::permissions(file.path(), std::filesystem::perms::owner_read |
                                                std::filesystem::perms::owner_write);
  const auto before = read(file);
  auto pub = Publisher::attach(file.config("gamma"), "g", 3);
  ASSERT_TRUE(pub.ok()) << pub.status();
  (*pub)->publish(stats_at("g", 3, 40));
  const Snapshot snap = read(file);
  EXPECT_EQ(snap.version_minor, 3u);
  // The fixture's process is gone: the new pool may take one of its
  // segments; the others read as before.
  int kept = 0;
  const ProcessSnapshot* g_ptr = nullptr;
  for (const ProcessSnapshot& p : snap.processes) {
    if (p.service == "gamma") g_ptr = &p;
    for (const ProcessSnapshot& old : before.processes) {
      if (old.offset != p.offset || p.service == "gamma") continue;
      ++kept;
      ASSERT_EQ(p.loops.size(), old.loops.size());
      for (std::size_t k = 0; k < old.loops.size(); ++k) {
        EXPECT_EQ(p.loops[k].busy_ns, old.loops[k].busy_ns);
        EXPECT_EQ(p.loops[k].moves_failed, old.loops[k].moves_failed);
      }
    }
  }
  EXPECT_GE(kept, 2);
  ASSERT_NE(g_ptr, nullptr);
  const ProcessSnapshot& g = *g_ptr;
  EXPECT_EQ(g.service, "gamma");
  ASSERT_EQ(g.loops.size(), 3u);
  EXPECT_EQ(g.loops[2].busy_ns, 40u * 1000 + 2);
  EXPECT_EQ(g.loops[2].moves_out, 40u + 3);
  EXPECT_TRUE(g.jobs.empty()) << "a 1.3 file has no room for job types";
}

TEST(PublisherTest, ConfiguredModeIsUsedForANewFile) {
  TempShmPath file;
  MetricsConfig config = file.config("api");
  config.file_mode = 0640;
  const mode_t old = umask(0);
  auto pub = Publisher::attach(config, "p", 1);
  umask(old);
  ASSERT_TRUE(pub.ok()) << pub.status();
  struct stat st{};
  ASSERT_EQ(stat(file.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST(PublisherTest, ServicesAggregateByTheSchemaRules) {
  TempShmPath file;
  auto a1 = Publisher::attach(file.config("alpha"), "a1", 4);
  auto a2 = Publisher::attach(file.config("alpha"), "a2", 2);
  auto b = Publisher::attach(file.config("beta"), "b", 3);
  ASSERT_TRUE(a1.ok() && a2.ok() && b.ok());
  (*a1)->publish(stats_at("a1", 4, 10));
  (*a2)->publish(stats_at("a2", 2, 20));
  (*b)->publish(stats_at("b", 3, 30));

  const Snapshot snap = read(file);
  ASSERT_EQ(snap.services.size(), 2u);
  const ServiceSnapshot& alpha = snap.services[0];
  EXPECT_EQ(alpha.name, "alpha");
  EXPECT_EQ(alpha.processes, 1u) << "two pools of one process";
  EXPECT_EQ(alpha.pools, 2u);
  EXPECT_EQ(alpha.loops, 6u);
  EXPECT_EQ(alpha.active_loops, 2u + 1u);
  // Utilizations: a1 0, .25, .5, .75; a2 0, .25: mean over the six loops.
  EXPECT_DOUBLE_EQ(alpha.utilization, 1.75 / 6);
  auto figure = [](const ServiceSnapshot& s, std::string_view name) {
    for (const Figure& f : s.figures) {
      if (f.name == name) return f;
    }
    ADD_FAILURE() << "no figure " << name;
    return Figure{};
  };
  EXPECT_EQ(figure(alpha, "handlers").u, 4 * 10u + 2 * 20u);           // sum
  EXPECT_EQ(figure(alpha, "ticks").u, 20u);                            // max
  EXPECT_EQ(figure(alpha, "busy_ns").u, (40000u + 6) + (40000u + 1));  // sum
  EXPECT_EQ(figure(alpha, "registrations").u, 0u + 1 + 2 + 3 + 0 + 1);
  const ServiceSnapshot& beta = snap.services[1];
  EXPECT_EQ(beta.name, "beta");
  EXPECT_EQ(beta.loops, 3u);
  EXPECT_EQ(figure(beta, "scale_ups").u, 30u);
}

TEST(PublisherTest, ReleaseFreesTheSegmentForTheNextPool) {
  TempShmPath file;
  auto first = Publisher::attach(file.config("api"), "p", 4);
  ASSERT_TRUE(first.ok());
  const std::uint64_t offset = (*first)->segment_offset();
  (*first)->publish(stats_at("p", 4, 99));
  first->reset();  // released
  EXPECT_TRUE(read(file).processes.empty());

  auto second = Publisher::attach(file.config("web"), "q", 2);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*second)->segment_offset(), offset) << "the free segment is reused";
  const Snapshot snap = read(file);
  ASSERT_EQ(snap.processes.size(), 1u);
  EXPECT_EQ(snap.processes[0].service, "web");
  EXPECT_EQ(snap.processes[0].ticks, 0u) << "the segment was zeroed";
  EXPECT_EQ(snap.processes[0].loops.size(), 2u);
  for (const LoopSnapshot& l : snap.processes[0].loops) EXPECT_EQ(l.busy_ns, 0u);
}

TEST(PublisherTest, GrowsWhileOthersHaveTheFileMapped) {
  TempShmPath file;
  auto early = Publisher::attach(file.config("early"), "e", 8);
  ASSERT_TRUE(early.ok());
  auto reader = Reader::open(file.path());
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(reader->snapshot().ok());
  const auto size_before = std::filesystem::file_size(file.path());

  // 40 pools of 64 loops need ~360 KiB: the file grows several times.
  std::vector<std::unique_ptr<Publisher>> many;
  for (int i = 0; i < 40; ++i) {
    auto p = Publisher::attach(file.config("bulk"), "b", 64);
    ASSERT_TRUE(p.ok()) << p.status();
    (*p)->publish(stats_at("b", 64, i));
    many.push_back(*std::move(p));
  }
  EXPECT_GT(std::filesystem::file_size(file.path()), size_before);
  // The early writer's mapping predates the growth and still works.
  (*early)->publish(stats_at("e", 8, 5));
  auto snap = reader->snapshot();
  ASSERT_TRUE(snap.ok()) << snap.status();
  ASSERT_EQ(snap->services.size(), 2u);
  EXPECT_EQ(snap->services[0].name, "bulk");
  EXPECT_EQ(snap->services[0].loops, 40u * 64);
  EXPECT_EQ(snap->services[1].name, "early");
  EXPECT_EQ(snap->processes[0].ticks, 5u);
}

TEST(PublisherTest, RefusesASymlink) {
  TempShmPath file;
  TempShmPath target;
  { std::ofstream(target.path()) << "precious"; }
  std::filesystem::create_symlink(target.path(), file.path());
  auto pub = Publisher::attach(file.config("api"), "p", 1);
  ASSERT_FALSE(pub.ok());
  EXPECT_THAT(pub.status().message(), HasSubstr("symbolic link"));
  EXPECT_THAT(pub.status().message(), HasSubstr(file.path()));
  std::ifstream in(target.path());
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious") << "the link's target was not touched";
  auto reader = Reader::open(file.path());
  ASSERT_FALSE(reader.ok());
  EXPECT_THAT(reader.status().message(), HasSubstr("symbolic link"));
}

TEST(PublisherTest, RefusesADirectoryAndAnUnwritableLocation) {
  TempShmPath dir;
  std::filesystem::create_directory(dir.path());
  auto pub = Publisher::attach(dir.config("api"), "p", 1);
  ASSERT_FALSE(pub.ok());
  EXPECT_THAT(pub.status().message(), HasSubstr(dir.path()));

  MetricsConfig nowhere;
  nowhere.shm_path = "/dev/null/loopscale";  // a file is not a directory
  pub = Publisher::attach(nowhere, "p", 1);
  ASSERT_FALSE(pub.ok());
  EXPECT_THAT(pub.status().message(),
              HasSubstr("/dev/null/loopscale: cannot open or create"));
}

TEST(PublisherTest, RefusesAForeignFileAndLeavesItAlone) {
  TempShmPath file;
  { std::ofstream(file.path()) << "not a metrics file, but somebody's data"; }
  auto pub = Publisher::attach(file.config("api"), "p", 1);
  ASSERT_FALSE(pub.ok());
  EXPECT_THAT(pub.status().message(), HasSubstr("bad magic"));
  EXPECT_EQ(std::filesystem::file_size(file.path()), 39u);
}

TEST(PublisherTest, AFullLocationIsAnErrorNotACrash) {
  TempShmPath file;
  // A child whose file-size limit is below what a segment needs: growing the
  // file fails as it would on a full tmpfs.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    signal(SIGXFSZ, SIG_IGN);
    rlimit limit{8192, 8192};
    setrlimit(RLIMIT_FSIZE, &limit);
    auto pub = Publisher::attach(file.config("api"), "p", 4);
    const bool clear = !pub.ok() && std::string(pub.status().message())
                                            .find("cannot grow") != std::string::npos;
    _exit(clear ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "the child crashed";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "attach did not report the full file";
}

TEST(PublisherTest, AFileWhoseCreatorDiedBeforeTheMagicIsInitialized) {
  TempShmPath file;
  { std::ofstream(file.path(), std::ios::binary) << std::string(100, '\0'); }
  chmod(file.path().c_str(), 0600);
  auto pub = Publisher::attach(file.config("api"), "p", 2);
  ASSERT_TRUE(pub.ok()) << pub.status();
  EXPECT_EQ(read(file).processes.size(), 1u);
}

TEST(PublisherTest, InvalidArgumentsNameTheField) {
  TempShmPath file;
  auto pub = Publisher::attach(file.config("api"), "p", 0);
  ASSERT_FALSE(pub.ok());
  EXPECT_THAT(pub.status().message(), HasSubstr("loops = 0"));
}

}  // namespace
}  // namespace loopscale::shm
