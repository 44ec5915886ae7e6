// Http2Connection's socket I/O: reading the client's bytes (the first read of a pass joins the
// worker's end-of-turn batch, IoBatch::Reader), decrypting them on TLS (tls::Channel) and feeding
// them to nghttp2, then producing the frames nghttp2 has ready into out_, encrypting them on TLS,
// and writing them (now, or in the batch, IoBatch::Writer), and afterIo(), what follows each
// pass. The rest of the class is in http2_connection.cc and http2_frames.cc.
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/http2/http2_connection.h"
#include "core/http2/http2_stream.h"
#include "core/log/log.h"
#include "core/net/socket_io.h"
#include "core/tls/tls_channel.h"

namespace subgate {
namespace {

constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kOutHighWater = 128 * 1024;  // frames produced ahead of the socket

}  // namespace

// ---- input

void Http2Connection::handleReadable() {
  // The read joins the loop turn's batch (frames are fed when it completes), unless TLS still
  // holds input from before: that is decrypted first.
  if (IoBatch* batch = IoBatch::forThisTurn();
      batch && readable_ && !closed_ && !(tls_ && tls_->hasBufferedInput())) {
    batch->queue(static_cast<IoBatch::Reader*>(this));
    return;
  }
  readNow();
}

void Http2Connection::readNow() {
  // Bounded per event for fairness; with edge triggering, come back through the deferred pass.
  for (int i = 0; i < 32 && !closed_; ++i) {
    if (!nghttp2_session_want_read(session_)) {
      readable_ = false;  // GOAWAY sent or received: nothing more is read
      return;
    }
    if (tls_ && tls_->hasBufferedInput() && !consumeInput()) return;
    if (!readable_ || closed_) return;
    // A whole chunk at once (frames come in bursts); given back once fed (consumeInput).
    wireIn().reserveForRead(kReadChunk, kReadChunk);
    size_t asked = 0;
    ssize_t n = receiveInto(fd_, wireIn(), kReadChunk, asked);
    if (n < 0 && IoBatch::wouldBlock(n)) {
      readable_ = false;
      return;
    }
    if (n <= 0) {
      close();  // the client's end, or an error
      return;
    }
    // A short read drains the socket until the next edge: no recv just to see EAGAIN.
    if (static_cast<size_t>(n) < asked && !rdhup_) readable_ = false;
    if (!consumeInput()) return;
  }
  if (readable_ && !closed_) scheduleDeferred();
}

bool Http2Connection::consumeInput() {
  if (tls_) return decryptAndFeed();
  const bool fed = feed(read_buf_.readPtr(), read_buf_.readable());
  read_buf_.clear();
  read_buf_.shrinkIfEmpty(0);  // pool blocks, given back after each read: idle holds none
  return fed;
}

bool Http2Connection::decryptAndFeed() {
  char plain[kReadChunk];
  // Bounded: 64 records (1 MiB) per pass; the rest through the deferred pass.
  for (int guard = 0; guard < 64 && !closed_; ++guard) {
    size_t got = 0;
    switch (tls_->read(plain, sizeof plain, got)) {
      case tls::Channel::Status::kDone:
        if (!feed(plain, got)) return false;
        continue;
      case tls::Channel::Status::kNeedInput: tls_->wireIn().shrinkIfEmpty(0); return true;
      case tls::Channel::Status::kClosed: close(); return false;
      case tls::Channel::Status::kFailed:
        LOG_DEBUG("TLS read from client %s failed: %s", remote_ip_.c_str(),
                  tls::lastError().c_str());
        close();
        return false;
    }
  }
  scheduleDeferred();  // decrypts the rest (hasBufferedInput())
  return !closed_;
}

int Http2Connection::prepareBatchedRecv(iovec* iov, int& fd) {
  if (closed_ || !readable_) return 0;
  if (!nghttp2_session_want_read(session_)) {
    readable_ = false;  // GOAWAY sent or received: nothing more is read
    return 0;
  }
  IoBuffer& in = wireIn();
  in.reserveForRead(kReadChunk, kReadChunk);
  batched_read_want_ = std::min(in.writable(), kReadChunk);
  iov[0] = {in.writePtr(), batched_read_want_};
  fd = fd_;
  return 1;
}

void Http2Connection::batchedRecvSettle(ssize_t result) {
  if (result <= 0) return;
  size_t got = static_cast<size_t>(result);
  // A short read drains the socket until the next edge: no recv just to see EAGAIN.
  if (got < batched_read_want_ && !rdhup_) readable_ = false;
  wireIn().commit(got);
}

void Http2Connection::batchedRecvDone(ssize_t result) {
  ++callback_depth_;
  if (result > 0) {
    if (consumeInput() && readable_ && !closed_) readNow();  // a full read: the rest at once
    afterIo();
  } else if (IoBatch::wouldBlock(result)) {
    readable_ = false;
  } else if (result == -EINTR) {
    readNow();
  } else {
    close();  // the client's end, or an error
  }
  --callback_depth_;
  destroyIfDone();
}

bool Http2Connection::feed(const char* data, size_t size) {
  ssize_t rv = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data), size);
  if (rv < 0 || failed_) {
    LOG_DEBUG("HTTP/2 client %s: %s", remote_ip_.c_str(),
              rv < 0 ? nghttp2_strerror(static_cast<int>(rv)) : "closed");
    if (rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC || rv == NGHTTP2_ERR_FLOODED || failed_) {
      close();
      return false;
    }
    nghttp2_session_terminate_session(session_, NGHTTP2_PROTOCOL_ERROR);
    readable_ = false;
    return false;
  }
  return true;
}

