#include "core/upstream/connection_pool.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "core/log/log.h"
#include "core/net/clock.h"
#include "core/process/proc_stat.h"

namespace subgate {

UpstreamConnection::~UpstreamConnection() {
  if (timer_pending_) evtimer_del(&timer_);
  if (write_on_demand_) event_del(&write_event_);
  if (ev_) event_free(ev_);
  if (fd_ >= 0) ::close(fd_);
}

int UpstreamConnection::connectError() const {
  int error = 0;
  socklen_t len = sizeof error;
  if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &len) != 0) return errno;
  return error;
}

void UpstreamConnection::armTimer(std::chrono::steady_clock::time_point due) {
  if (timer_pending_ && timer_due_ <= due) return;
  auto delay = std::chrono::duration_cast<std::chrono::microseconds>(due - steadyNow());
  if (delay.count() < 0) delay = std::chrono::microseconds(0);
  timeval tv{static_cast<time_t>(delay.count() / 1000000),
             static_cast<suseconds_t>(delay.count() % 1000000)};
  evtimer_add(&timer_, &tv);
  timer_pending_ = true;
  timer_due_ = due;
}

void UpstreamConnection::noRoom() {
  writable = false;
  // Edge-triggered: added while the socket already has room, the event fires at once.
  if (write_on_demand_ && !event_pending(&write_event_, EV_WRITE, nullptr))
    event_add(&write_event_, nullptr);
}

void UpstreamConnection::onTimer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<UpstreamConnection*>(arg);
  self->timer_pending_ = false;
  if (self->handler_) self->handler_->onUpstreamTimer();  // idle in the pool: nothing to time
}

void UpstreamConnection::onEvent(evutil_socket_t, short what, void* arg) {
  auto* self = static_cast<UpstreamConnection*>(arg);
  if (what & EV_READ) self->readable = true;
  // The peer's FIN may arrive with its last bytes: a short read then does not mean drained.
  if (what & EV_CLOSED) self->readable = self->peer_closed = true;
  if (what & EV_WRITE) self->writable = true;
  if (self->handler_) {
    self->handler_->onUpstreamEvent(what);
  } else {
    self->pool_.idleEvent(self, what);  // may delete self
  }
}

ConnectionPool::ConnectionPool(event_base* base, SocketAddress address, pid_t owner)
    : base_(base), address_(std::move(address)), owner_(owner) {
  idle_timer_ = evtimer_new(base_, onIdleTimer, this);
}

ConnectionPool::~ConnectionPool() {
  idle_.clear();
  if (idle_timer_) event_free(idle_timer_);
}

void ConnectionPool::configure(uint32_t keepalive, std::chrono::milliseconds idle_timeout,
                               uint32_t max_requests) {
  keepalive_ = keepalive;
  idle_timeout_ = idle_timeout;
  max_requests_ = max_requests;
}

std::unique_ptr<UpstreamConnection> ConnectionPool::acquire() {
  while (!idle_.empty()) {
    std::unique_ptr<UpstreamConnection> connection = std::move(idle_.back());
    idle_.pop_back();
    // An idle connection with pending input was closed (or spoke out of turn): drop it.
    if (connection->readable || connection->peer_closed || connection->in.readable() > 0) continue;
    ++active_;
    return connection;
  }
  int fd = ::socket(address_.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return nullptr;
  if (address_.family() != AF_UNIX) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  std::unique_ptr<UpstreamConnection> connection(new UpstreamConnection(*this, fd));
  int rc = ::connect(fd, address_.get(), address_.length);
  if (rc != 0 && errno != EINPROGRESS) {
    int saved = errno;
    connection.reset();
    errno = saved;
    return nullptr;
  }
  // A unix connect completes at once: its listener is known now.
  if (owner_ > 0 && address_.family() == AF_UNIX && !servedByOwner(fd)) {
    LOG_WARN("upstream %s: its listener is not the process it belongs to: refused",
             address_.text.c_str());
    connection.reset();
    errno = EACCES;
    return nullptr;
  }
  connection->connected = rc == 0;
  evtimer_assign(&connection->timer_, base_, UpstreamConnection::onTimer, connection.get());
  // A connect under way (TCP) is told complete by EV_WRITE. A unix connection is complete at
  // once and asks for write events only when a write finds no room (noRoom()).
  short events = EV_READ | EV_WRITE | EV_CLOSED | EV_PERSIST | EV_ET;
  if (address_.family() == AF_UNIX && connection->connected) {
    events &= ~EV_WRITE;
    connection->writable = true;
    connection->write_on_demand_ = true;
    event_assign(&connection->write_event_, base_, fd, EV_WRITE | EV_ET,
                 UpstreamConnection::onEvent, connection.get());
  }
  connection->ev_ = event_new(base_, fd, events, UpstreamConnection::onEvent, connection.get());
  if (!connection->ev_ || event_add(connection->ev_, nullptr) != 0) {
    errno = ENOMEM;
    return nullptr;
  }
  ++active_;
  return connection;
}

bool ConnectionPool::servedByOwner(int fd) const {
  ucred peer{};
  socklen_t length = sizeof peer;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0) return false;
  return isInProcessTree(peer.pid, owner_);
}

void ConnectionPool::release(std::unique_ptr<UpstreamConnection> connection, bool reusable) {
  --active_;
  connection->setHandler(nullptr);
  ++connection->requests_;
  if (!reusable || connection->requests_ >= max_requests_ || keepalive_ == 0 ||
      connection->in.readable() > 0 || connection->out.readable() > 0) {
    return;  // closed by the destructor
  }
  connection->in.shrinkIfEmpty(64 * 1024);
  connection->out.shrinkIfEmpty(64 * 1024);
  connection->idle_since_ = steadyNow();
  if (idle_.size() >= keepalive_) idle_.erase(idle_.begin());  // drop the least recently used
  idle_.push_back(std::move(connection));
  armIdleTimer();
}

void ConnectionPool::discard(std::unique_ptr<UpstreamConnection> connection) {
  if (connection) --active_;
}

void ConnectionPool::idleEvent(UpstreamConnection* connection, short what) {
  if (!(what & EV_READ)) return;
  // The peer closed an idle connection (or sent bytes nobody asked for): forget it.
  for (auto it = idle_.begin(); it != idle_.end(); ++it) {
    if (it->get() == connection) {
      idle_.erase(it);
      return;
    }
  }
}

void ConnectionPool::armIdleTimer() {
  if (idle_.empty() || evtimer_pending(idle_timer_, nullptr)) return;
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(idle_timeout_).count();
  timeval tv{static_cast<time_t>(micros / 1000000), static_cast<suseconds_t>(micros % 1000000)};
  evtimer_add(idle_timer_, &tv);
}

void ConnectionPool::onIdleTimer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ConnectionPool*>(arg);
  auto cutoff = steadyNow() - self->idle_timeout_;
  std::erase_if(self->idle_, [&](const std::unique_ptr<UpstreamConnection>& connection) {
    return connection->idle_since_ <= cutoff;
  });
  self->armIdleTimer();
}

}  // namespace subgate
