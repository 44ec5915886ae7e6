// IsolateRegistry and IsolateLease (isolate_registry.h), and the placement and bookkeeping part
// of IsolateRegistry::Impl (isolate_pool.h). configure() and shutdown() are in
// isolate_lifecycle.cc.
#include "core/isolates/isolate_registry.h"

#include <event2/event.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "core/error/error_kind.h"
#include "core/isolates/client_message.h"
#include "core/isolates/fair_eviction.h"
#include "core/isolates/isolate_pool.h"
#include "core/isolates/runtime_launch.h"
#include "core/log/log.h"
#include "core/net/clock.h"
#include "core/server/worker.h"

namespace subgate {

namespace {

uint64_t nextSerial() {
  static std::atomic<uint64_t> serial{0};
  return ++serial;
}
constexpr std::chrono::milliseconds kExitWait{
    250};  // failureOf(): how long a dying isolate may take

std::string hexEncode(const unsigned char* bytes, size_t count) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(count * 2);
  for (size_t i = 0; i < count; ++i) {
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 15];
  }
  return out;
}

std::string randomHex(size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  RAND_bytes(raw.data(), static_cast<int>(raw.size()));
  return hexEncode(raw.data(), raw.size());
}

const UpstreamGroup& isolateGroup() {
  static const UpstreamGroup group = [] {
    UpstreamGroup g;
    g.name = "isolates";
    // Idle connections kept per isolate (and worker): at least the requests one isolate serves
    // at once (isolate_limit), or a burst reconnects for each request above it. 256 made h2c at
    // 20 x 20 (400 in flight, isolate_limit 1000) open and close a connection to the isolate
    // every 18 requests (1.4x the plain proxy's CPU, docs/performance.md). The idle ones close
    // after keepalive_timeout.
    g.keepalive = 1024;
    g.keepalive_timeout = std::chrono::seconds(30);
    g.keepalive_requests = 1000000;
    return g;
  }();
  return group;
}

}  // namespace

IsolateRegistry::Impl::Impl(IsolateRegistry& o)
    : owner(o), serial(nextSerial()), tag_secret(randomHex(32)) {}

std::string IsolateRegistry::Impl::loopTag(std::string_view key) const {
  unsigned char mac[32];
  unsigned int length = sizeof mac;
  HMAC(EVP_sha256(), tag_secret.data(), static_cast<int>(tag_secret.size()),
       reinterpret_cast<const unsigned char*>(key.data()), key.size(), mac, &length);
  return hexEncode(mac, 16);  // 128 bits are plenty to be unguessable
}

const BootBackoff::Failure* IsolateRegistry::Impl::bootBlockedLocked(const std::string& key) const {
  // A deployment with code, or whose fetch is under way, is not waiting out a failure.
  if (auto it = deployments.find(key);
      it != deployments.end() && (it->second->code || it->second->fetching))
    return nullptr;
  return boot_backoff.blocking(key, steadyNow());
}

const std::shared_ptr<Deployment>& IsolateRegistry::Impl::deploymentFor(
    const VerifiedToken& token) {
  auto it = deployments.find(token.deployment_key);
  if (it != deployments.end()) return it->second;
  auto d = std::make_shared<Deployment>();
  d->key = token.deployment_key;
  d->subhoster = token.subhoster;
  d->rpc_root = token.rpc_root;
  d->deployment_id = token.deployment_id;
  d->loop_tag = loopTag(d->key);
  d->sticky.setMax(settings.sticky_max);  // not shared yet: no lock
  std::string key = d->key;
  return deployments.emplace(std::move(key), std::move(d)).first->second;
}

std::unique_ptr<IsolateLease> IsolateRegistry::Impl::leaseLocked(
    const std::shared_ptr<Isolate>& isolate, const std::string& identity) {
  ++isolate->active;
  const SteadyTime now = steadyNow();
  isolate->last_used.store(now);
  Deployment* d = isolate->deployment;
  if (d) d->last_used.store(now);
  // Only a shared isolate is sticky; a dedicated one (instance id) counts no identity.
  const bool sticky = !identity.empty() && d && isolate->instance_id.empty();
  if (sticky) {
    std::lock_guard<std::mutex> lock(d->sticky_mu);
    d->sticky.opened(identity, isolate, now);
  }
  return std::make_unique<IsolateLease>(owner.shared_from_this(), isolate,
                                        d ? d->shared_from_this() : nullptr,
                                        sticky ? identity : std::string());
}

