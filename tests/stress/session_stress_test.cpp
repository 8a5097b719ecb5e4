// Sessions moving under load: 1000 echo connections on a pool of four loops
// carry 1 000 000 checksummed messages while a chaos thread drains one loop
// after another (every connection on it moves, the loop suspends), then
// takes it back. Every byte a client gets back must be the byte it sent, in
// order, once; every message's checksum must match; no operation may fail.
// The overlap is forced: halfway through, every connection waits until the
// chaos has completed a number of drains.

#include <gtest/gtest.h>

#include <sys/resource.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include "loopscale/session.hpp"
#include "support/echo_session.hpp"
#include "support/wait.hpp"

namespace loopscale {
namespace {

using namespace std::chrono_literals;
using asio::ip::tcp;
using ::loopscale::testing::eventually;

constexpr std::size_t kLoops = 4;
constexpr int kConnections = 1000;
constexpr int kMessagesPerConnection = 1000;  // 1 000 000 in all
constexpr int kMessagesPerBatch = 10;         // written together, then read back
constexpr std::uint64_t kDrainsBeforeSecondHalf = 8;
constexpr std::size_t kMaxPayload = 120;
constexpr std::size_t kHeader = 8;  // payload length, checksum

using ::loopscale::testing::echo;
using ::loopscale::testing::EchoState;

std::uint32_t checksum(const char* data, std::size_t n) {
  std::uint32_t h = 2166136261u;  // FNV-1a
  for (std::size_t i = 0; i < n; ++i) {
    h = (h ^ static_cast<unsigned char>(data[i])) * 16777619u;
  }
  return h;
}

struct Totals {
  std::atomic<std::uint64_t> messages{0};
  std::atomic<std::uint64_t> mismatches{0};
  std::atomic<std::uint64_t> bad_checksums{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<int> finished{0};
  std::atomic<std::uint64_t> drains{0};
};

// One client connection: batches of messages out, the same bytes back.
class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(tcp::socket socket, int id, Totals& totals)
      : socket_(std::move(socket)), timer_(socket_.get_executor()),
        rng_(static_cast<std::uint32_t>(id)), totals_(totals) {}

  void start() { next_batch(); }

 private:
  void next_batch() {
    if (sent_ == kMessagesPerConnection / 2 &&
        totals_.drains.load() < kDrainsBeforeSecondHalf) {
      timer_.expires_after(1ms);  // poll interval while the chaos catches up
      timer_.async_wait([self = shared_from_this()](std::error_code) {
        self->next_batch();
      });
      return;
    }
    if (sent_ == kMessagesPerConnection) {
      totals_.finished.fetch_add(1);
      return;
    }
    out_.clear();
    for (int m = 0; m < kMessagesPerBatch; ++m) {
      const std::size_t len = 1 + rng_() % kMaxPayload;
      std::string payload(len, '\0');
      for (char& c : payload) c = static_cast<char>(rng_());
      const std::uint32_t header[2] = {static_cast<std::uint32_t>(len),
                                       checksum(payload.data(), len)};
      out_.append(reinterpret_cast<const char*>(header), kHeader);
      out_ += payload;
    }
    sent_ += kMessagesPerBatch;
    back_.assign(out_.size(), '\0');
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this()](std::error_code ec, std::size_t) {
                        if (ec) return self->fail();
                        self->read_back();
                      });
  }

  void read_back() {
    asio::async_read(socket_, asio::buffer(back_),
                     [self = shared_from_this()](std::error_code ec, std::size_t) {
                       if (ec) return self->fail();
                       self->verify();
                       self->next_batch();
                     });
  }

