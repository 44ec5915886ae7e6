// Starting and stopping the isolate registry (isolate_registry.h): configure() makes the isolate
// folder and its runtime files, plans the sandbox, opens the cgroups and starts the supervisor;
// shutdown() stops every isolate and removes what configure() made. The placement part is in
// isolate_registry.cc.
#include <event2/event.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "core/isolates/isolate_pool.h"
#include "core/isolates/isolate_registry.h"
#include "core/isolates/runtime_launch.h"
#include "core/isolates/sandbox.h"
#include "core/log/log.h"

namespace subgate {

extern const std::string_view kIsolateHarness;  // core/isolates/harness.js, embedded
extern const std::string_view kNodeNetShim;     // core/isolates/node_net_shim.js, embedded

namespace {

constexpr std::chrono::milliseconds kSweepInterval{500};
constexpr std::string_view kCgroupPrefix = "subgate-";

// Finds the cgroups isolates can be capped with and says in the log what is capped how.
void openCgroups(IsolateRegistry::Impl& m) {
  // "subgate-PID-SERIAL": one group per registry; a group whose subgate died is an orphan.
  auto orphan = [](std::string_view name) {
    if (!name.starts_with(kCgroupPrefix)) return false;
    name.remove_prefix(kCgroupPrefix.size());
    pid_t pid = 0;
    auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), pid);
    if (ec != std::errc() || end == name.data() + name.size() || *end != '-' || pid <= 0)
      return false;
    return kill(pid, 0) != 0 && errno == ESRCH;
  };
  m.cgroups.open(
      std::string(kCgroupPrefix) + std::to_string(getpid()) + "-" + std::to_string(m.serial),
      orphan);
  if (m.cgroups.memory() && m.cgroups.tasks()) {
    LOG_NOTICE("isolate limits: %s", m.cgroups.summary().c_str());
    return;
  }
  LOG_WARN("isolate limits: %s.%s%s", m.cgroups.summary().c_str(),
           m.cgroups.memory() ? ""
                              : " Without a memory cgroup only V8's heap is capped (memory_limit): "
                                "an isolate's ArrayBuffers and native memory are not.",
           m.cgroups.tasks() ? ""
                             : " Without a pids cgroup an isolate's threads are not capped "
                               "(max_processes); it cannot start processes (no --allow-run).");
}

// Writes the harness and the files beside it (the node:net shim, the import map, the warm-up
// module) into the isolate folder `dir`, readable by isolates running as their own users.
bool writeRuntimeFiles(const std::string& dir, const std::string& harness, std::string& error) {
  const std::string shim = netShimPath(harness);
  const std::string import_map = importMapPath(harness);
  const std::string warm = warmModulePath(harness);
  const std::string import_map_text = importMapJson(shim);
  for (const auto& [path, text] :
       {std::pair<std::string, std::string_view>{harness, kIsolateHarness},
        {shim, kNodeNetShim},
        {import_map, import_map_text},
        {warm, kWarmModule}}) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!out) {
      error = "cannot write " + path;
      return false;
    }
  }
  // Isolates running as their own users pass through the folder to their own subfolder and
  // read the harness and the files beside it; they cannot list it.
  chmod(dir.c_str(), 0711);
  for (const std::string& file : {harness, shim, import_map, warm}) chmod(file.c_str(), 0644);
  return true;
}

}  // namespace

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
  if (!writeRuntimeFiles(next.dir, harness, error)) return false;
  std::shared_ptr<const SandboxPlan> sandbox;
  std::vector<std::string> notes;
  if (!planSandbox(next.sandbox, next.deno_path, harness, next.dir + "/probe", sandbox, error,
                   notes))
    return false;
  for (const std::string& note : notes) LOG_WARN("isolate sandbox: %s", note.c_str());
  if (!sandbox->enabled)
    LOG_WARN(
        "isolate sandbox: off (`sandbox off;`): isolates run as subgate's user behind "
        "Deno's permissions only");
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    first = !m.started;
    m.settings = next;
    m.boot_backoff.configure(next.boot_failure_backoff, next.boot_failure_backoff_max);
    for (auto& entry : m.deployments) {
      std::lock_guard<std::mutex> sticky_lock(entry.second->sticky_mu);
      entry.second->sticky.setMax(next.sticky_max);
    }
    m.harness_path = harness;
    m.sandbox = sandbox;
    m.spare_failures = 0;
    m.started = true;
  }
  if (!first && m.hub) m.hub->setTimeout(next.cluster_timeout);
  EventSenderSettings events;
  events.policy = next.events;
  events.client = next.origin;
  events.client.total_timeout = next.events_timeout;
  events.client.max_response_bytes = 64 << 10;  // the answer is not read
  m.event_sender.configure(events);
  if (first) {
    openCgroups(m);
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
    m.armLimits();
  });
  return true;
}

void IsolateRegistry::shutdown() {
  Impl& m = *impl_;
  std::chrono::milliseconds grace;
  std::string dir;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (!m.started || m.shut_down) return;
    m.shut_down = true;
    m.stopping = true;
    grace = m.settings.stop_timeout;
    dir = m.settings.dir;
    // SIGINT first, as for any stop; the supervisor keeps reaping while we wait.
    for (auto& [id, isolate] : m.processes) {
      isolate->accepting.store(false);
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
  m.event_sender.stop();  // after the last events of the isolates were queued
  {
    // The loop has stopped: its events can go from this thread (the registry may be destroyed
    // next, now that the config owns it and nothing keeps it for the life of the process).
    std::lock_guard<std::mutex> lock(m.mu);
    m.hub.reset();
    if (m.sweep_ev) event_free(m.sweep_ev);
    m.sweep_ev = nullptr;
    if (m.limits_ev) event_free(m.limits_ev);
    m.limits_ev = nullptr;
    for (auto& [id, isolate] : m.processes) Impl::unwatch(*isolate);
  }
  for (pid_t pid : left) waitpid(pid, nullptr, 0);
  {
    std::lock_guard<std::mutex> lock(m.mu);
    for (auto& [id, isolate] : m.processes)
      if (!isolate->cgroup.empty() && !m.cgroups.remove(isolate->cgroup))
        m.lingering_cgroups.push_back(isolate->cgroup);
  }
  // The supervisor is gone: what still holds a process gets a second to go (bounded).
  for (int round = 0; round < 20 && !m.lingering_cgroups.empty(); ++round) {
    std::erase_if(m.lingering_cgroups, [&m](const std::string& name) {
      if (m.cgroups.remove(name)) return true;
      m.cgroups.killAll(name);
      return false;
    });
    if (!m.lingering_cgroups.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  m.cgroups.close();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace subgate
