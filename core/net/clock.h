// The clock for deadlines and timeouts.
#pragma once

#include <chrono>

namespace subgate {

using SteadyTime = std::chrono::steady_clock::time_point;

// CLOCK_MONOTONIC at jiffy resolution (a few ms), read from memory instead of the clock source:
// every timeout in subgate is milliseconds or more, and this is read several times per request.
SteadyTime steadyNow();

}  // namespace subgate
