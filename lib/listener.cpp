#include "loopscale/listener.hpp"

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>

#include "loopscale/session.hpp"  // detail::hand_over

namespace loopscale {

namespace {
constexpr std::chrono::milliseconds kFirstPause{1};
constexpr std::chrono::milliseconds kLongestPause{1000};
}  // namespace

// What the listener's coroutine owns, and its place in its loop's list.
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

  // Moves the acceptor to `target`. False if the listener is closing (it
  // stays, to close) or the descriptor could not be handed over (the
  // acceptor is closed: the listener ends).
  bool move_to(EventLoop& target) {
    {
      detail::MutexLock lock(handle->mu_);
      if (handle->closing_) return false;
      handle->home_ = &target;
    }
    detach();
    if (detail::hand_over(acceptor, target)) {
      if (on_error) on_error(std::make_error_code(std::errc::bad_file_descriptor));
      return false;
    }
    home = &target;
    arriving = true;
    return true;
  }

  // The socket for the next accept: on the loop the chooser picks now.
  tcp_socket next_socket() { return tcp_socket(pool->next()); }

  LoopPool* pool;
  EventLoop* home;
  EventLoop* listed_on = nullptr;
  std::optional<tcp_acceptor> acceptor;
  AcceptHandler on_accept;
  ErrorHandler on_error;
  std::shared_ptr<Listener> handle;
  detail::SessionHook hook;
  asio::cancellation_signal cancel;
  std::chrono::milliseconds pause = kFirstPause;
  bool failing = false;
  // Moved, and not yet running on the new loop.
  bool arriving = false;
};

std::shared_ptr<Listener> Listener::start(LoopPool& pool, tcp_acceptor acceptor,
                                          AcceptHandler on_accept,
                                          ErrorHandler on_error) {
  EventLoop& home = acceptor.get_executor().loop();
  std::shared_ptr<Listener> handle(new Listener(home));
  auto core = std::make_unique<Core>(pool, std::move(acceptor), std::move(on_accept),
                                     std::move(on_error), handle);
  asio::co_spawn(home.get_executor(), run(std::move(core)), asio::detached);
  return handle;
}

awaitable<void> Listener::run(std::unique_ptr<Core> core) {
  for (;;) {
    if (core->closing() || !core->acceptor->is_open()) co_return;  // ~Core closes
    const bool in_rotation = core->attach_and_check_rotation();
    if (std::exchange(core->arriving, false)) {
      // Counted once the listener is on its new loop's list: whoever reads
      // the count and then takes that loop out of rotation interrupts it.
      core->handle->moves_.fetch_add(1, std::memory_order_release);
    }
    if (!in_rotation) {
      // Out of rotation: go where work goes, if any loop is active.
      EventLoop* target = core->pool->rebalance_target(*core->home);
      if (target != nullptr && !target->stopping()) {
        if (!core->move_to(*target)) continue;  // closing, or closed
        const LoopExecutor ex = target->get_executor();
        asio::co_spawn(ex, run(std::move(core)), asio::detached);
        co_return;
      }
    }
    std::error_code ec;
    tcp_socket socket = core->next_socket();
    core->hook.waiting = true;
    co_await core->acceptor->async_accept(
        socket, asio::bind_cancellation_slot(core->cancel.slot(),
                                             asio::redirect_error(use_awaitable, ec)));
    core->hook.waiting = false;
    core->hook.interrupted = false;
    if (ec == asio::error::operation_aborted) continue;  // closing or leaving
    if (ec) {
      core->handle->failures_.fetch_add(1, std::memory_order_relaxed);
      if (!std::exchange(core->failing, true) && core->on_error) core->on_error(ec);
      steady_timer timer(core->home->get_executor(), core->pause);
      core->pause = std::min(core->pause * 2, kLongestPause);
      core->hook.waiting = true;
      co_await timer.async_wait(asio::bind_cancellation_slot(
          core->cancel.slot(), asio::redirect_error(use_awaitable, ec)));
      core->hook.waiting = false;
      core->hook.interrupted = false;
      continue;
    }
    core->failing = false;
    core->pause = kFirstPause;
    // Chosen when the accept began: if that loop has left rotation since,
    // the connection starts on one that is active now.
    EventLoop& chosen = socket.get_executor().loop();
    if (chosen.is_suspended() && !chosen.stopping()) {
      std::optional<tcp_socket> moved(std::move(socket));
      EventLoop& now = core->pool->next().loop();
      if (&now != &chosen && detail::hand_over(moved, now)) continue;  // closed
      socket = std::move(*moved);
    }
    core->handle->accepted_.fetch_add(1, std::memory_order_relaxed);
    try {
      core->on_accept(std::move(socket));
    } catch (...) {
      // One connection's failure must not end the listener: reported like a
      // handler's exception, and the accepting goes on.
      core->home->report_handler_exception();
    }
  }
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
