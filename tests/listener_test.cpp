// Listeners that follow the scaler: a real pool whose monitor never ticks by
// itself (its window is an hour); the test takes loops out of rotation by
// hand, as the monitor does, and connects blocking clients from its own
// thread. Interleavings are made with latches that hold a loop.

#include "loopscale/listener.hpp"

#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <vector>

#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>

#include "gtest/gtest.h"
#include "loopscale/detail/hand_over.hpp"
#include "loopscale/detail/test_hooks.hpp"
#include "support/hand_ticked_pool.hpp"
#include "support/open_fds.hpp"
#include "support/wait.hpp"

namespace loopscale {
namespace {

using namespace std::chrono_literals;
using asio::ip::tcp;
using ::loopscale::testing::eventually;
using ::loopscale::testing::open_fds;

class ListenerTest : public ::testing::Test {
 protected:
  void start_pool(std::size_t loops) {
    auto pool = testing::start_hand_ticked_pool("listener-test", loops);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
  }

  // Listens on loop `i`; accepted sockets are kept, with the loop each is on.
  void listen_on(std::size_t i) {
    tcp_acceptor acceptor(pool_->loop(i).get_executor(),
                          tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    endpoint_ = acceptor.local_endpoint();
    listener_ = Listener::start(*pool_, std::move(acceptor), [this](tcp_socket s) {
      std::lock_guard lock(mu_);
      accepted_on_.push_back(&s.get_executor().loop());
      sockets_.push_back(std::make_unique<tcp_socket>(std::move(s)));
    });
  }

  void TearDown() override {
    if (listener_ != nullptr) {
      listener_->close();
      listener_->wait_closed();
    }
    {
      std::lock_guard lock(mu_);
      for (auto& s : sockets_) {
        // Closed on their own loops (a socket is not thread-safe).
        std::latch done(1);
        asio::post(s->get_executor(), [&] {
          s->close();
          done.count_down();
        });
        done.wait();
      }
      sockets_.clear();
    }
    if (pool_ != nullptr) pool_->stop();
  }

  tcp::socket connect() {
    tcp::socket client(client_ctx_);
    client.connect(endpoint_);
    return client;
  }

  std::size_t accepted() {
    std::lock_guard lock(mu_);
    return sockets_.size();
  }
  EventLoop* accepted_on(std::size_t k) {
    std::lock_guard lock(mu_);
    return accepted_on_.at(k);
  }

  // Takes loop `i` out of rotation, as the monitor does with a loop it
  // suspends: the chooser stops picking it, then it is asked to suspend.
  void take_out(std::size_t i) {
    std::vector<std::size_t> others;
    for (std::size_t k = 0; k < pool_->size(); ++k) {
      if (k != i) others.push_back(k);
    }
    pool_->chooser().publish(others);
    ASSERT_TRUE(pool_->loop(i).try_suspend());
  }

  // Holds loop 1 (until `hold` counts down) and takes loop 0 out of
  // rotation: the listener is then between loops, released by loop 0 and
  // posted to loop 1, not yet running there.
  void move_to_held_loop_1(std::latch& hold) {
    asio::post(pool_->loop(1).get_executor(), [&] { hold.wait(); });
    take_out(0);
    ASSERT_TRUE(eventually([&] { return &listener_->loop() == &pool_->loop(1); }));
  }

  // True if a new connection is refused: nothing listens any more.
  bool refused() {
    tcp::socket late(client_ctx_);
    std::error_code ec;
    late.connect(endpoint_, ec);
    return ec == asio::error::connection_refused;
  }

  std::unique_ptr<LoopPool> pool_;
  std::shared_ptr<Listener> listener_;
  tcp::endpoint endpoint_;
  asio::io_context client_ctx_;
  std::mutex mu_;
  std::vector<std::unique_ptr<tcp_socket>> sockets_;
  std::vector<EventLoop*> accepted_on_;
};

TEST_F(ListenerTest, AcceptsAndHandsEachSocketOnAnActiveLoop) {
  start_pool(2);
  listen_on(0);
  std::vector<tcp::socket> clients;
  for (int i = 0; i < 4; ++i) clients.push_back(connect());
  ASSERT_TRUE(eventually([&] { return accepted() == 4; }));
  EXPECT_EQ(listener_->accepted(), 4u);
  EXPECT_EQ(listener_->moves(), 0u);
  EXPECT_EQ(&listener_->loop(), &pool_->loop(0));
}

TEST_F(ListenerTest, FollowsItsLoopOutOfRotationAndTheLoopGivesItsThreadBack) {
  start_pool(2);
  listen_on(0);
  tcp::socket first = connect();
  ASSERT_TRUE(eventually([&] { return accepted() == 1; }));
  take_out(0);
  // The pending accept no longer holds loop 0: it suspends, and the
  // listener accepts on loop 1.
  ASSERT_TRUE(eventually([&] {
    return pool_->loop(0).state() == LoopState::kSuspended &&
           listener_->moves() == 1;
  })) << to_string(pool_->loop(0).state()) << ", " << listener_->moves() << " moves";
  EXPECT_EQ(&listener_->loop(), &pool_->loop(1));
  tcp::socket second = connect();
  ASSERT_TRUE(eventually([&] { return accepted() == 2; }));
  EXPECT_EQ(accepted_on(1), &pool_->loop(1));
  EXPECT_EQ(pool_->loop(0).state(), LoopState::kSuspended) << "nothing woke it";
}

TEST_F(ListenerTest, ConnectionsThatArriveDuringAMoveAreAllAccepted) {
  start_pool(2);
  listen_on(0);
  // Clients connect while the listener is between loops: they wait in the
  // kernel's backlog.
  std::latch hold(1);
  move_to_held_loop_1(hold);
  EXPECT_EQ(listener_->moves(), 0u) << "counted once it runs on loop 1";
  std::vector<tcp::socket> clients;
  for (int i = 0; i < 5; ++i) clients.push_back(connect());
  EXPECT_EQ(accepted(), 0u);
  hold.count_down();
  ASSERT_TRUE(eventually([&] { return accepted() == 5; }));
  EXPECT_EQ(listener_->moves(), 1u);
  for (std::size_t k = 0; k < 5; ++k) EXPECT_EQ(accepted_on(k), &pool_->loop(1));
}

TEST_F(ListenerTest, ABacklogIsAcceptedInOneTurnOfTheListenersLoop) {
  // On a loop busy with other handlers each turn of the listener waits a
  // pass over the loop's queue: one connection per turn is too slow.
  start_pool(2);
  tcp_acceptor acceptor(pool_->loop(0).get_executor(),
                        tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  endpoint_ = acceptor.local_endpoint();
  std::vector<std::uint64_t> turns;  // loop 0's handler count at each accept
  listener_ = Listener::start(*pool_, std::move(acceptor), [&](tcp_socket s) {
    std::lock_guard lock(mu_);
    turns.push_back(pool_->loop(0).activity().handlers);
    sockets_.push_back(std::make_unique<tcp_socket>(std::move(s)));
  });
  std::latch hold(1);
  asio::post(pool_->loop(0).get_executor(), [&] { hold.wait(); });
  std::vector<tcp::socket> clients;
  for (int i = 0; i < 5; ++i) clients.push_back(connect());  // into the backlog
  hold.count_down();
  ASSERT_TRUE(eventually([&] { return accepted() == 5; }));
  std::lock_guard lock(mu_);
  for (std::uint64_t t : turns) EXPECT_EQ(t, turns.front());
}

TEST_F(ListenerTest, ALoopTakenBackBeforeTheInterruptionRanKeepsTheListener) {
  start_pool(2);
  listen_on(0);
  // Loop 0 is held while it is taken out and back in: when the
  // interruption runs, loop 0 is active again, and the listener stays.
  std::latch hold(1);
  std::latch held(1);
  asio::post(pool_->loop(0).get_executor(), [&] {
    held.count_down();
    hold.wait();
  });
  held.wait();
  take_out(0);
  pool_->loop(0).resume();
  const std::vector<std::size_t> both{0, 1};
  pool_->chooser().publish(both);
  hold.count_down();
  tcp::socket client = connect();
  ASSERT_TRUE(eventually([&] { return accepted() == 1; }));
  EXPECT_EQ(listener_->moves(), 0u);
  EXPECT_EQ(&listener_->loop(), &pool_->loop(0));
}

TEST_F(ListenerTest, WithNoOtherActiveLoopItStaysAndKeepsAccepting) {
  start_pool(1);
  listen_on(0);
  ASSERT_TRUE(pool_->loop(0).try_suspend());
  // Nowhere to go: the accept goes on, and the loop keeps its thread.
  tcp::socket client = connect();
  ASSERT_TRUE(eventually([&] { return accepted() == 1; }));
  EXPECT_EQ(listener_->moves(), 0u);
  EXPECT_NE(pool_->loop(0).state(), LoopState::kSuspended);
}

TEST_F(ListenerTest, AnExceptionFromOnAcceptDoesNotStopTheListener) {
  start_pool(2);
  tcp_acceptor acceptor(pool_->loop(0).get_executor(),
                        tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  endpoint_ = acceptor.local_endpoint();
  std::atomic<int> calls{0};
  listener_ = Listener::start(*pool_, std::move(acceptor), [&](tcp_socket) {
    if (calls.fetch_add(1) == 0) throw std::runtime_error("the first one fails");
  });
  tcp::socket first = connect();
  ASSERT_TRUE(eventually([&] { return calls.load() == 1; }));
  tcp::socket second = connect();
  EXPECT_TRUE(eventually([&] { return calls.load() == 2; }));
  EXPECT_EQ(listener_->accepted(), 2u);
  EXPECT_FALSE(listener_->closed());
}

// Out of descriptors where the accept step makes its next socket (as on a
// loop that had no reactor yet): the step's exception used to end the
// listener, and every later connection was refused.
TEST_F(ListenerTest, AStepThatThrowsIsRetriedAfterAPauseAndTheListenerAcceptsOn) {
  start_pool(2);
  tcp_acceptor acceptor(pool_->loop(0).get_executor(),
                        tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  endpoint_ = acceptor.local_endpoint();
  std::atomic<int> calls{0};
  std::vector<std::error_code> errors;  // on loop 0's thread, read after the waits
  listener_ = Listener::start(
      *pool_, std::move(acceptor), [&](tcp_socket) { calls.fetch_add(1); },
      [&](std::error_code ec) { errors.push_back(ec); });
  tcp::socket first = connect();
  ASSERT_TRUE(eventually([&] { return calls.load() == 1; }));
  // The next two steps, after the first connection, throw.
  detail::fail_descriptors_for_testing = 2;
  tcp::socket second = connect();
  ASSERT_TRUE(eventually([&] { return calls.load() == 2; }));
  tcp::socket third = connect();
  ASSERT_TRUE(eventually([&] { return calls.load() == 3; }));
  EXPECT_EQ(detail::fail_descriptors_for_testing.load(), 0);
  EXPECT_EQ(listener_->accept_failures(), 2u);
  EXPECT_FALSE(listener_->closed());
  listener_->close();
  listener_->wait_closed();
  ASSERT_EQ(errors.size(), 1u) << "reported once per run of failures";
  EXPECT_EQ(errors[0], std::errc::too_many_files_open);
}

// The target's reactor refuses the acceptor's descriptor: it stays on its
// loop, still accepting, and moves once it can; nothing leaks.
TEST_F(ListenerTest, AnAcceptorThatCannotMoveStaysAndMovesOnceItCan) {
  start_pool(2);
  listen_on(0);
  tcp::socket first = connect();
  ASSERT_TRUE(eventually([&] { return accepted() == 1; }));
  const std::size_t fds_before = open_fds();
  detail::fail_descriptors_for_testing = 1;
  take_out(0);
  ASSERT_TRUE(eventually([&] {
    return listener_->moves() == 1 && pool_->loop(0).state() == LoopState::kSuspended;
  })) << listener_->moves() << " moves, " << to_string(pool_->loop(0).state());
  EXPECT_EQ(detail::fail_descriptors_for_testing.load(), 0);
  EXPECT_EQ(listener_->accept_failures(), 1u);
  tcp::socket second = connect();
  ASSERT_TRUE(eventually([&] { return accepted() == 2; }));
  EXPECT_EQ(accepted_on(1), &pool_->loop(1));
  EXPECT_EQ(open_fds(), fds_before + 2) << "the second connection's two ends, no more";
}

// Past `pause_accepting_at` the listener takes nothing: the connection
// waits in the kernel's backlog, and is accepted once the pressure is gone.
TEST_F(ListenerTest, AnOverloadedPoolAcceptsNothingUntilThePressureEnds) {
  start_pool(2);
  OverloadConfig overload;
  overload.pause_accepting_at = 0.5;
  pool_->admission().inject(0.6, overload);
  listen_on(0);
  ASSERT_TRUE(eventually([&] { return listener_->overload_holds() >= 1; }));
  tcp::socket client = connect();  // completes: the kernel holds it
  // Two more looks at the admission after the connection was made: each
  // held back instead of accepting it.
  const std::uint64_t holds = listener_->overload_holds();
  ASSERT_TRUE(eventually([&] { return listener_->overload_holds() >= holds + 2; }));
  EXPECT_EQ(accepted(), 0u);
  EXPECT_EQ(listener_->accepted(), 0u);
  // Below the level again (refusing requests, but accepting).
  pool_->admission().inject(0.4, overload);
  ASSERT_TRUE(eventually([&] { return accepted() == 1; }));
  pool_->admission().clear_injection();
}

TEST_F(ListenerTest, CloseStopsAcceptingAndWaitClosedReturns) {
  start_pool(2);
  listen_on(0);
  tcp::socket client = connect();
  ASSERT_TRUE(eventually([&] { return accepted() == 1; }));
  listener_->close();
  listener_->close();  // idempotent
  listener_->wait_closed();
  EXPECT_TRUE(listener_->closed());
  EXPECT_TRUE(refused());
  EXPECT_EQ(accepted(), 1u);
}

// Connections the kernel completed before the close are handed over, not
// reset with the acceptor: more than one turn's batch of them (16).
TEST_F(ListenerTest, CloseHandsOverTheBacklogBeforeClosing) {
  start_pool(2);
  listen_on(0);
  std::latch hold(1);
  asio::post(pool_->loop(0).get_executor(), [&] { hold.wait(); });
  std::vector<tcp::socket> clients;
  for (int i = 0; i < 40; ++i) clients.push_back(connect());  // into the backlog
  listener_->close();
  hold.count_down();
  listener_->wait_closed();
  EXPECT_EQ(accepted(), 40u);
  EXPECT_TRUE(refused());
}

TEST_F(ListenerTest, CloseDuringAMoveClosesOnTheNewLoop) {
  start_pool(2);
  listen_on(0);
  std::latch hold(1);
  move_to_held_loop_1(hold);
  listener_->close();  // the listener is queued on loop 1
  EXPECT_FALSE(listener_->closed());
  hold.count_down();
  listener_->wait_closed();
  EXPECT_TRUE(listener_->closed());
  EXPECT_TRUE(refused());
}

TEST_F(ListenerTest, StoppingThePoolEndsTheListener) {
  start_pool(2);
  listen_on(0);
  pool_->stop();
  listener_->wait_closed();  // returns: the loop stopped
  pool_.reset();             // the loops' queues go, and the acceptor with them
  EXPECT_TRUE(listener_->closed());
  EXPECT_TRUE(refused());
  listener_.reset();
}

}  // namespace
}  // namespace loopscale
