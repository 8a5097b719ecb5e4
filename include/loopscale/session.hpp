// -----------------------------------------------------------------------------
// session.hpp
// -----------------------------------------------------------------------------
//
// `Session<State>` is a long-lived connection that follows the scaler. When
// the pool wants it on another loop (its loop is draining, or holds more
// than its share of the connections after a scale-up: `UtilizationMonitor`,
// `ScalingPolicy::plan_moves`), it moves there at its next boundary with
// everything it owns: the socket (its descriptor re-registered with the
// target loop's reactor), its `Registration`, and its `State` (a partly read
// request, buffers). It then goes on as a coroutine of the target loop. Or,
// for protocols where reconnecting is cheap, it is told to close instead
// (`Rebalance::kClose`). Without this, a client that stays connected keeps
// its loop busy forever, and scaling only ever steers new connections.
//
//   struct Echo { std::array<char, 4096> buf; };
//
//   loopscale::awaitable<void> echo(loopscale::Session<Echo>& s) {
//     while (!s.leaving()) {                         // the boundary
//       std::error_code ec;
//       std::size_t n = co_await s.async_read_some(
//           asio::buffer(s.state().buf),
//           asio::redirect_error(loopscale::use_awaitable, ec));
//       if (ec) co_return;                           // closed, or to leave
//       co_await asio::async_write(s.socket(), asio::buffer(s.state().buf, n),
//                                  asio::redirect_error(loopscale::use_awaitable, ec));
//       if (ec) co_return;
//     }
//   }
//
//   // In the accept loop, once `socket` (created on pool.next()) is accepted:
//   loopscale::spawn_session(pool, std::move(socket), Echo{}, echo);
//
// The serve function (`echo`) is a plain loop over requests; the contract:
//
//   * It is called on the session's loop, and called again from the top
//     whenever the session continues: on the target loop after a move, or on
//     the same loop after an interrupted read that led nowhere. Everything
//     that must survive belongs in `state()`; locals (timers, a read
//     buffer whose bytes were consumed) are rebuilt.
//   * `leaving()` is the boundary: call it where no operation is pending on
//     the socket, typically before reading the next request. It costs one
//     relaxed atomic load and allocates nothing when no move is asked. When
//     it returns true, return at once without touching the socket.
//   * Read with `async_read_some()`: a session waiting there for input is
//     interrupted when a move is asked (its read completes with
//     `asio::error::operation_aborted`, having consumed nothing), so an idle
//     connection leaves too. A read whose bytes arrive while a move is
//     asked completes the same way: the session leaves with the bytes and
//     the first read on the target returns them, so a request queued behind
//     a saturated loop's backlog is served on the loop it moves to. Writes
//     are never interrupted, and a session inside a long request is asked
//     again at its next boundary.
//   * On any read or write error, return without closing or shutting down the
//     socket: the session closes it when it ends, and an interrupted read is
//     not the end. To end the connection, close the socket (or shut it down)
//     and return.
//   * Do not leave operations pending on the socket when returning.
//
// A connection accepted on a loop that has left rotation since the accept
// started (it chose its loop then) starts on an active loop instead.
//
// Moves never block the loop being left: the descriptor is released from
// its reactor and registered with the target's (two `epoll_ctl` calls), and
// the session is posted to the target loop. No byte is lost, duplicated or
// reordered: nothing is read or written during the hand-over, and what the
// kernel holds stays in the socket's buffers. A move that cannot happen (the
// target is stopping, or the kernel refuses the descriptor there: out of
// descriptors or memory) is counted (`EventLoop::moves_failed()`) and the
// session goes on where it is; no failure leaks its descriptor.
//
// An exception that escapes the serve function ends the session (its socket
// closes, its registration is released) and is reported on stderr like a
// handler's (event_loop.hpp).
//
// Thread-safety: a session is used only by its own coroutine. `spawn_session`
// may be called from any thread.

#ifndef LOOPSCALE_SESSION_HPP_
#define LOOPSCALE_SESSION_HPP_

#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/buffer.hpp>
#include <asio/post.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>

#include "loopscale/awaitable.hpp"
#include "loopscale/detail/hand_over.hpp"
#include "loopscale/event_loop.hpp"
#include "loopscale/io.hpp"
#include "loopscale/loop_pool.hpp"
#include "loopscale/rebalance.hpp"
#include "loopscale/registration.hpp"

