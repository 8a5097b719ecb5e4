// loadgen: an HTTP/1.1 load generator on Asio.
//
//   loadgen --url http://127.0.0.1:8080/work?ms=10 --mode open
//           --phases "0s:50rps,10s:400rps,30s:50rps" --duration 40s
//   loadgen --url http://127.0.0.1:8080/ --mode closed --phases "0s:8c" --duration 10s
//
// Open loop (`Nrps`): requests are sent on a fixed schedule whatever the
// server does, and latency is measured from the scheduled time, so a slow
// server shows as latency rather than as fewer requests ("coordinated
// omission" avoided). Closed loop (`Nc`): N connections each send the next
// request when the previous answer arrives.
//
// Every second it prints throughput and latency percentiles (p50, p99,
// p99.9, from a log-bucketed histogram accurate to 1%), and at the end a
// summary; --csv FILE also writes one row per second. A connection is
// replaced after --requests_per_connection requests (0 = never), so that new
// connections reach loops a scaled-up server has woken. With --preconnect
// (closed loop) every connection opens at the start and stays open, idle,
// through phases that do not use it: the keep-alive clients of connection
// pools and proxies, which connect while a server is idle and stay. In an
// open loop, --preconnect opens --pool_connections connections before the
// first request and sends every request on one of them, waiting for a free
// one (the wait counts as latency); each request takes a free connection at
// random, as many independent keep-alive clients would (--pool_order=fifo:
// the longest free, as one client's pool would).
// --latencies FILE writes every answered request's send time, latency and
// whether it was served (1) or refused with 503 (0).
//
// A 503 answer (a server shedding load: loopscale/overload.hpp) is counted
// as `refused`, apart from errors, with its own p99 in the summary; `done`,
// throughput and the latency percentiles are of the served (2xx) answers
// only: the goodput and the latency the admitted requests saw.
//
// Exit status: 0, 1 if nothing could be sent (server down), 2 on bad flags.

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "histogram.hpp"

ABSL_FLAG(std::string, url, "http://127.0.0.1:8080/", "http://HOST:PORT/PATH");
ABSL_FLAG(std::string, mode, "closed", "open (fixed rate) or closed (N connections)");
ABSL_FLAG(std::string, phases, "0s:4c",
          "START:LEVEL,... with LEVEL Nrps (open) or Nc (closed)");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "total run time");
ABSL_FLAG(int, requests_per_connection, 0, "reconnect after this many (0 = never)");
ABSL_FLAG(bool, preconnect, false,
          "closed loop: every connection opens at the start and stays open through "
          "phases that do not use it (keep-alive clients that connect while the server "
          "is idle); open loop: --pool_connections connections open before the first "
          "request and carry every request");
ABSL_FLAG(int, pool_connections, 64,
          "open loop with --preconnect: the connections opened at the start");
ABSL_FLAG(std::string, pool_order, "random",
          "open loop with --preconnect: which free connection a request takes: random "
          "(many independent clients) or fifo (the longest free, one client's pool)");
ABSL_FLAG(std::string, latencies, "",
          "write one row per answered request (scheduled send time and latency, ms; "
          "served: 1, or 0 for a 503)");
ABSL_FLAG(int, max_connections, 2048, "open loop: most connections at once");
ABSL_FLAG(std::string, csv, "", "write per-second rows to this file");

namespace {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using loopscale::loadgen::LatencyHistogram;

struct Phase {
  Clock::duration start;
  double level;  // requests per second (open) or connections (closed)
};

struct Target {
  std::string host;
  std::string port;
  std::string path;
};

int fail(const std::string& message, int code) {
  std::fprintf(stderr, "loadgen: %s\n", message.c_str());
  return code;
}

std::optional<Target> parse_url(const std::string& url) {
  if (!absl::StartsWith(url, "http://")) return std::nullopt;
  const std::string rest = url.substr(7);
  const std::size_t slash = rest.find('/');
  const std::string hostport = rest.substr(0, slash);
  Target t;
  t.path = slash == std::string::npos ? "/" : rest.substr(slash);
  const std::size_t colon = hostport.rfind(':');
  t.host = hostport.substr(0, colon);
  t.port = colon == std::string::npos ? "80" : hostport.substr(colon + 1);
  if (t.host.empty() || t.port.empty()) return std::nullopt;
  return t;
}

// Parses "0s:100rps,10s:3000rps"; `unit` is "rps" or "c".
std::optional<std::vector<Phase>> parse_phases(const std::string& text,
                                               const std::string& unit,
                                               std::string& error) {
  std::vector<Phase> out;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(item, ':');
    absl::Duration start;
    double level = 0;
    absl::string_view value = kv.second;
    if (!absl::ConsumeSuffix(&value, unit) || !absl::ParseDuration(kv.first, &start) ||
        !absl::SimpleAtod(value, &level) || level < 0 || start < absl::ZeroDuration() ||
        (!out.empty() && absl::FromChrono(out.back().start) >= start)) {
      error = "phase \"" + std::string(item) + "\": expected START:N" + unit +
              " with increasing starts, e.g. 0s:10" + unit + ",5s:50" + unit;
      return std::nullopt;
    }
    out.push_back({absl::ToChronoNanoseconds(start), level});
  }
  if (out.empty() || out[0].start != Clock::duration::zero()) {
    error = "the first phase must start at 0s";
    return std::nullopt;
  }
  return out;
}

