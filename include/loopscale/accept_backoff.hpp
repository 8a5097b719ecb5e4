// -----------------------------------------------------------------------------
// accept_backoff.hpp
// -----------------------------------------------------------------------------
//
// What an accept loop does after a failed accept (EMFILE or ENFILE at the
// descriptor limit, ENOBUFS, ENOMEM): wait before the next try, 1 ms at
// first, doubling up to 1 s, back to 1 ms once an accept succeeds. Without
// it an acceptor at the descriptor limit retries at once, for ever: a core
// at 100% and a loop that reads as fully busy to the scaler. It resumes by
// itself once descriptors are free. The `Listener` (listener.hpp) pauses so;
// an accept loop of your own can too:
//
//   loopscale::AcceptBackoff backoff;
//   for (;;) {
//     co_await acceptor.async_accept(socket, redirect_error(use_awaitable, ec));
//     if (ec) {
//       const auto pause = backoff.failed();
//       if (pause.first_of_run) report(ec);       // once per run of failures
//       timer.expires_after(pause.wait);
//       co_await timer.async_wait(redirect_error(use_awaitable, ec));
//       continue;
//     }
//     if (const auto failures = backoff.succeeded()) report_recovery(failures);
//     ...
//   }
//
// Thread-safety: a plain value; one per accept loop.

#ifndef LOOPSCALE_ACCEPT_BACKOFF_HPP_
#define LOOPSCALE_ACCEPT_BACKOFF_HPP_

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace loopscale {

class AcceptBackoff {
 public:
  static constexpr std::chrono::milliseconds kFirst{1};
  static constexpr std::chrono::milliseconds kLongest{1000};

  struct Pause {
    // How long to wait before the next accept.
    std::chrono::milliseconds wait;
    // True for the first failure after a success (or ever): the one to
    // report, so that a run of failures costs one line, not thousands.
    bool first_of_run;
  };

  // A failed accept: the pause before the next one.
  Pause failed() noexcept {
    const Pause p{next_, failures_ == 0};
    ++failures_;
    next_ = std::min(next_ * 2, kLongest);
    return p;
  }

  // A successful accept: returns how many failed before it (0 if none),
  // and starts over at kFirst.
  std::uint64_t succeeded() noexcept {
    next_ = kFirst;
    const std::uint64_t failures = failures_;
    failures_ = 0;
    return failures;
  }

  // True while the last accept failed.
  bool failing() const noexcept { return failures_ > 0; }

 private:
  std::chrono::milliseconds next_ = kFirst;
  std::uint64_t failures_ = 0;
};

}  // namespace loopscale

#endif  // LOOPSCALE_ACCEPT_BACKOFF_HPP_
