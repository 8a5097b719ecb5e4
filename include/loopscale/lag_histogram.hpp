// -----------------------------------------------------------------------------
// lag_histogram.hpp
// -----------------------------------------------------------------------------
//
// `LagHistogram`: the scheduling lags the utilization monitor read, one per
// active executor per window, counted by fixed upper bounds, as a Prometheus
// histogram wants them (cumulative buckets, a count and a sum). The last
// probe's lag per loop is a gauge that a scrape samples; this keeps every
// reading, so `histogram_quantile()` over `rate()` gives the lag new work saw
// over any range, across loops and processes.
//
// The bounds are fixed (not configurable) so that histograms of every
// process of a service can be summed: from 50 us, what an idle loop answers
// in, to 500 ms, a loop far behind.
//
// A plain value; the monitor updates its own under its lock and hands out
// copies.

#ifndef LOOPSCALE_LAG_HISTOGRAM_HPP_
#define LOOPSCALE_LAG_HISTOGRAM_HPP_

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace loopscale {

struct LagHistogram {
  // Upper bounds (inclusive) of the buckets; `+Inf` is `count`.
  static constexpr std::array<std::chrono::nanoseconds, 7> kBounds = {
      std::chrono::microseconds(50),  std::chrono::microseconds(250),
      std::chrono::milliseconds(1),   std::chrono::milliseconds(5),
      std::chrono::milliseconds(25),  std::chrono::milliseconds(100),
      std::chrono::milliseconds(500)};

  // cumulative[b]: readings <= kBounds[b].
  std::array<std::uint64_t, kBounds.size()> cumulative{};
  std::uint64_t count = 0;
  std::chrono::nanoseconds sum{0};

  void observe(std::chrono::nanoseconds lag) {
    for (std::size_t b = 0; b < kBounds.size(); ++b) {
      if (lag <= kBounds[b]) ++cumulative[b];
    }
    ++count;
    sum += lag;
  }
};

}  // namespace loopscale

#endif  // LOOPSCALE_LAG_HISTOGRAM_HPP_