double level_at(const std::vector<Phase>& phases, Clock::duration t) {
  double level = phases[0].level;
  for (const Phase& p : phases) {
    if (p.start <= t) level = p.level;
  }
  return level;
}

// Figures of the current second (reset each second) and of the whole run.
// `done` and the latencies are of the answers that served the request
// (2xx); 503s (a server shedding load) are `refused`, with their own
// latency; anything else is an error.
struct Stats {
  LatencyHistogram second, total, refused_total;
  std::uint64_t sent = 0, done = 0, refused = 0, errors = 0, dropped = 0;
  std::uint64_t all_sent = 0, all_done = 0, all_refused = 0, all_errors = 0, all_dropped = 0;
  std::size_t connections = 0;
  void ok(Clock::duration latency) {
    second.record(latency);
    total.record(latency);
    ++done;
    ++all_done;
  }
  void refusal(Clock::duration latency) {
    refused_total.record(latency);
    ++refused;
    ++all_refused;
  }
  void error() {
    ++errors;
    ++all_errors;
  }
};

// One HTTP/1.1 connection that sends GETs and reads the answers.
class Connection {
 public:
  Connection(asio::any_io_executor ex, const Target& target) : socket_(ex), target_(target) {}

  asio::awaitable<bool> connect(const tcp::resolver::results_type& endpoints) {
    std::error_code ec;
    co_await asio::async_connect(socket_, endpoints,
                                 asio::redirect_error(asio::use_awaitable, ec));
    co_return !ec;
  }

  enum class Outcome { kServed, kRefused, kError };

