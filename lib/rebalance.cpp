#include "loopscale/rebalance.hpp"

#include "absl/strings/str_cat.h"

namespace loopscale {

std::string_view to_string(Rebalance mode) noexcept {
  switch (mode) {
    case Rebalance::kMove:
      return "move";
    case Rebalance::kClose:
      return "close";
    case Rebalance::kOff:
      return "off";
  }
  return "unknown";
}

absl::StatusOr<Rebalance> parse_rebalance(std::string_view text) {
  for (Rebalance mode : {Rebalance::kMove, Rebalance::kClose, Rebalance::kOff}) {
    if (text == to_string(mode)) return mode;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("rebalance mode \"", absl::string_view(text.data(), text.size()),
                   "\": expected \"move\", \"close\" or \"off\""));
}

}  // namespace loopscale
