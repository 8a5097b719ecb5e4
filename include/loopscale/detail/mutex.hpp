// -----------------------------------------------------------------------------
// detail/mutex.hpp
// -----------------------------------------------------------------------------
//
// `detail::Mutex` is an `absl::Mutex` that ThreadSanitizer can see through.
//
// Debian's Abseil is not built with ThreadSanitizer, so TSan does not observe
// the synchronization inside `absl::Mutex` and reports races between critical
// sections that the mutex does order. This wrapper tells TSan about the
// happens-before edge each lock and unlock create (`__tsan_acquire` /
// `__tsan_release` on the mutex's address); in any other build it is exactly
// an `absl::Mutex`. Clang's thread-safety analysis checks it like one
// (`ABSL_GUARDED_BY(mu_)` works).
//
// Use `MutexLock` for scopes and `wait()` with an `absl::CondVar` (not
// `absl::Mutex::Await`, whose conditions Abseil evaluates on other threads).
//
// Thread-safety: as `absl::Mutex`.

#ifndef LOOPSCALE_DETAIL_MUTEX_HPP_
#define LOOPSCALE_DETAIL_MUTEX_HPP_

#include "absl/base/config.h"
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

#ifdef ABSL_HAVE_THREAD_SANITIZER
#include <sanitizer/tsan_interface.h>
#endif

namespace loopscale::detail {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    mu_.Lock();
    acquired();
  }
  void unlock() ABSL_UNLOCK_FUNCTION() {
    releasing();
    mu_.Unlock();
  }

  // Atomically unlocks, waits for `cv` to be signalled, and relocks. Callers
  // loop on their condition, as with any condition variable.
  void wait(absl::CondVar& cv) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    releasing();
    cv.Wait(&mu_);
    acquired();
  }
  // As `wait`, but returns after `timeout` at the latest (true if it timed
  // out), for conditions that can also become true without a signal.
  bool wait_with_timeout(absl::CondVar& cv, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    releasing();
    const bool timed_out = cv.WaitWithTimeout(&mu_, timeout);
    acquired();
    return timed_out;
  }

 private:
  void acquired() {
#ifdef ABSL_HAVE_THREAD_SANITIZER
    __tsan_acquire(this);
#endif
  }
  void releasing() {
#ifdef ABSL_HAVE_THREAD_SANITIZER
    __tsan_release(this);
#endif
  }

  absl::Mutex mu_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_.lock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  Mutex& mu_;
};

}  // namespace loopscale::detail

#endif  // LOOPSCALE_DETAIL_MUTEX_HPP_