void IsolateRegistry::Impl::grantLocked(const std::shared_ptr<Isolate>& isolate, Waiter& waiter) {
  waiting.erase(waiter.ticket);
  auto holder =
      std::make_shared<std::unique_ptr<IsolateLease>>(leaseLocked(isolate, waiter.identity));
  waiter.worker->post([callback = std::move(waiter.callback), holder]() mutable {
    IsolateGrant grant;
    grant.lease = std::move(*holder);
    callback(std::move(grant));
  });
}

// Every failure a waiter gets leaves here: the client reads clientMessage()'s copy (no host
// path, printable, bounded); whoever failed it logged the full detail.
void IsolateRegistry::Impl::failLocked(Waiter& waiter, ErrorKind kind, const std::string& detail) {
  waiting.erase(waiter.ticket);
  std::string message = clientMessage(detail, settings.dir);
  waiter.worker->post([callback = std::move(waiter.callback), kind, message]() mutable {
    IsolateGrant grant;
    grant.error = kind;
    grant.message = message;
    callback(std::move(grant));
  });
}

std::shared_ptr<Isolate> IsolateRegistry::Impl::findRoomLocked(Deployment& d,
                                                               const std::string& instance_id,
                                                               uint32_t limit,
                                                               const std::string& identity) {
  if (!identity.empty() && instance_id.empty()) {
    std::shared_ptr<Isolate> isolate;
    {
      std::lock_guard<std::mutex> lock(d.sticky_mu);
      isolate = d.sticky.find(identity);
    }
    if (isolate && isolate->deployment == &d && isolate->state == Isolate::State::kReady &&
        isolate->active < limit)
      return isolate;
  }
  if (!instance_id.empty()) {
    auto it = d.instances.find(instance_id);
    if (it != d.instances.end() && it->second->state == Isolate::State::kReady) return it->second;
    return nullptr;
  }
  std::shared_ptr<Isolate> best;
  for (const auto& isolate : d.shared) {
    if (isolate->state != Isolate::State::kReady || isolate->active >= limit) continue;
    if (!best || isolate->active < best->active) best = isolate;
  }
  return best;
}

std::shared_ptr<Isolate> IsolateRegistry::Impl::findStartingLocked(Deployment& d,
                                                                   const std::string& instance_id,
                                                                   uint32_t limit) {
  if (!instance_id.empty()) {
    auto it = d.instances.find(instance_id);
    return it != d.instances.end() ? it->second : nullptr;
  }
  for (const auto& isolate : d.shared) {
    bool starting = isolate->state == Isolate::State::kWaitingCode ||
                    isolate->state == Isolate::State::kStarting;
    if (starting && isolate->waiters.size() < limit) return isolate;
  }
  return nullptr;
}

bool IsolateRegistry::Impl::idleLocked(const Isolate& isolate) {
  return isolate.state == Isolate::State::kReady && isolate.active == 0 && isolate.waiters.empty();
}

std::shared_ptr<Isolate> IsolateRegistry::Impl::evictionVictimLocked(const Deployment& asking) {
  std::vector<size_t> held;  // per deployment, in the map's order
  std::vector<EvictionCandidate> idle;
  std::vector<std::shared_ptr<Isolate>> idle_isolates;  // parallel to `idle`
  size_t asking_index = held.max_size();
  for (const auto& [key, d] : deployments) {
    const size_t owner = held.size();
    if (d.get() == &asking) asking_index = owner;
    held.push_back(d->shared.size() + d->instances.size());
    auto consider = [&](const std::shared_ptr<Isolate>& isolate) {
      if (!idleLocked(*isolate)) return;
      idle.push_back({owner, isolate->last_used.load()});
      idle_isolates.push_back(isolate);
    };
    for (const auto& isolate : d->shared) consider(isolate);
    for (const auto& [id, isolate] : d->instances) consider(isolate);
  }
  const size_t victim = fairEvictionVictim(held, asking_index, settings.max_isolates, idle);
  return victim == kNoVictim ? nullptr : idle_isolates[victim];
}

