// Publishers in fork()ed children, read by the parent: the file as other
// processes see it, dead processes reported stale, and their segments
// reclaimed. Children only publish (no threads), then wait on a pipe.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loopscale/shm/publisher.hpp"
#include "loopscale/shm/reader.hpp"
#include "support/shm_file.hpp"
#include "support/wait.hpp"

namespace loopscale::shm {
namespace {

using ::testing::HasSubstr;
using testing::stats_at;
using testing::TempShmPath;

// A child process that publishes one pool, tells the parent, and runs until
// told to go (or is killed).
class Child {
 public:
  Child(const TempShmPath& file, std::string service, std::size_t loops,
        std::uint64_t step) {
    int ready[2], go[2];
    EXPECT_EQ(pipe(ready), 0);
    EXPECT_EQ(pipe(go), 0);
    pid_ = fork();
    if (pid_ == 0) {
      close(ready[0]);
      close(go[1]);
      auto pub = Publisher::attach(file.config(service), service, loops);
      if (!pub.ok()) _exit(2);
      (*pub)->publish(stats_at(service, loops, step));
      char c = 'r';
      if (write(ready[1], &c, 1) != 1) _exit(3);
      // Runs until the parent closes its end; a clean exit releases.
      while (read(go[0], &c, 1) > 0) {
      }
      pub->reset();
      _exit(0);
    }
    close(ready[1]);
    close(go[0]);
    go_ = go[1];
    char c = 0;
    ok_ = read(ready[0], &c, 1) == 1;
    close(ready[0]);
  }
  ~Child() {
    if (go_ >= 0) close(go_);
    if (!reaped_) waitpid(pid_, nullptr, 0);
  }
  bool ok() const { return ok_; }
  pid_t pid() const { return pid_; }
  void kill_now() {
    ::kill(pid_, SIGKILL);
  }
  // Ends the child cleanly and waits for it.
  int finish() {
    close(go_);
    go_ = -1;
    return reap();
  }
  int reap() {
    int status = 0;
    waitpid(pid_, &status, 0);
    reaped_ = true;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int go_ = -1;
  bool ok_ = false;
  bool reaped_ = false;
};

Snapshot read(const std::string& path) {
  auto reader = Reader::open(path);
  EXPECT_TRUE(reader.ok()) << reader.status();
  auto snap = reader->snapshot();
  EXPECT_TRUE(snap.ok()) << snap.status();
  return snap.ok() ? *snap : Snapshot{};
}

const ProcessSnapshot* find(const Snapshot& s, pid_t pid) {
  for (const ProcessSnapshot& p : s.processes) {
    if (p.pid == static_cast<std::uint64_t>(pid)) return &p;
  }
  return nullptr;
}

TEST(CrossProcessTest, ParentReadsWhatAChildPublished) {
  TempShmPath file;
  Child child(file, "worker", 3, 42);
  ASSERT_TRUE(child.ok());
  const Snapshot snap = read(file.path());
  const ProcessSnapshot* p = find(snap, child.pid());
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(p->stale) << p->stale_reason;
  EXPECT_EQ(p->service, "worker");
  EXPECT_EQ(p->ticks, 42u);
  ASSERT_EQ(p->loops.size(), 3u);
  EXPECT_EQ(p->loops[2].busy_ns, 42002u);
  EXPECT_EQ(child.finish(), 0);
  const Snapshot after = read(file.path());
  EXPECT_EQ(find(after, child.pid()), nullptr)
      << "a clean exit releases the segment";
}

TEST(CrossProcessTest, TwoServicesInTwoProcessesAggregateApart) {
  TempShmPath file;
  Child a1(file, "alpha", 2, 10);
  Child a2(file, "alpha", 3, 20);
  Child b(file, "beta", 4, 30);
  ASSERT_TRUE(a1.ok() && a2.ok() && b.ok());
  const Snapshot snap = read(file.path());
  ASSERT_EQ(snap.services.size(), 2u);
  EXPECT_EQ(snap.services[0].name, "alpha");
  EXPECT_EQ(snap.services[0].processes, 2u);
  EXPECT_EQ(snap.services[0].loops, 5u);
  EXPECT_EQ(snap.services[0].active_loops, 1u + 1u);
  EXPECT_EQ(snap.services[1].name, "beta");
  EXPECT_EQ(snap.services[1].processes, 1u);
  EXPECT_EQ(snap.services[1].loops, 4u);
}

TEST(CrossProcessTest, AKilledChildIsStaleAndItsSegmentIsReclaimed) {
  TempShmPath file;
  Child survivor(file, "api", 2, 1);
  Child victim(file, "api", 2, 2);
  ASSERT_TRUE(survivor.ok() && victim.ok());
  victim.kill_now();
  // Not yet reaped: a zombie publishes nothing and counts as dead.
  ASSERT_TRUE(testing::eventually([&] {
    const Snapshot s = read(file.path());
    const ProcessSnapshot* p = find(s, victim.pid());
    return p != nullptr && p->stale;
  }));
  victim.reap();
  Snapshot snap = read(file.path());
  const ProcessSnapshot* dead = find(snap, victim.pid());
  ASSERT_NE(dead, nullptr);
  EXPECT_TRUE(dead->stale);
  EXPECT_THAT(dead->stale_reason, HasSubstr("is gone"));
  ASSERT_EQ(snap.services.size(), 1u);
  EXPECT_EQ(snap.services[0].processes, 1u) << "the dead one is left out";
  const std::uint64_t dead_offset = dead->offset;

  auto freed = reclaim_stale(file.path());
  ASSERT_TRUE(freed.ok()) << freed.status();
  EXPECT_EQ(*freed, 1u);
  snap = read(file.path());
  EXPECT_EQ(find(snap, victim.pid()), nullptr);
  EXPECT_NE(find(snap, survivor.pid()), nullptr) << "the live one is kept";

  // The freed segment is what the next pool gets.
  auto next = Publisher::attach(file.config("api"), "next", 2);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ((*next)->segment_offset(), dead_offset);
  EXPECT_EQ(survivor.finish(), 0);
}

TEST(CrossProcessTest, APublisherTakesOverADeadProcessSegmentByItself) {
  TempShmPath file;
  Child victim(file, "api", 2, 2);
  ASSERT_TRUE(victim.ok());
  victim.kill_now();
  victim.reap();
  const std::uint64_t offset = read(file.path()).processes.at(0).offset;
  auto next = Publisher::attach(file.config("api"), "next", 2);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ((*next)->segment_offset(), offset);
  const Snapshot snap = read(file.path());
  ASSERT_EQ(snap.processes.size(), 1u);
  EXPECT_EQ(snap.processes[0].pid, static_cast<std::uint64_t>(getpid()));
}

}  // namespace
}  // namespace loopscale::shm
