#include "loopscale/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include <toml++/toml.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace loopscale {
namespace {

// Debian's Abseil has its own absl::string_view, distinct from
// std::string_view, and StrCat only takes the former.
absl::string_view sv(std::string_view s) { return {s.data(), s.size()}; }

// A problem with one field: the field's name (without table prefix) and what
// is wrong with it, e.g. {"patience_cycles", "patience_cycles = 0: must be at
// least 1"}. The TOML reader adds the table and the line.
struct FieldError {
  std::string_view field;
  std::string message;
  // The TOML table the field lives in ("scaling", "metrics" or "pool").
  std::string_view table = "scaling";

  // Returns the message with the table prefixed: "metrics.service is empty".
  std::string qualified() const { return absl::StrCat(sv(table), ".", message); }
};

// The largest loop count accepted: each loop is a thread, and a pool of more
// loops than this is a typo (a window in nanoseconds written as max_loops).
constexpr std::size_t kMaxLoopCount = 4096;

std::string show(double v) { return absl::StrFormat("%g", v); }

std::string join(std::initializer_list<std::string_view> words) {
  std::string out;
  for (std::string_view w : words) {
    if (!out.empty()) out += ", ";
    out += w;
  }
  return out;
}

std::optional<FieldError> check_threshold(std::string_view field, double v) {
  if (std::isnan(v) || v < 0.0 || v > 1.0) {
    return FieldError{field, absl::StrCat(sv(field), " = ", show(v),
                                          ": must be a number in [0, 1]")};
  }
  return std::nullopt;
}

std::optional<FieldError> check_overload(const OverloadConfig& c) {
  for (auto [field, v] : {std::pair<std::string_view, double>{"utilization_start",
                                                               c.utilization_start},
                          {"max_shed", c.max_shed},
                          {"keepalive_off_at", c.keepalive_off_at},
                          {"pause_accepting_at", c.pause_accepting_at}}) {
    if (auto e = check_threshold(field, v)) {
      e->table = "overload";
      return e;
    }
  }
  if (c.lag_target < kMinOverloadLagTarget || c.lag_target > kMaxWindow) {
    return FieldError{
        "lag_target",
        absl::StrCat("lag_target = ", absl::FormatDuration(absl::FromChrono(c.lag_target)),
                     ": must be between ",
                     absl::FormatDuration(absl::FromChrono(kMinOverloadLagTarget)), " and ",
                     absl::FormatDuration(absl::FromChrono(kMaxWindow))),
        "overload"};
  }
  return std::nullopt;
}

std::optional<FieldError> check_scaling(const ScalingConfig& c) {
  if (auto e = check_threshold("scale_down_threshold", c.scale_down_threshold))
    return e;
  if (auto e = check_threshold("scale_up_threshold", c.scale_up_threshold))
    return e;
  if (c.scale_down_threshold >= c.scale_up_threshold) {
    return FieldError{
        "scale_down_threshold",
        absl::StrCat("scale_down_threshold = ", show(c.scale_down_threshold),
                     ": must be below scale_up_threshold = ",
                     show(c.scale_up_threshold))};
  }
  if (c.max_loops > kMaxLoopCount) {
    return FieldError{"max_loops",
                      absl::StrCat("max_loops = ", c.max_loops,
                                   ": must be at most ", kMaxLoopCount)};
  }
  if (c.min_loops > kMaxLoopCount) {
    return FieldError{"min_loops",
                      absl::StrCat("min_loops = ", c.min_loops,
                                   ": must be at most ", kMaxLoopCount)};
  }
  if (c.max_loops != 0 && c.min_loops > c.max_loops) {
    return FieldError{"min_loops",
                      absl::StrCat("min_loops = ", c.min_loops,
                                   ": must not exceed max_loops = ",
                                   c.max_loops)};
  }
  if (c.patience_cycles == 0) {
    return FieldError{"patience_cycles",
                      "patience_cycles = 0: must be at least 1"};
  }
  if (c.window < kMinWindow || c.window > kMaxWindow) {
    return FieldError{
        "window",
        absl::StrCat("window = ",
                     absl::FormatDuration(absl::FromChrono(c.window)),
                     ": must be between ",
                     absl::FormatDuration(absl::FromChrono(kMinWindow)), " and ",
                     absl::FormatDuration(absl::FromChrono(kMaxWindow)))};
  }
  struct Bounded {
    std::string_view field;
    std::size_t value, most;
  };
  for (const Bounded& b : {Bounded{"patience_cycles", c.patience_cycles, kMaxCycles},
                           {"scale_down_cooldown_cycles", c.scale_down_cooldown_cycles,
                            kMaxCycles},
                           {"max_ramp_up_step", c.max_ramp_up_step, kMaxLoopCount},
                           {"max_ramp_down_step", c.max_ramp_down_step, kMaxLoopCount}}) {
    if (b.value > b.most) {
      return FieldError{b.field, absl::StrCat(sv(b.field), " = ", b.value,
                                              ": must be at most ", b.most)};
    }
  }
  if (c.max_ramp_down_step == 0) {
    return FieldError{"max_ramp_down_step",
                      "max_ramp_down_step = 0: must be at least 1"};
  }
  if (!(c.target_utilization > 0.0 && c.target_utilization <= 1.0)) {
    return FieldError{"target_utilization",
                      absl::StrCat("target_utilization = ",
                                   show(c.target_utilization),
                                   ": must be in (0, 1]")};
  }
  if (c.fast_up_interval != std::chrono::nanoseconds::zero() &&
      (c.fast_up_interval < kMinFastUpInterval || c.fast_up_interval > kMaxWindow)) {
    return FieldError{
        "fast_up_interval",
        absl::StrCat("fast_up_interval = ",
                     absl::FormatDuration(absl::FromChrono(c.fast_up_interval)),
                     ": must be 0 (off) or between ",
                     absl::FormatDuration(absl::FromChrono(kMinFastUpInterval)), " and ",
                     absl::FormatDuration(absl::FromChrono(kMaxWindow)))};
  }
  if (c.max_moves_per_window == 0 ||
      c.max_moves_per_window > kMaxMovesPerWindow) {
    return FieldError{"max_moves_per_window",
                      absl::StrCat("max_moves_per_window = ",
                                   c.max_moves_per_window, ": must be in 1..",
                                   kMaxMovesPerWindow,
                                   " (rebalance_connections = false turns "
                                   "moves off)")};
  }
  return check_overload(c.overload);
}

std::optional<FieldError> check_name(std::string_view field,
                                     std::string_view value) {
  if (value.empty()) {
    return FieldError{field, absl::StrCat(sv(field), " is empty")};
  }
  if (value.size() > kMaxNameLength) {
    return FieldError{field, absl::StrCat(sv(field), " = \"", sv(value), "\": ",
                                          value.size(), " bytes, at most ",
                                          kMaxNameLength)};
  }
  for (char ch : value) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) {
      return FieldError{field, absl::StrCat(sv(field),
                                            " contains a control character")};
    }
  }
  return std::nullopt;
}

