// The boot path of IsolateRegistry::Impl (isolate_pool.h): a deployment's code is fetched from
// its origin once (single flight, on its own thread) and cached (bounded: boot_cache); the
// isolates that waited for it are then launched.
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/isolates/boot_client.h"
#include "core/isolates/client_message.h"
#include "core/isolates/isolate_pool.h"
#include "core/log/log.h"

namespace subgate {

void IsolateRegistry::Impl::fetchLocked(Deployment& d) {
  if (d.fetching) return;
  d.fetching = true;
  d.fetch_started = steadyNow();
  ++counters.boots;
  // One thread per fetch: fetches are rare (once per deployment while its code is cached) and
  // a slow origin must not hold up other deployments' boots. The thread holds the registry.
  std::thread([this, keep = owner.shared_from_this(), dp = &d, subhoster = d.subhoster,
               rpc_root = d.rpc_root, id = d.deployment_id, options = settings.origin,
               limits = settings.bundle] {
    BootOutcome outcome = fetchDeployment(*subhoster, rpc_root, id, options, limits);
    std::lock_guard<std::mutex> lock(mu);
    fetchDoneLocked(*dp, std::move(outcome));
  }).detach();
}

void IsolateRegistry::Impl::fetchDoneLocked(Deployment& d, BootOutcome outcome) {
  d.fetching = false;
  std::vector<std::shared_ptr<Isolate>> waiting_code;
  for (const auto& isolate : d.shared)
    if (isolate->state == Isolate::State::kWaitingCode) waiting_code.push_back(isolate);
  for (const auto& [id, isolate] : d.instances)
    if (isolate->state == Isolate::State::kWaitingCode) waiting_code.push_back(isolate);
  if (!outcome.code) {
    ++counters.boot_failures;
    recordFetchFailureLocked(d, outcome.error, outcome.message);
    const std::chrono::milliseconds retry =
        boot_backoff.failed(d.key, outcome.error, outcome.message, steadyNow());
    LOG_WARN("deployment %s: boot failed: %s (the same answer for %lld ms before asking again)",
             d.deployment_id.c_str(), outcome.message.c_str(),
             static_cast<long long>(retry.count()));
    for (const auto& isolate : waiting_code) {
      failWaitersLocked(*isolate, outcome.error, outcome.message);
      detachLocked(*isolate);
      isolate->state = Isolate::State::kDead;
    }
    // Requests queued for room would boot the same failure: answer them now.
    for (Waiter& waiter : d.queue) failLocked(waiter, outcome.error, outcome.message);
    queued -= d.queue.size();
    d.queue.clear();
    pumpQueuesLocked();
    if (d.empty() && !d.code) {
      std::string key = d.key;
      deployments.erase(key);
    }  // keep no record of failed boots
    return;
  }
  LOG_INFO("deployment %s: fetched from %s (%zu bytes)", d.deployment_id.c_str(),
           d.rpc_root.c_str(), outcome.code->bytes);
  boot_backoff.succeeded(d.key);
  d.code = std::move(outcome.code);
  ++cached_code;
  trimCodeCacheLocked();
  for (const auto& isolate : waiting_code) launchLocked(isolate);
}

namespace {

int64_t unixMillisNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t millisSince(SteadyTime start) {
  if (start == SteadyTime{}) return 0;
  return std::chrono::duration_cast<std::chrono::milliseconds>(steadyNow() - start).count();
}

}  // namespace

void IsolateRegistry::Impl::recordBootLocked(Isolate& isolate, bool ok, ErrorKind error,
                                             std::string_view message) {
  if (isolate.boot_recorded || isolate.deployment_id.empty()) return;  // once; never a spare
  isolate.boot_recorded = true;
  if (!ok) ++counters.isolate_boot_failures;
  BootRecord record;
  record.deployment_id = isolate.deployment_id;
  record.instance_id = isolate.instance_id;
  record.isolate = isolate.id;
  record.duration_ms = millisSince(isolate.events.launched);
  record.ok = ok;
  if (!ok) {
    record.error = std::string(errorInfo(error).code);
    // Printable and without the runtime folder's paths: the page shows it as it is.
    record.message = clientMessage(message, settings.dir);
  }
  pushBootLocked(std::move(record));
}

void IsolateRegistry::Impl::recordFetchFailureLocked(const Deployment& d, ErrorKind error,
                                                     std::string_view message) {
  BootRecord record;
  record.deployment_id = d.deployment_id;
  record.duration_ms = millisSince(d.fetch_started);
  record.error = std::string(errorInfo(error).code);
  record.message = clientMessage(message, settings.dir);
  pushBootLocked(std::move(record));
}

void IsolateRegistry::Impl::pushBootLocked(BootRecord record) {
  record.time_ms = unixMillisNow();
  recent_boots.push_front(std::move(record));
  if (recent_boots.size() > kRecentBoots) recent_boots.pop_back();
}

void IsolateRegistry::Impl::trimCodeCacheLocked() {
  while (cached_code > settings.boot_cache) {
    Deployment* oldest = nullptr;
    for (auto& [key, d] : deployments)
      if (d->code && d->empty() && (!oldest || d->last_used.load() < oldest->last_used.load()))
        oldest = d.get();
    if (!oldest) return;
    --cached_code;
    // Workers' placement caches may hold the deployment a while longer: not its code.
    oldest->code.reset();
    deployments.erase(oldest->key);
  }
}

}  // namespace subgate