namespace loopscale {

template <class State, class Socket = tcp_socket>
class Session;

// Starts serving `socket` (accepted, on one of `pool`'s loops) as a session
// on the socket's loop: `serve(session)` is an `awaitable<void>` over the
// connection's requests (see the header comment). `state` is the protocol's
// own state. The session counts as a connection on its loop (a
// `Registration`) while it lives, and closes the socket when it ends.
template <class State, class Socket, class Serve>
void spawn_session(LoopPool& pool, Socket socket, State state, Serve serve,
                   Rebalance mode = Rebalance::kMove);

namespace detail {
// The coroutine that runs a session: serve, then end, serve again, or go on
// as a fresh coroutine of the target loop.
template <class State, class Socket, class Serve>
awaitable<void> run_session(std::unique_ptr<Session<State, Socket>> session,
                            Serve serve);
}  // namespace detail

template <class State, class Socket>
class Session {
 public:
  using socket_type = Socket;

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session() { detach(); }

  // The connection's socket, on the loop the session runs on now. A move
  // replaces it: take the reference anew in each call of the serve function.
  Socket& socket() noexcept { return *socket_; }
  // The protocol's own state, which moves with the session.
  State& state() noexcept { return state_; }
  // The loop the session runs on now.
  EventLoop& loop() const noexcept { return *home_; }

  // The boundary. Returns true if the session is to leave its loop now (or,
  // when the server shuts down gracefully, to close): the serve function
  // must return at once. In `kClose` mode a move request makes
  // `close_requested()` true instead. One relaxed load when nothing is
  // asked.
  bool leaving() {
    if (home_->moves_requested() == 0) [[likely]] return false;
    return claim();
  }

  // True once the pool asked this connection to close (kClose: to leave its
  // loop; any mode: its loop is closing its connections, a graceful stop):
  // say so in the next response and close after it. A serve function that
  // answers pipelined requests in a batch should ask before each.
  bool close_requested() const noexcept { return close_requested_ || home_->closing(); }

  // Tells the session whether a request is partly read, which only the
  // serve function knows (a parser in the middle of a message). A session
  // asked to close (kClose, or the loop closing its connections) while it
  // waits for the rest of a request is then not closed but served again,
  // with `close_requested()` true: answer that request, say the connection
  // closes (HTTP's `Connection: close`), and close it. Without it, such a
  // session is closed with the request unanswered. Costs a store.
  void set_request_in_progress(bool in_progress) noexcept { in_request_ = in_progress; }

  // How many times this session moved to another loop.
  std::uint32_t moves() const noexcept { return moves_; }

  // Whether to serve the request about to be worked on, asked once per
  // request before its work (admission.hpp): false for the pool's overload
  // level of the requests while it sheds. A refused request gets a short
  // answer (HTTP: 503 with Retry-After), not its work. One relaxed load
  // while the pool is not overloaded.
  bool admit() noexcept { return pool_->admission().admit(home_->index()); }
  // False while the pool is overloaded past `keepalive_off_at`: answer the
  // request in hand with "the connection closes" (HTTP: Connection: close)
  // and close.
  bool keep_alive() const noexcept { return pool_->admission().keep_alive(); }
  // The idle timeout to give the connection between requests now: `normal`,
  // shorter while the pool is overloaded (`Admission::idle_timeout`).
  std::chrono::nanoseconds idle_timeout(std::chrono::nanoseconds normal) const noexcept {
    return pool_->admission().idle_timeout(normal);
  }

  // `socket().async_read_some(buffers, token)`, interrupted when the pool
  // asks connections to leave while it waits (then it completes with
  // `asio::error::operation_aborted`, having read nothing). The completion
  // runs on the session's loop.
  //
  // A read that completes while the pool asks connections to leave this
  // loop also completes with `operation_aborted`, having consumed nothing:
  // the session moves with the bytes it read, and the first read on the
  // target returns them, before anything still in the socket. A request
  // queued on a loop that the pool sheds is thus served where it goes, at
  // the cost of a move, not of waiting for the loop's backlog.
  template <class MutableBuffers, class CompletionToken>
  auto async_read_some(const MutableBuffers& buffers, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken,
                                void(std::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (!unread_.empty()) return read_unread(std::move(handler), b);
          hook_.waiting = true;
          socket_->async_read_some(
              b, asio::bind_cancellation_slot(
                     cancel_.slot(),
                     [this, b, h = std::move(handler)](std::error_code ec,
                                                       std::size_t n) mutable {
                       hook_.waiting = false;
                       // An interruption that came after the read had
                       // completed cut nothing short: forget it, or the
                       // session would never be interrupted again.
                       if (ec != asio::error::operation_aborted) {
                         hook_.interrupted = false;
                       }
                       if (!ec && home_->moves_requested() != 0 && leave_with(b, n)) [[unlikely]] {
                         std::move(h)(std::error_code(asio::error::operation_aborted), std::size_t{0});
                         return;
                       }
                       std::move(h)(ec, n);
                     }));
        },
        token, buffers);
  }

