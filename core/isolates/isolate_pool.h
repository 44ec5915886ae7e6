// Private to the isolate runtime: the state behind IsolateRegistry (isolate_registry.h) and the
// declaration of its Impl. The definitions, by part:
//   isolate_registry.cc    the public API and IsolateLease; placement and bookkeeping (worker
//                          threads, mu held)
//   isolate_warm_path.cc   the worker's placement cache and lock-free leases and releases, and
//                          the locked halves of the handshakes below
//   isolate_boot.cc        fetching a deployment's code from its origin (boot threads)
//   isolate_supervisor.cc  child processes, their pipes and timers (supervisor thread)
//   isolate_status.cc      stats() and statusJson()
//   isolate_events.cc      the isolates' events (docs/origin.md) and the error log of their output
//
// Threading: one mutex (Impl::mu) guards everything below and is held only for bookkeeping,
// never across I/O that can block, with these exceptions for the placement path of a warm request
// on a shared isolate (IsolateRegistry::acquire and release take no process-wide lock; a request
// with an identity takes its deployment's sticky_mu, which guards Deployment::sticky, and one with
// an instance id its instances_mu; both are taken after mu wherever mu is held too):
// Isolate::active, Isolate::accepting, the last_used times and Impl::queued are atomics, and
// Deployment::ready is a published copy of its ready shared isolates. Two handshakes keep the
// lock-free path and the locked one from missing each other (both sides use seq_cst):
//   - taking an idle isolate out of placement (eviction, the idle sweep: closeIdleLocked) clears
//     `accepting` and then reads `active`; the lock-free path raises `active` and then reads
//     `accepting`, and backs out when it is clear;
//   - queueing a waiter raises `queued` and then looks for room again; a lock-free release
//     lowers `active` and then reads `queued`, and takes the lock to serve queues when it is set.
//     Functions named *Locked expect it held and may run on any
// thread; the supervisor-thread functions take it themselves around bookkeeping. The events of
// child processes and of the cluster hub belong to the supervisor thread: other threads post to
// it (EventThread::post).
#pragma once

#include <event2/event.h>
#include <sys/time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/container/string_map.h"
#include "core/error/error_kind.h"
#include "core/events/event_record.h"
#include "core/events/event_sender.h"
#include "core/ingress/ingress.h"
#include "core/isolates/boot_backoff.h"
#include "core/isolates/boot_client.h"
#include "core/isolates/cluster_hub.h"
#include "core/isolates/cpu_limits.h"
#include "core/isolates/deno_config.h"
#include "core/isolates/isolate_events.h"
#include "core/isolates/isolate_registry.h"
#include "core/isolates/runtime_launch.h"
#include "core/isolates/runtime_settings.h"
#include "core/isolates/sticky_table.h"
#include "core/net/clock.h"
#include "core/process/cgroups.h"
#include "core/process/child_process.h"
#include "core/process/event_thread.h"
#include "core/process/proc_stat.h"
#include "core/upstream/upstream_group.h"

namespace subgate {

struct Deployment;

// A time point that the lock-free placement path writes while others may read it.
class AtomicTime {
 public:
  void store(SteadyTime t) {
    ticks_.store(t.time_since_epoch().count(), std::memory_order_relaxed);
  }
  SteadyTime load() const {
    return SteadyTime(SteadyTime::duration(ticks_.load(std::memory_order_relaxed)));
  }

 private:
  std::atomic<SteadyTime::rep> ticks_{0};
};

// A request waiting for an isolate: attached to one being started, or queued for room.
struct Waiter {
  uint64_t ticket = 0;
  Worker* worker = nullptr;
  IsolateRegistry::Callback callback;
  uint32_t limit = 0;
  std::string instance_id;
  std::string identity;  // identify()'s answer: goes back to its last isolate while that has room
};

struct Isolate {
  enum class State { kSpare, kWaitingCode, kStarting, kReady, kStopping, kDead };

