// The connection's life: set-up, TLS handshake, event dispatch, request heads, the request's end,
// closing and timeouts. Socket I/O is in http1_io.cc, the request body in http1_request_body.cc,
// the response in http1_response.cc.
#include "core/http1/http1_connection.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/http1/http1_connection_internal.h"
#include "core/log/log.h"
#include "core/net/socket_address.h"
#include "core/net/socket_io.h"
#include "core/pipeline/request_counters.h"

namespace subgate {
namespace {

constexpr size_t kSpillLimit = 64 * 1024;  // pipelined bytes buffered during a request
constexpr std::chrono::seconds kLingerTimeout{2};

}  // namespace

Http1Connection::Http1Connection(ConnectionHost& host, int fd, const sockaddr* peer,
                                 const ListenerSlot& listener)
    : host_(host),
      listener_(listener),
      fd_(fd),
      remote_ip_(formatSocketAddress(peer, false)),
      parser_(http1::HeadParser::Mode::kRequest) {}

Http1Connection::~Http1Connection() {
  if (ev_) event_free(ev_);
  event_del(&deferred_);
  if (fd_ >= 0) ::close(fd_);
}

void Http1Connection::start() {
  event_base* base = host_.loop();
  ev_ = event_new(base, fd_, EV_READ | EV_WRITE | EV_CLOSED | EV_PERSIST | EV_ET, onSocketEvent,
                  this);
  timer_.assign(base, onTimer, this);
  event_assign(&deferred_, base, -1, 0, onDeferred, this);
  config_ = listener_.config;
  listen_conf_ = listener_.conf;
  http2_ = listen_conf_->http2;
  parser_.setLimits(listen_conf_->servers.front()->core.head_limits);
  if (listen_conf_->ssl) {
    tls_ = tls::Channel::accept(*listen_conf_->servers.front()->tls, listen_conf_);
    state_ = State::kHandshake;
  }
  if (!ev_ || event_add(ev_, nullptr) != 0 || (listen_conf_->ssl && !tls_)) {
    LOG_ERROR("cannot set up a client connection");
    closed_ = true;
    destroyIfDone();
    return;
  }
  // Data usually arrives with or right after the accept: try to read at once.
  ++callback_depth_;
  handleReadable();
  --callback_depth_;
  destroyIfDone();
}

void Http1Connection::advanceHandshake() {
  // Bounded: a ClientHello takes one or two reads.
  for (int i = 0; i < 8 && !closed_; ++i) {
    const tls::Channel::Status status = tls_->handshake();
    writeOut();  // the server's flight, or an alert
    if (status == tls::Channel::Status::kDone) {
      RequestCounters::note(RequestCounters::Event::kTlsHandshake);
      if (http2_ && tls_->alpn() == "h2") {
        handOffToHttp2();
        return;
      }
      state_ = State::kHead;
      head_deadline_set_ = false;
      wire_drained_ = !readable_;
      readable_ = true;  // the client's first request may already wait in the channel
      handleReadable();
      return;
    }
    if (status != tls::Channel::Status::kNeedInput) {
      // Plaintext on a TLS port, an unknown CA, no common protocol: this connection only.
      LOG_DEBUG("TLS handshake with %s failed: %s", remote_ip_.c_str(), tls::lastError().c_str());
      RequestCounters::note(RequestCounters::Event::kTlsHandshakeFailed);
      close();
      return;
    }
    if (!readable_ || closed_) return;  // the next edge
    size_t asked = 0;
    ssize_t n = receiveInto(fd_, tls_->wireIn(), kReadChunk, asked);
    if (IoBatch::wouldBlock(n)) {
      readable_ = false;
      return;
    }
    if (n <= 0) {
      LOG_DEBUG("client %s closed the connection during the TLS handshake", remote_ip_.c_str());
      RequestCounters::note(RequestCounters::Event::kTlsHandshakeFailed);
      close();
      return;
    }
    if (static_cast<size_t>(n) < asked && !rdhup_) readable_ = false;
  }
}

void Http1Connection::onSocketEvent(evutil_socket_t, short what, void* arg) {
  auto* self = static_cast<Http1Connection*>(arg);
  ++self->callback_depth_;
  if (self->state_ == State::kHandshake) {
    if (what & EV_WRITE) self->writable_ = true;
    if (what & (EV_READ | EV_CLOSED)) self->readable_ = true;
    if (what & EV_CLOSED) self->rdhup_ = true;
    self->advanceHandshake();
    --self->callback_depth_;
    self->destroyIfDone();
    return;
  }
  if (what & EV_WRITE) {
    self->writable_ = true;
    self->handleWritable();
  }
  if (what & EV_CLOSED) {
    // The client's FIN may have come with its last bytes: read until recv() says so.
    self->rdhup_ = true;
    what |= EV_READ;
  }
  if ((what & EV_READ) && !self->closed_) {
    self->readable_ = true;
    self->wire_drained_ = false;
    self->handleReadable();
  }
  --self->callback_depth_;
  self->destroyIfDone();
}

void Http1Connection::onTimer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Http1Connection*>(arg);
  self->timer_.fired();
  ++self->callback_depth_;
  if (steadyNow() >= self->deadline_) {
    self->handleTimeout();
  } else {
    self->refreshTimer();
  }
  --self->callback_depth_;
  self->destroyIfDone();
}

