#include "modules/isolates/isolate_registry.h"

#include <event2/event.h>
#include <jansson.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/error/error_kind.h"
#include "core/log/log.h"
#include "core/net/clock.h"
#include "core/net/socket_address.h"
#include "core/process/child_process.h"
#include "core/process/event_thread.h"
#include "core/server/worker.h"
#include "modules/isolates/boot_client.h"
#include "modules/isolates/cluster_hub.h"
#include "modules/isolates/sticky_table.h"

namespace subgate {

extern const std::string_view kIsolateHarness;  // modules/isolates/harness.js, embedded

namespace {

constexpr std::chrono::milliseconds kSweepInterval{500};
constexpr size_t kStderrTail = 2048;
constexpr std::chrono::milliseconds kExitWait{
    250};  // failureOf(): how long a dying isolate may take
constexpr std::string_view kOutOfMemoryMarker = "Fatal JavaScript out of memory";
// Output lines longer than this are logged in pieces; a cluster report (nonce-prefixed) may be
// longer, up to kMaxReportLine, and is dropped beyond it.
constexpr size_t kMaxLogLine = 16384;
constexpr size_t kMaxReportLine = 1u << 20;

struct Waiter {
  uint64_t ticket = 0;
  Worker* worker = nullptr;
  IsolateRegistry::Callback callback;
  uint32_t limit = 0;
  std::string instance_id;
  std::string identity;  // identify()'s answer: goes back to its last isolate while that has room
};

timeval toTimeval(std::chrono::milliseconds d) {
  return timeval{static_cast<time_t>(d.count() / 1000),
                 static_cast<suseconds_t>((d.count() % 1000) * 1000)};
}

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

void appendJsonString(std::string& out, std::string_view text) {
  out += '"';
  appendJsonEscaped(out, text);
  out += '"';
}

const UpstreamGroup& isolateGroup() {
  static const UpstreamGroup group = [] {
    UpstreamGroup g;
    g.name = "isolates";
    g.keepalive = 256;  // at least isolate_limit in practice: fewer would reconnect under load
    g.keepalive_timeout = std::chrono::seconds(30);
    g.keepalive_requests = 1000000;
    return g;
  }();
  return group;
}

constexpr std::string_view kOwnerFile = "owner.pid";

// Whether `pid` is a running process. A zombie counts as dead: in a container whose init does
// not reap, a killed subgate stays a zombie indefinitely.
bool processAlive(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;  // cannot tell: leave its folder alone
  size_t paren = line.rfind(')');  // the command name may contain spaces and parentheses
  return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'Z';
}

// Removes /tmp/subgate-* isolate folders whose subgate died without cleaning up (kill -9): they
// name their owner in owner.pid. Folders without it are not ours to touch.
void removeOrphanFolders() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/tmp", ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with("subgate-") || name.size() != 14) continue;  // mkdtemp's 6 characters
    std::ifstream owner(entry.path() / kOwnerFile);
    pid_t pid = 0;
    if (!(owner >> pid) || pid <= 0) continue;
    if (processAlive(pid)) continue;
    std::filesystem::remove_all(entry.path(), ec);
  }
}

}  // namespace

