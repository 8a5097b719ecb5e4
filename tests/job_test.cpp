// Job types: the registry's bounds (job_type.hpp), the recorder's split of
// busy time by job on a fake clock (activity.hpp), and marking on a real
// loop with JobScope and bind_job (job_scope.hpp).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <asio/bind_executor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <future>
#include <string>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>

#include "loopscale/activity.hpp"
#include "loopscale/awaitable.hpp"
#include "loopscale/detail/test_hooks.hpp"
#include "loopscale/event_loop.hpp"
#include "loopscale/io.hpp"
#include "loopscale/job_scope.hpp"
#include "loopscale/job_type.hpp"
#include "support/wait.hpp"

namespace loopscale {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

const Clock::time_point t0 = Clock::time_point(10s);

class JobTypeTest : public ::testing::Test {
 protected:
  void SetUp() override { detail::reset_job_types_for_testing(); }
  void TearDown() override { detail::reset_job_types_for_testing(); }
};

// ---- the registry ----------------------------------------------------------

TEST_F(JobTypeTest, OtherAlwaysExistsAsIdZero) {
  EXPECT_EQ(JobType().id(), 0u);
  EXPECT_EQ(JobType::other().name(), "other");
  EXPECT_EQ(job_type_names(), std::vector<std::string>{"other"});
}

TEST_F(JobTypeTest, RegisteringGivesIdsInOrderAndAgainTheSame) {
  const JobType parse = register_job_type("parse").value();
  const JobType work = register_job_type("work").value();
  EXPECT_EQ(parse.id(), 1u);
  EXPECT_EQ(work.id(), 2u);
  EXPECT_EQ(work.name(), "work");
  EXPECT_EQ(register_job_type("parse").value(), parse);
  EXPECT_EQ(job_type_names(), (std::vector<std::string>{"other", "parse", "work"}));
}

TEST_F(JobTypeTest, NamesOutOfBoundsAreRefusedWithTheReason) {
  const std::string longest(kMaxJobTypeName, 'a');
  EXPECT_TRUE(register_job_type(longest).ok());
  const auto too_long = register_job_type(longest + "a");
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_long.status().message()), HasSubstr("24 bytes"));
  for (const char* bad : {"", "Parse", "9lives", "a-b", "a b", "caf\xc3\xa9"}) {
    const auto r = register_job_type(bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  const auto other = register_job_type("other");
  EXPECT_THAT(std::string(other.status().message()), HasSubstr("is taken"));
  EXPECT_EQ(job_type_names().size(), 2u);  // "other" and the longest
}

TEST_F(JobTypeTest, MoreThanTheBoundIsRefusedAndTheRegisteredStay) {
  for (std::size_t i = 1; i < kMaxJobTypes; ++i) {
    ASSERT_TRUE(register_job_type("job" + std::to_string(i)).ok()) << i;
  }
  const auto r = register_job_type("one_more");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("at most 16"));
  EXPECT_EQ(register_job_type("job3").value().id(), 3u);  // still found
  EXPECT_EQ(job_type_names().size(), kMaxJobTypes);
}

// ---- the recorder, on a fake clock --------------------------------------------

TEST(JobRecorderTest, UnmarkedBusyTimeIsOther) {
  ActivityRecorder rec;
  rec.mark_busy(t0);
  rec.mark_idle(t0 + 4ms);
  const auto s = rec.jobs(t0 + 10ms);
  EXPECT_EQ(s.busy, 4ms);
  EXPECT_EQ(s.jobs[0].busy, 4ms);
  for (std::size_t i = 1; i < kMaxJobTypes; ++i) EXPECT_EQ(s.jobs[i].busy, 0ns);
}

TEST(JobRecorderTest, SwitchingSplitsTheSliceAtEachSwitch) {
  ActivityRecorder rec;
  rec.mark_busy(t0);
  EXPECT_EQ(rec.switch_job(1, t0 + 1ms, true), 0u);
  EXPECT_EQ(rec.switch_job(2, t0 + 3ms, true), 1u);
  EXPECT_EQ(rec.switch_job(0, t0 + 6ms, false), 2u);
  rec.mark_idle(t0 + 10ms);
  const auto s = rec.jobs(t0 + 20ms);
  EXPECT_EQ(s.busy, 10ms);
  EXPECT_EQ(s.jobs[1].busy, 2ms);
  EXPECT_EQ(s.jobs[2].busy, 3ms);
  EXPECT_EQ(s.jobs[0].busy, 5ms);
  EXPECT_EQ(s.jobs[1].count, 1u);
  EXPECT_EQ(s.jobs[2].count, 1u);
  EXPECT_EQ(s.jobs[0].count, 0u);  // returning to "other" is not entering it
}

