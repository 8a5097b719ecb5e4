// -----------------------------------------------------------------------------
// job_scope.hpp
// -----------------------------------------------------------------------------
//
// Marking the job a loop is doing (job types: job_type.hpp). Three ways:
//
//   // A part of a handler, or of a coroutine between two co_awaits:
//   {
//     loopscale::JobScope job(kParse);
//     parser.feed(data, n);
//   }
//
//   // A whole completion handler, in Asio's idiom (like asio::bind_executor;
//   // the handler's associated executor, allocator and cancellation slot are
//   // kept):
//   timer.async_wait(loopscale::bind_job(kFlush, [&](std::error_code ec) { ... }));
//
//   // A coroutine's resumption: the completion token wrapped, the coroutine
//   // runs as the job from the operation's completion to its next co_await
//   // (the next operation's start, a speculative read or write, included):
//   n = co_await s.async_read_some(buf, loopscale::bind_job(kEcho, use_awaitable));
//
// The time from a scope's start to its end goes to its job type and the
// job's count grows by one; scopes nest (the inner job's time is its own,
// not the outer's, and the outer job resumes when the inner ends). Time in
// no scope goes to "other". Each start and end costs one clock read and a
// seqlock write; handlers that mark nothing cost nothing more than before.
//
// A coroutine marks the synchronous part between two co_awaits, never
// across one: while it waits the loop runs other handlers, which would be
// counted as its job (the loop resets its job to "other" whenever it goes
// idle, so such a mistake does not outlive the loop's next wait). A scope
// off a loop's thread (a thread of the user's, a test) does nothing.
//
// Thread-safety: a `JobScope` belongs to the thread that made it and must end
// on that thread.

#ifndef LOOPSCALE_JOB_SCOPE_HPP_
#define LOOPSCALE_JOB_SCOPE_HPP_

#include <cstddef>
#include <type_traits>
#include <utility>

#include <asio/associator.hpp>
#include <asio/async_result.hpp>

#include "loopscale/job_type.hpp"

namespace loopscale {

class ActivityRecorder;

class JobScope {
 public:
  // On a loop's thread, makes `job` the loop's job until the scope ends.
  explicit JobScope(JobType job) noexcept;
  // Returns the loop to the job it was doing before.
  ~JobScope();
  JobScope(const JobScope&) = delete;
  JobScope& operator=(const JobScope&) = delete;

 private:
  ActivityRecorder* recorder_;  // null off a loop's thread
  std::size_t previous_ = 0;
};

// A completion handler that runs `Handler` inside a `JobScope`: what
// `bind_job()` returns.
template <class Handler>
class JobBinder {
 public:
  template <class H>
  JobBinder(JobType job, H&& handler)
      : job_(job), handler_(std::forward<H>(handler)) {}

  template <class... Args>
  decltype(auto) operator()(Args&&... args) && {
    JobScope scope(job_);
    return std::move(handler_)(std::forward<Args>(args)...);
  }
  template <class... Args>
  decltype(auto) operator()(Args&&... args) & {
    JobScope scope(job_);
    return handler_(std::forward<Args>(args)...);
  }

  JobType job() const noexcept { return job_; }
  Handler& get() noexcept { return handler_; }
  const Handler& get() const noexcept { return handler_; }

 private:
  JobType job_;
  Handler handler_;
};

// Returns `handler` wrapped to run as job `job`.
template <class Handler>
JobBinder<std::decay_t<Handler>> bind_job(JobType job, Handler&& handler) {
  return JobBinder<std::decay_t<Handler>>(job, std::forward<Handler>(handler));
}

}  // namespace loopscale

// The wrapped handler's associated executor, allocator and cancellation slot
// are the binder's, as for Asio's own binders.
template <template <class, class> class Associator, class Handler, class Default>
struct asio::associator<Associator, loopscale::JobBinder<Handler>, Default> {
  using type = typename Associator<Handler, Default>::type;
  static type get(const loopscale::JobBinder<Handler>& b,
                  const Default& d = Default()) noexcept {
    return Associator<Handler, Default>::get(b.get(), d);
  }
};

namespace loopscale::detail {
// The handler type Asio's handler checks ask of a token's async_result,
// when the wrapped one has it (a handler's has; use_awaitable's need not).
template <class Result, class = void>
struct JobBinderHandlerType {};
template <class Result>
struct JobBinderHandlerType<Result, std::void_t<typename Result::completion_handler_type>> {
  using completion_handler_type = JobBinder<typename Result::completion_handler_type>;
};
}  // namespace loopscale::detail

// `bind_job(job, token)` as a completion token: the operation's handler,
// whatever the token makes of it, is wrapped to run as `job`.
template <class Token, class... Signatures>
struct asio::async_result<loopscale::JobBinder<Token>, Signatures...>
    : loopscale::detail::JobBinderHandlerType<asio::async_result<Token, Signatures...>> {
  template <class Initiation, class RawToken, class... Args>
  static auto initiate(Initiation&& initiation, RawToken&& token, Args&&... args) {
    return asio::async_initiate<Token, Signatures...>(
        [job = token.job(), init = std::forward<Initiation>(initiation)](
            auto&& handler, auto&&... init_args) mutable {
          std::move(init)(loopscale::bind_job(job, std::forward<decltype(handler)>(handler)),
                          std::forward<decltype(init_args)>(init_args)...);
        },
        std::forward<RawToken>(token).get(), std::forward<Args>(args)...);
  }
};

#endif  // LOOPSCALE_JOB_SCOPE_HPP_