struct Deployment;

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
  std::string failure;  // the harness's "failed" report, or the last stderr line
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
  std::string tag_secret = randomHex(32);
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

  explicit Impl(IsolateRegistry& o) : owner(o) {}

  // ---- placement (mu held)

  std::string loopTag(std::string_view key) const {
    unsigned char mac[32];
    unsigned int length = sizeof mac;
    HMAC(EVP_sha256(), tag_secret.data(), static_cast<int>(tag_secret.size()),
         reinterpret_cast<const unsigned char*>(key.data()), key.size(), mac, &length);
    return hexEncode(mac, 16);  // 128 bits are plenty to be unguessable
  }

  Deployment& deploymentFor(const VerifiedToken& token) {
    auto it = deployments.find(token.deployment_key);
    if (it != deployments.end()) return *it->second;
    auto d = std::make_unique<Deployment>();
    d->key = token.deployment_key;
    d->subhoster = token.subhoster;
    d->rpc_root = token.rpc_root;
    d->deployment_id = token.deployment_id;
    d->loop_tag = loopTag(d->key);
    d->sticky.setMax(settings.sticky_max);
    Deployment& ref = *d;
    deployments.emplace(d->key, std::move(d));
    return ref;
  }

  std::unique_ptr<IsolateLease> leaseLocked(const std::shared_ptr<Isolate>& isolate,
                                            const std::string& identity) {
    ++isolate->active;
    isolate->last_used = steadyNow();
    Deployment* d = isolate->deployment;
    if (d) d->last_used = isolate->last_used;
    if (!identity.empty() && d && isolate->instance_id.empty())
      d->sticky.opened(identity, isolate, isolate->last_used);
    return std::make_unique<IsolateLease>(owner, isolate, identity);
  }

  void releaseStickyLocked(Isolate& isolate, const std::string& identity) {
    Deployment* d = isolate.deployment;
    if (identity.empty() || !d) return;
    d->sticky.closed(identity, &isolate, steadyNow());
  }

  void grantLocked(const std::shared_ptr<Isolate>& isolate, Waiter& waiter) {
    waiting.erase(waiter.ticket);
    auto holder = std::make_shared<std::unique_ptr<IsolateLease>>(leaseLocked(isolate, waiter.identity));
    waiter.worker->post([callback = std::move(waiter.callback), holder]() mutable {
      IsolateGrant grant;
      grant.lease = std::move(*holder);
      callback(std::move(grant));
    });
  }

  void failLocked(Waiter& waiter, ErrorKind kind, const std::string& message) {
    waiting.erase(waiter.ticket);
    waiter.worker->post([callback = std::move(waiter.callback), kind, message]() mutable {
      IsolateGrant grant;
      grant.error = kind;
      grant.message = message;
      callback(std::move(grant));
    });
  }

  // A ready isolate of `d` for this request with room under `limit`: the one its identity was
  // last sent to, else the least utilized.
  std::shared_ptr<Isolate> findRoomLocked(Deployment& d, const std::string& instance_id,
                                          uint32_t limit, const std::string& identity) {
    if (!identity.empty() && instance_id.empty()) {
      auto isolate = d.sticky.find(identity);
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

  // An isolate of `d` being started that can take one more waiter.
  std::shared_ptr<Isolate> findStartingLocked(Deployment& d, const std::string& instance_id,
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

  // The least recently used idle isolate of any deployment.
  std::shared_ptr<Isolate> evictionVictimLocked() {
    std::shared_ptr<Isolate> victim;
    for (const auto& [key, d] : deployments) {
      auto consider = [&](const std::shared_ptr<Isolate>& isolate) {
        if (isolate->state != Isolate::State::kReady || isolate->active > 0 ||
            !isolate->waiters.empty())
          return;
        if (!victim || isolate->last_used < victim->last_used) victim = isolate;
      };
      for (const auto& isolate : d->shared) consider(isolate);
      for (const auto& [id, isolate] : d->instances) consider(isolate);
    }
    return victim;
  }

  std::shared_ptr<Isolate> startNewLocked(Deployment& d, const std::string& instance_id) {
    if (instance_id.empty() && d.shared.size() >= settings.max_isolates_per_deployment)
      return nullptr;
    if (live >= settings.max_isolates) {
      auto victim = evictionVictimLocked();
      if (!victim) return nullptr;
      LOG_INFO("isolate %s: evicted (least recently used) to make room", victim->tag().c_str());
      stopLocked(victim);
    }
    auto isolate = std::make_shared<Isolate>();
    isolate->id = next_id++;
    isolate->deployment = &d;
    isolate->deployment_id = d.deployment_id;
    isolate->instance_id = instance_id;
    isolate->counted = true;
    isolate->last_used = steadyNow();
    ++live;
    if (instance_id.empty()) {
      d.shared.push_back(isolate);
    } else {
      d.instances[instance_id] = isolate;
    }
    if (d.code) {
      launchLocked(isolate);
    } else {
      isolate->state = Isolate::State::kWaitingCode;
      fetchLocked(d);
    }
    return isolate;
  }

  enum class Placed { kGranted, kAttached, kNoRoom };

  Placed placeLocked(Deployment& d, Waiter& waiter) {
    if (auto isolate = findRoomLocked(d, waiter.instance_id, waiter.limit, waiter.identity)) {
      grantLocked(isolate, waiter);
      return Placed::kGranted;
    }
    auto isolate = findStartingLocked(d, waiter.instance_id, waiter.limit);
    if (!isolate) isolate = startNewLocked(d, waiter.instance_id);
    if (!isolate) return Placed::kNoRoom;
    isolate->waiters.push_back(std::move(waiter));
    return Placed::kAttached;
  }

  void serveQueueLocked(Deployment& d) {
    while (!d.queue.empty()) {
      if (placeLocked(d, d.queue.front()) == Placed::kNoRoom) return;
      d.queue.pop_front();
      --queued;
    }
  }

  void pumpQueuesLocked() {
    if (queued == 0) return;
    for (auto& [key, d] : deployments)
      if (!d->queue.empty()) serveQueueLocked(*d);
  }

  // Takes `isolate` out of its deployment so that nothing new is placed on it.
  void detachLocked(Isolate& isolate) {
    if (isolate.counted) {
      isolate.counted = false;
      --live;
    }
    leaveClusterLocked(isolate);
    Deployment* d = isolate.deployment;
    if (!d) return;
    if (isolate.instance_id.empty()) {
      std::erase_if(d->shared, [&](const auto& p) { return p.get() == &isolate; });
    } else if (auto it = d->instances.find(isolate.instance_id);
               it != d->instances.end() && it->second.get() == &isolate) {
      d->instances.erase(it);
    }
    isolate.deployment = nullptr;
  }

  // The hub's events belong to the supervisor thread: other threads post the leave.
  void leaveClusterLocked(Isolate& isolate) {
    if (!hub) return;
    if (supervisor.onLoopThread()) {
      hub->leave(isolate.id);
    } else {
      supervisor.post([this, id = isolate.id] { hub->leave(id); });
    }
  }

  void failWaitersLocked(Isolate& isolate, ErrorKind kind, const std::string& message) {
    for (Waiter& waiter : isolate.waiters) failLocked(waiter, kind, message);
    isolate.waiters.clear();
  }

  void stopLocked(const std::shared_ptr<Isolate>& isolate) {
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

  // ---- boot (mu held)

  void fetchLocked(Deployment& d) {
    if (d.fetching) return;
    d.fetching = true;
    ++counters.boots;
    // One thread per fetch: fetches are rare (once per deployment while its code is cached) and
    // a slow origin must not hold up other deployments' boots. The registry is never destroyed.
    std::thread([this, dp = &d, subhoster = d.subhoster, rpc_root = d.rpc_root,
                 id = d.deployment_id, options = settings.origin] {
      BootOutcome outcome = fetchDeployment(*subhoster, rpc_root, id, options);
      std::lock_guard<std::mutex> lock(mu);
      fetchDoneLocked(*dp, std::move(outcome));
    }).detach();
  }

  void fetchDoneLocked(Deployment& d, BootOutcome outcome) {
    d.fetching = false;
    std::vector<std::shared_ptr<Isolate>> waiting_code;
    for (const auto& isolate : d.shared)
      if (isolate->state == Isolate::State::kWaitingCode) waiting_code.push_back(isolate);
    for (const auto& [id, isolate] : d.instances)
      if (isolate->state == Isolate::State::kWaitingCode) waiting_code.push_back(isolate);
    if (!outcome.code) {
      LOG_WARN("deployment %s: boot failed: %s", d.deployment_id.c_str(), outcome.message.c_str());
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
             d.rpc_root.c_str(), outcome.code->bundle.size());
    d.code = std::move(outcome.code);
    ++cached_code;
    trimCodeCacheLocked();
    for (const auto& isolate : waiting_code) launchLocked(isolate);
  }

  // Forgets the code of the least recently used deployments without isolates beyond boot_cache.
  void trimCodeCacheLocked() {
    while (cached_code > settings.boot_cache) {
      Deployment* oldest = nullptr;
      for (auto& [key, d] : deployments)
        if (d->code && d->empty() && (!oldest || d->last_used < oldest->last_used))
          oldest = d.get();
      if (!oldest) return;
      --cached_code;
      deployments.erase(oldest->key);
    }
  }

  void launchLocked(const std::shared_ptr<Isolate>& isolate) {
    isolate->state = Isolate::State::kStarting;
    isolate->nonce = randomHex(16);
    supervisor.post([this, isolate] { launch(isolate); });
  }

  // ---- supervisor thread

  // What starting a process needs, copied under the lock: a reload may change the settings
  // while the supervisor works.
  struct Launch {
    RuntimeSettings settings;
    std::string harness_path;
    std::string deno_dir;
  };
  Launch launchSettings() const {
    std::lock_guard<std::mutex> lock(mu);
    return {settings, harness_path, deno_dir};
  }

  static std::vector<std::string> runtimeArgv(const Launch& launch, const std::string& dir,
                                              const DeploymentCode* code) {
    const RuntimeSettings& settings = launch.settings;
    std::vector<std::string> argv = {settings.deno_path, "run",         "--quiet",
                                     "--no-prompt",      "--no-config", "--no-lock"};
    argv.push_back("--allow-read=" + dir + "/code," + dir + "/sock");
    argv.push_back("--allow-write=" + dir + "/sock");
    argv.push_back("--allow-env");
    if (!code || code->net != DeploymentCode::Net::kList) {
      if (!code || code->net == DeploymentCode::Net::kAll ||
          code->net == DeploymentCode::Net::kNone)
        argv.push_back("--allow-net");  // kNone: revoked by the harness, so spares stay generic
    } else {
      // The harness's own socket must be allowed too: Deno checks unix listeners as net access.
      std::string list = "unix:" + dir + "/sock/s.sock";
      for (const std::string& host : code->net_allow) list += "," + host;
      argv.push_back("--allow-net=" + list);
    }
    argv.push_back("--v8-flags=--max-old-space-size=" +
                   std::to_string(std::max<uint64_t>(settings.memory_limit >> 20, 16)));
    argv.push_back(launch.harness_path);
    argv.push_back(dir + "/sock/s.sock");
    return argv;
  }

  static std::vector<std::string> runtimeEnv(const Launch& launch) {
    return {"DENO_DIR=" + launch.deno_dir, "NO_COLOR=1", "DENO_NO_UPDATE_CHECK=1",
            "DENO_NO_PROMPT=1", "PATH=/usr/bin:/bin"};
  }

  bool makeDirs(const std::string& dir, std::string& error) {
    std::error_code ec;
    std::filesystem::create_directories(dir + "/code", ec);
    if (!ec) std::filesystem::create_directories(dir + "/sock", ec);
    if (ec) error = "cannot create " + dir + ": " + ec.message();
    return !ec;
  }

  // Starts a runtime process for `isolate` and watches it. False with `error` on failure.
  bool spawn(const std::shared_ptr<Isolate>& isolate, const DeploymentCode* code,
             std::string& error) {
    if (!makeDirs(isolate->dir, error)) return false;
    const Launch launch = launchSettings();
    if (!spawnChild(runtimeArgv(launch, isolate->dir, code), runtimeEnv(launch), isolate->dir,
                    isolate->process, error))
      return false;
    std::string address_error;
    auto address = parseSocketAddress("unix:" + isolate->dir + "/sock/s.sock", 0, address_error);
    isolate->server.address = *address;
    isolate->server.peer = internPeer(address->text);
    isolate->generic_net = !code || code->net != DeploymentCode::Net::kList;
    watch(isolate);
    ++counters.processes;
    return true;
  }

  // Watches the process of `isolate` (supervisor thread). The events carry the Isolate, which
  // `processes` keeps alive until exited() frees them.
  void watch(const std::shared_ptr<Isolate>& isolate) {
    event_base* base = supervisor.base();
    Isolate* raw = isolate.get();
    isolate->exit_ev = event_new(base, isolate->process.pidfd, EV_READ, onExit, raw);
    isolate->out_ev =
        event_new(base, isolate->process.stdout_fd, EV_READ | EV_PERSIST, onStdout, raw);
    isolate->err_ev =
        event_new(base, isolate->process.stderr_fd, EV_READ | EV_PERSIST, onStderr, raw);
    isolate->timer = evtimer_new(base, onTimer, raw);
    for (event* ev : {isolate->exit_ev, isolate->out_ev, isolate->err_ev}) event_add(ev, nullptr);
    std::lock_guard<std::mutex> lock(mu);
    processes[isolate->id] = isolate;
  }

  static void unwatch(Isolate& isolate) {
    for (event** ev : {&isolate.exit_ev, &isolate.out_ev, &isolate.err_ev, &isolate.timer}) {
      if (*ev) event_free(*ev);
      *ev = nullptr;
    }
  }

  void launch(const std::shared_ptr<Isolate>& isolate) {
    std::shared_ptr<Isolate> spare;
    std::shared_ptr<const DeploymentCode> code;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (isolate->state != Isolate::State::kStarting || !isolate->deployment) return;
      code = isolate->deployment->code;
      isolate->dir = settings.dir + "/iso-" + std::to_string(isolate->id);
      if (code->net != DeploymentCode::Net::kList) {
        for (auto it = spares.begin(); it != spares.end(); ++it) {
          if ((*it)->state == Isolate::State::kSpare && (*it)->generic_net) {
            spare = *it;
            spares.erase(it);
            break;
          }
        }
      }
    }
    std::string error;
    bool ok;
    if (spare) {
      adopt(isolate, spare);
      ok = true;
    } else {
      ok = spawn(isolate, code.get(), error);
    }
    if (ok) ok = writeCode(*isolate, *code, error) && assign(*isolate, *code, error);
    if (!ok) {
      LOG_ERROR("isolate %s: cannot start: %s", isolate->tag().c_str(), error.c_str());
      if (isolate->process.pid > 0) kill(isolate->process.pid, SIGKILL);
      std::lock_guard<std::mutex> lock(mu);
      failWaitersLocked(*isolate, ErrorKind::kDeploymentFailed,
                        "the isolate could not be started: " + error);
      detachLocked(*isolate);
      if (isolate->process.pid <= 0) isolate->state = Isolate::State::kDead;
      return;
    }
    const timeval boot = toTimeval(launchSettings().settings.boot_timeout);
    evtimer_add(isolate->timer, &boot);
    if (spare) postEnsureSpares();
  }

  // Moves a spare's process and folder to `isolate` and watches it there (supervisor thread).
  void adopt(const std::shared_ptr<Isolate>& isolate, const std::shared_ptr<Isolate>& spare) {
    unwatch(*spare);
    {
      std::lock_guard<std::mutex> lock(mu);
      isolate->process = std::exchange(spare->process, ChildProcess{});
      isolate->dir = std::move(spare->dir);
      isolate->server = spare->server;
      isolate->generic_net = spare->generic_net;
      isolate->err_tail = std::move(spare->err_tail);
      processes.erase(spare->id);
      spare->state = Isolate::State::kDead;
    }
    watch(isolate);
    LOG_DEBUG("isolate %s: took spare #%llu", isolate->tag().c_str(),
              static_cast<unsigned long long>(spare->id));
  }

  bool writeCode(const Isolate& isolate, const DeploymentCode& code, std::string& error) {
    std::string path = isolate.dir + "/code/" + code.entry_file;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(code.bundle.data(), static_cast<std::streamsize>(code.bundle.size()));
    out.close();
    if (!out) error = "cannot write " + path;
    return static_cast<bool>(out);
  }

  bool assign(Isolate& isolate, const DeploymentCode& code, std::string& error) {
    std::string line = "{\"nonce\":";
    appendJsonString(line, isolate.nonce);
    line += ",\"module\":";
    appendJsonString(line, "file://" + isolate.dir + "/code/" + code.entry_file);
    line += ",\"envs\":" + code.envs_json;
    line += std::string(",\"net\":") + (code.net == DeploymentCode::Net::kNone ? "false" : "true");
    line += ",\"loop_tag\":";
    {
      std::lock_guard<std::mutex> lock(mu);
      appendJsonString(line, isolate.deployment ? isolate.deployment->loop_tag : std::string());
      line += ",\"cluster_timeout_ms\":" + std::to_string(settings.cluster_timeout.count());
    }
    line += "}\n";
    // A pipe takes 64 KiB at once; the assignment is a few hundred bytes (the code is a file).
    ssize_t n = ::write(isolate.process.stdin_fd, line.data(), line.size());
    if (n != static_cast<ssize_t>(line.size())) {
      error = std::string("cannot hand the code to the runtime: ") +
              (n < 0 ? std::strerror(errno) : "short write");
      return false;
    }
    return true;
  }

  void postEnsureSpares() {
    supervisor.post([this] { ensureSpares(); });
  }

  void ensureSpares() {
    for (;;) {
      std::shared_ptr<Isolate> spare;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stopping || spares.size() >= settings.spare || spare_failures >= 3) return;
        spare = std::make_shared<Isolate>();
        spare->id = next_id++;
        spare->dir = settings.dir + "/iso-" + std::to_string(spare->id);
        spares.push_back(spare);
      }
      std::string error;
      if (!spawn(spare, nullptr, error)) {
        LOG_ERROR("spare runtime: cannot start: %s", error.c_str());
        std::lock_guard<std::mutex> lock(mu);
        std::erase(spares, spare);
        ++spare_failures;
        return;
      }
    }
  }

  // Trims spares beyond the configured count (after a reload lowered it).
  void trimSpares() {
    std::lock_guard<std::mutex> lock(mu);
    while (spares.size() > settings.spare) {
      auto spare = spares.back();
      spares.pop_back();
      spare->state = Isolate::State::kStopping;
      if (spare->process.pid > 0) kill(spare->process.pid, SIGKILL);
    }
  }

  static Impl& self() { return *IsolateRegistry::instance().impl_; }

  static void onStdout(evutil_socket_t fd, short, void* arg) {
    std::lock_guard<std::mutex> lock(self().mu);
    self().drainLocked(*static_cast<Isolate*>(arg), fd, false);
  }

  static void onStderr(evutil_socket_t fd, short, void* arg) {
    std::lock_guard<std::mutex> lock(self().mu);
    self().drainLocked(*static_cast<Isolate*>(arg), fd, true);
  }

  // Reads what the process wrote and handles it line by line (mu held; any thread).
  void drainLocked(Isolate& isolate, int fd, bool is_stderr) {
    char buf[8192];
    std::string& partial = is_stderr ? isolate.err_partial : isolate.out_partial;
    for (int rounds = 0; rounds < 64; ++rounds) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      partial.append(buf, static_cast<size_t>(n));
      size_t start = 0;
      for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1)
        lineLocked(isolate, std::string_view(partial).substr(start, nl - start), is_stderr);
      partial.erase(0, start);
      const bool report = !is_stderr && isReport(isolate, partial);
      if (!is_stderr && isolate.skip_line) {
        if (partial.size() > kMaxLogLine) partial.clear();  // still inside the dropped line
      } else if (report && partial.size() > kMaxReportLine) {
        LOG_WARN("isolate %s: dropped a report line over %zu bytes", isolate.tag().c_str(),
                 kMaxReportLine);
        partial.clear();
        isolate.skip_line = true;
      } else if (!report && partial.size() > kMaxLogLine) {  // an endless line: log it in pieces
        lineLocked(isolate, partial, is_stderr);
        partial.clear();
      }
    }
  }

  // A line (or the start of one) the harness wrote: it begins with the process's nonce, which
  // user code never sees.
  static bool isReport(const Isolate& isolate, std::string_view line) {
    return !isolate.nonce.empty() && line.size() > isolate.nonce.size() &&
           line.starts_with(isolate.nonce) && line[isolate.nonce.size()] == ' ';
  }

  void lineLocked(Isolate& isolate, std::string_view line, bool is_stderr) {
    if (!is_stderr && isolate.skip_line) {  // the rest of a dropped report line
      isolate.skip_line = false;
      return;
    }
    if (!is_stderr && isReport(isolate, line)) {
      std::string_view report = line.substr(isolate.nonce.size() + 1);
      if (report.starts_with("cluster ")) {
        if (hub) hub->report(isolate.id, report.substr(8));
      } else if (report == "ready") {
        readyLocked(isolate);
      } else if (report.starts_with("failed ")) {
        isolate.failure = std::string(report.substr(7));
      }
      return;
    }
    if (is_stderr) {
      if (line.find(kOutOfMemoryMarker) != std::string_view::npos) isolate.memory_limit = true;
      isolate.err_tail.append(line).push_back('\n');
      if (isolate.err_tail.size() > kStderrTail)
        isolate.err_tail.erase(0, isolate.err_tail.size() - kStderrTail);
    }
    logf(is_stderr ? LogLevel::kWarn : LogLevel::kInfo, "isolate %s: %.*s", isolate.tag().c_str(),
         static_cast<int>(line.size()), line.data());
  }

  void readyLocked(Isolate& isolate) {
    if (isolate.state != Isolate::State::kStarting) return;
    isolate.state = Isolate::State::kReady;
    if (isolate.timer) evtimer_del(isolate.timer);
    std::shared_ptr<Isolate> self = processes.count(isolate.id) ? processes[isolate.id] : nullptr;
    if (!self) return;
    LOG_INFO("isolate %s: ready", isolate.tag().c_str());
    std::vector<Waiter> waiters = std::move(isolate.waiters);
    isolate.waiters.clear();
    Deployment* d = isolate.deployment;
    // Shared isolates of a deployment are its cluster; a dedicated one is a cluster of one.
    if (hub && d)
      hub->join(isolate.id, isolate.instance_id.empty() ? d->key : std::string(),
                isolate.process.stdin_fd);
    for (Waiter& waiter : waiters) {
      if (!waiter.instance_id.empty() || isolate.active < waiter.limit) {
        grantLocked(self, waiter);
      } else if (d) {
        d->queue.push_front(std::move(waiter));
        ++queued;
      }
    }
    if (d) serveQueueLocked(*d);
  }

  // The boot deadline of a starting isolate, or the SIGINT-to-SIGKILL grace of a stopping one.
  static void onTimer(evutil_socket_t, short, void* arg) {
    Impl& m = self();
    auto* isolate = static_cast<Isolate*>(arg);
    std::lock_guard<std::mutex> lock(m.mu);
    if (isolate->state == Isolate::State::kStarting) {
      LOG_WARN("isolate %s: did not start serving within boot_timeout (%lld ms)",
               isolate->tag().c_str(), static_cast<long long>(m.settings.boot_timeout.count()));
      isolate->failure = "the isolate did not start serving within boot_timeout";
      m.failWaitersLocked(*isolate, ErrorKind::kDeploymentFailed, isolate->failure);
      m.detachLocked(*isolate);
      isolate->state = Isolate::State::kStopping;
    }
    if (isolate->state == Isolate::State::kStopping && isolate->process.pid > 0)
      kill(isolate->process.pid, SIGKILL);
  }

  static void onExit(evutil_socket_t, short, void* arg) {
    Impl& m = self();
    std::shared_ptr<Isolate> isolate;
    {
      std::lock_guard<std::mutex> lock(m.mu);
      isolate = m.processes[static_cast<Isolate*>(arg)->id];
      m.drainLocked(*isolate, isolate->process.stdout_fd, false);
      m.drainLocked(*isolate, isolate->process.stderr_fd, true);
    }
    int status = 0;
    waitpid(isolate->process.pid, &status, 0);
    m.exited(isolate, status);
  }

  void exited(const std::shared_ptr<Isolate>& isolate, int status) {
    std::string how = WIFEXITED(status)
                          ? "exited with status " + std::to_string(WEXITSTATUS(status))
                          : "was killed by signal " + std::to_string(WTERMSIG(status));
    {
      std::lock_guard<std::mutex> lock(mu);
      const bool expected = isolate->state == Isolate::State::kStopping;
      if (isolate->memory_limit) {
        LOG_WARN("isolate %s: exceeded its memory limit and %s", isolate->tag().c_str(),
                 how.c_str());
      } else if (expected) {
        LOG_INFO("isolate %s: stopped (%s)", isolate->tag().c_str(), how.c_str());
      } else {
        LOG_WARN("isolate %s: %s", isolate->tag().c_str(), how.c_str());
      }
      if (isolate->failure.empty()) isolate->failure = "the isolate " + how;
      ErrorKind kind =
          isolate->memory_limit ? ErrorKind::kMemoryLimit : ErrorKind::kDeploymentFailed;
      failWaitersLocked(*isolate, kind, isolate->failure);
      detachLocked(*isolate);
      isolate->state = Isolate::State::kDead;
      if (std::erase(spares, isolate) > 0 && !expected) ++spare_failures;
      processes.erase(isolate->id);
      pumpQueuesLocked();
    }
    if (hub) hub->leave(isolate->id);  // before its input pipe closes
    unwatch(*isolate);
    closeChildFds(isolate->process);
    std::error_code ec;
    std::filesystem::remove_all(isolate->dir, ec);
    ensureSpares();
  }

  static void onSweep(evutil_socket_t, short, void*) {
    Impl* self = &Impl::self();
    std::lock_guard<std::mutex> lock(self->mu);
    const SteadyTime now = steadyNow();
    std::vector<std::shared_ptr<Isolate>> idle;
    for (auto& [key, d] : self->deployments) {
      auto consider = [&](const std::shared_ptr<Isolate>& isolate) {
        if (isolate->state == Isolate::State::kReady && isolate->active == 0 &&
            isolate->waiters.empty() && now - isolate->last_used >= self->settings.idle_timeout)
          idle.push_back(isolate);
      };
      for (const auto& isolate : d->shared) consider(isolate);
      for (const auto& [id, isolate] : d->instances) consider(isolate);
    }
    for (auto& entry : self->deployments) {
      Deployment* d = entry.second.get();
      d->sticky.sweep(now, self->settings.sticky_ttl, [d](const Isolate& isolate) {
        return isolate.deployment == d;  // an isolate taken out of its deployment is no target
      });
    }
    for (const auto& isolate : idle) {
      LOG_INFO("isolate %s: idle for %lld ms, stopping", isolate->tag().c_str(),
               static_cast<long long>(self->settings.idle_timeout.count()));
      self->stopLocked(isolate);
    }
  }
};

