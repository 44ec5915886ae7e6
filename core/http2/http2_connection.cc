// Http2Connection's life: set-up (the nghttp2 session and its SETTINGS), start, event dispatch
// and the deferred pass, then its end: drain() and its final GOAWAY, closing, and the timeouts.
// Socket I/O is in http2_io.cc, the nghttp2 frame callbacks and the streams' handling in
// http2_frames.cc (a stream itself is in http2_stream.cc).
#include "core/http2/http2_connection.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>

#include "core/http2/http2_connection_internal.h"
#include "core/http2/http2_stream.h"
#include "core/log/log.h"
#include "core/net/socket_io.h"

namespace subgate {
namespace {

constexpr int32_t kStreamWindow = 256 * 1024;  // request body bytes a stream may have in flight
constexpr int32_t kConnectionWindow = 4 * 1024 * 1024;
constexpr uint32_t kMaxConcurrentStreams = 128;
// drain(): how long to wait for the ACK of kDrainPing.
constexpr auto kDrainPingWait = std::chrono::seconds(1);

}  // namespace

// ---- connection

Http2Connection::Http2Connection(ConnectionHost& host, int fd, std::unique_ptr<tls::Channel> tls,
                                 std::string remote_ip, const ListenerSlot& listener,
                                 std::shared_ptr<const RuntimeConfig> config,
                                 const ListenConf* listen)
    : host_(host),
      listener_(listener),
      fd_(fd),
      tls_(std::move(tls)),
      remote_ip_(std::move(remote_ip)),
      config_(std::move(config)),
      listen_conf_(listen),
      limits_(listen->servers.front()->core.head_limits) {}

Http2Connection::~Http2Connection() {
  for (Stream* stream : streams_) delete stream;
  for (Stream* stream : spare_streams_) delete stream;
  if (session_) nghttp2_session_del(session_);
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
  if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings)) != 0)
    return false;
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  return true;
}

void Http2Connection::start(std::string_view initial) {
  event_base* base = host_.loop();
  ev_ = event_new(base, fd_, EV_READ | EV_WRITE | EV_CLOSED | EV_PERSIST | EV_ET, onSocketEvent,
                  this);
  timer_.assign(base, onTimer, this);
  event_assign(&deferred_, base, -1, 0, onDeferred, this);
  ++callback_depth_;
  if (!ev_ || event_add(ev_, nullptr) != 0 || !setUpSession()) {
    LOG_ERROR("cannot set up an HTTP/2 client connection");
    closed_ = true;
  } else {
    if (!initial.empty()) feed(initial.data(), initial.size());
    if (!closed_) handleReadable();
    if (!closed_ && host_.stopping()) drain();
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
  // The fairness bound stopped the reads, or the decryption of what TLS holds.
  if ((self->readable_ || (self->tls_ && self->tls_->hasBufferedInput())) && !self->closed_)
    self->handleReadable();
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
    host_.connectionClosed(this);
    delete this;
    return;
  }
  if (!closed_) refreshTimer();
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
  if (tls_) {
    tls_->closeNotify();  // best effort: the socket may be full
    if (writable_ && tls_->wireOut().readable() > 0) sendFrom(fd_, tls_->wireOut());
  }
}

void Http2Connection::refreshTimer() {
  if (closed_) return;
  const CoreConf& core = listen_conf_->servers.front()->core;
  SteadyTime now = steadyNow();
  if (unsent() > 0 && !writable_) {
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
  if (unsent() > 0 && !writable_) {
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