std::optional<FieldError> check_pool(const PoolOptions& o) {
  if (auto e = check_name("name", o.name)) {
    e->table = "pool";
    return e;
  }
  if (auto e = check_scaling(o.scaling)) return e;
  if (!o.metrics.service.empty()) {
    if (auto e = check_name("service", o.metrics.service)) {
      e->table = "metrics";
      return e;
    }
  }
  if (const std::uint32_t m = o.metrics.file_mode;
      (m & ~std::uint32_t{0666}) != 0 || (m & 0600) != 0600) {
    return FieldError{"file_mode",
                      absl::StrFormat("file_mode = 0o%o: must give the owner "
                                      "read and write and have no bits "
                                      "outside 0o666 (e.g. 0o600, 0o660)",
                                      m),
                      "metrics"};
  }
  if (!o.metrics.shm_path.empty() && o.metrics.shm_path.front() != '/') {
    return FieldError{"shm_path",
                      absl::StrCat("shm_path = \"", o.metrics.shm_path,
                                   "\": must be an absolute path"),
                      "metrics"};
  }
  return std::nullopt;
}

// ---- TOML ------------------------------------------------------------------

// Reads one table of the document. Each setter records the key's line so
// that cross-field errors found afterwards still point at a line.
class TableReader {
 public:
  TableReader(std::string_view table_name, const toml::table& table)
      : name_(table_name), table_(table) {}

