// Http2Connection's socket I/O: reading the client's bytes (plain or TLS; on plaintext the first
// read joins the worker's end-of-turn batch, IoBatch::Reader) and feeding them to nghttp2, then
// producing the frames nghttp2 has ready into out_ and writing them (now, through OpenSSL, or in
// the batch, IoBatch::Writer), and afterIo(), what follows each pass. The rest of the class is in
// http2_connection.cc and http2_frames.cc.
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/log/log.h"
#include "core/server/http2_connection.h"
#include "core/server/http2_stream.h"
#include "core/tls/tls_context.h"

namespace subgate {
namespace {

constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kOutHighWater = 128 * 1024;  // frames produced ahead of the socket

}  // namespace

// ---- input

void Http2Connection::handleReadable() {
  // On plaintext, the read joins the loop turn's batch (frames are fed when it completes).
  if (IoBatch* batch = IoBatch::forThisTurn(); batch && !ssl_ && readable_ && !closed_) {
    batch->queue(static_cast<IoBatch::Reader*>(this));
    return;
  }
  readNow();
}

void Http2Connection::readNow() {
  char buf[kReadChunk];
  // Bounded per event for fairness; with edge triggering, come back through the deferred pass.
  for (int i = 0; i < 32 && readable_ && !closed_; ++i) {
    if (!nghttp2_session_want_read(session_)) {
      readable_ = false;  // GOAWAY sent or received: nothing more is read
      return;
    }
    size_t got = 0;
    if (ssl_) {
      tls::IoStatus status = tls::readSome(ssl_, buf, sizeof buf, got);
      if (status == tls::IoStatus::kWouldBlock) {
        readable_ = false;
        return;
      }
      if (status == tls::IoStatus::kClosed) {
        close();
        return;
      }
    } else {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          readable_ = false;
          return;
        }
        close();
        return;
      }
      if (n == 0) {
        close();
        return;
      }
      got = static_cast<size_t>(n);
      // A short read drains the socket until the next edge: no recv just to see EAGAIN.
      if (got < sizeof buf && !rdhup_) readable_ = false;
    }
    if (!feed(buf, got)) return;
  }
  if (readable_ && !closed_) scheduleDeferred();
}

int Http2Connection::prepareBatchedRecv(iovec* iov, int& fd) {
  if (closed_ || !readable_) return 0;
  if (!nghttp2_session_want_read(session_)) {
    readable_ = false;  // GOAWAY sent or received: nothing more is read
    return 0;
  }
  // Pool blocks, given back after each read: an idle connection holds no read buffer.
  read_buf_.reserveForRead(kReadChunk, kReadChunk);
  batched_read_want_ = std::min(read_buf_.writable(), kReadChunk);
  iov[0] = {read_buf_.writePtr(), batched_read_want_};
  fd = fd_;
  return 1;
}

void Http2Connection::batchedRecvSettle(ssize_t result) {
  if (result <= 0) return;
  size_t got = static_cast<size_t>(result);
  // A short read drains the socket until the next edge: no recv just to see EAGAIN.
  if (got < batched_read_want_ && !rdhup_) readable_ = false;
  read_buf_.commit(got);
}

void Http2Connection::batchedRecvDone(ssize_t result) {
  ++callback_depth_;
  if (result > 0) {
    size_t got = read_buf_.readable();
    bool fed = feed(read_buf_.readPtr(), got);
    read_buf_.consume(got);
    read_buf_.shrinkIfEmpty(0);
    if (fed && readable_ && !closed_) readNow();  // a full read: the rest is read at once
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
  if (out_.readable() == 0 && (done || (goaway_sent_ && !nghttp2_session_want_write(session_))))
    close();
}

void Http2Connection::sendOutput() {
  for (int guard = 0; guard < 4096 && !closed_; ++guard) {
    if (out_.readable() >= kOutHighWater) {
      writeOut();
      if (closed_ || out_.readable() >= kOutHighWater) return;  // the socket is full: next edge
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
  if (!closed_ && out_.readable() == 0) out_.shrinkIfEmpty(64 * 1024);
}

void Http2Connection::flushOut() {
  IoBatch* batch = IoBatch::forThisTurn();
  if (!batch || ssl_ || !writable_ || out_.readable() >= kOutHighWater) {
    writeOut();
    return;
  }
  if (out_.readable() > 0) batch->queue(static_cast<IoBatch::Writer*>(this));
}

int Http2Connection::prepareBatchedSend(iovec* iov, int& fd) {
  if (closed_ || !writable_ || out_.readable() == 0) return 0;
  last_write_ = steadyNow();  // send_timeout starts here
  iov[0] = {const_cast<char*>(out_.readPtr()), out_.readable()};
  fd = fd_;
  return 1;
}

void Http2Connection::batchedSendSettle(ssize_t result) {
  if (!IoBatch::dropSent(out_, result)) writable_ = false;
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
  if (out_.readable() > 0 && writable_) last_write_ = steadyNow();  // send_timeout starts here
  while (!closed_ && writable_ && out_.readable() > 0) {
    if (ssl_) {
      size_t written = 0;
      tls::IoStatus status = tls::writeSome(ssl_, out_.readPtr(), out_.readable(), written);
      if (status == tls::IoStatus::kDone) {
        out_.consume(written);
        last_write_ = steadyNow();
        continue;
      }
      if (status == tls::IoStatus::kWouldBlock) {
        writable_ = false;
        return;
      }
      LOG_DEBUG("TLS write to client %s failed: %s", remote_ip_.c_str(), tls::lastError().c_str());
      close();
      return;
    }
    ssize_t n = ::send(fd_, out_.readPtr(), out_.readable(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        writable_ = false;
        return;
      }
      LOG_DEBUG("write to client %s failed: %s", remote_ip_.c_str(), std::strerror(errno));
      close();
      return;
    }
    if (static_cast<size_t>(n) < out_.readable()) writable_ = false;
    out_.consume(static_cast<size_t>(n));
    last_write_ = steadyNow();
  }
}

}  // namespace subgate
