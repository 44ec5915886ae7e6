#include "core/server/http2_connection.h"

#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "core/log/log.h"
#include "core/server/http2_stream.h"
#include "core/server/worker.h"
#include "core/tls/tls_context.h"

namespace subgate {
namespace {

constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kOutHighWater = 128 * 1024;     // frames produced ahead of the socket
constexpr int32_t kStreamWindow = 256 * 1024;    // request body bytes a stream may have in flight
constexpr int32_t kConnectionWindow = 4 * 1024 * 1024;
constexpr uint32_t kMaxConcurrentStreams = 128;
constexpr uint32_t kMaxResetsPerSecond = 200;
constexpr uint64_t kMaxDiscard = 1 << 20;  // unread body bytes skipped after a response, then reset
// drain(): the PING whose ACK ends the grace for streams in flight, and how long to wait for it.
constexpr uint8_t kDrainPing[8] = {'s', 'g', '-', 'd', 'r', 'a', 'i', 'n'};
constexpr auto kDrainPingWait = std::chrono::seconds(1);

http2::HeadError limitError(ErrorKind& kind, http2::HeadError error) {
  switch (error) {
    case http2::HeadError::kUriTooLong: kind = ErrorKind::kUriTooLong; break;
    case http2::HeadError::kHeaderTooLarge:
    case http2::HeadError::kTooManyHeaders: kind = ErrorKind::kHeaderTooLarge; break;
    default: kind = ErrorKind::kBadRequest;
  }
  return error;
}

}  // namespace

// ---- connection

Http2Connection::Http2Connection(Worker& worker, int fd, SSL* ssl, std::string remote_ip,
                                 const ListenerSlot& listener, std::shared_ptr<const RuntimeConfig> config,
                                 const ListenConf* listen)
    : worker_(worker),
      listener_(listener),
      fd_(fd),
      ssl_(ssl),
      remote_ip_(std::move(remote_ip)),
      config_(std::move(config)),
      listen_conf_(listen),
      limits_(listen->servers.front()->core.head_limits) {}

Http2Connection::~Http2Connection() {
  for (Stream* stream : streams_) delete stream;
  for (Stream* stream : spare_streams_) delete stream;
  if (session_) nghttp2_session_del(session_);
  if (ssl_) SSL_free(ssl_);
  if (ev_) event_free(ev_);
  event_del(&deferred_);
  if (fd_ >= 0) ::close(fd_);
}

bool Http2Connection::setUpSession() {
  nghttp2_session_callbacks* callbacks = nullptr;
  if (nghttp2_session_callbacks_new(&callbacks) != 0) return false;
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, onBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, onDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, onStreamClose);
  nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, onFrameSend);
  nghttp2_option* option = nullptr;
  if (nghttp2_option_new(&option) != 0) {
    nghttp2_session_callbacks_del(callbacks);
    return false;
  }
  nghttp2_option_set_no_auto_window_update(option, 1);
  nghttp2_option_set_max_outbound_ack(option, 1000);  // PING / SETTINGS floods
  nghttp2_option_set_max_settings(option, 32);
  nghttp2_option_set_max_continuations(option, 8);
  nghttp2_option_set_stream_reset_rate_limit(option, 1000, 33);
  int rv = nghttp2_session_server_new2(&session_, callbacks, this, option);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);
  if (rv != 0) return false;
  const uint32_t header_list = static_cast<uint32_t>(
      std::min<size_t>(limits_.max_head_bytes + 32 * limits_.max_headers, UINT32_MAX));
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxConcurrentStreams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(kStreamWindow)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, header_list},
      // RFC 8441: WebSockets by extended CONNECT (Stream::builder accepts :protocol).
      {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1},
  };
  if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings)) != 0) return false;
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  return true;
}

void Http2Connection::start(std::string_view initial) {
  event_base* base = worker_.base();
  ev_ = event_new(base, fd_, EV_READ | EV_WRITE | EV_CLOSED | EV_PERSIST | EV_ET, onSocketEvent, this);
  timer_.assign(base, onTimer, this);
  event_assign(&deferred_, base, -1, 0, onDeferred, this);
  ++callback_depth_;
  if (!ev_ || event_add(ev_, nullptr) != 0 || !setUpSession()) {
    LOG_ERROR("cannot set up an HTTP/2 client connection");
    closed_ = true;
  } else {
    if (!initial.empty()) feed(initial.data(), initial.size());
    if (!closed_) handleReadable();
    if (!closed_ && worker_.shuttingDown()) drain();
    afterIo();
  }
  --callback_depth_;
  destroyIfDone();
}

