// -----------------------------------------------------------------------------
// io.hpp
// -----------------------------------------------------------------------------
//
// Asio I/O objects typed on `LoopExecutor`: the fastest way to put timers and
// sockets on a loop.
//
//   loopscale::steady_timer timer(loop.get_executor());
//   loopscale::tcp_acceptor acceptor(loop.get_executor(), endpoint);
//   loopscale::tcp_socket socket(pool.next());  // on the loop chosen next
//   acceptor.async_accept(socket, [](std::error_code ec) { /* ... */ });
//
// `asio::steady_timer` and `asio::ip::tcp::socket` work on a loop too, and
// behave the same; they hold their executor in an `any_io_executor`. Asio
// short-cuts only its own `io_context` executor in there, so every completion
// on any other executor (a `LoopExecutor`, a strand, anything) pays two
// type-erased `prefer`s, a type-erased `execute` that allocates and a
// `type_info` comparison. With the executor in the type, a completion costs
// what it costs on a plain `io_context` plus loopscale's busy accounting
// (`benchmarks/loop_bench` TypedTimers against Timers, where a do-nothing
// executor of the same kind costs as much: docs/performance.md).
//
// The price is the type: these objects are constructed from a `LoopExecutor`
// only (not from an `io_context` or another executor), and code that takes
// `asio::ip::tcp::socket&` does not take a `loopscale::tcp_socket&`. Accepting
// with `tcp_acceptor::async_accept(handler)` yields a `tcp_socket` on the
// acceptor's loop; `async_accept(other_loop_executor, handler)` yields one on
// the other loop.
//
// Everything else is Asio's: the same member functions, the same
// thread-safety (an I/O object is not safe for concurrent use; create and use
// it on its loop, or hand it over through the loop's executor). Starting an
// operation from another thread wakes a suspended loop, as with any
// `LoopExecutor` I/O object (loop_executor.hpp).

#ifndef LOOPSCALE_IO_HPP_
#define LOOPSCALE_IO_HPP_

#include <chrono>

#include <asio/basic_datagram_socket.hpp>
#include <asio/basic_socket_acceptor.hpp>
#include <asio/basic_stream_socket.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>
#include <asio/wait_traits.hpp>

#include "loopscale/loop_executor.hpp"

namespace loopscale {

using steady_timer =
    asio::basic_waitable_timer<std::chrono::steady_clock,
                               asio::wait_traits<std::chrono::steady_clock>,
                               LoopExecutor>;
using tcp_socket = asio::basic_stream_socket<asio::ip::tcp, LoopExecutor>;
using tcp_acceptor = asio::basic_socket_acceptor<asio::ip::tcp, LoopExecutor>;
using udp_socket = asio::basic_datagram_socket<asio::ip::udp, LoopExecutor>;

}  // namespace loopscale

#endif  // LOOPSCALE_IO_HPP_
