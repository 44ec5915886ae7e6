// The supervisor thread of IsolateRegistry::Impl (isolate_pool.h): it starts runtime processes
// (or adopts a spare), writes their code and assignment line, reads their stdout and stderr line
// by line (reports from the harness, logs otherwise), and handles their timers, their exits,
// the idle sweep and the CPU and memory limits (the limits tick, cgroups, rlimits). Bookkeeping is
// done under the registry mutex, never across I/O that can block.
#include <event2/event.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error/error_kind.h"
#include "core/isolates/isolate_pool.h"
#include "core/isolates/module_path.h"
#include "core/isolates/runtime_launch.h"
#include "core/log/log.h"
#include "core/net/clock.h"
#include "core/net/socket_address.h"
#include "core/process/child_process.h"

namespace subgate {

namespace {

constexpr size_t kStderrTail = 2048;
constexpr std::string_view kOutOfMemoryMarker = "Fatal JavaScript out of memory";
// Output lines longer than this are logged in pieces; a cluster report (nonce-prefixed) may be
// longer, up to kMaxReportLine, and is dropped beyond it.
constexpr size_t kMaxLogLine = 16384;
constexpr size_t kMaxReportLine = 1u << 20;

void appendJsonString(std::string& out, std::string_view text) {
  out += '"';
  appendJsonEscaped(out, text);
  out += '"';
}

}  // namespace

RuntimeLaunch IsolateRegistry::Impl::launchSettings() const {
  std::lock_guard<std::mutex> lock(mu);
  return {settings, harness_path, sandbox};
}

bool IsolateRegistry::Impl::makeDirs(const std::string& dir, std::string& error) {
  std::error_code ec;
  for (const char* sub : {"/root", "/sock", "/deno"}) {
    if (!ec) std::filesystem::create_directories(dir + sub, ec);
  }
  if (ec) error = "cannot create " + dir + ": " + ec.message();
  return !ec;
}

bool IsolateRegistry::Impl::spawn(const std::shared_ptr<Isolate>& isolate,
                                  const DeploymentCode* code, std::string& error) {
  const RuntimeLaunch launch = launchSettings();
  if (!makeDirs(isolate->dir, error) ||
      !handDirToIsolate(*launch.sandbox, isolate->id, isolate->dir, error))
    return false;
  const PreparedConfinement confinement = isolateConfinement(*launch.sandbox, isolate->id);
  SpawnOptions options;
  if (launch.sandbox->enabled) options.confinement = &confinement;
  if (!limitsFor(*isolate, launch.settings, options, error) ||
      !spawnChild(runtimeArgv(launch, isolate->dir, code), runtimeEnv(launch, isolate->dir),
                  isolate->dir, isolate->process, error, options)) {
    if (!isolate->cgroup.empty()) cgroups.remove(std::exchange(isolate->cgroup, ""));
    return false;
  }
  std::string address_error;
  auto address = parseSocketAddress("unix:" + isolate->dir + "/sock/s.sock", 0, address_error);
  isolate->server.address = *address;
  isolate->server.peer = internPeer(address->text);
  isolate->server.owner = isolate->process.pid;  // the listener must be this process's
  isolate->sandbox = launch.sandbox;
  isolate->generic_net = !code || code->net != DeploymentCode::Net::kList;
  watch(isolate);
  ++counters.processes;
  return true;
}

void IsolateRegistry::Impl::watch(const std::shared_ptr<Isolate>& isolate) {
  event_base* base = supervisor.base();
  Isolate* raw = isolate.get();
  isolate->exit_ev = event_new(base, isolate->process.pidfd, EV_READ, onExit, raw);
  isolate->out_ev =
      event_new(base, isolate->process.stdout_fd, EV_READ | EV_PERSIST, onStdout, raw);
  isolate->err_ev =
      event_new(base, isolate->process.stderr_fd, EV_READ | EV_PERSIST, onStderr, raw);
  isolate->timer = evtimer_new(base, onTimer, raw);
  for (event* ev : {isolate->exit_ev, isolate->out_ev, isolate->err_ev}) event_add(ev, nullptr);
  if (isolate->process.notify_fd >= 0) {
    isolate->notify_ev =
        event_new(base, isolate->process.notify_fd, EV_READ | EV_PERSIST, onConnectCall, raw);
    event_add(isolate->notify_ev, nullptr);
  }
  std::lock_guard<std::mutex> lock(mu);
  processes[isolate->id] = isolate;
}

void IsolateRegistry::Impl::unwatch(Isolate& isolate) {
  for (event** ev :
       {&isolate.exit_ev, &isolate.out_ev, &isolate.err_ev, &isolate.timer, &isolate.notify_ev}) {
    if (*ev) event_free(*ev);
    *ev = nullptr;
  }
}

void IsolateRegistry::Impl::launch(const std::shared_ptr<Isolate>& isolate) {
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
    recordBootLocked(*isolate, false, ErrorKind::kDeploymentFailed,
                     "the isolate could not be started: " + error);
    failWaitersLocked(*isolate, ErrorKind::kDeploymentFailed,
                      "the isolate could not be started: " + error);
    detachLocked(*isolate);
    if (isolate->process.pid <= 0) isolate->state = Isolate::State::kDead;
    return;
  }
  const timeval boot = toTimeval(launchSettings().settings.boot_timeout);
  evtimer_add(isolate->timer, &boot);
}

