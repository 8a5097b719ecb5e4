// http_server: an HTTP/1.1 server on a loopscale LoopPool (or, with --plain,
// on a plain Asio io_context-per-thread pool of the same size, the baseline
// for benchmarks). See connection.hpp for the routes.
//
//   http_server --port 8080 --config examples/config/demo.toml
//   http_server --port 8080 --config examples/config/demo.toml --rebalance=close
//   http_server --port 8080 --plain --threads 4
//   http_server --port 8080 --config examples/config/demo.toml --orca=text
//
// Prints "listening on ADDRESS:PORT" once it accepts (--port 0 picks a free
// port). SIGINT or SIGTERM stop it gracefully: it stops accepting, answers
// the request each connection is in (not the ones pipelined behind it: they
// get Connection: close instead), closes every connection, then stops (at
// the latest after --shutdown_timeout, or once a request in flight at that
// moment ends). A second SIGINT or SIGTERM stops it at once (exit status
// 130). Exit status: 0, 1 if it cannot start (bad config, port in use), 2
// on bad flags.

#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <cstdlib>
#include <thread>
#include <vector>

#include <asio/basic_waitable_timer.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/redirect_error.hpp>
#include <asio/signal_set.hpp>
#include <asio/use_awaitable.hpp>

#include <future>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "connection.hpp"
#include "loopscale/accept_backoff.hpp"
#include "loopscale/awaitable.hpp"
#include "loopscale/job_scope.hpp"
#include "loopscale/listener.hpp"
#include "loopscale/loop_pool.hpp"
#include "loopscale/prometheus.hpp"

ABSL_FLAG(std::string, address, "127.0.0.1", "address to listen on");
ABSL_FLAG(int, port, 8080, "TCP port; 0 picks a free one");
ABSL_FLAG(std::string, config, "", "TOML pool configuration (loopscale mode)");
ABSL_FLAG(bool, plain, false,
          "serve on a plain io_context-per-thread pool, without scaling");
ABSL_FLAG(int, threads, 0,
          "threads of the plain pool; 0 = the loopscale pool's size");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(30),
          "close connections idle between requests for this long");
ABSL_FLAG(absl::Duration, request_timeout, absl::Seconds(10),
          "close a connection whose request has not arrived whole this long "
          "after its first byte");
ABSL_FLAG(absl::Duration, shutdown_timeout, absl::Seconds(10),
          "on SIGINT/SIGTERM, how long requests in flight may take to be "
          "answered before the server stops anyway");
ABSL_FLAG(std::string, orca, "off",
          "add an ORCA load report (endpoint-load-metrics header, for Envoy's "
          "weighted round robin) to every answer: text, json or off; a "
          "request may ask for another with endpoint-load-metrics-format");
ABSL_FLAG(bool, log_scaling, false,
          "print every scaling action and its reason on stderr, with the "
          "monotonic clock's time in ms (loadgen prints its start on the same clock)");
ABSL_FLAG(std::string, overload, "config",
          "overload protection (loopscale/overload.hpp: 503 with Retry-After "
          "for a share of requests once the pool is full and saturated): on, "
          "off (queue without bound, as before), or config (the config "
          "file's [overload] enabled)");
ABSL_FLAG(double, inject_overload, -1,
          "for tests: hold the overload level at this value in [0, 1] "
          "whatever the load (Admission::inject); -1 = not");
ABSL_FLAG(std::string, rebalance, "move",
          "how keep-alive connections follow the scaler: move (to the loop the "
          "pool wants them on, between two requests), close (answer the next "
          "request with Connection: close) or off (stay where accepted)");

namespace {

using asio::ip::tcp;
using loopscale::LoopPool;

int fail(const std::string& message, int code) {
  std::fprintf(stderr, "http_server: %s\n", message.c_str());
  return code;
}

// The plain baseline: one io_context per thread, round-robin, what a user
// would write without loopscale.
class PlainPool {
 public:
  using executor_type = asio::io_context::executor_type;