// ---- IsolateLease

IsolateLease::IsolateLease(IsolateRegistry& registry, std::shared_ptr<Isolate> isolate,
                           std::string identity)
    : registry_(registry), isolate_(std::move(isolate)), identity_(std::move(identity)) {}

IsolateLease::~IsolateLease() { registry_.release(isolate_, identity_); }

const UpstreamServer& IsolateLease::server() const { return isolate_->server; }
const UpstreamGroup& IsolateLease::group() const { return isolateGroup(); }

// ---- IsolateRegistry

IsolateRegistry& IsolateRegistry::instance() {
  // Never destroyed: boot threads and worker mailboxes may still hold leases at exit.
  static IsolateRegistry* registry = new IsolateRegistry();
  return *registry;
}

IsolateRegistry::IsolateRegistry() : impl_(std::make_unique<Impl>(*this)) {}
IsolateRegistry::~IsolateRegistry() = default;

bool IsolateRegistry::configure(const RuntimeSettings& settings, std::string& error) {
  Impl& m = *impl_;
  if (access(settings.deno_path.c_str(), X_OK) != 0) {
    error = "the Deno runtime \"" + settings.deno_path +
            "\" is not executable: " + std::strerror(errno) +
            " (run scripts/setup.sh runtime, or set deno_path in the runtime block)";
    return false;
  }
  RuntimeSettings next = settings;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (m.started) next.dir = m.settings.dir;  // the folder is fixed for the process's life
  }
  if (next.dir.empty()) {
    removeOrphanFolders();
    char pattern[] = "/tmp/subgate-XXXXXX";
    if (!mkdtemp(pattern)) {
      error = std::string("cannot create the isolate folder: ") + std::strerror(errno);
      return false;
    }
    next.dir = pattern;
    std::ofstream(next.dir + "/" + std::string(kOwnerFile)) << getpid() << "\n";
  } else {
    std::error_code ec;
    std::filesystem::create_directories(next.dir, ec);
    if (ec) {
      error = "cannot create the isolate folder " + next.dir + ": " + ec.message();
      return false;
    }
  }
  if (next.dir.size() > 60) {
    error =
        "the isolate folder path " + next.dir + " is too long for unix sockets (60 bytes at most)";
    return false;
  }
  const std::string harness = next.dir + "/harness.js";
  {
    std::ofstream out(harness, std::ios::binary | std::ios::trunc);
    out.write(kIsolateHarness.data(), static_cast<std::streamsize>(kIsolateHarness.size()));
    if (!out) {
      error = "cannot write " + harness;
      return false;
    }
  }
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    first = !m.started;
    m.settings = next;
    for (auto& entry : m.deployments) entry.second->sticky.setMax(next.sticky_max);
    m.harness_path = harness;
    m.deno_dir = next.dir + "/deno-cache";
    m.spare_failures = 0;
    m.started = true;
  }
  if (!first && m.hub) m.hub->setTimeout(next.cluster_timeout);
  if (first) {
    if (!m.supervisor.start()) {
      error = "cannot start the isolate supervisor";
      return false;
    }
    std::lock_guard<std::mutex> lock(m.mu);
    m.hub = std::make_unique<ClusterHub>(m.supervisor.base(), next.cluster_timeout);
    m.supervisor.post([&m] {
      m.sweep_ev = event_new(m.supervisor.base(), -1, EV_PERSIST, Impl::onSweep, &m);
      timeval tv{0, static_cast<suseconds_t>(kSweepInterval.count() * 1000)};
      event_add(m.sweep_ev, &tv);
    });
  }
  m.supervisor.post([&m] {
    m.trimSpares();
    m.ensureSpares();
  });
  return true;
}