  uint64_t id = 0;
  IsolateRegistry::Impl* registry = nullptr;  // its owner (for the supervisor's callbacks)
  Deployment* deployment = nullptr;  // null for spares and once removed from its deployment
  std::string deployment_id;         // for logs
  std::string instance_id;
  State state = State::kSpare;
  bool counted = false;             // counts toward max_isolates
  std::atomic<uint32_t> active{0};  // leases held (requests in progress)
  // Ready and in its deployment: the lock-free path may lease it. Set by readyLocked, cleared
  // by detachLocked and closeIdleLocked (mu held).
  std::atomic<bool> accepting{false};
  AtomicTime last_used;
  bool generic_net = true;  // started with --allow-net (usable as a spare for net true/false)
  // Took a spare: its replacement starts a moment after this one serves (refillSparesLater), not
  // while its code loads and its first request runs.
  bool took_spare = false;
  SteadyTime created{};        // made for a request (the boot duration runs from here to ready)
  bool boot_recorded = false;  // its end of boot is in Impl::recent_boots (recordBootLocked)

  // Supervisor thread (fields read elsewhere only under the registry mutex).
  ChildProcess process;
  event* exit_ev = nullptr;
  event* out_ev = nullptr;
  event* err_ev = nullptr;
  event* timer = nullptr;
  event* notify_ev = nullptr;  // its connect() calls (sandbox on: process.notify_fd)
  std::shared_ptr<const SandboxPlan> sandbox;  // the plan it was started with
  std::string out_partial;
  std::string err_partial;
  std::string err_tail;
  std::string dir;
  std::string nonce;
  std::string failure;     // the harness's "failed" report, or the last stderr line
  bool skip_line = false;  // an oversized report line is being dropped up to its newline
  bool memory_limit = false;
  // Limits: memory_limit above is V8's heap OOM (seen on stderr) or the kernel's in the
  // isolate's memory cgroup (seen in its OOM count once it died); time_limit, a kill for
  // cpu_block_limit or cpu_limit (TIME_LIMIT), set before the kill.
  bool time_limit = false;
  std::string cgroup;            // its child cgroup's name in Impl::cgroups ("" without)
  LoopWatch loop_watch;          // cpu_block_limit's ping (limits tick)
  CpuWindow cpu_window;          // cpu_limit's samples (limits tick)
  SteadyTime denied_logged{};    // last egress refusal logged (one line a second at most)
  uint64_t denied_unlogged = 0;  // refusals since, counted but not logged
  // The limits tick's files, held open from its first tick after ready until the exit: its
  // process tree's stat files and its cgroup's CPU time file. Only the supervisor thread
  // touches them, without the mutex.
  std::optional<ProcessTreeCpu> cpu_tree;
  CgroupCpuFile cgroup_cpu;
  UpstreamServer server;
  std::vector<Waiter> waiters;  // waiting for it to become ready
  IsolateEvents events;         // isolate_events.h (mu held)

  std::string tag() const {
    std::string t = deployment_id.empty() ? "spare" : deployment_id;
    if (!instance_id.empty()) t += "[" + instance_id + "]";
    return t + "#" + std::to_string(id);
  }
};

// The ready shared isolates of a deployment, as the lock-free placement path reads them.
using ReadyList = std::vector<std::shared_ptr<Isolate>>;

struct Deployment : std::enable_shared_from_this<Deployment> {
  std::string key;
  std::shared_ptr<const Subhoster> subhoster;
  std::string rpc_root;
  std::string deployment_id;
  std::string loop_tag;
  std::shared_ptr<const DeploymentCode> code;
  bool fetching = false;
  SteadyTime fetch_started{};  // of the /boot call in flight (status: its duration)
  // The isolate_limit of the last request placed under the registry lock (status only: the warm
  // path does not write it). 0 before any.
  uint32_t isolate_limit = 0;
  std::vector<std::shared_ptr<Isolate>> shared;
  StringMap<std::shared_ptr<Isolate>> instances;
  // Guards `instances` for the warm path, which reads it without mu; writers hold mu and this.
  std::mutex instances_mu;
  std::deque<Waiter> queue;
  AtomicTime last_used;
  std::mutex sticky_mu;         // guards `sticky` (after mu when both are held)
  StickyTable<Isolate> sticky;  // identify() answers -> their isolate (protocol.md §6)

