// Proxies one request to an HTTP/1.1 upstream: takes a connection from the peer's pool (or
// connects), writes the request head and streams the body, parses the response head, streams
// the response body back, and returns the connection to the pool when the exchange ended
// cleanly. Maps every upstream failure to the error table; retries another peer when a connect
// fails, and once on a fresh connection when a reused keep-alive connection was closed under it.
//
// Used by content handlers (proxy_pass, isolates) through PeerSelector. An Upgrade request
// (WebSocket) that the upstream answers with 101 becomes a tunnel: bytes flow both ways until a
// side closes, or nothing flows for read_timeout.
// The request head (with whatever body is at hand) is written, and the response head read, at
// the end of the loop turn together with the worker's other small reads and writes
// (core/net/io_batch.h).
// Lifetime: owned by the Request as its RequestTask; destroyed when the request ends or dies,
// closing any upstream connection it still holds.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/net/io_batch.h"
#include "core/pipeline/request.h"
#include "core/upstream/connection_pool.h"

namespace subgate {

// Chooses where a request goes. next() is called for the first try and again after each failed
// connect; it returns nullptr when no candidate is left.
class PeerSelector {
 public:
  virtual ~PeerSelector() = default;
  virtual ConnectionPool* next(Request& req) = 0;
  // Error reported when next() returns nullptr for the first try (e.g. every server at max_conns).
  virtual ErrorKind noPeerError() const { return ErrorKind::kUpstreamError; }
  // The exchange with the chosen peer failed with `kind`: the error the client gets, and
  // optionally the message for it (e.g. an isolate that crashed gives DEPLOYMENT_FAILED).
  virtual ErrorKind mapFailure(ErrorKind kind, std::string& /*message*/) { return kind; }
};

struct ProxyOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds read_timeout{60000};
  std::chrono::milliseconds send_timeout{60000};
};

class ProxySession final : public RequestTask,
                           public BodySink,
                           public UpstreamConnection::Handler,
                           private IoBatch::Writer,
                           private IoBatch::Reader {
 public:
  ProxySession(Request& req, std::unique_ptr<PeerSelector> selector, const ProxyOptions& options);
  ~ProxySession() override;

  // Starts the exchange. The session must already be the request's task.
  void start();

  // RequestTask
  void onClientDrained() override;
  // BodySink
  bool onBodyData(std::string_view data) override;
  void onBodyEnd(std::string_view trailers) override;
  // UpstreamConnection::Handler
  void onUpstreamEvent(short what) override;
  void onUpstreamTimer() override;

 private:
  enum class State { kIdle, kConnecting, kWaitingHead, kBody, kDone };

  void tryPeer(bool same_pool);
  void connected();
  void writeRequestHead();
  // Writes conn_->out now, as far as the socket takes it.
  void writeUpstream();
  // Writes conn_->out at the end of this loop turn (now without a send batch, or in a tunnel).
  void sendUpstream();
  int prepareBatchedSend(iovec* iov, int& fd) override;
  void batchedSendSettle(ssize_t result) override;
  void batchedSendDone(ssize_t result) override;
  // Bookkeeping after `n` bytes of conn_->out went out.
  void wroteUpstream(size_t n);
  // What follows writes: the tunnel's half-close, the response deadline, the body's resume.
  void afterUpstreamWrite();
  // Reads the upstream: the response head at the end of the loop turn (with the worker's other
  // small reads), anything else now.
  void readUpstream();
  void readUpstreamNow();
  int prepareBatchedRecv(iovec* iov, int& fd) override;
  void batchedRecvSettle(ssize_t result) override;
  void batchedRecvDone(ssize_t result) override;
  enum class ReadOutcome { kMore, kStop, kGone };  // read on; stop reading; the exchange moved on
  // Commits one read's bytes (result > 0) to conn_->in; a read shorter than `want` drained the
  // socket until its next edge. Called as soon as the read is made, batched or not.
  void commitRead(ssize_t result, size_t want);
  // Handles one committed read's result (bytes, 0 at the end, -errno).
  ReadOutcome tookRead(ssize_t result);
  // What follows reads: the client flush, the tunnel's buffer, the fairness bound's next turn.
  void afterUpstreamRead();
  bool parseHead();
  // The upstream answered an Upgrade request with 101: pass it on and tunnel bytes both ways.
  void startTunnel();
  bool retryStale();
  bool forwardBody();
  void finishExchange(std::string_view trailers);
  void upstreamFailed(ErrorKind kind, const char* what, int error);
  void dropConnection();
  void armTimer();
  void handleTimeout();

  Request& req_;
  std::unique_ptr<PeerSelector> selector_;
  ProxyOptions options_;
  ConnectionPool* pool_ = nullptr;
  std::unique_ptr<UpstreamConnection> conn_;
  State state_ = State::kIdle;
  bool body_started_ = false;        // request body bytes went to the upstream: no retry
  bool body_end_ = false;            // the whole request body has been handed to us
  bool client_paused_ = false;       // the client side asked us to hold the response
  bool client_body_paused_ = false;  // we asked the client side to hold the request body
  int attempts_ = 0;
  ErrorKind last_error_ = ErrorKind::kUpstreamError;
  bool retried_stale_ = false;
  bool chunked_request_ = false;
  std::string chunked_end_;  // the chunked body's last chunk and trailers, once it ended
  size_t batched_read_want_ = 0;
  bool tunnel_ = false;         // after a 101: raw bytes both ways, idle timeout = read_timeout
  bool upstream_shut_ = false;  // the client's end of the tunnel was passed on (SHUT_WR)
  uint64_t response_remaining_ = 0;
  http1::BodyFraming response_framing_ = http1::BodyFraming::kNone;
  bool response_keep_alive_ = true;
  std::chrono::steady_clock::time_point io_deadline_{};
};

// Appends the request head the upstream gets: method, target, HTTP/1.1, end-to-end headers,
// X-Forwarded-For, Via and the body framing. Exposed for unit tests.
void buildUpstreamRequestHead(const Request& req, IoBuffer& out);

// Appends the request trailer lines ("name: value\r\n"...) an upstream may get: hop-by-hop,
// framing and host fields are dropped. Exposed for unit tests.
void appendForwardedTrailers(std::string_view lines, std::string& out);

}  // namespace subgate
