#include "loopscale/config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loopscale {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr char kExampleConfig[] = LOOPSCALE_SOURCE_DIR "/examples/config/pool.toml";

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(ValidateTest, DefaultsAreValid) {
  EXPECT_TRUE(validate(ScalingConfig{}).ok());
  EXPECT_TRUE(validate(PoolOptions{}).ok());
}

TEST(ValidateTest, RejectsNanThreshold) {
  ScalingConfig c;
  c.scale_up_threshold = std::numeric_limits<double>::quiet_NaN();
  absl::Status s = validate(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("scale_up_threshold"),
                                 HasSubstr("nan")));
}

TEST(ValidateTest, RejectsThresholdOutsideUnitInterval) {
  ScalingConfig c;
  c.scale_down_threshold = -0.1;
  EXPECT_THAT(validate(c).message(),
              AllOf(HasSubstr("scale_down_threshold"), HasSubstr("-0.1")));
  c = ScalingConfig{};
  c.scale_up_threshold = 1.5;
  EXPECT_THAT(validate(c).message(),
              AllOf(HasSubstr("scale_up_threshold"), HasSubstr("1.5")));
}

TEST(ValidateTest, RejectsDownNotBelowUp) {
  ScalingConfig c;
  c.scale_down_threshold = 0.5;
  c.scale_up_threshold = 0.5;
  EXPECT_THAT(validate(c).message(),
              AllOf(HasSubstr("scale_down_threshold = 0.5"),
                    HasSubstr("scale_up_threshold = 0.5")));
}

TEST(ValidateTest, RejectsMinAboveMax) {
  ScalingConfig c;
  c.min_loops = 5;
  c.max_loops = 4;
  EXPECT_THAT(validate(c).message(),
              AllOf(HasSubstr("min_loops = 5"), HasSubstr("max_loops = 4")));
  c.max_loops = 0;  // 0 = as many as there are executors: no upper check
  EXPECT_TRUE(validate(c).ok());
}

TEST(ValidateTest, RejectsZeroPatience) {
  ScalingConfig c;
  c.patience_cycles = 0;
  EXPECT_THAT(validate(c).message(), HasSubstr("patience_cycles = 0"));
}

TEST(ValidateTest, RejectsNonPositiveWindow) {
  ScalingConfig c;
  c.window = std::chrono::nanoseconds(0);
  EXPECT_THAT(validate(c).message(), HasSubstr("window = 0"));
  c.window = std::chrono::milliseconds(-5);
  EXPECT_THAT(validate(c).message(), HasSubstr("window = -5ms"));
}

TEST(ValidateTest, RejectsTargetOutsideUnitInterval) {
  ScalingConfig c;
  for (double t : {0.0, -0.1, 1.5, std::nan("")}) {
    c.target_utilization = t;
    absl::Status s = validate(c);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << t;
    EXPECT_THAT(s.message(), HasSubstr("target_utilization")) << t;
  }
  c.target_utilization = 1.0;
  EXPECT_TRUE(validate(c).ok());
}

TEST(ValidateTest, TargetSignalParses) {
  auto o = parse_pool_options("[scaling]\nsignal = \"target\"\n");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->scaling.signal, ScaleSignal::kTarget);
  EXPECT_EQ(to_string(ScaleSignal::kTarget), "target");
}

TEST(ValidateTest, RejectsZeroRampDown) {
  ScalingConfig c;
  c.max_ramp_down_step = 0;
  EXPECT_THAT(validate(c).message(), HasSubstr("max_ramp_down_step = 0"));
}

TEST(ValidateTest, RejectsMovesPerWindowOutsideItsRange) {
  ScalingConfig c;
  c.max_moves_per_window = 0;
  EXPECT_THAT(validate(c).message(),
              AllOf(HasSubstr("max_moves_per_window = 0"),
                    HasSubstr("rebalance_connections = false")));
  c.max_moves_per_window = kMaxMovesPerWindow + 1;
  EXPECT_THAT(validate(c).message(), HasSubstr("max_moves_per_window = 1000001"));
  c.max_moves_per_window = kMaxMovesPerWindow;
  EXPECT_TRUE(validate(c).ok());
}

TEST(ParseTest, AZeroFastUpIntervalTurnsFastUpOff) {
  auto o = parse_pool_options("[scaling]\nfast_up_interval = \"0s\"\n");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->scaling.fast_up_interval, std::chrono::nanoseconds::zero());
}

