// -----------------------------------------------------------------------------
// detail/seqlock.hpp
// -----------------------------------------------------------------------------
//
// A sequence lock: one writer publishes a group of 64-bit words that any
// number of readers copy out consistently, without the writer ever waiting.
// The words are `std::atomic<std::uint64_t>` accessed with relaxed ordering,
// so a reader that races a writer reads stale or mixed words (never undefined
// behaviour) and the sequence check tells it to retry.
//
// Protocol (Boehm, "Can seqlocks get along with programming language memory
// models?", 2012):
//
//   writer: seq = s + 1 (odd); release fence; store words; seq = s + 2 (release)
//   reader: s1 = seq (acquire); load words; acquire fence; s2 = seq;
//           the copy is consistent iff s1 is even and s1 == s2
//
// `Seq` is `std::atomic<std::uint64_t>` for in-process data, or
// `std::atomic_ref<std::uint64_t>` over a word of a shared mapping.
//
// Thread-safety: exactly one thread may write a given sequence at a time
// (callers guarantee it: the loop's own thread, or one publisher per slot).
// Reads may run from any thread, and only read memory, so they also work on a
// read-only mapping of another process's sequence. A writer in another process
// may die mid-section and leave the sequence odd for ever: readers of such
// data use the bounded `seqlock_try_read()`.

#ifndef LOOPSCALE_DETAIL_SEQLOCK_HPP_
#define LOOPSCALE_DETAIL_SEQLOCK_HPP_

#include <atomic>
#include <cstdint>
#include <thread>

namespace loopscale::detail {

// Opens a write section on `seq`. Only the single writer may call it.
template <class Seq>
inline void seqlock_write_begin(Seq&& seq) noexcept {
  seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
}

// Closes the write section opened by `seqlock_write_begin()`.
template <class Seq>
inline void seqlock_write_end(Seq&& seq) noexcept {
  seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

// Calls `read()` (which copies the protected words with relaxed loads) until
// it ran without a concurrent write, and returns how many attempts failed.
// A writer holds its section for a handful of stores, so the loop is short;
// after a few spins it yields in case the writer was preempted mid-section.
template <class Seq, class ReadFn>
int seqlock_read(const Seq& seq, ReadFn&& read) {
  // Spins before yielding; a write section is a few stores, so a reader that
  // still sees it open after this many tries is racing a descheduled writer.
  constexpr int kSpinsBeforeYield = 64;
  for (int failed = 0;; ++failed) {
    const std::uint64_t before = seq.load(std::memory_order_acquire);
    if ((before & 1) == 0) {
      read();
      std::atomic_thread_fence(std::memory_order_acquire);
      if (seq.load(std::memory_order_relaxed) == before) return failed;
    }
    if (failed >= kSpinsBeforeYield) std::this_thread::yield();
  }
}

// As `seqlock_read()`, but gives up after `max_attempts` failed attempts and
// returns false (the copy is then inconsistent and must not be used).
template <class Seq, class ReadFn>
bool seqlock_try_read(const Seq& seq, ReadFn&& read, int max_attempts) {
  constexpr int kSpinsBeforeYield = 64;
  for (int failed = 0; failed < max_attempts; ++failed) {
    const std::uint64_t before = seq.load(std::memory_order_acquire);
    if ((before & 1) == 0) {
      read();
      std::atomic_thread_fence(std::memory_order_acquire);
      if (seq.load(std::memory_order_relaxed) == before) return true;
    }
    if (failed >= kSpinsBeforeYield) std::this_thread::yield();
  }
  return false;
}

}  // namespace loopscale::detail

#endif  // LOOPSCALE_DETAIL_SEQLOCK_HPP_
