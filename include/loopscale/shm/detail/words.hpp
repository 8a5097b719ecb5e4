// -----------------------------------------------------------------------------
// shm/detail/words.hpp
// -----------------------------------------------------------------------------
//
// Access to the 8-byte words of a shared mapping. Other processes write the
// same memory, so every access is atomic (`std::atomic_ref`, lock-free for
// aligned 64-bit words on every platform we build for): no load or store can
// tear, and a racing access is a stale value, never undefined behaviour.
// Offsets are in bytes and must be multiples of 8 (callers check offsets that
// come from the file before using them).
//
// A load through `atomic_ref` is a plain load on x86-64 and AArch64, so these
// also work on a PROT_READ mapping; stores and compare-and-swap need a
// writable one.

#ifndef LOOPSCALE_SHM_DETAIL_WORDS_HPP_
#define LOOPSCALE_SHM_DETAIL_WORDS_HPP_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace loopscale::shm::detail {

static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free,
              "shared-memory words must be lock-free across processes");

inline std::atomic_ref<std::uint64_t> word(const std::byte* base,
                                           std::size_t offset) noexcept {
  // atomic_ref needs a mutable object; loads through it do not write.
  auto* p = const_cast<std::byte*>(base + offset);  // NOLINT
  return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(p));
}

inline std::uint64_t load(const std::byte* base, std::size_t offset,
                          std::memory_order order =
                              std::memory_order_relaxed) noexcept {
  return word(base, offset).load(order);
}

inline void store(std::byte* base, std::size_t offset, std::uint64_t value,
                  std::memory_order order =
                      std::memory_order_relaxed) noexcept {
  word(base, offset).store(value, order);
}

// Copies `bytes` (a multiple of 8) out of the mapping, a word at a time.
inline void copy_out(void* dst, const std::byte* base, std::size_t offset,
                     std::size_t bytes) noexcept {
  auto* out = static_cast<std::byte*>(dst);
  for (std::size_t i = 0; i < bytes; i += 8) {
    const std::uint64_t v = load(base, offset + i);
    std::memcpy(out + i, &v, 8);
  }
}

// Copies `bytes` (a multiple of 8) into the mapping, a word at a time.
inline void copy_in(std::byte* base, std::size_t offset, const void* src,
                    std::size_t bytes) noexcept {
  const auto* in = static_cast<const std::byte*>(src);
  for (std::size_t i = 0; i < bytes; i += 8) {
    std::uint64_t v;
    std::memcpy(&v, in + i, 8);
    store(base, offset + i, v);
  }
}

}  // namespace loopscale::shm::detail

#endif  // LOOPSCALE_SHM_DETAIL_WORDS_HPP_
