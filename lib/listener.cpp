#include "loopscale/listener.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <optional>
#include <system_error>
#include <utility>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/post.hpp>

#include "loopscale/accept_backoff.hpp"
#include "loopscale/detail/hand_over.hpp"

namespace loopscale {

namespace {
// Connections taken from the backlog per turn of the listener's handler.
// One per turn starves the accepts of a loop busy with other handlers (each
// turn waits behind a pass over the loop's queue), and so does 16 (Netty's
// server channels' read) when a load jumps to several times the pool's
// capacity on new connections: the backlog then grows in the kernel, where
// neither the lag nor the overload level sees it (a request's first wait
// was 130 ms at such a step; 70 ms with 64). 64 accepts hold the loop for
// a fraction of a millisecond.
constexpr int kAcceptBatch = 64;
// The most connections taken from the backlog when the listener closes
// (SOMAXCONN, the kernel's default bound on a listen backlog).
constexpr int kBacklogAtClose = 4096;
}  // namespace

// What the listener's pending operation owns, and its place in its loop's
// list.
struct Listener::Core {
  Core(LoopPool& p, tcp_acceptor a, AcceptHandler accept, ErrorHandler error,
       std::shared_ptr<Listener> h)
      : pool(&p),
        home(&a.get_executor().loop()),
        acceptor(std::move(a)),
        on_accept(std::move(accept)),
        on_error(std::move(error)),
        handle(std::move(h)) {
    hook.owner = this;
    hook.listener = true;
    hook.interrupt = [](void* owner) {
      static_cast<Core*>(owner)->cancel.emit(asio::cancellation_type::total);
    };
    detail::MutexLock lock(handle->mu_);
    handle->core_ = this;
  }

  ~Core() {
    detach();
    std::error_code ignored;
    if (acceptor) acceptor->close(ignored);
    detail::MutexLock lock(handle->mu_);
    handle->core_ = nullptr;
    handle->closed_ = true;
    handle->closed_cv_.SignalAll();
  }

  // Joins the list of the loop it runs on; then reads whether that loop is
  // in rotation (see EventLoop::listeners_ for why in this order).
  bool attach_and_check_rotation() {
    if (listed_on == nullptr) {
      listed_on = home;
      home->sessions_.link(hook);
      home->listeners_.fetch_add(1);
    }
    return !home->is_suspended();
  }
  void detach() {
    if (listed_on == nullptr) return;
    listed_on->sessions_.unlink(hook);
    listed_on->listeners_.fetch_sub(1);
    listed_on = nullptr;
  }

  bool closing() {
    detail::MutexLock lock(handle->mu_);
    return handle->closing_;
  }

  // Moves the acceptor to `target`. Returns why it did not: the listener
  // is closing (operation_aborted: it stays, to close), or the descriptor
  // could not be handed over (it stays on its loop, or, if that loop could
  // not take it back either, the acceptor is closed).
  std::error_code move_to(EventLoop& target) {
    {
      detail::MutexLock lock(handle->mu_);
      if (handle->closing_) return asio::error::operation_aborted;
      handle->home_ = &target;
    }
    detach();
    if (const std::error_code ec = detail::hand_over(acceptor, target)) {
      detail::MutexLock lock(handle->mu_);
      handle->home_ = home;  // a close() meanwhile is read before the next accept
      return ec;
    }
    home = &target;
    arriving = true;
    return {};
  }

  LoopPool* pool;
  EventLoop* home;
  EventLoop* listed_on = nullptr;
  std::optional<tcp_acceptor> acceptor;
  AcceptHandler on_accept;
  ErrorHandler on_error;
  std::shared_ptr<Listener> handle;
  detail::SessionHook hook;
  asio::cancellation_signal cancel;
  // The socket of the accept in progress; the pause after a failed one.
  std::optional<tcp_socket> peer;
  std::optional<steady_timer> timer;
  AcceptBackoff backoff;
  // Moved, and not yet running on the new loop.
  bool arriving = false;
};

// The listener's steps. Each pending operation's handler owns the core: if
// the loop's queue is destroyed with it (the pool stopped first), the core
// goes too, closing the acceptor. Completion handlers rather than a
// coroutine, so that the library builds where C++20 coroutines do not (the
// clang of the fuzzing build).
//
// A step that throws (out of descriptors or memory where a socket, timer or
// handler is made) does not end the listener: the failure counts as a failed
// accept, reported once per run of failures, and the listener tries again
// after its pause. Each step hands the core on only in its last statement, so
// the core is still there to pause with.
struct Listener::Steps {
  using CorePtr = std::unique_ptr<Core>;