TEST(ValidateTest, RejectsAFastUpIntervalOutsideItsRange) {
  ScalingConfig c;
  c.fast_up_interval = std::chrono::milliseconds(1);
  EXPECT_THAT(validate(c).message(),
              HasSubstr("fast_up_interval = 1ms: must be 0 (off) or between 5ms and 1h"));
  c.fast_up_interval = std::chrono::hours(2);
  EXPECT_THAT(validate(c).message(), HasSubstr("fast_up_interval = 2h"));
  c.fast_up_interval = std::chrono::nanoseconds::zero();  // off
  EXPECT_TRUE(validate(c).ok());
}

TEST(ValidateTest, RejectsAbsurdLoopCounts) {
  ScalingConfig c;
  c.max_loops = 1'000'000;
  EXPECT_THAT(validate(c).message(), HasSubstr("max_loops = 1000000"));
}

TEST(ValidateTest, PoolOptionsNameTheirTable) {
  PoolOptions o;
  o.name = "";
  EXPECT_THAT(validate(o).message(), HasSubstr("pool.name"));
  o = PoolOptions{};
  o.metrics.service = std::string(100, 'x');
  EXPECT_THAT(validate(o).message(), HasSubstr("metrics.service"));
  o = PoolOptions{};
  o.metrics.shm_path = "relative/file";
  EXPECT_THAT(validate(o).message(), HasSubstr("metrics.shm_path"));
  o = PoolOptions{};
  o.metrics.file_mode = 0644;
  EXPECT_TRUE(validate(o).ok());
  o.metrics.file_mode = 0700;
  EXPECT_THAT(validate(o).message(), HasSubstr("metrics.file_mode = 0o700"));
  o = PoolOptions{};
  o.scaling.patience_cycles = 0;
  EXPECT_THAT(validate(o).message(), HasSubstr("scaling.patience_cycles"));
}

TEST(ParseDurationTest, AcceptsUnits) {
  EXPECT_EQ(*parse_duration("250ms"), std::chrono::milliseconds(250));
  EXPECT_EQ(*parse_duration("1s"), std::chrono::seconds(1));
  EXPECT_EQ(*parse_duration("1.5s"), std::chrono::milliseconds(1500));
  EXPECT_EQ(*parse_duration("100us"), std::chrono::microseconds(100));
  EXPECT_EQ(*parse_duration("2m"), std::chrono::minutes(2));
}

TEST(ParseDurationTest, RejectsGarbage) {
  for (const char* bad : {"", "5", "fast", "1 s", "inf", "1.5.2s", "ms"}) {
    auto d = parse_duration(bad);
    EXPECT_FALSE(d.ok()) << bad;
    EXPECT_THAT(d.status().message(), HasSubstr("not a duration")) << bad;
  }
}

TEST(ParsePoolOptionsTest, EmptyDocumentGivesDefaults) {
  auto o = parse_pool_options("");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(*o, PoolOptions{});
}

TEST(ParsePoolOptionsTest, ExampleConfigParsesToDefaults) {
  auto o = load_pool_options(kExampleConfig);
  ASSERT_TRUE(o.ok()) << o.status();
  // The example documents the defaults, so it must agree with them.
  PoolOptions expected;
  expected.metrics.shm_path = "/dev/shm/loopscale";
  expected.metrics.service = "loopscale";
  EXPECT_EQ(*o, expected);
}

TEST(ParsePoolOptionsTest, ReadsEveryKey) {
  auto o = parse_pool_options(R"(
[pool]
name = "api"
[scaling]
min_loops = 2
max_loops = 6
window = "1.5s"
scale_down_threshold = 0
scale_up_threshold = 0.9
patience_cycles = 4
max_ramp_up_step = 2
max_ramp_down_step = 3
scale_down_cooldown_cycles = 5
signal = "average"
target_utilization = 0.6
drain_connected_loops = false
rebalance_connections = false
max_moves_per_window = 7
fast_up_interval = "50ms"
[metrics]
enabled = true
shm_path = "/dev/shm/x"
service = "svc"
file_mode = 0o660
)");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->name, "api");
  EXPECT_EQ(o->scaling.min_loops, 2u);
  EXPECT_EQ(o->scaling.max_loops, 6u);
  EXPECT_EQ(o->scaling.window, std::chrono::milliseconds(1500));
  EXPECT_EQ(o->scaling.scale_down_threshold, 0.0);
  EXPECT_EQ(o->scaling.scale_up_threshold, 0.9);
  EXPECT_EQ(o->scaling.patience_cycles, 4u);
  EXPECT_EQ(o->scaling.max_ramp_up_step, 2u);
  EXPECT_EQ(o->scaling.max_ramp_down_step, 3u);
  EXPECT_EQ(o->scaling.scale_down_cooldown_cycles, 5u);
  EXPECT_EQ(o->scaling.signal, ScaleSignal::kAverage);
  EXPECT_EQ(o->scaling.target_utilization, 0.6);
  EXPECT_FALSE(o->scaling.drain_connected_loops);
  EXPECT_FALSE(o->scaling.rebalance_connections);
  EXPECT_EQ(o->scaling.max_moves_per_window, 7u);
  EXPECT_EQ(o->scaling.fast_up_interval, std::chrono::milliseconds(50));
  EXPECT_TRUE(o->metrics.enabled);
  EXPECT_EQ(o->metrics.shm_path, "/dev/shm/x");
  EXPECT_EQ(o->metrics.service, "svc");
  EXPECT_EQ(o->metrics.file_mode, 0660u);
}