  explicit PlainPool(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      contexts_.push_back(std::make_unique<asio::io_context>(1));
      guards_.emplace_back(contexts_.back()->get_executor());
    }
    for (auto& c : contexts_) threads_.emplace_back([&c] { c->run(); });
  }
  ~PlainPool() { stop(); }
  executor_type next() { return contexts_[next_++ % contexts_.size()]->get_executor(); }
  executor_type first() { return contexts_[0]->get_executor(); }
  void stop() {
    for (auto& c : contexts_) c->stop();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  std::size_t size() const { return contexts_.size(); }

 private:
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<asio::executor_work_guard<executor_type>> guards_;
  std::vector<std::thread> threads_;
  std::size_t next_ = 0;  // only the acceptor's thread uses it
};

template <class Executor>
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;
template <class Executor>
using Socket = asio::basic_stream_socket<tcp, Executor>;

// Accepts on `acceptor` and starts serving each connection on `pick()`'s
// executor with `on_accept(socket)`.
template <class Executor, class Pick, class OnAccept>
asio::awaitable<void, Executor> accept_loop(Acceptor<Executor>& acceptor, Pick pick,
                                            OnAccept on_accept) {
  constexpr asio::use_awaitable_t<Executor> use_awaitable;
  loopscale::AcceptBackoff backoff;  // the Listener's, for the plain baseline
  asio::basic_waitable_timer<std::chrono::steady_clock,
                             asio::wait_traits<std::chrono::steady_clock>, Executor>
      pause(acceptor.get_executor());
  for (;;) {
    std::error_code ec;
    Executor ex = pick();
    Socket<Executor> socket(ex);
    co_await acceptor.async_accept(socket, asio::redirect_error(use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {  // e.g. EMFILE: wait, then keep accepting
      const loopscale::AcceptBackoff::Pause wait = backoff.failed();
      if (wait.first_of_run) {
        std::fprintf(stderr, "http_server: accept failed: %s; retrying with a backoff of up "
                             "to %lld ms\n",
                     ec.message().c_str(),
                     static_cast<long long>(loopscale::AcceptBackoff::kLongest.count()));
      }
      pause.expires_after(wait.wait);
      co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
      if (!acceptor.is_open()) co_return;
      continue;
    }
    if (const std::uint64_t failures = backoff.succeeded(); failures > 0) {
      std::fprintf(stderr, "http_server: accepting again after %llu failed accepts\n",
                   static_cast<unsigned long long>(failures));
    }
    on_accept(std::move(socket));
  }
}

// Listens on `endpoint` with `acceptor`, hands it to `start(acceptor)`,
// which starts accepting and returns a callable that stops accepting and
// returns once the acceptor is closed; serves until SIGINT or SIGTERM, then
// stops accepting and calls `stop()` (which stops the pool). Returns the exit
// status.
template <class Executor, class Start, class Stop>
int serve(Acceptor<Executor> acceptor, const tcp::endpoint& endpoint, const std::string& what,
          Start start, Stop stop) {
  std::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    stop();
    return fail("cannot listen on " + absl::GetFlag(FLAGS_address) + ":" +
                    std::to_string(endpoint.port()) + ": " + ec.message(),
                1);
  }
  // SIGINT/SIGTERM are caught before "listening" is printed: a client that
  // reads the line may stop the server at once.
  asio::io_context signals_ctx;
  asio::signal_set signals(signals_ctx, SIGINT, SIGTERM);
  signals.async_wait([](std::error_code, int) {});
  const unsigned short port = acceptor.local_endpoint().port();
  auto stop_accepting = start(acceptor);
  std::printf("listening on %s:%u (%s)\n", absl::GetFlag(FLAGS_address).c_str(), port,
              what.c_str());
  std::fflush(stdout);
  signals_ctx.run();  // until SIGINT or SIGTERM
  // A second signal during the graceful stop ends the process at once: an
  // operator who asks twice does not want to wait.
  signals.async_wait([](std::error_code ec, int) {
    if (ec) return;
    std::fprintf(stderr, "http_server: second signal, stopping at once\n");
    std::_Exit(130);
  });
  signals_ctx.restart();
  std::thread second_signal([&signals_ctx] { signals_ctx.run(); });
  std::fprintf(stderr, "http_server: stopping gracefully (a second signal stops at once)\n");
  stop_accepting();
  stop();
  signals_ctx.stop();
  second_signal.join();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "an HTTP/1.1 server on a loopscale pool.\n"
      "usage: http_server [--port 8080] [--config FILE] [--rebalance move|close|off]\n"
      "                   [--plain --threads N]");
  const auto positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    return fail(std::string("unexpected argument \"") + positional[1] + "\"", 2);
  }
  const int port = absl::GetFlag(FLAGS_port);
  if (port < 0 || port > 65535) {
    return fail("--port=" + std::to_string(port) + ": must be 0..65535", 2);
  }
  if (absl::GetFlag(FLAGS_threads) < 0) return fail("--threads must be >= 0", 2);
  for (const auto& [name, value] :
       {std::pair<const char*, absl::Duration>{"idle_timeout", absl::GetFlag(FLAGS_idle_timeout)},
        {"request_timeout", absl::GetFlag(FLAGS_request_timeout)},
        {"shutdown_timeout", absl::GetFlag(FLAGS_shutdown_timeout)}}) {
    if (value <= absl::ZeroDuration() || value > absl::Hours(24)) {
      return fail(std::string("--") + name + "=" + absl::FormatDuration(value) +
                      ": must be positive and at most 24h",
                  2);
    }
  }
  const auto rebalance_flag = loopscale::parse_rebalance(absl::GetFlag(FLAGS_rebalance));
  if (!rebalance_flag.ok()) {
    return fail("--rebalance: " + std::string(rebalance_flag.status().message()), 2);
  }
  const loopscale::Rebalance rebalance = *rebalance_flag;
  const auto orca = loopscale::http::parse_orca_format(absl::GetFlag(FLAGS_orca));
  if (!orca.ok()) return fail("--orca: " + std::string(orca.status().message()), 2);
  if (*orca != loopscale::http::OrcaFormat::kOff && absl::GetFlag(FLAGS_plain)) {
    return fail("--orca reports the loopscale pool's load: not with --plain", 2);
  }
  std::error_code ec;
  const auto address = asio::ip::make_address(absl::GetFlag(FLAGS_address), ec);
  if (ec) return fail("--address=" + absl::GetFlag(FLAGS_address) + ": " + ec.message(), 2);

