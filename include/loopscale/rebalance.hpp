// -----------------------------------------------------------------------------
// rebalance.hpp
// -----------------------------------------------------------------------------
//
// `Rebalance`: how a server's connections answer the pool's request that they
// leave their loop (loopscale/session.hpp). A plain value, parsed from a flag
// or a config string; no Asio here.

#ifndef LOOPSCALE_REBALANCE_HPP_
#define LOOPSCALE_REBALANCE_HPP_

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"

namespace loopscale {

enum class Rebalance : std::uint8_t {
  // Move to the target loop and go on there (the default): the socket, the
  // registration and the session's state move; the client sees nothing.
  kMove,
  // Close at the next boundary: `Session::close_requested()` becomes true
  // (an HTTP server answers the next request with `Connection: close`), and
  // a session waiting for input is closed. For protocols whose clients
  // reconnect cheaply, and for proxies that balance new connections anyway.
  kClose,
  // Stay: the session never leaves its loop (connections pin their loop, as
  // with a plain io_context-per-thread pool). It still closes when its
  // loop closes its connections (`EventLoop::request_close()`, a graceful
  // shutdown).
  kOff,
};

// Returns "move", "close" or "off".
std::string_view to_string(Rebalance mode) noexcept;

// Parses "move", "close" or "off"; InvalidArgument naming the value
// otherwise.
absl::StatusOr<Rebalance> parse_rebalance(std::string_view text);

}  // namespace loopscale

#endif  // LOOPSCALE_REBALANCE_HPP_
