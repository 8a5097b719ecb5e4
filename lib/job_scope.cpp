#include "loopscale/job_scope.hpp"

#include "loopscale/activity.hpp"
#include "loopscale/clock.hpp"
#include "loopscale/event_loop.hpp"

namespace loopscale {

JobScope::JobScope(JobType job) noexcept
    : recorder_(detail::this_thread_recorder()) {
  if (recorder_ != nullptr) {
    previous_ = recorder_->switch_job(job.id(), Clock::now(), /*count=*/true);
  }
}

JobScope::~JobScope() {
  // A scope that ends on another thread than it began (held across a
  // co_await of a coroutine that moved) must not write another loop's
  // recorder; that loop resets its job when it next goes idle.
  if (recorder_ != nullptr && recorder_ == detail::this_thread_recorder()) {
    recorder_->switch_job(previous_, Clock::now(), /*count=*/false);
  }
}

}  // namespace loopscale