  loopscale::PoolOptions options;
  options.name = "http";
  if (const std::string config = absl::GetFlag(FLAGS_config); !config.empty()) {
    auto loaded = loopscale::load_pool_options(config);
    if (!loaded.ok()) return fail(std::string(loaded.status().message()), 1);
    options = *std::move(loaded);
  }
  if (const std::string o = absl::GetFlag(FLAGS_overload); o == "on" || o == "off") {
    options.scaling.overload.enabled = o == "on";
  } else if (o != "config") {
    return fail("--overload=" + o + ": expected on, off or config", 2);
  }
  const double inject = absl::GetFlag(FLAGS_inject_overload);
  if (inject != -1 && !(inject >= 0 && inject <= 1)) {
    return fail(absl::StrCat("--inject_overload=", inject, ": expected a level in [0, 1] or -1"), 2);
  }
  // Declared before the pools: sessions refer to the routes until the pool
  // that runs them is destroyed (a session still open at a stop is destroyed
  // with its loop's queue).
  loopscale::http::Routes routes;
  std::unique_ptr<loopscale::http::LoadReport> load_report;  // the pool's sink uses it
  auto created = LoopPool::create(options);
  if (!created.ok()) return fail(std::string(created.status().message()), 1);
  std::unique_ptr<LoopPool> pool = *std::move(created);
  const bool plain = absl::GetFlag(FLAGS_plain);
  const std::size_t threads = absl::GetFlag(FLAGS_threads) > 0
                                  ? static_cast<std::size_t>(absl::GetFlag(FLAGS_threads))
                                  : pool->size();
  std::unique_ptr<PlainPool> plain_pool;
  if (plain) {
    pool.reset();  // not used: its loops never started
    plain_pool = std::make_unique<PlainPool>(threads);
  } else {
    if (absl::GetFlag(FLAGS_log_scaling)) {
      pool->add_listener([](const loopscale::ScaleEvent& e) {
        std::fprintf(stderr, "scaling at %.3f ms: %s\n",
                     std::chrono::duration<double, std::milli>(e.at.time_since_epoch()).count(),
                     e.decision.reason.c_str());
      });
      pool->add_overload_listener([](const loopscale::OverloadEvent& e) {
        std::fprintf(stderr, "overload at %.3f ms: level %.2f: %s\n",
                     std::chrono::duration<double, std::milli>(e.at.time_since_epoch()).count(),
                     e.level, e.reason.c_str());
      });
    }
    if (inject >= 0) pool->admission().inject(inject, options.scaling.overload);
    pool->start();
  }

