// AcceptBackoff: the pause after failed accepts, shared by the Listener and
// accept loops of one's own.

#include "loopscale/accept_backoff.hpp"

#include <chrono>

#include "gtest/gtest.h"

namespace loopscale {
namespace {

using std::chrono::milliseconds;

TEST(AcceptBackoffTest, DoublesFromOneMillisecondUpToOneSecond) {
  AcceptBackoff b;
  EXPECT_FALSE(b.failing());
  const milliseconds expected[] = {milliseconds(1),   milliseconds(2),   milliseconds(4),
                                   milliseconds(8),   milliseconds(16),  milliseconds(32),
                                   milliseconds(64),  milliseconds(128), milliseconds(256),
                                   milliseconds(512), milliseconds(1000), milliseconds(1000)};
  for (milliseconds want : expected) EXPECT_EQ(b.failed().wait, want);
  EXPECT_TRUE(b.failing());
}

TEST(AcceptBackoffTest, OnlyTheFirstFailureOfARunIsToBeReported) {
  AcceptBackoff b;
  EXPECT_TRUE(b.failed().first_of_run);
  EXPECT_FALSE(b.failed().first_of_run);
  EXPECT_FALSE(b.failed().first_of_run);
  EXPECT_EQ(b.succeeded(), 3u);
  EXPECT_TRUE(b.failed().first_of_run);
}

TEST(AcceptBackoffTest, ASuccessStartsOver) {
  AcceptBackoff b;
  for (int i = 0; i < 5; ++i) b.failed();
  EXPECT_EQ(b.succeeded(), 5u);
  EXPECT_FALSE(b.failing());
  EXPECT_EQ(b.succeeded(), 0u);
  EXPECT_EQ(b.failed().wait, AcceptBackoff::kFirst);
}

}  // namespace
}  // namespace loopscale