  // Returns an error naming the first key not in `known`.
  absl::Status reject_unknown(std::initializer_list<std::string_view> known) {
    for (auto&& [key, node] : table_) {
      bool found = false;
      for (std::string_view k : known) found = found || key.str() == k;
      if (!found) {
        return error(key.str(), node,
                     absl::StrCat("unknown key; expected one of: ", join(known)));
      }
    }
    return absl::OkStatus();
  }

  absl::Status read_count(std::string_view key, std::size_t& out) {
    const toml::node* node = table_.get(key);
    if (node == nullptr) return absl::OkStatus();
    auto v = node->value_exact<std::int64_t>();
    if (!v) return type_error(key, *node, "a non-negative integer");
    if (*v < 0) {
      return error(key, *node, absl::StrCat("= ", *v, ": must not be negative"));
    }
    out = static_cast<std::size_t>(*v);
    return absl::OkStatus();
  }

  // Reads permission bits; TOML writes them as an octal literal (0o600).
  absl::Status read_mode(std::string_view key, std::uint32_t& out) {
    const toml::node* node = table_.get(key);
    if (node == nullptr) return absl::OkStatus();
    auto v = node->value_exact<std::int64_t>();
    if (!v) return type_error(key, *node, "an octal integer such as 0o600");
    if (*v < 0 || *v > 07777) {
      return error(key, *node,
                   absl::StrCat("= ", *v, ": not a permission mode; write an "
                                "octal integer such as 0o600"));
    }
    out = static_cast<std::uint32_t>(*v);
    return absl::OkStatus();
  }

  absl::Status read_fraction(std::string_view key, double& out) {
    const toml::node* node = table_.get(key);
    if (node == nullptr) return absl::OkStatus();
    // An integer is accepted where a float is expected (`1` for 1.0).
    std::optional<double> v;
    if (node->is_floating_point()) {
      v = node->value_exact<double>();
    } else if (auto i = node->value_exact<std::int64_t>()) {
      v = static_cast<double>(*i);
    }
    if (!v) return type_error(key, *node, "a number");
    out = *v;
    return absl::OkStatus();
  }

  // Reads a bool or a string: a value of exactly TOML type T.
  template <class T>
  absl::Status read_exact(std::string_view key, T& out,
                          std::string_view expected) {
    const toml::node* node = table_.get(key);
    if (node == nullptr) return absl::OkStatus();
    auto v = node->value_exact<T>();
    if (!v) return type_error(key, *node, expected);
    out = *std::move(v);
    return absl::OkStatus();
  }
  absl::Status read_bool(std::string_view key, bool& out) {
    return read_exact(key, out, "true or false");
  }
  absl::Status read_string(std::string_view key, std::string& out) {
    return read_exact(key, out, "a string");
  }

  absl::Status read_duration(std::string_view key,
                             std::chrono::nanoseconds& out) {
    const toml::node* node = table_.get(key);
    if (node == nullptr) return absl::OkStatus();
    auto v = node->value_exact<std::string>();
    if (!v) return type_error(key, *node, "a duration string such as \"500ms\"");
    auto d = parse_duration(*v);
    if (!d.ok()) {
      return error(key, *node,
                   absl::StrCat("= \"", *v, "\": ", d.status().message()));
    }
    out = *d;
    return absl::OkStatus();
  }

  absl::Status read_signal(std::string_view key, ScaleSignal& out) {
    const toml::node* node = table_.get(key);
    if (node == nullptr) return absl::OkStatus();
    auto v = node->value_exact<std::string>();
    constexpr std::string_view kExpected =
        "\"per_loop\", \"average\" or \"target\"";
    if (!v) return type_error(key, *node, kExpected);
    if (*v == "per_loop") {
      out = ScaleSignal::kPerLoop;
    } else if (*v == "average") {
      out = ScaleSignal::kAverage;
    } else if (*v == "target") {
      out = ScaleSignal::kTarget;
    } else {
      return error(key, *node,
                   absl::StrCat("= \"", *v, "\": expected ", sv(kExpected)));
    }
    return absl::OkStatus();
  }

