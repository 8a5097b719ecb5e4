// -----------------------------------------------------------------------------
// detail/asio_config.hpp
// -----------------------------------------------------------------------------
//
// Checks that this translation unit configures Asio the way libloopscale was
// built. Not for direct use: every loopscale header that uses Asio includes
// it.
//
// Asio's recycling allocator (the memory of every queued handler, operation
// and coroutine frame) calls `std::aligned_alloc`/`free` if
// ASIO_HAS_STD_ALIGNED_ALLOC is defined and `operator new`/`delete` if not,
// and Asio 1.22 decides that from a libstdc++ macro that only exists once a
// standard header has been included. A translation unit whose first include
// is an Asio header therefore chooses `operator new`, one that includes
// `<cstddef>` first chooses `aligned_alloc`, and memory allocated by one and
// freed by the other (a handler queued in your code, run and recycled by the
// loop in libloopscale) is undefined behaviour: AddressSanitizer stops on an
// alloc-dealloc mismatch. libloopscale is built with
// -DASIO_HAS_STD_ALIGNED_ALLOC=1, and `pkg-config --cflags loopscale` (and
// the Meson dependency) pass it on, so every translation unit agrees
// whatever its include order. Without those flags, this header stops the
// build instead of letting the two disagree.

#ifndef LOOPSCALE_DETAIL_ASIO_CONFIG_HPP_
#define LOOPSCALE_DETAIL_ASIO_CONFIG_HPP_

#include <cstddef>  // libstdc++'s configuration, for the check below

#include <asio/detail/config.hpp>

#if defined(_GLIBCXX_HAVE_ALIGNED_ALLOC) && !defined(ASIO_HAS_STD_ALIGNED_ALLOC)
#error "Asio is configured to allocate with operator new, libloopscale with std::aligned_alloc: compile with -DASIO_HAS_STD_ALIGNED_ALLOC=1 (pkg-config --cflags loopscale has it), see loopscale/detail/asio_config.hpp"
#endif

#endif  // LOOPSCALE_DETAIL_ASIO_CONFIG_HPP_
