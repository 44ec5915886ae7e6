// Http1Connection's socket I/O: plain and TLS reads and writes (TLS through the connection's
// tls::Channel, decrypting after the socket read and encrypting before the write), the reads and
// writes it hands to the worker's end-of-turn batch (IoBatch::Reader/Writer), and what follows a
// write. The rest of the class is in http1_connection.cc.
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/http1/http1_connection.h"
#include "core/http1/http1_connection_internal.h"
#include "core/log/log.h"
#include "core/net/socket_io.h"

namespace subgate {

// ---- reading

bool Http1Connection::readInto(IoBuffer& buffer, size_t max_bytes) {
  buffer.reserveForRead(std::min(max_bytes, kReadChunk));
  size_t want = std::min(buffer.writable(), max_bytes);
  if (tls_) return readTls(buffer, want);
  size_t asked = 0;
  ssize_t n = receiveInto(fd_, buffer, want, asked);
  if (n > 0) {
    // A short read means the socket is drained until the next edge.
    if (static_cast<size_t>(n) < asked && !rdhup_) readable_ = false;
    return true;
  }
  readable_ = false;
  if (IoBatch::wouldBlock(n)) return true;
  peer_closed_ = true;  // the end (0) or an error
  return false;
}

// readable_ stays true while a record may wait in the channel; it turns false only when the
// channel needs input and the socket is drained (wire_drained_).
bool Http1Connection::readTls(IoBuffer& buffer, size_t want) {
  for (int i = 0; i < 8; ++i) {
    size_t got = 0;
    switch (tls_->read(buffer.writePtr(), want, got)) {
      case tls::Channel::Status::kDone: buffer.commit(got); return true;
      case tls::Channel::Status::kNeedInput: break;
      case tls::Channel::Status::kFailed:
        LOG_DEBUG("TLS read from client %s failed: %s", remote_ip_.c_str(),
                  tls::lastError().c_str());
        [[fallthrough]];
      case tls::Channel::Status::kClosed:
        peer_closed_ = true;
        readable_ = false;
        return false;
    }
    if (wire_drained_) {
      tls_->wireIn().shrinkIfEmpty(0);
      readable_ = false;
      return true;
    }
    size_t asked = 0;
    ssize_t n = receiveInto(fd_, tls_->wireIn(), kReadChunk, asked);
    if (IoBatch::wouldBlock(n)) {
      wire_drained_ = true;
      continue;  // (the channel says kNeedInput again, then the loop ends above)
    }
    if (n <= 0) {
      peer_closed_ = true;
      readable_ = false;
      return false;
    }
    if (static_cast<size_t>(n) < asked && !rdhup_) wire_drained_ = true;
  }
  return true;
}

// On TLS the head's ciphertext: decrypted into in_ when the read is done.
int Http1Connection::prepareBatchedRecv(iovec* iov, int& fd) {
  if (closed_ || state_ != State::kHead || !readable_) return 0;
  IoBuffer& target = tls_ ? tls_->wireIn() : in_;
  target.reserveForRead(kReadChunk);
  batched_read_want_ = std::min(target.writable(), kReadChunk);
  iov[0] = {target.writePtr(), batched_read_want_};
  fd = fd_;
  return 1;
}

void Http1Connection::batchedRecvSettle(ssize_t result) {
  if (result <= 0) return;
  // A short read means the socket is drained until the next edge.
  const bool drained = static_cast<size_t>(result) < batched_read_want_ && !rdhup_;
  if (tls_) {
    tls_->wireIn().commit(static_cast<size_t>(result));
    wire_drained_ = drained;
    return;
  }
  in_.commit(static_cast<size_t>(result));
  if (drained) readable_ = false;
}

void Http1Connection::batchedRecvDone(ssize_t result) {
  ++callback_depth_;
  if (result > 0 && tls_) {
    readHead();  // decrypts what came (and reads on directly if the socket has more)
  } else if (result > 0) {
    parseHead();
    if (!closed_ && state_ == State::kHead && readable_) handleReadable();  // queues the next read
  } else if (IoBatch::wouldBlock(result)) {
    wire_drained_ = true;
    readable_ = false;
  } else if (result == -EINTR) {
    handleReadable();
  } else {
    peer_closed_ = true;  // the end (0) or an error: idle or incomplete, nothing to answer
    readable_ = false;
    close();
  }
  --callback_depth_;
  destroyIfDone();
}

// ---- writing

void Http1Connection::flushOut() {
  IoBatch* batch = IoBatch::forThisTurn();
  if (!batch || !writable_ || tunnel_) {
    writeOut();
    return;
  }
  batch->queue(static_cast<IoBatch::Writer*>(this));
}

int Http1Connection::prepareBatchedSend(iovec* iov, int& fd) {
  if (closed_ || broken_ || state_ == State::kLingering || !writable_) return 0;
  // Bytes may have joined out_ since the send was queued: on TLS they are encrypted now.
  if (tls_ && out_.readable() > 0 && !encryptOut()) return 0;
  IoBuffer& out = wireOut();
  if (out.readable() == 0) return 0;
  iov[0] = {const_cast<char*>(out.readPtr()), out.readable()};
  fd = fd_;
  return 1;
}

void Http1Connection::batchedSendSettle(ssize_t result) {
  batched_was_high_ = unsent() >= kOutLowWater;
  if (!IoBatch::dropSent(wireOut(), result)) writable_ = false;
}

void Http1Connection::batchedSendDone(ssize_t result) {
  ++callback_depth_;
  if (result < 0 && !IoBatch::wouldBlock(result)) {
    LOG_DEBUG("write to client %s failed: %s", remote_ip_.c_str(),
              std::strerror(static_cast<int>(-result)));
    fatal();
  } else {
    afterWrite(batched_was_high_);
  }
  --callback_depth_;
  destroyIfDone();
}

// Writes out_ followed by up to two more pieces in one writev; keeps what the socket refuses.
void Http1Connection::writeOut(std::string_view extra_a, std::string_view extra_b) {
  if (closed_ || broken_ || state_ == State::kLingering) return;
  if (tls_) {
    writeTls(extra_a, extra_b);
    return;
  }
  if (!writable_) {
    out_.append(extra_a);
    out_.append(extra_b);
    return;
  }
  iovec iov[3];
  int count = 0;
  if (out_.readable()) iov[count++] = {const_cast<char*>(out_.readPtr()), out_.readable()};
  if (!extra_a.empty()) iov[count++] = {const_cast<char*>(extra_a.data()), extra_a.size()};
  if (!extra_b.empty()) iov[count++] = {const_cast<char*>(extra_b.data()), extra_b.size()};
  if (count == 0) return;
  size_t total = 0;
  for (int i = 0; i < count; ++i) total += iov[i].iov_len;
  ssize_t n;
  do {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(count);
    n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      LOG_DEBUG("write to client %s failed: %s", remote_ip_.c_str(), std::strerror(errno));
      fatal();
      return;
    }
    n = 0;
  }
  size_t written = static_cast<size_t>(n);
  if (written < total) {
    writable_ = false;
    refreshTimer();  // send_timeout starts now, whoever called us
  }
  // Drop what went out of out_, then keep the unwritten rest of the extra pieces.
  size_t from_out = std::min(written, out_.readable());
  out_.consume(from_out);
  written -= from_out;
  for (std::string_view piece : {extra_a, extra_b}) {
    if (piece.empty()) continue;
    size_t from_piece = std::min(written, piece.size());
    written -= from_piece;
    if (from_piece < piece.size()) out_.append(piece.substr(from_piece));
  }
  // A tunnel idles most of its life (a WebSocket): hold no buffer memory while it does.
  if (tunnel_) out_.shrinkIfEmpty(0);
}

