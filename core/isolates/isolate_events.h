// What an isolate keeps for its events (core/events; docs/origin.md "Events"): who receives them
// and the log rate limit. Part of Isolate (isolate_pool.h); the functions that use it are
// IsolateRegistry::Impl's in isolate_events.cc.
#pragma once

#include <memory>
#include <string>

#include "core/events/log_rate_limiter.h"
#include "core/ingress/ingress.h"
#include "core/net/clock.h"

namespace subgate {

struct IsolateEvents {
  std::string execution_id;  // a UUID made when the isolate is given its deployment
  // Where its events go: its deployment's subhoster when that has `events on`, else null.
  std::shared_ptr<const Subhoster> subhoster;
  std::string rpc_root;
  std::string region;     // the runtime's `region` when it was given its deployment (DENO_REGION)
  SteadyTime launched{};  // given its deployment: boot_time counts from here
  bool boot_reported = false;  // a boot or bootFailure event was made
  LogRateLimiter limiter;      // events_log_rate
};

}  // namespace subgate
