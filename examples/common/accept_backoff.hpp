// -----------------------------------------------------------------------------
// examples/common/accept_backoff.hpp
// -----------------------------------------------------------------------------
//
// What an accept loop does after a failed accept (EMFILE or ENFILE at the
// descriptor limit, ENOBUFS, ENOMEM): wait before trying again, 1 ms at
// first, doubling up to 1 s, back to 1 ms after an accept succeeds. Without
// it an acceptor at the descriptor limit retries at once, for ever: a core
// at 100% and a loop that reads as fully busy to the scaler. It resumes by
// itself once descriptors are free. One line on stderr per run of failures.
//
//   AcceptBackoff backoff("http_server");
//   for (;;) {
//     co_await acceptor.async_accept(socket, redirect_error(use_awaitable, ec));
//     if (ec) { co_await backoff.after_failure(ec, timer); continue; }
//     backoff.after_success();
//     ...
//   }
//
// Thread-safety: one per accept loop.

#ifndef LOOPSCALE_EXAMPLES_COMMON_ACCEPT_BACKOFF_HPP_
#define LOOPSCALE_EXAMPLES_COMMON_ACCEPT_BACKOFF_HPP_

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <system_error>

#include <asio/awaitable.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

namespace loopscale::examples {

class AcceptBackoff {
 public:
  static constexpr std::chrono::milliseconds kFirst{1};
  static constexpr std::chrono::milliseconds kMost{1000};

  explicit AcceptBackoff(std::string program) : program_(std::move(program)) {}

  // Waits on `timer` before the next accept, reporting the first failure of
  // a run on stderr.
  template <class Timer>
  asio::awaitable<void, typename Timer::executor_type> after_failure(std::error_code ec,
                                                                     Timer& timer) {
    if (failures_++ == 0) {
      std::fprintf(stderr, "%s: accept failed: %s; retrying with a backoff of up to %lld ms\n",
                   program_.c_str(), ec.message().c_str(),
                   static_cast<long long>(kMost.count()));
    }
    timer.expires_after(delay_);
    std::error_code ignored;
    co_await timer.async_wait(asio::redirect_error(
        asio::use_awaitable_t<typename Timer::executor_type>{}, ignored));
    delay_ = std::min(delay_ * 2, kMost);
  }

  void after_success() {
    if (failures_ > 0) {
      std::fprintf(stderr, "%s: accepting again after %llu failed accepts\n",
                   program_.c_str(), static_cast<unsigned long long>(failures_));
    }
    failures_ = 0;
    delay_ = kFirst;
  }

 private:
  std::string program_;
  std::chrono::milliseconds delay_ = kFirst;
  unsigned long long failures_ = 0;
};

}  // namespace loopscale::examples

#endif  // LOOPSCALE_EXAMPLES_COMMON_ACCEPT_BACKOFF_HPP_