bool IsolateRegistry::Impl::instanceRoomLocked(Deployment& d) {
  // A loop: a reload may have lowered the cap below what the deployment holds.
  while (d.instances.size() >= settings.max_instances_per_deployment) {
    std::shared_ptr<Isolate> oldest;
    for (const auto& [id, isolate] : d.instances)
      if (idleLocked(*isolate) && (!oldest || isolate->last_used.load() < oldest->last_used.load()))
        oldest = isolate;
    if (!oldest || !closeIdleLocked(*oldest)) return false;
    ++counters.evicted_lru;
    LOG_INFO(
        "isolate %s: stopped (its deployment's least recently used instance) to make room "
        "under max_instances_per_deployment",
        oldest->tag().c_str());
    stopLocked(oldest);
  }
  return true;
}

std::shared_ptr<Isolate> IsolateRegistry::Impl::startNewLocked(Deployment& d,
                                                               const std::string& instance_id) {
  if (instance_id.empty() && d.shared.size() >= settings.max_isolates_per_deployment)
    return nullptr;
  if (live >= settings.max_isolates) {
    auto victim = evictionVictimLocked(d);
    if (!victim || !closeIdleLocked(*victim)) return nullptr;
    ++counters.evicted_lru;
    LOG_INFO("isolate %s: evicted (least recently used) to make room", victim->tag().c_str());
    stopLocked(victim);
  }
  auto isolate = std::make_shared<Isolate>();
  isolate->registry = this;
  isolate->id = next_id++;
  isolate->deployment = &d;
  isolate->deployment_id = d.deployment_id;
  isolate->instance_id = instance_id;
  isolate->counted = true;
  isolate->created = steadyNow();
  isolate->last_used.store(isolate->created);
  ++live;
  if (instance_id.empty()) {
    d.shared.push_back(isolate);
  } else {
    std::lock_guard<std::mutex> lock(d.instances_mu);
    d.instances[instance_id] = isolate;
  }
  if (d.code) {
    ++counters.code_cache_hits;  // no /boot: the code is still cached (boot_cache)
    launchLocked(isolate);
  } else {
    isolate->state = Isolate::State::kWaitingCode;
    fetchLocked(d);
  }
  return isolate;
}

IsolateRegistry::Impl::Placed IsolateRegistry::Impl::placeLocked(Deployment& d, Waiter& waiter) {
  if (auto isolate = findRoomLocked(d, waiter.instance_id, waiter.limit, waiter.identity)) {
    grantLocked(isolate, waiter);
    return Placed::kGranted;
  }
  auto isolate = findStartingLocked(d, waiter.instance_id, waiter.limit);
  if (!isolate && !waiter.instance_id.empty() && !instanceRoomLocked(d))
    return Placed::kOverInstanceCap;
  if (!isolate) isolate = startNewLocked(d, waiter.instance_id);
  if (!isolate) return Placed::kNoRoom;
  isolate->waiters.push_back(std::move(waiter));
  return Placed::kAttached;
}

void IsolateRegistry::Impl::serveQueueLocked(Deployment& d) {
  while (!d.queue.empty()) {
    const Placed placed = placeLocked(d, d.queue.front());
    if (placed == Placed::kNoRoom) return;
    if (placed == Placed::kOverInstanceCap)
      failLocked(d.queue.front(), ErrorKind::kCapacityExceeded, instanceCapMessageLocked());
    d.queue.pop_front();
    --queued;
  }
}

std::string IsolateRegistry::Impl::instanceCapMessageLocked() const {
  return "every dedicated isolate this deployment may have (max_instances_per_deployment " +
         std::to_string(settings.max_instances_per_deployment) + ") is busy";
}

void IsolateRegistry::Impl::pumpQueuesLocked() {
  if (queued == 0) return;
  for (auto& [key, d] : deployments)
    if (!d->queue.empty()) serveQueueLocked(*d);
}

void IsolateRegistry::Impl::detachLocked(Isolate& isolate) {
  isolate.accepting.store(false);
  if (isolate.counted) {
    isolate.counted = false;
    --live;
  }
  leaveClusterLocked(isolate);
  Deployment* d = isolate.deployment;
  if (!d) return;
  if (isolate.instance_id.empty()) {
    std::erase_if(d->shared, [&](const auto& p) { return p.get() == &isolate; });
    publishReadyLocked(*d);
  } else {
    std::lock_guard<std::mutex> lock(d->instances_mu);
    if (auto it = d->instances.find(isolate.instance_id);
        it != d->instances.end() && it->second.get() == &isolate)
      d->instances.erase(it);
  }
  isolate.deployment = nullptr;
}

// The hub's events belong to the supervisor thread: other threads post the leave.
void IsolateRegistry::Impl::leaveClusterLocked(Isolate& isolate) {
  if (!hub) return;
  if (supervisor.onLoopThread()) {
    hub->leave(isolate.id);
  } else {
    supervisor.post([this, id = isolate.id] { hub->leave(id); });
  }
}

