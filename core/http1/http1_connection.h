// The server side of one HTTP/1.1 client connection: reads and parses request heads in place,
// runs each request through the pipeline, streams request bodies to the request's BodySink and
// response bodies to the socket with back-pressure, keeps the connection alive and answers
// pipelined requests in order.
//
// I/O: one edge-triggered libevent event for read and write, registered once; a short read or
// write means the kernel buffer is drained or full until the next edge, so no syscall is spent
// on EAGAIN in the common case. Request heads are read, and a response's end (and a flush)
// written, at the end of the loop turn with the worker's other small reads and writes
// (core/net/io_batch.h); bodies and larger pieces are read and written at once. Timeouts share one
// lazily re-armed timer. On `listen ... ssl` the connection first completes a TLS handshake (within
// client_header_timeout); from then on what the socket reads is decrypted by a tls::Channel and
// what is written encrypted by it, and reads continue until the channel wants more bytes and the
// socket is drained (a short TLS read says nothing about the socket).
//
// Threading: owned by its Worker, used only on that worker's thread. It deletes itself when
// closed, never from inside a call a module made (those are deferred to the next loop turn).
#pragma once

#include <event2/event.h>
#include <event2/event_struct.h>  // events embedded in the object: no allocation each
#include <sys/socket.h>

#include <memory>
#include <string>

#include "core/connection/client_connection.h"
#include "core/http1/http1_parser.h"
#include "core/net/io_batch.h"
#include "core/net/io_buffer.h"
#include "core/net/lazy_timer.h"
#include "core/pipeline/request.h"
#include "core/tls/tls_channel.h"

