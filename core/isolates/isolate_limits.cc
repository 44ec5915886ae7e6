// What stops or refuses an isolate while it runs, on the supervisor thread of
// IsolateRegistry::Impl (isolate_pool.h): its cgroups and rlimits at spawn, the limits tick
// (cpu_block_limit's ping, cpu_limit's window; TIME_LIMIT) and the cgroup's OOM count
// (MEMORY_LIMIT), and the sandbox's egress gate on its connect() calls with the count and the
// rate-limited log of refusals (docs/security.md).

#include <event2/event.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/error/error_kind.h"
#include "core/isolates/isolate_pool.h"
#include "core/log/log.h"
#include "core/net/clock.h"
#include "core/process/connect_gate.h"
#include "core/process/proc_stat.h"

namespace subgate {
namespace {

bool isUnixPath(const sockaddr_storage& address, socklen_t length, const std::string& path) {
  if (address.ss_family != AF_UNIX || length <= offsetof(sockaddr_un, sun_path)) return false;
  const auto& unix_address = reinterpret_cast<const sockaddr_un&>(address);
  const size_t max =
      std::min<size_t>(length - offsetof(sockaddr_un, sun_path), sizeof unix_address.sun_path);
  const std::string_view given(unix_address.sun_path, strnlen(unix_address.sun_path, max));
  return !path.empty() && given == path;
}

}  // namespace

void IsolateRegistry::Impl::egressDeniedLocked(Isolate& isolate, std::string_view target) {
  ++counters.egress_denied;
  const SteadyTime now = steadyNow();
  if (now - isolate.denied_logged < std::chrono::seconds(1)) {
    ++isolate.denied_unlogged;
    return;
  }
  isolate.denied_logged = now;
  const uint64_t more = std::exchange(isolate.denied_unlogged, 0);
  LOG_WARN("isolate %s: egress to %s refused by the egress policy (%llu more since the last line)",
           isolate.tag().c_str(), logSafe(target).c_str(),  // a host name user code chose
           static_cast<unsigned long long>(more));
}

void IsolateRegistry::Impl::onConnectCall(evutil_socket_t fd, short, void* arg) {
  auto& isolate = *static_cast<Isolate*>(arg);
  Impl& m = *isolate.registry;
  if (!isolate.sandbox) return;
  const EgressGate& gate = isolate.sandbox->gate;
  const std::string own_socket = isolate.dir + "/sock/s.sock";
  std::string last_refused;
  uint64_t refused = 0;
  const bool open = serveConnectNotifications(
      fd,
      [&gate, &own_socket, &last_refused](const sockaddr_storage& address, socklen_t length) {
        // Its own server's socket, which the harness connects to once to warm the server up
        // (harness.js): the one unix socket an isolate may reach. Its path is the same in
        // subgate's view, where the gate makes the connection.
        if (isUnixPath(address, length, own_socket)) return 0;
        const int verdict = egressVerdict(gate, address, length);
        if (verdict != 0) last_refused = describeAddress(address, length);
        return verdict;
      },
      refused);
  if (refused > 0) {
    std::lock_guard<std::mutex> lock(m.mu);
    for (uint64_t i = 0; i < refused; ++i) m.egressDeniedLocked(isolate, "kernel: " + last_refused);
  }
  if (!open && isolate.notify_ev) event_del(isolate.notify_ev);  // the process is gone
}

bool IsolateRegistry::Impl::limitsFor(Isolate& isolate, const RuntimeSettings& s,
                                      SpawnOptions& options, std::string& error) const {
  // Above our own hard limit only a privileged subgate could set it: take what we have.
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  options.rlimits.emplace_back(RLIMIT_NOFILE, std::min<rlim_t>(s.max_files, files.rlim_max));
  if (!cgroups.memory() && !cgroups.tasks() && !cgroups.cpu()) return true;
  // Named by the isolate that starts the process (a spare's id): the name moves with it.
  isolate.cgroup = "iso-" + std::to_string(isolate.id);
  return cgroups.create(isolate.cgroup, {s.processMemoryLimit(), s.max_processes},
                        options.cgroup_procs, error);
}

void IsolateRegistry::Impl::armLimits() {
  std::chrono::milliseconds block, budget;
  {
    std::lock_guard<std::mutex> lock(mu);
    block = settings.cpu_block_limit;
    budget = settings.cpu_budget;
  }
  if (!limits_ev) limits_ev = event_new(supervisor.base(), -1, EV_PERSIST, onLimits, this);
  event_del(limits_ev);
  if (block.count() == 0 && budget.count() == 0) return;
  // A quarter of the block limit: a ping goes out within a tick of a block and the check runs at
  // ticks, so a blocked loop is caught within 1.5 times the limit (in CPU time).
  // The budget's window is at least 1 s, so 250 ms samples it finely enough.
  std::chrono::milliseconds tick(250);
  if (block.count() > 0) tick = std::clamp(block / 4, std::chrono::milliseconds(10), tick);
  const timeval tv = toTimeval(tick);
  event_add(limits_ev, &tv);
}

IsolateRegistry::Impl::CpuSample IsolateRegistry::Impl::sampleCpu(Isolate& isolate,
                                                                  const std::string& cgroup,
                                                                  bool block, bool budget,
                                                                  SteadyTime now) const {
  CpuSample sample;
  if (budget && !cgroup.empty()) sample.total = cgroups.cpuTime(cgroup, isolate.cgroup_cpu);
  const bool tree_total = budget && !sample.total;
  if (!block && !tree_total) return sample;
  const ProcessTreeCpu::Times times = isolate.cpu_tree->read(now, block, tree_total);
  sample.loop = times.main_threads;
  if (tree_total) sample.total = times.all_threads;
  return sample;
}

void IsolateRegistry::Impl::onLimits(evutil_socket_t, short, void* arg) {
  Impl& m = *static_cast<Impl*>(arg);
  struct Probe {
    std::shared_ptr<Isolate> isolate;
    pid_t pid;
    std::string cgroup;
    CpuSample cpu;
  };
  std::vector<Probe> probes;
  bool block, budget;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    block = m.settings.cpu_block_limit.count() > 0;
    budget = m.settings.cpu_budget.count() > 0;
    probes.reserve(m.processes.size());
    for (const auto& [id, isolate] : m.processes)
      if (isolate->state == Isolate::State::kReady && isolate->process.pid > 0)
        probes.push_back({isolate, isolate->process.pid, isolate->cgroup, {}});
  }
  // Read /proc and the cgroups without the lock: workers take it on their cold paths. Each
  // isolate's process tree is found at its first tick after it became ready (a file per thread,
  // some 30 for a sandboxed Deno), and then only its members' stat files are read, held open
  // (ProcessTreeCpu: found again every kCpuTreeRefresh and when a member is gone); so is its
  // cgroup's CPU time file. Opening a /proc file costs more than reading it (the path lookup).
  SteadyTime now = steadyNow();
  for (Probe& probe : probes) {
    std::optional<ProcessTreeCpu>& tree = probe.isolate->cpu_tree;  // supervisor thread only
    if (!tree || tree->root() != probe.pid) tree.emplace(probe.pid, kCpuTreeRefresh);
    probe.cpu = m.sampleCpu(*probe.isolate, probe.cgroup, block, budget, now);
  }
  now = steadyNow();
  std::lock_guard<std::mutex> lock(m.mu);
  for (Probe& probe : probes)
    if (probe.isolate->state == Isolate::State::kReady)
      m.checkCpuLocked(*probe.isolate, probe.cpu, now);
}

