// Http2Connection's nghttp2 callbacks and its streams: a request's HEADERS open a stream (a spare
// one reused) and start its Request; DATA goes to the request's BodySink as far as it takes it
// (the stream's window follows), or is skipped once the response went out; request trailers,
// END_STREAM, RST_STREAM (counted against rapid resets) and the drain PING's ACK are handled here;
// closed streams are reaped and kept for reuse. The rest of the class is in http2_connection.cc
// and http2_io.cc; a stream itself is in http2_stream.cc.
#include <cstdint>
#include <cstring>

#include "core/http2/http2_connection.h"
#include "core/http2/http2_connection_internal.h"
#include "core/http2/http2_stream.h"
#include "core/log/log.h"

namespace subgate {
namespace {

constexpr uint32_t kMaxResetsPerSecond = 200;
constexpr uint64_t kMaxDiscard = 1 << 20;  // unread body bytes skipped after a response, then reset

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

// ---- frames received and sent

int Http2Connection::onBeginHeaders(nghttp2_session* session, const nghttp2_frame* frame,
                                    void* user) {
  auto* self = static_cast<Http2Connection*>(user);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  Stream* stream = self->takeStream(frame->hd.stream_id);
  self->streams_.push_back(stream);
  self->any_stream_ = true;
  nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, stream);
  return 0;
}

int Http2Connection::onHeader(nghttp2_session* session, const nghttp2_frame* frame,
                              const uint8_t* name, size_t name_len, const uint8_t* value,
                              size_t value_len, uint8_t, void*) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  auto* stream =
      static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
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
    case NGHTTP2_RST_STREAM: self->countReset(); return 0;
    case NGHTTP2_PING:
      // Every stream the client opened before it saw the shutdown notice came before this ACK.
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) && self->draining_ &&
          std::memcmp(frame->ping.opaque_data, kDrainPing, sizeof kDrainPing) == 0)
        self->finishDrain();
      return 0;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA: break;
    default: return 0;
  }
  auto* stream =
      static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
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
    stream.req.begin(&stream, &host_.requestWorker(), config, listen->servers.front(),
                     &stream.builder.head(), remote_ip_);
    stream.req.setSecure(tls_ != nullptr);
    stream.req.fail(kind, stream.builder.errorMessage());
    return;
  }
  const http1::MessageHead& head = stream.builder.head();
  const ServerConf& server = listen->findServer(head.find("host"));
  stream.websocket = stream.builder.webSocket();
  stream.req.begin(&stream, &host_.requestWorker(), config, &server, &head, remote_ip_);
  stream.req.setSecure(tls_ != nullptr);
  stream.req.setExtendedConnect(stream.websocket);
  stream.req.run();
}

int Http2Connection::onDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id,
                                 const uint8_t* data, size_t len, void*) {
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
        stream->req.fail(ErrorKind::kPayloadTooLarge,
                         "the request body is larger than client_max_body_size");
      } else {
        stream->req.cancel();
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
      }
    }
  }
  if (stream->discard_body || !stream->req.active() || stream->req.finished()) {
    nghttp2_session_consume_stream(session, stream_id, len);
    // After the response: skip some (clients like to finish sending), then ask the client to stop.
    if (stream->response_sent && stream->discarded <= kMaxDiscard &&
        (stream->discarded += len) > kMaxDiscard)
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_NO_ERROR);
    return 0;
  }
  stream->req.addBodyBytesReceived(len);
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
  if (!stream.body_paused && stream.pending.readable() == 0 && stream.remote_ended &&
      !stream.body_end_delivered) {
    stream.body_end_delivered = true;
    if (BodySink* sink = stream.req.bodySink()) sink->onBodyEnd(stream.request_trailers);
  }
}

int Http2Connection::onStreamClose(nghttp2_session* session, int32_t stream_id, uint32_t,
                                   void* user) {
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
  auto* stream =
      static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
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

// ---- closed streams: reaped, kept for reuse

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

}  // namespace subgate
