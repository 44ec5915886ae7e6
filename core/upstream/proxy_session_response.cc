// ProxySession's response: the response head (interim answers skipped, hop-by-hop fields
// filtered), the 101 that turns the exchange into a tunnel, the body relay by its framing, and
// the resume after the client side drained. The rest of the class is in proxy_session.cc.
#include <algorithm>
#include <cstdint>

#include "core/net/clock.h"
#include "core/upstream/proxy_session.h"
#include "core/upstream/proxy_session_internal.h"

namespace subgate {

void ProxySession::onClientDrained() {
  if (!client_paused_) return;
  client_paused_ = false;
  if (!conn_ || state_ != State::kBody) return;
  if (conn_->in.readable() > 0 && !forwardBody()) return;
  readUpstream();
}

bool ProxySession::parseHead() {
  IoBuffer& in = conn_->in;
  for (;;) {
    http1::ParseStatus status = conn_->parser.parse(in.view());
    if (status == http1::ParseStatus::kIncomplete) return true;
    if (status == http1::ParseStatus::kError) {
      upstreamFailed(ErrorKind::kUpstreamError, conn_->parser.errorMessage(), 0);
      return false;
    }
    const http1::MessageHead& head = conn_->parser.head();
    if (head.status >= 100 && head.status < 200) {
      if (head.status == 101) {
        if (!req_.head().upgrade) {
          upstreamFailed(ErrorKind::kUpstreamError,
                         "the upstream switched protocols without being asked to", 0);
          return false;
        }
        startTunnel();
        return state_ == State::kBody;
      }
      in.consume(head.head_bytes);  // interim response: wait for the final one
      conn_->parser.reset();
      conn_->parser.setRequestMethod(req_.method());
      continue;
    }
    break;
  }
  const http1::MessageHead& head = conn_->parser.head();
  if (req_.extendedConnect() && head.status >= 200 && head.status < 300) {
    upstreamFailed(ErrorKind::kUpstreamError,
                   "the upstream answered the WebSocket upgrade with a 2xx instead of 101", 0);
    return false;
  }
  response_framing_ = head.framing;
  response_remaining_ = head.content_length;
  response_keep_alive_ = head.keep_alive;
  bool bodiless = head.framing == http1::BodyFraming::kNone;
  std::string_view connection = head.find("connection");
  auto& filtered = conn_->filtered;
  filtered.clear();
  for (const http1::HeaderField& field : head.headers) {
    // A bodiless response (HEAD, 304) keeps its Content-Length: it describes the resource.
    if (http1::isHopByHopHeader(field.name) &&
        !(bodiless && http1::iequals(field.name, "content-length")))
      continue;
    if (namedInConnection(connection, field.name)) continue;
    filtered.push_back(field);
  }
  ResponseHead out;
  out.status = head.status;
  out.reason = head.reason;
  out.headers = filtered;
  out.bodiless = bodiless;
  if (head.framing == http1::BodyFraming::kContentLength) out.content_length = head.content_length;
  req_.sendHead(out);
  // The head's bytes stay in place until here: the views above point into them.
  in.consume(head.head_bytes);
  state_ = State::kBody;
  if (response_framing_ == http1::BodyFraming::kChunked) conn_->chunked.reset();
  if (bodiless ||
      (response_framing_ == http1::BodyFraming::kContentLength && response_remaining_ == 0)) {
    finishExchange({});
    return false;
  }
  return true;
}

void ProxySession::startTunnel() {
  const http1::MessageHead& head = conn_->parser.head();
  auto& filtered = conn_->filtered;
  filtered.clear();
  std::string_view connection = head.find("connection");
  for (const http1::HeaderField& field : head.headers) {
    const bool upgrade = field.name.size() == 7 && http1::iequals(field.name, "upgrade");
    if (!upgrade &&
        (http1::isHopByHopHeader(field.name) || namedInConnection(connection, field.name)))
      continue;
    filtered.push_back(field);
  }
  ResponseHead out;
  out.status = 101;
  out.reason = head.reason;
  out.headers = filtered;
  req_.sendHead(out);
  conn_->in.consume(head.head_bytes);
  filtered = {};  // its views were for sendHead only; an idle tunnel keeps no capacity
  conn_->out.shrinkIfEmpty(0);
  conn_->parser.releaseMemory();  // this connection parses no further response
  // From here on both directions are raw bytes until a side closes: the response body runs
  // until the upstream closes, the client's bytes are the request "body".
  tunnel_ = true;
  state_ = State::kBody;
  response_framing_ = http1::BodyFraming::kUntilClose;
  response_keep_alive_ = false;
  chunked_request_ = false;
  io_deadline_ = steadyNow() + options_.read_timeout;
  req_.readBody(this);
  if (conn_ && conn_->in.readable() > 0 && state_ == State::kBody) forwardBody();
}

bool ProxySession::forwardBody() {
  IoBuffer& in = conn_->in;
  while (in.readable() > 0 && state_ == State::kBody) {
    bool more = true;
    switch (response_framing_) {
      case http1::BodyFraming::kContentLength: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(response_remaining_, in.readable()));
        more = req_.sendBody(std::string_view(in.readPtr(), n));
        in.consume(n);
        response_remaining_ -= n;
        if (response_remaining_ == 0) {
          finishExchange({});
          return false;
        }
        break;
      }
      case http1::BodyFraming::kChunked: {
        http1::ChunkedDecoder::Step step = conn_->chunked.next(in.view());
        if (step.state == http1::ChunkedDecoder::State::kError) {
          upstreamFailed(ErrorKind::kUpstreamError, conn_->chunked.errorMessage(), 0);
          return false;
        }
        if (!step.data.empty()) more = req_.sendBody(step.data);
        in.consume(step.consumed);
        if (step.state == http1::ChunkedDecoder::State::kDone) {
          finishExchange(conn_->chunked.trailers());
          return false;
        }
        if (step.consumed == 0) return true;  // need more bytes
        break;
      }
      default:
        more = req_.sendBody(in.view());
        in.consume(in.readable());
        break;
    }
    if (!more) {
      client_paused_ = true;
      return false;
    }
  }
  return true;
}

}  // namespace subgate
