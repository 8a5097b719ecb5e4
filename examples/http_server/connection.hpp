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
#include <asio/ip/tcp.hpp>

namespace loopscale::http {

struct Routes {
  // Returns the body of GET /metrics.
  std::function<std::string()> metrics;
  // A connection with no complete read for this long is closed.
  std::chrono::nanoseconds idle_timeout = std::chrono::seconds(30);
};

// Serves `socket` until it closes. `routes` must outlive the coroutine.
asio::awaitable<void> serve_connection(asio::ip::tcp::socket socket,
                                       const Routes& routes);

}  // namespace loopscale::http

#endif  // LOOPSCALE_EXAMPLES_HTTP_SERVER_CONNECTION_HPP_