  // The copy of the ready shared isolates that workers place on without the registry lock:
  // publishReadyLocked() replaces it (under ready_mu) and then raises ready_version, so a worker
  // whose copy has an older version takes a new one.
  std::atomic<uint64_t> ready_version{0};
  mutable std::mutex ready_mu;
  std::shared_ptr<const ReadyList> ready = std::make_shared<ReadyList>();
  // Leases the lock-free path granted (status: "warm_leases"), on a cache line of its own: every
  // warm request writes it, and the fields above are read by every request.
  alignas(64) std::atomic<uint64_t> warm_leases{0};

  bool empty() const { return shared.empty() && instances.empty() && queue.empty() && !fetching; }
};

// What one worker thread remembers of the deployments it placed requests on, so that a warm
// request takes no lock: the deployment and the last copy of its ready list that it took.
struct WorkerPlacement {
  struct Entry {
    std::shared_ptr<Deployment> deployment;
    uint64_t version = UINT64_MAX;  // of `ready`; UINT64_MAX: none taken yet
    std::shared_ptr<const ReadyList> ready;
  };
  uint64_t registry = 0;                               // the Impl::serial these entries belong to
  std::unordered_map<std::string, Entry> deployments;  // by deployment key
};

inline timeval toTimeval(std::chrono::milliseconds d) {
  return timeval{static_cast<time_t>(d.count() / 1000),
                 static_cast<suseconds_t>((d.count() % 1000) * 1000)};
}

struct IsolateRegistry::Impl {
  IsolateRegistry& owner;
  const uint64_t serial;  // unique per registry in the process (WorkerPlacement)
  mutable std::mutex mu;
  RuntimeSettings settings;
  bool started = false;
  bool stopping = false;
  bool shut_down = false;
  EventThread supervisor{"sg-isolates"};
  std::unique_ptr<ClusterHub> hub;  // created with the supervisor; its events live there
  event* sweep_ev = nullptr;
  event* limits_ev = nullptr;  // the limits tick (supervisor thread; armLimits())
  // Per-isolate cgroups (memory cap, task cap, CPU time), opened at the first configure; what
  // the machine does not offer is left out (cgroups.h). Const after that.
  CgroupSet cgroups;
  // Cgroups of exited isolates that still held a process (supervisor thread; retried by the
  // idle sweep until they go).
  std::vector<std::string> lingering_cgroups;
  std::string harness_path;
  std::shared_ptr<const SandboxPlan> sandbox;  // sandbox.h; replaced at each configure
  std::string tag_secret;                      // random, for loopTag()
  // Shared with the workers' placement caches (IsolateRegistry::acquire), which may hold one for a
  // while after it left this table.
  std::unordered_map<std::string, std::shared_ptr<Deployment>> deployments;
  std::unordered_map<uint64_t, Deployment*> waiting;                 // ticket -> deployment
  std::unordered_map<uint64_t, std::shared_ptr<Isolate>> processes;  // every process alive
  std::vector<std::shared_ptr<Isolate>> spares;                      // ready or starting spares
  uint32_t spare_failures = 0;
  uint64_t next_id = 1;
  uint64_t next_ticket = 1;
  size_t live = 0;                 // isolates counting toward max_isolates
  std::atomic<size_t> queued = 0;  // waiters in deployment queues (written under mu)
  size_t cached_code = 0;
  Stats counters;
  // Sends the isolates' events to their origins on its own thread (core/events/event_sender.h).
  EventSender event_sender;
  BootBackoff boot_backoff;  // failed /boot calls, by deployment key (under mu)
  // The last boots that ended, newest first, at most kRecentBoots (status; under mu).
  std::deque<BootRecord> recent_boots;

