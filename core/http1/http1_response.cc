// Http1Connection's response: serialising the head (and the 101 that turns the connection into a
// tunnel), framing body pieces (chunked or not) with back-pressure, and the response's end. The
// rest of the class is in http1_connection.cc.
#include <charconv>
#include <cstdint>

#include "core/http1/http1_connection.h"
#include "core/http1/http1_connection_internal.h"

namespace subgate {
namespace {

constexpr size_t kCopyThreshold = 16 * 1024;  // smaller body pieces are copied and batched

void appendDecimal(IoBuffer& out, uint64_t value) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  (void)ec;
  out.append(std::string_view(buf, end - buf));
}

void appendHex(IoBuffer& out, uint64_t value) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, 16);
  (void)ec;
  out.append(std::string_view(buf, end - buf));
}

void appendHeader(IoBuffer& out, std::string_view name, std::string_view value) {
  out.reserve(name.size() + value.size() + 4);
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

}  // namespace

void Http1Connection::transportSendHead(
    const ResponseHead& head, std::span<const std::pair<std::string, std::string>> extra) {
  const http1::MessageHead& req_head = parser_.head();
  if (head.status == 101 && req_head.upgrade && body_done_) {
    sendSwitchingProtocols(head);
    return;
  }
  response_bodiless_ = head.bodiless || head.status == 204 || head.status == 304 ||
                       (head.status >= 100 && head.status < 200);
  response_chunked_ = false;
  if (!response_bodiless_ && !head.content_length) {
    if (req_head.version_minor >= 1) {
      response_chunked_ = true;
    } else {
      keep_alive_ = false;  // close-delimited body for an HTTP/1.0 client
    }
  }
  if (requests_ >= req_.location().core.keepalive_requests || host_.stopping()) keep_alive_ = false;
  // Unread body bytes: skip them if few, else close after this response.
  if (!body_done_ && body_mode_ != BodyMode::kDeliver) {
    if (continue_sent_ || !req_head.expect_continue) {
      if (req_head.framing == http1::BodyFraming::kContentLength && body_remaining_ > kMaxDiscard)
        keep_alive_ = false;
    } else {
      keep_alive_ = false;  // the client waits for 100 Continue that will not come
    }
  }
  out_.reserve(256);
  out_.append(req_head.version_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ");
  appendDecimal(out_, static_cast<uint64_t>(head.status));
  out_.append(" ");
  out_.append(head.reason.empty() ? reasonPhrase(head.status) : head.reason);
  out_.append("\r\n");
  for (const http1::HeaderField& field : head.headers) appendHeader(out_, field.name, field.value);
  for (const auto& [name, value] : extra) appendHeader(out_, name, value);
  // RFC 9110 §8.6: never a Content-Length on 1xx and 204 (304 may carry the GET's length).
  const bool length_forbidden = head.status == 204 || head.status < 200;
  if (head.content_length && !length_forbidden) {
    out_.append("content-length: ");
    appendDecimal(out_, *head.content_length);
    out_.append("\r\n");
  } else if (response_chunked_) {
    out_.append("transfer-encoding: chunked\r\n");
  }
  if (!keep_alive_) {
    out_.append("connection: close\r\n");
  } else if (req_head.version_minor == 0) {
    out_.append("connection: keep-alive\r\n");
  }
  out_.append("\r\n");
}

void Http1Connection::sendSwitchingProtocols(const ResponseHead& head) {
  tunnel_ = true;
  response_bodiless_ = false;
  response_chunked_ = false;
  keep_alive_ = false;  // when the tunnel ends, so does the connection
  // Everything the client sends from here on (including bytes it sent early) is tunnel data.
  body_done_ = false;
  body_remaining_ = UINT64_MAX;
  out_.append("HTTP/1.1 101 ");
  out_.append(head.reason.empty() ? reasonPhrase(101) : head.reason);
  out_.append("\r\n");
  for (const http1::HeaderField& field : head.headers) appendHeader(out_, field.name, field.value);
  out_.append("connection: upgrade\r\n\r\n");
  // The request head stays referenced (logging) for the tunnel's whole life: keep only its
  // bytes (and any early tunnel bytes after it), not a whole read buffer.
  const char* before = in_.readPtr();
  in_.shrinkToFit();
  if (in_.readPtr() != before) parser_.rebaseHead(before, in_.readPtr());
  parser_.compact();
}

bool Http1Connection::transportSendBody(std::string_view data) {
  if (response_bodiless_ || data.empty() || closed_) return unsent() < kOutHighWater;
  if (response_chunked_) {
    appendHex(out_, data.size());
    out_.append("\r\n");
  }
  if (data.size() <= kCopyThreshold) {
    out_.append(data);
    if (response_chunked_) out_.append("\r\n");
    if (unsent() >= kOutHighWater) writeOut();
  } else {
    writeOut(data, response_chunked_ ? std::string_view("\r\n") : std::string_view());
  }
  return unsent() < kOutHighWater;
}

void Http1Connection::transportFlush() {
  if (out_.readable() > 0) flushOut();
}

void Http1Connection::transportEndResponse(std::string_view trailers) {
  if (response_chunked_) {
    out_.append("0\r\n");
    out_.append(trailers);
    out_.append("\r\n");
  }
  response_done_ = true;
  if (out_.readable() > 0) flushOut();
  // Finishing runs the log phase and may start the next request: never inside a module's call.
  scheduleDeferred();
}

}  // namespace subgate
