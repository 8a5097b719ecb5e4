// Every kind of handler that runs through a LoopExecutor opens a busy slice
// and is counted: each test lets the loop go idle, triggers one kind of
// handler, and records inside it whether the loop reads busy.

#include "loopscale/loop_executor.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/defer.hpp>
#include <asio/detached.hpp>
#include <asio/dispatch.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "loopscale/event_loop.hpp"
#include "support/wait.hpp"

namespace loopscale {
namespace {

using namespace std::chrono_literals;
using testing::eventually;

static_assert(asio::execution::is_executor<LoopExecutor>::value);
static_assert(asio::execution::is_executor<TrackedLoopExecutor>::value);
static_assert(asio::execution::is_executor<
              asio::strand<LoopExecutor>>::value);
static_assert(sizeof(LoopExecutor) == sizeof(void*),
              "Asio copies executors on every submission");
// On purpose (loop_executor.hpp): a handler holding a trivially copyable
// executor is itself trivially copyable, and GCC then block-copies it with
// 16-byte moves that stall on the field-by-field stores that made it.
static_assert(!std::is_trivially_copyable_v<LoopExecutor>);

// What a handler saw when it ran.
struct Seen {
  std::atomic<bool> ran{false};
  std::atomic<bool> busy{false};
  std::atomic<bool> on_loop{false};
};

class LoopExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    loop_.start();
    ASSERT_TRUE(eventually([&] { return !loop_.activity().busy_now; }));
    handlers_before_ = loop_.activity().handlers;
  }

  // Returns a handler body that records what it saw into `seen`.
  auto record(Seen& seen) {
    return [this, &seen] {
      seen.busy = loop_.activity().busy_now;
      seen.on_loop = loop_.get_executor().running_in_this_thread();
      seen.ran = true;
    };
  }

  void expect_counted_busy(Seen& seen) {
    ASSERT_TRUE(eventually([&] { return seen.ran.load(); }));
    EXPECT_TRUE(seen.busy) << "the handler ran outside a busy slice";
    EXPECT_TRUE(seen.on_loop) << "the handler ran off the loop's thread";
    EXPECT_GT(loop_.activity().handlers, handlers_before_);
  }

  EventLoop loop_{0};
  std::uint64_t handlers_before_ = 0;
};

TEST_F(LoopExecutorTest, PostedHandlerIsCountedBusy) {
  Seen seen;
  asio::post(loop_.get_executor(), record(seen));
  expect_counted_busy(seen);
}

TEST_F(LoopExecutorTest, DispatchedHandlerIsCountedBusy) {
  Seen seen;
  asio::dispatch(loop_.get_executor(), record(seen));
  expect_counted_busy(seen);
}

TEST_F(LoopExecutorTest, DeferredHandlerIsCountedBusy) {
  Seen seen;
  asio::defer(loop_.get_executor(), record(seen));
  expect_counted_busy(seen);
}

TEST_F(LoopExecutorTest, DispatchOnTheLoopThreadRunsInline) {
  Seen seen;
  std::atomic<bool> inline_ran{false};
  asio::post(loop_.get_executor(), [&] {
    bool done = false;
    asio::dispatch(loop_.get_executor(), [&] { done = true; });
    inline_ran = done;
    seen.ran = true;
  });
  ASSERT_TRUE(eventually([&] { return seen.ran.load(); }));
  EXPECT_TRUE(inline_ran);
}

TEST_F(LoopExecutorTest, StrandHandlerIsCountedBusy) {
  Seen seen;
  auto strand = asio::make_strand(loop_.get_executor());
  asio::post(strand, record(seen));
  expect_counted_busy(seen);
}

TEST_F(LoopExecutorTest, TimerCompletionIsCountedBusy) {
  Seen seen;
  asio::steady_timer timer(loop_.get_executor(), 5ms);
  timer.async_wait([&, body = record(seen)](std::error_code) { body(); });
  expect_counted_busy(seen);
}

