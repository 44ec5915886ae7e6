#include "core/server/http1_connection.h"

#include <openssl/err.h>

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "core/log/log.h"
#include "core/net/socket_address.h"
#include "core/server/worker.h"

namespace subgate {
namespace {

constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kSpillLimit = 64 * 1024;        // pipelined bytes buffered during a request
constexpr size_t kOutHighWater = 256 * 1024;     // above this, producers are told to pause
constexpr size_t kOutLowWater = 64 * 1024;       // below this, paused producers resume
constexpr size_t kCopyThreshold = 16 * 1024;     // smaller body pieces are copied and batched
constexpr uint64_t kMaxDiscard = 1 << 20;        // unread body bytes we skip to keep a connection
constexpr std::chrono::seconds kLingerTimeout{2};

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

Http1Connection::Http1Connection(Worker& worker, int fd, const sockaddr* peer,
                                 const ListenerSlot& listener)
    : worker_(worker),
      listener_(listener),
      fd_(fd),
      remote_ip_(formatSocketAddress(peer, false)),
      parser_(http1::HeadParser::Mode::kRequest) {}

Http1Connection::~Http1Connection() {
  if (ssl_) SSL_free(ssl_);
  if (ev_) event_free(ev_);
  event_del(&deferred_);
  if (fd_ >= 0) ::close(fd_);
}

void Http1Connection::start() {
  event_base* base = worker_.base();
  ev_ = event_new(base, fd_, EV_READ | EV_WRITE | EV_CLOSED | EV_PERSIST | EV_ET, onSocketEvent, this);
  timer_.assign(base, onTimer, this);
  event_assign(&deferred_, base, -1, 0, onDeferred, this);
  config_ = listener_.config;
  listen_conf_ = listener_.conf;
  http2_ = listen_conf_->http2;
  parser_.setLimits(listen_conf_->servers.front()->core.head_limits);
  if (listen_conf_->ssl) {
    ssl_ = listen_conf_->servers.front()->tls->newSession(fd_, listen_conf_);
    state_ = State::kHandshake;
  }
  if (!ev_ || event_add(ev_, nullptr) != 0 || (listen_conf_->ssl && !ssl_)) {
    LOG_ERROR("cannot set up a client connection");
    closed_ = true;
    destroyIfDone();
    return;
  }
  // Data usually arrives with or right after the accept: try to read at once.
  ++callback_depth_;
  handleReadable();
  --callback_depth_;
  destroyIfDone();
}

void Http1Connection::advanceHandshake() {
  ERR_clear_error();
  int result = SSL_do_handshake(ssl_);
  if (result == 1) {
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
    if (http2_ && alpn_len == 2 && alpn[0] == 'h' && alpn[1] == '2') {
      handOffToHttp2();
      return;
    }
    state_ = State::kHead;
    head_deadline_set_ = false;
    readable_ = true;  // the client's first request may already sit in OpenSSL's buffer
    handleReadable();
    return;
  }
  int error = SSL_get_error(ssl_, result);
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return;  // the next edge
  // Plaintext on a TLS port, an unknown CA, no common protocol: this connection only.
  LOG_DEBUG("TLS handshake with %s failed: %s", remote_ip_.c_str(),
            error == SSL_ERROR_SYSCALL && errno ? std::strerror(errno) : tls::lastError().c_str());
  ERR_clear_error();
  close();
}

void Http1Connection::onSocketEvent(evutil_socket_t, short what, void* arg) {
  auto* self = static_cast<Http1Connection*>(arg);
  ++self->callback_depth_;
  if (self->state_ == State::kHandshake) {
    self->advanceHandshake();
    --self->callback_depth_;
    self->destroyIfDone();
    return;
  }
  if (what & EV_WRITE) {
    self->writable_ = true;
    self->handleWritable();
  }
  if (what & EV_CLOSED) {
    // The client's FIN may have come with its last bytes: read until recv() says so.
    self->rdhup_ = true;
    what |= EV_READ;
  }
  if ((what & EV_READ) && !self->closed_) {
    self->readable_ = true;
    self->handleReadable();
  }
  --self->callback_depth_;
  self->destroyIfDone();
}

void Http1Connection::onTimer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Http1Connection*>(arg);
  self->timer_.fired();
  ++self->callback_depth_;
  if (steadyNow() >= self->deadline_) {
    self->handleTimeout();
  } else {
    self->refreshTimer();
  }
  --self->callback_depth_;
  self->destroyIfDone();
}

void Http1Connection::onDeferred(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Http1Connection*>(arg);
  ++self->callback_depth_;
  if (self->abort_scheduled_) {
    self->abort_scheduled_ = false;
    self->close();
  } else if (self->finish_scheduled_) {
    self->finish_scheduled_ = false;
    self->maybeFinishRequest();
  }
  --self->callback_depth_;
  self->destroyIfDone();
}

void Http1Connection::destroyIfDone() {
  if (closed_ && callback_depth_ == 0) {
    worker_.connectionClosed(this);
    delete this;
    return;
  }
  if (!closed_) refreshTimer();
}

// ---- reading

bool Http1Connection::readInto(IoBuffer& buffer, size_t max_bytes) {
  buffer.reserveForRead(std::min(max_bytes, kReadChunk));
  size_t want = std::min(buffer.writable(), max_bytes);
  if (ssl_) {
    size_t got = 0;
    switch (tls::readSome(ssl_, buffer.writePtr(), want, got)) {
      case tls::IoStatus::kDone:
        buffer.commit(got);
        return true;  // one record at most: the socket may hold more, read until OpenSSL says
      case tls::IoStatus::kWouldBlock:
        readable_ = false;
        return true;
      case tls::IoStatus::kClosed:
        break;
    }
    peer_closed_ = true;
    readable_ = false;
    return false;
  }
  // recv/sendmsg rather than read/writev: sockets need no file-position lock.
  ssize_t n = ::recv(fd_, buffer.writePtr(), want, 0);
  if (n > 0) {
    buffer.commit(static_cast<size_t>(n));
    // A short read means the socket is drained until the next edge.
    if (static_cast<size_t>(n) < want && !rdhup_) readable_ = false;
    return true;
  }
  if (n == 0) {
    peer_closed_ = true;
    readable_ = false;
    return false;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    readable_ = false;
    return true;
  }
  if (errno == EINTR) return true;
  peer_closed_ = true;
  readable_ = false;
  return false;
}

void Http1Connection::handleReadable() {
  switch (state_) {
    case State::kHandshake:
      advanceHandshake();
      return;
    case State::kHead: {
      // A request head, one read in the common case, joins the loop turn's batch.
      if (IoBatch* batch = IoBatch::forThisTurn(); batch && !ssl_ && readable_ && !closed_) {
        batch->queue(static_cast<IoBatch::Reader*>(this));
        return;
      }
      // Bounded: each pass reads at most one chunk; stop when drained or the head is complete.
      for (int i = 0; i < 64 && readable_ && state_ == State::kHead && !closed_; ++i) {
        if (!readInto(in_, kReadChunk)) {
          close();  // idle or incomplete: nothing sensible to answer
          return;
        }
        parseHead();
      }
      return;
    }
    case State::kRequest:
      if (body_mode_ != BodyMode::kNone && !body_done_) {
        if (!body_paused_) pumpBody();
        return;
      }
      // Read ahead (pipelining) and notice a client that goes away.
      if (spill_.readable() < kSpillLimit && readable_) {
        if (!readInto(spill_, kSpillLimit - spill_.readable())) {
          if (!response_done_ || out_.readable() > 0) {
            LOG_DEBUG("client %s closed the connection during a request", remote_ip_.c_str());
            req_.cancel();
          }
          close();
        }
      }
      return;
    case State::kLingering: {
      char sink[4096];
      for (int i = 0; i < 16; ++i) {
        ssize_t n = ::recv(fd_, sink, sizeof sink, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
          close();
          return;
        }
        if (n < 0) return;
      }
      return;
    }
  }
}

int Http1Connection::prepareBatchedRecv(iovec* iov, int& fd) {
  if (closed_ || state_ != State::kHead || !readable_) return 0;
  in_.reserveForRead(kReadChunk);
  batched_read_want_ = std::min(in_.writable(), kReadChunk);
  iov[0] = {in_.writePtr(), batched_read_want_};
  fd = fd_;
  return 1;
}

void Http1Connection::batchedRecvSettle(ssize_t result) {
  if (result <= 0) return;
  in_.commit(static_cast<size_t>(result));
  // A short read means the socket is drained until the next edge.
  if (static_cast<size_t>(result) < batched_read_want_ && !rdhup_) readable_ = false;
}

void Http1Connection::batchedRecvDone(ssize_t result) {
  ++callback_depth_;
  if (result > 0) {
    parseHead();
    if (!closed_ && state_ == State::kHead && readable_) handleReadable();  // queues the next read
  } else if (result == -EAGAIN || result == -EWOULDBLOCK) {
    readable_ = false;
  } else if (result == -EINTR) {
    handleReadable();
  } else {
    peer_closed_ = true;  // the end (0) or an error: idle or incomplete, nothing to answer
    readable_ = false;
    close();
  }
  --callback_depth_;
  destroyIfDone();
}

bool Http1Connection::maybeHttp2Preface() {
  static constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  if (!http2_ || ssl_ || requests_ > 0) return false;
  std::string_view data = in_.view();
  size_t n = std::min(data.size(), kPreface.size());
  if (data.substr(0, n) != kPreface.substr(0, n)) return false;
  if (n == kPreface.size()) handOffToHttp2();
  return true;
}

void Http1Connection::handOffToHttp2() {
  int fd = fd_;
  SSL* ssl = ssl_;
  fd_ = -1;
  ssl_ = nullptr;
  if (ev_) {
    event_free(ev_);  // before the new connection registers the same descriptor
    ev_ = nullptr;
  }
  closed_ = true;
  std::string initial(in_.view());
  in_.clear();
  // No request ran yet: config_ is still the one listen_conf_ belongs to.
  worker_.startHttp2(fd, ssl, remote_ip_, listener_, config_, listen_conf_, initial);
}

void Http1Connection::parseHead() {
  if (in_.readable() == 0) return;
  if (maybeHttp2Preface()) return;
  http1::ParseStatus status = parser_.parse(in_.view());
  if (status == http1::ParseStatus::kIncomplete) return;
  if (status == http1::ParseStatus::kError) {
    switch (parser_.error()) {
      case http1::ParseError::kUriTooLong:
        rejectHead(ErrorKind::kUriTooLong, parser_.errorMessage());
        break;
      case http1::ParseError::kHeaderTooLarge:
      case http1::ParseError::kTooManyHeaders:
        rejectHead(ErrorKind::kHeaderTooLarge, parser_.errorMessage());
        break;
      case http1::ParseError::kBodyTooLarge:
        rejectHead(ErrorKind::kPayloadTooLarge, parser_.errorMessage());
        break;
      default:
        rejectHead(ErrorKind::kBadRequest, parser_.errorMessage());
    }
    return;
  }
  startRequest();
}

void Http1Connection::rejectHead(ErrorKind kind, const char* message) {
  state_ = State::kRequest;
  keep_alive_ = false;
  body_done_ = true;
  body_mode_ = BodyMode::kNone;
  response_done_ = false;
  static const http1::MessageHead kEmptyHead;
  config_ = listener_.config;
  const ServerConf* server = listener_.conf->servers.front();
  req_.begin(this, &worker_, config_, server, &kEmptyHead, remote_ip_);
  req_.fail(kind, message);
}

void Http1Connection::startRequest() {
  const http1::MessageHead& head = parser_.head();
  state_ = State::kRequest;
  head_deadline_set_ = false;
  ++requests_;
  in_used_ = head.head_bytes;
  response_done_ = false;
  response_chunked_ = false;
  tunnel_ = false;
  response_bodiless_ = head.method == "HEAD";
  continue_sent_ = false;
  body_paused_ = false;
  body_discarded_ = 0;
  body_mode_ = BodyMode::kNone;
  keep_alive_ = head.keep_alive && !draining_;
  switch (head.framing) {
    case http1::BodyFraming::kContentLength:
      body_remaining_ = head.content_length;
      body_done_ = head.content_length == 0;
      break;
    case http1::BodyFraming::kChunked:
      body_done_ = false;
      chunked_.reset();
      break;
    default:
      body_done_ = true;
  }
  config_ = listener_.config;
  const ListenConf* listen = listener_.conf;
  const ServerConf& server = listen->findServer(head.find("host"));
  req_.begin(this, &worker_, config_, &server, &head, remote_ip_);
  req_.setSecure(ssl_ != nullptr);
  req_.run();
}

bool Http1Connection::bodyComplete() const { return body_done_; }

void Http1Connection::transportStartBody() {
  if (body_mode_ == BodyMode::kDeliver) return;
  body_mode_ = BodyMode::kDeliver;
  if (parser_.head().framing == http1::BodyFraming::kChunked) {
    uint64_t max = req_.location().core.max_body_bytes;
    chunked_ = http1::ChunkedDecoder(max ? max : UINT64_MAX);
  }
  if (body_done_) {
    BodySink* sink = req_.bodySink();
    body_mode_ = BodyMode::kNone;
    if (sink) sink->onBodyEnd({});
    return;
  }
  const http1::MessageHead& head = parser_.head();
  if (head.expect_continue && !continue_sent_ && in_.readable() == in_used_ && spill_.readable() == 0) {
    continue_sent_ = true;
    out_.append("HTTP/1.1 100 Continue\r\n\r\n");
    writeOut();
  }
  pumpBody();
}

void Http1Connection::transportResumeBody() {
  if (!body_paused_) return;
  body_paused_ = false;
  pumpBody();
}

// Moves request body bytes from the buffers (and the socket) to the sink until the body ends,
// the sink pushes back, or the socket is drained.
void Http1Connection::pumpBody() {
  const bool chunked = parser_.head().framing == http1::BodyFraming::kChunked;
  for (int guard = 0; guard < 1024 && !body_done_ && !body_paused_ && !closed_; ++guard) {
    std::string_view source;
    bool from_in = in_.readable() > in_used_;
    if (from_in) {
      source = in_.view().substr(in_used_);
    } else if (spill_.readable() > 0) {
      source = spill_.view();
    } else {
      if (!readable_) break;
      if (!readInto(spill_, kReadChunk)) {
        if (tunnel_) {
          // The client's end of a tunnel: the upstream gets its last bytes, then the end.
          body_done_ = true;
          body_mode_ = BodyMode::kNone;
          if (req_.bodySink()) req_.bodySink()->onBodyEnd({});
          return;
        }
        LOG_DEBUG("client %s closed the connection while sending the body", remote_ip_.c_str());
        fatal();
        return;
      }
      continue;
    }
    size_t used = 0;
    std::string_view piece;
    bool end = false;
    if (!chunked) {
      used = static_cast<size_t>(std::min<uint64_t>(body_remaining_, source.size()));
      piece = source.substr(0, used);
      body_remaining_ -= used;
      end = body_remaining_ == 0;
    } else {
      http1::ChunkedDecoder::Step step = chunked_.next(source);
      used = step.consumed;
      piece = step.data;
      if (step.state == http1::ChunkedDecoder::State::kError) {
        keep_alive_ = false;
        body_done_ = true;
        body_mode_ = BodyMode::kNone;
        if (chunked_.bodyTooLarge()) {
          req_.fail(ErrorKind::kPayloadTooLarge, "the request body is larger than client_max_body_size");
        } else {
          req_.fail(ErrorKind::kBadRequest, chunked_.errorMessage());
        }
        return;
      }
      end = step.state == http1::ChunkedDecoder::State::kDone;
      if (used == 0 && piece.empty() && !end) {
        // The decoder keeps partial state and consumes every byte it is given; a step that
        // takes nothing would loop forever, so treat it as a framing error.
        keep_alive_ = false;
        body_done_ = true;
        body_mode_ = BodyMode::kNone;
        req_.fail(ErrorKind::kBadRequest, "invalid chunked body");
        return;
      }
    }
    bool more = true;
    if (!piece.empty()) {
      if (body_mode_ == BodyMode::kDeliver && req_.bodySink()) {
        more = req_.bodySink()->onBodyData(piece);
      } else {
        body_discarded_ += piece.size();
      }
    }
    if (from_in) {
      in_used_ += used;
    } else {
      spill_.consume(used);
    }
    if (end) {
      body_done_ = true;
      if (body_mode_ == BodyMode::kDeliver && req_.bodySink()) {
        req_.bodySink()->onBodyEnd(chunked ? chunked_.trailers() : std::string_view());
      }
      body_mode_ = BodyMode::kNone;
      scheduleDeferred();  // finishing may destroy the caller's task: not inside its call
      return;
    }
    if (body_mode_ == BodyMode::kDiscard && body_discarded_ > kMaxDiscard) {
      keep_alive_ = false;
      beginLingeringClose();
      return;
    }
    if (!more) body_paused_ = true;
  }
  if (tunnel_) spill_.shrinkIfEmpty(0);  // idle tunnels hold no read buffer
  // Body delivery is often driven from the upstream's callbacks, not ours: re-arm here.
  refreshTimer();
}

// ---- writing

void Http1Connection::transportSendHead(const ResponseHead& head,
                                        std::span<const std::pair<std::string, std::string>> extra) {
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
  if (requests_ >= req_.location().core.keepalive_requests || worker_.shuttingDown()) keep_alive_ = false;
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

// TLS has no gather write: the pieces join out_, which is written record by record.
void Http1Connection::writeTls(std::string_view extra_a, std::string_view extra_b) {
  out_.append(extra_a);
  out_.append(extra_b);
  while (writable_ && out_.readable() > 0) {
    size_t written = 0;
    tls::IoStatus status = tls::writeSome(ssl_, out_.readPtr(), out_.readable(), written);
    if (status == tls::IoStatus::kDone) {
      out_.consume(written);
      continue;
    }
    if (status == tls::IoStatus::kWouldBlock) {
      writable_ = false;
      refreshTimer();  // send_timeout starts now, whoever called us
      break;
    }
    LOG_DEBUG("TLS write to client %s failed: %s", remote_ip_.c_str(), tls::lastError().c_str());
    fatal();
    return;
  }
  if (tunnel_) out_.shrinkIfEmpty(0);
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
  if (response_bodiless_ || data.empty() || closed_) return out_.readable() < kOutHighWater;
  if (response_chunked_) {
    appendHex(out_, data.size());
    out_.append("\r\n");
  }
  if (data.size() <= kCopyThreshold) {
    out_.append(data);
    if (response_chunked_) out_.append("\r\n");
    if (out_.readable() >= kOutHighWater) writeOut();
  } else {
    writeOut(data, response_chunked_ ? std::string_view("\r\n") : std::string_view());
  }
  return out_.readable() < kOutHighWater;
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

void Http1Connection::transportAbort() { fatal(); }

void Http1Connection::fatal() {
  keep_alive_ = false;
  broken_ = true;
  abort_scheduled_ = true;
  event_active(&deferred_, EV_TIMEOUT, 1);
}

void Http1Connection::scheduleDeferred() {
  finish_scheduled_ = true;
  event_active(&deferred_, EV_TIMEOUT, 1);
}

void Http1Connection::flushOut() {
  IoBatch* batch = IoBatch::forThisTurn();
  if (!batch || ssl_ || !writable_ || tunnel_) {
    writeOut();
    return;
  }
  batch->queue(static_cast<IoBatch::Writer*>(this));
}

int Http1Connection::prepareBatchedSend(iovec* iov, int& fd) {
  if (closed_ || broken_ || state_ == State::kLingering || !writable_ || out_.readable() == 0)
    return 0;
  iov[0] = {const_cast<char*>(out_.readPtr()), out_.readable()};
  fd = fd_;
  return 1;
}

void Http1Connection::batchedSendSettle(ssize_t result) {
  batched_was_high_ = out_.readable() >= kOutLowWater;
  size_t written = result > 0 ? static_cast<size_t>(result) : 0;
  if (written < out_.readable()) writable_ = false;  // the next edge says when there is room
  out_.consume(written);
}

void Http1Connection::batchedSendDone(ssize_t result) {
  ++callback_depth_;
  if (result < 0 && result != -EAGAIN && result != -EWOULDBLOCK) {
    LOG_DEBUG("write to client %s failed: %s", remote_ip_.c_str(),
              std::strerror(static_cast<int>(-result)));
    fatal();
  } else {
    afterWrite(batched_was_high_);
  }
  --callback_depth_;
  destroyIfDone();
}

// Writes out_ followed by up to two more pieces in one writev; keeps what the socket refuses.
void Http1Connection::writeOut(std::string_view extra_a, std::string_view extra_b) {
  if (closed_ || broken_ || state_ == State::kLingering) return;
  if (ssl_) {
    writeTls(extra_a, extra_b);
    return;
  }
  if (!writable_) {
    out_.append(extra_a);
    out_.append(extra_b);
    return;
  }
  iovec iov[3];
  int count = 0;
  if (out_.readable()) iov[count++] = {const_cast<char*>(out_.readPtr()), out_.readable()};
  if (!extra_a.empty()) iov[count++] = {const_cast<char*>(extra_a.data()), extra_a.size()};
  if (!extra_b.empty()) iov[count++] = {const_cast<char*>(extra_b.data()), extra_b.size()};
  if (count == 0) return;
  size_t total = 0;
  for (int i = 0; i < count; ++i) total += iov[i].iov_len;
  ssize_t n;
  do {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(count);
    n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      LOG_DEBUG("write to client %s failed: %s", remote_ip_.c_str(), std::strerror(errno));
      fatal();
      return;
    }
    n = 0;
  }
  size_t written = static_cast<size_t>(n);
  if (written < total) {
    writable_ = false;
    refreshTimer();  // send_timeout starts now, whoever called us
  }
  // Drop what went out of out_, then keep the unwritten rest of the extra pieces.
  size_t from_out = std::min(written, out_.readable());
  out_.consume(from_out);
  written -= from_out;
  for (std::string_view piece : {extra_a, extra_b}) {
    if (piece.empty()) continue;
    size_t from_piece = std::min(written, piece.size());
    written -= from_piece;
    if (from_piece < piece.size()) out_.append(piece.substr(from_piece));
  }
  // A tunnel idles most of its life (a WebSocket): hold no buffer memory while it does.
  if (tunnel_) out_.shrinkIfEmpty(0);
}

void Http1Connection::handleWritable() {
  if (state_ == State::kLingering || closed_) return;
  bool was_high = out_.readable() >= kOutLowWater;
  if (out_.readable() > 0) writeOut();
  afterWrite(was_high);
}

void Http1Connection::afterWrite(bool was_high) {
  if (closed_) return;
  if (out_.readable() == 0 && response_done_) {
    maybeFinishRequest();
    return;
  }
  if (was_high && out_.readable() < kOutLowWater && req_.task() && !req_.finished()) {
    req_.task()->onClientDrained();
  }
}

// ---- request end

void Http1Connection::maybeFinishRequest() {
  if (closed_ || state_ != State::kRequest || !response_done_ || out_.readable() > 0) return;
  if (!body_done_) {
    if (!keep_alive_) {
      finishRequest();
      return;
    }
    // The handler answered without reading the body: skip it, then go on.
    if (body_mode_ != BodyMode::kDiscard) {
      body_mode_ = BodyMode::kDiscard;
      body_paused_ = false;  // a sink's pause no longer matters: nobody reads these bytes
      pumpBody();
    }
    if (!body_done_) return;  // pumpBody calls back here when the body ends
  }
  finishRequest();
}

void Http1Connection::finishRequest() {
  req_.runLogPhase();
  req_.reset();
  if (!keep_alive_ || draining_) {
    beginLingeringClose();
    return;
  }
  // Keep only the bytes after this message (a pipelined request), at the front of in_.
  in_.consume(std::min(in_used_, in_.readable()));
  if (spill_.readable() > 0) {
    in_.append(spill_.view());
    spill_.clear();
  }
  in_used_ = 0;
  parser_.reset();
  state_ = State::kHead;
  body_mode_ = BodyMode::kNone;
  response_done_ = false;
  if (in_.readable() == 0) {
    in_.shrinkIfEmpty(64 * 1024);
    out_.shrinkIfEmpty(64 * 1024);
  }
  config_ = listener_.config;
  if (in_.readable() > 0) parseHead();
  if (state_ == State::kHead && readable_ && !closed_) handleReadable();
}

void Http1Connection::drain() {
  draining_ = true;
  keep_alive_ = false;
  if (state_ == State::kHead && in_.readable() == 0) {
    ++callback_depth_;
    close();
    --callback_depth_;
    destroyIfDone();
  }
}

void Http1Connection::beginLingeringClose() {
  if (closed_) return;
  if (state_ == State::kLingering) return;
  // Closing with unread request bytes in the kernel would send a reset that can destroy the
  // response before the client reads it: shut down our side and drain theirs briefly first.
  state_ = State::kLingering;
  if (ssl_) SSL_shutdown(ssl_);  // close_notify, best effort: the socket may be full
  ERR_clear_error();
  ::shutdown(fd_, SHUT_WR);
  deadline_ = steadyNow() + kLingerTimeout;
  handleReadable();
}

void Http1Connection::close() {
  if (closed_) return;
  closed_ = true;
  if (state_ == State::kRequest) req_.cancel();
  if (state_ == State::kRequest && !req_.finished()) req_.runLogPhase();
  req_.reset();
}

// ---- timeouts

void Http1Connection::refreshTimer() {
  if (closed_) return;
  const CoreConf& core = req_.active() ? req_.location().core : listener_.conf->servers.front()->core;
  SteadyTime now = steadyNow();
  switch (state_) {
    case State::kHandshake:
      if (!head_deadline_set_) {  // the handshake shares the head's client_header_timeout
        head_deadline_set_ = true;
        deadline_ = now + core.client_header_timeout;
      }
      break;
    case State::kHead:
      if (in_.readable() == 0) {
        head_deadline_set_ = false;
        deadline_ = now + (requests_ > 0 ? core.keepalive_timeout : core.client_header_timeout);
      } else if (!head_deadline_set_) {
        // The whole head must arrive within client_header_timeout of its first byte.
        head_deadline_set_ = true;
        deadline_ = now + core.client_header_timeout;
      }
      break;
    case State::kRequest:
      if (out_.readable() > 0 && !writable_) {
        deadline_ = now + core.send_timeout;
      } else if (!body_done_ && !body_paused_ && body_mode_ != BodyMode::kNone && !tunnel_) {
        // A tunnel may idle: its idle timeout is the proxy's, which sees both directions.
        deadline_ = now + core.client_body_timeout;
      } else {
        deadline_ = SteadyTime::max();
      }
      break;
    case State::kLingering:
      break;
  }
  if (deadline_ == SteadyTime::max()) return;
  timer_.arm(deadline_, now);
}

void Http1Connection::handleTimeout() {
  deadline_ = SteadyTime::max();
  switch (state_) {
    case State::kHandshake:
      LOG_DEBUG("TLS handshake with %s timed out", remote_ip_.c_str());
      close();
      return;
    case State::kHead:
      if (in_.readable() == 0) {
        close();
      } else {
        rejectHead(ErrorKind::kClientTimeout, "the request head did not arrive in time");
      }
      return;
    case State::kRequest:
      if (out_.readable() > 0 && !writable_) {
        LOG_INFO("client %s timed out reading the response", remote_ip_.c_str());
        req_.cancel();
        close();
      } else if (!body_done_) {
        keep_alive_ = false;
        if (req_.responseStarted()) {
          req_.cancel();
          close();
        } else {
          req_.fail(ErrorKind::kClientTimeout, "the request body did not arrive in time");
        }
      }
      return;
    case State::kLingering:
      close();
      return;
  }
}

}  // namespace subgate