void IsolateRegistry::shutdown() {
  Impl& m = *impl_;
  std::chrono::milliseconds grace;
  std::string dir;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (!m.started) return;
    m.stopping = true;
    grace = m.settings.stop_timeout;
    dir = m.settings.dir;
    // SIGINT first, as for any stop; the supervisor keeps reaping while we wait.
    for (auto& [id, isolate] : m.processes) {
      isolate->state = Isolate::State::kStopping;
      if (isolate->process.pid > 0) kill(isolate->process.pid, SIGINT);
    }
  }
  const SteadyTime deadline = std::chrono::steady_clock::now() + grace;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(m.mu);
      if (m.processes.empty() || std::chrono::steady_clock::now() >= deadline) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::vector<pid_t> left;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    for (auto& [id, isolate] : m.processes)
      if (isolate->process.pid > 0) left.push_back(isolate->process.pid);
  }
  for (pid_t pid : left) kill(pid, SIGKILL);
  m.supervisor.stop();
  {
    std::lock_guard<std::mutex> lock(m.mu);
    m.hub.reset();  // the loop has stopped: its events can go from this thread
  }
  for (pid_t pid : left) waitpid(pid, nullptr, 0);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

IsolateGrant IsolateRegistry::acquire(const IsolateRequest& request, Worker* worker,
                                      Callback callback, uint64_t& ticket, bool& pending,
                                      bool& queued) {
  Impl& m = *impl_;
  IsolateGrant grant;
  pending = false;
  queued = false;
  std::lock_guard<std::mutex> lock(m.mu);
  Deployment& d = m.deploymentFor(*request.token);
  d.last_used = steadyNow();
  if (!request.loop_tag.empty() && request.loop_tag == d.loop_tag) {
    grant.error = ErrorKind::kLoopDetected;
    grant.message = "deployment \"" + d.deployment_id + "\" sent a request to itself";
    return grant;
  }
  std::string instance_id(request.instance_id);
  std::string identity(request.identity);
  if (auto isolate = m.findRoomLocked(d, instance_id, request.limit, identity)) {
    grant.lease = m.leaseLocked(isolate, identity);
    return grant;
  }
  Waiter waiter;
  waiter.ticket = ticket = m.next_ticket++;
  waiter.worker = worker;
  waiter.callback = std::move(callback);
  waiter.limit = request.limit;
  waiter.instance_id = std::move(instance_id);
  waiter.identity = std::move(identity);
  m.waiting[waiter.ticket] = &d;
  pending = true;
  if (m.placeLocked(d, waiter) == Impl::Placed::kNoRoom) {
    d.queue.push_back(std::move(waiter));
    ++m.queued;
    queued = true;
  }
  return grant;
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
  if (exited) m.detachLocked(mutable_isolate);
  if (isolate.memory_limit) {
    message = "the isolate exceeded its memory limit (" +
              std::to_string(m.settings.memory_limit >> 20) + " MiB) and was killed";
    return ErrorKind::kMemoryLimit;
  }
  message = exited ? "the isolate crashed while serving the request"
                   : "the connection to the isolate broke while serving the request";
  if (exited && !isolate.failure.empty()) message += " (" + isolate.failure + ")";
  return ErrorKind::kDeploymentFailed;
}