  explicit Impl(IsolateRegistry& o);

  // ---- placement (isolate_registry.cc; mu held)

  std::string loopTag(std::string_view key) const;
  const std::shared_ptr<Deployment>& deploymentFor(const VerifiedToken& token);
  // This worker thread's placement cache (entries of another registry are dropped).
  WorkerPlacement& workerPlacement();
  // Without mu (worker thread): a lease on the ready dedicated isolate of `instance_id`, or on a
  // ready shared isolate of the entry's deployment with room under `limit` (the one `identity`
  // was last sent to, else the least busy); null when there is none (the locked path decides).
  std::unique_ptr<IsolateLease> leaseWarm(WorkerPlacement::Entry& entry, uint32_t limit,
                                          std::string_view instance_id, std::string_view identity);
  // A lease ended (or a warm lease backed out): frees its slot and its sticky count, and serves
  // what waits.
  void releaseLease(const std::shared_ptr<Isolate>& isolate, Deployment* deployment,
                    const std::string& identity);
  std::unique_ptr<IsolateLease> leaseLocked(const std::shared_ptr<Isolate>& isolate,
                                            const std::string& identity);
  void grantLocked(const std::shared_ptr<Isolate>& isolate, Waiter& waiter);
  // Answers `waiter` with `kind` and clientMessage(detail): the one way a failure reaches a
  // waiting request.
  void failLocked(Waiter& waiter, ErrorKind kind, const std::string& detail);
  // A ready isolate of `d` for this request with room under `limit`: the one its identity was
  // last sent to, else the least utilized.
  std::shared_ptr<Isolate> findRoomLocked(Deployment& d, const std::string& instance_id,
                                          uint32_t limit, const std::string& identity);
  // An isolate of `d` being started that can take one more waiter.
  std::shared_ptr<Isolate> findStartingLocked(Deployment& d, const std::string& instance_id,
                                              uint32_t limit);
  // Ready, with no request in progress and none waiting: may be stopped for room.
  static bool idleLocked(const Isolate& isolate);
  // The idle isolate to stop so that `asking` may start one more under max_isolates, taken from
  // the deployments over their fair share first (fair_eviction.h); null when none may go.
  std::shared_ptr<Isolate> evictionVictimLocked(const Deployment& asking);
  // Room for one more dedicated (instance id) isolate of `d` under
  // max_instances_per_deployment: true when it holds fewer, or once its least recently used idle
  // instances were stopped; false when they are all busy (the request gets CAPACITY_EXCEEDED).
  bool instanceRoomLocked(Deployment& d);
  std::string instanceCapMessageLocked() const;
  std::shared_ptr<Isolate> startNewLocked(Deployment& d, const std::string& instance_id);
  // Takes an idle isolate out of placement before it is stopped: false (and the isolate stays)
  // when a lock-free acquire leased it meanwhile.
  bool closeIdleLocked(Isolate& isolate);
  // Republishes d.ready from d.shared after the set of its ready shared isolates changed.
  void publishReadyLocked(Deployment& d);
  // Queues `waiter` for room, then looks again (the handshake with lock-free releases).
  void enqueueLocked(Deployment& d, Waiter waiter, bool front = false);

  // kNoRoom: queue it; kOverInstanceCap: refuse it (instanceRoomLocked).
  enum class Placed { kGranted, kAttached, kNoRoom, kOverInstanceCap };
  Placed placeLocked(Deployment& d, Waiter& waiter);
  void serveQueueLocked(Deployment& d);
  void pumpQueuesLocked();
  // Takes `isolate` out of its deployment so that nothing new is placed on it.
  void detachLocked(Isolate& isolate);
  void leaveClusterLocked(Isolate& isolate);
  void failWaitersLocked(Isolate& isolate, ErrorKind kind, const std::string& message);
  void stopLocked(const std::shared_ptr<Isolate>& isolate);
  // Marks `isolate` starting (with a fresh nonce) and has the supervisor thread launch() it.
  void launchLocked(const std::shared_ptr<Isolate>& isolate);

