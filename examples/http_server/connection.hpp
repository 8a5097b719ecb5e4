// -----------------------------------------------------------------------------
// http_server/connection.hpp
// -----------------------------------------------------------------------------
//
// One HTTP/1.1 connection as an Asio coroutine: read, parse (keep-alive and
// pipelining), answer, until the client closes, asks to close, sends
// something malformed (400) or oversized (431), or stays idle too long. The
// coroutine runs on the socket's executor, i.e. on one loop, so everything it
// does (including `/work`) counts as that loop's busy time.
//
// Socket, timer and coroutine are typed on the executor (a loopscale
// `LoopExecutor`, or a plain `io_context`'s for the baseline), not on
// `any_io_executor`: Asio short-cuts only its own executor in there, and the
// comparison would charge loopscale for that (loopscale/awaitable.hpp).
//
// Routes:
//   GET /                  200, a line of text
//   GET /work?ms=N         200 after keeping the loop busy for N ms (0..10000):
//                          blocking, as a slow handler would; `&spin=1` burns
//                          CPU instead of sleeping
//   GET /metrics           200, the Prometheus text from `Routes::metrics`
//   anything else          404 (unknown path) or 405 (not GET)

#ifndef LOOPSCALE_EXAMPLES_HTTP_SERVER_CONNECTION_HPP_
#define LOOPSCALE_EXAMPLES_HTTP_SERVER_CONNECTION_HPP_

#include <chrono>
#include <functional>
#include <string>

#include <asio/awaitable.hpp>
#include <asio/basic_stream_socket.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "loopscale/loop_executor.hpp"

namespace loopscale::http {

struct Routes {
  // Returns the body of GET /metrics.
  std::function<std::string()> metrics;
  // A connection with no complete read for this long is closed.
  std::chrono::nanoseconds idle_timeout = std::chrono::seconds(30);
};

// Serves `socket` until it closes. `routes` must outlive the coroutine.
// Defined for the two executors below.
template <class Executor>
asio::awaitable<void, Executor> serve_connection(
    asio::basic_stream_socket<asio::ip::tcp, Executor> socket, const Routes& routes);

extern template asio::awaitable<void, LoopExecutor> serve_connection(
    asio::basic_stream_socket<asio::ip::tcp, LoopExecutor>, const Routes&);
extern template asio::awaitable<void, asio::io_context::executor_type> serve_connection(
    asio::basic_stream_socket<asio::ip::tcp, asio::io_context::executor_type>,
    const Routes&);

}  // namespace loopscale::http

#endif  // LOOPSCALE_EXAMPLES_HTTP_SERVER_CONNECTION_HPP_