void IsolateRegistry::Impl::adopt(const std::shared_ptr<Isolate>& isolate,
                                  const std::shared_ptr<Isolate>& spare) {
  unwatch(*spare);
  {
    std::lock_guard<std::mutex> lock(mu);
    isolate->process = std::exchange(spare->process, ChildProcess{});
    isolate->dir = std::move(spare->dir);
    isolate->server = spare->server;
    isolate->sandbox = std::move(spare->sandbox);
    isolate->generic_net = spare->generic_net;
    isolate->took_spare = true;
    isolate->err_tail = std::move(spare->err_tail);
    isolate->cgroup = std::move(spare->cgroup);  // the process's cgroup goes with it
    processes.erase(spare->id);
    spare->state = Isolate::State::kDead;
  }
  watch(isolate);
  LOG_DEBUG("isolate %s: took spare #%llu", isolate->tag().c_str(),
            static_cast<unsigned long long>(spare->id));
}

// Each local module goes to its own path in the isolate's root folder (sandbox.h): inside the
// sandbox that folder is `/`, so Deno loads `file:///src/main.ts` from `/src/main.ts` and the
// module's import.meta.url is its own specifier. Remote modules go into the isolate's Deno cache
// (code_assembly.h). Only subgate and bubblewrap (its mount points) write in the root folder,
// and the isolate sees it read-only, so no link can be waiting in a path; the Deno cache is the
// isolate's, but it has not run the deployment's code yet.
bool IsolateRegistry::Impl::writeCode(const Isolate& isolate, const DeploymentCode& code,
                                      std::string& error) {
  const bool sandboxed = isolate.sandbox && isolate.sandbox->enabled;
  const std::vector<std::string> mounts =
      sandboxed ? sandboxMounts(*isolate.sandbox, isolate.dir) : std::vector<std::string>();
  for (const DeploymentModule& module : code.modules) {
    if (!module.in_deno_dir) {
      if (const std::string* mount = folderHolding(module.path, mounts)) {
        error = "module " + module.specifier + " lies in " + *mount +
                ", which the sandbox holds for the runtime";
        return false;
      }
    }
    const std::string file = isolate.dir + (module.in_deno_dir ? "/deno/" : "/root") + module.path;
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(file).parent_path(), ec);
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(module.bytes.data(), static_cast<std::streamsize>(module.bytes.size()));
    out.close();
    if (ec || !out) {
      error = "cannot write module " + module.specifier + " to " + file +
              (ec ? ": " + ec.message() : std::string());
      return false;
    }
  }
  return true;
}

// The URL the harness imports: the entrypoint itself inside the sandbox; without it (no root of
// its own), the same path under the isolate's root folder.
static std::string moduleUrl(const Isolate& isolate, const DeploymentCode& code) {
  if (isolate.sandbox && isolate.sandbox->enabled) return code.entrypoint;
  std::string url = "file://";
  url += isolate.dir;
  url += "/root";
  url += std::string_view(code.entrypoint).substr(std::string_view("file://").size());
  return url;
}