 private:
  template <class S, class K, class Serve>
  friend void spawn_session(LoopPool& pool, K socket, S state, Serve serve,
                            Rebalance mode);
  template <class S, class K, class Serve>
  friend awaitable<void> detail::run_session(
      std::unique_ptr<Session<S, K>> session, Serve serve);

  // What happens once the serve function has returned.
  enum class Next { kEnd, kServeAgain, kMoved };

  Session(LoopPool& pool, Socket socket, State state, Rebalance mode)
      : pool_(&pool),
        home_(&socket.get_executor().loop()),
        registration_(home_->register_connection()),
        socket_(std::move(socket)),
        state_(std::move(state)),
        mode_(mode) {
    hook_.owner = this;
    hook_.movable = mode != Rebalance::kOff;
    hook_.interrupt = [](void* owner) {
      static_cast<Session*>(owner)->cancel_.emit(asio::cancellation_type::total);
    };
  }

  // Joins the session list of the loop it runs on, on that loop's thread,
  // so that a move request can interrupt its reads.
  void attach() {
    listed_on_ = home_;
    listed_on_->sessions_.link(hook_);
  }
  void detach() {
    if (listed_on_ == nullptr) return;
    listed_on_->sessions_.unlink(hook_);
    listed_on_ = nullptr;
  }

  // Claims one of the loop's requested moves for this session if it has
  // somewhere to go (in kClose mode: marks it to close). True = leave now.
  bool claim() {
    if (home_->closing()) {  // the server is shutting down: in every mode
      close_requested_ = true;
      // What has arrived, and a request partly read, are answered first.
      return !input_pending() && !in_request_;
    }
    switch (mode_) {
      case Rebalance::kOff:
        return false;
      case Rebalance::kClose:
        if (!close_requested_ && home_->claim_move()) close_requested_ = true;
        return false;
      case Rebalance::kMove:
        break;
    }
    return target_ != nullptr || claim_target();
  }

  // kMove: picks where to go and claims one of the loop's requested moves.
  // False (and no claim) if there is nowhere to go or nothing left to claim.
  bool claim_target() {
    EventLoop* target = pool_->rebalance_target(*home_);
    if (target == nullptr || !home_->claim_move()) return false;
    target_ = target;
    return true;
  }

  // True if the peer has sent bytes the session has not read.
  bool input_pending() const {
    if (!unread_.empty()) return true;
    std::error_code ec;
    return socket_->available(ec) > 0 && !ec;
  }

  // A read that completed while moves are asked: claims one, if the session
  // has somewhere to go, and keeps the `n` bytes read into `b` to return
  // them from the first read on the target. True = the read is to report
  // `operation_aborted` and the session to leave (as if interrupted).
  template <class MutableBuffers>
  bool leave_with(const MutableBuffers& b, std::size_t n) {
    if (mode_ != Rebalance::kMove || home_->closing() || target_ != nullptr ||
        !claim_target()) {
      return false;
    }
    unread_.resize(n);
    asio::buffer_copy(asio::buffer(unread_), b, n);
    hook_.interrupted = true;
    return true;
  }

  // Completes a read from the bytes kept by `leave_with`, as a read of the
  // socket would, never inside the call that starts it.
  template <class Handler, class MutableBuffers>
  void read_unread(Handler handler, const MutableBuffers& b) {
    const std::size_t n = asio::buffer_copy(b, asio::buffer(unread_));
    unread_.erase(0, n);
    const auto ex = asio::get_associated_executor(handler, socket_->get_executor());
    asio::post(ex, [h = std::move(handler), n]() mutable { std::move(h)(std::error_code(), n); });
  }

  // Decides, after the serve function returned: does the session end, serve again
  // here (an interrupted read that led nowhere, a refused move), or has it
  // moved to another loop (its coroutine must continue there)?
  Next after_serve() {
    const bool interrupted = std::exchange(hook_.interrupted, false);
    if (!socket_->is_open()) return Next::kEnd;
    if (home_->closing()) {  // shutting down: close, once what arrived is answered
      return interrupted && (input_pending() || in_request_) ? Next::kServeAgain
                                                             : Next::kEnd;
    }
    if (interrupted && target_ == nullptr) {
      if (mode_ == Rebalance::kClose) {
        // A connection waiting for input, asked to leave: closed, unless it
        // waits for the rest of a request or a request has arrived, which
        // it answers first (with close_requested()): closing on unread
        // bytes would reset the connection. (One that claimed at its
        // boundary and then went idle is interrupted at a later request,
        // the monitor's next tick.)
        if (!close_requested_ && !home_->claim_move()) return Next::kServeAgain;
        close_requested_ = true;
        return in_request_ || input_pending() ? Next::kServeAgain : Next::kEnd;
      }
      if (!claim()) return Next::kServeAgain;
    }
    if (target_ == nullptr) return Next::kEnd;
    EventLoop* target = std::exchange(target_, nullptr);
    // Chosen at the boundary; if it has left rotation since, a move there
    // would take it back (work submitted to a draining loop cancels its
    // suspension): choose again.
    if (target->is_suspended() && !target->stopping()) {
      target = pool_->rebalance_target(*home_);
      if (target == nullptr || target->is_suspended()) return Next::kServeAgain;
    }
    if (move_to(*target)) return Next::kMoved;
    return socket_->is_open() ? Next::kServeAgain : Next::kEnd;
  }

