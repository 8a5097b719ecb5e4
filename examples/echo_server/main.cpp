// echo_server: a TCP echo server on a loopscale LoopPool. The acceptor is a
// Listener (loopscale/listener.hpp): it starts on loop 0 and moves to an
// active loop when its own leaves rotation. Each accepted socket is created
// on `pool.next()` (an active loop) and served as a session
// (loopscale/session.hpp): it holds a Registration while open, so the monitor
// drains a loop that still has clients instead of suspending it under them,
// and between two reads it moves to the loop the pool wants it on (off a
// draining loop; off a loop holding more than its share after a scale-up). Sockets, acceptor and coroutines are typed on the
// loop's executor (loopscale/io.hpp, loopscale/awaitable.hpp), so completions
// skip any_io_executor.
//
//   echo_server --port 7000 [--config FILE] [--log_scaling]
//
// Prints "listening on 127.0.0.1:PORT" (--port 0 picks a free port); with
// --log_scaling, one line per scaling decision. SIGINT/SIGTERM stop it.

#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/redirect_error.hpp>
#include <asio/signal_set.hpp>
#include <asio/write.hpp>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "loopscale/awaitable.hpp"
#include "loopscale/io.hpp"
#include "loopscale/job_scope.hpp"
#include "loopscale/job_type.hpp"
#include "loopscale/listener.hpp"
#include "loopscale/loop_pool.hpp"
#include "loopscale/session.hpp"

ABSL_FLAG(int, port, 7000, "TCP port on 127.0.0.1; 0 picks a free one");
ABSL_FLAG(std::string, config, "", "TOML pool configuration");
ABSL_FLAG(bool, log_scaling, false, "print each scaling decision");

namespace {

using asio::ip::tcp;
using loopscale::use_awaitable;

// What an echo connection keeps across reads and moves: its buffer.
struct EchoState {
  std::array<char, 4096> buf{};
};

// The job type of the echo (loopscale/job_type.hpp): from a read's
// completion to the write's start (a speculative write, usually the whole
// echo); the wait for the write to finish is "other".
loopscale::JobType echo_job;

loopscale::awaitable<void> echo(loopscale::Session<EchoState>& s) {
  while (!s.leaving()) {  // the boundary: between two reads
    std::error_code ec;
    const std::size_t n = co_await s.async_read_some(
        asio::buffer(s.state().buf),
        loopscale::bind_job(echo_job, asio::redirect_error(use_awaitable, ec)));
    if (ec) co_return;  // closed, or interrupted to leave its loop
    co_await asio::async_write(s.socket(), asio::buffer(s.state().buf, n),
                               asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  echo_job = loopscale::register_job_type("echo").value();  // a valid name, the first
  loopscale::PoolOptions options;
  options.name = "echo";
  if (const std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
    auto loaded = loopscale::load_pool_options(path);
    if (!loaded.ok()) {
      std::fprintf(stderr, "echo_server: %s\n", std::string(loaded.status().message()).c_str());
      return 1;
    }
    options = *std::move(loaded);
  }
  auto pool = loopscale::LoopPool::create(options);
  if (!pool.ok()) {
    std::fprintf(stderr, "echo_server: %s\n", std::string(pool.status().message()).c_str());
    return 1;
  }
  if (absl::GetFlag(FLAGS_log_scaling)) {
    (*pool)->monitor().add_listener([](const loopscale::ScaleEvent& e) {
      std::printf("scale: %s\n", e.decision.reason.c_str());
      std::fflush(stdout);
    });
  }
  (*pool)->start();

  loopscale::tcp_acceptor acceptor((*pool)->loop(0).get_executor());
  std::error_code ec;
  const tcp::endpoint endpoint(asio::ip::address_v4::loopback(),
                               static_cast<unsigned short>(absl::GetFlag(FLAGS_port)));
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::fprintf(stderr, "echo_server: cannot listen: %s\n", ec.message().c_str());
    return 1;
  }
  // Caught before "listening" is printed: a client may stop us at once.
  asio::io_context main_ctx;
  asio::signal_set signals(main_ctx, SIGINT, SIGTERM);
  signals.async_wait([](std::error_code, int) {});
  const unsigned short port = acceptor.local_endpoint().port();
  loopscale::LoopPool& p = **pool;
  auto listener = loopscale::Listener::start(
      p, std::move(acceptor),
      [&p](loopscale::tcp_socket socket) {
        loopscale::spawn_session(p, std::move(socket), EchoState{}, echo);
      },
      [](std::error_code e) {
        std::fprintf(stderr, "echo_server: accept failed: %s; retrying with a backoff\n",
                     e.message().c_str());
      });
  std::printf("listening on 127.0.0.1:%u\n", port);
  std::fflush(stdout);
  main_ctx.run();  // until SIGINT or SIGTERM
  // Graceful: stop accepting, let every connection finish what it is
  // echoing and close, then stop (at the latest 10 s later).
  listener->close();
  listener->wait_closed();
  (*pool)->close_connections(std::chrono::steady_clock::now() + std::chrono::seconds(10));
  (*pool)->stop();
  return 0;
}
