// Which idle isolate to stop when the process is at max_isolates and a deployment needs one more
// (issue 17, point 6). A plain global LRU let one tenant that cycles instance ids stop every
// other tenant's warm isolates; this choice takes from the deployments holding more than their
// fair share first, and never from a deployment holding no more than the one asking.
//
// The rule (docs/config.md, "Placement"):
//   share = max_isolates / (deployments holding an isolate, the asking one included), at least 1
//   1. the least recently used idle isolate of a deployment holding more than `share`
//      (the asking deployment's own included: over its share it replaces its own first);
//   2. else the least recently used idle isolate of the asking deployment (it replaces its own);
//   3. else the least recently used idle isolate of a deployment holding more isolates than the
//      asking one (a move that leaves it holding at least as many as the asker had);
//   4. else none: the request waits for room like any other (queue_timeout, then 503
//      CAPACITY_EXCEEDED).
// Pure: no state, any thread; isolate_registry.cc feeds it from the pool under the registry mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/net/clock.h"

namespace subgate {

// An isolate that could be stopped now: ready, with no request in progress and none waiting.
struct EvictionCandidate {
  size_t owner = 0;  // index of its deployment in `held`
  SteadyTime last_used{};
};

constexpr size_t kNoVictim = SIZE_MAX;

// `held[i]`: the isolates deployment i holds (starting, ready or busy), counting toward
// max_isolates. `asking`: the index of the deployment that needs one more. Returns the index
// in `idle` of the isolate to stop, or kNoVictim.
size_t fairEvictionVictim(std::span<const size_t> held, size_t asking, uint32_t max_isolates,
                          std::span<const EvictionCandidate> idle);

}  // namespace subgate
