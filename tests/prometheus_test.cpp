#include "loopscale/prometheus.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <limits>
#include <map>
#include <string>

#include "loopscale/loop_pool.hpp"
#include "loopscale/shm/figures.hpp"
#include "loopscale/shm/publisher.hpp"
#include "loopscale/shm/reader.hpp"
#include "support/shm_file.hpp"

namespace loopscale::prometheus {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using loopscale::testing::stats_at;
using loopscale::testing::TempShmPath;

// The sample lines of `text` (no HELP or TYPE), each without the labels
// that a reader of the file and a live pool see differently.
std::map<std::string, std::string> samples(const std::string& text) {
  std::map<std::string, std::string> out;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(at, end - at);
    at = end + 1;
    if (line.empty() || line[0] == '#') continue;
    const std::size_t space = line.rfind(' ');
    out[line.substr(0, space)] = line.substr(space + 1);
  }
  return out;
}

TEST(PrometheusTest, ALivePoolRendersAsItsPublishedFileDoes) {
  // One renderer, one input: the figures a pool publishes and the ones its
  // /metrics serves must agree sample for sample.
  const PoolStats stats = stats_at("pool-a", 4, 7);
  TempShmPath file;
  auto pub = shm::Publisher::attach(file.config("api"), "pool-a", 4);
  ASSERT_TRUE(pub.ok()) << pub.status();
  (*pub)->publish(stats);
  auto reader = shm::Reader::open(file.path());
  ASSERT_TRUE(reader.ok()) << reader.status();
  auto from_file = reader->snapshot();
  ASSERT_TRUE(from_file.ok()) << from_file.status();

  const auto live = samples(render(shm::snapshot_of(stats, "api", getpid())));
  const auto published = samples(render(*from_file));
  EXPECT_EQ(live, published);
  EXPECT_GT(live.size(), 100u);
  const std::string labels =
      "{service=\"api\",pid=\"" + std::to_string(getpid()) + "\",pool=\"pool-a\"";
  EXPECT_EQ(live.at("loopscale_pool_active_loops" + labels + "}"), "2");
  EXPECT_EQ(live.at("loopscale_loop_jobs_total" + labels + ",loop=\"1\",job=\"work\"}"), "14");
  EXPECT_EQ(live.at("loopscale_service_active_loops{service=\"api\"}"), "2");
}

TEST(PrometheusTest, EveryFamilyHasItsHelpAndTypeOnce) {
  const std::string text = render(shm::snapshot_of(stats_at("p", 2, 3), "s", 1));
  std::map<std::string, int> help, type;
  std::size_t at = 0;
  while ((at = text.find("# HELP ", at)) != std::string::npos) {
    at += 7;
    ++help[text.substr(at, text.find(' ', at) - at)];
  }
  at = 0;
  while ((at = text.find("# TYPE ", at)) != std::string::npos) {
    at += 7;
    ++type[text.substr(at, text.find(' ', at) - at)];
  }
  EXPECT_EQ(help, type);
  for (const auto& [name, n] : help) EXPECT_EQ(n, 1) << name;
  EXPECT_TRUE(help.contains("loopscale_build_info"));
  EXPECT_TRUE(help.contains("loopscale_pool_scheduling_lag_seconds"));
}

TEST(PrometheusTest, AStaleProcessShowsOnlyThatItIsStale) {
  shm::Snapshot snap = shm::snapshot_of(stats_at("p", 2, 3), "s", 1);
  snap.processes[0].stale = true;
  const std::string text = render(snap);
  EXPECT_THAT(text, HasSubstr("loopscale_pool_stale{service=\"s\",pid=\"1\",pool=\"p\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("loopscale_loop_busy_seconds_total{")));
}

TEST(PrometheusTest, LabelValuesAreEscaped) {
  EXPECT_EQ(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  const std::string text = render(shm::snapshot_of(stats_at("we\"ird\npool", 1, 1), "s", 1));
  EXPECT_THAT(text, HasSubstr("pool=\"we\\\"ird\\npool\""));
}

TEST(PrometheusTest, NumbersThePromFormatReads) {
  EXPECT_EQ(number(0.25), "0.25");
  EXPECT_EQ(number(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(number(-std::numeric_limits<double>::infinity()), "-Inf");
}

TEST(PrometheusTest, AUsersFamilyAppends) {
  Family requests(FamilySpec{"myserver_requests_total", "counter", "Requests answered."});
  std::string out;
  requests.append_to(out);
  EXPECT_EQ(out, "");  // no sample, no family
  requests.add("code=\"200\"", 3);
  requests.add("", 4);
  requests.append_to(out);
  EXPECT_EQ(out,
            "# HELP myserver_requests_total Requests answered.\n"
            "# TYPE myserver_requests_total counter\n"
            "myserver_requests_total{code=\"200\"} 3\nmyserver_requests_total 4\n");
}

TEST(PrometheusTest, APoolRendersUnderItsService) {
  PoolOptions options;
  options.name = "web";
  options.scaling.max_loops = 2;
  options.metrics.service = "frontend";
  auto pool = LoopPool::create(options);
  ASSERT_TRUE(pool.ok()) << pool.status();
  const std::string text = render(**pool);
  EXPECT_THAT(text, HasSubstr("loopscale_pool_loops{service=\"frontend\",pid=\"" +
                              std::to_string(getpid()) + "\",pool=\"web\",state=\"suspended\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("loopscale_service_loops{service=\"frontend\"} 2\n"));
}

}  // namespace
}  // namespace loopscale::prometheus