void IsolateRegistry::Impl::checkCpuLocked(Isolate& isolate, const CpuSample& cpu, SteadyTime now) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  if (settings.cpu_block_limit.count() > 0 && cpu.loop) {
    if (isolate.loop_watch.blocked(*cpu.loop, settings.cpu_block_limit)) {
      killForTimeLocked(isolate, "its event loop did not turn while it used " +
                                     std::to_string(settings.cpu_block_limit.count()) +
                                     " ms of CPU time (cpu_block_limit)");
      return;
    }
    if (isolate.loop_watch.needsPing(*cpu.loop) && hub) {
      // Counted as sent only once queued: a ping that cannot reach the harness (no member of the
      // hub, its input over the bound) must not get a busy but turning isolate killed.
      const uint64_t seq = isolate.loop_watch.seq() + 1;
      if (hub->sendLine(isolate.id, R"({"op":"ping","seq":)" + std::to_string(seq) + "}\n"))
        isolate.loop_watch.pinged(*cpu.loop);
    }
  }
  if (settings.cpu_budget.count() > 0 && cpu.total) {
    const auto used = isolate.cpu_window.add(now, *cpu.total, settings.cpu_window);
    if (used > settings.cpu_budget)
      killForTimeLocked(
          isolate, "it used " + std::to_string(duration_cast<milliseconds>(used).count()) +
                       " ms of CPU time within " + std::to_string(settings.cpu_window.count()) +
                       " ms (cpu_limit " + std::to_string(settings.cpu_budget.count()) +
                       " ms per " + std::to_string(settings.cpu_window.count()) + " ms)");
  }
}

void IsolateRegistry::Impl::killForTimeLocked(Isolate& isolate, const std::string& why) {
  if (isolate.state == Isolate::State::kStopping || isolate.state == Isolate::State::kDead) return;
  LOG_WARN("isolate %s: %s: killing it", isolate.tag().c_str(), why.c_str());
  isolate.time_limit = true;
  isolate.failure = "the isolate was killed: " + why;
  eventLocked(isolate, EventType::kTimeLimit, messagePayload(isolate.failure));
  failWaitersLocked(isolate, ErrorKind::kTimeLimit, isolate.failure);
  detachLocked(isolate);
  isolate.state = Isolate::State::kStopping;
  if (isolate.process.pid > 0) kill(isolate.process.pid, SIGKILL);
}

bool IsolateRegistry::Impl::cgroupOomLocked(Isolate& isolate) const {
  if (isolate.memory_limit) return true;
  if (isolate.cgroup.empty() || cgroups.oomKills(isolate.cgroup) == 0) return false;
  isolate.memory_limit = true;
  isolate.failure = "the isolate exceeded its process memory limit (" +
                    std::to_string(settings.processMemoryLimit() >> 20) + " MiB) and was killed";
  return true;
}

}  // namespace subgate
