// A complete server on a loopscale pool: answers every line with "ok".
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>
#include <asio/write.hpp>
#include <loopscale/awaitable.hpp>  // loopscale::awaitable, use_awaitable
#include <loopscale/io.hpp>         // loopscale::tcp_socket, tcp_acceptor
#include <loopscale/loop_pool.hpp>
#include <loopscale/session.hpp>    // connections that follow the scaler

#include <array>
#include <cstdio>
#include <string>

// What a connection keeps across reads, and takes along when it moves.
struct Lines {
  std::array<char, 1024> buf;
  std::string partial;  // a line not yet complete
};

loopscale::awaitable<void> serve(loopscale::Session<Lines>& s) {
  while (!s.leaving()) {  // between two reads: where it may move to another loop
    std::error_code ec;
    const std::size_t n = co_await s.async_read_some(
        asio::buffer(s.state().buf), asio::redirect_error(loopscale::use_awaitable, ec));
    if (ec) co_return;  // closed, or on its way to another loop
    std::string& partial = s.state().partial;
    partial.append(s.state().buf.data(), n);
    std::string replies;
    for (auto eol = partial.find('\n'); eol != std::string::npos; eol = partial.find('\n')) {
      partial.erase(0, eol + 1);
      replies += "ok\n";
    }
    co_await asio::async_write(s.socket(), asio::buffer(replies),
                               asio::redirect_error(loopscale::use_awaitable, ec));
    if (ec) co_return;
  }
}

loopscale::awaitable<void> listen(loopscale::LoopPool& pool, loopscale::tcp_acceptor& acceptor) {
  for (;;) {
    loopscale::tcp_socket socket(pool.next());  // on an active loop
    co_await acceptor.async_accept(socket, loopscale::use_awaitable);
    loopscale::spawn_session(pool, std::move(socket), Lines{}, serve);
  }
}

int main() {
  auto pool = loopscale::LoopPool::create({});  // or load_pool_options("pool.toml")
  if (!pool.ok()) return std::fprintf(stderr, "%s\n", pool.status().ToString().c_str()), 1;
  (*pool)->start();
  loopscale::tcp_acceptor acceptor((*pool)->loop(0).get_executor(),
                                   {asio::ip::tcp::v4(), 7001});
  asio::co_spawn(acceptor.get_executor(), listen(**pool, acceptor), asio::detached);
  std::getchar();  // serve until Enter
  (*pool)->stop();
}
