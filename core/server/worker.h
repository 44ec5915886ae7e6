// A worker thread: its own libevent loop, its own SO_REUSEPORT listening sockets (opened by the
// main thread, one set per worker), its client connections and its upstream connection pools.
//
// Threading: the public methods marked "main thread" may be called from the main thread; they
// post to a mailbox the worker drains on its loop (woken through an eventfd, so libevent needs
// no locking). Everything else runs on the worker's own thread only.
#pragma once

#include <event2/event.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include "core/connection/client_connection.h"
#include "core/pipeline/config_model.h"
#include "core/upstream/upstream_group.h"

namespace subgate {
namespace tls {
class Channel;
}

class ConnectionPool;
class IoBatch;
class Worker;

struct ListenFd {
  std::string address;
  int fd;
};

class Worker final : public ConnectionHost {
 public:
  explicit Worker(int id);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Main thread: creates the loop and starts the thread serving `config` on `fds`.
  bool start(std::shared_ptr<const RuntimeConfig> config, std::vector<ListenFd> fds,
             std::string& err);
  // Main thread: serve a new config (new connections and requests use it; HTTP/2 connections
  // are drained with GOAWAY so that their clients reconnect to it).
  void postConfig(std::shared_ptr<const RuntimeConfig> config, std::vector<ListenFd> fds);
  // Main thread: stop accepting; graceful waits for requests in flight (up to the config's
  // shutdown_timeout), otherwise the loop ends at once.
  void postStop(bool graceful);
  // Any thread: runs `task` on this worker's thread, in posting order. Tasks posted after the
  // loop ended are dropped unrun (with their captures).
  void post(std::function<void()> task);
  void join();

  // Worker thread.
  int id() const { return id_; }
  event_base* base() const { return base_; }
  const std::shared_ptr<const RuntimeConfig>& config() const { return config_; }
  bool shuttingDown() const { return stopping_; }
  ConnectionPool& pool(const UpstreamServer& server, const UpstreamGroup& group);
  size_t connectionCount() const { return connections_.size(); }

  // ConnectionHost (worker thread).
  event_base* loop() const override { return base_; }
  bool stopping() const override { return stopping_; }
  Worker& requestWorker() override { return *this; }
  void connectionClosed(ClientConnection* connection) override;
  void startHttp2(int fd, std::unique_ptr<tls::Channel> tls, const std::string& remote_ip,
                  const ListenerSlot& slot, std::shared_ptr<const RuntimeConfig> config,
                  const ListenConf* listen, std::string_view initial) override;

 private:
  static void onAccept(evutil_socket_t fd, short what, void* arg);
  static void onMailbox(evutil_socket_t fd, short what, void* arg);
  static void onStopTimer(evutil_socket_t fd, short what, void* arg);
  void applyConfig(std::shared_ptr<const RuntimeConfig> config, std::vector<ListenFd> fds);
  // Hands the config's io_uring and io_coalesce to this thread's batch (which must exist).
  void applyIoSettings();
  void beginStop(bool graceful);
  void acceptFrom(ListenerSlot& slot);
  void maybeExit();

  const int id_;
  event_base* base_ = nullptr;
  int wake_fd_ = -1;
  event* wake_ev_ = nullptr;
  event* stop_timer_ = nullptr;
  std::thread thread_;
  std::shared_ptr<const RuntimeConfig> config_;
  std::unique_ptr<IoBatch> io_batch_;  // created and used on the worker's thread
  std::vector<std::unique_ptr<ListenerSlot>> listeners_;
  std::unordered_set<ClientConnection*> connections_;
  std::vector<std::unique_ptr<ConnectionPool>> pools_;  // by PeerId
  bool stopping_ = false;

  struct Mail {
    enum class Kind { kConfig, kStopGraceful, kStopNow, kTask } kind;
    std::shared_ptr<const RuntimeConfig> config;
    std::vector<ListenFd> fds;
    std::function<void()> task;
  };
  void enqueue(Mail mail);
  std::mutex mailbox_mutex_;
  std::vector<Mail> mailbox_;
};

}  // namespace subgate