void Http2Connection::onSocketEvent(evutil_socket_t, short what, void* arg) {
  auto* self = static_cast<Http2Connection*>(arg);
  ++self->callback_depth_;
  if (what & EV_WRITE) self->writable_ = true;
  if (what & (EV_READ | EV_CLOSED)) self->readable_ = true;
  if (what & EV_CLOSED) self->rdhup_ = true;
  if (self->readable_) self->handleReadable();
  self->afterIo();
  --self->callback_depth_;
  self->destroyIfDone();
}

void Http2Connection::onTimer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Http2Connection*>(arg);
  self->timer_.fired();
  ++self->callback_depth_;
  if (steadyNow() >= self->deadline_) self->handleTimeout();
  --self->callback_depth_;
  self->destroyIfDone();
}

void Http2Connection::onDeferred(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Http2Connection*>(arg);
  self->deferred_pending_ = false;
  ++self->callback_depth_;
  if (self->readable_ && !self->closed_) self->handleReadable();  // the fairness bound stopped it
  self->afterIo();
  --self->callback_depth_;
  self->destroyIfDone();
}

void Http2Connection::scheduleDeferred() {
  if (deferred_pending_ || closed_) return;
  deferred_pending_ = true;
  event_active(&deferred_, EV_TIMEOUT, 1);
}

void Http2Connection::destroyIfDone() {
  if (closed_ && callback_depth_ == 0) {
    worker_.connectionClosed(this);
    delete this;
    return;
  }
  if (!closed_) refreshTimer();
}

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
  } else if (result == -EAGAIN || result == -EWOULDBLOCK) {
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
    LOG_DEBUG("HTTP/2 client %s: %s", remote_ip_.c_str(), rv < 0 ? nghttp2_strerror(static_cast<int>(rv)) : "closed");
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

int Http2Connection::onBeginHeaders(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
  auto* self = static_cast<Http2Connection*>(user);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  Stream* stream = self->takeStream(frame->hd.stream_id);
  self->streams_.push_back(stream);
  self->any_stream_ = true;
  nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, stream);
  return 0;
}

int Http2Connection::onHeader(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name,
                              size_t name_len, const uint8_t* value, size_t value_len, uint8_t, void*) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  auto* stream = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  if (!stream) return 0;
  std::string_view field_name(reinterpret_cast<const char*>(name), name_len);
  std::string_view field_value(reinterpret_cast<const char*>(value), value_len);
  if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    stream->builder.add(field_name, field_value);
  } else if (frame->headers.cat == NGHTTP2_HCAT_HEADERS && stream->started) {
    stream->addRequestTrailer(field_name, field_value);  // nghttp2 ends the stream with them
  }
  return 0;
}

int Http2Connection::onFrameRecv(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
  auto* self = static_cast<Http2Connection*>(user);
  switch (frame->hd.type) {
    case NGHTTP2_RST_STREAM:
      self->countReset();
      return 0;
    case NGHTTP2_PING:
      // Every stream the client opened before it saw the shutdown notice came before this ACK.
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) && self->draining_ &&
          std::memcmp(frame->ping.opaque_data, kDrainPing, sizeof kDrainPing) == 0)
        self->finishDrain();
      return 0;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
      break;
    default:
      return 0;
  }
  auto* stream = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  if (!stream) return 0;
  const bool end_stream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
  if (end_stream) stream->remote_ended = true;
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    self->startStream(*stream, end_stream);
  } else if (end_stream) {
    if (stream->request_trailer_bytes > kHttp2MaxRequestTrailerBytes) self->refuseTrailers(*stream);
    self->pumpBody(*stream);
  }
  return 0;
}