  // Sends one request and reads its response: kServed for a 2xx answer,
  // kRefused for a 503, kError for anything else or a failure.
  asio::awaitable<Outcome> request() {
    const std::string req = "GET " + target_.path + " HTTP/1.1\r\nHost: " + target_.host +
                            "\r\n\r\n";
    std::error_code ec;
    co_await asio::async_write(socket_, asio::buffer(req),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return Outcome::kError;
    const std::size_t head = co_await asio::async_read_until(
        socket_, asio::dynamic_buffer(buffer_), "\r\n\r\n",
        asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return Outcome::kError;
    const std::string headers = absl::AsciiStrToLower(buffer_.substr(0, head));
    const Outcome outcome = absl::StartsWith(headers, "http/1.1 2")     ? Outcome::kServed
                            : absl::StartsWith(headers, "http/1.1 503 ") ? Outcome::kRefused
                                                                         : Outcome::kError;
    std::size_t length = 0;
    const std::size_t at = headers.find("content-length:");
    if (at == std::string::npos ||
        !absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::string_view(headers).substr(
                              at + 15, headers.find("\r\n", at) - at - 15)),
                          &length)) {
      co_return Outcome::kError;
    }
    closing_ = headers.find("connection: close") != std::string::npos;
    if (buffer_.size() < head + length) {
      co_await asio::async_read(socket_, asio::dynamic_buffer(buffer_),
                                asio::transfer_exactly(head + length - buffer_.size()),
                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return Outcome::kError;
    }
    buffer_.erase(0, head + length);
    ++served_;
    co_return outcome;
  }

  bool reusable(int per_connection) const {
    return !closing_ && (per_connection == 0 || served_ < per_connection);
  }

 private:
  tcp::socket socket_;
  const Target& target_;
  std::string buffer_;
  bool closing_ = false;
  int served_ = 0;
};

struct Run {
  asio::io_context ctx{1};
  Target target;
  tcp::resolver::results_type endpoints;
  std::vector<Phase> phases;
  bool open = false;
  Clock::time_point start;
  Clock::time_point end;
  int per_connection = 0;
  bool preconnect = false;
  std::size_t max_connections = 0;
  Stats stats;
  std::deque<std::unique_ptr<Connection>> idle;  // open loop: reusable
  // Open loop with --preconnect: requests waiting for a free connection.
  struct Waiter {
    asio::steady_timer wake;
    std::unique_ptr<Connection> connection;
  };
  std::deque<Waiter*> waiters;
  bool random_pick = true;
  std::mt19937_64 rng{42};  // fixed: runs are comparable
  std::FILE* latencies = nullptr;
};

std::unique_ptr<Connection> new_connection(Run& run) {
  return std::make_unique<Connection>(run.ctx.get_executor(), run.target);
}

// Returns a connected connection (an idle one if any), or nullptr. With a
// preconnected pool, waits for one to be free instead of opening one.
asio::awaitable<std::unique_ptr<Connection>> take_connection(Run& run) {
  if (!run.idle.empty() && run.preconnect && run.random_pick) {
    // A free connection at random: the pool stands for many independent
    // keep-alive clients. Taken in order, the requests would visit the
    // connections in the order they were made or freed, and the server's
    // choice of which connections to move would decide which loop a whole
    // run of requests lands on.
    std::uniform_int_distribution<std::size_t> pick(0, run.idle.size() - 1);
    std::swap(run.idle[pick(run.rng)], run.idle.back());
    auto c = std::move(run.idle.back());
    run.idle.pop_back();
    co_return c;
  }
  if (!run.idle.empty()) {
    auto c = std::move(run.idle.front());
    run.idle.pop_front();
    co_return c;
  }
  if (run.preconnect) {
    Run::Waiter w{asio::steady_timer(run.ctx, Clock::time_point::max()), nullptr};
    run.waiters.push_back(&w);
    std::error_code ec;
    co_await w.wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    co_return std::move(w.connection);
  }
  auto c = new_connection(run);
  if (!co_await c->connect(run.endpoints)) co_return nullptr;
  co_return c;
}

// Open loop with --preconnect: one connection of the pool, made before the
// load starts.
asio::awaitable<void> preconnect_one(Run& run) {
  auto c = new_connection(run);
  if (co_await c->connect(run.endpoints)) run.idle.push_back(std::move(c));
}

// Gives a connection back: to the first request waiting for one, else idle.
void give_back(Run& run, std::unique_ptr<Connection> c) {
  if (run.waiters.empty()) {
    run.idle.push_back(std::move(c));
    return;
  }
  Run::Waiter* w = run.waiters.front();
  run.waiters.pop_front();
  w->connection = std::move(c);
  w->wake.cancel();
}

// Open loop: one request sent at `scheduled`, latency counted from then.
asio::awaitable<void> open_request(Run& run, Clock::time_point scheduled) {
  ++run.stats.connections;
  auto c = co_await take_connection(run);
  const Connection::Outcome outcome =
      c != nullptr ? co_await c->request() : Connection::Outcome::kError;
  if (outcome != Connection::Outcome::kError) {
    const Clock::duration latency = Clock::now() - scheduled;
    if (outcome == Connection::Outcome::kServed) {
      run.stats.ok(latency);
    } else {
      run.stats.refusal(latency);
    }
    if (run.latencies != nullptr) {
      std::fprintf(run.latencies, "%.3f,%.3f,%d\n",
                   std::chrono::duration<double, std::milli>(scheduled - run.start).count(),
                   std::chrono::duration<double, std::milli>(latency).count(),
                   outcome == Connection::Outcome::kServed ? 1 : 0);
    }
    if (c->reusable(run.per_connection)) {
      give_back(run, std::move(c));
    } else if (run.preconnect) {
      c.reset();  // the pool keeps its size: a replacement
      auto fresh = new_connection(run);
      if (co_await fresh->connect(run.endpoints)) give_back(run, std::move(fresh));
    }
  } else {
    run.stats.error();
    if (run.preconnect) {
      auto fresh = new_connection(run);
      if (co_await fresh->connect(run.endpoints)) give_back(run, std::move(fresh));
    }
  }
  --run.stats.connections;
}

asio::awaitable<void> open_loop(Run& run) {
  asio::steady_timer timer(run.ctx);
  Clock::time_point next = run.start;
  while (next < run.end) {
    timer.expires_at(next);
    co_await timer.async_wait(asio::use_awaitable);
    const double rate = level_at(run.phases, next - run.start);
    if (rate <= 0) {
      next += std::chrono::milliseconds(10);
      continue;
    }
    ++run.stats.sent;
    ++run.stats.all_sent;
    if (run.stats.connections >= run.max_connections) {
      ++run.stats.dropped;  // the server is too far behind: count, do not queue
      ++run.stats.all_dropped;
    } else {
      asio::co_spawn(run.ctx, open_request(run, next), asio::detached);
    }
    next += std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 / rate));
  }
}