TEST(ParsePoolOptionsTest, SyntaxErrorNamesTheLine) {
  auto o = parse_pool_options("[scaling]\nmin_loops = = 3\n");
  EXPECT_THAT(o.status().message(),
              AllOf(HasSubstr("syntax error"), HasSubstr("line 2")));
}

TEST(ParsePoolOptionsTest, UnknownTableIsAnError) {
  auto o = parse_pool_options("[scalling]\nmin_loops = 3\n");
  EXPECT_THAT(o.status().message(),
              AllOf(HasSubstr("scalling"), HasSubstr("line 1")));
}

TEST(ParsePoolOptionsTest, UnknownKeyIsAnError) {
  auto o = parse_pool_options("[scaling]\n\nmin_loop = 3\n");
  EXPECT_THAT(o.status().message(),
              AllOf(HasSubstr("scaling.min_loop"), HasSubstr("line 3"),
                    HasSubstr("unknown key")));
}

TEST(ParsePoolOptionsTest, TableGivenAsValueIsAnError) {
  auto o = parse_pool_options("scaling = 3\n");
  EXPECT_THAT(o.status().message(),
              AllOf(HasSubstr("scaling"), HasSubstr("expected a table")));
}

TEST(ParsePoolOptionsTest, CrossFieldErrorNamesTheKeyAndLine) {
  auto o = parse_pool_options(
      "[scaling]\nscale_up_threshold = 0.5\nscale_down_threshold = 0.6\n");
  EXPECT_THAT(o.status().message(),
              AllOf(HasSubstr("scaling.scale_down_threshold = 0.6"),
                    HasSubstr("line 3")));
}

TEST(LoadPoolOptionsTest, MissingFileNamesThePath) {
  auto o = load_pool_options("/nonexistent/loopscale.toml");
  EXPECT_EQ(o.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(o.status().message(), HasSubstr("/nonexistent/loopscale.toml"));
}

// A config path is user input: what is not a regular file of a sane size is
// refused at once, naming the path and what it is (before: a directory ran
// the defaults, a FIFO hung the process, /dev/zero grew it until bad_alloc).
TEST(LoadPoolOptionsTest, WhatIsNotARegularFileOfSaneSizeIsRefused) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      ("loopscale-config-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::filesystem::path fifo = dir / "fifo.toml";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::filesystem::path big = dir / "big.toml";
  {
    std::ofstream out(big);
    out << "# " << std::string(kMaxConfigBytes, 'x') << "\n";
  }
  struct Case {
    std::filesystem::path path;
    const char* says;
  };
  for (const Case& c : {Case{dir, "is a directory"}, Case{fifo, "is a FIFO"},
                        Case{"/dev/zero", "is a character device"},
                        Case{big, "larger than 1048576 bytes"}}) {
    auto o = load_pool_options(c.path);
    ASSERT_FALSE(o.ok()) << c.path;
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument) << c.path;
    EXPECT_THAT(o.status().message(),
                AllOf(HasSubstr(c.path.string()), HasSubstr(c.says)));
  }
  std::filesystem::remove_all(dir);
}

// Each key of the example config, replaced with an invalid value, yields an
// error that names the key and its line in the example.
struct BadValue {
  const char* table;
  const char* key;
  const char* value;
};

void PrintTo(const BadValue& bad, std::ostream* os) {
  *os << bad.table << "." << bad.key << " = " << bad.value;
}

class ExampleConfigFieldTest : public ::testing::TestWithParam<BadValue> {};