namespace subgate {

class Http1Connection final : public ClientConnection,
                              public RequestTransport,
                              private IoBatch::Writer,
                              private IoBatch::Reader {
 public:
  Http1Connection(ConnectionHost& host, int fd, const sockaddr* peer, const ListenerSlot& listener);
  ~Http1Connection() override;

  void start();
  // Graceful shutdown: close now if no request is in progress, else after the current one.
  void drain() override;

  // RequestTransport
  void transportSendHead(const ResponseHead& head,
                         std::span<const std::pair<std::string, std::string>> extra) override;
  bool transportSendBody(std::string_view data) override;
  void transportEndResponse(std::string_view trailers) override;
  void transportFlush() override;
  void transportStartBody() override;
  void transportResumeBody() override;
  void transportAbort() override;
  std::string_view transportProtocol() const override {
    return parser_.head().version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
  }

 private:
  enum class State { kHandshake, kHead, kRequest, kLingering };
  enum class BodyMode { kNone, kDeliver, kDiscard };

  static void onSocketEvent(evutil_socket_t fd, short what, void* arg);
  static void onTimer(evutil_socket_t fd, short what, void* arg);
  static void onDeferred(evutil_socket_t fd, short what, void* arg);

  void handleReadable();
  void handleWritable();
  // TLS listeners: drives the handshake; on success goes on as a plain connection.
  void advanceHandshake();
  void handleTimeout();
  void parseHead();
  void startRequest();
  void rejectHead(ErrorKind kind, const char* message);
  bool readInto(IoBuffer& buffer, size_t max_bytes);  // false on EOF or error (sets peer_closed_)
  bool readTls(IoBuffer& buffer, size_t want);        // readInto on TLS
  // Reads and parses request heads directly until one is complete or the socket is drained.
  void readHead();
  void pumpBody();
  bool bodyComplete() const;
  // Writes out_ followed by up to two more pieces now; keeps what the socket refuses.
  void writeOut(std::string_view extra_a = {}, std::string_view extra_b = {});
  // Writes out_ at the end of this loop turn with the worker's other writes (or now, without a
  // send batch, when the socket is full, or in a tunnel).
  void flushOut();
  int prepareBatchedSend(iovec* iov, int& fd) override;
  void batchedSendSettle(ssize_t result) override;
  void batchedSendDone(ssize_t result) override;
  // A request head's read, made by the worker's batch at the end of the loop turn.
  int prepareBatchedRecv(iovec* iov, int& fd) override;
  void batchedRecvSettle(ssize_t result) override;
  void batchedRecvDone(ssize_t result) override;
  // What follows a write: the request's end once everything is out, the handler's resume once
  // the buffer fell below the low-water mark (it was above it before the write: `was_high`).
  void afterWrite(bool was_high);
  void writeTls(std::string_view extra_a, std::string_view extra_b);
  // TLS: moves out_ into the channel's wireOut() as records; false (fatal()) on a TLS error.
  bool encryptOut();
  // The bytes the socket writes from: the channel's on TLS, else out_.
  IoBuffer& wireOut() { return tls_ ? tls_->wireOut() : out_; }
  // Response bytes not yet on the socket.
  size_t unsent() const { return out_.readable() + (tls_ ? tls_->wireOut().readable() : 0); }
  void scheduleDeferred();
  // A fatal I/O error or abort: stop all I/O now, close on the next loop turn.
  void fatal();
  // The 101 answer to an Upgrade request; switches the connection to a tunnel.
  void sendSwitchingProtocols(const ResponseHead& head);
  void maybeFinishRequest();
  void finishRequest();
  void close();
  void beginLingeringClose();
  // TLS: close_notify, once, if the socket takes it now (nothing on a broken connection).
  void sendCloseNotify();
  void refreshTimer();
  void destroyIfDone();
  // ALPN chose h2, or a plaintext http2 listener saw the h2c preface: hand the socket (and TLS
  // session, and the bytes read so far) to an Http2Connection and close this one.
  void handOffToHttp2();
  // A plaintext http2 listener: true while in_ may still become the h2c preface.
  bool maybeHttp2Preface();

  ConnectionHost& host_;
  const ListenerSlot& listener_;
  int fd_;
  std::string remote_ip_;
  event* ev_ = nullptr;
  LazyTimer timer_;
  event deferred_{};
  SteadyTime deadline_{SteadyTime::max()};

  State state_ = State::kHead;
  bool readable_ = true;
  bool writable_ = true;
  bool peer_closed_ = false;
  bool rdhup_ = false;  // EPOLLRDHUP seen
  bool closed_ = false;
  bool broken_ = false;
  bool head_deadline_set_ = false;
  bool draining_ = false;
  int callback_depth_ = 0;

  // TLS listeners: the session; what the socket reads is decrypted by it, what is written to the
  // socket is encrypted by it.
  std::unique_ptr<tls::Channel> tls_;
  // TLS: the socket was drained (a short read or EAGAIN) since its last read edge; readable_
  // stays true while the channel may still hold a record.
  bool wire_drained_ = false;
  const ListenConf* listen_conf_ = nullptr;  // of config_ (the listener's may change on reload)
  bool http2_ = false;  // listen_conf_->http2, kept: listen_conf_ dies with a reloaded config_

  IoBuffer in_;     // request heads (and body bytes that arrived with them); pinned per request
  IoBuffer spill_;  // reads while a request is in progress: body bytes, pipelined requests
  IoBuffer out_;    // response bytes not yet written
  http1::HeadParser parser_;
  http1::ChunkedDecoder chunked_;
  Request req_;
  std::shared_ptr<const RuntimeConfig> config_;

  // Per request.
  size_t in_used_ = 0;             // bytes of in_ the current request occupies (head + body)
  size_t batched_read_want_ = 0;   // the size of the batched head read in flight
  bool batched_was_high_ = false;  // out_ was above kOutLowWater before the batched send
  uint64_t body_remaining_ = 0;    // content-length bytes still to come
  uint64_t body_discarded_ = 0;
  BodyMode body_mode_ = BodyMode::kNone;
  bool body_done_ = true;
  bool body_paused_ = false;
  bool continue_sent_ = false;
  bool response_chunked_ = false;
  // A 101 answered an Upgrade request: from then on the connection is a byte tunnel (client
  // bytes go to the body sink until the client closes; the response body is raw).
  bool tunnel_ = false;
  bool response_done_ = false;
  bool response_bodiless_ = false;
  bool keep_alive_ = true;
  bool finish_scheduled_ = false;
  bool abort_scheduled_ = false;
  bool pump_scheduled_ = false;  // pumpBody() used its turn's share: it goes on from onDeferred
  uint32_t requests_ = 0;
};

}  // namespace subgate
