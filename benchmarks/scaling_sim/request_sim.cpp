#include "request_sim.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <memory>
#include <queue>
#include <random>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "loopscale/chooser.hpp"
#include "loopscale/utilization_monitor.hpp"
#include "request_loop.hpp"

namespace loopscale::sim {
namespace {

using Kind = Handler::Kind;

// Idle time before the step: the baseline, then enough windows for the
// lookback to hold only the idle level.
constexpr double kIdleBefore = 5.0;
// The listener's accepts per turn (lib/listener.cpp), and before f7039f8.
constexpr std::size_t kAcceptBatch = 16;

double percentile99(std::vector<double> v) {
  if (v.empty()) return 0.0;
  const std::size_t k = std::min(v.size() - 1, static_cast<std::size_t>(0.99 * v.size()));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

class StepSim {
 public:
  explicit StepSim(const StepOptions& o) : o_(o), rng_(o.seed) {
    const bool plain = o.server == Server::kPlain;
    loops_.resize(o.loops);
    for (RequestLoop& l : loops_) l.clock = &now_;
    now_ = -kIdleBefore;
    if (!plain) {
      ScalingConfig c = o.config;
      if (o.server == Server::kBefore) c.fast_up_interval = std::chrono::nanoseconds(0);
      config_ = c;
      const std::size_t idle = active_bounds(c, o.loops).min;
      for (std::size_t i = 0; i < o.loops; ++i) loops_[i].suspended = i >= idle;
      std::vector<RequestLoop*> ptrs;
      for (RequestLoop& l : loops_) ptrs.push_back(&l);
      chooser_ = std::make_unique<AutoScalingChooser<RequestLoop>>(ptrs, c);
      monitor_ = std::make_unique<UtilizationMonitor<RequestLoop>>(*chooser_, c);
      monitor_->tick(at(now_));
      const double window = std::chrono::duration<double>(c.window).count();
      // Ticks fall at -phase * window + k * window: the step at `phase` of one.
      next_tick_ = -o.phase * window;
      while (next_tick_ - window > now_) next_tick_ -= window;
      schedule(next_tick_, Event::kMonitor, 0);
    }
    if (o.clients == Clients::kPreconnect) {
      // Made while the pool idled: the chooser (or round-robin) places them.
      for (std::size_t k = 0; k < o.pool; ++k) {
        const std::size_t c = new_connection();
        place(c);
        idle_.push_back(c);
      }
    }
    schedule(0.0, Event::kArrival, 0);
  }

  StepResult run() {
    while (!events_.empty()) {
      const Event e = events_.top();
      events_.pop();
      now_ = e.at;
      switch (e.type) {
        case Event::kArrival:
          arrive(e.index);
          break;
        case Event::kDone:
          done(e.index);
          break;
        case Event::kMonitor:
          wake_monitor();
          break;
      }
      kick();
    }
    return result();
  }

 private:
  struct Event {
    enum Type { kArrival, kDone, kMonitor };
    double at;
    std::uint64_t seq;
    Type type;
    std::size_t index;
    bool operator>(const Event& other) const {
      return at != other.at ? at > other.at : seq > other.seq;
    }
  };
  struct Connection {
    std::size_t loop = 0;
    bool busy = false;  // a request is in flight on it
  };
  // What the running handler will do when it ends.
  struct Action {
    enum Type { kNothing, kServe, kMove, kMoveWithRequest, kAccept } type = kNothing;
    std::size_t connection = 0;
    double sent = 0.0;
    std::size_t target = 0;
    std::vector<std::pair<std::size_t, double>> accepted;
  };

  static Clock::time_point at(double t) {
    return Clock::time_point{} + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(t + 1000.0));
  }

  void schedule(double t, Event::Type type, std::size_t index) {
    events_.push(Event{t, seq_++, type, index});
  }

  std::size_t new_connection() {
    connections_.push_back(Connection{});
    return connections_.size() - 1;
  }

  // The accepted connection's loop: the chooser's next, or round-robin.
  void place(std::size_t c) {
    std::size_t loop;
    if (chooser_) {
      loop = index_of(&chooser_->next());
    } else {
      loop = next_plain_++ % loops_.size();
    }
    connections_[c].loop = loop;
    ++loops_[loop].connections;
  }

  std::size_t index_of(const RequestLoop* l) const {
    return static_cast<std::size_t>(l - loops_.data());
  }

  // LoopPool::rebalance_target: the least-loaded loop in rotation, where
  // that evens the counts out (or off a suspended loop).
  bool target_for(std::size_t from, std::size_t& target) const {
    if (!chooser_) return false;
    const RequestLoop* t = chooser_->least_loaded(&loops_[from]);
    if (t == nullptr) return false;
    if (!loops_[from].suspended && t->connections + 2 > loops_[from].connections) {
      return false;
    }
    target = index_of(t);
    return true;
  }

  // The client sends request `k`.
  void arrive(std::size_t k) {
    const double sent = now_;
    const auto total = static_cast<std::size_t>(std::llround(o_.rate * o_.duration));
    if (k + 1 < total) schedule(static_cast<double>(k + 1) / o_.rate, Event::kArrival, k + 1);
    if (o_.clients == Clients::kPreconnect) {
      if (idle_.empty()) {
        waiters_.push_back(sent);  // waits for a free connection
        return;
      }
      std::uniform_int_distribution<std::size_t> pick(0, idle_.size() - 1);
      std::swap(idle_[pick(rng_)], idle_.back());
      const std::size_t c = idle_.back();
      idle_.pop_back();
      send(c, sent);
      return;
    }
    if (!idle_.empty()) {
      const std::size_t c = idle_.front();
      idle_.pop_front();
      send(c, sent);
      return;
    }
    // A new connection: into the listener's backlog, its request with it.
    const std::size_t c = new_connection();
    connections_[c].busy = true;
    backlog_.emplace_back(c, sent);
    if (!accept_queued_) {
      accept_queued_ = true;
      loops_[kListenerLoop].queue.push_back({Kind::kAccept, 0, now_});
    }
  }

  void send(std::size_t c, double sent) {
    connections_[c].busy = true;
    loops_[connections_[c].loop].queue.push_back({Kind::kRead, c, sent});
  }

  // The answer left: the client has the connection back.
  void release(std::size_t c) {
    connections_[c].busy = false;
    if (!waiters_.empty()) {
      const double sent = waiters_.front();
      waiters_.pop_front();
      send(c, sent);
      return;
    }
    idle_.push_back(c);
  }

  // Starts the handlers of every loop that is free and has some.
  void kick() {
    for (std::size_t i = 0; i < loops_.size(); ++i) {
      if (!loops_[i].running && !loops_[i].queue.empty()) start(i);
    }
  }

  void start(std::size_t i) {
    RequestLoop& l = loops_[i];
    const Handler h = l.queue.front();
    l.queue.pop_front();
    Action& a = actions_[i];
    a = Action{};
    double cost = o_.short_cost;
    std::size_t target = 0;
    switch (h.kind) {
      case Kind::kRead:
        a.connection = h.connection;
        a.sent = h.at;
        if (o_.server == Server::kToday && l.move_quota > 0 &&
            target_for(i, target) && l.claim_move()) {
          a.type = Action::kMoveWithRequest;  // Session::leave_with
          a.target = target;
          cost = o_.move_cost;
        } else {
          a.type = Action::kServe;
          cost = o_.service + o_.overhead;
        }
        break;
      case Kind::kAccept: {
        a.type = Action::kAccept;
        const std::size_t batch = o_.server == Server::kBefore ? 1 : kAcceptBatch;
        while (!backlog_.empty() && a.accepted.size() < batch) {
          a.accepted.push_back(backlog_.front());
          backlog_.pop_front();
        }
        cost = o_.accept_cost * static_cast<double>(a.accepted.size());
        break;
      }
      case Kind::kInterrupt:
        // EventLoop::request_moves' post: cancels up to the quota's waiting
        // reads; each completion queues behind what is there.
        l.interrupt_queued = false;
        for (std::size_t c = 0, n = 0; c < connections_.size() && n < l.move_quota; ++c) {
          if (connections_[c].loop == i && !connections_[c].busy) {
            l.queue.push_back({Kind::kInterrupted, c, now_});
            ++n;
          }
        }
        break;
      case Kind::kInterrupted:
        if (connections_[h.connection].loop == i && !connections_[h.connection].busy &&
            l.move_quota > 0 && target_for(i, target) && l.claim_move()) {
          a = Action{Action::kMove, h.connection, 0.0, target, {}};
          cost = o_.move_cost;
        }
        break;
      case Kind::kProbe:
        l.last_lag = now_ - h.at;
        l.probe_pending = false;
        break;
    }
    begin(i, cost);
  }

  void begin(std::size_t i, double cost) {
    RequestLoop& l = loops_[i];
    l.running = true;
    l.started = now_;
    l.ends = now_ + cost;
    schedule(l.ends, Event::kDone, i);
  }

  void done(std::size_t i) {
    RequestLoop& l = loops_[i];
    l.busy += now_ - l.started;
    l.running = false;
    Action a = std::move(actions_[i]);
    actions_[i] = Action{};
    switch (a.type) {
      case Action::kNothing:
        break;
      case Action::kServe: {
        latencies_.emplace_back(a.sent, now_ - a.sent + o_.rtt);
        // The boundary after the answer: a requested move is claimed here.
        std::size_t target = 0;
        if (l.move_quota > 0 && target_for(i, target) && l.claim_move()) {
          actions_[i] = Action{Action::kMove, a.connection, 0.0, target, {}};
          connections_[a.connection].busy = true;  // not the client's until moved
          begin(i, o_.move_cost);
          return;
        }
        release(a.connection);
        break;
      }
      case Action::kMove:
        move(a.connection, i, a.target);
        if (connections_[a.connection].busy) release(a.connection);
        break;
      case Action::kMoveWithRequest:
        move(a.connection, i, a.target);
        loops_[a.target].queue.push_back({Kind::kRead, a.connection, a.sent});
        break;
      case Action::kAccept:
        for (const auto& [c, sent] : a.accepted) {
          place(c);
          loops_[connections_[c].loop].queue.push_back({Kind::kRead, c, sent});
        }
        if (backlog_.empty()) {
          accept_queued_ = false;
        } else {
          l.queue.push_back({Kind::kAccept, 0, now_});  // the accept re-armed
        }
        break;
    }
  }

  // Hands connection `c` from loop `from` to `to`; a request of its that
  // arrived on `from` during the move follows it.
  void move(std::size_t c, std::size_t from, std::size_t to) {
    --loops_[from].connections;
    ++loops_[to].connections;
    connections_[c].loop = to;
    ++moves_;
    auto& q = loops_[from].queue;
    for (auto it = q.begin(); it != q.end();) {
      if (it->kind == Kind::kRead && it->connection == c) {
        loops_[to].queue.push_back(*it);
        it = q.erase(it);
      } else {
        ++it;
      }
    }
  }

  // The monitor's thread (UtilizationMonitor::next_wakeup): a tick at every
  // window, a saturation check every fast_up_interval between them while
  // the pool can grow.
  void wake_monitor() {
    const double window = std::chrono::duration<double>(config_.window).count();
    if (now_ >= next_tick_ - 1e-12) {
      monitor_->tick(at(now_));
      next_tick_ += window;
    } else {
      monitor_->check_saturation(at(now_));
    }
    std::size_t active = chooser_->active_count();
    peak_active_ = std::max(peak_active_, active);
    const double interval = std::chrono::duration<double>(config_.fast_up_interval).count();
    double next = next_tick_;
    if (interval > 0 && active < active_bounds(config_, loops_.size()).max &&
        now_ + interval + interval / 2 < next_tick_) {
      next = now_ + interval;
    }
    if (next < o_.duration + 1.0) schedule(next, Event::kMonitor, 0);
  }

  StepResult result() const {
    StepResult r;
    std::vector<double> first, all;
    r.p99_per_second.assign(static_cast<std::size_t>(std::ceil(o_.duration)), 0.0);
    std::vector<std::vector<double>> per_second(r.p99_per_second.size());
    for (const auto& [sent, latency] : latencies_) {
      all.push_back(latency);
      if (sent < kFirstSeconds) first.push_back(latency);
      const auto s = static_cast<std::size_t>(sent);
      if (s < per_second.size()) per_second[s].push_back(latency);
    }
    r.p99_first = percentile99(first);
    r.p99_run = percentile99(all);
    for (std::size_t s = 0; s < per_second.size(); ++s) {
      r.p99_per_second[s] = percentile99(per_second[s]);
    }
    r.requests = latencies_.size();
    r.moves = moves_;
    if (monitor_) {
      const MonitorStats s = monitor_->stats();
      r.fast_ups = s.fast_ups;
      r.scale_ups = s.scale_ups;
    }
    r.peak_active = chooser_ ? peak_active_ : loops_.size();
    return r;
  }

  static constexpr std::size_t kListenerLoop = 0;

  const StepOptions& o_;
  ScalingConfig config_;
  std::mt19937_64 rng_;
  double now_ = 0.0;
  std::uint64_t seq_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  std::vector<RequestLoop> loops_;
  std::vector<Action> actions_ = std::vector<Action>(o_.loops);
  std::vector<Connection> connections_;
  std::deque<std::size_t> idle_;
  std::deque<double> waiters_;
  std::deque<std::pair<std::size_t, double>> backlog_;
  bool accept_queued_ = false;
  std::size_t next_plain_ = 0;
  std::unique_ptr<AutoScalingChooser<RequestLoop>> chooser_;
  std::unique_ptr<UtilizationMonitor<RequestLoop>> monitor_;
  double next_tick_ = 0.0;
  std::size_t peak_active_ = 0;
  std::size_t moves_ = 0;
  std::vector<std::pair<double, double>> latencies_;
};

}  // namespace

std::string_view to_string(Clients clients) {
  return clients == Clients::kNew ? "new" : "preconnect";
}

std::string_view to_string(Server server) {
  switch (server) {
    case Server::kToday:
      return "today";
    case Server::kBefore:
      return "before";
    case Server::kPlain:
      return "plain";
  }
  return "unknown";
}

absl::StatusOr<Clients> parse_clients(std::string_view name) {
  for (Clients c : {Clients::kNew, Clients::kPreconnect}) {
    if (to_string(c) == name) return c;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown clients \"", std::string(name), "\"; expected new or preconnect"));
}