std::chrono::milliseconds IsolateRegistry::queueTimeout() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->settings.queue_timeout;
}

IsolateRegistry::Stats IsolateRegistry::stats() const {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  Stats s = m.counters;
  s.isolates = m.live;
  s.spares = m.spares.size();
  s.deployments = m.deployments.size();
  for (const auto& [key, d] : m.deployments) s.sticky += d->sticky.size();
  return s;
}

namespace {

const char* stateName(Isolate::State state) {
  switch (state) {
    case Isolate::State::kSpare: return "spare";
    case Isolate::State::kWaitingCode: return "waiting_code";
    case Isolate::State::kStarting: return "starting";
    case Isolate::State::kReady: return "ready";
    case Isolate::State::kStopping: return "stopping";
    case Isolate::State::kDead: return "dead";
  }
  return "unknown";
}

json_t* isolateJson(const Isolate& isolate) {
  json_t* out = json_object();
  json_object_set_new(out, "id", json_integer(static_cast<json_int_t>(isolate.id)));
  json_object_set_new(out, "instance_id",
                      json_stringn(isolate.instance_id.data(), isolate.instance_id.size()));
  json_object_set_new(out, "state", json_string(stateName(isolate.state)));
  json_object_set_new(out, "active", json_integer(isolate.active));
  json_object_set_new(out, "pid", json_integer(isolate.process.pid));
  return out;
}

}  // namespace

