// ProxySession's life and the exchange around the I/O: picking a peer and acquiring its
// connection (or connecting), the upstream's events, the retry of a stale keep-alive connection,
// the exchange's end, failures and timeouts. Socket I/O is in proxy_session_io.cc, the request
// head and body the upstream gets in proxy_session_request.cc, the response (head, body relay,
// tunnel) in proxy_session_response.cc.
#include "core/upstream/proxy_session.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/log/log.h"
#include "core/net/clock.h"

namespace subgate {

ProxySession::ProxySession(Request& req, std::unique_ptr<PeerSelector> selector,
                           const ProxyOptions& options)
    : req_(req), selector_(std::move(selector)), options_(options) {}

ProxySession::~ProxySession() { dropConnection(); }

void ProxySession::start() { tryPeer(false); }

void ProxySession::tryPeer(bool same_pool) {
  // Bounded: each pass either moves to another peer (the selector runs out) or returns.
  for (;;) {
    if (!same_pool) {
      pool_ = selector_->next(req_);
      if (!pool_) {
        state_ = State::kDone;
        // mapFailure() writes the message: it runs before fail() reads it (argument order is
        // unspecified, and GCC took an empty copy first).
        std::string message;
        const ErrorKind kind =
            attempts_ == 0 ? selector_->noPeerError() : selector_->mapFailure(last_error_, message);
        req_.fail(kind, message);
        return;
      }
    }
    same_pool = false;
    ++attempts_;
    req_.setUpstreamAddress(pool_->address().text);
    conn_ = pool_->acquire();
    if (!conn_) {
      LOG_WARN("connect to upstream %s failed: %s, request_id: %.*s", pool_->address().text.c_str(),
               std::strerror(errno), static_cast<int>(req_.requestId().size()),
               req_.requestId().data());
      last_error_ = ErrorKind::kUpstreamError;
      continue;
    }
    conn_->setHandler(this);
    if (conn_->connected) {
      connected();
      return;
    }
    state_ = State::kConnecting;
    io_deadline_ = steadyNow() + options_.connect_timeout;
    armTimer();
    return;
  }
}

void ProxySession::connected() {
  state_ = State::kWaitingHead;
  conn_->parser.reset();
  conn_->parser.setRequestMethod(req_.method());
  conn_->out.clear();
  buildUpstreamRequestHead(req_, conn_->out);
  io_deadline_ = steadyNow() + options_.send_timeout;
  if (req_.hasBody() && !body_end_) {
    chunked_request_ = req_.head().framing == http1::BodyFraming::kChunked;
    // The body's first bytes (already buffered) join the head in one write.
    req_.readBody(this);
    if (state_ == State::kDone) return;
  } else if (body_end_ && chunked_request_) {
    // Sent again after a stale connection (retryStale): the body ended before any byte of it
    // went out, so what is left of it is its last chunk and trailers.
    conn_->out.append(chunked_end_);
  }
  sendUpstream();
  armTimer();
}

void ProxySession::onUpstreamEvent(short what) {
  if (!conn_) return;
  if (state_ == State::kConnecting) {
    int error = conn_->connectError();
    if (error != 0) {
      LOG_WARN("connect to upstream %s failed: %s", pool_->address().text.c_str(),
               std::strerror(error));
      dropConnection();
      last_error_ = ErrorKind::kUpstreamError;
      tryPeer(false);
      return;
    }
    conn_->connected = true;
    connected();
    return;
  }
  if ((what & EV_WRITE) && conn_ && conn_->out.readable() > 0) writeUpstream();
  if ((what & EV_READ) && conn_) readUpstream();
  if (conn_) armTimer();
}

bool ProxySession::retryStale() {
  // A kept-alive connection the upstream closed while we reused it: the request never reached
  // the application, so it is safe to send it again on a fresh connection, once.
  if (!conn_ || !conn_->reused() || conn_->in.readable() > 0 || body_started_ || retried_stale_)
    return false;
  retried_stale_ = true;
  dropConnection();
  tryPeer(true);
  return true;
}

void ProxySession::finishExchange(std::string_view trailers) {
  state_ = State::kDone;
  bool reusable = response_keep_alive_ && response_framing_ != http1::BodyFraming::kUntilClose &&
                  (!req_.hasBody() || body_end_) && conn_->out.readable() == 0;
  // Trailers may point into the decoder, which lives in the connection: send before release.
  req_.endResponse(trailers);
  pool_->release(std::move(conn_), reusable);
}

void ProxySession::upstreamFailed(ErrorKind kind, const char* what, int error) {
  std::string address = pool_ ? pool_->address().text : std::string("-");
  if (error) {
    LOG_WARN("upstream %s: %s: %s, request_id: %.*s", address.c_str(), what, std::strerror(error),
             static_cast<int>(req_.requestId().size()), req_.requestId().data());
  } else {
    LOG_WARN("upstream %s: %s, request_id: %.*s", address.c_str(), what,
             static_cast<int>(req_.requestId().size()), req_.requestId().data());
  }
  dropConnection();
  state_ = State::kDone;
  std::string message;
  kind = selector_->mapFailure(kind, message);
  req_.fail(kind, message);
}

void ProxySession::dropConnection() {
  if (conn_) {
    conn_->setHandler(nullptr);
    pool_->discard(std::move(conn_));
  }
}

void ProxySession::armTimer() {
  if (state_ == State::kDone || !conn_) return;
  SteadyTime due = io_deadline_;
  if ((state_ == State::kConnecting || state_ == State::kWaitingHead) && req_.responseDeadline())
    due = std::min(due, *req_.responseDeadline());
  conn_->armTimer(due);
}

void ProxySession::onUpstreamTimer() { handleTimeout(); }

void ProxySession::handleTimeout() {
  if (state_ == State::kDone) return;
  auto now = steadyNow();
  if ((state_ == State::kConnecting || state_ == State::kWaitingHead) && req_.responseDeadline() &&
      now >= *req_.responseDeadline()) {
    LOG_INFO("request %.*s: no response head from %s before the deadline, request_id: %.*s",
             static_cast<int>(req_.target().size()), req_.target().data(),
             pool_ ? pool_->address().text.c_str() : "-", static_cast<int>(req_.requestId().size()),
             req_.requestId().data());
    dropConnection();
    state_ = State::kDone;
    req_.fail(ErrorKind::kRequestTimedOut);
    return;
  }
  if (now >= io_deadline_) {
    if (state_ == State::kConnecting) {
      LOG_WARN("connect to upstream %s timed out, request_id: %.*s", pool_->address().text.c_str(),
               static_cast<int>(req_.requestId().size()), req_.requestId().data());
      dropConnection();
      last_error_ = ErrorKind::kUpstreamTimedOut;
      tryPeer(false);
      return;
    }
    upstreamFailed(ErrorKind::kUpstreamTimedOut,
                   tunnel_                              ? "tunnel idle for the read timeout"
                   : conn_ && conn_->out.readable() > 0 ? "send timed out"
                                                        : "read timed out",
                   0);
    return;
  }
  armTimer();
}

}  // namespace subgate
