// The shared vocabulary: one meaning of "draining" for loops and the monitor,
// and LoopState's values, which the shared-memory file stores.

#include "loopscale/loop_state.hpp"

#include "gtest/gtest.h"

namespace loopscale {
namespace {

TEST(LoopStateTest, DrainingMeansOutOfRotationWithItsThread) {
  EXPECT_EQ(monitor_status(LoopState::kActive), ExecutorStatus::kActive);
  EXPECT_EQ(monitor_status(LoopState::kDraining), ExecutorStatus::kDraining);
  EXPECT_EQ(monitor_status(LoopState::kSuspending), ExecutorStatus::kDraining);
  EXPECT_EQ(monitor_status(LoopState::kSuspended), ExecutorStatus::kSuspended);
  EXPECT_EQ(monitor_status(LoopState::kStopped), ExecutorStatus::kSuspended);
}

TEST(LoopStateTest, ValuesAndNamesAreTheFilesAndNeverChange) {
  const char* names[] = {"active", "draining", "suspending", "suspended", "stopped"};
  for (int v = 0; v < 5; ++v) {
    EXPECT_EQ(to_string(static_cast<LoopState>(v)), names[v]);
  }
  EXPECT_EQ(to_string(ExecutorStatus::kDraining), "draining");
}

}  // namespace
}  // namespace loopscale
