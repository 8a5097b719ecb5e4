// loop_bench's session cases (loopscale/session.hpp), in a translation unit
// of their own so that they do not change how the other cases compile:
//   SessionMove      one echo session moved back and forth between the two
//                    loops of a pool while it waits for input: from
//                    `request_moves(1)` on its loop until the target counts
//                    it (`moves_in()`): the interruption of its read, the
//                    descriptor released from one reactor and registered
//                    with the other, its registration moved, the session
//                    posted to the target. p50_us and p99_us.
//   SessionBoundary  `Session::leaving()` with no move asked: the check every
//                    request pays (one relaxed load).

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/write.hpp>

#include "loop_bench.hpp"
#include "loopscale/session.hpp"

namespace loopscale_bench {
namespace {

using asio::ip::tcp;

struct EchoState {
  std::array<char, 256> buf{};
  // Where the benchmark finds the session (it only reads it).
  std::atomic<loopscale::Session<EchoState>*>* found = nullptr;
};

loopscale::awaitable<void> echo(loopscale::Session<EchoState>& s) {
  if (s.state().found != nullptr) s.state().found->store(&s);
  while (!s.leaving()) {
    std::error_code ec;
    const std::size_t n = co_await s.async_read_some(
        asio::buffer(s.state().buf),
        asio::redirect_error(loopscale::use_awaitable, ec));
    if (ec) co_return;
    co_await asio::async_write(s.socket(), asio::buffer(s.state().buf, n),
                               asio::redirect_error(loopscale::use_awaitable, ec));
    if (ec) co_return;
  }
}

// A pool of two loops that never scales on its own, one echo session on loop
// 0 and its client.
class SessionRig {
 public:
  SessionRig() {
    loopscale::PoolOptions o;
    o.scaling.min_loops = 2;
    o.scaling.max_loops = 2;
    o.scaling.window = std::chrono::hours(1);
    pool_ = *loopscale::LoopPool::create(o);
    pool_->start();
    client_.connect(acceptor_.local_endpoint());
    loopscale::tcp_socket server(pool_->loop(0).get_executor());
    acceptor_.accept(server);
    EchoState state;
    state.found = &session_;
    loopscale::spawn_session(*pool_, std::move(server), std::move(state), echo);
    round_trip();
  }
  ~SessionRig() { pool_->stop(); }

  loopscale::EventLoop& loop(std::size_t i) { return pool_->loop(i); }
  loopscale::Session<EchoState>& session() { return *session_.load(); }

  // One byte out and back: the session is waiting in its read again.
  void round_trip() {
    char byte = 'x';
    asio::write(client_, asio::buffer(&byte, 1));
    asio::read(client_, asio::buffer(&byte, 1));
  }

 private:
  std::unique_ptr<loopscale::LoopPool> pool_;
  asio::io_context client_ctx_;
  tcp::acceptor acceptor_{client_ctx_,
                          tcp::endpoint(asio::ip::address_v4::loopback(), 0)};
  tcp::socket client_{client_ctx_};
  std::atomic<loopscale::Session<EchoState>*> session_{nullptr};
};

void BM_SessionMove(benchmark::State& state) {
  SessionRig rig;
  std::vector<double> samples;
  std::size_t at = 0;
  // Two connections' worth of imbalance follows the session, so that each
  // move evens the counts out (LoopPool::rebalance_target) and is allowed.
  std::vector<loopscale::Registration> weight;
  for (auto _ : state) {
    state.PauseTiming();
    const std::size_t to = 1 - at;
    weight.clear();
    weight.push_back(rig.loop(at).register_connection());
    weight.push_back(rig.loop(at).register_connection());
    const std::uint64_t arrived = rig.loop(to).moves_in();
    state.ResumeTiming();
    const auto t0 = std::chrono::steady_clock::now();
    rig.loop(at).request_moves(1);
    // Yields rather than spins: on two cores a spinning waiter holds the
    // CPU the loops need (ResumeLatency shows the same).
    while (rig.loop(to).moves_in() == arrived) std::this_thread::yield();
    samples.push_back(std::chrono::duration<double, std::micro>(
                          std::chrono::steady_clock::now() - t0)
                          .count());
    state.PauseTiming();
    rig.round_trip();  // running on the target, waiting in its read
    at = to;
    state.ResumeTiming();
  }
  report_percentiles(state, std::move(samples));
}

void BM_SessionBoundary(benchmark::State& state) {
  SessionRig rig;
  loopscale::Session<EchoState>& session = rig.session();
  for (auto _ : state) {
    benchmark::DoNotOptimize(session.leaving());
  }
}

}  // namespace

void register_session_benchmarks(AddBenchmark add) {
  add("SessionMove", BM_SessionMove);
  add("SessionBoundary", BM_SessionBoundary);
}

}  // namespace loopscale_bench
