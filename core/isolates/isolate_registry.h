// The isolate pool of the whole process: deployments, their isolates (one Deno process each),
// the spare processes, boots and stops. Shared by every worker thread; child processes, their
// pipes and timers are handled on its own supervisor thread, origin /boot calls on a boot
// thread.
//
// Placement (protocol.md §5, §6): a request with an instance id gets the dedicated isolate of
// (deployment, id), started on first use and never shared. Other requests take the
// least-utilized ready isolate of their deployment under the request's isolate_limit (active
// requests per isolate); when all are full they wait for an isolate being started that still
// has room, or start a new one (up to max_isolates_per_deployment, and max_isolates in all,
// evicting an idle isolate of a deployment over its fair share first: fair_eviction.h), or queue
// for a free slot. Dedicated isolates are capped per deployment (max_instances_per_deployment: a
// new id stops the deployment's least recently used idle instance, or is refused with
// CAPACITY_EXCEEDED when all are busy). Failure messages reach clients through clientMessage()
// (client_message.h): no host path, printable, bounded.
// A deployment's code is fetched once (single flight) and cached (bounded: boot_cache).
//
// Threading: acquire(), acquireWarm(), cancel(), release (through ~IsolateLease) and
// failureOf() are called on worker threads. A warm request (a deployment the worker has seen, and a
// ready shared isolate with room or its instance's ready dedicated isolate) is placed and released
// without the registry's mutex (one with an identity or instance id takes a small lock of its
// deployment's); everything else takes the mutex, held only for bookkeeping, never across I/O that
// can block. Callbacks run on the worker that asked, through its mailbox.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/error/error_kind.h"
#include "core/events/event_sender.h"
#include "core/ingress/ingress.h"
#include "core/isolates/cluster_hub.h"
#include "core/isolates/runtime_settings.h"
#include "core/pipeline/latency_histogram.h"
#include "core/upstream/upstream_group.h"

namespace subgate {

class Worker;
struct Isolate;
struct Deployment;
class IsolateRegistry;

// One request's claim on an isolate: counts toward its isolate_limit until destroyed.
class IsolateLease {
 public:
  IsolateLease(std::shared_ptr<IsolateRegistry> registry, std::shared_ptr<Isolate> isolate,
               std::shared_ptr<Deployment> deployment, std::string identity);
  ~IsolateLease();
  IsolateLease(const IsolateLease&) = delete;
  IsolateLease& operator=(const IsolateLease&) = delete;
  // Where the isolate listens (a unix socket) and the pool settings for it.
  const UpstreamServer& server() const;
  const UpstreamGroup& group() const;
  const Isolate& isolate() const { return *isolate_; }
  // The isolate's number, as in its name "iso-N" (logs, runtime folder, cgroup).
  uint64_t isolateId() const;
  IsolateRegistry& registry() const { return *registry_; }

 private:
  std::shared_ptr<IsolateRegistry> registry_;  // alive while a lease is (a grant in a mailbox)
  std::shared_ptr<Isolate> isolate_;
  std::shared_ptr<Deployment> deployment_;  // whose sticky table counts this lease
  std::string identity_;                    // the request's identify() answer, if any
};

struct IsolateGrant {
  std::unique_ptr<IsolateLease> lease;  // null on failure
  ErrorKind error = ErrorKind::kInternalServerError;
  std::string message;
};

struct IsolateRequest {
  const VerifiedToken* token = nullptr;  // deployment, origin and subhoster
  std::string_view instance_id;          // empty: a shared isolate
  uint32_t limit = 50;                   // isolate_limit where the request is served
  std::string_view loop_tag;             // x-subgate-loop of the request, if any
  std::string_view identity;             // identify()'s answer: sticky placement (protocol.md §6)
};

class IsolateRegistry : public std::enable_shared_from_this<IsolateRegistry> {
 public:
  using Callback = std::function<void(IsolateGrant)>;

  // A registry that runs nothing until configure(). The compiled config owns it
  // (RuntimeConfig::isolates, written by the isolates module), and a reload hands it on to the
  // next config, so isolates outlive reloads. Shut down at exit or when the last owner lets go.
  static std::shared_ptr<IsolateRegistry> create();
  ~IsolateRegistry();
  IsolateRegistry(const IsolateRegistry&) = delete;
  IsolateRegistry& operator=(const IsolateRegistry&) = delete;

  // Main thread, at every config load: applies the runtime settings (starting the supervisor
  // and writing the harness on first use). False with `error` when the folder or the Deno
  // executable is unusable.
  bool configure(const RuntimeSettings& settings, std::string& error);
  // Main thread, at exit (or the last owner's thread, from the destructor): kills every isolate
  // and spare and stops the threads. Once; later calls do nothing.
  void shutdown();

