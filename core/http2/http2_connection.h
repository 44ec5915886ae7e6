// The server side of one HTTP/2 client connection (ALPN h2 on `listen ... ssl http2`, or h2c by
// prior knowledge on a plaintext `listen ... http2`), taken over from the Http1Connection that
// accepted it. An nghttp2 server session frames the bytes; each stream runs one Request whose
// transport is the stream.
//
// I/O: one edge-triggered libevent event, like Http1Connection; input is fed to
// nghttp2_session_mem_recv, output comes from nghttp2_session_mem_send into out_ and is written
// to the socket. On TLS, a tls::Channel decrypts what is read and encrypts out_ before it is
// written. Reads and writes join the worker's batch of the loop turn (core/net/io_batch.h).
// Transport calls only queue (frames, stream bytes) and schedule a deferred pass that produces and
// writes the frames, so nghttp2 is never entered from inside its own callbacks and no module call
// is re-entered from inside its own call.
//
// Flow control follows back-pressure: the connection window is given back as bytes arrive, a
// stream's window only as its request's BodySink takes the bytes. A stream's response buffer
// above kHttp2StreamHighWater makes sendBody() return false; the task hears onClientDrained()
// once nghttp2 has taken it below kHttp2StreamLowWater. Streams (their response framing,
// trailers both ways, RFC 8441 WebSocket tunnels) are in http2_stream.h.
//
// SETTINGS: MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_HEADER_LIST_SIZE and
// ENABLE_CONNECT_PROTOCOL=1 (WebSockets by extended CONNECT).
//
// Threading: owned by its Worker, used only on that worker's thread. Closed streams (and the
// connection itself) are deleted from the event loop, never inside a call a module made.
#pragma once

#include <event2/event.h>
#include <event2/event_struct.h>
#include <nghttp2/nghttp2.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/connection/client_connection.h"
#include "core/http2/request_head.h"
#include "core/net/clock.h"
#include "core/net/io_batch.h"
#include "core/net/io_buffer.h"
#include "core/net/lazy_timer.h"
#include "core/pipeline/request.h"
#include "core/tls/tls_channel.h"

