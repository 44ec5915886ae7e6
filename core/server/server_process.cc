#include "core/server/server_process.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "core/log/log.h"
#include "core/log/log_file.h"
#include "core/pipeline/config_loader.h"
#include "core/server/worker.h"

namespace subgate {

namespace {

std::shared_ptr<const RuntimeConfig> load(const ServerOptions& options, std::string& err,
                                          const RuntimeConfig* previous = nullptr) {
  return loadServerConfig(options, err, previous);
}

int openListener(const SocketAddress& address, std::string& err) {
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    err = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // Each worker has its own socket on the address; the kernel spreads connections across them.
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (address.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, address.get(), address.length) != 0 || ::listen(fd, 4096) != 0) {
    err = "cannot listen on " + address.text + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

// Fails (with `err`) when a socket of another process is bound to `address` already. Each worker
// listens with SO_REUSEPORT, which would let a second subgate (or anything else of the same user
// that sets it) share the port silently, each taking a part of the connections: a probe bound
// without it is refused while any socket holds the address.
bool addressIsFree(const SocketAddress& address, std::string& err) {
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    err = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // past connections' TIME_WAIT
  if (address.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  const bool free = ::bind(fd, address.get(), address.length) == 0;
  if (!free) {
    err = "cannot listen on " + address.text + ": " + std::strerror(errno);
    if (errno == EADDRINUSE) err += " (another process listens there)";
  }
  ::close(fd);
  return free;
}

// The listening sockets of all workers, by address.
class ListenerSet {
 public:
  explicit ListenerSet(int workers) : workers_(workers) {}

  // Opens sockets for the config's new addresses. On failure nothing changes.
  bool prepare(const RuntimeConfig& config, std::string& err) {
    std::map<std::string, std::vector<int>> opened;
    auto fail = [&opened] {
      for (auto& [addr, list] : opened)
        for (int f : list) ::close(f);
      return false;
    };
    for (const ListenConf& listen : config.listens) {
      if (current_.count(listen.address.text) || opened.count(listen.address.text)) continue;
      if (!addressIsFree(listen.address, err)) return fail();
      std::vector<int>& fds = opened[listen.address.text];
      for (int w = 0; w < workers_; ++w) {
        int fd = openListener(listen.address, err);
        if (fd < 0) return fail();
        fds.push_back(fd);
      }
    }
    // Addresses gone from the config: their sockets are closed by the workers that own them.
    std::map<std::string, std::vector<int>> next;
    for (const ListenConf& listen : config.listens) {
      auto it = opened.find(listen.address.text);
      next[listen.address.text] = it != opened.end() ? it->second : current_[listen.address.text];
    }
    current_ = std::move(next);
    return true;
  }

  std::vector<ListenFd> forWorker(int worker) const {
    std::vector<ListenFd> out;
    for (const auto& [address, fds] : current_) out.push_back({address, fds[worker]});
    return out;
  }

 private:
  int workers_;
  std::map<std::string, std::vector<int>> current_;
};

void applyErrorLog(const RuntimeConfig& config) {
  std::string err;
  if (!setErrorLog(config.error_log, config.log_level, err)) LOG_ERROR("%s", err.c_str());
}

bool activateModules(const RuntimeConfig& config, std::string& err) {
  for (const Module* module : allModules())
    if (!module->activate(config, err)) return false;
  return true;
}

}  // namespace

int checkConfig(const ServerOptions& options) {
  std::string err;
  auto config = load(options, err);
  const std::string name = options.config_path.empty() ? "<embedded>" : options.config_path;
  if (!config) {
    std::fprintf(stderr, "subgate: %s\nsubgate: configuration %s test failed\n", err.c_str(),
                 name.c_str());
    return 1;
  }
  std::printf("subgate: configuration %s is ok\n", name.c_str());
  return 0;
}

int runServer(const ServerOptions& options) {
  std::string err;
  auto config = load(options, err);
  if (!config) {
    std::fprintf(stderr, "subgate: %s\n", err.c_str());
    return 1;
  }
  applyErrorLog(*config);

  // Signals are taken by this thread with sigwait; workers never see them.
  sigset_t signals;
  sigemptyset(&signals);
  for (int sig : {SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1}) sigaddset(&signals, sig);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const int worker_count = config->workers;
  ListenerSet listeners(worker_count);
  if (!listeners.prepare(*config, err)) {
    LOG_ERROR("%s", err.c_str());
    return 1;
  }
  if (!activateModules(*config, err)) {
    LOG_ERROR("%s", err.c_str());
    return 1;
  }
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < worker_count; ++i) {
    workers.push_back(std::make_unique<Worker>(i));
    if (!workers.back()->start(config, listeners.forWorker(i), err)) {
      LOG_ERROR("worker %d: %s", i, err.c_str());
      return 1;
    }
  }
  std::string addresses;
  for (const ListenConf& listen : config->listens) addresses += " " + listen.address.text;
  LOG_NOTICE("subgate started: %d workers, listening on%s", worker_count, addresses.c_str());

  int exit_code = 0;
  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGUSR1) {
      // Log rotation: the files were renamed; new lines go to fresh files at the old paths.
      const int failed = reopenLogFiles();
      LOG_NOTICE("log files reopened%s", failed ? " (some failed, see above)" : "");
      continue;
    }
    if (sig == SIGHUP) {
      LOG_NOTICE("reloading configuration");
      auto next = load(options, err, config.get());
      if (!next) {
        LOG_ERROR("reload refused, keeping the running configuration: %s", err.c_str());
        continue;
      }
      if (next->workers != worker_count)
        LOG_WARN("the number of workers changes only on restart (running %d)", worker_count);
      if (!listeners.prepare(*next, err)) {
        LOG_ERROR("reload refused, keeping the running configuration: %s", err.c_str());
        continue;
      }
      if (!activateModules(*next, err)) {
        LOG_ERROR("reload refused, keeping the running configuration: %s", err.c_str());
        continue;
      }
      applyErrorLog(*next);
      for (int i = 0; i < worker_count; ++i) workers[i]->postConfig(next, listeners.forWorker(i));
      config = next;
      LOG_NOTICE("configuration reloaded");
      continue;
    }
    const bool graceful = sig != SIGQUIT;
    LOG_NOTICE("%s", graceful ? "shutting down gracefully" : "shutting down now");
    for (auto& worker : workers) worker->postStop(graceful);
    break;
  }
  for (auto& worker : workers) worker->join();
  workers.clear();
  for (const Module* module : allModules()) module->deactivate(*config);
  LOG_NOTICE("subgate stopped");
  return exit_code;
}

}  // namespace subgate