  // Turns a validation error about `field` into one with this table's prefix
  // and the key's line, if the key was in the document.
  absl::Status located(const FieldError& e) const {
    const toml::node* node = table_.get(e.field);
    std::string where =
        node != nullptr
            ? absl::StrCat(" (line ", node->source().begin.line, ")")
            : std::string(" (default value)");
    return absl::InvalidArgumentError(absl::StrCat(e.qualified(), where));
  }

 private:
  absl::Status error(std::string_view key, const toml::node& node,
                     std::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(sv(name_), ".", sv(key), " at line ",
                     node.source().begin.line, ": ", sv(what)));
  }
  absl::Status type_error(std::string_view key, const toml::node& node,
                          std::string_view expected) const {
    return error(key, node,
                 absl::StrCat("expected ", sv(expected), ", got ",
                              sv(toml::impl::node_type_friendly_names[
                                  static_cast<std::size_t>(node.type())])));
  }

  std::string_view name_;
  const toml::table& table_;
};

const toml::table kEmptyTable;

}  // namespace

std::string_view to_string(ScaleSignal signal) noexcept {
  switch (signal) {
    case ScaleSignal::kPerLoop:
      return "per_loop";
    case ScaleSignal::kAverage:
      return "average";
    case ScaleSignal::kTarget:
      return "target";
  }
  return "unknown";
}

absl::Status validate(const ScalingConfig& config) {
  if (auto e = check_scaling(config)) {
    return absl::InvalidArgumentError(e->table == "overload" ? e->qualified() : e->message);
  }
  return absl::OkStatus();
}

absl::Status validate(const PoolOptions& options) {
  if (auto e = check_pool(options)) {
    return absl::InvalidArgumentError(e->qualified());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::chrono::nanoseconds> parse_duration(std::string_view text) {
  absl::Duration d;
  if (!absl::ParseDuration(sv(text), &d) || d == absl::InfiniteDuration() ||
      d == -absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", sv(text),
        "\" is not a duration; write a number and a unit, e.g. \"250ms\", "
        "\"1s\", \"1.5s\" (units: ns, us, ms, s, m, h)"));
  }
  return absl::ToChronoNanoseconds(d);
}