void Http1Connection::onDeferred(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Http1Connection*>(arg);
  ++self->callback_depth_;
  if (self->abort_scheduled_) {
    self->abort_scheduled_ = false;
    self->close();
  } else if (self->finish_scheduled_) {
    self->finish_scheduled_ = false;
    self->maybeFinishRequest();
  }
  if (self->pump_scheduled_ && !self->closed_) {
    self->pump_scheduled_ = false;
    if (self->state_ == State::kRequest && self->body_mode_ != BodyMode::kNone &&
        !self->body_done_ && !self->body_paused_)
      self->pumpBody();
  }
  --self->callback_depth_;
  self->destroyIfDone();
}

void Http1Connection::destroyIfDone() {
  if (closed_ && callback_depth_ == 0) {
    host_.connectionClosed(this);
    delete this;
    return;
  }
  if (!closed_) refreshTimer();
}

// ---- reading

void Http1Connection::handleReadable() {
  switch (state_) {
    case State::kHandshake: advanceHandshake(); return;
    case State::kHead: {
      // A request head, one read in the common case, joins the loop turn's batch (on TLS when
      // nothing waits in the channel: that is decrypted first).
      if (IoBatch* batch = IoBatch::forThisTurn();
          batch && readable_ && !closed_ &&
          !(tls_ && (wire_drained_ || tls_->hasBufferedInput()))) {
        batch->queue(static_cast<IoBatch::Reader*>(this));
        return;
      }
      readHead();
      return;
    }
    case State::kRequest:
      if (body_mode_ != BodyMode::kNone && !body_done_) {
        if (!body_paused_) pumpBody();
        return;
      }
      // Read ahead (pipelining) and notice a client that goes away.
      if (spill_.readable() < kSpillLimit && readable_) {
        if (!readInto(spill_, kSpillLimit - spill_.readable())) {
          if (!response_done_ || unsent() > 0) {
            LOG_DEBUG("client %s closed the connection during a request", remote_ip_.c_str());
            req_.cancel();
          }
          close();
        }
      }
      return;
    case State::kLingering: {
      char sink[4096];
      for (int i = 0; i < 16; ++i) {
        ssize_t n = ::recv(fd_, sink, sizeof sink, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
          close();
          return;
        }
        if (n < 0) return;
      }
      return;
    }
  }
}

void Http1Connection::readHead() {
  // Bounded: each pass reads at most one chunk; stop when drained or the head is complete.
  for (int i = 0; i < 64 && readable_ && state_ == State::kHead && !closed_; ++i) {
    if (!readInto(in_, kReadChunk)) {
      close();  // idle or incomplete: nothing sensible to answer
      return;
    }
    parseHead();
  }
}

bool Http1Connection::maybeHttp2Preface() {
  static constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  if (!http2_ || tls_ || requests_ > 0) return false;
  std::string_view data = in_.view();
  size_t n = std::min(data.size(), kPreface.size());
  if (data.substr(0, n) != kPreface.substr(0, n)) return false;
  if (n == kPreface.size()) handOffToHttp2();
  return true;
}

void Http1Connection::handOffToHttp2() {
  int fd = fd_;
  fd_ = -1;
  if (ev_) {
    event_free(ev_);  // before the new connection registers the same descriptor
    ev_ = nullptr;
  }
  closed_ = true;
  std::string initial(in_.view());
  in_.clear();
  // No request ran yet: config_ is still the one listen_conf_ belongs to.
  host_.startHttp2(fd, std::move(tls_), remote_ip_, listener_, config_, listen_conf_, initial);
}

