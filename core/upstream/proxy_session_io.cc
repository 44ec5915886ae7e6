// ProxySession's upstream socket I/O: writes (now, or in the worker's end-of-turn batch as an
// IoBatch::Writer) and what follows them, reads (the response head in the batch as an
// IoBatch::Reader, the rest now) and the handling of each read's result. The rest of the class
// is in proxy_session.cc.
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>

#include "core/net/clock.h"
#include "core/upstream/proxy_session.h"
#include "core/upstream/proxy_session_internal.h"

namespace subgate {
namespace {

constexpr size_t kReadChunk = 16 * 1024;
constexpr int kReadsPerEvent = 16;  // fairness bound per socket event

}  // namespace

void ProxySession::writeUpstream() {
  if (!conn_) return;
  IoBuffer& out = conn_->out;
  for (int i = 0; i < kReadsPerEvent && out.readable() > 0 && conn_->writable; ++i) {
    ssize_t n = ::send(conn_->fd(), out.readPtr(), out.readable(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        conn_->noRoom();
        break;
      }
      upstreamFailed(ErrorKind::kUpstreamError, "write", errno);
      return;
    }
    wroteUpstream(static_cast<size_t>(n));
  }
  afterUpstreamWrite();
}

void ProxySession::sendUpstream() {
  IoBatch* batch = IoBatch::forThisTurn();
  if (!batch || tunnel_ || !conn_ || !conn_->writable ||
      conn_->out.readable() >= kUpstreamHighWater) {
    writeUpstream();
    return;
  }
  batch->queue(static_cast<IoBatch::Writer*>(this));
}

int ProxySession::prepareBatchedSend(iovec* iov, int& fd) {
  if (!conn_ || state_ == State::kDone || !conn_->writable || conn_->out.readable() == 0) return 0;
  iov[0] = {const_cast<char*>(conn_->out.readPtr()), conn_->out.readable()};
  fd = conn_->fd();
  return 1;
}

void ProxySession::batchedSendSettle(ssize_t result) {
  if (!conn_) return;
  if (result > 0) {
    wroteUpstream(static_cast<size_t>(result));
  } else {
    conn_->noRoom();  // -EAGAIN: the next edge says when there is room
  }
}

void ProxySession::batchedSendDone(ssize_t result) {
  if (!conn_) return;
  if (result < 0 && !IoBatch::wouldBlock(result)) {
    upstreamFailed(ErrorKind::kUpstreamError, "write", static_cast<int>(-result));
  } else {
    afterUpstreamWrite();
  }
  if (conn_) armTimer();
}

void ProxySession::wroteUpstream(size_t n) {
  IoBuffer& out = conn_->out;
  io_deadline_ = steadyNow() + (tunnel_ ? options_.read_timeout : options_.send_timeout);
  if (n < out.readable()) conn_->noRoom();
  out.consume(n);
}

void ProxySession::afterUpstreamWrite() {
  IoBuffer& out = conn_->out;
  if (tunnel_) out.shrinkIfEmpty(0);  // an idle tunnel holds no buffer memory
  if (tunnel_ && body_end_ && out.readable() == 0 && !upstream_shut_) {
    upstream_shut_ = true;  // the client closed its end: pass the end on, keep reading
    ::shutdown(conn_->fd(), SHUT_WR);
  }
  if (out.readable() == 0 && state_ == State::kWaitingHead) {
    io_deadline_ = steadyNow() + options_.read_timeout;
  }
  if (client_body_paused_ && out.readable() < kUpstreamHighWater / 4) {
    client_body_paused_ = false;
    req_.resumeBody();
  }
}
void ProxySession::readUpstream() {
  // The response head, the exchange's one read in the common case, joins the loop turn's batch.
  if (state_ == State::kWaitingHead && conn_ && conn_->readable && !client_paused_) {
    if (IoBatch* batch = IoBatch::forThisTurn()) {
      batch->queue(static_cast<IoBatch::Reader*>(this));
      return;
    }
  }
  readUpstreamNow();
}

void ProxySession::readUpstreamNow() {
  for (int i = 0; i < kReadsPerEvent && conn_ && !client_paused_; ++i) {
    if (!conn_->readable) break;
    IoBuffer& in = conn_->in;
    in.reserveForRead(kReadChunk);
    size_t want = in.writable();
    ssize_t n = ::recv(conn_->fd(), in.writePtr(), want, 0);
    const ssize_t result = n < 0 ? -errno : n;
    commitRead(result, want);
    ReadOutcome outcome = tookRead(result);
    if (outcome == ReadOutcome::kGone) return;
    if (outcome == ReadOutcome::kStop) break;
  }
  afterUpstreamRead();
}

int ProxySession::prepareBatchedRecv(iovec* iov, int& fd) {
  if (!conn_ || state_ != State::kWaitingHead || !conn_->readable || client_paused_) return 0;
  IoBuffer& in = conn_->in;
  in.reserveForRead(kReadChunk);
  batched_read_want_ = in.writable();
  iov[0] = {in.writePtr(), batched_read_want_};
  fd = conn_->fd();
  return 1;
}

void ProxySession::batchedRecvSettle(ssize_t result) { commitRead(result, batched_read_want_); }

void ProxySession::commitRead(ssize_t result, size_t want) {
  if (!conn_ || result <= 0) return;
  // A short read drains the socket until the next edge: no recv just to see EAGAIN.
  if (static_cast<size_t>(result) < want && !conn_->peer_closed) conn_->readable = false;
  conn_->in.commit(static_cast<size_t>(result));
}

void ProxySession::batchedRecvDone(ssize_t result) {
  if (!conn_) return;
  ReadOutcome outcome = tookRead(result);
  if (outcome == ReadOutcome::kGone) return;
  if (outcome == ReadOutcome::kMore) {
    readUpstreamNow();  // a full read: the rest is read at once
  } else {
    afterUpstreamRead();
  }
  if (conn_) armTimer();
}

ProxySession::ReadOutcome ProxySession::tookRead(ssize_t result) {
  if (result < 0) {
    if (result == -EINTR) return ReadOutcome::kMore;
    if (IoBatch::wouldBlock(result)) {
      conn_->readable = false;
      return ReadOutcome::kStop;
    }
    if (state_ == State::kWaitingHead && retryStale()) return ReadOutcome::kGone;
    upstreamFailed(ErrorKind::kUpstreamError, "read", static_cast<int>(-result));
    return ReadOutcome::kGone;
  }
  if (result == 0) {
    conn_->readable = false;
    if (state_ == State::kWaitingHead) {
      if (retryStale()) return ReadOutcome::kGone;
      upstreamFailed(ErrorKind::kUpstreamError,
                     "the upstream closed the connection before answering", 0);
      return ReadOutcome::kGone;
    }
    if (state_ == State::kBody && response_framing_ == http1::BodyFraming::kUntilClose) {
      response_keep_alive_ = false;
      finishExchange({});
      return ReadOutcome::kGone;
    }
    upstreamFailed(ErrorKind::kUpstreamError, "the upstream closed the connection mid-response", 0);
    return ReadOutcome::kGone;
  }
  io_deadline_ = steadyNow() + options_.read_timeout;
  if (state_ == State::kWaitingHead && !parseHead()) return ReadOutcome::kStop;
  if (state_ == State::kBody && !forwardBody()) return ReadOutcome::kStop;
  return ReadOutcome::kMore;
}

void ProxySession::afterUpstreamRead() {
  if (state_ == State::kBody || state_ == State::kDone) req_.flush();
  if (tunnel_ && conn_) conn_->in.shrinkIfEmpty(0);
  // The fairness bound left bytes in the socket: come back on the next loop turn.
  if (conn_ && conn_->readable && !client_paused_) conn_->wakeRead();
}

}  // namespace subgate
