// A listener chased from loop to loop while clients connect: in each round
// the loop it accepts on is taken out of rotation and, at once, five clients
// connect, racing the interruption, the hand-over of the descriptor and the
// restart on the new loop. Every connection is accepted exactly once, every
// round makes exactly one move, and the loop left behind suspends. Run under
// ThreadSanitizer by scripts/test.

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include <asio/ip/tcp.hpp>

#include "gtest/gtest.h"
#include "loopscale/listener.hpp"
#include "support/hand_ticked_pool.hpp"
#include "support/wait.hpp"

namespace loopscale {
namespace {

using namespace std::chrono_literals;
using asio::ip::tcp;
using ::loopscale::testing::eventually;

TEST(ListenerStressTest, EveryConnectionIsAcceptedOnceWhileTheListenerMoves) {
  // The test decides which loops are in rotation.
  auto created = testing::start_hand_ticked_pool("listener-stress", 3);
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<LoopPool> pool = *std::move(created);

  tcp_acceptor acceptor(pool->loop(0).get_executor(),
                        tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  const tcp::endpoint endpoint = acceptor.local_endpoint();
  std::atomic<int> accepted{0};
  std::atomic<int> off_rotation{0};  // accepted onto a loop out of rotation
  auto listener = Listener::start(*pool, std::move(acceptor), [&](tcp_socket s) {
    if (s.get_executor().loop().is_suspended()) off_rotation.fetch_add(1);
    accepted.fetch_add(1);
    // Dropped here: closing a socket that has no pending operation is safe
    // from any thread.
  });

  asio::io_context client_ctx;
  std::vector<tcp::socket> clients;
  constexpr int kRounds = 60;
  constexpr int kPerRound = 5;
  for (int r = 0; r < kRounds; ++r) {
    EventLoop& old = listener->loop();
    std::vector<std::size_t> others;
    for (std::size_t k = 0; k < pool->size(); ++k) {
      if (&pool->loop(k) == &old) continue;
      pool->loop(k).resume();
      others.push_back(k);
    }
    pool->chooser().publish(others);
    ASSERT_TRUE(old.try_suspend());
    for (int c = 0; c < kPerRound; ++c) {
      clients.emplace_back(client_ctx);
      clients.back().connect(endpoint);
    }
    // The loop left behind gives its thread back. Waiting for it also
    // orders the rounds: the old loop's handler that moved the listener has
    // returned, so its submission to the new loop cannot land after the
    // next round took that loop out of rotation (a submission that
    // straddles a suspension resumes the loop, by design).
    ASSERT_TRUE(eventually([&] {
      return accepted.load() == (r + 1) * kPerRound &&
             listener->moves() == static_cast<std::uint64_t>(r + 1) &&
             old.state() == LoopState::kSuspended;
    })) << "round " << r << ": " << accepted.load() << " accepted, "
        << listener->moves() << " moves; listener on loop " << listener->loop().index()
        << " (was on " << old.index() << "); loops " << to_string(pool->loop(0).state())
        << " " << to_string(pool->loop(1).state()) << " "
        << to_string(pool->loop(2).state());
    EXPECT_NE(&listener->loop(), &old) << "round " << r;
  }
  EXPECT_EQ(off_rotation.load(), 0) << "a connection started on a loop out of rotation";
  listener->close();
  listener->wait_closed();
  EXPECT_EQ(accepted.load(), kRounds * kPerRound);
  pool->stop();
}

}  // namespace
}  // namespace loopscale
