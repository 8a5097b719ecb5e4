// -----------------------------------------------------------------------------
// awaitable.hpp
// -----------------------------------------------------------------------------
//
// Asio coroutines typed on `LoopExecutor`: the fastest way to write a
// coroutine that runs on a loop.
//
//   loopscale::awaitable<void> session(loopscale::tcp_socket socket) {
//     char buf[4096];
//     const std::size_t n = co_await socket.async_read_some(
//         asio::buffer(buf), loopscale::use_awaitable);
//     ...
//   }
//   asio::co_spawn(loop.get_executor(), session(std::move(socket)), asio::detached);
//
// `asio::awaitable<T>` works on a loop too, and behaves the same: it is
// `asio::awaitable<T, asio::any_io_executor>`, and every operation it awaits
// completes through that `any_io_executor`. Asio short-cuts only its own
// `io_context` executor in there; for any other executor (a `LoopExecutor`, a
// strand) each completion pays two type-erased `prefer`s and a type-erased
// `execute` that allocates. `benchmarks/loop_bench` measures 64 coroutines
// awaiting re-armed timers at about 1.10x a plain `io_context` that way
// (Coroutines) and at 0.99x when coroutine and timer are typed on the loop's
// executor (TypedCoroutines; docs/performance.md). Await operations of the
// typed I/O objects of `loopscale/io.hpp` with `loopscale::use_awaitable`:
// an `asio::steady_timer` or `asio::ip::tcp::socket` awaited from here still
// completes through its own `any_io_executor`.
//
// The price is the type, as with Asio's own typed coroutines:
//   * a `loopscale::awaitable` can `co_await` only other
//     `loopscale::awaitable`s and operations started with
//     `loopscale::use_awaitable` (mixing in `asio::use_awaitable` does not
//     compile);
//   * `asio::co_spawn` needs a `LoopExecutor` (or a `loopscale::awaitable`
//     parent) to start one, not an `any_io_executor` or an `io_context`;
//   * `co_await asio::this_coro::executor` yields the loop's `LoopExecutor`.
//
// Everything else is Asio's: an exception leaves the coroutine through
// `co_spawn`'s completion handler, and `asio::redirect_error` wraps
// `loopscale::use_awaitable` as it wraps Asio's token. A coroutine's handlers
// run through the loop's executor and count as its busy time, an operation it
// awaits holds a suspension off like any pending operation, and spawning one
// on a suspended loop resumes it, as any submission does (loop_executor.hpp;
// tests/awaitable_test.cpp).

#ifndef LOOPSCALE_AWAITABLE_HPP_
#define LOOPSCALE_AWAITABLE_HPP_

#include <asio/awaitable.hpp>
#include <asio/use_awaitable.hpp>

#include "loopscale/loop_executor.hpp"

#if !defined(ASIO_HAS_CO_AWAIT)
#error "loopscale/awaitable.hpp needs C++20 coroutines (Asio's ASIO_HAS_CO_AWAIT)"
#endif

namespace loopscale {

template <class T = void>
using awaitable = asio::awaitable<T, LoopExecutor>;

// The completion token that makes an operation return a
// `loopscale::awaitable`.
inline constexpr asio::use_awaitable_t<LoopExecutor> use_awaitable{};

}  // namespace loopscale

#endif  // LOOPSCALE_AWAITABLE_HPP_
