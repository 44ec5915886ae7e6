#include "core/http2/http2_stream.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "core/log/log.h"

namespace subgate {
namespace {

bool isConnectionSpecific(std::string_view name) {
  return http1::iequals(name, "connection") || http1::iequals(name, "keep-alive") ||
         http1::iequals(name, "proxy-connection") || http1::iequals(name, "transfer-encoding") ||
         http1::iequals(name, "upgrade") || http1::iequals(name, "content-length");
}

std::string lowercase(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = http1::asciiLower(c);
  return lower;
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

nghttp2_nv field(std::string_view name, std::string_view value,
                 uint8_t flags = NGHTTP2_NV_FLAG_NONE) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          flags};
}

// A field whose value is new in every response (the request id) is sent as a literal that
// HPACK does not index. Indexed, each one would take a dynamic table entry that no later
// response reuses, evict fields that would be reused (date, server, content-type), and, since
// nghttp2 files entries of one name under one hash, make every later search walk all of that
// name's entries: about 100 comparisons and 7,000 instructions per response (callgrind, h2c
// 10x10; docs/performance.md).
uint8_t indexingFlags(std::string_view lower_name) {
  return lower_name == "x-request-id" ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE;
}

}  // namespace

void Http2Connection::Stream::recycle(int32_t new_id) {
  id = new_id;
  builder.reset();
  started = remote_ended = closed = websocket = tunnel = false;
  // The buffers go back to the thread's pool: a spare stream holds no block.
  pending.clear();
  pending.shrinkIfEmpty(0);
  body_bytes = 0;
  body_reading = body_paused = body_end_delivered = discard_body = false;
  response_sent = reset_after_response = false;
  body_progress = {};
  discarded = 0;
  request_trailers.clear();
  request_trailers.shrink_to_fit();  // rare: a spare stream holds no trailer memory
  request_trailer_bytes = 0;
  out.clear();
  out.shrinkIfEmpty(0);
  trailers.clear();
  head_sent = bodiless = response_done = data_deferred = want_drain = notify_drained = false;
}