  // Hands the descriptor and the registration to `target`. Returns false if
  // the target is stopping or the descriptor could not be handed over (out
  // of descriptors or memory): the session stays on its loop, or, if even
  // that loop could not take its descriptor back, its socket is closed.
  bool move_to(EventLoop& target) {
    if (target.stopping() || target.closing()) {
      home_->moves_failed_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    if (detail::hand_over(socket_, target)) return fail_move();
    home_->moves_out_.fetch_add(1, std::memory_order_relaxed);
    target.moves_in_.fetch_add(1, std::memory_order_relaxed);
    // The descriptor has left home's reactor: home stops counting it before
    // the target starts, so no reader sees it counted on both loops.
    registration_.release();
    registration_ = target.register_connection();
    home_ = &target;
    ++moves_;
    return true;
  }

  // A hand-over that failed left the socket open on home wherever the
  // kernel allowed (see detail::hand_over): the session then goes on here.
  bool fail_move() {
    home_->moves_failed_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }

  // The completion of a session's coroutine: an exception that escaped the
  // serve function is reported like a handler's, on the loop it ran on (the
  // session, with its socket and registration, is gone by then).
  static auto report_on(EventLoop& loop) {
    return [&loop](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (...) {
        loop.report_handler_exception();
      }
    };
  }

  LoopPool* pool_;
  // The loop the session runs on (its socket's and its registration's).
  EventLoop* home_;
  // The loop whose session list holds `hook_`, if any.
  EventLoop* listed_on_ = nullptr;
  // Declared before the socket, so released after it closes: a count of
  // zero means the descriptors are gone too.
  Registration registration_;
  std::optional<Socket> socket_;
  State state_;
  detail::SessionHook hook_;
  asio::cancellation_signal cancel_;
  // Claimed, not yet moved: where the session goes once serve returns.
  EventLoop* target_ = nullptr;
  // Bytes read on a loop the session left before serving them: the next
  // reads return them (see `async_read_some`).
  std::string unread_;
  Rebalance mode_;
  bool close_requested_ = false;
  bool in_request_ = false;  // set_request_in_progress()
  std::uint32_t moves_ = 0;
};

namespace detail {

template <class State, class Socket, class Serve>
awaitable<void> run_session(std::unique_ptr<Session<State, Socket>> session,
                            Serve serve) {
  using S = Session<State, Socket>;
  for (;;) {
    session->attach();
    co_await serve(*session);
    session->detach();
    switch (session->after_serve()) {
      case S::Next::kEnd:
        co_return;
      case S::Next::kServeAgain:
        continue;
      case S::Next::kMoved: {
        const LoopExecutor target = session->socket().get_executor();
        asio::co_spawn(target, run_session(std::move(session), std::move(serve)),
                       S::report_on(target.loop()));
        co_return;
      }
    }
  }
}

}  // namespace detail

template <class State, class Socket, class Serve>
void spawn_session(LoopPool& pool, Socket socket, State state, Serve serve,
                   Rebalance mode) {
  // An accept chooses the socket's loop when it starts, and the connection
  // may arrive much later: if that loop has left rotation since, the
  // connection starts on one that is active now, rather than waking a
  // suspended loop or landing on a draining one.
  std::optional<Socket> accepted(std::move(socket));
  EventLoop& chosen = accepted->get_executor().loop();
  if (chosen.is_suspended() && !chosen.stopping()) {
    EventLoop& now = pool.next().loop();
    // If it cannot be handed over, it starts where it is (or, closed, not at all).
    if (&now != &chosen && detail::hand_over(accepted, now) && !accepted->is_open()) return;
  }
  using S = Session<State, Socket>;
  const LoopExecutor ex = accepted->get_executor();
  std::unique_ptr<S> session(new S(pool, std::move(*accepted), std::move(state), mode));
  asio::co_spawn(ex, detail::run_session(std::move(session), std::move(serve)),
                 S::report_on(ex.loop()));
}

}  // namespace loopscale

#endif  // LOOPSCALE_SESSION_HPP_