std::string IsolateRegistry::statusJson() const {
  Impl& m = *impl_;
  json_t* root = json_object();
  json_t* deployments = json_array();
  size_t sticky = 0;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    json_object_set_new(root, "isolates", json_integer(static_cast<json_int_t>(m.live)));
    json_object_set_new(root, "spares", json_integer(static_cast<json_int_t>(m.spares.size())));
    json_object_set_new(root, "boots", json_integer(static_cast<json_int_t>(m.counters.boots)));
    json_object_set_new(root, "processes",
                        json_integer(static_cast<json_int_t>(m.counters.processes)));
    for (const auto& [key, d] : m.deployments) {
      json_t* entry = json_object();
      json_object_set_new(entry, "deployment_id",
                          json_stringn(d->deployment_id.data(), d->deployment_id.size()));
      json_object_set_new(entry, "subhoster",
                          json_string(d->subhoster ? d->subhoster->name.c_str() : ""));
      json_object_set_new(entry, "rpc_root", json_stringn(d->rpc_root.data(), d->rpc_root.size()));
      json_object_set_new(entry, "queued", json_integer(static_cast<json_int_t>(d->queue.size())));
      json_object_set_new(entry, "sticky", json_integer(static_cast<json_int_t>(d->sticky.size())));
      sticky += d->sticky.size();
      json_t* isolates = json_array();
      for (const auto& isolate : d->shared) json_array_append_new(isolates, isolateJson(*isolate));
      for (const auto& [id, isolate] : d->instances)
        json_array_append_new(isolates, isolateJson(*isolate));
      json_object_set_new(entry, "isolates", isolates);
      json_array_append_new(deployments, entry);
    }
  }
  json_object_set_new(root, "sticky", json_integer(static_cast<json_int_t>(sticky)));
  json_object_set_new(root, "deployments", deployments);
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (m.hub) {
      json_t* cluster = m.hub->totalsJson();
      json_object_set_new(cluster, "clusters", m.hub->statusJson());
      json_object_set_new(root, "cluster", cluster);
    }
  }
  char* text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
  std::string out = text ? text : "{}";
  free(text);
  json_decref(root);
  return out;
}

void IsolateRegistry::release(const std::shared_ptr<Isolate>& isolate, const std::string& identity) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  if (isolate->active > 0) --isolate->active;
  m.releaseStickyLocked(*isolate, identity);
  isolate->last_used = steadyNow();
  if (isolate->state == Isolate::State::kReady && isolate->deployment)
    m.serveQueueLocked(*isolate->deployment);
  if (isolate->active == 0) m.pumpQueuesLocked();
}

}  // namespace subgate
