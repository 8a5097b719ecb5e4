// ORCA load reports of the example HTTP server (examples/http_server/
// load_report.hpp): the header's value read back the way Envoy's parser
// reads it (TEXT: comma-separated key=value, only the report's keys or
// named_metrics.*, finite doubles), the figures over a window, the request's
// format header.

#include "load_report.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "request_parser.hpp"

namespace loopscale::http {
namespace {

using namespace std::chrono_literals;

// Reads a TEXT report as Envoy does, failing the test on anything Envoy
// would refuse.
std::map<std::string, double> read_text(const std::string& header) {
  absl::string_view v = header;
  EXPECT_TRUE(absl::ConsumePrefix(&v, "TEXT ")) << header;
  const std::set<std::string> keys = {"cpu_utilization", "mem_utilization",
                                      "application_utilization", "eps", "rps_fractional"};
  std::map<std::string, double> out;
  for (absl::string_view item : absl::StrSplit(v, ',')) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(absl::StripAsciiWhitespace(item), absl::MaxSplits('=', 1));
    const std::string key(kv.first);
    EXPECT_TRUE(keys.contains(key) || (key.starts_with("named_metrics.") &&
                                       key.size() > std::string("named_metrics.").size()))
        << "a key the report does not define: " << key;
    double d = 0;
    EXPECT_TRUE(absl::SimpleAtod(kv.second, &d)) << item;
    EXPECT_TRUE(std::isfinite(d)) << item;
    EXPECT_FALSE(out.contains(key)) << "twice: " << key;
    out[key] = d;
  }
  return out;
}

TEST(OrcaTest, TextHasTheReportsKeysOnly) {
  OrcaValues v{0.25, 120, 2, 4};
  EXPECT_EQ(format_orca(v, OrcaFormat::kText),
            "TEXT application_utilization=0.25,rps_fractional=120,"
            "named_metrics.active_loops=2,named_metrics.max_loops=4");
  const auto m = read_text(format_orca(v, OrcaFormat::kText));
  EXPECT_DOUBLE_EQ(m.at("application_utilization"), 0.25);
  EXPECT_DOUBLE_EQ(m.at("rps_fractional"), 120);
  EXPECT_DOUBLE_EQ(m.at("named_metrics.max_loops"), 4);
}

TEST(OrcaTest, JsonIsTheReportMessagesJsonMapping) {
  EXPECT_EQ(format_orca(OrcaValues{0.5, 3.5, 1, 8}, OrcaFormat::kJson),
            "JSON {\"application_utilization\":0.5,\"rps_fractional\":3.5,"
            "\"named_metrics\":{\"active_loops\":1,\"max_loops\":8}}");
}

TEST(OrcaTest, ValuesAreFiniteAndRpsIsNeverZero) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const OrcaValues& v : {OrcaValues{nan, nan, 0, 0}, OrcaValues{inf, inf, 0, 0},
                              OrcaValues{-1, -5, 0, 0}, OrcaValues{0, 0, 0, 0}}) {
    const auto m = read_text(format_orca(v, OrcaFormat::kText));
    EXPECT_EQ(m.at("application_utilization"), 0);
    EXPECT_EQ(m.at("rps_fractional"), kMinRps);
  }
}

TEST(OrcaTest, FormatsByName) {
  EXPECT_EQ(*parse_orca_format("text"), OrcaFormat::kText);
  EXPECT_EQ(*parse_orca_format("JSON"), OrcaFormat::kJson);
  EXPECT_EQ(*parse_orca_format("off"), OrcaFormat::kOff);
  const auto bad = parse_orca_format("BIN");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("\"BIN\""), std::string::npos);
}

// A monitor's report of a tick at `at` with these loops' utilizations and
// statuses, under max_loops `max`.
TickReport tick_at(std::chrono::steady_clock::time_point at, std::vector<double> utilizations,
                   std::vector<ExecutorStatus> statuses, std::size_t max) {
  TickReport t;
  t.event.at = at;
  t.stats.utilizations = std::move(utilizations);
  t.stats.statuses = std::move(statuses);
  t.stats.config.max_loops = max;
  return t;
}

TEST(OrcaTest, AWindowsFiguresAndTheCachedHeader) {
  using S = ExecutorStatus;
  LoadReport report(2, OrcaFormat::kText);
  const auto t0 = std::chrono::steady_clock::time_point(100s);
  const std::vector<S> two_of_five{S::kActive, S::kActive, S::kDraining, S::kSuspended,
                                   S::kSuspended};
  EXPECT_EQ(report.header(OrcaFormat::kOff), nullptr) << "nothing before a window";
  report.refresh(tick_at(t0, {0.5, 0, 0, 0, 0}, two_of_five, 4));  // the baseline
  EXPECT_EQ(report.header(OrcaFormat::kOff), nullptr);
  for (int i = 0; i < 30; ++i) report.count_response(i % 2);
  // Two seconds in which the loops were busy for 1.5 loop-seconds per
  // second in all (a draining loop's share too), of at most 4 loops.
  report.refresh(tick_at(t0 + 2s, {0.75, 0.5, 0.25, 0, 0}, two_of_five, 4));
  auto text = report.header(OrcaFormat::kOff);
  ASSERT_NE(text, nullptr);
  EXPECT_TRUE(text->starts_with("endpoint-load-metrics: TEXT ")) << *text;
  EXPECT_TRUE(text->ends_with("\r\n"));
  const auto m = read_text(text->substr(23, text->size() - 25));
  EXPECT_DOUBLE_EQ(m.at("application_utilization"), 1.5 / 4);
  EXPECT_DOUBLE_EQ(m.at("rps_fractional"), 15);
  EXPECT_DOUBLE_EQ(m.at("named_metrics.active_loops"), 2);
  EXPECT_DOUBLE_EQ(m.at("named_metrics.max_loops"), 4);
  // A request may ask for JSON; the same figures.
  auto json = report.header(OrcaFormat::kJson);
  ASSERT_NE(json, nullptr);
  EXPECT_NE(json->find("JSON {\"application_utilization\":0.375,\"rps_fractional\":15"),
            std::string::npos)
      << *json;
  // The next window counts only its own responses; max_loops 0 is every loop.
  report.refresh(tick_at(t0 + 3s, {1, 1, 0, 0, 0}, two_of_five, 0));
  const auto next = read_text(report.header(OrcaFormat::kOff)->substr(23));
  EXPECT_DOUBLE_EQ(next.at("rps_fractional"), kMinRps);
  EXPECT_DOUBLE_EQ(next.at("application_utilization"), 2.0 / 5);
  EXPECT_DOUBLE_EQ(next.at("named_metrics.max_loops"), 5);
}

TEST(OrcaTest, TheParserKeepsTheRequestedFormat) {
  RequestParser parser;
  std::vector<Request> out;
  const std::string req =
      "GET / HTTP/1.1\r\nHost: x\r\nEndpoint-Load-Metrics-Format: JSON\r\n\r\n"
      "GET / HTTP/1.1\r\nendpoint-load-metrics-format-x: JSON\r\n\r\n"
      "GET / HTTP/1.1\r\nendpoint-load-metrics-format: " +
      std::string(100, 'A') + "\r\n\r\n";
  // Byte by byte: names and values arrive in pieces.
  for (char c : req) ASSERT_EQ(parser.feed(&c, 1, out), RequestParser::Status::kOk);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].load_metrics_format, "JSON");
  EXPECT_EQ(out[1].load_metrics_format, "") << "another header";
  EXPECT_EQ(out[2].load_metrics_format, std::string(16, 'A')) << "bounded";
}

}  // namespace
}  // namespace loopscale::http
