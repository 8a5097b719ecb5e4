// A complete server on a loopscale pool: answers every line with "ok".
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/read_until.hpp>
#include <asio/redirect_error.hpp>
#include <asio/write.hpp>
#include <loopscale/awaitable.hpp>  // loopscale::awaitable, use_awaitable
#include <loopscale/io.hpp>         // loopscale::tcp_socket, tcp_acceptor
#include <loopscale/loop_pool.hpp>

#include <cstdio>
#include <string>

loopscale::awaitable<void> session(loopscale::tcp_socket socket, loopscale::Registration) {
  std::string line;
  std::error_code ec;
  while (!ec) {
    const auto n = co_await asio::async_read_until(
        socket, asio::dynamic_buffer(line), '\n',
        asio::redirect_error(loopscale::use_awaitable, ec));
    if (ec) break;
    line.erase(0, n);
    co_await asio::async_write(socket, asio::buffer("ok\n", 3),
                               asio::redirect_error(loopscale::use_awaitable, ec));
  }
}

loopscale::awaitable<void> listen(loopscale::LoopPool& pool, loopscale::tcp_acceptor& acceptor) {
  for (;;) {
    loopscale::LoopExecutor loop = pool.next();  // an active loop
    loopscale::tcp_socket socket(loop);
    co_await acceptor.async_accept(socket, loopscale::use_awaitable);
    // The Registration keeps the loop from being suspended under its client.
    asio::co_spawn(loop, session(std::move(socket), loop.loop().register_connection()),
                   asio::detached);
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
