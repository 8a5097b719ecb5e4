// The request-level simulator (benchmarks/scaling_sim/request_sim.hpp):
// what it conserves, and the step it was calibrated on (issue 30), in
// virtual time: deterministic, no sleeps, no timing of this machine.

#include <cstddef>

#include "gtest/gtest.h"
#include "request_sim.hpp"

namespace loopscale::sim {
namespace {

StepOptions step(Server server, Clients clients) {
  StepOptions o = default_step_options();
  o.server = server;
  o.clients = clients;
  return o;
}

std::size_t sent(const StepOptions& o) {
  return static_cast<std::size_t>(o.rate * o.duration + 0.5);
}

class EveryModel : public ::testing::TestWithParam<std::tuple<Server, Clients>> {};

TEST_P(EveryModel, EveryRequestIsAnsweredOnceAndNoFasterThanItsHandler) {
  const auto [server, clients] = GetParam();
  const StepOptions o = step(server, clients);
  const StepResult r = simulate_step(o);
  EXPECT_EQ(r.requests, sent(o));  // nothing lost, nothing served twice
  EXPECT_GE(r.p99_first, o.service);
  EXPECT_GE(r.p99_run, o.service);
  EXPECT_LE(r.peak_active, o.config.max_loops);
}

TEST_P(EveryModel, IsDeterministic) {
  const auto [server, clients] = GetParam();
  const StepOptions o = step(server, clients);
  const StepResult a = simulate_step(o);
  const StepResult b = simulate_step(o);
  EXPECT_EQ(a.p99_first, b.p99_first);
  EXPECT_EQ(a.p99_per_second, b.p99_per_second);
  EXPECT_EQ(a.moves, b.moves);
}

INSTANTIATE_TEST_SUITE_P(
    Step, EveryModel,
    ::testing::Combine(::testing::Values(Server::kToday, Server::kBefore, Server::kPlain),
                       ::testing::Values(Clients::kNew, Clients::kPreconnect)));

TEST(RequestSimTest, PlainPoolWithNewClientsQueuesLittle) {
  // Round-robin connections over four loops at 0.8 of their capacity:
  // a request waits for at most one or two ahead of it.
  const StepResult r = simulate_step(step(Server::kPlain, Clients::kNew));
  EXPECT_EQ(r.moves, 0u);
  EXPECT_LT(r.p99_run, 0.030);
}

TEST(RequestSimTest, BeforeIssue30TheBacklogStaysOnTheOneLoop) {
  // What the issue measured on the server: p99 over a second in the first
  // seconds, then the pool serves as a plain one.
  for (Clients clients : {Clients::kNew, Clients::kPreconnect}) {
    const StepSummary s = simulate_step_rounds(step(Server::kBefore, clients), 5);
    EXPECT_GT(s.p99_first_median, 0.4) << to_string(clients);
    for (const StepResult& r : s.rounds) {
      EXPECT_EQ(r.fast_ups, 0u);
      EXPECT_GE(r.scale_ups, 1u);
      EXPECT_EQ(r.peak_active, 4u);
      EXPECT_LT(r.p99_per_second.back(), 0.1) << "the pool settled";
    }
  }
}

TEST(RequestSimTest, TodayTheStepCostsTensOfMilliseconds) {
  for (Clients clients : {Clients::kNew, Clients::kPreconnect}) {
    const StepSummary today = simulate_step_rounds(step(Server::kToday, clients), 5);
    const StepSummary before = simulate_step_rounds(step(Server::kBefore, clients), 5);
    EXPECT_LT(today.p99_first_median, 0.1) << to_string(clients);
    EXPECT_LT(today.p99_first_median * 5, before.p99_first_median) << to_string(clients);
    for (const StepResult& r : today.rounds) EXPECT_GE(r.fast_ups, 1u);
  }
}

TEST(RequestSimTest, PreconnectedClientsLeaveTheLoopTheyAllConnectedTo) {
  // 64 connections on loop 0; four loops: three quarters move.
  const StepResult r = simulate_step(step(Server::kToday, Clients::kPreconnect));
  EXPECT_EQ(r.moves, 48u);
}

TEST(RequestSimTest, WithoutFastUpTodaysLibraryWaitsForTheTick) {
  StepOptions o = step(Server::kToday, Clients::kPreconnect);
  o.config.fast_up_interval = std::chrono::nanoseconds(0);
  const StepSummary off = simulate_step_rounds(o, 5);
  const StepSummary on = simulate_step_rounds(step(Server::kToday, Clients::kPreconnect), 5);
  for (const StepResult& r : off.rounds) EXPECT_EQ(r.fast_ups, 0u);
  EXPECT_GT(off.p99_first_median, on.p99_first_median);
}

TEST(RequestSimTest, NamesParse) {
  EXPECT_EQ(*parse_server("before"), Server::kBefore);
  EXPECT_EQ(*parse_clients("preconnect"), Clients::kPreconnect);
  EXPECT_FALSE(parse_server("after").ok());
  EXPECT_FALSE(parse_clients("old").ok());
}

}  // namespace
}  // namespace loopscale::sim