  // What acquire() did with a request.
  struct Placement {
    // A lease when a ready isolate had room now; an error for a request that cannot be served
    // (LOOP_DETECTED); neither while the request waits.
    IsolateGrant grant;
    bool waiting = false;  // the callback runs later with the grant, unless cancel(ticket) first
    bool queued = false;   // waiting for room in a full pool (queue_timeout applies), not a boot
    uint64_t ticket = 0;   // while waiting: what cancel() takes
  };
  // Worker thread, first: the warm path, for a deployment this worker placed before: a lease
  // when one of its ready isolates has room now, or LOOP_DETECTED; nullopt when the request
  // needs acquire() (a boot, a wait, a deployment new to this worker). Takes no callback and no
  // lock of the registry, so a warm request allocates none.
  std::optional<IsolateGrant> acquireWarm(const IsolateRequest& request);
  // Worker thread, when acquireWarm() gave nullopt: places `request` under the registry's
  // mutex now, or makes it wait; `callback` runs on `worker`.
  Placement acquire(const IsolateRequest& request, Worker* worker, Callback callback);
  // Worker thread: the waiter went away or timed out. True when it was still waiting (its
  // callback will never run); false when its grant is already on the way.
  bool cancel(uint64_t ticket);
  // Worker thread: why an exchange with `isolate` failed. DEPLOYMENT_FAILED, MEMORY_LIMIT (V8's
  // heap or the process's memory cgroup) or TIME_LIMIT (killed for a CPU rule) with a message
  // when the isolate died; otherwise DEPLOYMENT_FAILED for a broken connection.
  ErrorKind failureOf(const Isolate& isolate, std::string& message);

  // The settings in force (copy; for the isolates module's queue timeout).
  std::chrono::milliseconds queueTimeout() const;

  // Counts for tests and status: isolates alive (starting or ready), spares waiting.
  struct Stats {
    size_t isolates = 0;
    size_t spares = 0;
    size_t deployments = 0;
    size_t sticky = 0;                  // identifier -> isolate entries
    uint64_t boots = 0;                 // /boot calls made
    uint64_t boot_failures = 0;         // /boot calls that failed
    uint64_t boot_backoff_answers = 0;  // requests answered with a remembered boot failure
    uint64_t processes = 0;             // runtime processes started
    uint64_t ready = 0;                 // isolates that became ready to serve their deployment
    uint64_t evicted_idle = 0;          // isolates stopped after idle_timeout
    uint64_t evicted_lru = 0;           // idle isolates stopped to make room under max_isolates
    uint64_t egress_denied = 0;         // connections and listens the egress policy refused
    uint64_t stopped_time_limit = 0;    // isolates killed for CPU time (TIME_LIMIT)
    uint64_t stopped_memory_limit = 0;  // isolates that passed a memory limit (MEMORY_LIMIT)
    // Isolates of a deployment that ended unasked and not for a limit (DEPLOYMENT_FAILED): their
    // code failed to load, threw an uncaught exception, or the process exited or crashed.
    uint64_t stopped_failed = 0;
    uint64_t events_rate_limited = 0;  // log lines events_log_rate kept out of events
    uint64_t code_cache_hits = 0;      // isolates started with their deployment's code cached
    // Deployments' isolates now, by state (spares are `spares`); stats() only, not counts().
    size_t waiting_code = 0;  // waiting for their deployment's /boot
    size_t starting = 0;      // process started or adopted, not ready yet
    size_t ready_now = 0;     // ready to serve
    size_t stopping = 0;      // asked to stop, not exited yet
    // From an isolate's creation for a request (its /boot, or the spare it took) to ready.
    LatencyHistogram boot_cold;   // started a process of its own
    LatencyHistogram boot_spare;  // took a spare

    // For the status page.
    uint64_t isolate_boot_failures = 0;  // isolates that failed or died before they were ready
    size_t queued = 0;                   // requests waiting for room in deployment queues
  };
  Stats stats() const;
  // stats() without `sticky`, which sums every deployment's table: constant time under the
  // mutex, for the status page's sampler (every 2 s whatever the number of deployments).
  Stats counts() const;
  // Isolates alive per deployment now (for per-deployment metrics), by deployment
  // (subhoster name, deployment id).
  struct DeploymentIsolates {
    std::string subhoster;
    std::string deployment_id;
    size_t isolates = 0;
  };
  std::vector<DeploymentIsolates> isolatesByDeployment() const;
  // Every count `status` shows, from the same sources, for the `metrics` handler: the pool's
  // stats(), the cluster hub's totals (zero before any isolate ran) and the events sender's.
  struct Snapshot {
    Stats pool;
    ClusterHub::Counters cluster;
    EventSender::Totals events;
  };
  Snapshot snapshot() const;
  // One boot the pool saw end, for the status page: an isolate that became ready or failed
  // before it was, or a failed fetch of a deployment's code from its origin (`isolate` 0).
  struct BootRecord {
    std::string deployment_id;
    std::string instance_id;
    uint64_t isolate = 0;     // "iso-N"; 0: the deployment's /boot call
    int64_t time_ms = 0;      // when it ended, Unix milliseconds
    int64_t duration_ms = 0;  // from the isolate's launch (its code at hand), or the /boot call's
    bool ok = false;
    std::string error;    // x-deno-error code of a failure (DEPLOYMENT_FAILED, ...)
    std::string message;  // what failed, for the operator (bounded)
  };
  // How many of the last boots statusJson() lists ("recent_boots", newest first).
  static constexpr size_t kRecentBoots = 32;
  // The pool as JSON for the `status` handler: deployments, their isolates with active
  // connections each, queue and sticky table sizes, their most recent identifiers, and the
  // recent boots (see modules/status/status_module.h).
  std::string statusJson() const;

  // Private to core/isolates (isolate_pool.h); named here so that its parts can point to it.
  struct Impl;

 private:
  friend class IsolateLease;
  IsolateRegistry();
  void release(const std::shared_ptr<Isolate>& isolate, Deployment* deployment,
               const std::string& identity);
  std::unique_ptr<Impl> impl_;
};

}  // namespace subgate
