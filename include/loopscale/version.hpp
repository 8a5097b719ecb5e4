// -----------------------------------------------------------------------------
// version.hpp
// -----------------------------------------------------------------------------
//
// The library's version, as `meson.build` declares it (the build checks that
// the two agree), for build-info metrics and logs.

#ifndef LOOPSCALE_VERSION_HPP_
#define LOOPSCALE_VERSION_HPP_

#include <string_view>

namespace loopscale {

inline constexpr std::string_view kVersion = "0.1.0";

}  // namespace loopscale

#endif  // LOOPSCALE_VERSION_HPP_
