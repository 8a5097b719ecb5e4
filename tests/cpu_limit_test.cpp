// detect_cpu_limit against fake cgroup trees: the rule in cpu_limit.hpp.

#include "loopscale/cpu_limit.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "loopscale/loop_pool.hpp"

namespace loopscale {
namespace {

namespace fs = std::filesystem;

class CpuLimitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "cpu_limit_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    root_ = dir_ / "cgroup";
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }
  // The process is in `cgroup` (a cgroup v2 path such as "/kubepods/pod1").
  void member_of(const std::string& cgroup) {
    write(dir_ / "self_cgroup", "0::" + cgroup + "\n");
  }
  CpuLimit detect(std::size_t online, std::size_t affinity) {
    CpuLimitSources s;
    s.proc_self_cgroup = (dir_ / "self_cgroup").string();
    s.cgroup_root = root_.string();
    s.online = online;
    s.affinity = affinity;
    return detect_cpu_limit(s);
  }

  fs::path dir_, root_;
};

TEST_F(CpuLimitTest, NoLimitIsEveryOnlineCpu) {
  member_of("/user.slice");
  write(root_ / "user.slice" / "cpu.max", "max 100000\n");
  const CpuLimit l = detect(64, 64);
  EXPECT_EQ(l.cpus, 64u);
  EXPECT_EQ(l.online, 64u);
  EXPECT_EQ(l.quota, 0);
  EXPECT_EQ(l.limited_by, "");
}

TEST_F(CpuLimitTest, AQuotaOfTwoCpusOnASixtyFourCoreNode) {
  member_of("/kubepods/pod1/c1");
  write(root_ / "kubepods" / "pod1" / "c1" / "cpu.max", "200000 100000\n");
  const CpuLimit l = detect(64, 64);
  EXPECT_EQ(l.cpus, 2u);
  EXPECT_DOUBLE_EQ(l.quota, 2.0);
  EXPECT_NE(l.limited_by.find("cgroup CPU quota"), std::string::npos) << l.limited_by;
  EXPECT_NE(l.limited_by.find("200000 100000"), std::string::npos) << l.limited_by;
  EXPECT_NE(l.limited_by.find("c1"), std::string::npos) << l.limited_by;
}

TEST_F(CpuLimitTest, AFractionalQuotaRoundsUp) {
  member_of("/a");
  write(root_ / "a" / "cpu.max", "150000 100000");
  EXPECT_EQ(detect(8, 8).cpus, 2u);
  write(root_ / "a" / "cpu.max", "10000 100000");  // 0.1 CPU: still one loop
  EXPECT_EQ(detect(8, 8).cpus, 1u);
}

TEST_F(CpuLimitTest, TheSmallestQuotaOnThePathWins) {
  member_of("/parent/child");
  write(root_ / "parent" / "cpu.max", "300000 100000");
  write(root_ / "parent" / "child" / "cpu.max", "max 100000");
  const CpuLimit l = detect(16, 16);
  EXPECT_EQ(l.cpus, 3u);
  EXPECT_NE(l.limited_by.find("parent"), std::string::npos) << l.limited_by;
  // Nothing above the mount is read, even if a cpu.max sits there.
  write(dir_ / "cpu.max", "100000 100000");
  EXPECT_EQ(detect(16, 16).cpus, 3u);
}

TEST_F(CpuLimitTest, TheAffinityMaskNarrows) {
  member_of("/");
  const CpuLimit l = detect(64, 4);
  EXPECT_EQ(l.cpus, 4u);
  EXPECT_NE(l.limited_by.find("affinity mask (4 of 64"), std::string::npos)
      << l.limited_by;
  // The smaller of mask and quota.
  write(root_ / "cpu.max", "600000 100000");
  EXPECT_EQ(detect(64, 4).cpus, 4u);
  write(root_ / "cpu.max", "200000 100000");
  EXPECT_EQ(detect(64, 4).cpus, 2u);
}

TEST_F(CpuLimitTest, AContainerWithoutACgroupNamespaceReadsTheMountRoot) {
  // /proc/self/cgroup names the host's path; the container sees its own
  // cgroup mounted at the root.
  member_of("/docker/0123abcd");
  write(root_ / "cpu.max", "100000 100000");
  EXPECT_EQ(detect(8, 8).cpus, 1u);
}

TEST_F(CpuLimitTest, UnreadableOrMalformedFilesAreIgnored) {
  member_of("/a");
  for (const char* bad : {"", "garbage", "100000", "-5 100000", "100000 0", "0 100000",
                          "1 2 3", "99999999999999999999999 1"}) {
    write(root_ / "a" / "cpu.max", bad);
    EXPECT_EQ(detect(8, 8).cpus, 8u) << '"' << bad << '"';
  }
  // No /proc/self/cgroup, a cgroup v1 only system, a path escaping the mount.
  fs::remove(dir_ / "self_cgroup");
  EXPECT_EQ(detect(8, 8).cpus, 8u);
  write(dir_ / "self_cgroup", "12:cpu,cpuacct:/a\n");
  EXPECT_EQ(detect(8, 8).cpus, 8u);
  write(dir_ / "cpu.max", "100000 100000");
  member_of("/../..");
  EXPECT_EQ(detect(8, 8).cpus, 8u);
}

TEST_F(CpuLimitTest, NeverBelowOne) {
  member_of("/");
  EXPECT_EQ(detect(0, 0).cpus, 1u);  // hardware_concurrency() may return 0
}

TEST(CpuLimitMachineTest, ThisMachineHasAtLeastOneCpuAndAReason) {
  const CpuLimit l = detect_cpu_limit();
  EXPECT_GE(l.cpus, 1u);
  EXPECT_EQ(l.cpus < l.online, !l.limited_by.empty()) << l.limited_by;
}

TEST(CpuLimitMachineTest, APoolWithMaxLoopsZeroHasOneLoopPerUsableCpu) {
  PoolOptions options;
  options.metrics.enabled = false;
  options.scaling.max_loops = 0;
  auto pool = LoopPool::create(options);
  ASSERT_TRUE(pool.ok()) << pool.status();
  const CpuLimit l = detect_cpu_limit();
  EXPECT_EQ((*pool)->size(), l.cpus);
  EXPECT_EQ((*pool)->stats().size_limited_by, l.limited_by);
}

}  // namespace
}  // namespace loopscale