void IsolateRegistry::Impl::failWaitersLocked(Isolate& isolate, ErrorKind kind,
                                              const std::string& message) {
  for (Waiter& waiter : isolate.waiters) failLocked(waiter, kind, message);
  isolate.waiters.clear();
}

void IsolateRegistry::Impl::stopLocked(const std::shared_ptr<Isolate>& isolate) {
  if (isolate->state == Isolate::State::kStopping || isolate->state == Isolate::State::kDead)
    return;
  detachLocked(*isolate);
  isolate->state = Isolate::State::kStopping;
  supervisor.post([isolate, grace = settings.stop_timeout] {
    if (isolate->process.pid <= 0 || !isolate->exit_ev) return;
    kill(isolate->process.pid, SIGINT);
    const timeval tv = toTimeval(grace);
    evtimer_add(isolate->timer, &tv);
  });
}

void IsolateRegistry::Impl::launchLocked(const std::shared_ptr<Isolate>& isolate) {
  isolate->state = Isolate::State::kStarting;
  isolate->nonce = randomHex(16);
  eventsBeginLocked(*isolate);
  supervisor.post([this, isolate] { launch(isolate); });
}

// ---- IsolateLease

IsolateLease::IsolateLease(std::shared_ptr<IsolateRegistry> registry,
                           std::shared_ptr<Isolate> isolate, std::shared_ptr<Deployment> deployment,
                           std::string identity)
    : registry_(std::move(registry)),
      isolate_(std::move(isolate)),
      deployment_(std::move(deployment)),
      identity_(std::move(identity)) {}

IsolateLease::~IsolateLease() { registry_->release(isolate_, deployment_.get(), identity_); }

const UpstreamServer& IsolateLease::server() const { return isolate_->server; }

uint64_t IsolateLease::isolateId() const { return isolate_->id; }
const UpstreamGroup& IsolateLease::group() const { return isolateGroup(); }

// ---- IsolateRegistry

std::shared_ptr<IsolateRegistry> IsolateRegistry::create() {
  return std::shared_ptr<IsolateRegistry>(new IsolateRegistry());
}

IsolateRegistry::IsolateRegistry() : impl_(std::make_unique<Impl>(*this)) {}
// Leases and boot threads hold the registry: the last owner is gone, and so is any thread but
// the supervisor, which shutdown() stops.
IsolateRegistry::~IsolateRegistry() { shutdown(); }

namespace {

// The grant for a request that `d`'s own isolate sent back to it (its loop tag): LOOP_DETECTED.
bool loopsBack(const IsolateRequest& request, const Deployment& d, IsolateGrant& grant) {
  if (request.loop_tag.empty() || request.loop_tag != d.loop_tag) return false;
  grant.error = ErrorKind::kLoopDetected;
  grant.message =
      clientMessage("deployment \"" + d.deployment_id + "\" sent a request to itself", {});
  return true;
}

}  // namespace

std::optional<IsolateGrant> IsolateRegistry::acquireWarm(const IsolateRequest& request) {
  Impl& m = *impl_;
  WorkerPlacement& placement = m.workerPlacement();
  auto it = placement.deployments.find(request.token->deployment_key);
  if (it == placement.deployments.end()) return std::nullopt;
  IsolateGrant grant;
  if (loopsBack(request, *it->second.deployment, grant)) return grant;
  grant.lease = m.leaseWarm(it->second, request.limit, request.instance_id, request.identity);
  if (!grant.lease) return std::nullopt;
  return grant;
}