absl::StatusOr<Server> parse_server(std::string_view name) {
  for (Server s : {Server::kToday, Server::kBefore, Server::kPlain}) {
    if (to_string(s) == name) return s;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown server \"", std::string(name), "\"; expected today, before or plain"));
}

StepOptions default_step_options() {
  StepOptions o;
  ScalingConfig& c = o.config;  // examples/config/demo.toml
  c.min_loops = 1;
  c.max_loops = 4;
  c.window = std::chrono::milliseconds(250);
  c.scale_down_threshold = 0.25;
  c.scale_up_threshold = 0.75;
  c.patience_cycles = 3;
  c.max_ramp_up_step = 0;
  c.max_ramp_down_step = 3;
  c.scale_down_cooldown_cycles = 2;
  return o;
}

StepResult simulate_step(const StepOptions& options) {
  return StepSim(options).run();
}

StepSummary simulate_step_rounds(StepOptions options, int rounds) {
  StepSummary s;
  std::vector<double> first, run;
  for (int k = 0; k < rounds; ++k) {
    options.phase = (static_cast<double>(k) + 0.5) / rounds;
    options.seed = static_cast<std::uint64_t>(k) + 1;
    s.rounds.push_back(simulate_step(options));
    first.push_back(s.rounds.back().p99_first);
    run.push_back(s.rounds.back().p99_run);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };
  s.p99_first_median = median(first);
  s.p99_run_median = median(run);
  s.p99_first_min = first.empty() ? 0.0 : *std::min_element(first.begin(), first.end());
  s.p99_first_max = first.empty() ? 0.0 : *std::max_element(first.begin(), first.end());
  return s;
}

}  // namespace loopscale::sim