  // ---- boot (isolate_boot.cc; mu held)

  // The end of `isolate`'s boot, into recent_boots (once per isolate): ready (`ok`), or failed
  // with `error` and `message`.
  void recordBootLocked(Isolate& isolate, bool ok, ErrorKind error, std::string_view message);
  // A /boot call for `d` that failed, into recent_boots.
  void recordFetchFailureLocked(const Deployment& d, ErrorKind error, std::string_view message);
  void pushBootLocked(BootRecord record);

  void fetchLocked(Deployment& d);
  // The remembered /boot failure to answer a request of deployment `key` with, or null.
  const BootBackoff::Failure* bootBlockedLocked(const std::string& key) const;
  void fetchDoneLocked(Deployment& d, BootOutcome outcome);
  // Forgets the code of the least recently used deployments without isolates beyond boot_cache.
  void trimCodeCacheLocked();

  // ---- supervisor thread (isolate_supervisor.cc)

  // What starting a process needs, copied under the lock: a reload may change the settings
  // while the supervisor works.
  RuntimeLaunch launchSettings() const;
  bool makeDirs(const std::string& dir, std::string& error);
  // Starts a runtime process for `isolate` and watches it. False with `error` on failure.
  bool spawn(const std::shared_ptr<Isolate>& isolate, const DeploymentCode* code,
             std::string& error);
  // Watches the process of `isolate` (supervisor thread). The events carry the Isolate, which
  // `processes` keeps alive until exited() frees them.
  void watch(const std::shared_ptr<Isolate>& isolate);
  static void unwatch(Isolate& isolate);
  void launch(const std::shared_ptr<Isolate>& isolate);
  // Moves a spare's process and folder to `isolate` and watches it there (supervisor thread).
  void adopt(const std::shared_ptr<Isolate>& isolate, const std::shared_ptr<Isolate>& spare);
  bool writeCode(const Isolate& isolate, const DeploymentCode& code, std::string& error);
  bool assign(Isolate& isolate, const DeploymentCode& code, std::string& error);
  void postEnsureSpares();
  // Replaces a spare taken by a boot a moment after that isolate serves (kSpareRefillDelay):
  // starting a runtime forks subgate, which stalls its threads, and takes the CPU a client's
  // first request needs.
  void refillSparesLater();
  void ensureSpares();
  // Trims spares beyond the configured count (after a reload lowered it).
  void trimSpares();

  static void onStdout(evutil_socket_t fd, short, void* arg);
  static void onStderr(evutil_socket_t fd, short, void* arg);
  // Reads what the process wrote and handles it line by line (mu held; any thread).
  void drainLocked(Isolate& isolate, int fd, bool is_stderr);
  // A line (or the start of one) the harness wrote: it begins with the process's nonce, which
  // user code never sees.
  static bool isReport(const Isolate& isolate, std::string_view line);
  void lineLocked(Isolate& isolate, std::string_view line, bool is_stderr);
  // A "denied <target>" report: counted, and logged at most once a second per isolate.
  void egressDeniedLocked(Isolate& isolate, std::string_view target);
  // Its connect() calls, decided by the sandbox's egress gate (core/process/connect_gate.h).
  static void onConnectCall(evutil_socket_t fd, short, void* arg);
  void readyLocked(Isolate& isolate);
  // The boot deadline of a starting isolate, or the SIGINT-to-SIGKILL grace of a stopping one.
  static void onTimer(evutil_socket_t, short, void* arg);
  static void onExit(evutil_socket_t, short, void* arg);
  void exited(const std::shared_ptr<Isolate>& isolate, int status);
  static void onSweep(evutil_socket_t, short, void*);