  auto jobs = loopscale::http::register_http_jobs();
  if (!jobs.ok()) return fail(std::string(jobs.status().message()), 1);
  routes.jobs = *jobs;
  routes.idle_timeout = absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_idle_timeout));
  routes.request_timeout = absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_request_timeout));
  if (*orca != loopscale::http::OrcaFormat::kOff) {
    // Refreshed at every monitor window, from the monitor's thread.
    load_report = std::make_unique<loopscale::http::LoadReport>(pool->size(), *orca);
    routes.load_report = load_report.get();
    pool->add_sink([report = load_report.get()](const loopscale::TickReport& tick) {
      report->refresh(tick);
    });
  }
  // A plain pool has no loopscale figures: its /metrics is the build info.
  routes.metrics = [&pool] {
    return pool ? loopscale::prometheus::render(*pool)
                : loopscale::prometheus::render(loopscale::shm::Snapshot{});
  };

  const tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  int status = 0;
  if (pool) {
    // Sockets go to the chooser's pick. Each connection is a session
    // (loopscale/session.hpp): it holds a Registration on its loop while
    // open, so the monitor drains rather than suspends a loop that still has
    // clients, and moves (or closes, per --rebalance) when the pool wants it
    // elsewhere.
    auto start_session = [&pool, &routes, rebalance](Socket<loopscale::LoopExecutor> s) {
      loopscale::JobScope job(routes.jobs.accept);  // on the acceptor's loop
      loopscale::spawn_session(
          *pool, std::move(s), loopscale::http::HttpState{},
          [&routes](loopscale::Session<loopscale::http::HttpState>& session) {
            return loopscale::http::serve_session(session, routes);
          },
          rebalance);
    };
    // The acceptor starts on loop 0 and follows the scaler (listener.hpp):
    // when its loop leaves rotation it moves to an active one, so that no
    // loop keeps its thread for a pending accept.
    auto start_listener = [&pool, &start_session](loopscale::tcp_acceptor& acceptor) {
      std::shared_ptr<loopscale::Listener> listener = loopscale::Listener::start(
          *pool, std::move(acceptor), start_session, [](std::error_code ec) {
            std::fprintf(stderr,
                         "http_server: accept failed: %s; retrying with a backoff of up "
                         "to 1000 ms\n",
                         ec.message().c_str());
          });
      return [listener, &pool] {
        listener->close();
        // Before waiting for the listener: its loop may be busy with a long
        // request, and the connections are told to close meanwhile (a batch
        // of pipelined requests stops after the one in progress).
        pool->close_connections();
        listener->wait_closed();
      };
    };
    status = serve(loopscale::tcp_acceptor(pool->loop(0).get_executor()), endpoint,
                   "loopscale, " + std::to_string(pool->size()) + " loops, rebalance " +
                       std::string(loopscale::to_string(rebalance)),
                   start_listener,
                   [&pool] {
                     // Graceful: requests in flight are answered, then every
                     // connection closes; the pool stops once none is left,
                     // or when --shutdown_timeout has passed.
                     pool->close_connections(
                         std::chrono::steady_clock::now() +
                         absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_shutdown_timeout)));
                     pool->stop();
                   });
  } else {
    auto start_plain = [&routes](Socket<PlainPool::executor_type> s) {
      const auto ex = s.get_executor();
      asio::co_spawn(ex, loopscale::http::serve_plain(std::move(s), routes), asio::detached);
    };
    auto start_accepting = [&plain_pool, &start_plain](Acceptor<PlainPool::executor_type>& a) {
      asio::co_spawn(a.get_executor(),
                     accept_loop(a, [&plain_pool] { return plain_pool->next(); }, start_plain),
                     asio::detached);
      return [&a] {
        // Closed on its own thread (an acceptor is not thread-safe).
        std::promise<void> closed;
        asio::post(a.get_executor(), [&] {
          a.close();
          closed.set_value();
        });
        closed.get_future().wait();
      };
    };
    status = serve(Acceptor<PlainPool::executor_type>(plain_pool->first()), endpoint,
                   "plain, " + std::to_string(threads) + " threads", start_accepting,
                   [&plain_pool] { plain_pool->stop(); });
  }
  if (status != 0) return status;
  std::printf("stopped\n");
  return 0;
}