  static void next(CorePtr core) { guarded(std::move(core), &next_step); }

  // The top of the loop: ends, moves, or starts the next accept.
  static void next_step(CorePtr& core) {
    Core& c = *core;
    if (c.closing() && c.acceptor->is_open()) accept_backlog(c, kBacklogAtClose);
    if (c.closing() || !c.acceptor->is_open()) return core.reset();  // ~Core closes
    const bool in_rotation = c.attach_and_check_rotation();
    if (std::exchange(c.arriving, false)) {
      // Counted once the listener is on its new loop's list: whoever reads
      // the count and then takes that loop out of rotation interrupts it.
      c.handle->moves_.fetch_add(1, std::memory_order_release);
    }
    if (!in_rotation) {
      // Out of rotation: go where work goes, if any loop is active.
      EventLoop* target = c.pool->rebalance_target(*c.home);
      if (target != nullptr && !target->stopping()) {
        if (const std::error_code ec = c.move_to(*target)) {
          if (ec == asio::error::operation_aborted) return next_step(core);  // closing
          if (!c.acceptor->is_open()) {  // lost with its loop's reactor: the end
            if (c.on_error) c.on_error(ec);
            return core.reset();
          }
          return pause(std::move(core), ec);  // stayed here; tried again later
        }
        asio::post(target->get_executor(),
                   [core = std::move(core)]() mutable { next(std::move(core)); });
        return;
      }
    }
    if (!c.pool->admission().accepting()) {
      c.handle->holds_.fetch_add(1, std::memory_order_relaxed);
      return wait(std::move(core), kOverloadCheckInterval);
    }
    if (detail::descriptor_fault_for_testing()) {
      throw std::system_error(EMFILE, std::generic_category(),
                              "eventfd_select_interrupter (test hook)");
    }
    c.peer.emplace(c.pool->next());
    c.hook.waiting = true;
    c.acceptor->async_accept(
        *c.peer, asio::bind_cancellation_slot(
                     c.cancel.slot(), [core = std::move(core)](std::error_code ec) mutable {
                       accepted(std::move(core), ec);
                     }));
  }

  static void accepted(CorePtr core, std::error_code ec) {
    guarded(std::move(core), [ec](CorePtr& core) { accepted_step(core, ec); });
  }

  static void accepted_step(CorePtr& core, std::error_code ec) {
    Core& c = *core;
    c.hook.waiting = false;
    c.hook.interrupted = false;
    if (ec == asio::error::operation_aborted) return next_step(core);  // closing or leaving
    if (ec) return pause(std::move(core), ec);
    c.backoff.succeeded();
    // Chosen when the accept began: if that loop has left rotation since,
    // the connection starts on one that is active now (or, if it cannot be
    // handed over, where it is).
    EventLoop& chosen = c.peer->get_executor().loop();
    if (chosen.is_suspended() && !chosen.stopping()) {
      EventLoop& now = c.pool->next().loop();
      if (&now != &chosen && detail::hand_over(c.peer, now) && !c.peer->is_open()) {
        return next_step(core);  // neither handed over nor kept: closed
      }
    }
    hand_to_user(c, std::move(*c.peer));
    c.peer.reset();
    // The rest of the batch, unless the pool is too loaded to take more.
    if (c.pool->admission().accepting()) accept_backlog(c, kAcceptBatch - 1);
    next_step(core);
  }

  static void hand_to_user(Core& c, tcp_socket peer) {
    c.handle->accepted_.fetch_add(1, std::memory_order_relaxed);
    try {
      c.on_accept(std::move(peer));
    } catch (...) {
      // One connection's failure must not end the listener: reported like a
      // handler's exception, and the accepting goes on.
      c.home->report_handler_exception();
    }
  }