  // ---- events (isolate_events.cc; mu held; docs/origin.md "Events")

  // Gives `isolate` its execution id and, when its subhoster has `events on`, its destination.
  void eventsBeginLocked(Isolate& isolate);
  // Queues one event of `isolate` (nothing when its events are off).
  void eventLocked(Isolate& isolate, EventType type, std::string payload);
  // Its `boot` event (`ok`) or `bootFailure` with `msg`: the first of them only.
  void bootEventLocked(Isolate& isolate, bool ok, std::string_view msg);
  // A line of user code's output at `level`: the error log (isolate_log_level) and a `log`
  // event (events_log_rate); `request_id` (empty: none) ends each error log line and goes in
  // the event.
  void userLogLocked(Isolate& isolate, LogEventLevel level, std::string_view msg,
                     std::string_view request_id = {});
  // The harness's reports: "log LEVEL [REQUEST-ID] JSON-STRING" (a console call, with the id of
  // the request whose handler made it, or an unhandled rejection)
  // and "uncaught JSON-STRING" (an uncaught exception; the harness exits next).
  void logReportLocked(Isolate& isolate, std::string_view report);
  void uncaughtReportLocked(Isolate& isolate, std::string_view json);
  // One `log` event saying what the rate limit refused, once its window closed.
  void flushDroppedLocked(Isolate& isolate, SteadyTime now);
  // At exit: `memoryLimit`, or `bootFailure` for an isolate that never served, and the last
  // count of refused lines.
  void exitEventsLocked(Isolate& isolate);

  // ---- CPU and memory limits (isolate_supervisor.cc, supervisor thread)

  // What a process is started with: its rlimits and the cgroup it joins (made here).
  bool limitsFor(Isolate& isolate, const RuntimeSettings& settings, SpawnOptions& options,
                 std::string& error) const;
  // (Re)arms the limits tick for the settings in force, or stops it when both CPU rules are off.
  void armLimits();
  static void onLimits(evutil_socket_t, short, void* arg);
  // The CPU time an isolate used so far, as each rule counts it (nullopt: not read, or gone).
  struct CpuSample {
    // cpu_block_limit: its main thread's, where the event loop runs (a Worker starting on
    // another thread does not block it).
    std::optional<std::chrono::nanoseconds> loop;
    // cpu_limit: every thread's, from its cgroup, else from /proc (its process tree).
    std::optional<std::chrono::nanoseconds> total;
  };
  // How often the limits tick finds an isolate's process tree again (ProcessTreeCpu): a process
  // started later (none can be: no --allow-run) would hide its CPU time at most this long.
  static constexpr std::chrono::seconds kCpuTreeRefresh{5};
  // Reads the samples the rules in force need: the cgroup's CPU time for `cpu_limit` when there
  // is one (isolate.cgroup_cpu), else the tree's; the main threads' for `cpu_block_limit`
  // (isolate.cpu_tree, made by the caller). Supervisor thread, without the mutex.
  CpuSample sampleCpu(Isolate& isolate, const std::string& cgroup, bool block, bool budget,
                      SteadyTime now) const;
  // One tick for a ready isolate: pings it, or kills it for TIME_LIMIT.
  void checkCpuLocked(Isolate& isolate, const CpuSample& cpu, SteadyTime now);
  // Kills `isolate` (SIGKILL) for a CPU rule: it leaves placement now, and its requests and
  // waiters get TIME_LIMIT with `why` (through exited() and failureOf()).
  void killForTimeLocked(Isolate& isolate, const std::string& why);
  // Whether the kernel killed `isolate` in its memory cgroup; marks it (memory_limit) if so.
  bool cgroupOomLocked(Isolate& isolate) const;
};

}  // namespace subgate
