// What the upstream gets of the request: its head (hop-by-hop and dropped fields filtered,
// X-Forwarded-For, Via, the body framing), the forwarded trailers, and the request body as
// ProxySession's BodySink (chunked again when the request was). The rest of the class is in
// proxy_session.cc.
#include <charconv>
#include <cstdint>

#include "core/upstream/proxy_session.h"
#include "core/upstream/proxy_session_internal.h"

namespace subgate {
namespace {

void appendHex(IoBuffer& out, uint64_t value) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, 16);
  (void)ec;
  out.append(std::string_view(buf, end - buf));
}

bool isDropped(const RouteDecision& decision, std::string_view name) {
  for (const std::string& dropped : decision.drop_headers)
    if (dropped.size() == name.size() && http1::iequals(dropped, name)) return true;
  return false;
}

}  // namespace

void appendForwardedTrailers(std::string_view lines, std::string& out) {
  // Validated lines ("name: value\r\n"...): framing, routing and hop-by-hop fields were
  // settled by the head (RFC 9110 §6.5.1) and would confuse the next hop.
  while (!lines.empty()) {
    size_t end = lines.find("\r\n");
    std::string_view line = lines.substr(0, end == std::string_view::npos ? lines.size() : end + 2);
    lines.remove_prefix(line.size());
    std::string_view name = line.substr(0, line.find(':'));
    if (http1::isHopByHopHeader(name) || http1::iequals(name, "host")) continue;
    out.append(line);
  }
}

void buildUpstreamRequestHead(const Request& req, IoBuffer& out) {
  const http1::MessageHead& head = req.head();
  std::string_view connection = head.find("connection");
  out.reserve(512);
  out.append(head.method);
  out.append(" ");
  const RouteDecision& decision = req.route();
  out.append(decision.target.empty() ? head.target : std::string_view(decision.target));
  out.append(" HTTP/1.1\r\n");
  std::string forwarded_for;
  std::string via;
  const bool replace_host = !decision.forwarded_host.empty();
  // The request id and a child span's traceparent replace what the client sent (request.h).
  const bool replace_id = req.replacesRequestId() && !req.requestId().empty();
  const std::string_view traceparent = req.childTraceParent();
  for (const http1::HeaderField& field : head.headers) {
    std::string_view name = field.name;
    if (http1::isHopByHopHeader(name)) continue;
    if (replace_id && name.size() == 12 && http1::iequals(name, "x-request-id")) continue;
    if (!traceparent.empty() && name.size() == 11 && http1::iequals(name, "traceparent")) continue;
    if (replace_host && name.size() == 4 && http1::iequals(name, "host")) continue;
    if (isDropped(decision, name)) continue;
    if (name.size() == 6 && http1::iequals(name, "expect")) continue;  // answered by subgate
    if (name.size() == 15 && http1::iequals(name, "x-forwarded-for")) {
      if (!forwarded_for.empty()) forwarded_for += ", ";
      forwarded_for += field.value;
      continue;
    }
    if (name.size() == 3 && http1::iequals(name, "via")) {
      if (!via.empty()) via += ", ";
      via += field.value;
      continue;
    }
    if (namedInConnection(connection, name)) continue;
    out.append(name);
    out.append(": ");
    out.append(field.value);
    out.append("\r\n");
  }
  if (replace_host) {
    out.append("host: ");
    out.append(decision.forwarded_host);
    out.append("\r\n");
  }
  for (const auto& [name, value] : decision.add_headers) {
    out.append(name);
    out.append(": ");
    out.append(value);
    out.append("\r\n");
  }
  if (replace_id) {
    out.append("x-request-id: ");
    out.append(req.requestId());
    out.append("\r\n");
  }
  if (!traceparent.empty()) {
    out.append("traceparent: ");
    out.append(traceparent);
    out.append("\r\n");
  }
  if (head.upgrade) {
    // The one hop-by-hop exchange a proxy passes on: a 101 answer turns both connections into
    // a tunnel (WebSockets).
    out.append("connection: upgrade\r\nupgrade: ");
    out.append(head.find("upgrade"));
    out.append("\r\n");
  }
  out.append("x-forwarded-for: ");
  if (!forwarded_for.empty()) {
    out.append(forwarded_for);
    out.append(", ");
  }
  out.append(req.remoteAddress());
  out.append("\r\nvia: ");
  if (!via.empty()) {
    out.append(via);
    out.append(", ");
  }
  // RFC 9110 §7.6.3: the protocol subgate received the request with ("2" for HTTP/2).
  const std::string_view protocol = req.protocol();
  out.append(protocol == "HTTP/2.0"   ? "2 subgate\r\n"
             : protocol == "HTTP/1.0" ? "1.0 subgate\r\n"
                                      : "1.1 subgate\r\n");
  if (head.framing == http1::BodyFraming::kContentLength) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, head.content_length);
    (void)ec;
    out.append("content-length: ");
    out.append(std::string_view(buf, end - buf));
    out.append("\r\n");
  } else if (head.framing == http1::BodyFraming::kChunked) {
    out.append("transfer-encoding: chunked\r\n");
  }
  out.append("\r\n");
}

bool ProxySession::onBodyData(std::string_view data) {
  if (!conn_ || state_ == State::kDone) return true;  // nobody to send to: let it drain
  body_started_ = true;
  IoBuffer& out = conn_->out;
  if (chunked_request_) {
    appendHex(out, data.size());
    out.append("\r\n");
    out.append(data);
    out.append("\r\n");
  } else {
    out.append(data);
  }
  // A tunnel's bytes are messages someone waits for: send each batch the client side hands
  // over now. A request body is written in larger pieces (and at its end).
  if (tunnel_ || out.readable() >= kUpstreamHighWater) writeUpstream();
  if (conn_ && conn_->out.readable() >= kUpstreamHighWater) {
    client_body_paused_ = true;
    return false;
  }
  return true;
}

void ProxySession::onBodyEnd(std::string_view trailers) {
  body_end_ = true;
  if (!conn_ || state_ == State::kDone) return;
  if (chunked_request_) {
    chunked_end_.assign("0\r\n");  // kept for a resend
    appendForwardedTrailers(trailers, chunked_end_);
    chunked_end_.append("\r\n");
    conn_->out.append(chunked_end_);
  }
  // Written by the caller (connected()) or here when the body ends later.
  if (state_ != State::kConnecting) sendUpstream();
}

}  // namespace subgate