void Http1Connection::parseHead() {
  if (in_.readable() == 0) return;
  if (maybeHttp2Preface()) return;
  http1::ParseStatus status = parser_.parse(in_.view());
  if (status == http1::ParseStatus::kIncomplete) return;
  if (status == http1::ParseStatus::kError) {
    switch (parser_.error()) {
      case http1::ParseError::kUriTooLong:
        rejectHead(ErrorKind::kUriTooLong, parser_.errorMessage());
        break;
      case http1::ParseError::kHeaderTooLarge:
      case http1::ParseError::kTooManyHeaders:
        rejectHead(ErrorKind::kHeaderTooLarge, parser_.errorMessage());
        break;
      case http1::ParseError::kBodyTooLarge:
        rejectHead(ErrorKind::kPayloadTooLarge, parser_.errorMessage());
        break;
      default: rejectHead(ErrorKind::kBadRequest, parser_.errorMessage());
    }
    return;
  }
  startRequest();
}

void Http1Connection::rejectHead(ErrorKind kind, const char* message) {
  state_ = State::kRequest;
  keep_alive_ = false;
  body_done_ = true;
  body_mode_ = BodyMode::kNone;
  response_done_ = false;
  static const http1::MessageHead kEmptyHead;
  config_ = listener_.config;
  const ServerConf* server = listener_.conf->servers.front();
  req_.begin(this, &host_.requestWorker(), config_, server, &kEmptyHead, remote_ip_);
  req_.fail(kind, message);
}

void Http1Connection::startRequest() {
  const http1::MessageHead& head = parser_.head();
  state_ = State::kRequest;
  head_deadline_set_ = false;
  if (++requests_ == 1) RequestCounters::note(RequestCounters::Event::kHttp1Served);
  in_used_ = head.head_bytes;
  response_done_ = false;
  response_chunked_ = false;
  tunnel_ = false;
  response_bodiless_ = head.method == "HEAD";
  continue_sent_ = false;
  body_paused_ = false;
  pump_scheduled_ = false;
  body_discarded_ = 0;
  body_mode_ = BodyMode::kNone;
  keep_alive_ = head.keep_alive && !draining_;
  switch (head.framing) {
    case http1::BodyFraming::kContentLength:
      body_remaining_ = head.content_length;
      body_done_ = head.content_length == 0;
      break;
    case http1::BodyFraming::kChunked:
      body_done_ = false;
      chunked_.reset();
      break;
    default: body_done_ = true;
  }
  config_ = listener_.config;
  const ListenConf* listen = listener_.conf;
  const ServerConf& server = listen->findServer(head.find("host"));
  req_.begin(this, &host_.requestWorker(), config_, &server, &head, remote_ip_);
  req_.setSecure(tls_ != nullptr);
  req_.run();
}

// ---- request end

void Http1Connection::transportAbort() { fatal(); }

void Http1Connection::fatal() {
  keep_alive_ = false;
  broken_ = true;
  abort_scheduled_ = true;
  event_active(&deferred_, EV_TIMEOUT, 1);
}

void Http1Connection::scheduleDeferred() {
  finish_scheduled_ = true;
  event_active(&deferred_, EV_TIMEOUT, 1);
}

void Http1Connection::maybeFinishRequest() {
  if (closed_ || state_ != State::kRequest || !response_done_ || unsent() > 0) return;
  if (!body_done_) {
    if (!keep_alive_) {
      finishRequest();
      return;
    }
    // The handler answered without reading the body: skip it, then go on.
    if (body_mode_ != BodyMode::kDiscard) {
      body_mode_ = BodyMode::kDiscard;
      body_paused_ = false;  // a sink's pause no longer matters: nobody reads these bytes
      pumpBody();
    }
    if (!body_done_) return;  // pumpBody calls back here when the body ends
  }
  finishRequest();
}

