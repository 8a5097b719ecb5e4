// A complete server on a loopscale pool: answers every line with "ok", and
// the line "metrics" with the pool's figures in the Prometheus format.
#include <asio/redirect_error.hpp>
#include <asio/write.hpp>
#include <loopscale/awaitable.hpp>  // loopscale::awaitable, use_awaitable
#include <loopscale/io.hpp>         // loopscale::tcp_socket, tcp_acceptor
#include <loopscale/listener.hpp>   // an acceptor that follows the scaler
#include <loopscale/loop_pool.hpp>
#include <loopscale/prometheus.hpp>  // the pool's figures for a scraper
#include <loopscale/session.hpp>    // connections that follow the scaler

#include <array>
#include <cstdio>
#include <string>

// What a connection keeps across reads, and takes along when it moves.
struct Lines {
  const loopscale::LoopPool* pool;
  std::array<char, 1024> buf{};
  std::string partial{};  // a line not yet complete
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
      const bool metrics = partial.compare(0, eol, "metrics") == 0;
      partial.erase(0, eol + 1);
      replies += metrics ? loopscale::prometheus::render(*s.state().pool) : "ok\n";
    }
    co_await asio::async_write(s.socket(), asio::buffer(replies),
                               asio::redirect_error(loopscale::use_awaitable, ec));
    if (ec) co_return;
  }
}

int main() {
  auto pool = loopscale::LoopPool::create({});  // or load_pool_options("pool.toml")
  if (!pool.ok()) return std::fprintf(stderr, "%s\n", pool.status().ToString().c_str()), 1;
  (*pool)->start();
  loopscale::LoopPool& p = **pool;
  // The acceptor moves to an active loop whenever its own leaves rotation.
  auto listener = loopscale::Listener::start(
      p, loopscale::tcp_acceptor(p.loop(0).get_executor(), {asio::ip::tcp::v4(), 7001}),
      [&p](loopscale::tcp_socket socket) {  // socket: on an active loop
        loopscale::spawn_session(p, std::move(socket), Lines{.pool = &p}, serve);
      });
  std::getchar();  // serve until Enter
  listener->close();
  listener->wait_closed();
  // Each connection finishes the line it is answering, then closes.
  p.close_connections(std::chrono::steady_clock::now() + std::chrono::seconds(5));
  p.stop();
}
