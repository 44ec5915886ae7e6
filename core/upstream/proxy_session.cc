#include "core/upstream/proxy_session.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "core/log/log.h"
#include "core/server/worker.h"

namespace subgate {
namespace {

constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kUpstreamHighWater = 256 * 1024;  // request body bytes queued for the upstream
constexpr int kReadsPerEvent = 16;                  // fairness bound per socket event

void appendHex(IoBuffer& out, uint64_t value) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, 16);
  (void)ec;
  out.append(std::string_view(buf, end - buf));
}

bool namedInConnection(std::string_view connection_value, std::string_view name) {
  return !connection_value.empty() && http1::headerHasToken(connection_value, name);
}

bool isDropped(const Ingress& ingress, std::string_view name) {
  for (const std::string& dropped : ingress.drop_headers)
    if (dropped.size() == name.size() && http1::iequals(dropped, name)) return true;
  return false;
}

}  // namespace

bool isHopByHopHeader(std::string_view name) {
  switch (name.size()) {
    case 2: return http1::iequals(name, "te");
    case 7: return http1::iequals(name, "trailer") || http1::iequals(name, "upgrade");
    case 10: return http1::iequals(name, "connection") || http1::iequals(name, "keep-alive");
    case 14: return http1::iequals(name, "content-length");
    case 16: return http1::iequals(name, "proxy-connection");
    case 17: return http1::iequals(name, "transfer-encoding");
    default: return false;
  }
}

void appendForwardedTrailers(std::string_view lines, std::string& out) {
  // Validated lines ("name: value\r\n"...): framing, routing and hop-by-hop fields were
  // settled by the head (RFC 9110 §6.5.1) and would confuse the next hop.
  while (!lines.empty()) {
    size_t end = lines.find("\r\n");
    std::string_view line = lines.substr(0, end == std::string_view::npos ? lines.size() : end + 2);
    lines.remove_prefix(line.size());
    std::string_view name = line.substr(0, line.find(':'));
    if (isHopByHopHeader(name) || http1::iequals(name, "host")) continue;
    out.append(line);
  }
}

