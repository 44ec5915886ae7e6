// The warm placement path of IsolateRegistry::Impl (isolate_pool.h): a worker's placement cache,
// leases taken and given back without the registry mutex, and the locked side's halves of the
// two handshakes that keep the paths consistent (closing an idle isolate, queueing a waiter,
// republishing a deployment's ready list).
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "core/isolates/isolate_pool.h"
#include "core/net/clock.h"

namespace subgate {
namespace {

constexpr size_t kMaxCachedDeployments = 4096;  // per worker thread (WorkerPlacement)

}  // namespace

WorkerPlacement& IsolateRegistry::Impl::workerPlacement() {
  thread_local WorkerPlacement placement;
  if (placement.registry != serial || placement.deployments.size() > kMaxCachedDeployments) {
    placement.deployments.clear();
    placement.registry = serial;
  }
  return placement;
}

namespace {

// Takes a slot of `isolate` if it is accepting and under `limit` (compare-and-swap on `active`).
bool takeSlot(Isolate& isolate, uint32_t limit) {
  uint32_t active = isolate.active.load(std::memory_order_relaxed);
  while (active < limit && isolate.accepting.load(std::memory_order_relaxed)) {
    if (isolate.active.compare_exchange_weak(active, active + 1)) return true;
  }
  return false;
}

// Takes a slot of the least busy isolate of `ready` with room under `limit`; null when none has.
std::shared_ptr<Isolate> takeLeastBusy(const ReadyList& ready, uint32_t limit) {
  for (int attempt = 0; attempt < 4; ++attempt) {
    const std::shared_ptr<Isolate>* best = nullptr;
    uint32_t best_active = limit;
    for (const auto& isolate : ready) {
      const uint32_t active = isolate->active.load(std::memory_order_relaxed);
      if (active < best_active && isolate->accepting.load(std::memory_order_relaxed)) {
        best = &isolate;
        best_active = active;
      }
    }
    if (!best) return nullptr;
    uint32_t expected = best_active;
    if ((*best)->active.compare_exchange_strong(expected, expected + 1)) return *best;
  }
  return nullptr;  // lost every race: the locked path decides
}

}  // namespace

std::unique_ptr<IsolateLease> IsolateRegistry::Impl::leaseWarm(WorkerPlacement::Entry& entry,
                                                               uint32_t limit,
                                                               std::string_view instance_id,
                                                               std::string_view identity) {
  Deployment& d = *entry.deployment;
  if (d.ready_version.load(std::memory_order_acquire) != entry.version) {
    std::lock_guard<std::mutex> lock(d.ready_mu);  // this deployment's, only after a change
    entry.ready = d.ready;
    entry.version = d.ready_version.load(std::memory_order_relaxed);
  }
  // The identity's last isolate first, while it has room (protocol.md §6).
  std::unique_lock<std::mutex> sticky_lock;
  std::shared_ptr<Isolate> isolate;
  if (!instance_id.empty()) {
    // A dedicated isolate: the instance's own, whatever its load (isolate_limit does not apply).
    {
      std::lock_guard<std::mutex> lock(d.instances_mu);
      if (auto it = d.instances.find(instance_id); it != d.instances.end()) isolate = it->second;
    }
    if (!isolate || !takeSlot(*isolate, UINT32_MAX)) return nullptr;
  } else if (!identity.empty()) {
    sticky_lock = std::unique_lock<std::mutex>(d.sticky_mu);
    if (auto last = d.sticky.find(identity); last && takeSlot(*last, limit)) isolate = last;
  }
  if (!isolate && instance_id.empty()) isolate = takeLeastBusy(*entry.ready, limit);
  if (!isolate) return nullptr;
  if (!isolate->accepting.load()) {         // being stopped: see closeIdleLocked
    if (sticky_lock) sticky_lock.unlock();  // releaseLease may take mu, which comes first
    releaseLease(isolate, nullptr, {});
    return nullptr;
  }
  const SteadyTime now = steadyNow();
  isolate->last_used.store(now);
  d.last_used.store(now);
  if (sticky_lock) d.sticky.opened(identity, isolate, now);
  d.warm_leases.fetch_add(1, std::memory_order_relaxed);
  return std::make_unique<IsolateLease>(owner.shared_from_this(), isolate, entry.deployment,
                                        sticky_lock ? std::string(identity) : std::string());
}

void IsolateRegistry::Impl::releaseLease(const std::shared_ptr<Isolate>& isolate,
                                         Deployment* deployment, const std::string& identity) {
  const SteadyTime now = steadyNow();
  isolate->last_used.store(now);
  if (!identity.empty() && deployment) {
    std::lock_guard<std::mutex> lock(deployment->sticky_mu);
    deployment->sticky.closed(identity, isolate.get(), now);
  }
  --isolate->active;               // seq_cst, then read `queued` (see isolate_pool.h)
  if (queued.load() == 0) return;  // nobody waits anywhere: no lock
  std::lock_guard<std::mutex> lock(mu);
  if (isolate->state == Isolate::State::kReady && isolate->deployment)
    serveQueueLocked(*isolate->deployment);
  if (isolate->active == 0) pumpQueuesLocked();
}

// ---- placement (mu held)

bool IsolateRegistry::Impl::closeIdleLocked(Isolate& isolate) {
  isolate.accepting.store(false);  // seq_cst, then read `active` (see isolate_pool.h)
  if (isolate.active.load() == 0) return true;
  isolate.accepting.store(true);
  return false;
}

void IsolateRegistry::Impl::publishReadyLocked(Deployment& d) {
  auto ready = std::make_shared<ReadyList>();
  for (const auto& isolate : d.shared)
    if (isolate->state == Isolate::State::kReady) ready->push_back(isolate);
  std::lock_guard<std::mutex> lock(d.ready_mu);
  d.ready = std::move(ready);
  d.ready_version.fetch_add(1, std::memory_order_release);
}

void IsolateRegistry::Impl::enqueueLocked(Deployment& d, Waiter waiter, bool front) {
  if (front) {
    d.queue.push_front(std::move(waiter));
  } else {
    d.queue.push_back(std::move(waiter));
  }
  ++queued;  // seq_cst, then look for room again (see isolate_pool.h)
  serveQueueLocked(d);
}

}  // namespace subgate
