#include "core/isolates/fair_eviction.h"

#include <algorithm>

namespace subgate {
namespace {

// The least recently used candidate whose owner `eligible` accepts, or kNoVictim.
template <typename Eligible>
size_t leastRecentlyUsed(std::span<const EvictionCandidate> idle, Eligible eligible) {
  size_t best = kNoVictim;
  for (size_t i = 0; i < idle.size(); ++i) {
    if (!eligible(idle[i].owner)) continue;
    if (best == kNoVictim || idle[i].last_used < idle[best].last_used) best = i;
  }
  return best;
}

}  // namespace

size_t fairEvictionVictim(std::span<const size_t> held, size_t asking, uint32_t max_isolates,
                          std::span<const EvictionCandidate> idle) {
  size_t holders = 0;
  for (size_t i = 0; i < held.size(); ++i)
    if (held[i] > 0 || i == asking) ++holders;
  const size_t share = std::max<size_t>(1, max_isolates / std::max<size_t>(1, holders));
  const size_t asker_holds = asking < held.size() ? held[asking] : 0;
  size_t victim = leastRecentlyUsed(idle, [&](size_t owner) { return held[owner] > share; });
  if (victim == kNoVictim)
    victim = leastRecentlyUsed(idle, [&](size_t owner) { return owner == asking; });
  if (victim == kNoVictim)
    victim = leastRecentlyUsed(idle, [&](size_t owner) { return held[owner] > asker_holds; });
  return victim;
}

}  // namespace subgate
