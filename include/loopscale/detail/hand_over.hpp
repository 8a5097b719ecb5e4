// Moves an I/O object's descriptor from one loop's reactor to another's:
// what a moving session (session.hpp) and a listener (listener.hpp) do.
// Internal.
//
// Thread-safety: on the thread of the loop the object is on now; the object
// must have no operation pending.

#ifndef LOOPSCALE_DETAIL_HAND_OVER_HPP_
#define LOOPSCALE_DETAIL_HAND_OVER_HPP_

#include <optional>
#include <system_error>

#include <unistd.h>

#include "loopscale/event_loop.hpp"

namespace loopscale::detail {

// Re-registers `socket`'s descriptor with `target`'s reactor: the socket is
// replaced by one of the same protocol on `target`'s executor. It must have
// no operation pending. On failure the descriptor is closed and the error
// returned (the socket is left closed).
template <class Socket>
std::error_code hand_over(std::optional<Socket>& socket, EventLoop& target) {
  std::error_code ec;
  const auto protocol = socket->local_endpoint(ec).protocol();
  if (ec) return ec;
  const auto fd = socket->release(ec);
  if (ec) return ec;
  socket.emplace(target.get_executor());
  socket->assign(protocol, fd, ec);
  if (ec) ::close(fd);
  return ec;
}

}  // namespace loopscale::detail

#endif  // LOOPSCALE_DETAIL_HAND_OVER_HPP_
