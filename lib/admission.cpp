#include "loopscale/admission.hpp"

#include <algorithm>
#include <cmath>

namespace loopscale {

Admission::Admission(std::size_t loops)
    : loops_(loops), slots_(std::make_unique<Slot[]>(loops)) {}

std::uint64_t Admission::encode(double level, const OverloadConfig& config) {
  if (!(level > 0.0)) return 0;  // NaN too
  level = std::min(level, 1.0);
  std::uint64_t s = static_cast<std::uint64_t>(std::llround(level * kScale));
  if (s == 0) return 0;
  if (level >= config.keepalive_off_at) s |= kKeepAliveOff;
  if (level >= config.pause_accepting_at) s |= kPaused;
  return s;
}

bool Admission::admit_slow(std::size_t loop, std::uint64_t state) noexcept {
  if (loop >= loops_) return true;
  Slot& slot = slots_[loop];
  slot.credit += state & kLevelMask;
  if (slot.credit < kScale) return true;
  slot.credit -= kScale;
  slot.refused.store(slot.refused.load(std::memory_order_relaxed) + 1,
                     std::memory_order_relaxed);
  return false;
}

std::uint64_t Admission::refused() const noexcept {
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < loops_; ++i) n += slots_[i].refused.load(std::memory_order_relaxed);
  return n;
}

bool Admission::injected() const {
  detail::MutexLock lock(mu_);
  return injected_;
}

void Admission::store(double level, const OverloadConfig& config) {
  state_.store(encode(level, config), std::memory_order_relaxed);
}

void Admission::set(double level, const OverloadConfig& config) {
  detail::MutexLock lock(mu_);
  if (!injected_) store(level, config);
}

void Admission::inject(double level, const OverloadConfig& config) {
  detail::MutexLock lock(mu_);
  injected_ = true;
  store(level, config);
}

void Admission::clear_injection() {
  detail::MutexLock lock(mu_);
  injected_ = false;
  state_.store(0, std::memory_order_relaxed);
}

}  // namespace loopscale
