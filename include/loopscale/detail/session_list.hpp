// The sessions (loopscale/session.hpp) and listeners (loopscale/listener.hpp)
// that run on one EventLoop, so that the loop can interrupt the sessions
// waiting for input when the pool asks some of its connections to leave, and
// the listeners when it leaves rotation. Internal.
//
// Thread-safety: none. A list is touched only on its loop's thread (sessions
// attach and detach there, the interruption runs there as a handler), or by
// the thread destroying the loop once its thread is gone.

#ifndef LOOPSCALE_DETAIL_SESSION_LIST_HPP_
#define LOOPSCALE_DETAIL_SESSION_LIST_HPP_

#include <cstddef>

namespace loopscale::detail {

// A session's place in its loop's list.
struct SessionHook {
  SessionHook* prev = nullptr;
  SessionHook* next = nullptr;
  bool linked = false;
  // True while the session waits in its interruptible read.
  bool waiting = false;
  // Set by `interrupt` when the loop cut that wait short so that the
  // session can leave; the session clears it.
  bool interrupted = false;
  // False for a session that never moves (Rebalance::kOff): only a loop
  // closing its connections interrupts it.
  bool movable = true;
  // A listener (listener.hpp), not a session: interrupted when its loop
  // leaves rotation, never by move requests or a loop closing connections.
  bool listener = false;
  // Cancels the waiting read (the session's per-operation cancellation) of
  // the session at `owner`.
  void (*interrupt)(void* owner) = nullptr;
  void* owner = nullptr;
};

class SessionList {
 public:
  SessionList() = default;
  SessionList(const SessionList&) = delete;
  SessionList& operator=(const SessionList&) = delete;

  void link(SessionHook& h) noexcept {
    h.prev = nullptr;
    h.next = head_;
    if (head_ != nullptr) head_->prev = &h;
    head_ = &h;
    h.linked = true;
  }

  void unlink(SessionHook& h) noexcept {
    if (!h.linked) return;
    if (h.prev != nullptr) h.prev->next = h.next;
    if (h.next != nullptr) h.next->prev = h.prev;
    if (head_ == &h) head_ = h.next;
    h.prev = h.next = nullptr;
    h.linked = false;
  }

  // Interrupts up to `n` sessions that wait for input and were not
  // interrupted yet: movable ones, or every one when `closing`. Returns how
  // many it interrupted.
  std::size_t interrupt_waiting(std::size_t n, bool closing) noexcept {
    std::size_t done = 0;
    for (SessionHook* h = head_; h != nullptr && done < n; h = h->next) {
      if (h->waiting && !h->interrupted && !h->listener &&
          (h->movable || closing)) {
        h->interrupted = true;
        h->interrupt(h->owner);
        ++done;
      }
    }
    return done;
  }

  // Interrupts every listener that waits and was not interrupted yet.
  void interrupt_listeners() noexcept {
    for (SessionHook* h = head_; h != nullptr; h = h->next) {
      if (h->listener && h->waiting && !h->interrupted) {
        h->interrupted = true;
        h->interrupt(h->owner);
      }
    }
  }

 private:
  SessionHook* head_ = nullptr;
};

}  // namespace loopscale::detail

#endif  // LOOPSCALE_DETAIL_SESSION_LIST_HPP_