TEST_P(ExampleConfigFieldTest, InvalidValueIsNamedWithItsLine) {
  const BadValue& bad = GetParam();
  std::string text = read_file(kExampleConfig);
  ASSERT_FALSE(text.empty()) << "cannot read " << kExampleConfig;
  // The first line of the key's table that starts with "KEY = " gets the
  // bad value (several tables have an `enabled`).
  const std::string assignment = std::string(bad.key) + " = ";
  const std::size_t table = text.find("[" + std::string(bad.table) + "]");
  ASSERT_NE(table, std::string::npos) << bad.table;
  std::size_t start = text.find("\n" + assignment, table);
  ASSERT_NE(start, std::string::npos) << bad.key;
  ++start;
  const std::size_t end = std::min(text.find('\n', start), text.size());
  const int line = 1 + static_cast<int>(std::count(
                           text.begin(), text.begin() + static_cast<std::ptrdiff_t>(start), '\n'));
  text.replace(start, end - start, assignment + bad.value);
  auto o = parse_pool_options(text);
  ASSERT_FALSE(o.ok()) << bad.key << " = " << bad.value;
  EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(o.status().message(),
              AllOf(HasSubstr(std::string(bad.table) + "." + bad.key),
                    HasSubstr("line " + std::to_string(line))))
      << bad.key << " = " << bad.value;
}

INSTANTIATE_TEST_SUITE_P(
    EveryKey, ExampleConfigFieldTest,
    ::testing::Values(
        BadValue{"pool", "name", "\"\""},
        BadValue{"pool", "name", "42"},
        BadValue{"scaling", "min_loops", "-1"},
        BadValue{"scaling", "min_loops", "\"one\""},
        BadValue{"scaling", "max_loops", "99999"},
        BadValue{"scaling", "max_loops", "1.5"},
        BadValue{"scaling", "window", "\"0ms\""},
        BadValue{"scaling", "window", "\"soon\""},
        BadValue{"scaling", "window", "500"},
        BadValue{"scaling", "window", "\"99999999999h\""},
        BadValue{"scaling", "window", "\"2h\""},
        BadValue{"scaling", "window", "\"100us\""},
        BadValue{"scaling", "patience_cycles", "10001"},
        BadValue{"scaling", "scale_down_cooldown_cycles", "99999999"},
        BadValue{"scaling", "max_ramp_up_step", "5000"},
        BadValue{"scaling", "max_ramp_down_step", "5000"},
        BadValue{"scaling", "scale_down_threshold", "-0.5"},
        BadValue{"scaling", "scale_down_threshold", "0.9"},
        BadValue{"scaling", "scale_down_threshold", "nan"},
        BadValue{"scaling", "scale_up_threshold", "1.01"},
        BadValue{"scaling", "scale_up_threshold", "\"high\""},
        BadValue{"scaling", "patience_cycles", "0"},
        BadValue{"scaling", "max_ramp_up_step", "-2"},
        BadValue{"scaling", "max_ramp_down_step", "0"},
        BadValue{"scaling", "scale_down_cooldown_cycles", "true"},
        BadValue{"scaling", "signal", "\"median\""},
        BadValue{"scaling", "target_utilization", "0"},
        BadValue{"scaling", "target_utilization", "1.2"},
        BadValue{"scaling", "target_utilization", "nan"},
        BadValue{"scaling", "target_utilization", "\"70%\""},
        BadValue{"scaling", "drain_connected_loops", "\"yes\""},
        BadValue{"scaling", "rebalance_connections", "1"},
        BadValue{"scaling", "max_moves_per_window", "0"},
        BadValue{"scaling", "max_moves_per_window", "1000001"},
        BadValue{"scaling", "max_moves_per_window", "-3"},
        BadValue{"scaling", "fast_up_interval", "\"1ms\""},
        BadValue{"scaling", "fast_up_interval", "20"},
        BadValue{"overload", "enabled", "\"on\""},
        BadValue{"overload", "lag_target", "\"0ms\""},
        BadValue{"overload", "lag_target", "\"2h\""},
        BadValue{"overload", "lag_target", "10"},
        BadValue{"overload", "utilization_start", "1.5"},
        BadValue{"overload", "utilization_start", "nan"},
        BadValue{"overload", "max_shed", "-0.1"},
        BadValue{"overload", "keepalive_off_at", "\"high\""},
        BadValue{"overload", "pause_accepting_at", "2"},
        BadValue{"metrics", "enabled", "1"},
        BadValue{"metrics", "shm_path", "\"relative/path\""},
        BadValue{"metrics", "service",
                 "\"a-service-name-that-is-far-longer-than-the-sixty-three-"
                 "bytes-allowed\""},
        BadValue{"metrics", "service", "\"tab\\there\""},
        BadValue{"metrics", "file_mode", "0o400"},
        BadValue{"metrics", "file_mode", "0o755"},
        BadValue{"metrics", "file_mode", "\"0600\""},
        BadValue{"metrics", "file_mode", "-1"}),
    [](const ::testing::TestParamInfo<BadValue>& info) {
      return std::string(info.param.key) + "_" + std::to_string(info.index);
    });

}  // namespace
}  // namespace loopscale
