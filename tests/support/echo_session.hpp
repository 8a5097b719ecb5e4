// An echo session (loopscale/session.hpp) for the tests: reads, optionally
// keeps its loop busy (a long request), writes back what it read.

#ifndef LOOPSCALE_TESTS_SUPPORT_ECHO_SESSION_HPP_
#define LOOPSCALE_TESTS_SUPPORT_ECHO_SESSION_HPP_

#include <array>
#include <chrono>
#include <thread>
#include <utility>

#include <asio/redirect_error.hpp>
#include <asio/write.hpp>

#include "loopscale/session.hpp"

namespace loopscale::testing {

struct EchoState {
  std::array<char, 4096> buf{};
  // The next read makes the loop busy for this long before answering.
  std::chrono::milliseconds slow{0};
};

inline awaitable<void> echo(Session<EchoState>& s) {
  while (!s.leaving()) {
    std::error_code ec;
    const std::size_t n = co_await s.async_read_some(
        asio::buffer(s.state().buf), asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    if (s.state().slow > std::chrono::milliseconds(0)) {
      std::this_thread::sleep_for(std::exchange(s.state().slow, {}));
    }
    co_await asio::async_write(s.socket(), asio::buffer(s.state().buf, n),
                               asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
  }
}

}  // namespace loopscale::testing

#endif  // LOOPSCALE_TESTS_SUPPORT_ECHO_SESSION_HPP_
