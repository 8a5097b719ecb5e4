// Coroutines typed on LoopExecutor (awaitable.hpp): they run on the loop's
// thread with the loop's executor, their resumptions count as busy, they keep
// a suspension off while they await, and spawning one wakes a suspended loop.

#include "loopscale/awaitable.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <exception>
#include <future>
#include <stdexcept>
#include <string>
#include <type_traits>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/this_coro.hpp>
#include <asio/write.hpp>

#include "loopscale/event_loop.hpp"
#include "loopscale/io.hpp"
#include "support/wait.hpp"

namespace loopscale {
namespace {

using namespace std::chrono_literals;
using testing::eventually;

static_assert(std::is_same_v<awaitable<int>, asio::awaitable<int, LoopExecutor>>);

// Spawns the coroutine `make()` returns on `loop` and returns a future of its
// result. co_spawn keeps `make` (a lambda, captures included) alive until the
// coroutine is done; a lambda called on the spot would leave the coroutine
// with dangling captures.
template <class Make, class T = typename std::invoke_result_t<Make>::value_type>
std::future<T> spawn(EventLoop& loop, Make make) {
  std::promise<T> promise;
  std::future<T> future = promise.get_future();
  asio::co_spawn(loop.get_executor(), std::move(make),
                 [p = std::move(promise)](std::exception_ptr e, auto... v) mutable {
                   if (e) {
                     p.set_exception(e);
                   } else {
                     p.set_value(v...);
                   }
                 });
  return future;
}

template <class T>
T wait_result(std::future<T>& future) {
  EXPECT_EQ(future.wait_for(testing::kDeadline), std::future_status::ready);
  return future.get();
}

TEST(AwaitableTest, ThisCoroExecutorIsTheLoopsExecutor) {
  EventLoop loop;
  loop.start();
  auto f = spawn(loop, []() -> awaitable<bool> {
    const LoopExecutor ex = co_await asio::this_coro::executor;
    co_return ex.running_in_this_thread();
  });
  EXPECT_TRUE(wait_result(f));
  auto g = spawn(loop, [&loop]() -> awaitable<bool> {
    co_return (co_await asio::this_coro::executor) == loop.get_executor();
  });
  EXPECT_TRUE(wait_result(g));
}

TEST(AwaitableTest, AResumptionAfterAWaitIsCountedBusy) {
  EventLoop loop;
  loop.start();
  ASSERT_TRUE(eventually([&] { return !loop.activity().busy_now; }));
  const std::uint64_t handlers_before = loop.activity().handlers;
  auto f = spawn(loop, [&loop]() -> awaitable<bool> {
    steady_timer timer(co_await asio::this_coro::executor, 5ms);
    co_await timer.async_wait(use_awaitable);
    // Resumed from an idle loop by the timer's completion.
    const bool after_timer = loop.activity().busy_now;
    co_await asio::post(co_await asio::this_coro::executor, use_awaitable);
    co_return after_timer && loop.activity().busy_now;
  });
  EXPECT_TRUE(wait_result(f)) << "a resumption ran outside a busy slice";
  // The spawn, the timer's completion and the post: three handlers at least.
  EXPECT_GE(loop.activity().handlers, handlers_before + 3);
}

TEST(AwaitableTest, SpawningOnASuspendedLoopResumesIt) {
  EventLoop loop;
  loop.start();
  ASSERT_TRUE(loop.try_suspend());
  ASSERT_TRUE(eventually([&] { return loop.state() == LoopState::kSuspended; }));
  auto f = spawn(loop, []() -> awaitable<int> { co_return 7; });
  EXPECT_EQ(wait_result(f), 7);
  EXPECT_EQ(loop.state(), LoopState::kActive);
}

TEST(AwaitableTest, AnAwaitInProgressHoldsASuspensionOff) {
  EventLoop loop;
  loop.start();
  std::atomic<bool> waiting{false};
  auto f = spawn(loop, [&]() -> awaitable<LoopState> {
    steady_timer timer(co_await asio::this_coro::executor, 50ms);
    waiting = true;
    co_await timer.async_wait(use_awaitable);
    co_return loop.state();
  });
  ASSERT_TRUE(eventually([&] { return waiting.load(); }));
  ASSERT_TRUE(loop.try_suspend());
  EXPECT_EQ(wait_result(f), LoopState::kSuspending);
  EXPECT_TRUE(eventually([&] { return loop.state() == LoopState::kSuspended; }));
}

TEST(AwaitableTest, AnExceptionReachesTheSpawnersHandler) {
  EventLoop loop;
  loop.start();
  auto f = spawn(loop, []() -> awaitable<int> {
    co_await asio::post(co_await asio::this_coro::executor, use_awaitable);
    throw std::runtime_error("from the coroutine");
  });
  ASSERT_EQ(f.wait_for(testing::kDeadline), std::future_status::ready);
  EXPECT_THROW(f.get(), std::runtime_error);
  // The loop is unharmed.
  auto g = spawn(loop, []() -> awaitable<int> { co_return 1; });
  EXPECT_EQ(wait_result(g), 1);
}

TEST(AwaitableTest, SocketsAwaitedAcrossTwoLoops) {
  EventLoop acceptor_loop(0);
  EventLoop connection_loop(1);
  acceptor_loop.start();
  connection_loop.start();
  tcp_acceptor acceptor(acceptor_loop.get_executor(),
                        {asio::ip::make_address("127.0.0.1"), 0});
  const auto endpoint = acceptor.local_endpoint();
  // Accepts one connection onto the other loop and echoes four bytes there.
  auto server = spawn(acceptor_loop, [&]() -> awaitable<std::string> {
    tcp_socket socket = co_await acceptor.async_accept(
        connection_loop.get_executor(), use_awaitable);
    acceptor.close();
    co_return co_await asio::co_spawn(
        connection_loop.get_executor(),
        [s = std::move(socket), &connection_loop]() mutable -> awaitable<std::string> {
          char in[4];
          co_await asio::async_read(s, asio::buffer(in), use_awaitable);
          if (!connection_loop.get_executor().running_in_this_thread()) {
            co_return "not on the connection's loop";
          }
          co_await asio::async_write(s, asio::buffer(in), use_awaitable);
          co_return std::string(in, 4);
        },
        use_awaitable);
  });
  auto client = spawn(connection_loop, [&]() -> awaitable<std::string> {
    tcp_socket socket(co_await asio::this_coro::executor);
    co_await socket.async_connect(endpoint, use_awaitable);
    co_await asio::async_write(socket, asio::buffer("ping", 4), use_awaitable);
    char in[4];
    std::error_code ec;
    co_await asio::async_read(socket, asio::buffer(in),
                              asio::redirect_error(use_awaitable, ec));
    co_return ec ? ec.message() : std::string(in, 4);
  });
  EXPECT_EQ(wait_result(server), "ping");
  EXPECT_EQ(wait_result(client), "ping");
}

}  // namespace
}  // namespace loopscale