void buildUpstreamRequestHead(const Request& req, IoBuffer& out) {
  const http1::MessageHead& head = req.head();
  std::string_view connection = head.find("connection");
  out.reserve(512);
  out.append(head.method);
  out.append(" ");
  const Ingress& ingress = req.ingress();
  out.append(ingress.target.empty() ? head.target : std::string_view(ingress.target));
  out.append(" HTTP/1.1\r\n");
  std::string forwarded_for;
  std::string via;
  const bool replace_host = !ingress.forwarded_host.empty();
  for (const http1::HeaderField& field : head.headers) {
    std::string_view name = field.name;
    if (isHopByHopHeader(name)) continue;
    if (replace_host && name.size() == 4 && http1::iequals(name, "host")) continue;
    if (isDropped(ingress, name)) continue;
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
    out.append(ingress.forwarded_host);
    out.append("\r\n");
  }
  for (const auto& [name, value] : ingress.add_headers) {
    out.append(name);
    out.append(": ");
    out.append(value);
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

ProxySession::ProxySession(Request& req, std::unique_ptr<PeerSelector> selector,
                           const ProxyOptions& options)
    : req_(req), selector_(std::move(selector)), options_(options) {}

ProxySession::~ProxySession() { dropConnection(); }

void ProxySession::start() { tryPeer(false); }

void ProxySession::tryPeer(bool same_pool) {
  // Bounded: each pass either moves to another peer (the selector runs out) or returns.
  for (;;) {
    if (!same_pool) {
      pool_ = selector_->next(req_);
      if (!pool_) {
        state_ = State::kDone;
        std::string message;
        req_.fail(attempts_ == 0 ? selector_->noPeerError() : selector_->mapFailure(last_error_, message), message);
        return;
      }
    }
    same_pool = false;
    ++attempts_;
    req_.setUpstreamAddress(pool_->address().text);
    conn_ = pool_->acquire();
    if (!conn_) {
      LOG_WARN("connect to upstream %s failed: %s", pool_->address().text.c_str(), std::strerror(errno));
      last_error_ = ErrorKind::kUpstreamError;
      continue;
    }
    conn_->setHandler(this);
    if (conn_->connected) {
      connected();
      return;
    }
    state_ = State::kConnecting;
    io_deadline_ = steadyNow() + options_.connect_timeout;
    armTimer();
    return;
  }
}

void ProxySession::connected() {
  state_ = State::kWaitingHead;
  conn_->parser.reset();
  conn_->parser.setRequestMethod(req_.method());
  conn_->out.clear();
  buildUpstreamRequestHead(req_, conn_->out);
  io_deadline_ = steadyNow() + options_.send_timeout;
  if (req_.hasBody() && !body_end_) {
    chunked_request_ = req_.head().framing == http1::BodyFraming::kChunked;
    // The body's first bytes (already buffered) join the head in one write.
    req_.readBody(this);
    if (state_ == State::kDone) return;
  } else if (body_end_ && chunked_request_) {
    // Sent again after a stale connection (retryStale): the body ended before any byte of it
    // went out, so what is left of it is its last chunk and trailers.
    conn_->out.append(chunked_end_);
  }
  sendUpstream();
  armTimer();
}

void ProxySession::writeUpstream() {
  if (!conn_) return;
  IoBuffer& out = conn_->out;
  for (int i = 0; i < kReadsPerEvent && out.readable() > 0 && conn_->writable; ++i) {
    ssize_t n = ::send(conn_->fd(), out.readPtr(), out.readable(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        conn_->writable = false;
        break;
      }
      upstreamFailed(ErrorKind::kUpstreamError, "write", errno);
      return;
    }
    wroteUpstream(static_cast<size_t>(n));
  }
  afterUpstreamWrite();
}

void ProxySession::sendUpstream() {
  IoBatch* batch = IoBatch::forThisTurn();
  if (!batch || tunnel_ || !conn_ || !conn_->writable ||
      conn_->out.readable() >= kUpstreamHighWater) {
    writeUpstream();
    return;
  }
  batch->queue(static_cast<IoBatch::Writer*>(this));
}

int ProxySession::prepareBatchedSend(iovec* iov, int& fd) {
  if (!conn_ || state_ == State::kDone || !conn_->writable || conn_->out.readable() == 0) return 0;
  iov[0] = {const_cast<char*>(conn_->out.readPtr()), conn_->out.readable()};
  fd = conn_->fd();
  return 1;
}

void ProxySession::batchedSendSettle(ssize_t result) {
  if (!conn_) return;
  if (result > 0) {
    wroteUpstream(static_cast<size_t>(result));
  } else {
    conn_->writable = false;  // -EAGAIN: the next edge says when there is room
  }
}

void ProxySession::batchedSendDone(ssize_t result) {
  if (!conn_) return;
  if (result < 0 && result != -EAGAIN && result != -EWOULDBLOCK) {
    upstreamFailed(ErrorKind::kUpstreamError, "write", static_cast<int>(-result));
  } else {
    afterUpstreamWrite();
  }
  if (conn_) armTimer();
}

void ProxySession::wroteUpstream(size_t n) {
  IoBuffer& out = conn_->out;
  io_deadline_ = steadyNow() + (tunnel_ ? options_.read_timeout : options_.send_timeout);
  if (n < out.readable()) conn_->writable = false;
  out.consume(n);
}

void ProxySession::afterUpstreamWrite() {
  IoBuffer& out = conn_->out;
  if (tunnel_) out.shrinkIfEmpty(0);  // an idle tunnel holds no buffer memory
  if (tunnel_ && body_end_ && out.readable() == 0 && !upstream_shut_) {
    upstream_shut_ = true;  // the client closed its end: pass the end on, keep reading
    ::shutdown(conn_->fd(), SHUT_WR);
  }
  if (out.readable() == 0 && state_ == State::kWaitingHead) {
    io_deadline_ = steadyNow() + options_.read_timeout;
  }
  if (client_body_paused_ && out.readable() < kUpstreamHighWater / 4) {
    client_body_paused_ = false;
    req_.resumeBody();
  }
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

void ProxySession::onUpstreamEvent(short what) {
  if (!conn_) return;
  if (state_ == State::kConnecting) {
    int error = conn_->connectError();
    if (error != 0) {
      LOG_WARN("connect to upstream %s failed: %s", pool_->address().text.c_str(), std::strerror(error));
      dropConnection();
      last_error_ = ErrorKind::kUpstreamError;
      tryPeer(false);
      return;
    }
    conn_->connected = true;
    connected();
    return;
  }
  if ((what & EV_WRITE) && conn_ && conn_->out.readable() > 0) writeUpstream();
  if ((what & EV_READ) && conn_) readUpstream();
  if (conn_) armTimer();
}

void ProxySession::onClientDrained() {
  if (!client_paused_) return;
  client_paused_ = false;
  if (!conn_ || state_ != State::kBody) return;
  if (conn_->in.readable() > 0 && !forwardBody()) return;
  readUpstream();
}

void ProxySession::readUpstream() {
  // The response head, the exchange's one read in the common case, joins the loop turn's batch.
  if (state_ == State::kWaitingHead && conn_ && conn_->readable && !client_paused_) {
    if (IoBatch* batch = IoBatch::forThisTurn()) {
      batch->queue(static_cast<IoBatch::Reader*>(this));
      return;
    }
  }
  readUpstreamNow();
}

void ProxySession::readUpstreamNow() {
  for (int i = 0; i < kReadsPerEvent && conn_ && !client_paused_; ++i) {
    if (!conn_->readable) break;
    IoBuffer& in = conn_->in;
    in.reserveForRead(kReadChunk);
    size_t want = in.writable();
    ssize_t n = ::recv(conn_->fd(), in.writePtr(), want, 0);
    ReadOutcome outcome = tookRead(n < 0 ? -errno : n, want);
    if (outcome == ReadOutcome::kGone) return;
    if (outcome == ReadOutcome::kStop) break;
  }
  afterUpstreamRead();
}

int ProxySession::prepareBatchedRecv(iovec* iov, int& fd) {
  if (!conn_ || state_ != State::kWaitingHead || !conn_->readable || client_paused_) return 0;
  IoBuffer& in = conn_->in;
  in.reserveForRead(kReadChunk);
  batched_read_want_ = in.writable();
  iov[0] = {in.writePtr(), batched_read_want_};
  fd = conn_->fd();
  return 1;
}

void ProxySession::batchedRecvSettle(ssize_t result) {
  if (!conn_ || result <= 0) return;
  if (static_cast<size_t>(result) < batched_read_want_ && !conn_->peer_closed)
    conn_->readable = false;
  conn_->in.commit(static_cast<size_t>(result));
}

void ProxySession::batchedRecvDone(ssize_t result) {
  if (!conn_) return;
  ReadOutcome outcome = tookRead(result, batched_read_want_, true);
  if (outcome == ReadOutcome::kGone) return;
  if (outcome == ReadOutcome::kMore) {
    readUpstreamNow();  // a full read: the rest is read at once
  } else {
    afterUpstreamRead();
  }
  if (conn_) armTimer();
}

ProxySession::ReadOutcome ProxySession::tookRead(ssize_t result, size_t want, bool settled) {
  if (result < 0) {
    if (result == -EINTR) return ReadOutcome::kMore;
    if (result == -EAGAIN || result == -EWOULDBLOCK) {
      conn_->readable = false;
      return ReadOutcome::kStop;
    }
    if (state_ == State::kWaitingHead && retryStale()) return ReadOutcome::kGone;
    upstreamFailed(ErrorKind::kUpstreamError, "read", static_cast<int>(-result));
    return ReadOutcome::kGone;
  }
  if (result == 0) {
    conn_->readable = false;
    if (state_ == State::kWaitingHead) {
      if (retryStale()) return ReadOutcome::kGone;
      upstreamFailed(ErrorKind::kUpstreamError,
                     "the upstream closed the connection before answering", 0);
      return ReadOutcome::kGone;
    }
    if (state_ == State::kBody && response_framing_ == http1::BodyFraming::kUntilClose) {
      response_keep_alive_ = false;
      finishExchange({});
      return ReadOutcome::kGone;
    }
    upstreamFailed(ErrorKind::kUpstreamError, "the upstream closed the connection mid-response", 0);
    return ReadOutcome::kGone;
  }
  if (!settled) {
    if (static_cast<size_t>(result) < want && !conn_->peer_closed) conn_->readable = false;
    conn_->in.commit(static_cast<size_t>(result));
  }
  io_deadline_ = steadyNow() + options_.read_timeout;
  if (state_ == State::kWaitingHead && !parseHead()) return ReadOutcome::kStop;
  if (state_ == State::kBody && !forwardBody()) return ReadOutcome::kStop;
  return ReadOutcome::kMore;
}

void ProxySession::afterUpstreamRead() {
  if (state_ == State::kBody || state_ == State::kDone) req_.flush();
  if (tunnel_ && conn_) conn_->in.shrinkIfEmpty(0);
  // The fairness bound left bytes in the socket: come back on the next loop turn.
  if (conn_ && conn_->readable && !client_paused_) conn_->wakeRead();
}

bool ProxySession::retryStale() {
  // A kept-alive connection the upstream closed while we reused it: the request never reached
  // the application, so it is safe to send it again on a fresh connection, once.
  if (!conn_ || !conn_->reused() || conn_->in.readable() > 0 || body_started_ || retried_stale_)
    return false;
  retried_stale_ = true;
  dropConnection();
  tryPeer(true);
  return true;
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
    if (isHopByHopHeader(field.name) && !(bodiless && http1::iequals(field.name, "content-length")))
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
  if (bodiless || (response_framing_ == http1::BodyFraming::kContentLength && response_remaining_ == 0)) {
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
    if (!upgrade && (isHopByHopHeader(field.name) || namedInConnection(connection, field.name)))
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

void ProxySession::finishExchange(std::string_view trailers) {
  state_ = State::kDone;
  bool reusable = response_keep_alive_ && response_framing_ != http1::BodyFraming::kUntilClose &&
                  (!req_.hasBody() || body_end_) && conn_->out.readable() == 0;
  // Trailers may point into the decoder, which lives in the connection: send before release.
  req_.endResponse(trailers);
  pool_->release(std::move(conn_), reusable);
}

void ProxySession::upstreamFailed(ErrorKind kind, const char* what, int error) {
  std::string address = pool_ ? pool_->address().text : std::string("-");
  if (error) {
    LOG_WARN("upstream %s: %s: %s", address.c_str(), what, std::strerror(error));
  } else {
    LOG_WARN("upstream %s: %s", address.c_str(), what);
  }
  dropConnection();
  state_ = State::kDone;
  std::string message;
  kind = selector_->mapFailure(kind, message);
  req_.fail(kind, message);
}

void ProxySession::dropConnection() {
  if (conn_) {
    conn_->setHandler(nullptr);
    pool_->discard(std::move(conn_));
  }
}

void ProxySession::armTimer() {
  if (state_ == State::kDone || !conn_) return;
  SteadyTime due = io_deadline_;
  if ((state_ == State::kConnecting || state_ == State::kWaitingHead) && req_.responseDeadline())
    due = std::min(due, *req_.responseDeadline());
  conn_->armTimer(due);
}

void ProxySession::onUpstreamTimer() { handleTimeout(); }

void ProxySession::handleTimeout() {
  if (state_ == State::kDone) return;
  auto now = steadyNow();
  if ((state_ == State::kConnecting || state_ == State::kWaitingHead) && req_.responseDeadline() &&
      now >= *req_.responseDeadline()) {
    LOG_INFO("request %.*s: no response head from %s before the deadline",
             static_cast<int>(req_.target().size()), req_.target().data(),
             pool_ ? pool_->address().text.c_str() : "-");
    dropConnection();
    state_ = State::kDone;
    req_.fail(ErrorKind::kRequestTimedOut);
    return;
  }
  if (now >= io_deadline_) {
    if (state_ == State::kConnecting) {
      LOG_WARN("connect to upstream %s timed out", pool_->address().text.c_str());
      dropConnection();
      last_error_ = ErrorKind::kUpstreamTimedOut;
      tryPeer(false);
      return;
    }
    upstreamFailed(ErrorKind::kUpstreamTimedOut,
                   tunnel_                                 ? "tunnel idle for the read timeout"
                   : conn_ && conn_->out.readable() > 0 ? "send timed out"
                                                          : "read timed out",
                   0);
    return;
  }
  armTimer();
}

}  // namespace subgate
