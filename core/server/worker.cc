#include "core/server/worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/http1/http1_connection.h"
#include "core/http2/http2_connection.h"
#include "core/log/log.h"
#include "core/net/io_batch.h"
#include "core/pipeline/request_counters.h"
#include "core/upstream/connection_pool.h"

namespace subgate {

namespace {
// Sends one loop turn may batch per submission; larger turns take several.
constexpr unsigned kIoBatchEntries = 256;
}  // namespace

Worker::Worker(int id) : id_(id) {}

Worker::~Worker() {
  for (ClientConnection* connection : connections_) delete connection;
  connections_.clear();
  pools_.clear();
  for (auto& slot : listeners_)
    if (slot->ev) event_free(slot->ev);
  if (wake_ev_) event_free(wake_ev_);
  if (stop_timer_) event_free(stop_timer_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (base_) event_base_free(base_);
}

bool Worker::start(std::shared_ptr<const RuntimeConfig> config, std::vector<ListenFd> fds,
                   std::string& err) {
  event_config* cfg = event_config_new();
  // One loop per thread and no cross-thread event calls: libevent's locks are not needed.
  event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
  base_ = event_base_new_with_config(cfg);
  event_config_free(cfg);
  if (!base_) {
    err = "cannot create event loop";
    return false;
  }
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    err = std::string("eventfd: ") + std::strerror(errno);
    return false;
  }
  wake_ev_ = event_new(base_, wake_fd_, EV_READ | EV_PERSIST, onMailbox, this);
  stop_timer_ = evtimer_new(base_, onStopTimer, this);
  if (!wake_ev_ || !stop_timer_ || event_add(wake_ev_, nullptr) != 0) {
    err = "cannot register worker events";
    return false;
  }
  applyConfig(std::move(config), std::move(fds));
  thread_ = std::thread([this] {
    std::string why;
    io_batch_ = IoBatch::create(base_, kIoBatchEntries, why);
    if (io_batch_) {
      applyIoSettings();
    } else if (config_->io_uring) {
      LOG_INFO("worker %d: socket reads and writes are not batched: %s", id_, why.c_str());
    }
    event_base_dispatch(base_);
    // Whatever is left after a stop is closed here, on the worker's own thread.
    for (ClientConnection* connection : connections_) delete connection;
    connections_.clear();
    pools_.clear();
    if (io_batch_) {
      LOG_DEBUG(
          "worker %d: io_uring carried %llu reads and writes in %llu submissions, %llu pauses", id_,
          static_cast<unsigned long long>(io_batch_->operations()),
          static_cast<unsigned long long>(io_batch_->submissions()),
          static_cast<unsigned long long>(io_batch_->pauses()));
    }
    io_batch_.reset();  // after every writer that might still be queued
  });
  return true;
}

void Worker::postConfig(std::shared_ptr<const RuntimeConfig> config, std::vector<ListenFd> fds) {
  enqueue({Mail::Kind::kConfig, std::move(config), std::move(fds), {}});
}

void Worker::postStop(bool graceful) {
  enqueue({graceful ? Mail::Kind::kStopGraceful : Mail::Kind::kStopNow, nullptr, {}, {}});
}

void Worker::post(std::function<void()> task) {
  enqueue({Mail::Kind::kTask, nullptr, {}, std::move(task)});
}

void Worker::enqueue(Mail mail) {
  {
    std::lock_guard<std::mutex> lock(mailbox_mutex_);
    mailbox_.push_back(std::move(mail));
  }
  uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
  (void)ignored;
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::onMailbox(evutil_socket_t fd, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  uint64_t count;
  ssize_t ignored = ::read(fd, &count, sizeof count);
  (void)ignored;
  std::vector<Mail> mail;
  {
    std::lock_guard<std::mutex> lock(self->mailbox_mutex_);
    mail.swap(self->mailbox_);
  }
  for (Mail& m : mail) {
    switch (m.kind) {
      case Mail::Kind::kConfig: self->applyConfig(std::move(m.config), std::move(m.fds)); break;
      case Mail::Kind::kStopGraceful: self->beginStop(true); break;
      case Mail::Kind::kStopNow: self->beginStop(false); break;
      case Mail::Kind::kTask: m.task(); break;
    }
  }
}

void Worker::applyIoSettings() {
  io_batch_->setEnabled(config_->io_uring);
  io_batch_->setCoalesce(config_->io_coalesce);
  if (!config_->io_uring) {
    LOG_DEBUG(
        "worker %d: small socket reads and writes are made directly (io_uring off in the config)",
        id_);
    return;
  }
  const long long coalesce_us = config_->io_coalesce.count();
  const std::string coalesce = coalesce_us > 0 ? std::to_string(coalesce_us) + "us" : "off";
  LOG_DEBUG("worker %d: small socket reads and writes are batched with io_uring, io_coalesce %s",
            id_, coalesce.c_str());
}

void Worker::applyConfig(std::shared_ptr<const RuntimeConfig> config, std::vector<ListenFd> fds) {
  config_ = std::move(config);
  if (io_batch_) applyIoSettings();  // null before the thread starts
  if (stopping_) return;
  // Listeners whose address is gone stop accepting; their slots stay so that connections
  // accepted on them keep a valid (old) config until they close.
  for (auto& slot : listeners_) {
    bool kept = false;
    for (const ListenFd& fd : fds) kept |= fd.address == slot->address;
    if (!kept && slot->ev) {
      event_free(slot->ev);
      slot->ev = nullptr;
    }
  }
  for (const ListenFd& fd : fds) {
    ListenerSlot* slot = nullptr;
    for (auto& existing : listeners_)
      if (existing->address == fd.address && existing->ev) slot = existing.get();
    if (!slot) {
      listeners_.push_back(std::make_unique<ListenerSlot>());
      slot = listeners_.back().get();
      slot->address = fd.address;
      slot->fd = fd.fd;
      slot->worker = this;
      slot->ev = event_new(base_, fd.fd, EV_READ | EV_PERSIST, onAccept, slot);
      if (!slot->ev || event_add(slot->ev, nullptr) != 0) {
        LOG_ERROR("worker %d: cannot watch listener %s", id_, fd.address.c_str());
      }
    }
    slot->config = config_;
    slot->conf = config_->findListen(fd.address);
  }
  // Copy: a connection told may close at once and leave connections_.
  std::vector<ClientConnection*> open(connections_.begin(), connections_.end());
  for (ClientConnection* connection : open) connection->configReloaded();
}

void Worker::onAccept(evutil_socket_t, short, void* arg) {
  auto* slot = static_cast<ListenerSlot*>(arg);
  slot->worker->acceptFrom(*slot);
}

void Worker::acceptFrom(ListenerSlot& slot) {
  // Bounded so that one busy listener cannot starve the connections already accepted.
  for (int i = 0; i < 32 && !stopping_; ++i) {
    sockaddr_storage peer;
    socklen_t peer_len = sizeof peer;
    int fd = ::accept4(slot.fd, reinterpret_cast<sockaddr*>(&peer), &peer_len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      if (errno == ECONNABORTED) continue;
      LOG_ERROR("accept on %s: %s", slot.address.c_str(), std::strerror(errno));
      return;
    }
    if (peer.ss_family != AF_UNIX) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    auto* connection = new Http1Connection(*this, fd, reinterpret_cast<sockaddr*>(&peer), slot);
    RequestCounters::note(RequestCounters::Event::kConnectionAccepted);
    connections_.insert(connection);
    connection->start();
  }
}

void Worker::startHttp2(int fd, std::unique_ptr<tls::Channel> tls, const std::string& remote_ip,
                        const ListenerSlot& slot, std::shared_ptr<const RuntimeConfig> config,
                        const ListenConf* listen, std::string_view initial) {
  auto* connection =
      new Http2Connection(*this, fd, std::move(tls), remote_ip, slot, std::move(config), listen);
  RequestCounters::note(RequestCounters::Event::kHttp2Started);
  connections_.insert(connection);
  connection->start(initial);
}

void Worker::connectionClosed(ClientConnection* connection) {
  // Once per connection object: an HTTP/1.x one handed over to HTTP/2 closes here too.
  RequestCounters::note(dynamic_cast<Http2Connection*>(connection)
                            ? RequestCounters::Event::kHttp2Closed
                            : RequestCounters::Event::kHttp1Closed);
  connections_.erase(connection);
  if (stopping_) maybeExit();
}

ConnectionPool& Worker::pool(const UpstreamServer& server, const UpstreamGroup& group) {
  if (server.peer >= pools_.size()) pools_.resize(server.peer + 1);
  auto& pool = pools_[server.peer];
  if (!pool) pool = std::make_unique<ConnectionPool>(base_, server.address, server.owner);
  pool->configure(group.keepalive, group.keepalive_timeout, group.keepalive_requests);
  return *pool;
}

void Worker::beginStop(bool graceful) {
  if (!graceful) {
    event_base_loopbreak(base_);
    return;
  }
  if (stopping_) return;
  stopping_ = true;
  for (auto& slot : listeners_) {
    if (slot->ev) {
      event_free(slot->ev);
      slot->ev = nullptr;
    }
  }
  auto timeout = config_ ? config_->shutdown_timeout : milliseconds(30000);
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  evtimer_add(stop_timer_, &tv);
  // Copy: drain() may close and erase a connection right away.
  std::vector<ClientConnection*> open(connections_.begin(), connections_.end());
  for (ClientConnection* connection : open) connection->drain();
  maybeExit();
}

void Worker::onStopTimer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  LOG_WARN("worker %d: shutdown_timeout passed with %zu connections open; closing them", self->id_,
           self->connections_.size());
  event_base_loopbreak(self->base_);
}

void Worker::maybeExit() {
  if (connections_.empty()) event_base_loopbreak(base_);
}

}  // namespace subgate