// ---- output

void Http2Connection::afterIo() {
  if (closed_) return;
  sendOutput();
  if (closed_) return;
  // Drained streams: the producers may go on (they may queue more; that schedules another pass).
  for (size_t i = 0; i < streams_.size(); ++i) {
    Stream* stream = streams_[i];
    if (!stream->notify_drained) continue;
    stream->notify_drained = false;
    if (!stream->closed && stream->req.task() && !stream->req.finished())
      stream->req.task()->onClientDrained();
  }
  reapStreams();
  if (closed_) return;
  // Draining ends here too: once the final GOAWAY is out and no stream is left, nghttp2 wants
  // neither to read nor to write (the final GOAWAY named the last stream: no other follows).
  const bool done = !nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_);
  if (unsent() == 0 && (done || (goaway_sent_ && !nghttp2_session_want_write(session_)))) close();
}

void Http2Connection::sendOutput() {
  for (int guard = 0; guard < 4096 && !closed_; ++guard) {
    if (unsent() >= kOutHighWater) {
      writeOut();
      if (closed_ || unsent() >= kOutHighWater) return;  // the socket is full: next edge
    }
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      LOG_DEBUG("HTTP/2 client %s: %s", remote_ip_.c_str(), nghttp2_strerror(static_cast<int>(n)));
      close();
      return;
    }
    if (n == 0) break;
    out_.append(std::string_view(reinterpret_cast<const char*>(data), static_cast<size_t>(n)));
  }
  flushOut();
  if (!closed_ && unsent() == 0) {
    out_.shrinkIfEmpty(64 * 1024);
    if (tls_) tls_->wireOut().shrinkIfEmpty(64 * 1024);
  }
}

bool Http2Connection::encryptOut() {
  if (!tls_ || tls_->writeFrom(out_)) return true;
  LOG_DEBUG("TLS write to client %s failed: %s", remote_ip_.c_str(), tls::lastError().c_str());
  close();
  return false;
}

void Http2Connection::flushOut() {
  if (!encryptOut()) return;
  IoBatch* batch = IoBatch::forThisTurn();
  if (!batch || !writable_ || unsent() >= kOutHighWater) {
    writeOut();
    return;
  }
  if (wireOut().readable() > 0) batch->queue(static_cast<IoBatch::Writer*>(this));
}

// The frames were encrypted when they were queued (flushOut): wireOut() is complete.
int Http2Connection::prepareBatchedSend(iovec* iov, int& fd) {
  IoBuffer& out = wireOut();
  if (closed_ || !writable_ || out.readable() == 0) return 0;
  last_write_ = steadyNow();  // send_timeout starts here
  iov[0] = {const_cast<char*>(out.readPtr()), out.readable()};
  fd = fd_;
  return 1;
}

void Http2Connection::batchedSendSettle(ssize_t result) {
  if (!IoBatch::dropSent(wireOut(), result)) writable_ = false;
}

void Http2Connection::batchedSendDone(ssize_t result) {
  ++callback_depth_;
  if (result < 0 && !IoBatch::wouldBlock(result)) {
    LOG_DEBUG("write to client %s failed: %s", remote_ip_.c_str(),
              std::strerror(static_cast<int>(-result)));
    close();
  } else {
    // What waited for the bytes to leave: more frames, drained streams, a drained connection's end.
    afterIo();
  }
  --callback_depth_;
  destroyIfDone();
}

void Http2Connection::writeOut() {
  if (!encryptOut()) return;
  IoBuffer& out = wireOut();
  if (out.readable() > 0 && writable_) last_write_ = steadyNow();  // send_timeout starts here
  while (!closed_ && writable_ && out.readable() > 0) {
    const size_t before = out.readable();
    ssize_t n = sendFrom(fd_, out);
    if (n < 0 && IoBatch::wouldBlock(n)) {
      writable_ = false;
      return;
    }
    if (n < 0) {
      LOG_DEBUG("write to client %s failed: %s", remote_ip_.c_str(),
                std::strerror(static_cast<int>(-n)));
      close();
      return;
    }
    if (static_cast<size_t>(n) < before) writable_ = false;
    last_write_ = steadyNow();
  }
}

}  // namespace subgate
