// Moves an I/O object's descriptor from one loop's reactor to another's:
// what a moving session (session.hpp) and a listener (listener.hpp) do.
// Internal.
//
// Thread-safety: on the thread of the loop the object is on now; the object
// must have no operation pending.

#ifndef LOOPSCALE_DETAIL_HAND_OVER_HPP_
#define LOOPSCALE_DETAIL_HAND_OVER_HPP_

#include <atomic>
#include <cerrno>
#include <exception>
#include <new>
#include <optional>
#include <system_error>

#include <unistd.h>

#include "loopscale/detail/test_hooks.hpp"
#include "loopscale/event_loop.hpp"

namespace loopscale::detail {

// The error code an exception stands for, where a caller reports codes.
inline std::error_code error_code_of(std::exception_ptr e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::system_error& error) {
    return error.code();
  } catch (const std::bad_alloc&) {
    return std::make_error_code(std::errc::not_enough_memory);
  } catch (...) {
    return std::make_error_code(std::errc::io_error);
  }
}

// Re-registers `object`'s descriptor with `target`'s reactor: the object is
// replaced by one of the same protocol on `target`'s executor. It must have
// no operation pending.
//
// On failure the error is returned and, wherever the kernel allows, the
// object stays open on its own loop (the descriptor back in that loop's
// reactor), so a connection is never lost to a move that could not happen;
// only if its own loop cannot take the descriptor back either is it closed
// (then `object->is_open()` is false). No descriptor leaks on any path, and
// nothing throws: a failure to make the target's side (out of descriptors
// or memory) is an error like any other.
template <class Object>
std::error_code hand_over(std::optional<Object>& object, EventLoop& target) noexcept {
  std::error_code ec;
  const auto protocol = object->local_endpoint(ec).protocol();
  if (ec) return ec;
  std::optional<Object> moved;
  try {
    moved.emplace(target.get_executor());
  } catch (...) {
    return error_code_of(std::current_exception());  // nothing released yet
  }
  const auto fd = object->release(ec);
  if (ec) return ec;  // still registered where it was
  if (descriptor_fault_for_testing()) {
    ec = std::make_error_code(std::errc::too_many_files_open);
  } else {
    moved->assign(protocol, fd, ec);
  }
  if (!ec) {
    object.emplace(std::move(*moved));
    return ec;
  }
  std::error_code back;
  object->assign(protocol, fd, back);
  if (back) ::close(fd);
  return ec;
}

}  // namespace loopscale::detail

#endif  // LOOPSCALE_DETAIL_HAND_OVER_HPP_
