// Private to the isolates module: the state behind IsolateRegistry (isolate_registry.h) and the
// declaration of its Impl. The definitions, by part:
//   isolate_registry.cc    the public API and IsolateLease; placement and bookkeeping (worker
//                          threads, mu held)
//   isolate_boot.cc        fetching a deployment's code from its origin (boot threads)
//   isolate_supervisor.cc  child processes, their pipes and timers (supervisor thread)
//   isolate_status.cc      stats() and statusJson()
//
// Threading: one mutex (Impl::mu) guards everything below and is held only for bookkeeping,
// never across I/O that can block. Functions named *Locked expect it held and may run on any
// thread; the supervisor-thread functions take it themselves around bookkeeping. The events of
// child processes and of the cluster hub belong to the supervisor thread: other threads post to
// it (EventThread::post).
#pragma once

#include <event2/event.h>
#include <sys/time.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/error/error_kind.h"
#include "core/ingress/ingress.h"
#include "core/isolates/boot_client.h"
#include "core/isolates/cluster_hub.h"
#include "core/isolates/deno_config.h"
#include "core/isolates/isolate_registry.h"
#include "core/isolates/runtime_launch.h"
#include "core/isolates/runtime_settings.h"
#include "core/isolates/sticky_table.h"
#include "core/net/clock.h"
#include "core/process/child_process.h"
#include "core/process/event_thread.h"
#include "core/upstream/upstream_group.h"

namespace subgate {

struct Deployment;

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
  Deployment* deployment = nullptr;  // null for spares and once removed from its deployment
  std::string deployment_id;         // for logs
  std::string instance_id;
  State state = State::kSpare;
  bool counted = false;  // counts toward max_isolates
  uint32_t active = 0;
  SteadyTime last_used{};
  bool generic_net = true;  // started with --allow-net (usable as a spare for net true/false)

  // Supervisor thread (fields read elsewhere only under the registry mutex).
  ChildProcess process;
  event* exit_ev = nullptr;
  event* out_ev = nullptr;
  event* err_ev = nullptr;
  event* timer = nullptr;
  std::string out_partial;
  std::string err_partial;
  std::string err_tail;
  std::string dir;
  std::string nonce;
  std::string failure;     // the harness's "failed" report, or the last stderr line
  bool skip_line = false;  // an oversized report line is being dropped up to its newline
  bool memory_limit = false;
  UpstreamServer server;
  std::vector<Waiter> waiters;  // waiting for it to become ready

  std::string tag() const {
    std::string t = deployment_id.empty() ? "spare" : deployment_id;
    if (!instance_id.empty()) t += "[" + instance_id + "]";
    return t + "#" + std::to_string(id);
  }
};

struct Deployment {
  std::string key;
  std::shared_ptr<const Subhoster> subhoster;
  std::string rpc_root;
  std::string deployment_id;
  std::string loop_tag;
  std::shared_ptr<const DeploymentCode> code;
  bool fetching = false;
  std::vector<std::shared_ptr<Isolate>> shared;
  std::unordered_map<std::string, std::shared_ptr<Isolate>> instances;
  std::deque<Waiter> queue;
  SteadyTime last_used{};
  StickyTable<Isolate> sticky;  // identify() answers -> their isolate (protocol.md §6)

  bool empty() const { return shared.empty() && instances.empty() && queue.empty() && !fetching; }
};

inline timeval toTimeval(std::chrono::milliseconds d) {
  return timeval{static_cast<time_t>(d.count() / 1000),
                 static_cast<suseconds_t>((d.count() % 1000) * 1000)};
}

struct IsolateRegistry::Impl {
  IsolateRegistry& owner;
  mutable std::mutex mu;
  RuntimeSettings settings;
  bool started = false;
  bool stopping = false;
  EventThread supervisor{"sg-isolates"};
  std::unique_ptr<ClusterHub> hub;  // created with the supervisor; its events live there
  event* sweep_ev = nullptr;
  std::string harness_path;
  std::string deno_dir;
  std::string tag_secret;  // random, for loopTag()
  std::unordered_map<std::string, std::unique_ptr<Deployment>> deployments;
  std::unordered_map<uint64_t, Deployment*> waiting;                 // ticket -> deployment
  std::unordered_map<uint64_t, std::shared_ptr<Isolate>> processes;  // every process alive
  std::vector<std::shared_ptr<Isolate>> spares;                      // ready or starting spares
  uint32_t spare_failures = 0;
  uint64_t next_id = 1;
  uint64_t next_ticket = 1;
  size_t live = 0;    // isolates counting toward max_isolates
  size_t queued = 0;  // waiters in deployment queues
  size_t cached_code = 0;
  Stats counters;

  explicit Impl(IsolateRegistry& o);

  // ---- placement (isolate_registry.cc; mu held)

  std::string loopTag(std::string_view key) const;
  Deployment& deploymentFor(const VerifiedToken& token);
  std::unique_ptr<IsolateLease> leaseLocked(const std::shared_ptr<Isolate>& isolate,
                                            const std::string& identity);
  void releaseStickyLocked(Isolate& isolate, const std::string& identity);
  void grantLocked(const std::shared_ptr<Isolate>& isolate, Waiter& waiter);
  void failLocked(Waiter& waiter, ErrorKind kind, const std::string& message);
  // A ready isolate of `d` for this request with room under `limit`: the one its identity was
  // last sent to, else the least utilized.
  std::shared_ptr<Isolate> findRoomLocked(Deployment& d, const std::string& instance_id,
                                          uint32_t limit, const std::string& identity);
  // An isolate of `d` being started that can take one more waiter.
  std::shared_ptr<Isolate> findStartingLocked(Deployment& d, const std::string& instance_id,
                                              uint32_t limit);
  // The least recently used idle isolate of any deployment.
  std::shared_ptr<Isolate> evictionVictimLocked();
  std::shared_ptr<Isolate> startNewLocked(Deployment& d, const std::string& instance_id);

  enum class Placed { kGranted, kAttached, kNoRoom };
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

  void fetchLocked(Deployment& d);
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
  void ensureSpares();
  // Trims spares beyond the configured count (after a reload lowered it).
  void trimSpares();

  static Impl& self();
  static void onStdout(evutil_socket_t fd, short, void* arg);
  static void onStderr(evutil_socket_t fd, short, void* arg);
  // Reads what the process wrote and handles it line by line (mu held; any thread).
  void drainLocked(Isolate& isolate, int fd, bool is_stderr);
  // A line (or the start of one) the harness wrote: it begins with the process's nonce, which
  // user code never sees.
  static bool isReport(const Isolate& isolate, std::string_view line);
  void lineLocked(Isolate& isolate, std::string_view line, bool is_stderr);
  void readyLocked(Isolate& isolate);
  // The boot deadline of a starting isolate, or the SIGINT-to-SIGKILL grace of a stopping one.
  static void onTimer(evutil_socket_t, short, void* arg);
  static void onExit(evutil_socket_t, short, void* arg);
  void exited(const std::shared_ptr<Isolate>& isolate, int status);
  static void onSweep(evutil_socket_t, short, void*);
};

}  // namespace subgate