// Closed loop: worker `index` runs while the phase wants more than `index`
// connections.
asio::awaitable<void> closed_worker(Run& run, std::size_t index) {
  asio::steady_timer pause(run.ctx);
  std::unique_ptr<Connection> c;
  if (run.preconnect) {
    c = std::make_unique<Connection>(run.ctx.get_executor(), run.target);
    if (!co_await c->connect(run.endpoints)) {
      run.stats.error();
      c.reset();
    }
  }
  while (Clock::now() < run.end) {
    if (static_cast<double>(index) >= level_at(run.phases, Clock::now() - run.start)) {
      if (!run.preconnect) c.reset();
      pause.expires_after(std::chrono::milliseconds(50));
      co_await pause.async_wait(asio::use_awaitable);
      continue;
    }
    if (!c) {
      c = std::make_unique<Connection>(run.ctx.get_executor(), run.target);
      if (!co_await c->connect(run.endpoints)) {
        run.stats.error();
        c.reset();
        pause.expires_after(std::chrono::milliseconds(10));
        co_await pause.async_wait(asio::use_awaitable);
        continue;
      }
    }
    const Clock::time_point t0 = Clock::now();
    ++run.stats.sent;
    ++run.stats.all_sent;
    if (const Connection::Outcome outcome = co_await c->request();
        outcome != Connection::Outcome::kError) {
      if (outcome == Connection::Outcome::kServed) {
        run.stats.ok(Clock::now() - t0);
      } else {
        run.stats.refusal(Clock::now() - t0);
      }
      if (!c->reusable(run.per_connection)) c.reset();
    } else {
      run.stats.error();
      c.reset();
    }
  }
}

double ms(double ns) { return ns / 1e6; }