bool IsolateRegistry::Impl::assign(Isolate& isolate, const DeploymentCode& code,
                                   std::string& error) {
  std::string line = "{\"nonce\":";
  appendJsonString(line, isolate.nonce);
  line += ",\"module\":";
  appendJsonString(line, moduleUrl(isolate, code));
  line += ",\"envs\":" + code.envs_json;
  line += std::string(",\"net\":") + (code.net == DeploymentCode::Net::kNone ? "false" : "true");
  line += ",\"loop_tag\":";
  {
    std::lock_guard<std::mutex> lock(mu);
    appendJsonString(line, isolate.deployment ? isolate.deployment->loop_tag : std::string());
    line += ",\"own_hosts\":[";
    for (size_t i = 0; i < settings.own_hosts.size(); ++i) {
      if (i > 0) line += ',';
      appendJsonString(line, settings.own_hosts[i]);
    }
    line += "],\"cluster_timeout_ms\":" + std::to_string(settings.cluster_timeout.count());
    // Deno Deploy's own variables (set after the config's envs, which cannot override them).
    line += ",\"deployment_id\":";
    appendJsonString(line, isolate.deployment_id);
    line += ",\"region\":";
    appendJsonString(line, settings.region);
  }
  line += "}\n";
  // A pipe takes 64 KiB at once; the assignment is a few hundred bytes (the code is a file; a
  // config with thousands of server_names would need more).
  ssize_t n = ::write(isolate.process.stdin_fd, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) {
    error = std::string("cannot hand the code to the runtime: ") +
            (n < 0 ? std::strerror(errno) : "short write");
    return false;
  }
  return true;
}

void IsolateRegistry::Impl::postEnsureSpares() {
  supervisor.post([this] { ensureSpares(); });
}

void IsolateRegistry::Impl::refillSparesLater() {
  // On the supervisor thread (readyLocked). A one-shot timer: several refills may be pending,
  // ensureSpares() starts only what is missing.
  constexpr timeval kSpareRefillDelay = {0, 100 * 1000};
  event_base_once(
      supervisor.base(), -1, EV_TIMEOUT,
      [](evutil_socket_t, short, void* arg) { static_cast<Impl*>(arg)->ensureSpares(); }, this,
      &kSpareRefillDelay);
}

void IsolateRegistry::Impl::ensureSpares() {
  for (;;) {
    std::shared_ptr<Isolate> spare;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopping || spares.size() >= settings.spare || spare_failures >= 3) return;
      spare = std::make_shared<Isolate>();
      spare->registry = this;
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

void IsolateRegistry::Impl::trimSpares() {
  std::lock_guard<std::mutex> lock(mu);
  while (spares.size() > settings.spare) {
    auto spare = spares.back();
    spares.pop_back();
    spare->state = Isolate::State::kStopping;
    if (spare->process.pid > 0) kill(spare->process.pid, SIGKILL);
  }
}

void IsolateRegistry::Impl::onStdout(evutil_socket_t fd, short, void* arg) {
  auto& isolate = *static_cast<Isolate*>(arg);
  std::lock_guard<std::mutex> lock(isolate.registry->mu);
  isolate.registry->drainLocked(isolate, fd, false);
}

void IsolateRegistry::Impl::onStderr(evutil_socket_t fd, short, void* arg) {
  auto& isolate = *static_cast<Isolate*>(arg);
  std::lock_guard<std::mutex> lock(isolate.registry->mu);
  isolate.registry->drainLocked(isolate, fd, true);
}

void IsolateRegistry::Impl::drainLocked(Isolate& isolate, int fd, bool is_stderr) {
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

bool IsolateRegistry::Impl::isReport(const Isolate& isolate, std::string_view line) {
  return !isolate.nonce.empty() && line.size() > isolate.nonce.size() &&
         line.starts_with(isolate.nonce) && line[isolate.nonce.size()] == ' ';
}

void IsolateRegistry::Impl::lineLocked(Isolate& isolate, std::string_view line, bool is_stderr) {
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
      // The full detail, for the operator; clients get clientMessage()'s copy (failLocked).
      isolate.failure = std::string(report.substr(7));
      LOG_WARN("isolate %s: failed to load the deployment: %s", isolate.tag().c_str(),
               logSafe(isolate.failure).c_str());
      bootEventLocked(isolate, false, isolate.failure);
      recordBootLocked(isolate, false, ErrorKind::kDeploymentFailed, isolate.failure);
    } else if (report.starts_with("pong ")) {
      uint64_t seq = 0;
      std::string_view digits = report.substr(5);
      std::from_chars(digits.data(), digits.data() + digits.size(), seq);
      isolate.loop_watch.answered(seq);
    } else if (report.starts_with("denied ")) {
      egressDeniedLocked(isolate, report.substr(7));
    } else if (report.starts_with("log ")) {
      logReportLocked(isolate, report.substr(4));
    } else if (report.starts_with("uncaught ")) {
      uncaughtReportLocked(isolate, report.substr(9));
    }
    return;
  }
  if (is_stderr) {
    if (line.find(kOutOfMemoryMarker) != std::string_view::npos && !isolate.memory_limit) {
      isolate.memory_limit = true;
      isolate.failure = "the isolate exceeded its memory limit (" +
                        std::to_string(settings.memory_limit >> 20) +
                        " MiB of V8 heap) and was killed";
    }
    isolate.err_tail.append(line).push_back('\n');
    if (isolate.err_tail.size() > kStderrTail)
      isolate.err_tail.erase(0, isolate.err_tail.size() - kStderrTail);
  }
  // Raw output (user code writing to stdout or stderr itself, Deno's own messages).
  userLogLocked(isolate, is_stderr ? LogEventLevel::kError : LogEventLevel::kInfo, line);
}

