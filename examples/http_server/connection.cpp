#include "connection.hpp"

#include <array>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>
#include <optional>
#include <thread>
#include <vector>

#include <asio/redirect_error.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "absl/functional/function_ref.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "loopscale/job_scope.hpp"
#include "request_parser.hpp"

namespace loopscale::http {
namespace {

constexpr int kMaxWorkMs = 10000;
// The most response bytes made before they are written (see serve_requests).
constexpr std::size_t kMaxBufferedOutput = 64 * 1024;

constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";

// `extra`: more header lines, each ending in CRLF.
std::string response(int code, std::string_view reason, std::string_view body,
                     bool keep_alive, std::string_view type = kTextPlain,
                     std::string_view extra = {}) {
  return absl::StrCat("HTTP/1.1 ", code, " ", absl::string_view(reason.data(), reason.size()),
                      "\r\nContent-Type: ", absl::string_view(type.data(), type.size()),
                      "\r\nContent-Length: ", body.size(),
                      keep_alive ? "" : "\r\nConnection: close", "\r\n",
                      absl::string_view(extra.data(), extra.size()), "\r\n",
                      absl::string_view(body.data(), body.size()));
}

// Keeps the calling thread (the loop) busy for `ms`.
void work(int ms, bool spin) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  if (!spin) {
    std::this_thread::sleep_until(until);
    return;
  }
  while (std::chrono::steady_clock::now() < until) {
  }
}

// Answers one request; sets `keep_alive` false if the connection must close
// (the client asked, or `may_keep_alive()` is false: the pool asked this
// connection to close, or is overloaded). `may_keep_alive` is asked again
// after a long request's work: a graceful stop that began meanwhile closes
// the connection after this answer. `admit()` is asked before a request's
// work (not /metrics': a pool under pressure is when it is read): a refused
// request gets 503 with Retry-After at once. `extra` goes into the head.
std::string answer(const Request& req, const Routes& routes,
                   absl::FunctionRef<bool()> may_keep_alive, absl::FunctionRef<bool()> admit,
                   bool& keep_alive, std::string_view extra) {
  keep_alive = req.keep_alive && may_keep_alive();
  const std::string_view url = req.url;
  const std::size_t q = url.find('?');
  const std::string_view path = url.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? "" : url.substr(q + 1);
  if (path != "/metrics" && !admit()) {
    return response(503, "Service Unavailable", "overloaded: try again later\n", keep_alive,
                    kTextPlain, absl::StrCat("Retry-After: 1\r\n", absl::string_view(extra.data(), extra.size())));
  }
  // The answer is the route's work, but /metrics', which is its own.
  JobScope job(path == "/metrics" ? routes.jobs.metrics : routes.jobs.work);
  if (req.method != "GET") {
    return response(405, "Method Not Allowed", "only GET is served\n", keep_alive, kTextPlain, extra);
  }
  if (path == "/") return response(200, "OK", "hello from loopscale\n", keep_alive, kTextPlain, extra);
  if (path == "/metrics") {
    return response(200, "OK", routes.metrics(), keep_alive,
                    "text/plain; version=0.0.4; charset=utf-8", extra);
  }
  if (path == "/work") {
    int ms = -1;
    bool spin = false;
    for (absl::string_view kv : absl::StrSplit(absl::string_view(query.data(), query.size()), '&')) {
      std::pair<absl::string_view, absl::string_view> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
      if (p.first == "ms" && !absl::SimpleAtoi(p.second, &ms)) ms = -1;
      if (p.first == "spin") spin = p.second == "1";
    }
    if (ms < 0 || ms > kMaxWorkMs) {
      return response(400, "Bad Request",
                      absl::StrCat("/work needs ms=N with N in 0..", kMaxWorkMs, "\n"),
                      keep_alive, kTextPlain, extra);
    }
    work(ms, spin);
    keep_alive = keep_alive && may_keep_alive();
    return response(200, "OK", absl::StrCat("worked ", ms, " ms\n"), keep_alive, kTextPlain, extra);
  }
  return response(404, "Not Found", "no such path\n", keep_alive, kTextPlain, extra);
}

// The loop a socket's executor runs on (0 for the plain baseline's).
std::size_t loop_index(const LoopExecutor& ex) { return ex.loop().index(); }
std::size_t loop_index(const asio::io_context::executor_type&) { return 0; }

// The plain baseline's connection, with the session's interface: it never
// leaves, and its reads are the socket's.
class PlainConnection {
 public:
  explicit PlainConnection(PlainSocket& socket) : socket_(socket) {}
  PlainSocket& socket() { return socket_; }
  bool leaving() const { return false; }
  bool close_requested() const { return false; }
  void set_request_in_progress(bool) {}
  // A plain pool knows no overload: it serves everything and keeps every
  // connection, as a plain Asio server would.
  bool admit() const { return true; }
  bool keep_alive() const { return true; }
  std::chrono::nanoseconds idle_timeout(std::chrono::nanoseconds normal) const { return normal; }
  template <class Buffers, class Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    return socket_.async_read_some(buffers, std::forward<Token>(token));
  }

