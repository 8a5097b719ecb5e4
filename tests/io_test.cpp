// The I/O objects typed on LoopExecutor (io.hpp) take Asio's typed-executor
// path, not any_io_executor's: their completions must still be counted busy,
// their pending operations must still hold a suspension off, and starting one
// must still wake a suspended loop.

#include "loopscale/io.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <optional>
#include <string>
#include <type_traits>

#include <asio/read.hpp>
#include <asio/write.hpp>

#include "loopscale/event_loop.hpp"
#include "support/wait.hpp"

namespace loopscale {
namespace {

using namespace std::chrono_literals;
using testing::eventually;

static_assert(std::is_same_v<steady_timer::executor_type, LoopExecutor>);
static_assert(std::is_same_v<tcp_socket::executor_type, LoopExecutor>);

// Runs `f` on `loop`'s thread and waits for it.
template <class F>
void on_loop(EventLoop& loop, F f) {
  std::promise<void> done;
  asio::post(loop.get_executor(), [&] {
    f();
    done.set_value();
  });
  done.get_future().wait();
}

TEST(IoTest, TimerCompletionIsCountedBusy) {
  EventLoop loop;
  loop.start();
  ASSERT_TRUE(eventually([&] { return !loop.activity().busy_now; }));
  const std::uint64_t handlers_before = loop.activity().handlers;
  steady_timer timer(loop.get_executor(), 5ms);
  std::atomic<bool> fired{false};
  std::atomic<bool> busy{false};
  timer.async_wait([&](std::error_code ec) {
    busy = loop.activity().busy_now;
    fired = !ec;
  });
  ASSERT_TRUE(eventually([&] { return fired.load(); }));
  EXPECT_TRUE(busy) << "the completion ran outside a busy slice";
  EXPECT_GT(loop.activity().handlers, handlers_before);
}

TEST(IoTest, ArmingATimerOnASuspendedLoopWakesIt) {
  EventLoop loop;
  loop.start();
  steady_timer timer(loop.get_executor());
  ASSERT_TRUE(loop.try_suspend());
  ASSERT_TRUE(eventually([&] { return loop.state() == LoopState::kSuspended; }));
  std::atomic<bool> fired{false};
  timer.expires_after(1ms);
  timer.async_wait([&](std::error_code ec) { fired = !ec; });
  EXPECT_FALSE(loop.is_suspended());
  EXPECT_TRUE(eventually([&] { return fired.load(); }));
}

TEST(IoTest, APendingTimerHoldsASuspensionOffUntilItFires) {
  EventLoop loop;
  loop.start();
  steady_timer timer(loop.get_executor());
  std::atomic<bool> fired{false};
  std::atomic<LoopState> state_when_fired{LoopState::kActive};
  // Armed on the loop's thread, where a typed operation's tracked executor
  // holds no count of its own: the pending wait alone must keep the loop.
  on_loop(loop, [&] {
    timer.expires_after(50ms);
    timer.async_wait([&](std::error_code ec) {
      state_when_fired = loop.state();
      fired = !ec;
    });
  });
  ASSERT_TRUE(loop.try_suspend());
  ASSERT_TRUE(eventually([&] { return fired.load(); }));
  EXPECT_EQ(state_when_fired.load(), LoopState::kSuspending);
  EXPECT_TRUE(eventually([&] { return loop.state() == LoopState::kSuspended; }));
}

TEST(IoTest, AcceptOntoAnotherLoopYieldsASocketOnThatLoop) {
  EventLoop acceptor_loop(0);
  EventLoop connection_loop(1);
  acceptor_loop.start();
  connection_loop.start();
  tcp_acceptor acceptor(acceptor_loop.get_executor(),
                        {asio::ip::make_address("127.0.0.1"), 0});
  std::optional<tcp_socket> server;
  std::promise<void> accepted;
  acceptor.async_accept(connection_loop.get_executor(),
                        [&](std::error_code ec, tcp_socket socket) {
                          EXPECT_FALSE(ec) << ec.message();
                          server.emplace(std::move(socket));
                          accepted.set_value();
                        });
  tcp_socket client(acceptor_loop.get_executor());
  client.connect(acceptor.local_endpoint());
  ASSERT_EQ(accepted.get_future().wait_for(testing::kDeadline),
            std::future_status::ready);
  ASSERT_TRUE(server.has_value());
  EXPECT_EQ(server->get_executor(), connection_loop.get_executor());

  ASSERT_TRUE(
      eventually([&] { return !connection_loop.activity().busy_now; }));
  const std::uint64_t handlers_before = connection_loop.activity().handlers;
  char in[4];
  std::atomic<bool> read_done{false};
  std::atomic<bool> read_on_loop{false};
  asio::async_read(*server, asio::buffer(in),
                   [&](std::error_code ec, std::size_t n) {
                     EXPECT_EQ(n, 4u);
                     read_on_loop = connection_loop.get_executor()
                                        .running_in_this_thread();
                     read_done = !ec;
                   });
  asio::write(client, asio::buffer("ping", 4));
  ASSERT_TRUE(eventually([&] { return read_done.load(); }));
  EXPECT_TRUE(read_on_loop);
  EXPECT_EQ(std::string(in, 4), "ping");
  EXPECT_GT(connection_loop.activity().handlers, handlers_before);

  on_loop(connection_loop, [&] { server->close(); });
  on_loop(acceptor_loop, [&] {
    client.close();
    acceptor.close();
  });
}

TEST(IoTest, MoveAcceptYieldsASocketOnTheAcceptorsLoop) {
  EventLoop loop;
  loop.start();
  tcp_acceptor acceptor(loop.get_executor(),
                        {asio::ip::make_address("127.0.0.1"), 0});
  std::optional<tcp_socket> server;
  std::promise<void> accepted;
  acceptor.async_accept([&](std::error_code ec, tcp_socket socket) {
    EXPECT_FALSE(ec) << ec.message();
    server.emplace(std::move(socket));
    accepted.set_value();
  });
  tcp_socket client(loop.get_executor());
  client.connect(acceptor.local_endpoint());
  ASSERT_EQ(accepted.get_future().wait_for(testing::kDeadline),
            std::future_status::ready);
  EXPECT_EQ(server->get_executor(), loop.get_executor());
  on_loop(loop, [&] {
    server->close();
    client.close();
    acceptor.close();
  });
}

}  // namespace
}  // namespace loopscale
