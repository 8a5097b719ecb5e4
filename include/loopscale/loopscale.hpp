// -----------------------------------------------------------------------------
// loopscale.hpp
// -----------------------------------------------------------------------------
//
// Includes every public loopscale header. Prefer the specific header in
// library code; this one is for applications and quick experiments.

#ifndef LOOPSCALE_LOOPSCALE_HPP_
#define LOOPSCALE_LOOPSCALE_HPP_

#include "loopscale/accept_backoff.hpp"
#include "loopscale/activity.hpp"
#include "loopscale/chooser.hpp"
#include "loopscale/clock.hpp"
#include "loopscale/config.hpp"
#include "loopscale/cpu_limit.hpp"
#include "loopscale/event_loop.hpp"
#include "loopscale/io.hpp"
#include "loopscale/job_scope.hpp"
#include "loopscale/job_type.hpp"
#include "loopscale/loop_executor.hpp"
#include "loopscale/loop_pool.hpp"
#include "loopscale/pool_stats.hpp"
#include "loopscale/prometheus.hpp"
#include "loopscale/rebalance.hpp"
#include "loopscale/registration.hpp"
#include "loopscale/scaling_policy.hpp"
#include "loopscale/shm/layout.hpp"
#include "loopscale/shm/publisher.hpp"
#include "loopscale/shm/reader.hpp"
#include "loopscale/utilization_monitor.hpp"
#include "loopscale/version.hpp"

// Coroutines typed on LoopExecutor, where the compiler has C++20 coroutines
// (Asio's own test, made by the headers above).
#if defined(ASIO_HAS_CO_AWAIT)
#include "loopscale/awaitable.hpp"
#include "loopscale/session.hpp"
#endif

#endif  // LOOPSCALE_LOOPSCALE_HPP_