asio::awaitable<void> reporter(Run& run, std::FILE* csv) {
  asio::steady_timer timer(run.ctx);
  for (int second = 1;; ++second) {
    timer.expires_at(run.start + std::chrono::seconds(second));
    co_await timer.async_wait(asio::use_awaitable);
    Stats& s = run.stats;
    const double level = level_at(run.phases, std::chrono::seconds(second - 1));
    std::printf("t=%3ds  %s=%7.0f  sent=%6" PRIu64 "  done=%6" PRIu64 "  refused=%" PRIu64
                "  errors=%" PRIu64 "  dropped=%" PRIu64
                "  p50=%8.2fms  p99=%8.2fms  p999=%8.2fms\n",
                second, run.open ? "offered_rps" : "connections", level, s.sent, s.done,
                s.refused, s.errors, s.dropped, ms(s.second.percentile(0.5)),
                ms(s.second.percentile(0.99)), ms(s.second.percentile(0.999)));
    std::fflush(stdout);
    if (csv != nullptr) {
      std::fprintf(csv, "%d,%.1f,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%.3f,%.3f,%.3f\n", second,
                   level, s.sent, s.done, s.errors, ms(s.second.percentile(0.5)),
                   ms(s.second.percentile(0.99)), ms(s.second.percentile(0.999)));
      std::fflush(csv);
    }
    s.sent = s.done = s.refused = s.errors = s.dropped = 0;
    s.second.clear();
    if (run.start + std::chrono::seconds(second) >= run.end) break;
  }
  // Let requests in flight finish briefly, then stop.
  timer.expires_after(std::chrono::seconds(2));
  co_await timer.async_wait(asio::use_awaitable);
  run.ctx.stop();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("an HTTP/1.1 load generator; see the header of main.cpp");
  absl::ParseCommandLine(argc, argv);
  auto run = std::make_unique<Run>();
  const auto target = parse_url(absl::GetFlag(FLAGS_url));
  if (!target) return fail("--url=" + absl::GetFlag(FLAGS_url) + ": expected http://HOST:PORT/PATH", 2);
  run->target = *target;
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode != "open" && mode != "closed") return fail("--mode=" + mode + ": expected open or closed", 2);
  run->open = mode == "open";
  std::string error;
  auto phases = parse_phases(absl::GetFlag(FLAGS_phases), run->open ? "rps" : "c", error);
  if (!phases) return fail("--phases: " + error, 2);
  run->phases = *phases;
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  if (duration <= absl::ZeroDuration()) return fail("--duration must be positive", 2);
  if (absl::GetFlag(FLAGS_requests_per_connection) < 0 || absl::GetFlag(FLAGS_max_connections) <= 0) {
    return fail("--requests_per_connection must be >= 0 and --max_connections > 0", 2);
  }
  run->per_connection = absl::GetFlag(FLAGS_requests_per_connection);
  run->preconnect = absl::GetFlag(FLAGS_preconnect);
  const int pool_connections = absl::GetFlag(FLAGS_pool_connections);
  if (pool_connections <= 0) return fail("--pool_connections must be > 0", 2);
  const std::string order = absl::GetFlag(FLAGS_pool_order);
  if (order != "random" && order != "fifo") {
    return fail("--pool_order=" + order + ": expected random or fifo", 2);
  }
  run->random_pick = order == "random";
  run->max_connections = static_cast<std::size_t>(absl::GetFlag(FLAGS_max_connections));
  std::FILE* csv = nullptr;
  if (const std::string path = absl::GetFlag(FLAGS_csv); !path.empty()) {
    csv = std::fopen(path.c_str(), "w");
    if (csv == nullptr) return fail("--csv=" + path + ": cannot write", 2);
    std::fprintf(csv, "second,level,sent,done,errors,p50_ms,p99_ms,p999_ms\n");
  }
  if (const std::string path = absl::GetFlag(FLAGS_latencies); !path.empty()) {
    run->latencies = std::fopen(path.c_str(), "w");
    if (run->latencies == nullptr) return fail("--latencies=" + path + ": cannot write", 2);
    std::fprintf(run->latencies, "sent_ms,latency_ms,served\n");
  }
  tcp::resolver resolver(run->ctx);
  std::error_code ec;
  run->endpoints = resolver.resolve(run->target.host, run->target.port, ec);
  if (ec) return fail("cannot resolve " + run->target.host + ": " + ec.message(), 1);
  if (run->open && run->preconnect) {
    // The pool connects before the clock starts: these are the clients that
    // were there before the load.
    for (int i = 0; i < pool_connections; ++i) {
      asio::co_spawn(run->ctx, preconnect_one(*run), asio::detached);
    }
    run->ctx.run();
    run->ctx.restart();
    if (run->idle.empty()) return fail("could not connect to " + absl::GetFlag(FLAGS_url), 1);
  }

  run->start = Clock::now();
  run->end = run->start + absl::ToChronoNanoseconds(duration);
  std::printf("start at %.3f ms (monotonic clock)\n",
              std::chrono::duration<double, std::milli>(run->start.time_since_epoch()).count());
  if (run->open) {
    asio::co_spawn(run->ctx, open_loop(*run), asio::detached);
  } else {
    double most = 0;
    for (const Phase& p : run->phases) most = std::max(most, p.level);
    for (std::size_t i = 0; i < static_cast<std::size_t>(std::ceil(most)); ++i) {
      asio::co_spawn(run->ctx, closed_worker(*run, i), asio::detached);
    }
  }
  asio::co_spawn(run->ctx, reporter(*run, csv), asio::detached);
  run->ctx.run();
  if (csv != nullptr) std::fclose(csv);
  if (run->latencies != nullptr) std::fclose(run->latencies);

  const Stats& s = run->stats;
  const double secs = absl::ToDoubleSeconds(duration);
  std::printf("summary: sent=%" PRIu64 " done=%" PRIu64 " errors=%" PRIu64 " dropped=%" PRIu64
              " throughput=%.1f rps p50=%.2fms p99=%.2fms p999=%.2fms max=%.2fms"
              " refused=%" PRIu64 " refused_p99=%.2fms\n",
              s.all_sent, s.all_done, s.all_errors, s.all_dropped,
              static_cast<double>(s.all_done) / secs, ms(s.total.percentile(0.5)),
              ms(s.total.percentile(0.99)), ms(s.total.percentile(0.999)), ms(s.total.max_ns()),
              s.all_refused, ms(s.refused_total.percentile(0.99)));
  return s.all_done == 0 ? 1 : 0;
}