void IsolateRegistry::Impl::readyLocked(Isolate& isolate) {
  if (isolate.state != Isolate::State::kStarting) return;
  isolate.state = Isolate::State::kReady;
  if (isolate.timer) evtimer_del(isolate.timer);
  std::shared_ptr<Isolate> self = processes.count(isolate.id) ? processes[isolate.id] : nullptr;
  if (!self) return;
  LOG_INFO("isolate %s: ready", isolate.tag().c_str());
  bootEventLocked(isolate, true, {});
  recordBootLocked(isolate, true, ErrorKind::kDeploymentFailed, {});
  ++counters.ready;
  if (isolate.created != SteadyTime{}) {
    const uint64_t nanos = LatencyBuckets::nanosOf(steadyNow() - isolate.created);
    (isolate.took_spare ? counters.boot_spare : counters.boot_cold).add(nanos);
  }
  std::vector<Waiter> waiters = std::move(isolate.waiters);
  isolate.waiters.clear();
  Deployment* d = isolate.deployment;
  if (d) {
    isolate.accepting.store(true);
    if (isolate.instance_id.empty()) publishReadyLocked(*d);
  }
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
  if (isolate.took_spare) refillSparesLater();  // (a failed boot replaces it in exited())
}

void IsolateRegistry::Impl::onTimer(evutil_socket_t, short, void* arg) {
  auto* isolate = static_cast<Isolate*>(arg);
  Impl& m = *isolate->registry;
  std::lock_guard<std::mutex> lock(m.mu);
  if (isolate->state == Isolate::State::kStarting) {
    LOG_WARN("isolate %s: did not start serving within boot_timeout (%lld ms)",
             isolate->tag().c_str(), static_cast<long long>(m.settings.boot_timeout.count()));
    isolate->failure = "the isolate did not start serving within boot_timeout";
    m.bootEventLocked(*isolate, false, isolate->failure);
    m.recordBootLocked(*isolate, false, ErrorKind::kDeploymentFailed, isolate->failure);
    m.failWaitersLocked(*isolate, ErrorKind::kDeploymentFailed, isolate->failure);
    m.detachLocked(*isolate);
    isolate->state = Isolate::State::kStopping;
  }
  if (isolate->state == Isolate::State::kStopping && isolate->process.pid > 0)
    kill(isolate->process.pid, SIGKILL);
}