namespace subgate {

class Http2Connection final : public ClientConnection,
                              private IoBatch::Writer,
                              private IoBatch::Reader {
 public:
  // `tls`: the session of a TLS listener (its handshake complete), else null.
  Http2Connection(ConnectionHost& host, int fd, std::unique_ptr<tls::Channel> tls,
                  std::string remote_ip, const ListenerSlot& listener,
                  std::shared_ptr<const RuntimeConfig> config, const ListenConf* listen);
  ~Http2Connection() override;

  // `initial`: bytes the HTTP/1.1 side read already (the h2c preface and what followed).
  void start(std::string_view initial);
  // Graceful (shutdown, reload): a GOAWAY shutdown notice and a PING; once the PING is
  // acknowledged (or after a second) the final GOAWAY names the last stream the client opened.
  // Open streams (WebSocket tunnels included) finish, then the connection closes.
  void drain() override;
  // A reload: drain(), so that the client opens a new connection, which serves the new config
  // from its first stream on (certificates, listen options and limits included).
  void configReloaded() override { drain(); }

 private:
  class Stream;

  static void onSocketEvent(evutil_socket_t fd, short what, void* arg);
  static void onTimer(evutil_socket_t fd, short what, void* arg);
  static void onDeferred(evutil_socket_t fd, short what, void* arg);

  // nghttp2 callbacks
  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame*, void*);
  static int onHeader(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t,
                      const uint8_t*, size_t, uint8_t, void*);
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame*, void*);
  static int onDataChunk(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t, void*);
  static int onStreamClose(nghttp2_session*, int32_t, uint32_t, void*);
  static int onFrameSend(nghttp2_session*, const nghttp2_frame*, void*);
  static ssize_t readResponse(nghttp2_session*, int32_t, uint8_t*, size_t, uint32_t*,
                              nghttp2_data_source*, void*);

  bool setUpSession();
  // Reads and feeds the client's bytes: on plaintext, the first read joins the loop turn's
  // batch (batchedRecvDone feeds it and reads the rest with readNow()).
  void handleReadable();
  void readNow();
  // Hands what was read into wireIn() to nghttp2 (decrypted on TLS); false: the connection or
  // its session ended.
  bool consumeInput();
  bool decryptAndFeed();
  bool feed(const char* data, size_t size);  // false: the session failed (connection closes)
  void startStream(Stream& stream, bool end_stream);
  void pumpBody(Stream& stream);
  // The stream's trailer section passed kHttp2MaxRequestTrailerBytes: fails its request.
  void refuseTrailers(Stream& stream);
  void countReset();
  // The second GOAWAY of drain(): streams after the last one processed are refused.
  void finishDrain();
  // Produces frames into out_ and writes them; then tells drained streams, reaps closed ones.
  void afterIo();
  void sendOutput();
  // Writes out_ now, as far as the socket takes it.
  void writeOut();
  // Writes out_ at the end of the loop turn (now without a send batch, or when much is waiting).
  void flushOut();
  // TLS: moves out_ into the channel's wireOut() as records; false (and closed) on a TLS error.
  bool encryptOut();
  // The bytes the socket reads into and writes from: the channel's on TLS, else read_buf_, out_.
  IoBuffer& wireIn() { return tls_ ? tls_->wireIn() : read_buf_; }
  IoBuffer& wireOut() { return tls_ ? tls_->wireOut() : out_; }
  // Bytes produced for the client and not yet on the socket.
  size_t unsent() const { return out_.readable() + (tls_ ? tls_->wireOut().readable() : 0); }
  int prepareBatchedSend(iovec* iov, int& fd) override;
  void batchedSendSettle(ssize_t result) override;
  void batchedSendDone(ssize_t result) override;
  // Reads, made by the worker's batch at the end of the loop turn.
  int prepareBatchedRecv(iovec* iov, int& fd) override;
  void batchedRecvSettle(ssize_t result) override;
  void batchedRecvDone(ssize_t result) override;
  void scheduleDeferred();
  void reapStreams();
  // Streams are reused: a finished one keeps its Request, head builder and buffers (and their
  // capacity) for the next stream of this connection, up to kSpareStreams of them.
  Stream* takeStream(int32_t id);
  void retireStream(Stream* stream);
  void close();
  void destroyIfDone();
  void refreshTimer();
  void handleTimeout();

  ConnectionHost& host_;
  const ListenerSlot& listener_;
  int fd_;
  std::unique_ptr<tls::Channel> tls_;
  std::string remote_ip_;
  std::shared_ptr<const RuntimeConfig> config_;
  const ListenConf* listen_conf_;
  http1::Limits limits_;

  event* ev_ = nullptr;
  LazyTimer timer_;
  event deferred_{};
  bool deferred_pending_ = false;
  SteadyTime last_write_{};
  SteadyTime deadline_{SteadyTime::max()};

  nghttp2_session* session_ = nullptr;
  IoBuffer out_;
  IoBuffer read_buf_;  // plaintext: a read's bytes, until fed to nghttp2
  size_t batched_read_want_ = 0;
  bool readable_ = true;
  bool writable_ = true;
  bool rdhup_ = false;  // EPOLLRDHUP seen: read on to the EOF even after a short read
  bool closed_ = false;
  bool draining_ = false;
  bool drain_final_ = false;  // the final GOAWAY of drain() was submitted
  SteadyTime drain_deadline_{};
  bool goaway_sent_ = false;
  bool failed_ = false;  // a callback asked for the connection to end
  bool any_stream_ = false;
  int callback_depth_ = 0;
  std::vector<Stream*> streams_;
  std::vector<Stream*> spare_streams_;  // finished streams ready for reuse
  std::vector<Stream*> reaped_;         // reapStreams()' scratch list (keeps its capacity)

  // Rapid reset defence: client RST_STREAMs in the current and the previous second.
  SteadyTime reset_window_{};
  uint32_t resets_now_ = 0;
  uint32_t resets_before_ = 0;
};

}  // namespace subgate