void Http2Connection::Stream::transportSendHead(
    const ResponseHead& head, std::span<const std::pair<std::string, std::string>> extra) {
  if (closed || head_sent) return;
  head_sent = true;
  // RFC 8441 §5: the tunnel's success is a 2xx; the 101's handshake fields belong to HTTP/1.1.
  tunnel = head.status == 101 && websocket;
  const int status = transportStatus(head.status);
  bodiless = !tunnel && (head.bodiless || status == 204 || status == 304 ||
                         (head.content_length && *head.content_length == 0));
  // Lowercased name copies and the field list, reused by every response of this thread:
  // nghttp2 copies the fields on submit. Reserved before any push, so views stay valid.
  thread_local std::vector<std::string> names;
  thread_local std::vector<nghttp2_nv> nva;
  names.clear();
  nva.clear();
  names.reserve(head.headers.size() + extra.size());
  nva.reserve(head.headers.size() + extra.size() + 2);
  char status_text[4];
  std::to_chars(status_text, status_text + 3, status);
  nva.push_back(field(":status", std::string_view(status_text, 3)));
  auto add_field = [&](std::string_view name, std::string_view value) {
    if (isConnectionSpecific(name) || name.empty()) return;
    if (tunnel && http1::iequals(name, "sec-websocket-accept")) return;
    const std::string& lower = names.emplace_back(lowercase(name));
    nva.push_back(field(lower, value, indexingFlags(lower)));
  };
  for (const http1::HeaderField& header : head.headers) add_field(header.name, header.value);
  for (const auto& [name, value] : extra) add_field(name, value);
  char length_text[24];
  if (head.content_length && status != 204 && !tunnel) {
    auto [end, ec] =
        std::to_chars(length_text, length_text + sizeof length_text, *head.content_length);
    (void)ec;
    nva.push_back(field("content-length", std::string_view(length_text, end - length_text)));
  }
  nghttp2_data_provider provider{};
  provider.source.ptr = this;
  provider.read_callback = readResponse;
  int rv = nghttp2_submit_response(conn.session_, id, nva.data(), nva.size(),
                                   bodiless ? nullptr : &provider);
  if (rv != 0) {
    LOG_DEBUG("HTTP/2 response on stream %d: %s", id, nghttp2_strerror(rv));
    nghttp2_submit_rst_stream(conn.session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
  }
  conn.scheduleDeferred();
}

bool Http2Connection::Stream::transportSendBody(std::string_view data) {
  if (closed || bodiless || !head_sent || data.empty()) return true;
  out.append(data);
  resumeData();
  conn.scheduleDeferred();
  if (out.readable() >= kHttp2StreamHighWater) {
    want_drain = true;
    return false;
  }
  return true;
}

void Http2Connection::Stream::transportEndResponse(std::string_view trailer_lines) {
  response_done = true;
  // The lines point into the upstream connection's decoder, which is released after this call.
  if (!trailer_lines.empty() && !bodiless) keepTrailers(trailer_lines);
  resumeData();
  conn.scheduleDeferred();
}

void Http2Connection::Stream::transportStartBody() {
  if (body_reading) return;
  body_reading = true;
  body_progress = steadyNow();
  conn.pumpBody(*this);
  conn.scheduleDeferred();  // window updates
}

void Http2Connection::Stream::transportResumeBody() {
  if (!body_paused) return;
  body_paused = false;
  body_progress = steadyNow();
  conn.pumpBody(*this);
  conn.scheduleDeferred();
}

void Http2Connection::Stream::transportAbort() {
  if (!closed)
    nghttp2_submit_rst_stream(conn.session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
  discard_body = true;
  conn.scheduleDeferred();
}

void Http2Connection::Stream::addRequestTrailer(std::string_view name, std::string_view value) {
  if (websocket) return;  // the stream's DATA was tunnel bytes: there is no body to end with them
  request_trailer_bytes += name.size() + value.size() + 4;
  if (request_trailer_bytes > kHttp2MaxRequestTrailerBytes) return;  // refused at END_STREAM
  // nghttp2 refused pseudo-headers already; the proxy drops framing, hop-by-hop and host fields
  // of every client's trailers on the way upstream (appendForwardedTrailers).
  if (name.empty() || name[0] == ':') return;
  request_trailers.append(name).append(": ").append(value).append("\r\n");
}

void Http2Connection::Stream::keepTrailers(std::string_view lines) {
  // The decoder validated the lines (field syntax, no obs-fold); each ends in CRLF.
  while (!lines.empty()) {
    size_t end = lines.find("\r\n");
    std::string_view line = lines.substr(0, end);
    lines = end == std::string_view::npos ? std::string_view() : lines.substr(end + 2);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    std::string_view name = line.substr(0, colon);
    // Framing and hop-by-hop fields mean nothing in HTTP/2 (RFC 9113 §8.2.2).
    if (isConnectionSpecific(name) || http1::iequals(name, "te") || http1::iequals(name, "trailer"))
      continue;
    trailers.emplace_back(lowercase(name), std::string(trimmed(line.substr(colon + 1))));
  }
}

bool Http2Connection::Stream::submitTrailers() {
  if (trailers.empty()) return false;
  std::vector<nghttp2_nv> nva;
  nva.reserve(trailers.size());
  for (const auto& [name, value] : trailers) nva.push_back(field(name, value));
  int rv = nghttp2_submit_trailer(conn.session_, id, nva.data(), nva.size());
  trailers.clear();
  trailers.shrink_to_fit();
  if (rv != 0) {
    LOG_DEBUG("HTTP/2 trailers on stream %d: %s", id, nghttp2_strerror(rv));
    return false;
  }
  return true;
}

ssize_t Http2Connection::readResponse(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                                      uint32_t* flags, nghttp2_data_source* source, void*) {
  auto* stream = static_cast<Stream*>(source->ptr);
  size_t n = std::min(length, stream->out.readable());
  if (n > 0) {
    std::memcpy(buf, stream->out.readPtr(), n);
    stream->out.consume(n);
  }
  if (stream->out.readable() == 0) {
    stream->out.shrinkIfEmpty(0);
    if (stream->response_done) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      // The trailing HEADERS frame carries END_STREAM instead of this DATA frame.
      if (stream->submitTrailers()) *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    } else if (n == 0) {
      stream->data_deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  if (stream->want_drain && stream->out.readable() < kHttp2StreamLowWater) {
    stream->want_drain = false;
    stream->notify_drained = true;
  }
  return static_cast<ssize_t>(n);
}

}  // namespace subgate
