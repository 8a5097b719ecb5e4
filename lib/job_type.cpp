#include "loopscale/job_type.hpp"

#include <algorithm>
#include <array>
#include <atomic>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "loopscale/detail/mutex.hpp"
#include "loopscale/detail/test_hooks.hpp"

namespace loopscale {
namespace {

// Names are written once, before the count that publishes them is
// release-stored, and never change: readers take the count with acquire and
// read the names below it without a lock.
struct Registry {
  detail::Mutex mu;
  std::array<std::array<char, kMaxJobTypeName + 1>, kMaxJobTypes> names{};
  std::atomic<std::size_t> count{1};  // "other" is always there
};

Registry& registry() {
  static Registry* r = [] {
    auto* reg = new Registry;  // never destroyed: loops may outlive statics
    std::copy(kOtherJobName.begin(), kOtherJobName.end(), reg->names[0].begin());
    return reg;
  }();
  return *r;
}

std::string_view name_at(const Registry& r, std::size_t id) {
  return std::string_view(r.names[id].data());
}

// Debian's Abseil has its own string_view.
absl::string_view view(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status check_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxJobTypeName) {
    return absl::InvalidArgumentError(
        absl::StrCat("job type name \"", view(name), "\" is ", name.size(),
                     " bytes; it must be 1 to ", kMaxJobTypeName));
  }
  const bool letter_first = name[0] >= 'a' && name[0] <= 'z';
  const bool valid = std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
  if (!letter_first || !valid) {
    return absl::InvalidArgumentError(
        absl::StrCat("job type name \"", view(name),
                     "\" must be [a-z0-9_] starting with a letter"));
  }
  if (name == kOtherJobName) {
    return absl::InvalidArgumentError(
        "job type name \"other\" is taken: it is the time no job claims");
  }
  return absl::OkStatus();
}

}  // namespace

std::string_view JobType::name() const noexcept {
  return name_at(registry(), id_);
}

absl::StatusOr<JobType> register_job_type(std::string_view name) {
  if (absl::Status s = check_name(name); !s.ok()) return s;
  Registry& r = registry();
  detail::MutexLock lock(r.mu);
  const std::size_t n = r.count.load(std::memory_order_relaxed);
  for (std::size_t id = 1; id < n; ++id) {
    if (name_at(r, id) == name) return JobType(static_cast<std::uint8_t>(id));
  }
  if (n == kMaxJobTypes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "cannot register job type \"", view(name), "\": at most ", kMaxJobTypes,
        " job types per process (\"other\" included) are registered already"));
  }
  std::copy(name.begin(), name.end(), r.names[n].begin());
  r.count.store(n + 1, std::memory_order_release);
  return JobType(static_cast<std::uint8_t>(n));
}

std::vector<std::string> job_type_names() {
  const Registry& r = registry();
  const std::size_t n = r.count.load(std::memory_order_acquire);
  std::vector<std::string> out;
  out.reserve(n);
  for (std::size_t id = 0; id < n; ++id) out.emplace_back(name_at(r, id));
  return out;
}

namespace detail {
void reset_job_types_for_testing() {
  Registry& r = registry();
  MutexLock lock(r.mu);
  for (std::size_t id = 1; id < kMaxJobTypes; ++id) r.names[id].fill('\0');
  r.count.store(1, std::memory_order_release);
}
}  // namespace detail

}  // namespace loopscale
