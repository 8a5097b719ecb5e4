#include "histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace loopscale::loadgen {
namespace {

double exact(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(std::max(1.0, std::ceil(q * v.size())));
  return v[rank - 1];
}

TEST(LatencyHistogramTest, PercentilesWithinOnePercentOnSkewedData) {
  std::mt19937_64 rng(42);
  // Latencies from 20 us to seconds, heavy-tailed, as a server under load.
  std::lognormal_distribution<double> dist(std::log(2e6), 1.2);
  std::vector<double> samples;
  LatencyHistogram h;
  for (int i = 0; i < 200000; ++i) {
    const double ns = std::round(std::clamp(dist(rng), 2e4, 5e9));
    samples.push_back(ns);
    h.record(std::chrono::nanoseconds(static_cast<std::int64_t>(ns)));
  }
  for (double q : {0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0}) {
    const double want = exact(samples, q);
    EXPECT_NEAR(h.percentile(q), want, want * 0.01) << "q = " << q;
  }
  EXPECT_EQ(h.count(), 200000u);
  EXPECT_EQ(h.max_ns(), *std::max_element(samples.begin(), samples.end()));
}

TEST(LatencyHistogramTest, MergeEqualsRecordingEverything) {
  LatencyHistogram a, b, all;
  for (int i = 1; i <= 1000; ++i) {
    const auto v = std::chrono::nanoseconds(i * 1000);
    (i % 2 ? a : b).record(v);
    all.record(v);
  }
  a.merge(b);
  for (double q : {0.5, 0.99}) EXPECT_EQ(a.percentile(q), all.percentile(q));
  EXPECT_EQ(a.count(), 1000u);
  EXPECT_EQ(a.min_ns(), 1000.0);
  EXPECT_EQ(a.max_ns(), 1e6);
}

TEST(LatencyHistogramTest, EmptyAndExtremes) {
  LatencyHistogram h;
  EXPECT_EQ(h.percentile(0.5), 0.0);
  h.record(std::chrono::nanoseconds(0));
  h.record(std::chrono::hours(1));  // beyond the last bucket: max is exact
  EXPECT_EQ(h.percentile(1.0), 3.6e12);
  EXPECT_NEAR(h.percentile(0.5), 1.0, 0.01);  // 0 counts as 1 ns
}

}  // namespace
}  // namespace loopscale::loadgen