void Http1Connection::handleWritable() {
  if (state_ == State::kLingering || closed_) return;
  bool was_high = unsent() >= kOutLowWater;
  if (unsent() > 0) writeOut();
  afterWrite(was_high);
}

void Http1Connection::afterWrite(bool was_high) {
  if (closed_) return;
  if (unsent() == 0 && response_done_) {
    maybeFinishRequest();
    return;
  }
  if (was_high && unsent() < kOutLowWater && req_.task() && !req_.finished()) {
    req_.task()->onClientDrained();
  }
}

// TLS has no gather write: the pieces join out_, which is encrypted into the channel's wireOut().
void Http1Connection::writeTls(std::string_view extra_a, std::string_view extra_b) {
  out_.append(extra_a);
  out_.append(extra_b);
  if (!encryptOut()) return;
  IoBuffer& out = tls_->wireOut();
  while (writable_ && out.readable() > 0) {
    const size_t before = out.readable();
    ssize_t n = sendFrom(fd_, out);
    if (n < 0 && !IoBatch::wouldBlock(n)) {
      LOG_DEBUG("write to client %s failed: %s", remote_ip_.c_str(),
                std::strerror(static_cast<int>(-n)));
      fatal();
      return;
    }
    if (n < 0 || static_cast<size_t>(n) < before) {
      writable_ = false;
      refreshTimer();  // send_timeout starts now, whoever called us
    }
  }
  if (tunnel_) {
    out_.shrinkIfEmpty(0);
    out.shrinkIfEmpty(0);
  }
}

bool Http1Connection::encryptOut() {
  if (tls_->writeFrom(out_)) return true;
  LOG_DEBUG("TLS write to client %s failed: %s", remote_ip_.c_str(), tls::lastError().c_str());
  fatal();
  return false;
}

}  // namespace subgate