TEST(JobRecorderTest, NestedJobsKeepTheirOwnTimeAndTheOuterResumes) {
  ActivityRecorder rec;
  rec.mark_busy(t0);
  const std::size_t outer_prev = rec.switch_job(1, t0, true);       // outer
  const std::size_t inner_prev = rec.switch_job(2, t0 + 2ms, true);  // inner
  EXPECT_EQ(inner_prev, 1u);
  rec.switch_job(inner_prev, t0 + 5ms, false);  // inner ends: outer again
  rec.switch_job(outer_prev, t0 + 6ms, false);  // outer ends
  rec.mark_idle(t0 + 7ms);
  const auto s = rec.jobs(t0 + 7ms);
  EXPECT_EQ(s.jobs[1].busy, 2ms + 1ms);
  EXPECT_EQ(s.jobs[2].busy, 3ms);
  EXPECT_EQ(s.jobs[0].busy, 1ms);
  EXPECT_EQ(s.jobs[1].count, 1u);  // resumed, not entered again
}

TEST(JobRecorderTest, AJobInProgressCountsUpToTheReadersNow) {
  ActivityRecorder rec;
  rec.mark_busy(t0);
  rec.switch_job(3, t0 + 1ms, true);
  const auto s = rec.jobs(t0 + 10s);
  EXPECT_EQ(s.busy, 10s);
  EXPECT_EQ(s.jobs[3].busy, 10s - 1ms);
  EXPECT_EQ(s.jobs[0].busy, 1ms);
  // A reader whose now is before the job's start (it read the clock, then
  // the writer switched) reads as of the switch: the sum still holds.
  const auto early = rec.jobs(t0 + 500us);
  EXPECT_EQ(early.jobs[3].busy, 0ns);
  EXPECT_EQ(early.jobs[0].busy, 1ms);
  EXPECT_EQ(early.busy, 1ms);
}

TEST(JobRecorderTest, JobTimeAccruesOnlyInsideBusySlices) {
  ActivityRecorder rec;
  rec.switch_job(1, t0, true);  // before any slice: no time
  rec.mark_busy(t0 + 5ms);
  rec.switch_job(0, t0 + 7ms, false);
  rec.mark_idle(t0 + 8ms);
  const auto s = rec.jobs(t0 + 9ms);
  EXPECT_EQ(s.jobs[1].busy, 2ms);
  EXPECT_EQ(s.jobs[0].busy, 1ms);
}

TEST(JobRecorderTest, GoingIdleEndsAJobLeftOpen) {
  ActivityRecorder rec;
  rec.mark_busy(t0);
  rec.switch_job(1, t0, true);  // never switched back (a scope held across a wait)
  rec.mark_idle(t0 + 2ms);
  rec.mark_busy(t0 + 10ms);
  rec.mark_idle(t0 + 13ms);
  const auto s = rec.jobs(t0 + 20ms);
  EXPECT_EQ(s.jobs[1].busy, 2ms);
  EXPECT_EQ(s.jobs[0].busy, 3ms);
}

TEST(JobRecorderTest, BusyIsTheSumOfTheJobsAtEveryInstant) {
  ActivityRecorder rec;
  rec.mark_busy(t0);
  rec.switch_job(1, t0 + 1ms, true);
  rec.switch_job(2, t0 + 2ms, true);
  rec.mark_idle(t0 + 4ms);
  rec.mark_busy(t0 + 5ms);
  rec.switch_job(1, t0 + 6ms, true);
  for (auto at : {t0, t0 + 1500us, t0 + 3ms, t0 + 4500us, t0 + 7ms, t0 + 1s}) {
    const auto s = rec.jobs(at);
    std::chrono::nanoseconds sum{0};
    for (const auto& j : s.jobs) sum += j.busy;
    EXPECT_EQ(sum, s.busy) << (at - t0).count();
    if (at >= t0 + 6ms) {
      EXPECT_EQ(s.busy, rec.busy_time(at));
    }
  }
}