TEST_F(LoopExecutorTest, SocketReadAndWriteCompletionsAreCountedBusy) {
  using asio::ip::tcp;
  tcp::acceptor acceptor(loop_.get_executor(),
                         tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket server(loop_.get_executor());
  tcp::socket client(loop_.get_executor());
  std::promise<void> accepted;
  acceptor.async_accept(server, [&](std::error_code ec) {
    ASSERT_FALSE(ec) << ec.message();
    accepted.set_value();
  });
  client.connect(acceptor.local_endpoint());
  ASSERT_EQ(accepted.get_future().wait_for(testing::kDeadline),
            std::future_status::ready);
  ASSERT_TRUE(eventually([&] { return !loop_.activity().busy_now; }));

  Seen read_seen;
  Seen write_seen;
  char in[5];
  asio::async_read(server, asio::buffer(in),
                   [&, body = record(read_seen)](std::error_code ec,
                                                 std::size_t n) {
                     EXPECT_FALSE(ec);
                     EXPECT_EQ(n, 5u);
                     body();
                   });
  asio::async_write(client, asio::buffer("hello", 5),
                    [&, body = record(write_seen)](std::error_code ec,
                                                   std::size_t) {
                      EXPECT_FALSE(ec);
                      body();
                    });
  expect_counted_busy(write_seen);
  expect_counted_busy(read_seen);
  EXPECT_EQ(std::string(in, 5), "hello");
  std::promise<void> closed;
  asio::post(loop_.get_executor(), [&] {
    server.close();
    client.close();
    acceptor.close();
    closed.set_value();
  });
  closed.get_future().wait();
}

TEST_F(LoopExecutorTest, CoroutineResumptionIsCountedBusy) {
  Seen seen;
  auto body = record(seen);
  asio::co_spawn(
      loop_.get_executor(),
      [&]() -> asio::awaitable<void> {
        asio::steady_timer timer(co_await asio::this_coro::executor, 5ms);
        co_await timer.async_wait(asio::use_awaitable);
        body();  // runs after a resumption from an idle loop
      },
      asio::detached);
  expect_counted_busy(seen);
}

TEST_F(LoopExecutorTest, ExecutorsOfTheSameLoopCompareEqual) {
  EventLoop other(1);
  const LoopExecutor a = loop_.get_executor();
  const LoopExecutor b = asio::require(a, asio::execution::blocking.never);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, other.get_executor());
  EXPECT_EQ(&a.loop(), &loop_);
}

TEST_F(LoopExecutorTest, PropertiesAreQueryableAndRequirable) {
  namespace ex = asio::execution;
  const LoopExecutor a = loop_.get_executor();
  EXPECT_EQ(asio::query(a, ex::blocking), ex::blocking.possibly);
  EXPECT_EQ(asio::query(asio::require(a, ex::blocking.never), ex::blocking),
            ex::blocking.never);
  EXPECT_EQ(asio::query(asio::prefer(a, ex::relationship.continuation),
                        ex::relationship),
            ex::relationship.continuation);
  EXPECT_EQ(asio::query(a, ex::outstanding_work), ex::outstanding_work.untracked);
  EXPECT_EQ(&asio::query(a, ex::context), &loop_.context());
}

TEST_F(LoopExecutorTest, TrackedExecutorOnASuspendedLoopResumesIt) {
  namespace ex = asio::execution;
  ASSERT_TRUE(loop_.try_suspend());
  ASSERT_TRUE(eventually([&] { return loop_.state() == LoopState::kSuspended; }));
  const TrackedLoopExecutor work =
      asio::require(loop_.get_executor(), ex::outstanding_work.tracked);
  EXPECT_EQ(loop_.state(), LoopState::kActive);
  EXPECT_EQ(asio::query(work, ex::outstanding_work), ex::outstanding_work.tracked);
}

TEST_F(LoopExecutorTest, SuspensionFinishesOnlyWhenTrackedWorkIsReleased) {
  namespace ex = asio::execution;
  auto work = std::make_unique<TrackedLoopExecutor>(
      asio::require(loop_.get_executor(), ex::outstanding_work.tracked));
  auto copy = std::make_unique<TrackedLoopExecutor>(*work);  // copies hold work too
  ASSERT_TRUE(loop_.try_suspend());
  work.reset();
  EXPECT_EQ(loop_.state(), LoopState::kSuspending);
  copy.reset();
  EXPECT_TRUE(eventually([&] { return loop_.state() == LoopState::kSuspended; }));
}

TEST_F(LoopExecutorTest, ExecutorsDerivedFromATrackedOneHoldWorkToo) {
  namespace ex = asio::execution;
  auto work = std::make_unique<TrackedLoopExecutor>(
      asio::require(loop_.get_executor(), ex::outstanding_work.tracked));
  auto derived = std::make_unique<TrackedLoopExecutor>(
      asio::require(*work, ex::blocking.never, ex::relationship.continuation));
  ASSERT_TRUE(loop_.try_suspend());
  work.reset();
  EXPECT_EQ(loop_.state(), LoopState::kSuspending);
  derived.reset();
  EXPECT_TRUE(eventually([&] { return loop_.state() == LoopState::kSuspended; }));
}

// A tracked executor made inside a handler holds no count (see
// loop_executor.hpp), nor do its copies made elsewhere: the loop suspends with
// them alive, and work submitted through one still runs.
TEST_F(LoopExecutorTest, CopiesOfATrackedExecutorMadeOnTheLoopHoldNoWork) {
  namespace ex = asio::execution;
  std::promise<TrackedLoopExecutor> made;
  asio::post(loop_.get_executor(), [&] {
    made.set_value(asio::require(loop_.get_executor(), ex::outstanding_work.tracked));
  });
  const TrackedLoopExecutor on_loop = made.get_future().get();
  const TrackedLoopExecutor copy = on_loop;  // made on this thread
  ASSERT_TRUE(loop_.try_suspend());
  ASSERT_TRUE(eventually([&] { return loop_.state() == LoopState::kSuspended; }));
  std::atomic<bool> ran{false};
  asio::post(asio::require(copy, ex::blocking.never), [&] { ran = true; });
  EXPECT_TRUE(eventually([&] { return ran.load(); }));
  EXPECT_EQ(loop_.state(), LoopState::kActive);
}

}  // namespace
}  // namespace loopscale