void Http2Connection::refuseTrailers(Stream& stream) {
  // As an HTTP/1.1 client's oversized chunked trailers: the body (and the upstream request)
  // never ends; the client gets 400, or a reset once its response started.
  if (stream.discard_body || !stream.req.active() || stream.req.finished()) return;
  stream.discard_body = true;
  if (!stream.req.responseStarted()) {
    stream.req.fail(ErrorKind::kBadRequest, "the request trailers are larger than 8 KiB");
  } else {
    stream.req.cancel();
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream.id, NGHTTP2_CANCEL);
  }
}

void Http2Connection::startStream(Stream& stream, bool end_stream) {
  stream.started = true;
  http2::HeadError error = stream.builder.finish(end_stream);
  std::shared_ptr<const RuntimeConfig> config = listener_.config;
  const ListenConf* listen = listener_.conf;
  if (!listen || !config) {
    config = config_;
    listen = listen_conf_;
  }
  if (error != http2::HeadError::kNone) {
    ErrorKind kind;
    limitError(kind, error);
    stream.discard_body = true;
    stream.req.begin(&stream, &worker_, config, listen->servers.front(), &stream.builder.head(), remote_ip_);
    stream.req.setSecure(ssl_ != nullptr);
    stream.req.fail(kind, stream.builder.errorMessage());
    return;
  }
  const http1::MessageHead& head = stream.builder.head();
  const ServerConf& server = listen->findServer(head.find("host"));
  stream.websocket = stream.builder.webSocket();
  stream.req.begin(&stream, &worker_, config, &server, &head, remote_ip_);
  stream.req.setSecure(ssl_ != nullptr);
  stream.req.setExtendedConnect(stream.websocket);
  stream.req.run();
}

int Http2Connection::onDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data,
                                 size_t len, void*) {
  // The connection window is given back at once; a stream's only as its sink takes the bytes.
  nghttp2_session_consume_connection(session, len);
  auto* stream = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, stream_id));
  std::string_view piece(reinterpret_cast<const char*>(data), len);
  if (!stream || stream->closed || !stream->started) {
    nghttp2_session_consume_stream(session, stream_id, len);
    return 0;
  }
  stream->body_bytes += len;
  stream->body_progress = steadyNow();
  // A WebSocket's DATA is tunnel bytes, not a body: no client_max_body_size.
  if (stream->req.active() && !stream->discard_body && !stream->req.finished() &&
      !stream->websocket) {
    uint64_t max = stream->req.location().core.max_body_bytes;
    if (max && stream->body_bytes > max) {
      stream->discard_body = true;
      if (!stream->req.responseStarted()) {
        stream->req.fail(ErrorKind::kPayloadTooLarge, "the request body is larger than client_max_body_size");
      } else {
        stream->req.cancel();
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
      }
    }
  }
  if (stream->discard_body || !stream->req.active() || stream->req.finished()) {
    nghttp2_session_consume_stream(session, stream_id, len);
    // After the response: skip some (clients like to finish sending), then ask the client to stop.
    if (stream->response_sent && stream->discarded <= kMaxDiscard && (stream->discarded += len) > kMaxDiscard)
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_NO_ERROR);
    return 0;
  }
  BodySink* sink = stream->req.bodySink();
  if (stream->body_reading && !stream->body_paused && stream->pending.readable() == 0 && sink) {
    bool more = sink->onBodyData(piece);
    nghttp2_session_consume_stream(session, stream_id, len);
    if (!more) stream->body_paused = true;
    return 0;
  }
  stream->pending.append(piece);  // bounded by the stream window we advertised
  return 0;
}

void Http2Connection::pumpBody(Stream& stream) {
  // A discarded body (refused, timed out, answered already) is not delivered, nor is its end:
  // the sink would complete an upstream request the client was told failed.
  if (!stream.body_reading || stream.closed || stream.discard_body) return;
  for (int guard = 0; guard < 64 && !stream.body_paused && stream.pending.readable() > 0; ++guard) {
    size_t n = stream.pending.readable();
    BodySink* sink = stream.req.bodySink();
    bool more = sink ? sink->onBodyData(stream.pending.view()) : true;
    stream.pending.consume(n);
    nghttp2_session_consume_stream(session_, stream.id, n);
    if (!more) stream.body_paused = true;
  }
  if (stream.pending.readable() == 0) stream.pending.shrinkIfEmpty(0);
  if (!stream.body_paused && stream.pending.readable() == 0 && stream.remote_ended && !stream.body_end_delivered) {
    stream.body_end_delivered = true;
    if (BodySink* sink = stream.req.bodySink()) sink->onBodyEnd(stream.request_trailers);
  }
}