IsolateRegistry::Placement IsolateRegistry::acquire(const IsolateRequest& request, Worker* worker,
                                                    Callback callback) {
  Impl& m = *impl_;
  Placement placed;
  IsolateGrant& grant = placed.grant;
  WorkerPlacement& placement = m.workerPlacement();
  WorkerPlacement::Entry* cached = nullptr;
  if (auto it = placement.deployments.find(request.token->deployment_key);
      it != placement.deployments.end())
    cached = &it->second;
  std::lock_guard<std::mutex> lock(m.mu);
  if (const BootBackoff::Failure* failure = m.bootBlockedLocked(request.token->deployment_key)) {
    // The origin failed this deployment's /boot a moment ago: the same answer, not another call.
    ++m.counters.boot_backoff_answers;
    grant.error = failure->error;
    grant.message = clientMessage(failure->message, m.settings.dir);
    return placed;
  }
  const std::shared_ptr<Deployment>& shared_d = m.deploymentFor(*request.token);
  Deployment& d = *shared_d;
  d.last_used.store(steadyNow());
  d.isolate_limit = request.limit;
  if (!cached) cached = &placement.deployments[d.key];
  if (cached->deployment != shared_d) {
    *cached = WorkerPlacement::Entry();
    cached->deployment = shared_d;
  }
  if (loopsBack(request, d, grant)) return placed;
  std::string instance_id(request.instance_id);
  std::string identity(request.identity);
  if (auto isolate = m.findRoomLocked(d, instance_id, request.limit, identity)) {
    grant.lease = m.leaseLocked(isolate, identity);
    return placed;
  }
  Waiter waiter;
  waiter.ticket = placed.ticket = m.next_ticket++;
  waiter.worker = worker;
  waiter.callback = std::move(callback);
  waiter.limit = request.limit;
  waiter.instance_id = std::move(instance_id);
  waiter.identity = std::move(identity);
  m.waiting[waiter.ticket] = &d;
  placed.waiting = true;
  switch (m.placeLocked(d, waiter)) {
    case Impl::Placed::kNoRoom:
      placed.queued = true;
      m.enqueueLocked(d, std::move(waiter));
      break;
    case Impl::Placed::kOverInstanceCap:
      // At once, not after queue_timeout: an instance id names one isolate, and the
      // deployment's others are all busy.
      m.waiting.erase(waiter.ticket);
      placed.waiting = false;
      grant.error = ErrorKind::kCapacityExceeded;
      grant.message = m.instanceCapMessageLocked();
      break;
    default: break;
  }
  return placed;
}

bool IsolateRegistry::cancel(uint64_t ticket) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  auto it = m.waiting.find(ticket);
  if (it == m.waiting.end()) return false;
  Deployment& d = *it->second;
  m.waiting.erase(it);
  auto matches = [ticket](const Waiter& w) { return w.ticket == ticket; };
  if (std::erase_if(d.queue, matches) > 0) {
    --m.queued;
    return true;
  }
  for (const auto& isolate : d.shared) std::erase_if(isolate->waiters, matches);
  for (const auto& [id, isolate] : d.instances) std::erase_if(isolate->waiters, matches);
  return true;
}

ErrorKind IsolateRegistry::failureOf(const Isolate& isolate, std::string& message) {
  Impl& m = *impl_;
  auto& mutable_isolate = const_cast<Isolate&>(isolate);
  // A broken connection usually means the process is dying. Wait briefly for its exit (this
  // path is rare) so that the answer names the cause (its last words on stderr: the memory
  // limit) and so that the next request is not placed on it before the supervisor notices.
  int pidfd = -1;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (isolate.process.pidfd >= 0)
      pidfd = dup(isolate.process.pidfd);  // the supervisor may close its own
  }
  bool exited = false;
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    exited = poll(&p, 1, static_cast<int>(kExitWait.count())) == 1;
    ::close(pidfd);
  }
  std::lock_guard<std::mutex> lock(m.mu);
  if (isolate.process.stderr_fd >= 0)
    m.drainLocked(mutable_isolate, isolate.process.stderr_fd, true);
  if (exited) {
    m.detachLocked(mutable_isolate);
    m.cgroupOomLocked(mutable_isolate);  // the supervisor may not have seen the exit yet
  }
  // time_limit was set before the kill; memory_limit by the stderr drained above or the cgroup.
  if (isolate.memory_limit) {
    message = isolate.failure;
    return ErrorKind::kMemoryLimit;
  }
  if (isolate.time_limit) {
    message = isolate.failure;
    return ErrorKind::kTimeLimit;
  }
  message = exited ? "the isolate crashed while serving the request"
                   : "the connection to the isolate broke while serving the request";
  if (exited && !isolate.failure.empty()) message += " (" + isolate.failure + ")";
  message = clientMessage(message, m.settings.dir);  // exited() logged the full detail
  return ErrorKind::kDeploymentFailed;
}

std::chrono::milliseconds IsolateRegistry::queueTimeout() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->settings.queue_timeout;
}

void IsolateRegistry::release(const std::shared_ptr<Isolate>& isolate, Deployment* deployment,
                              const std::string& identity) {
  impl_->releaseLease(isolate, deployment, identity);
}

}  // namespace subgate
