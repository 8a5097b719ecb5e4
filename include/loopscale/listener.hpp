// -----------------------------------------------------------------------------
// listener.hpp
// -----------------------------------------------------------------------------
//
// `Listener` accepts connections for a `LoopPool` from a loop that is in
// rotation. An acceptor waiting in `async_accept` is work to Asio: a loop
// holding one and asked to suspend leaves rotation but keeps its thread for
// as long as the acceptor lives, which for a server is for ever. A listener
// follows the scaler instead: when its loop leaves rotation, its wait is cut
// short and its descriptor moves to an active loop (re-registered with that
// loop's reactor, as a `Session`'s socket moves), where it accepts on. The
// loop it left suspends like any other. Connections waiting in the kernel's
// backlog meanwhile are accepted on the new loop; none is lost.
//
//   loopscale::tcp_acceptor acceptor(pool.loop(0).get_executor(), endpoint);
//   auto listener = loopscale::Listener::start(
//       pool, std::move(acceptor), [&](loopscale::tcp_socket socket) {
//         loopscale::spawn_session(pool, std::move(socket), Echo{}, echo);
//       });
//   ...
//   listener->close();        // stop accepting
//   listener->wait_closed();  // the acceptor is closed
//   pool.stop();
//
// Each accepted socket is on the loop `pool.next()` chose when the accept
// began, or, if that loop has left rotation since, on one that is active
// when it completes. `on_accept` runs on the listener's loop, inside its
// handler: start the connection's work (spawn a session, post to the
// socket's executor) and return. An exception from it is reported on stderr
// as a handler's is, and the listener accepts on.
//
// A failed accept (EMFILE or ENFILE at the descriptor limit, ENOBUFS,
// ENOMEM) is retried after a pause (`AcceptBackoff`, accept_backoff.hpp: 1 ms
// at first, doubling up to 1 s, back to 1 ms after an accept succeeds): an
// acceptor at the descriptor limit would
// otherwise retry at once, for ever, a core at 100% and a loop that reads as
// saturated to the scaler. Any other failure of a step is one of these too:
// an exception (out of memory or descriptors where a socket or timer is
// made), or an acceptor that could not be moved to another loop (it stays
// where it is and tries again after the pause). `on_error`, if given, hears
// the first error of each run of failures, and the error that ends a
// listener whose descriptor neither moved nor could be kept (it then closes:
// the one failure the listener cannot outlive).
//
// While the pool is overloaded past `OverloadConfig::pause_accepting_at`
// (`Admission::accepting()` false, admission.hpp), the listener accepts
// nothing: it looks again every kOverloadCheckInterval, and new connections
// wait in the kernel's listen backlog meanwhile (a burst is absorbed there,
// and a client gets a fast refusal from the kernel once the backlog is full,
// rather than a slow one from a server that took its connection).
//
// Where it cannot follow: when no other loop is active (`min_loops = 0` and
// an idle pool), the listener stays, and its loop keeps its thread until a
// connection arrives (it then moves, if a loop is active). A listener on a loop that
// stops (`LoopPool::stop()` before `close()`) is destroyed with that loop's
// queue, closing the acceptor.
//
// Thread-safety: every member function may be called from any thread;
// `wait_closed()` not from one of the pool's loops.

#ifndef LOOPSCALE_LISTENER_HPP_
#define LOOPSCALE_LISTENER_HPP_

#include <atomic>
#include <cstdint>
#include <memory>
#include <system_error>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "loopscale/detail/mutex.hpp"
#include "loopscale/event_loop.hpp"
#include "loopscale/io.hpp"
#include "loopscale/loop_pool.hpp"

namespace loopscale {

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  using AcceptHandler = absl::AnyInvocable<void(tcp_socket)>;
  using ErrorHandler = absl::AnyInvocable<void(std::error_code)>;

  // Starts accepting on `acceptor`, which must be open, listening, and on
  // one of `pool`'s loops; each connection goes to `on_accept`. Returns the
  // listener's handle; dropping it does not stop the listener (`close()`
  // does). `pool` must outlive the listener's work (stop the pool after
  // `wait_closed()`, or let `stop()` end it).
  static std::shared_ptr<Listener> start(LoopPool& pool, tcp_acceptor acceptor,
                                         AcceptHandler on_accept,
                                         ErrorHandler on_error = nullptr);

  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  ~Listener() = default;

  // Asks the listener to stop accepting: its acceptor is closed on its loop.
  // Connections the kernel completed before that (the listen backlog, up to
  // 4096) are accepted and handed to `on_accept` first, not reset: on a
  // server stopping gracefully their sessions answer what has arrived and
  // close. A client that connects after the close is refused. Returns at
  // once; idempotent.
  void close();
  // Blocks until the acceptor is closed, after `close()`, or once the
  // listener's loop has stopped. Not on one of the pool's loops, and not
  // once the pool is destroyed (`closed()` and the counters may still be
  // read then).
  void wait_closed();
  // True once the acceptor is closed.
  bool closed() const;

  // The loop the listener accepts on now, or is moving to.
  EventLoop& loop() const;
  // Connections handed to `on_accept`; moves to another loop, each counted
  // once the listener runs there (then taking that loop out of rotation
  // interrupts it: acquire, against the count's release); accepts that
  // failed (each followed by a pause).
  std::uint64_t accepted() const noexcept {
    return accepted_.load(std::memory_order_relaxed);
  }
  std::uint64_t moves() const noexcept {
    return moves_.load(std::memory_order_acquire);
  }
  std::uint64_t accept_failures() const noexcept {
    return failures_.load(std::memory_order_relaxed);
  }
  // Times the listener looked at the pool's admission and held back
  // because the pool was overloaded.
  std::uint64_t overload_holds() const noexcept {
    return holds_.load(std::memory_order_relaxed);
  }

 private:
  struct Core;
  struct Steps;
  friend struct Core;
  friend struct Steps;
  explicit Listener(EventLoop& home) : home_(&home) {}

  // Cancels the accept or pause of the listener on `loop`, if it still runs
  // there. On `loop`'s thread.
  void interrupt_on(EventLoop& loop);

  mutable detail::Mutex mu_;
  absl::CondVar closed_cv_;
  EventLoop* home_ ABSL_GUARDED_BY(mu_);
  // The listener's state, while its pending operation owns it; only its
  // loop's thread dereferences it.
  Core* core_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> moves_{0};
  std::atomic<std::uint64_t> failures_{0};
  std::atomic<std::uint64_t> holds_{0};
};

}  // namespace loopscale

#endif  // LOOPSCALE_LISTENER_HPP_