namespace {

// Reads [scaling] into `s`; the first error.
absl::Status read_scaling(TableReader& t, ScalingConfig& s) {
  for (absl::Status status : {
           t.reject_unknown({"min_loops", "max_loops", "window", "scale_down_threshold",
                             "scale_up_threshold", "patience_cycles", "max_ramp_up_step",
                             "max_ramp_down_step", "scale_down_cooldown_cycles", "signal",
                             "target_utilization", "drain_connected_loops",
                             "rebalance_connections", "max_moves_per_window",
                             "fast_up_interval"}),
           t.read_count("min_loops", s.min_loops),
           t.read_count("max_loops", s.max_loops),
           t.read_duration("window", s.window),
           t.read_fraction("scale_down_threshold", s.scale_down_threshold),
           t.read_fraction("scale_up_threshold", s.scale_up_threshold),
           t.read_count("patience_cycles", s.patience_cycles),
           t.read_count("max_ramp_up_step", s.max_ramp_up_step),
           t.read_count("max_ramp_down_step", s.max_ramp_down_step),
           t.read_count("scale_down_cooldown_cycles", s.scale_down_cooldown_cycles),
           t.read_signal("signal", s.signal),
           t.read_fraction("target_utilization", s.target_utilization),
           t.read_bool("drain_connected_loops", s.drain_connected_loops),
           t.read_bool("rebalance_connections", s.rebalance_connections),
           t.read_count("max_moves_per_window", s.max_moves_per_window),
           t.read_duration("fast_up_interval", s.fast_up_interval),
       }) {
    // Statuses are evaluated in order; the first error is the one reported.
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

// Reads [overload] into `o`; the first error.
absl::Status read_overload(TableReader& t, OverloadConfig& o) {
  for (absl::Status status : {
           t.reject_unknown({"enabled", "lag_target", "utilization_start", "max_shed",
                             "keepalive_off_at", "pause_accepting_at"}),
           t.read_bool("enabled", o.enabled),
           t.read_duration("lag_target", o.lag_target),
           t.read_fraction("utilization_start", o.utilization_start),
           t.read_fraction("max_shed", o.max_shed),
           t.read_fraction("keepalive_off_at", o.keepalive_off_at),
           t.read_fraction("pause_accepting_at", o.pause_accepting_at),
       }) {
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

// Reads [metrics] into `m`; the first error.
absl::Status read_metrics(TableReader& t, MetricsConfig& m) {
  for (absl::Status status : {
           t.reject_unknown({"enabled", "shm_path", "service", "file_mode"}),
           t.read_bool("enabled", m.enabled),
           t.read_string("shm_path", m.shm_path),
           t.read_string("service", m.service),
           t.read_mode("file_mode", m.file_mode),
       }) {
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

// The document's top level: only the known tables, each a table.
absl::Status check_tables(const toml::table& doc) {
  for (auto&& [key, node] : doc) {
    if (key.str() != "pool" && key.str() != "scaling" && key.str() != "overload" &&
        key.str() != "metrics") {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown key \"", sv(key.str()), "\" at line ", node.source().begin.line,
          "; expected the tables [pool], [scaling], [overload] and [metrics]"));
    }
    if (!node.is_table()) {
      return absl::InvalidArgumentError(absl::StrCat(sv(key.str()), " at line ",
                                                     node.source().begin.line,
                                                     ": expected a table ([", sv(key.str()),
                                                     "])"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PoolOptions> parse_pool_options(std::string_view toml_text) {
  toml::table doc;
  try {
    doc = toml::parse(toml_text);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("TOML syntax error at line ", e.source().begin.line,
                     ", column ", e.source().begin.column, ": ",
                     sv(e.description())));
  }
  if (absl::Status s = check_tables(doc); !s.ok()) return s;
  auto table = [&doc](std::string_view name) -> const toml::table& {
    const toml::table* t = doc[name].as_table();
    return t != nullptr ? *t : kEmptyTable;
  };
  PoolOptions out;
  TableReader pool("pool", table("pool"));
  TableReader scaling("scaling", table("scaling"));
  TableReader overload("overload", table("overload"));
  TableReader metrics("metrics", table("metrics"));
  // The tables in the order of a file's: [pool], [scaling], [overload],
  // [metrics]; the first error is the one reported.
  if (absl::Status s = pool.reject_unknown({"name"}); !s.ok()) return s;
  if (absl::Status s = pool.read_string("name", out.name); !s.ok()) return s;
  if (absl::Status s = read_scaling(scaling, out.scaling); !s.ok()) return s;
  if (absl::Status s = read_overload(overload, out.scaling.overload); !s.ok()) return s;
  if (absl::Status s = read_metrics(metrics, out.metrics); !s.ok()) return s;
  if (auto e = check_pool(out)) {
    if (e->table == "pool") return pool.located(*e);
    if (e->table == "metrics") return metrics.located(*e);
    if (e->table == "overload") return overload.located(*e);
    return scaling.located(*e);
  }
  return out;
}

absl::StatusOr<std::string> read_config_file(
    const std::filesystem::path& toml_file) {
  const std::string name = toml_file.string();
  // Non-blocking: opening a FIFO for reading would otherwise wait for a
  // writer, for ever.
  const int fd = ::open(name.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    std::string what = absl::StrCat("cannot open config file ", name, ": ",
                                    std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(what)
                         : absl::PermissionDeniedError(what);
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    const char* kind = S_ISDIR(st.st_mode)    ? "a directory"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    return absl::InvalidArgumentError(absl::StrCat(
        "config file ", name, " is ", kind, ": expected a regular TOML file"));
  }
  // Read at most one byte more than allowed: a file may grow while we read.
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return absl::DataLossError(absl::StrCat("cannot read config file ", name,
                                              ": ", std::strerror(err)));
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > kMaxConfigBytes) {
      ::close(fd);
      return absl::InvalidArgumentError(absl::StrCat(
          "config file ", name, " is larger than ", kMaxConfigBytes,
          " bytes: not a loopscale config"));
    }
  }
  ::close(fd);
  return text;
}

absl::StatusOr<PoolOptions> load_pool_options(
    const std::filesystem::path& toml_file) {
  auto text = read_config_file(toml_file);
  if (!text.ok()) return text.status();
  auto options = parse_pool_options(*text);
  if (!options.ok()) {
    return absl::Status(options.status().code(),
                        absl::StrCat(toml_file.string(), ": ",
                                     options.status().message()));
  }
  return options;
}

}  // namespace loopscale
