// core/isolates/fair_eviction.h: which idle isolate goes when the pool is full.
#include "core/isolates/fair_eviction.h"

#include <gtest/gtest.h>

#include <vector>

namespace subgate {
namespace {

SteadyTime at(int ms) { return SteadyTime(std::chrono::milliseconds(ms)); }

TEST(FairEviction, ACyclingTenantOverItsShareReplacesItsOwnIsolatesFirst) {
  // max_isolates 4: A holds one warm isolate, the least recently used of all; B cycling
  // instance ids holds three. Share: 4 / 2 = 2, and B is over it.
  const std::vector<size_t> held = {1, 3};
  const std::vector<EvictionCandidate> idle = {{0, at(1)}, {1, at(5)}, {1, at(3)}, {1, at(9)}};
  EXPECT_EQ(fairEvictionVictim(held, 1, 4, idle), 2u) << "B's least recently used";
  // Whoever asks: A asking for a second isolate also takes from B, not from itself.
  EXPECT_EQ(fairEvictionVictim(held, 0, 4, idle), 2u);
}

TEST(FairEviction, ATenantAtOrUnderItsShareKeepsItsIsolates) {
  // B's isolates are all busy: A (at its share, holding fewer than B) is never the victim of B.
  const std::vector<size_t> held = {1, 3};
  const std::vector<EvictionCandidate> idle = {{0, at(1)}};
  EXPECT_EQ(fairEvictionVictim(held, 1, 4, idle), kNoVictim);
  // Two tenants each at their share of 2: neither takes from the other (the request waits).
  const std::vector<size_t> even = {2, 2};
  const std::vector<EvictionCandidate> both = {{0, at(1)}, {1, at(2)}};
  EXPECT_EQ(fairEvictionVictim(even, 0, 4, std::vector<EvictionCandidate>{{1, at(2)}}), kNoVictim);
  // At its share, a tenant replaces its own idle isolate (a new instance id) before anything.
  EXPECT_EQ(fairEvictionVictim(even, 0, 4, both), 0u);
}

TEST(FairEviction, ANewcomerTakesTheLeastRecentlyUsedOfThoseHoldingMore) {
  // max_isolates 2, a and b hold one each, c holds none: share max(1, 2 / 3) = 1, nobody is
  // over it, so the least recently used isolate of a deployment holding more than c goes.
  const std::vector<size_t> held = {1, 1, 0};
  const std::vector<EvictionCandidate> idle = {{0, at(7)}, {1, at(4)}};
  EXPECT_EQ(fairEvictionVictim(held, 2, 2, idle), 1u);
  // A deployment holding one isolate asking for a second takes nothing from another holding one.
  EXPECT_EQ(fairEvictionVictim({std::vector<size_t>{1, 1}}, 0, 2,
                               std::vector<EvictionCandidate>{{1, at(1)}}),
            kNoVictim);
}

TEST(FairEviction, OverShareDeploymentsGoFirstEvenWhenOthersAreOlder) {
  // max_isolates 6, three deployments: share 2. C holds 3 (over); A's idle isolate is older.
  const std::vector<size_t> held = {2, 1, 3};
  const std::vector<EvictionCandidate> idle = {{0, at(1)}, {2, at(8)}, {2, at(6)}};
  EXPECT_EQ(fairEvictionVictim(held, 1, 6, idle), 2u);
  // Nothing idle at all.
  EXPECT_EQ(fairEvictionVictim(held, 1, 6, {}), kNoVictim);
}

}  // namespace
}  // namespace subgate
