// -----------------------------------------------------------------------------
// job_type.hpp
// -----------------------------------------------------------------------------
//
// Job types name what a loop is busy with. A process registers a few names
// ("parse", "work", "metrics"); code running on a loop marks the job it is
// doing (`JobScope`, `bind_job()`: job_scope.hpp), and each loop accounts
// busy time and a count per job type beside its busy total, published
// wherever the loop's figures go (`LoopStats::jobs`, the shared memory,
// `loopscale-top`, `/metrics` with a `job` label). Busy time no job claims is
// the job type "other", which always exists, so a loop's busy time is the
// sum over its job types.
//
//   static const loopscale::JobType kParse =
//       loopscale::register_job_type("parse").value();
//   ...
//   {
//     loopscale::JobScope job(kParse);   // on a loop: parse's time from here
//     parser.feed(data);
//   }                                    // ... to here
//
// Bounds: at most `kMaxJobTypes` job types per process, "other" included;
// names of 1 to `kMaxJobTypeName` bytes of [a-z0-9_], starting with a
// letter (they become Prometheus label values, JSON keys and fixed-size
// fields of the shared memory). Registering a name again returns the same
// job type, so libraries and the application can each register what they
// use. Job types are never unregistered.
//
// Thread-safety: `register_job_type()` may be called from any thread (it
// takes a mutex; register at start-up, not per request). `JobType` is a
// trivially copyable value; `name()` and `job_type_names()` may be called
// from any thread at any time.

#ifndef LOOPSCALE_JOB_TYPE_HPP_
#define LOOPSCALE_JOB_TYPE_HPP_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace loopscale {

// Job types per process, "other" included.
inline constexpr std::size_t kMaxJobTypes = 16;
// The longest name, in bytes.
inline constexpr std::size_t kMaxJobTypeName = 23;
// The name of the job type of unmarked busy time.
inline constexpr std::string_view kOtherJobName = "other";

class JobType {
 public:
  // "other": busy time no job claims.
  constexpr JobType() = default;
  static constexpr JobType other() { return JobType(); }

  // 0 for "other", then 1, 2, ... in the order of registration.
  constexpr std::size_t id() const noexcept { return id_; }
  // The registered name.
  std::string_view name() const noexcept;

  friend constexpr bool operator==(JobType a, JobType b) noexcept {
    return a.id_ == b.id_;
  }

 private:
  friend absl::StatusOr<JobType> register_job_type(std::string_view name);
  explicit constexpr JobType(std::uint8_t id) : id_(id) {}
  std::uint8_t id_ = 0;
};

// Registers `name` and returns its job type, or the job type already
// registered under that name. InvalidArgument for a name out of the bounds
// above (or "other", which is taken); ResourceExhausted once `kMaxJobTypes`
// job types exist. Each error names the name and the bound.
absl::StatusOr<JobType> register_job_type(std::string_view name);

// The names of the job types registered so far, by id: [0] is "other".
std::vector<std::string> job_type_names();

}  // namespace loopscale

#endif  // LOOPSCALE_JOB_TYPE_HPP_
