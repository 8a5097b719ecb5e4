// -----------------------------------------------------------------------------
// registration.hpp
// -----------------------------------------------------------------------------
//
// `Registration` counts one connection (or any long-lived piece of work) on an
// `EventLoop` for as long as it lives. The scaling monitor reads the count:
// an idle loop that still holds registrations is drained (no new work, keeps
// serving) rather than suspended.
//
//   auto reg = pool.loop(i).register_connection();   // count is now +1
//   ...                                               // serve the socket
//   // reg goes out of scope: count is back
//
// Keep the registration next to the socket it stands for (in the same
// session object), so that the count drops when the connection closes.
//
// Thread-safety: creating, moving and destroying registrations is safe from
// any thread. A single `Registration` object is not itself synchronized. It
// must not outlive its loop.

#ifndef LOOPSCALE_REGISTRATION_HPP_
#define LOOPSCALE_REGISTRATION_HPP_

namespace loopscale {

class EventLoop;

class Registration {
 public:
  // An empty registration that counts nothing.
  Registration() noexcept = default;

  Registration(Registration&& other) noexcept : loop_(other.loop_) {
    other.loop_ = nullptr;
  }
  Registration& operator=(Registration&& other) noexcept {
    if (this != &other) {
      release();
      loop_ = other.loop_;
      other.loop_ = nullptr;
    }
    return *this;
  }
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;
  ~Registration() { release(); }

  // Drops the count now instead of at destruction. Idempotent.
  void release() noexcept;

  // Returns the loop counted on, or nullptr once released or moved from.
  EventLoop* loop() const noexcept { return loop_; }

  // True while this registration counts on a loop.
  explicit operator bool() const noexcept { return loop_ != nullptr; }

 private:
  friend class EventLoop;
  explicit Registration(EventLoop& loop) noexcept;

  EventLoop* loop_ = nullptr;
};

}  // namespace loopscale

#endif  // LOOPSCALE_REGISTRATION_HPP_
