#include "trace.hpp"

#include <cmath>
#include <fstream>
#include <iterator>
#include <memory>
#include <numbers>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace loopscale::sim {
namespace {

// Low and high levels of the step traces.
constexpr double kLow = 0.45;
constexpr double kHigh = 4.6;
constexpr double kMid = 2.9;
// Connections of the long-lived traces: a few per loop at the peak.
constexpr std::size_t kLongLivedConnections = 64;

// A trace that is `low` until `up`, `high` until `down`, `low` to the end.
Trace step(std::string name, std::string description, double low, double high,
           double up, double down, double duration) {
  return Trace{std::move(name), std::move(description), duration,
               [=](double t) { return t >= up && t < down ? high : low; },
               {up, down}};
}

absl::string_view sv(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace

std::vector<Trace> builtin_traces() {
  std::vector<Trace> out;
  out.push_back(step("step", "0.45 -> 4.6 at 20 s, back to 0.45 at 60 s",
                     kLow, kHigh, 20, 60, 100));
  out.push_back(step("mid_step", "0.45 -> 2.9 at 20 s, back at 60 s", kLow,
                     kMid, 20, 60, 100));
  out.push_back(Trace{
      "ramp", "0.3 -> 6 over 120 s, back to 0.3 over 120 s", 260,
      [](double t) {
        if (t < 10) return 0.3;
        if (t < 130) return 0.3 + 5.7 * (t - 10) / 120;
        if (t < 250) return 6.0 - 5.7 * (t - 130) / 120;
        return 0.3;
      },
      {}});
  out.push_back(Trace{
      "sine", "3 +- 2.55, period 2 min, 6 min", 360,
      [](double t) {
        return 3.0 - 2.55 * std::cos(2 * std::numbers::pi * t / 120);
      },
      {}});
  out.push_back(Trace{
      "spikes", "0.6 with 1 s spikes to 4 every 20 s", 200,
      [](double t) {
        const double phase = std::fmod(t, 20.0);
        return t >= 10 && phase >= 10 && phase < 11 ? 4.0 : 0.6;
      },
      {}});
  out.push_back(Trace{
      "flap", "1.45 +- 0.2 (around 2 loops x 0.75), period 4 s", 120,
      [](double t) {
        return 1.45 + 0.2 * std::sin(2 * std::numbers::pi * t / 4);
      },
      {}});
  out.push_back(Trace{
      "diurnal", "a day in 10 min: night 0.4, morning ramp, noon 5.2, evening 3",
      600,
      [](double t) {
        // Hours of a compressed day: 25 s each.
        const double h = t / 25.0;
        const double day = 0.5 - 0.5 * std::cos(2 * std::numbers::pi *
                                                  (h - 4) / 24);  // 0..1
        const double noon = std::exp(-std::pow((h - 12.5) / 1.5, 2));
        const double evening = 0.4 * std::exp(-std::pow((h - 19) / 2.0, 2));
        return 0.4 + 3.2 * day * day + 1.6 * noon + 1.2 * evening;
      },
      {}});
  // At 0.45 the pool runs one loop: every connection is on it when the
  // step comes.
  Trace ll = step("step_long_lived",
                  "the step, its demand from 64 long-lived connections, all "
                  "connected before it",
                  kLow, kHigh, 20, 60, 140);
  ll.connections = kLongLivedConnections;
  out.push_back(std::move(ll));
  return out;
}

absl::StatusOr<Trace> find_trace(std::string_view name) {
  std::vector<std::string> names;
  for (Trace& t : builtin_traces()) {
    if (t.name == name) return std::move(t);
    names.push_back(t.name);
  }
  return absl::NotFoundError(absl::StrCat("unknown trace \"", sv(name),
                                          "\"; the traces are ",
                                          absl::StrJoin(names, ", ")));
}

absl::StatusOr<Trace> parse_csv_trace(std::string_view text,
                                      std::string_view source) {
  auto times = std::make_shared<std::vector<double>>();
  auto levels = std::make_shared<std::vector<double>>();
  int line_no = 0;
  bool header_seen = false;
  for (absl::string_view line : absl::StrSplit(sv(text), '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    std::vector<absl::string_view> cells = absl::StrSplit(line, ',');
    auto where = [&] { return absl::StrCat(sv(source), ":", line_no, ": "); };
    if (cells.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          where(), "expected 2 columns time_s,demand, got ", cells.size()));
    }
    double t = 0;
    double d = 0;
    const bool ok_t = absl::SimpleAtod(absl::StripAsciiWhitespace(cells[0]), &t);
    const bool ok_d = absl::SimpleAtod(absl::StripAsciiWhitespace(cells[1]), &d);
    if (!ok_t || !ok_d) {
      if (times->empty() && !header_seen) {  // a header
        header_seen = true;
        continue;
      }
      return absl::InvalidArgumentError(absl::StrCat(
          where(), "\"", line, "\" is not two numbers"));
    }
    if (!std::isfinite(t) || !std::isfinite(d) || d < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          where(), "time and demand must be finite and demand >= 0, got \"",
          line, "\""));
    }
    if (times->empty() ? t != 0 : t <= times->back()) {
      return absl::InvalidArgumentError(absl::StrCat(
          where(), "time ", t,
          times->empty() ? " : the first row must be at time 0"
                         : " is not after the previous row's"));
    }
    times->push_back(t);
    levels->push_back(d);
  }
  if (times->size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        sv(source), ": needs at least 2 rows of time_s,demand"));
  }
  Trace out;
  out.name = "csv";
  out.description = std::string(source);
  out.duration = times->back();
  for (std::size_t i = 1; i < times->size(); ++i) {
    if (std::abs((*levels)[i] - (*levels)[i - 1]) >= 0.5) {
      out.edges.push_back((*times)[i]);
    }
  }
  out.demand = [times, levels](double t) {
    const auto it = std::upper_bound(times->begin(), times->end(), t);
    const auto i = static_cast<std::size_t>(
        std::max<std::ptrdiff_t>(0, std::distance(times->begin(), it) - 1));
    return (*levels)[i];
  };
  return out;
}

absl::StatusOr<Trace> load_csv_trace(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  return parse_csv_trace(text, path);
}

}  // namespace loopscale::sim
