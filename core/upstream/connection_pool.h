// Upstream connections of one worker to one peer address: opens them (non-blocking connect),
// keeps idle ones alive for reuse (LIFO, bounded, idle timeout, max requests per connection)
// and counts the active ones for least-connections choice and max_conns.
//
// Threading: one pool per worker per peer; used only on that worker's thread.
#pragma once

#include <event2/event.h>
#include <event2/event_struct.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/http1/http1_parser.h"
#include "core/net/io_buffer.h"
#include "core/net/socket_address.h"

namespace subgate {

class ConnectionPool;

class UpstreamConnection {
 public:
  // Who gets this connection's socket events while it is checked out.
  class Handler {
   public:
    virtual ~Handler() = default;
    virtual void onUpstreamEvent(short what) = 0;  // EV_READ / EV_WRITE bits
    virtual void onUpstreamTimer() = 0;            // a time given to armTimer() has come
  };

  ~UpstreamConnection();
  UpstreamConnection(const UpstreamConnection&) = delete;
  UpstreamConnection& operator=(const UpstreamConnection&) = delete;

  int fd() const { return fd_; }
  void setHandler(Handler* handler) { handler_ = handler; }
  // How many requests this connection has carried (before the current one).
  uint32_t requestsServed() const { return requests_; }
  bool reused() const { return requests_ > 0; }
  // Completes a non-blocking connect: 0 when connected, else the socket error.
  int connectError() const;
  // Edge-triggered events do not repeat: a reader that stops early while bytes remain asks to
  // be called again on the next loop turn.
  void wakeRead() { event_active(ev_, EV_READ, 1); }
  // Calls the handler's onUpstreamTimer() at `due` or earlier. Lazy: the timer stays armed across
  // requests on a kept-alive connection and is only moved when a deadline comes sooner, so a
  // request costs no timer operations; the handler re-arms when it fires early.
  void armTimer(std::chrono::steady_clock::time_point due);

  // A write found no room (EAGAIN or a short write): clears `writable`, which the next EV_WRITE
  // sets again. A unix connection registers write interest only from here to that event: a unix
  // socket signals room each time its peer reads (unix_write_space), so a standing EPOLLOUT
  // woke the worker once more per request, just after the isolate read it.
  void noRoom();

  IoBuffer in;   // bytes read from the upstream, not yet consumed
  IoBuffer out;  // bytes to write to the upstream
  http1::HeadParser parser{http1::HeadParser::Mode::kResponse};
  http1::ChunkedDecoder chunked;
  std::vector<http1::HeaderField> filtered;  // scratch for the response headers passed on
  bool readable = false;
  bool writable = false;
  bool connected = false;
  bool peer_closed = false;  // EPOLLRDHUP seen: keep reading until recv() returns 0

 private:
  friend class ConnectionPool;
  UpstreamConnection(ConnectionPool& pool, int fd) : pool_(pool), fd_(fd) {}
  static void onEvent(evutil_socket_t fd, short what, void* arg);
  static void onTimer(evutil_socket_t fd, short what, void* arg);

  ConnectionPool& pool_;
  event timer_{};
  bool timer_pending_ = false;
  // Unix connections: their EV_WRITE, one-shot, added by noRoom() (ev_ has no EV_WRITE then).
  event write_event_{};
  bool write_on_demand_ = false;
  std::chrono::steady_clock::time_point timer_due_{};
  int fd_;
  event* ev_ = nullptr;
  Handler* handler_ = nullptr;
  uint32_t requests_ = 0;
  std::chrono::steady_clock::time_point idle_since_{};
};

class ConnectionPool {
 public:
  // `owner`: see UpstreamServer::owner (0: any listener).
  ConnectionPool(event_base* base, SocketAddress address, pid_t owner = 0);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  void configure(uint32_t keepalive, std::chrono::milliseconds idle_timeout, uint32_t max_requests);

  // An idle kept-alive connection if there is one, else a new one whose connect is under way
  // (wait for EV_WRITE, then check connectError()). nullptr with errno set if no socket could
  // be made or the connect failed at once (e.g. ECONNREFUSED on a unix socket).
  std::unique_ptr<UpstreamConnection> acquire();
  // Gives a connection back after a complete exchange: kept idle when `reusable` and there is
  // room, else closed.
  void release(std::unique_ptr<UpstreamConnection> connection, bool reusable);
  // A connection handed out by acquire() that will not come back (closed by its user).
  void discard(std::unique_ptr<UpstreamConnection> connection);

  uint32_t active() const { return active_; }
  size_t idle() const { return idle_.size(); }
  const SocketAddress& address() const { return address_; }

 private:
  friend class UpstreamConnection;
  static void onIdleTimer(evutil_socket_t fd, short what, void* arg);
  void idleEvent(UpstreamConnection* connection, short what);
  void armIdleTimer();

  // Whether the listener at the far end of unix socket `fd` runs in owner_'s process tree.
  bool servedByOwner(int fd) const;

  event_base* base_;
  SocketAddress address_;
  pid_t owner_ = 0;
  uint32_t keepalive_ = 32;
  std::chrono::milliseconds idle_timeout_{60000};
  uint32_t max_requests_ = 10000;
  uint32_t active_ = 0;
  std::vector<std::unique_ptr<UpstreamConnection>> idle_;  // most recently used last
  event* idle_timer_ = nullptr;
};

}  // namespace subgate
