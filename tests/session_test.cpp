// Sessions that move between loops: echo sessions on a real pool, driven by
// hand (the monitor's own thread never ticks: its window is an hour), with
// blocking clients in the test thread. Every interleaving a test needs is
// made (a latch holds a loop), not hoped for.

#include "loopscale/session.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/write.hpp>

#include "gtest/gtest.h"
#include "loopscale/detail/hand_over.hpp"
#include "loopscale/detail/test_hooks.hpp"
#include "support/echo_session.hpp"
#include "support/hand_ticked_pool.hpp"
#include "support/open_fds.hpp"
#include "support/wait.hpp"

namespace loopscale {
namespace {

using namespace std::chrono_literals;
using asio::ip::tcp;
using ::loopscale::testing::eventually;
using ::loopscale::testing::open_fds;

using ::loopscale::testing::echo;
using ::loopscale::testing::EchoState;

class SessionTest : public ::testing::Test {
 protected:
  // A pool of `loops` loops, all active, ticked by hand.
  void start_pool(std::size_t loops) {
    auto pool = testing::start_hand_ticked_pool("session-test", loops);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
  }

  void TearDown() override {
    if (pool_ != nullptr) pool_->stop();
  }

  // Connects a client and serves it as an echo session on loop `loop`.
  tcp::socket connect_to(std::size_t loop, Rebalance mode = Rebalance::kMove,
                         EchoState state = {}) {
    tcp::socket client(client_ctx_);
    client.connect(acceptor_.local_endpoint());
    tcp_socket server(pool_->loop(loop).get_executor());
    acceptor_.accept(server);
    spawn_session(*pool_, std::move(server), std::move(state), echo, mode);
    return client;
  }