  void verify() {
    if (back_ != out_) totals_.mismatches.fetch_add(1);
    std::size_t at = 0;
    while (at + kHeader <= back_.size()) {
      std::uint32_t header[2];
      std::memcpy(header, back_.data() + at, kHeader);
      at += kHeader;
      if (header[0] > back_.size() - at ||
          checksum(back_.data() + at, header[0]) != header[1]) {
        totals_.bad_checksums.fetch_add(1);
        break;
      }
      at += header[0];
      totals_.messages.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void fail() {
    totals_.errors.fetch_add(1);
    totals_.finished.fetch_add(1);
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  std::minstd_rand rng_;
  Totals& totals_;
  int sent_ = 0;
  std::string out_;
  std::string back_;
};

// Two sockets per connection in this process, plus the pool's.
void raise_descriptor_limit() {
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  limit.rlim_cur = limit.rlim_max;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &limit), 0);
  ASSERT_GE(limit.rlim_cur, rlim_t{2 * kConnections + 100})
      << "the hard limit on open files is too low for this test";
}

TEST(SessionStressTest, MovesUnderLoadLoseNoByteAndBreakNoConnection) {
  raise_descriptor_limit();
  PoolOptions o;
  o.name = "session-stress";
  o.scaling.min_loops = 1;
  o.scaling.max_loops = kLoops;
  o.scaling.window = 1h;  // the chaos thread decides, not the monitor
  o.scaling.fast_up_interval = 0ns;
  auto created = LoopPool::create(o);
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<LoopPool> pool = *std::move(created);
  pool->start();

  asio::io_context clients_ctx;
  tcp::acceptor acceptor(clients_ctx, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  Totals totals;
  std::vector<std::shared_ptr<Client>> clients;
  for (int i = 0; i < kConnections; ++i) {
    tcp::socket client(clients_ctx);
    client.connect(acceptor.local_endpoint());
    tcp_socket server(pool->loop(static_cast<std::size_t>(i) % kLoops).get_executor());
    acceptor.accept(server);
    spawn_session(*pool, std::move(server), EchoState{}, echo);
    clients.push_back(std::make_shared<Client>(std::move(client), i, totals));
  }
  for (auto& c : clients) c->start();
  std::thread client_thread([&] { clients_ctx.run(); });

  // Drain loop after loop: each time, every connection on it moves to the
  // others and it suspends; then it comes back and the next one goes.
  std::atomic<bool> done{false};
  std::uint64_t stuck = 0;
  std::thread chaos([&] {
    for (std::size_t k = 0; !done.load(); ++k) {
      const std::size_t victim = k % kLoops;
      std::vector<std::size_t> others;
      for (std::size_t i = 0; i < kLoops; ++i) {
        if (i != victim) others.push_back(i);
      }
      pool->chooser().publish(others);
      EventLoop& loop = pool->loop(victim);
      if (!loop.try_suspend()) break;
      // Asked again until empty, as the monitor asks at every tick (and, as
      // the monitor would, drained again if a straggler's move or post
      // brought it back into service).
      const bool emptied = eventually([&] {
        if (loop.state() == LoopState::kActive) (void)loop.try_suspend();
        loop.request_moves(loop.registrations());
        return loop.registrations() == 0 || done.load();
      });
      if (!emptied) ++stuck;
      loop.resume();
      pool->chooser().publish(std::vector<std::size_t>{0, 1, 2, 3});
      totals.drains.fetch_add(1);
    }
  });

  EXPECT_TRUE(eventually([&] { return totals.finished.load() == kConnections; },
                         std::chrono::minutes(20)))
      << totals.finished.load() << " of " << kConnections << " connections finished";
  done = true;
  chaos.join();
  clients_ctx.stop();
  client_thread.join();

  std::uint64_t moves = 0, failed = 0;
  for (std::size_t i = 0; i < kLoops; ++i) {
    moves += pool->loop(i).moves_out();
    failed += pool->loop(i).moves_failed();
  }
  EXPECT_EQ(totals.errors.load(), 0u);
  EXPECT_EQ(totals.mismatches.load(), 0u);
  EXPECT_EQ(totals.bad_checksums.load(), 0u);
  EXPECT_EQ(failed, 0u);
  EXPECT_EQ(stuck, 0u) << "a drained loop kept connections for the whole deadline";
  EXPECT_EQ(totals.messages.load(),
            std::uint64_t{kConnections} * kMessagesPerConnection);
  EXPECT_GE(totals.drains.load(), kDrainsBeforeSecondHalf);
  // Every drain empties a loop of about a quarter of the connections.
  EXPECT_GE(moves, kDrainsBeforeSecondHalf * kConnections / kLoops / 2);
  std::printf("%llu messages, %llu drains, %llu moves\n",
              static_cast<unsigned long long>(totals.messages.load()),
              static_cast<unsigned long long>(totals.drains.load()),
              static_cast<unsigned long long>(moves));
  pool->stop();
}

}  // namespace
}  // namespace loopscale
