// Built against the installed library with `pkg-config loopscale` only.
#include <loopscale/loopscale.hpp>

#include <asio/post.hpp>

#include <chrono>
#include <cstdio>
#include <future>

int main() {
  loopscale::EventLoop loop(0);
  loop.start();
  std::promise<void> done;
  asio::post(loop.get_executor(), [&] { done.set_value(); });
  const bool ran = done.get_future().wait_for(std::chrono::seconds(30)) ==
                   std::future_status::ready;
  loop.stop();
  std::printf("consumer: handler %s, %llu handler(s) counted\n",
              ran ? "ran" : "did not run",
              static_cast<unsigned long long>(loop.activity().handlers));
  return ran && loop.activity().handlers == 1 ? 0 : 1;
}