  // Sends `message` and expects it back, byte for byte.
  static void expect_echo(tcp::socket& client, const std::string& message) {
    asio::write(client, asio::buffer(message));
    std::string back(message.size(), '\0');
    std::error_code ec;
    asio::read(client, asio::buffer(back), ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(back, message);
  }

  // Takes loop `i` out of rotation and asks all its connections to leave, as
  // the monitor does with a loop it drains.
  void drain(std::size_t i) {
    std::vector<std::size_t> others;
    for (std::size_t k = 0; k < pool_->size(); ++k) {
      if (k != i) others.push_back(k);
    }
    pool_->chooser().publish(others);
    ASSERT_TRUE(pool_->loop(i).try_suspend());
    pool_->loop(i).request_moves(pool_->loop(i).registrations());
  }

  std::size_t registrations(std::size_t i) { return pool_->loop(i).registrations(); }

  std::unique_ptr<LoopPool> pool_;
  asio::io_context client_ctx_;
  tcp::acceptor acceptor_{client_ctx_, tcp::endpoint(asio::ip::address_v4::loopback(), 0)};
};

TEST_F(SessionTest, AnIdleConnectionMovesOffADrainingLoopAndKeepsItsBytes) {
  start_pool(2);
  tcp::socket client = connect_to(0);
  expect_echo(client, "before the move");
  ASSERT_TRUE(eventually([&] { return registrations(0) == 1; }));
  drain(0);
  // The session waited for input: it is interrupted, moves, and loop 0,
  // left without connections or pending reads, suspends.
  // The counters are separate relaxed atomics written by loop 0's thread: a
  // reader may see them change in any order, so it waits for all of them.
  ASSERT_TRUE(eventually([&] {
    return registrations(1) == 1 && registrations(0) == 0 &&
           pool_->loop(0).moves_out() == 1 && pool_->loop(1).moves_in() == 1;
  })) << registrations(0) << " " << registrations(1) << " "
      << pool_->loop(0).moves_out() << " " << pool_->loop(1).moves_in();
  // Registered once on each loop: the pool took one connection.
  EXPECT_EQ(pool_->loop(0).registrations_total(), 1u);
  EXPECT_EQ(pool_->loop(1).registrations_total(), 1u);
  EXPECT_TRUE(eventually(
      [&] { return pool_->loop(0).state() == LoopState::kSuspended; }));
  expect_echo(client, "after the move");
}

TEST_F(SessionTest, BytesInFlightDuringAMoveArriveOnceAndInOrder) {
  start_pool(2);
  tcp::socket client = connect_to(0);
  expect_echo(client, "warm");
  // Loop 1 is held, so that the session is between loops (released by loop
  // 0, posted to loop 1, not yet running) while the client writes.
  std::latch hold(1);
  asio::post(pool_->loop(1).get_executor(), [&] { hold.wait(); });
  drain(0);
  ASSERT_TRUE(eventually([&] { return pool_->loop(0).moves_out() == 1; }));
  const std::string message(100'000, 'x');
  std::string sent;
  for (int i = 0; i < 1000; ++i) sent += std::to_string(i) + ",";
  asio::write(client, asio::buffer(sent));  // fits the socket buffers
  hold.count_down();
  std::string back(sent.size(), '\0');
  asio::read(client, asio::buffer(back));
  EXPECT_EQ(back, sent);
  expect_echo(client, message);
}

TEST_F(SessionTest, AfterAScaleUpTheMonitorSpreadsConnectionsEvenly) {
  start_pool(4);
  // Every client connected while one loop took connections.
  std::vector<tcp::socket> clients;
  for (int i = 0; i < 8; ++i) clients.push_back(connect_to(0));
  for (auto& c : clients) expect_echo(c, "hello");
  ASSERT_TRUE(eventually([&] { return registrations(0) == 8; }));
  // The four loops are active: the monitor's next tick asks loop 0 to shed
  // what it holds above its share (8 / 4 = 2).
  Clock::time_point now = Clock::now();
  pool_->monitor().tick(now += 1h);
  EXPECT_TRUE(eventually([&] {
    return registrations(0) == 2 && registrations(1) == 2 &&
           registrations(2) == 2 && registrations(3) == 2 &&
           pool_->loop(0).moves_out() == 6;
  })) << registrations(0) << " " << registrations(1) << " " << registrations(2)
      << " " << registrations(3) << ", " << pool_->loop(0).moves_out()
      << " moves out";
  EXPECT_EQ(pool_->stats().moves_requested, 6u);
  for (auto& c : clients) expect_echo(c, "still here");
  // In balance, nothing moves.
  pool_->monitor().tick(now += 1h);
  for (auto& c : clients) expect_echo(c, "and here");
  std::uint64_t moved = 0;
  for (std::size_t i = 0; i < 4; ++i) moved += pool_->loop(i).moves_out();
  EXPECT_EQ(moved, 6u);
  EXPECT_EQ(pool_->stats().moves_requested, 6u);
}

// The step: a request whose read completed on a loop while that loop was
// busy waits in its queue. If the pool then asks the loop to shed, the
// session moves with the bytes it read, and the request is served where it
// goes, not after the loop's backlog.
TEST_F(SessionTest, ARequestReadOnALoopAskedToShedIsServedWhereTheSessionGoes) {
  start_pool(2);
  tcp::socket client = connect_to(0);
  expect_echo(client, "warm");
  // Two more connections make loop 0 the uneven one a move is worth from.
  tcp::socket second = connect_to(0), third = connect_to(0);
  ASSERT_TRUE(eventually([&] { return registrations(0) == 3; }));
  // A runs on loop 0 while the request arrives; B is posted behind Asio's
  // reactor run, so the read completes (the bytes are taken from the
  // socket) and its completion waits in loop 0's queue behind B.
  std::latch a_running(1), a_release(1), b_running(1), b_release(1);
  asio::post(pool_->loop(0).get_executor(), [&] {
    a_running.count_down();
    a_release.wait();
  });
  a_running.wait();
  const std::string request = "the request";
  asio::write(client, asio::buffer(request));
  asio::post(pool_->loop(0).get_executor(), [&] {
    b_running.count_down();
    b_release.wait();
  });
  a_release.count_down();
  b_running.wait();
  // Loop 1 is held: a request served on it cannot be answered yet.
  std::latch one_running(1), one_release(1);
  asio::post(pool_->loop(1).get_executor(), [&] {
    one_running.count_down();
    one_release.wait();
  });
  one_running.wait();
  pool_->loop(0).request_moves(1);
  b_release.count_down();
  const bool moved = eventually([&] { return pool_->loop(0).moves_out() == 1; });
  const std::size_t answered_early = client.available();
  one_release.count_down();
  ASSERT_TRUE(moved);
  EXPECT_EQ(answered_early, 0u) << "served on loop 0 before it left";
  std::string back(request.size(), '\0');
  asio::read(client, asio::buffer(back));
  EXPECT_EQ(back, request);
  EXPECT_EQ(pool_->loop(1).moves_in(), 1u);
  expect_echo(client, "nothing twice, nothing lost");
}

TEST_F(SessionTest, AConnectionInsideALongRequestIsNotInterrupted) {
  start_pool(2);
  tcp::socket client = connect_to(0, Rebalance::kMove, EchoState{{}, 300ms});
  // The request makes loop 0 busy for 300 ms; the move is asked meanwhile.
  const std::string request = "a long request";
  asio::write(client, asio::buffer(request));
  ASSERT_TRUE(eventually([&] { return registrations(0) == 1; }));
  drain(0);
  std::string back(request.size(), '\0');
  asio::read(client, asio::buffer(back));
  EXPECT_EQ(back, request);
  // It leaves at its next boundary, after answering.
  EXPECT_TRUE(eventually([&] { return registrations(1) == 1; }));
  expect_echo(client, "after");
}

TEST_F(SessionTest, AClientThatDisconnectsDuringAMoveLeaksNothing) {
  start_pool(2);
  // Each loop's reactor (epoll, its eventfd and timerfd) exists from the
  // loop's construction: nothing done on loop 1 adds a descriptor for it.
  const std::size_t fds_before = open_fds();
  std::latch hold(1);
  {
    tcp::socket client = connect_to(0);
    expect_echo(client, "x");
    asio::post(pool_->loop(1).get_executor(), [&] { hold.wait(); });
    drain(0);
    // Released by loop 0, not yet running on loop 1: the client goes.
    ASSERT_TRUE(eventually([&] { return pool_->loop(0).moves_out() == 1; }));
    client.close();
    hold.count_down();
  }
  EXPECT_TRUE(eventually([&] { return registrations(1) == 0; }));
  EXPECT_TRUE(eventually([&] { return open_fds() == fds_before; }))
      << open_fds() << " descriptors, " << fds_before << " before";
}

TEST_F(SessionTest, AMoveToALoopThatIsStoppingIsRefusedAndTheSessionStays) {
  start_pool(2);
  tcp::socket client = connect_to(0);
  expect_echo(client, "x");
  pool_->loop(1).stop();  // still in the chooser's active set
  drain(0);
  ASSERT_TRUE(eventually([&] { return pool_->loop(0).moves_failed() == 1; }));
  EXPECT_EQ(pool_->loop(0).moves_out(), 0u);
  EXPECT_EQ(registrations(0), 1u);
  expect_echo(client, "still on loop 0");
}

// The target's reactor refuses the descriptor (out of descriptors): the
// connection stays on its loop with its bytes, nothing leaks, and it moves
// once asked again. It used to be lost with its descriptor, in CLOSE-WAIT.
TEST_F(SessionTest, AMoveWhoseHandOverFailsKeepsTheConnectionOnItsLoop) {
  start_pool(2);
  tcp::socket client = connect_to(0);
  expect_echo(client, "x");
  const std::size_t fds_before = open_fds();
  detail::fail_descriptors_for_testing = 1;
  drain(0);
  ASSERT_TRUE(eventually([&] { return pool_->loop(0).moves_failed() == 1; }));
  EXPECT_EQ(detail::fail_descriptors_for_testing.load(), 0);
  EXPECT_EQ(pool_->loop(0).moves_out(), 0u);
  EXPECT_EQ(registrations(0), 1u);
  EXPECT_EQ(open_fds(), fds_before);
  expect_echo(client, "still on loop 0");
  pool_->loop(0).request_moves(1);  // the monitor's next tick
  ASSERT_TRUE(eventually([&] {
    return registrations(1) == 1 && registrations(0) == 0 &&
           pool_->loop(0).moves_out() == 1 && pool_->loop(1).moves_in() == 1;
  }));
  expect_echo(client, "then on loop 1");
  EXPECT_EQ(open_fds(), fds_before);
}

awaitable<void> throw_after_a_read(Session<EchoState>& s) {
  std::error_code ec;
  co_await s.async_read_some(asio::buffer(s.state().buf),
                             asio::redirect_error(use_awaitable, ec));
  throw std::runtime_error("the serve function failed");
}

TEST_F(SessionTest, AnExceptionFromServeIsReportedAndEndsTheConnectionCleanly) {
  start_pool(1);
  const std::size_t fds_before = open_fds();
  tcp::socket client(client_ctx_);
  client.connect(acceptor_.local_endpoint());
  tcp_socket server(pool_->loop(0).get_executor());
  acceptor_.accept(server);
  ::testing::internal::CaptureStderr();
  spawn_session(*pool_, std::move(server), EchoState{}, throw_after_a_read);
  asio::write(client, asio::buffer(std::string("boom")));
  char byte;
  std::error_code ec;
  client.read_some(asio::buffer(&byte, 1), ec);
  EXPECT_EQ(ec, asio::error::eof);
  EXPECT_TRUE(eventually([&] { return registrations(0) == 0; }));
  // The report is posted as the coroutine ends, before the socket closed
  // where the client saw it: a handler posted now runs after it.
  std::latch reported(1);
  asio::post(pool_->loop(0).get_executor(), [&] { reported.count_down(); });
  reported.wait();
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("loop 0: a handler threw: the serve function failed"), std::string::npos)
      << err;
  client.close();
  EXPECT_EQ(open_fds(), fds_before);
}

// Answers each byte read with '+' if the pool admits it, '-' if not, and
// 'c' (then closes) once keep-alive is off.
awaitable<void> admitting(Session<EchoState>& s) {
  while (!s.leaving()) {
    std::error_code ec;
    const std::size_t n = co_await s.async_read_some(asio::buffer(s.state().buf),
                                                     asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    std::string out;
    for (std::size_t i = 0; i < n; ++i) out += s.admit() ? '+' : '-';
    // Asked once per answer: the level may change while it is written.
    const bool closing = !s.keep_alive();
    if (closing) out += 'c';
    co_await asio::async_write(s.socket(), asio::buffer(out),
                               asio::redirect_error(use_awaitable, ec));
    if (ec || closing) co_return;
  }
}

TEST_F(SessionTest, AdmitAndKeepAliveFollowThePoolsOverloadLevel) {
  start_pool(1);
  tcp::socket client(client_ctx_);
  client.connect(acceptor_.local_endpoint());
  tcp_socket server(pool_->loop(0).get_executor());
  acceptor_.accept(server);
  spawn_session(*pool_, std::move(server), EchoState{}, admitting);
  auto ask = [&](std::size_t n) {
    asio::write(client, asio::buffer(std::string(n, 'x')));
    std::string back(n, '\0');
    asio::read(client, asio::buffer(back));
    return back;
  };
  EXPECT_EQ(ask(4), "++++");
  OverloadConfig overload;
  overload.keepalive_off_at = 0.9;
  pool_->admission().inject(0.5, overload);
  EXPECT_EQ(ask(4), "+-+-");
  EXPECT_EQ(pool_->stats().overload_refused, 2u);
  EXPECT_DOUBLE_EQ(pool_->stats().overload_level, 0.5);
  pool_->admission().inject(0.9, overload);
  std::string last(2, '\0');
  asio::write(client, asio::buffer(std::string("x")));
  asio::read(client, asio::buffer(last));
  EXPECT_EQ(last[1], 'c');
  char byte;
  std::error_code ec;
  client.read_some(asio::buffer(&byte, 1), ec);
  EXPECT_EQ(ec, asio::error::eof);  // the session closed
  pool_->admission().clear_injection();
}

TEST_F(SessionTest, CloseModeClosesAnIdleConnectionAskedToLeave) {
  start_pool(2);
  tcp::socket client = connect_to(0, Rebalance::kClose);
  expect_echo(client, "x");
  drain(0);
  // If the session claimed the request at its boundary before it went back
  // to waiting, the next request (the monitor's next tick) closes it.
  ASSERT_TRUE(eventually([&] {
    pool_->loop(0).request_moves(registrations(0));
    return registrations(0) == 0;
  }));
  char byte;
  std::error_code ec;
  client.read_some(asio::buffer(&byte, 1), ec);
  EXPECT_EQ(ec, asio::error::eof);
  EXPECT_EQ(pool_->loop(0).moves_out(), 0u);
}

// A line protocol that says when a line is partly read, and closes after
// its answer once asked to.
struct LineState {
  std::string line;
  std::array<char, 256> buf{};
  std::shared_ptr<std::atomic<int>> reads = std::make_shared<std::atomic<int>>(0);
};

awaitable<void> lines(Session<LineState>& s) {
  LineState& st = s.state();
  while (!s.leaving()) {
    std::error_code ec;
    const std::size_t n = co_await s.async_read_some(asio::buffer(st.buf),
                                                     asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    st.line.append(st.buf.data(), n);
    const std::size_t end = st.line.find('\n');
    s.set_request_in_progress(end == std::string::npos && !st.line.empty());
    ++*st.reads;
    if (end == std::string::npos) continue;
    const std::string answer = st.line.substr(0, end + 1) + (s.close_requested() ? "bye\n" : "");
    st.line.erase(0, end + 1);
    co_await asio::async_write(s.socket(), asio::buffer(answer),
                               asio::redirect_error(use_awaitable, ec));
    if (ec || s.close_requested()) co_return;  // the session closes the socket
  }
}

TEST_F(SessionTest, CloseModeAnswersTheRequestItIsInBeforeItCloses) {
  start_pool(2);
  tcp::socket client(client_ctx_);
  client.connect(acceptor_.local_endpoint());
  tcp_socket server(pool_->loop(0).get_executor());
  acceptor_.accept(server);
  LineState state;
  const auto reads = state.reads;
  spawn_session(*pool_, std::move(server), std::move(state), lines, Rebalance::kClose);
  asio::write(client, asio::buffer(std::string("hel")));
  ASSERT_TRUE(eventually([&] { return reads->load() == 1; }));  // half a line read
  drain(0);  // the session, waiting for the rest, is asked to close
  asio::write(client, asio::buffer(std::string("lo\n")));
  std::string got;
  std::error_code ec;
  asio::read(client, asio::dynamic_buffer(got), ec);  // to the end of the stream
  EXPECT_EQ(ec, asio::error::eof);
  EXPECT_EQ(got, "hello\nbye\n");
  EXPECT_TRUE(eventually([&] { return registrations(0) == 0; }));
}

TEST_F(SessionTest, OffModeKeepsTheConnectionWhereItIs) {
  start_pool(2);
  tcp::socket client = connect_to(0, Rebalance::kOff);
  expect_echo(client, "x");
  drain(0);
  expect_echo(client, "y");
  expect_echo(client, "z");
  EXPECT_EQ(registrations(0), 1u);
  EXPECT_EQ(pool_->loop(0).moves_out(), 0u);
  EXPECT_EQ(pool_->loop(0).state(), LoopState::kDraining);
}

TEST_F(SessionTest, AConnectionAcceptedForALoopThatLeftStartsOnAnActiveOne) {
  start_pool(2);
  // The accept chose loop 1; by the time the connection arrives, loop 1 has
  // left rotation and given its thread back.
  tcp_socket server(pool_->loop(1).get_executor());
  pool_->chooser().publish(std::vector<std::size_t>{0});
  ASSERT_TRUE(pool_->loop(1).try_suspend());
  ASSERT_TRUE(eventually(
      [&] { return pool_->loop(1).state() == LoopState::kSuspended; }));
  tcp::socket client(client_ctx_);
  client.connect(acceptor_.local_endpoint());
  acceptor_.accept(server);
  spawn_session(*pool_, std::move(server), EchoState{}, echo);
  expect_echo(client, "served");
  EXPECT_EQ(registrations(0), 1u);
  EXPECT_EQ(pool_->loop(1).state(), LoopState::kSuspended);
  EXPECT_EQ(pool_->loop(1).resumes(), 0u);
}

TEST_F(SessionTest, AGracefulCloseAnswersWhatIsInFlightThenClosesEverySession) {
  start_pool(2);
  tcp::socket busy = connect_to(0, Rebalance::kMove, EchoState{{}, 300ms});
  tcp::socket idle = connect_to(1, Rebalance::kMove);
  tcp::socket pinned = connect_to(1, Rebalance::kOff);
  expect_echo(idle, "i");
  expect_echo(pinned, "p");
  const std::string request = "in flight";
  asio::write(busy, asio::buffer(request));
  ASSERT_TRUE(eventually([&] { return pool_->connections() == 3; }));
  pool_->close_connections();
  // The request being answered is answered; then every connection closes.
  std::string back(request.size(), '\0');
  asio::read(busy, asio::buffer(back));
  EXPECT_EQ(back, request);
  for (tcp::socket* c : {&busy, &idle, &pinned}) {
    char byte;
    std::error_code ec;
    c->read_some(asio::buffer(&byte, 1), ec);
    EXPECT_EQ(ec, asio::error::eof);
  }
  EXPECT_TRUE(eventually([&] { return pool_->connections() == 0; }));
  EXPECT_EQ(pool_->loop(0).moves_out() + pool_->loop(1).moves_out(), 0u);
}

TEST(RebalanceTest, ParsesTheThreeModesAndNamesABadOne) {
  EXPECT_EQ(*parse_rebalance("move"), Rebalance::kMove);
  EXPECT_EQ(*parse_rebalance("close"), Rebalance::kClose);
  EXPECT_EQ(*parse_rebalance("off"), Rebalance::kOff);
  auto bad = parse_rebalance("sideways");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("\"sideways\""), std::string::npos);
}

}  // namespace
}  // namespace loopscale