void Http1Connection::finishRequest() {
  req_.runLogPhase();
  req_.reset();
  if (!keep_alive_ || draining_) {
    beginLingeringClose();
    return;
  }
  // Keep only the bytes after this message (a pipelined request), at the front of in_.
  in_.consume(std::min(in_used_, in_.readable()));
  if (spill_.readable() > 0) {
    in_.append(spill_.view());
    spill_.clear();
  }
  in_used_ = 0;
  parser_.reset();
  state_ = State::kHead;
  body_mode_ = BodyMode::kNone;
  response_done_ = false;
  if (in_.readable() == 0) {
    in_.shrinkIfEmpty(64 * 1024);
    out_.shrinkIfEmpty(64 * 1024);
    if (tls_) tls_->wireOut().shrinkIfEmpty(64 * 1024);
  }
  config_ = listener_.config;
  if (in_.readable() > 0) parseHead();
  if (state_ == State::kHead && readable_ && !closed_) handleReadable();
}

void Http1Connection::drain() {
  draining_ = true;
  keep_alive_ = false;
  if (state_ == State::kHead && in_.readable() == 0) {
    ++callback_depth_;
    close();
    --callback_depth_;
    destroyIfDone();
  }
}

void Http1Connection::beginLingeringClose() {
  if (closed_) return;
  if (state_ == State::kLingering) return;
  // Closing with unread request bytes in the kernel would send a reset that can destroy the
  // response before the client reads it: shut down our side and drain theirs briefly first.
  state_ = State::kLingering;
  sendCloseNotify();
  ::shutdown(fd_, SHUT_WR);
  deadline_ = steadyNow() + kLingerTimeout;
  handleReadable();
}

void Http1Connection::sendCloseNotify() {
  if (!tls_ || broken_) return;
  tls_->closeNotify();  // best effort: the socket may be full
  if (writable_ && tls_->wireOut().readable() > 0) sendFrom(fd_, tls_->wireOut());
}

void Http1Connection::close() {
  if (closed_) return;
  closed_ = true;
  sendCloseNotify();
  if (state_ == State::kRequest) req_.cancel();
  if (state_ == State::kRequest && !req_.finished()) req_.runLogPhase();
  req_.reset();
}

// ---- timeouts

void Http1Connection::refreshTimer() {
  if (closed_) return;
  const CoreConf& core =
      req_.active() ? req_.location().core : listener_.conf->servers.front()->core;
  SteadyTime now = steadyNow();
  switch (state_) {
    case State::kHandshake:
      if (!head_deadline_set_) {  // the handshake shares the head's client_header_timeout
        head_deadline_set_ = true;
        deadline_ = now + core.client_header_timeout;
      }
      break;
    case State::kHead:
      if (in_.readable() == 0) {
        head_deadline_set_ = false;
        deadline_ = now + (requests_ > 0 ? core.keepalive_timeout : core.client_header_timeout);
      } else if (!head_deadline_set_) {
        // The whole head must arrive within client_header_timeout of its first byte.
        head_deadline_set_ = true;
        deadline_ = now + core.client_header_timeout;
      }
      break;
    case State::kRequest:
      if (unsent() > 0 && !writable_) {
        deadline_ = now + core.send_timeout;
      } else if (!body_done_ && !body_paused_ && body_mode_ != BodyMode::kNone && !tunnel_) {
        // A tunnel may idle: its idle timeout is the proxy's, which sees both directions.
        deadline_ = now + core.client_body_timeout;
      } else {
        deadline_ = SteadyTime::max();
      }
      break;
    case State::kLingering: break;
  }
  if (deadline_ == SteadyTime::max()) return;
  timer_.arm(deadline_, now);
}

void Http1Connection::handleTimeout() {
  deadline_ = SteadyTime::max();
  switch (state_) {
    case State::kHandshake:
      LOG_DEBUG("TLS handshake with %s timed out", remote_ip_.c_str());
      RequestCounters::note(RequestCounters::Event::kTlsHandshakeFailed);
      close();
      return;
    case State::kHead:
      if (in_.readable() == 0) {
        close();
      } else {
        rejectHead(ErrorKind::kClientTimeout, "the request head did not arrive in time");
      }
      return;
    case State::kRequest:
      if (unsent() > 0 && !writable_) {
        LOG_INFO("client %s timed out reading the response", remote_ip_.c_str());
        req_.cancel();
        close();
      } else if (!body_done_) {
        keep_alive_ = false;
        if (req_.responseStarted()) {
          req_.cancel();
          close();
        } else {
          req_.fail(ErrorKind::kClientTimeout, "the request body did not arrive in time");
        }
      }
      return;
    case State::kLingering: close(); return;
  }
}

}  // namespace subgate
