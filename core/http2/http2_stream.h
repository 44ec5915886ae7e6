// One stream of an Http2Connection: the transport of its Request. Private to the connection
// (included by http2_connection.cc, http2_io.cc, http2_frames.cc and http2_stream.cc only).
//
// Response framing: transportSendHead() submits the HEADERS (the status, end-to-end fields
// lowercased, connection-specific ones dropped) with a data provider that reads `out`;
// transportSendBody() only appends to `out` and resumes the provider; transportEndResponse()
// marks the end and keeps the upstream's trailers, which go out as a trailing HEADERS frame with
// END_STREAM once `out` is empty.
//
// WebSockets over HTTP/2 (RFC 8441): a stream whose request was an extended CONNECT
// (`webSocket`) reached the upstream as an HTTP/1.1 upgrade. When the upstream answers 101 the
// stream answers `:status 200` (without the 101's upgrade, connection and sec-websocket-accept
// fields) and becomes a tunnel: the upstream's bytes are the response DATA, the client's DATA is
// delivered to the body sink as it would be a request body, END_STREAM from the client is the
// body's end (the proxy half-closes the upstream), and the response ends when the upstream
// closes. Any other answer is the stream's ordinary response.
//
// Request trailers (a HEADERS frame after the DATA, with END_STREAM) reach the body sink's
// onBodyEnd() as "name: value\r\n" lines, as a chunked HTTP/1.1 body's do: the upstream request
// of a body without content-length is chunked, so they follow its last chunk (with a
// content-length there is no place for them: the sink drops them). nghttp2 has refused
// pseudo-headers and connection-specific fields with a stream error (RFC 9113 §8.1, §8.2.2);
// framing, routing and hop-by-hop fields that remain (content-length, host, te, trailer) are
// dropped by the proxy (appendForwardedTrailers), as for HTTP/1.1. Trailers of a WebSocket
// stream are ignored.
//
// Threading and lifetime: the connection's thread; created in onBeginHeaders, deleted by the
// connection (reapStreams / close) once nghttp2 closed it, never inside a module's call.
#pragma once

#include <nghttp2/nghttp2.h>

#include <string>
#include <utility>
#include <vector>

#include "core/http2/http2_connection.h"
#include "core/http2/request_head.h"
#include "core/net/clock.h"
#include "core/net/io_buffer.h"
#include "core/pipeline/request.h"

namespace subgate {

// A stream's unsent response bytes above this make sendBody() return false...
inline constexpr size_t kHttp2StreamHighWater = 64 * 1024;
// ... and the task hears onClientDrained() once nghttp2 took them below this.
inline constexpr size_t kHttp2StreamLowWater = 16 * 1024;
// A request's trailer section (as "name: value\r\n" lines) larger than this is refused, as an
// HTTP/1.1 client's chunked trailers are (http1::ChunkedDecoder's bound).
inline constexpr size_t kHttp2MaxRequestTrailerBytes = 8192;

class Http2Connection::Stream final : public RequestTransport {
 public:
  Stream(Http2Connection& connection, int32_t id, const http1::Limits& limits)
      : conn(connection), id(id), builder(limits) {
    builder.setExtendedConnect(true);  // the connection advertises it (RFC 8441)
  }

  void transportSendHead(const ResponseHead& head,
                         std::span<const std::pair<std::string, std::string>> extra) override;
  bool transportSendBody(std::string_view data) override;
  void transportEndResponse(std::string_view trailers) override;
  void transportFlush() override { conn.scheduleDeferred(); }
  void transportStartBody() override;
  void transportResumeBody() override;
  void transportAbort() override;
  std::string_view transportProtocol() const override { return "HTTP/2.0"; }
  // An accepted WebSocket answers 200 (RFC 8441 §5); other 1xx are not relayed: 502.
  int transportStatus(int status) const override {
    return status == 101 && websocket ? 200 : status < 200 ? 502 : status;
  }

  void resumeData() {
    if (!data_deferred || closed) return;
    data_deferred = false;
    nghttp2_session_resume_data(conn.session_, id);
  }
  // The body is expected and nothing holds it back but the client (client_body_timeout runs).
  // A WebSocket tunnel may idle: its idle timeout is the proxy's, which sees both directions.
  bool awaitingBody() const {
    return started && body_reading && !remote_ended && !body_paused && !closed && !discard_body &&
           !websocket && req.active() && !req.finished();
  }
  SteadyTime bodyDeadline() const {
    return body_progress + req.location().core.client_body_timeout;
  }
  // One field of the client's trailer section (lowercase name, validated by nghttp2).
  void addRequestTrailer(std::string_view name, std::string_view value);
  // Copies the upstream's raw trailer lines ("Name: value\r\n"...) as HTTP/2 fields.
  void keepTrailers(std::string_view lines);
  // Submits the trailers (from the data provider, at the end of `out`); false if none or failed.
  bool submitTrailers();

  // A finished stream (its Request reset) becomes stream `new_id`: every field below returns to
  // its initial value; buffers and the builder keep their capacity. Keep in step with the fields.
  void recycle(int32_t new_id);

  Http2Connection& conn;
  int32_t id;
  http2::RequestHeadBuilder builder;
  Request req;
  bool started = false;
  bool remote_ended = false;  // END_STREAM from the client
  bool closed = false;        // nghttp2 closed the stream: reap it
  bool websocket = false;     // an extended CONNECT (RFC 8441), sent upstream as an upgrade
  bool tunnel = false;        // ... that the upstream accepted with 101: DATA is tunnel bytes
  // Request body.
  IoBuffer pending;  // arrived, not yet taken by the sink (its stream window not given back)
  uint64_t body_bytes = 0;
  bool body_reading = false;
  bool body_paused = false;
  bool body_end_delivered = false;
  bool discard_body = false;
  bool response_sent = false;         // END_STREAM went out before the client's
  bool reset_after_response = false;  // the body timed out: end the stream once answered
  SteadyTime body_progress{};         // the last time body bytes arrived or the sink asked for more
  uint64_t discarded = 0;
  std::string request_trailers;      // "name: value\r\n" lines for onBodyEnd()
  size_t request_trailer_bytes = 0;  // the whole section as lines, dropped fields included
  // Response.
  IoBuffer out;
  std::vector<std::pair<std::string, std::string>> trailers;  // lowercase names
  bool head_sent = false;
  bool bodiless = false;
  bool response_done = false;
  bool data_deferred = false;
  bool want_drain = false;
  bool notify_drained = false;
};

}  // namespace subgate