 private:
  PlainSocket& socket_;
};

// The request loop, for a Session or a PlainConnection. Returns with the
// socket open when the session is to leave its loop; closes it otherwise
// (or leaves that to the session, which closes it when it ends).
//
// Three clocks guard a connection. Between requests it may stay idle for
// `routes.idle_timeout` since its last answer (`idle_since`: empty lines do
// not restart it); a write must make progress within `routes.idle_timeout`
// (a client that stops reading is cut off; a slow one is not); once a
// request's first byte has arrived, the whole
// request must arrive within `routes.request_timeout` of it (`started`,
// kept across moves): a client that sends one byte a second is cut off,
// not kept alive by every byte. Answers to one read are written in pieces
// of at most kMaxBufferedOutput, each before the next is made, and nothing
// is read meanwhile: a client that sends without reading holds at most that
// much of the server's memory.
template <class Connection>
asio::awaitable<void, typename std::remove_reference_t<
                          decltype(std::declval<Connection&>().socket())>::executor_type>
serve_requests(Connection& c, RequestParser& parser,
               std::optional<std::chrono::steady_clock::time_point>& started,
               std::chrono::steady_clock::time_point& idle_since, const Routes& routes) {
  using Socket = std::remove_reference_t<decltype(c.socket())>;
  using Executor = typename Socket::executor_type;
  constexpr asio::use_awaitable_t<Executor> use_awaitable;
  Socket& socket = c.socket();
  const std::size_t loop = loop_index(socket.get_executor());
  // Rebuilt whenever the session (re)starts on a loop; destroyed before the
  // session moves.
  asio::basic_waitable_timer<std::chrono::steady_clock,
                             asio::wait_traits<std::chrono::steady_clock>, Executor>
      deadline(socket.get_executor());
  // What the deadline's handler may close. A timer that expires as the
  // coroutine ends (the client closed, or the session moves) has its
  // handler queued with success, and neither destroying nor re-arming the
  // timer recalls it: the handler runs after the coroutine and the socket
  // are gone (a use after free, seen as a crash at shutdown under hostile
  // clients), or closes a connection whose deadline was re-armed since. So
  // it holds a weak reference, which dies with this frame, and the arming
  // it belongs to. Loop thread only.
  struct Watch {
    Socket* socket;
    std::uint64_t armed = 0;
  };
  const auto watch = std::make_shared<Watch>(Watch{&socket});
  auto close_if_current = [&watch] {
    return [weak = std::weak_ptr<Watch>(watch), armed = ++watch->armed](std::error_code ec) {
      const std::shared_ptr<Watch> w = weak.lock();
      if (!ec && w != nullptr && w->armed == armed) {
        std::error_code ignored;
        w->socket->close(ignored);  // the pending operation fails
      }
    };
  };
  auto arm_deadline = [&] {
    if (started) {
      deadline.expires_at(*started + routes.request_timeout);
    } else {
      deadline.expires_at(idle_since + c.idle_timeout(routes.idle_timeout));
    }
    deadline.async_wait(close_if_current());
  };
  std::array<char, 8192> buf;
  std::vector<Request> requests;
  std::string out;
  while (!c.leaving()) {  // the boundary: between two reads
    arm_deadline();
    std::error_code ec;
    const std::size_t n = co_await c.async_read_some(
        asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;  // closed, timed out, or interrupted to leave
    requests.clear();
    RequestParser::Status status;
    {
      JobScope job(routes.jobs.parse);
      status = parser.feed(buf.data(), n, requests);
    }
    // Asked to close while the rest of a request is on its way, the
    // connection answers it (with Connection: close) before it closes.
    c.set_request_in_progress(parser.in_message());
    if (!parser.in_message()) {
      started.reset();
    } else if (!started || !requests.empty()) {
      started = std::chrono::steady_clock::now();  // a new request began
    }
    bool keep_alive = true;
    std::size_t next = 0;
    do {
      out.clear();
      for (; next < requests.size() && keep_alive && out.size() < kMaxBufferedOutput;
           ++next) {
        const Request& req = requests[next];
        std::shared_ptr<const std::string> orca;
        if (routes.load_report != nullptr) {
          // A format the client asks for that is not one we know: the default.
          OrcaFormat asked = OrcaFormat::kOff;
          if (!req.load_metrics_format.empty()) {
            asked = parse_orca_format(req.load_metrics_format).value_or(OrcaFormat::kOff);
          }
          orca = routes.load_report->header(asked);
          routes.load_report->count_response(loop);
        }
        out += answer(
            req, routes, [&c] { return !c.close_requested() && c.keep_alive(); },
            [&c] { return c.admit(); }, keep_alive,
            orca != nullptr ? std::string_view(*orca) : std::string_view());
      }
      if (next == requests.size() || !keep_alive) {
        if (status == RequestParser::Status::kBad) {
          out += response(400, "Bad Request", parser.error() + "\n", false);
          keep_alive = false;
        } else if (status == RequestParser::Status::kHeadersTooLarge) {
          out += response(431, "Request Header Fields Too Large", parser.error() + "\n",
                          false);
          keep_alive = false;
        }
      }
      if (!out.empty()) {
        // A write's deadline restarts with its every bit of progress (as
        // nginx's send_timeout): a client that reads slowly gets its whole
        // answer, however long, and one that stops reading is cut off. The
        // kernel wakes a writer only once half its send queue has drained,
        // so a reader must take about that much per idle timeout.
        for (std::size_t written = 0; written < out.size();) {
          deadline.expires_after(routes.idle_timeout);
          deadline.async_wait(close_if_current());
          written += co_await socket.async_write_some(asio::buffer(out) + written,
                                                      asio::redirect_error(use_awaitable, ec));
          if (ec) co_return;
        }
      }
    } while (keep_alive && next < requests.size());
    if (next > 0) idle_since = std::chrono::steady_clock::now();
    if (!keep_alive) {
      // Lingering close: stop sending, then read and drop what the client
      // still sends (the rest of an oversized request) until it closes or a
      // second passes, so the kernel does not answer it with a reset that
      // could destroy the response before the client reads it. Reads of
      // the socket itself: a connection that is closing does not move.
      socket.shutdown(asio::socket_base::shutdown_send, ec);
      deadline.expires_after(std::chrono::seconds(1));
      deadline.async_wait(close_if_current());
      while (!ec) {
        co_await socket.async_read_some(asio::buffer(buf),
                                        asio::redirect_error(use_awaitable, ec));
      }
      std::error_code ignored;
      socket.close(ignored);
      co_return;
    }
  }
}

}  // namespace

loopscale::awaitable<void> serve_session(Session<HttpState>& session,
                                         const Routes& routes) {
  return serve_requests(session, *session.state().parser,
                        session.state().request_started, session.state().idle_since, routes);
}

asio::awaitable<void, asio::io_context::executor_type> serve_plain(
    PlainSocket socket, const Routes& routes) {
  PlainConnection c(socket);
  RequestParser parser;
  std::optional<std::chrono::steady_clock::time_point> started;
  std::chrono::steady_clock::time_point idle_since = std::chrono::steady_clock::now();
  co_await serve_requests(c, parser, started, idle_since, routes);
  std::error_code ignored;
  socket.close(ignored);
}

absl::StatusOr<HttpJobs> register_http_jobs() {
  HttpJobs jobs;
  for (auto [job, name] : {std::pair{&jobs.accept, "accept"}, std::pair{&jobs.parse, "parse"},
                           std::pair{&jobs.work, "work"}, std::pair{&jobs.metrics, "metrics"}}) {
    auto registered = register_job_type(name);
    if (!registered.ok()) return registered.status();
    *job = *registered;
  }
  return jobs;
}

}  // namespace loopscale::http
