// -----------------------------------------------------------------------------
// loadgen/histogram.hpp
// -----------------------------------------------------------------------------
//
// `LatencyHistogram`: counts of latencies in logarithmic buckets, each 2%
// wider than the one before, so any percentile is reported within 1% of the
// true sample (the bucket's geometric midpoint is at most sqrt(1.02) - 1 =
// 0.995% from any value in it). Fixed memory (about 11 KiB for 1 ns to
// 1000 s), O(1) record, mergeable. No C HdrHistogram is packaged in Debian;
// this is the small part of it a load generator needs.
//
//   LatencyHistogram h;
//   h.record(std::chrono::nanoseconds(1234567));
//   h.percentile(0.99);   // nanoseconds, within 1%
//
// Thread-safety: none; keep one per thread and merge().

#ifndef LOOPSCALE_EXAMPLES_LOADGEN_HISTOGRAM_HPP_
#define LOOPSCALE_EXAMPLES_LOADGEN_HISTOGRAM_HPP_

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>

namespace loopscale::loadgen {

class LatencyHistogram {
 public:
  static constexpr double kGrowth = 1.02;
  // Buckets up to kGrowth^kBuckets ns = about 1000 s; larger values land in
  // the last bucket (and max() still reports them exactly).
  static constexpr std::size_t kBuckets = 1400;

  void record(std::chrono::nanoseconds latency) {
    const double ns = std::max<double>(1.0, static_cast<double>(latency.count()));
    ++counts_[index(ns)];
    ++count_;
    sum_ += ns;
    max_ = std::max(max_, ns);
    min_ = count_ == 1 ? ns : std::min(min_, ns);
  }

  void merge(const LatencyHistogram& other) {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    if (other.count_ > 0) {
      min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
      max_ = std::max(max_, other.max_);
    }
    count_ += other.count_;
    sum_ += other.sum_;
  }

  void clear() { *this = LatencyHistogram(); }

  std::uint64_t count() const { return count_; }
  double mean_ns() const { return count_ ? sum_ / static_cast<double>(count_) : 0.0; }
  double max_ns() const { return max_; }
  double min_ns() const { return min_; }

  // The q-quantile (0 < q <= 1) in ns: the value of rank ceil(q * count),
  // within 1%; 0 when empty. Clamped to [min, max], which are exact.
  double percentile(double q) const {
    if (count_ == 0) return 0.0;
    const auto rank = static_cast<std::uint64_t>(
        std::max(1.0, std::ceil(q * static_cast<double>(count_))));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) {
        if (i == kBuckets - 1) return max_;  // the overflow bucket
        const double mid = std::pow(kGrowth, static_cast<double>(i) + 0.5);
        return std::clamp(mid, min_, max_);
      }
    }
    return max_;
  }

 private:
  static std::size_t index(double ns) {
    const auto i = static_cast<std::size_t>(std::log(ns) / std::log(kGrowth));
    return std::min(i, kBuckets - 1);
  }

  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t count_ = 0;
  double sum_ = 0.0;
  double max_ = 0.0;
  double min_ = 0.0;
};

}  // namespace loopscale::loadgen

#endif  // LOOPSCALE_EXAMPLES_LOADGEN_HISTOGRAM_HPP_