int Http2Connection::onStreamClose(nghttp2_session* session, int32_t stream_id, uint32_t, void* user) {
  auto* self = static_cast<Http2Connection*>(user);
  auto* stream = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, stream_id));
  if (stream) {
    stream->closed = true;
    nghttp2_session_set_stream_user_data(session, stream_id, nullptr);
    self->scheduleDeferred();
  }
  return 0;
}

int Http2Connection::onFrameSend(nghttp2_session* session, const nghttp2_frame* frame, void*) {
  if ((frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS) ||
      !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
    return 0;
  auto* stream = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  // The response is complete but the client still sends a body: nobody reads it any more. It is
  // skipped up to kMaxDiscard (clients tend to report a reset before their upload ended as an
  // error, even NO_ERROR), then the stream is reset.
  if (stream && stream->reset_after_response) {
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
    return 0;
  }
  if (stream && !stream->remote_ended) {
    stream->response_sent = true;
    stream->discard_body = true;
    stream->discarded = stream->pending.readable();
    nghttp2_session_consume_stream(session, stream->id, stream->pending.readable());
    stream->pending.clear();
    stream->pending.shrinkIfEmpty(0);
    if (stream->discarded > kMaxDiscard)
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
  }
  return 0;
}

void Http2Connection::countReset() {
  SteadyTime now = steadyNow();
  auto elapsed = now - reset_window_;
  if (elapsed >= std::chrono::seconds(2)) {
    resets_before_ = 0;
    resets_now_ = 0;
    reset_window_ = now;
    elapsed = {};
  } else if (elapsed >= std::chrono::seconds(1)) {
    resets_before_ = resets_now_;
    resets_now_ = 0;
    reset_window_ += std::chrono::seconds(1);
    elapsed -= std::chrono::seconds(1);
  }
  ++resets_now_;
  // Sliding second: the previous second counts for the part of it still inside the window.
  double weight = 1.0 - std::chrono::duration<double>(elapsed).count();
  if (resets_now_ + resets_before_ * weight > kMaxResetsPerSecond && !goaway_sent_) {
    LOG_INFO("HTTP/2 client %s resets streams too fast: GOAWAY", remote_ip_.c_str());
    goaway_sent_ = true;
    nghttp2_session_terminate_session(session_, NGHTTP2_ENHANCE_YOUR_CALM);
  }
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
    if (!stream->closed && stream->req.task() && !stream->req.finished()) stream->req.task()->onClientDrained();
  }
  reapStreams();
  if (closed_) return;
  // Draining ends here too: once the final GOAWAY is out and no stream is left, nghttp2 wants
  // neither to read nor to write (the final GOAWAY named the last stream: no other follows).
  const bool done = !nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_);
  if (out_.readable() == 0 && (done || (goaway_sent_ && !nghttp2_session_want_write(session_)))) close();
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
  size_t written = result > 0 ? static_cast<size_t>(result) : 0;
  if (written < out_.readable()) writable_ = false;  // the next edge says when there is room
  out_.consume(written);
}