void IsolateRegistry::Impl::onExit(evutil_socket_t, short, void* arg) {
  Impl& m = *static_cast<Isolate*>(arg)->registry;
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

void IsolateRegistry::Impl::exited(const std::shared_ptr<Isolate>& isolate, int status) {
  std::string how = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                      : "was killed by signal " + std::to_string(WTERMSIG(status));
  {
    std::lock_guard<std::mutex> lock(mu);
    const bool expected = isolate->state == Isolate::State::kStopping;
    cgroupOomLocked(*isolate);
    if (isolate->memory_limit) {
      LOG_WARN("isolate %s: exceeded its memory limit and %s", isolate->tag().c_str(), how.c_str());
    } else if (isolate->time_limit) {
      LOG_WARN("isolate %s: killed for its CPU limit, %s", isolate->tag().c_str(), how.c_str());
    } else if (expected) {
      LOG_INFO("isolate %s: stopped (%s)", isolate->tag().c_str(), how.c_str());
    } else {
      LOG_WARN("isolate %s: %s", isolate->tag().c_str(), how.c_str());
    }
    if (isolate->failure.empty()) isolate->failure = "the isolate " + how;
    exitEventsLocked(*isolate);
    if (isolate->memory_limit) ++counters.stopped_memory_limit;
    if (isolate->time_limit) ++counters.stopped_time_limit;
    if (!expected && !isolate->memory_limit && !isolate->time_limit &&
        !isolate->deployment_id.empty())
      ++counters.stopped_failed;  // a spare's failure is spare_failures
    ErrorKind kind = isolate->memory_limit ? ErrorKind::kMemoryLimit
                     : isolate->time_limit ? ErrorKind::kTimeLimit
                                           : ErrorKind::kDeploymentFailed;
    recordBootLocked(*isolate, false, kind, isolate->failure);  // when it never was ready
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
  isolate->cpu_tree.reset();  // the files the limits tick held open
  isolate->cgroup_cpu.close();
  // After the flags above were set under the lock: failureOf() reads the cgroup only before.
  if (!isolate->cgroup.empty() && !cgroups.remove(isolate->cgroup)) {
    cgroups.killAll(isolate->cgroup);
    lingering_cgroups.push_back(isolate->cgroup);
  }
  std::error_code ec;
  std::filesystem::remove_all(isolate->dir, ec);
  ensureSpares();
}

void IsolateRegistry::Impl::onSweep(evutil_socket_t, short, void* arg) {
  Impl* self = static_cast<Impl*>(arg);
  std::erase_if(self->lingering_cgroups, [self](const std::string& name) {
    if (self->cgroups.remove(name)) return true;
    self->cgroups.killAll(name);
    return false;
  });
  std::lock_guard<std::mutex> lock(self->mu);
  const SteadyTime now = steadyNow();
  std::vector<std::shared_ptr<Isolate>> idle;
  for (auto& [key, d] : self->deployments) {
    auto consider = [&](const std::shared_ptr<Isolate>& isolate) {
      if (isolate->state == Isolate::State::kReady && isolate->active == 0 &&
          isolate->waiters.empty() &&
          now - isolate->last_used.load() >= self->settings.idle_timeout)
        idle.push_back(isolate);
    };
    for (const auto& isolate : d->shared) consider(isolate);
    for (const auto& [id, isolate] : d->instances) consider(isolate);
  }
  for (auto& entry : self->deployments) {
    Deployment* d = entry.second.get();
    std::lock_guard<std::mutex> sticky_lock(d->sticky_mu);
    d->sticky.sweep(now, self->settings.sticky_ttl, [d](const Isolate& isolate) {
      return isolate.deployment == d;  // an isolate taken out of its deployment is no target
    });
  }
  for (const auto& [id, isolate] : self->processes) self->flushDroppedLocked(*isolate, now);
  for (const auto& isolate : idle) {
    if (!self->closeIdleLocked(*isolate)) continue;  // a request took it meanwhile
    ++self->counters.evicted_idle;
    LOG_INFO("isolate %s: idle for %lld ms, stopping", isolate->tag().c_str(),
             static_cast<long long>(self->settings.idle_timeout.count()));
    self->stopLocked(isolate);
  }
}

// ---- CPU and memory limits

}  // namespace subgate