  // Takes up to `most` connections waiting in the backlog, each on the loop
  // `next()` picks, without waiting: a failure (the backlog is empty, or
  // EMFILE) ends it. After an accept, the rest of a turn's batch (the
  // asynchronous accept that follows meets a failure as usual); when
  // closing, everything the kernel has already completed, which closing
  // the acceptor would reset (their clients were told the server is there
  // and may have sent a request; on a server stopping gracefully their
  // sessions answer it and close). Bounded either way, so that a flood
  // cannot hold the loop or the close up.
  static void accept_backlog(Core& c, int most) {
    std::error_code ec;
    // Asio's own non-blocking mode covers its asynchronous operations only;
    // without the user's, a synchronous accept would wait on an empty
    // backlog. Set each time: a move makes a new acceptor object.
    c.acceptor->non_blocking(true, ec);
    for (int i = 0; i < most && !ec; ++i) {
      tcp_socket peer(c.pool->next());
      c.acceptor->accept(peer, ec);
      if (!ec) hand_to_user(c, std::move(peer));
    }
  }

  // After a failed accept: waits, interruptibly, before the next one.
  static void pause(CorePtr core, std::error_code ec) {
    Core& c = *core;
    c.peer.reset();
    c.handle->failures_.fetch_add(1, std::memory_order_relaxed);
    const AcceptBackoff::Pause backoff = c.backoff.failed();
    if (backoff.first_of_run && c.on_error) c.on_error(ec);
    wait(std::move(core), backoff.wait);
  }

  // Waits, interruptibly (a move or a close cuts it short), before the
  // next step.
  static void wait(CorePtr core, std::chrono::nanoseconds how_long) {
    Core& c = *core;
    c.timer.emplace(c.home->get_executor(), how_long);
    c.hook.waiting = true;
    c.timer->async_wait(asio::bind_cancellation_slot(
        c.cancel.slot(), [core = std::move(core)](std::error_code) mutable {
          core->hook.waiting = false;
          core->hook.interrupted = false;
          next(std::move(core));
        }));
  }

  template <class Step>
  static void guarded(CorePtr core, Step step) {
    try {
      step(core);
    } catch (...) {
      const std::error_code ec = detail::error_code_of(std::current_exception());
      if (core == nullptr) {
        // Thrown while Asio took the handler that owned the core: nothing
        // is left to go on with.
        std::fprintf(stderr, "loopscale: a listener ended: %s\n", ec.message().c_str());
        return;
      }
      try {
        pause(std::move(core), ec);
      } catch (...) {
        std::fprintf(stderr, "loopscale: a listener ended: %s\n", ec.message().c_str());
      }
    }
  }
};

std::shared_ptr<Listener> Listener::start(LoopPool& pool, tcp_acceptor acceptor,
                                          AcceptHandler on_accept,
                                          ErrorHandler on_error) {
  EventLoop& home = acceptor.get_executor().loop();
  std::shared_ptr<Listener> handle(new Listener(home));
  auto core = std::make_unique<Core>(pool, std::move(acceptor), std::move(on_accept),
                                     std::move(on_error), handle);
  asio::post(home.get_executor(),
             [core = std::move(core)]() mutable { Steps::next(std::move(core)); });
  return handle;
}

void Listener::interrupt_on(EventLoop& loop) {
  detail::MutexLock lock(mu_);
  if (core_ != nullptr && home_ == &loop) core_->cancel.emit(asio::cancellation_type::total);
}

void Listener::close() {
  EventLoop* home = nullptr;
  {
    detail::MutexLock lock(mu_);
    if (closing_ || closed_) return;
    closing_ = true;
    home = home_;
  }
  // Straight to the io_context: closing must not take a loop that left
  // rotation back into it. If the listener moves meanwhile, it reads
  // closing_ before its next accept.
  asio::post(home->context(), [self = shared_from_this(), home] {
    self->interrupt_on(*home);
  });
}

void Listener::wait_closed() {
  detail::MutexLock lock(mu_);
  // A stopping loop does not signal: the listener then ends with the loop's
  // queue, so the wait looks again now and then.
  while (!closed_ && !home_->stopping()) {
    mu_.wait_with_timeout(closed_cv_, absl::Milliseconds(10));
  }
}

bool Listener::closed() const {
  detail::MutexLock lock(mu_);
  return closed_;
}

EventLoop& Listener::loop() const {
  detail::MutexLock lock(mu_);
  return *home_;
}

}  // namespace loopscale