void Http2Connection::batchedSendDone(ssize_t result) {
  ++callback_depth_;
  if (result < 0 && result != -EAGAIN && result != -EWOULDBLOCK) {
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

void Http2Connection::reapStreams() {
  // Not re-entered: a request finishing here only queues work for the next deferred pass.
  reaped_.clear();
  std::erase_if(streams_, [this](Stream* stream) {
    if (stream->closed) reaped_.push_back(stream);
    return stream->closed;
  });
  for (Stream* stream : reaped_) {
    if (stream->req.active()) {
      if (!stream->req.finished() || !stream->response_done) stream->req.cancel();
      stream->req.runLogPhase();
      stream->req.reset();
    }
    retireStream(stream);
  }
  reaped_.clear();
}

Http2Connection::Stream* Http2Connection::takeStream(int32_t id) {
  if (spare_streams_.empty()) return new Stream(*this, id, limits_);
  Stream* stream = spare_streams_.back();
  spare_streams_.pop_back();
  stream->recycle(id);
  return stream;
}

void Http2Connection::retireStream(Stream* stream) {
  constexpr size_t kSpareStreams = 16;
  if (closed_ || spare_streams_.size() >= kSpareStreams) {
    delete stream;
    return;
  }
  spare_streams_.push_back(stream);
}

// ---- end

void Http2Connection::drain() {
  if (closed_ || draining_ || goaway_sent_) return;
  draining_ = true;
  ++callback_depth_;
  // RFC 9113 §6.8, in two steps: a GOAWAY naming stream 2^31-1 tells the client to open no more
  // streams while the ones it may be opening right now are still accepted; after a round trip
  // (the ACK of this PING) the final GOAWAY names the last stream that will be served.
  drain_deadline_ = steadyNow() + kDrainPingWait;
  if (nghttp2_submit_shutdown_notice(session_) != 0 ||
      nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, kDrainPing) != 0)
    finishDrain();
  afterIo();
  --callback_depth_;
  destroyIfDone();
}

void Http2Connection::finishDrain() {
  if (drain_final_) return;
  drain_final_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  scheduleDeferred();
}

void Http2Connection::close() {
  if (closed_) return;
  closed_ = true;
  for (Stream* stream : streams_) {
    if (stream->req.active()) {
      stream->req.cancel();
      stream->req.runLogPhase();
      stream->req.reset();
    }
    delete stream;
  }
  streams_.clear();
  if (ssl_) {
    SSL_shutdown(ssl_);  // close_notify, best effort
    ERR_clear_error();
  }
}

void Http2Connection::refreshTimer() {
  if (closed_) return;
  const CoreConf& core = listen_conf_->servers.front()->core;
  SteadyTime now = steadyNow();
  if (out_.readable() > 0 && !writable_) {
    deadline_ = last_write_ + core.send_timeout;  // measured from the last progress
  } else if (streams_.empty()) {
    deadline_ = now + (any_stream_ ? core.keepalive_timeout : core.client_header_timeout);
  } else {
    // Streams are open: only a stalled request body has a deadline (client_body_timeout).
    deadline_ = SteadyTime::max();
    for (const Stream* stream : streams_)
      if (stream->awaitingBody()) deadline_ = std::min(deadline_, stream->bodyDeadline());
  }
  if (draining_ && !drain_final_) deadline_ = std::min(deadline_, drain_deadline_);
  if (deadline_ == SteadyTime::max()) return;
  timer_.arm(deadline_, now);
}

void Http2Connection::handleTimeout() {
  deadline_ = SteadyTime::max();
  if (draining_ && !drain_final_ && steadyNow() >= drain_deadline_) {
    // No PING ACK in time: end the grace now; the other deadlines are armed again afterwards.
    finishDrain();
    return;
  }
  if (out_.readable() > 0 && !writable_) {
    LOG_INFO("HTTP/2 client %s timed out reading the response", remote_ip_.c_str());
    close();
    return;
  }
  const SteadyTime now = steadyNow();
  // Copied: failing a request may finish its stream and change streams_.
  std::vector<Stream*> stalled;
  for (Stream* stream : streams_)
    if (stream->awaitingBody() && now >= stream->bodyDeadline()) stalled.push_back(stream);
  for (Stream* stream : stalled) {
    LOG_INFO("HTTP/2 client %s: the body of stream %d stalled", remote_ip_.c_str(), stream->id);
    stream->discard_body = true;
    if (!stream->req.responseStarted()) {
      stream->reset_after_response = true;
      stream->req.fail(ErrorKind::kClientTimeout, "the request body did not arrive in time");
    } else {
      stream->req.cancel();
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream->id, NGHTTP2_CANCEL);
    }
  }
  if (!stalled.empty()) {
    scheduleDeferred();
    return;
  }
  if (streams_.empty()) {
    // Idle: say goodbye properly, then close.
    nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
    goaway_sent_ = true;
    sendOutput();
    close();
  }
}

}  // namespace subgate