// ---- on a loop --------------------------------------------------------------

// Busy time that a handler makes for itself: runs until the clock has moved
// on by `d` (not a wait for something else to happen).
void stay_busy(std::chrono::nanoseconds d) {
  const auto until = Clock::now() + d;
  while (Clock::now() < until) {
  }
}

template <class F>
void run_on(EventLoop& loop, F f) {
  std::promise<void> done;
  asio::post(loop.get_executor(), [&] {
    f();
    done.set_value();
  });
  done.get_future().wait();
}

TEST_F(JobTypeTest, AScopeOnALoopCountsItsTimeAndNesting) {
  const JobType outer = register_job_type("outer").value();
  const JobType inner = register_job_type("inner").value();
  EventLoop loop(0);
  loop.start();
  run_on(loop, [&] {
    JobScope a(outer);
    stay_busy(2ms);
    {
      JobScope b(inner);
      stay_busy(3ms);
    }
    stay_busy(1ms);
  });
  ASSERT_TRUE(testing::eventually([&] { return loop.activity().busy_now == false; }));
  const auto s = loop.jobs();
  EXPECT_GE(s.jobs[outer.id()].busy, 3ms);
  EXPECT_GE(s.jobs[inner.id()].busy, 3ms);
  EXPECT_EQ(s.jobs[outer.id()].count, 1u);
  EXPECT_EQ(s.jobs[inner.id()].count, 1u);
  std::chrono::nanoseconds sum{0};
  for (const auto& j : s.jobs) sum += j.busy;
  EXPECT_EQ(sum, s.busy);
  loop.stop();
}

TEST_F(JobTypeTest, BindJobRunsTheHandlerAsTheJobAndKeepsItsExecutor) {
  const JobType flush = register_job_type("flush").value();
  EventLoop loop(0), other(1);
  loop.start();
  other.start();
  // The executor associated with the wrapped handler is the binder's.
  auto bound = bind_job(flush, asio::bind_executor(other.get_executor(), [] {}));
  EXPECT_TRUE(asio::get_associated_executor(bound) == other.get_executor());

  std::promise<void> done;
  asio::steady_timer timer(loop.get_executor());
  timer.expires_after(0ms);
  timer.async_wait(bind_job(flush, [&](std::error_code) {
    stay_busy(2ms);
    done.set_value();
  }));
  done.get_future().wait();
  ASSERT_TRUE(testing::eventually([&] { return loop.activity().busy_now == false; }));
  const auto s = loop.jobs();
  EXPECT_GE(s.jobs[flush.id()].busy, 2ms);
  EXPECT_EQ(s.jobs[flush.id()].count, 1u);
  loop.stop();
  other.stop();
}

// A coroutine tagged at a co_await runs as the job from the operation's
// completion to its next co_await.
TEST_F(JobTypeTest, ATokenWrappedByBindJobTagsTheCoroutinesResumption) {
  const JobType resume = register_job_type("resume").value();
  EventLoop loop(0);
  loop.start();
  std::promise<void> done;
  asio::co_spawn(
      loop.get_executor(),
      [&]() -> awaitable<void> {
        steady_timer timer(co_await asio::this_coro::executor);
        timer.expires_after(0ms);
        std::error_code ec;
        co_await timer.async_wait(bind_job(resume, asio::redirect_error(use_awaitable, ec)));
        stay_busy(2ms);  // after the completion: the job's
        timer.expires_after(0ms);
        co_await timer.async_wait(use_awaitable);
        done.set_value();  // after an untagged completion: "other"
      },
      asio::detached);
  done.get_future().wait();
  ASSERT_TRUE(testing::eventually([&] { return loop.activity().busy_now == false; }));
  const auto s = loop.jobs();
  EXPECT_GE(s.jobs[resume.id()].busy, 2ms);
  EXPECT_EQ(s.jobs[resume.id()].count, 1u);
  loop.stop();
}

TEST_F(JobTypeTest, AScopeOffALoopDoesNothing) {
  const JobType job = register_job_type("job").value();
  EventLoop loop(0);
  loop.start();
  run_on(loop, [] {});  // the loop has run a handler of its own
  {
    JobScope scope(job);  // the test's own thread: no loop's recorder
  }
  EXPECT_EQ(loop.jobs().jobs[job.id()].count, 0u);
  loop.stop();
}

}  // namespace
}  // namespace loopscale
