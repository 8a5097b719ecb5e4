#include "loopscale/detail/loop_thread.hpp"

namespace loopscale::detail {

constinit thread_local const EventLoop* this_thread_loop = nullptr;

}  // namespace loopscale::detail
