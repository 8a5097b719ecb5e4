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
// On the pool a connection is a `loopscale::Session` (serve_session): between
// two requests it moves to the loop the pool wants it on, with its parser
// (a partly read request) in `HttpState`; with `Rebalance::kClose` it answers
// the next request with `Connection: close` instead. On the plain baseline
// (serve_plain) it stays on its thread, as a plain Asio server's would.
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
#include <memory>
#include <optional>
#include <string>

#include <asio/awaitable.hpp>
#include <asio/basic_stream_socket.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "absl/status/statusor.h"
#include "load_report.hpp"
#include "loopscale/job_type.hpp"
#include "loopscale/session.hpp"
#include "request_parser.hpp"

namespace loopscale::http {

// The job types the server marks (loopscale/job_type.hpp), so that
// `loopscale-top` and /metrics tell what its loops are busy with: "accept"
// (starting a session for a new connection), "parse" (request bytes through
// the parser), "work" (a route's answer, /work's included) and "metrics"
// (the /metrics text). Reading, writing and moving count as "other".
struct HttpJobs {
  JobType accept, parse, work, metrics;
};
// Registers the four; an error only if the process registered too many
// job types of its own.
absl::StatusOr<HttpJobs> register_http_jobs();

struct Routes {
  // What the job types are (all "other" until registered).
  HttpJobs jobs;
  // Returns the body of GET /metrics.
  std::function<std::string()> metrics;
  // A connection idle between requests for this long is closed.
  std::chrono::nanoseconds idle_timeout = std::chrono::seconds(30);
  // A request must arrive whole within this long of its first byte, or the
  // connection is closed (slow-header clients).
  std::chrono::nanoseconds request_timeout = std::chrono::seconds(10);
  // If set, every answer carries an ORCA load report (load_report.hpp).
  LoadReport* load_report = nullptr;
};

// What a connection keeps across requests, and across moves between loops.
struct HttpState {
  // Holds a partly read request between two reads.
  std::unique_ptr<RequestParser> parser = std::make_unique<RequestParser>();
  // When the request being read began (its deadline's start), if one is.
  std::optional<std::chrono::steady_clock::time_point> request_started;
  // When the connection last went idle: it opened, or an answer was
  // written. The idle timeout runs from here; bytes that are no request
  // (empty lines) do not restart it.
  std::chrono::steady_clock::time_point idle_since = std::chrono::steady_clock::now();
};

// Serves one connection of the pool until it closes or leaves its loop (see
// loopscale/session.hpp). `routes` must outlive the session.
loopscale::awaitable<void> serve_session(Session<HttpState>& session,
                                         const Routes& routes);

using PlainSocket =
    asio::basic_stream_socket<asio::ip::tcp, asio::io_context::executor_type>;

// Serves `socket` of the plain baseline until it closes. `routes` must
// outlive the coroutine.
asio::awaitable<void, asio::io_context::executor_type> serve_plain(
    PlainSocket socket, const Routes& routes);

}  // namespace loopscale::http

#endif  // LOOPSCALE_EXAMPLES_HTTP_SERVER_CONNECTION_HPP_
