// Built against the installed library with `pkg-config loopscale` only.
#include <loopscale/loopscale.hpp>

#include <asio/post.hpp>

#include <atomic>
#include <cstdio>
#include <thread>

int main() {
  loopscale::EventLoop loop(0);
  loop.start();
  std::atomic<bool> ran{false};
  asio::post(loop.get_executor(), [&] { ran = true; });
  for (int i = 0; i < 30000 && !ran; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // poll interval
  }
  loop.stop();
  std::printf("consumer: handler %s, %llu handler(s) counted\n",
              ran ? "ran" : "did not run",
              static_cast<unsigned long long>(loop.activity().handlers));
  return ran && loop.activity().handlers == 1 ? 0 : 1;
}
