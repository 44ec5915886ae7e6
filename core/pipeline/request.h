// One client request as the phase pipeline and modules see it, independent of the client
// protocol. The protocol side (Http1Connection, each stream of an Http2Connection) implements
// RequestTransport.
//
// Threading: a Request lives on one worker thread; every call happens there.
// Lifetime: owned by its transport; valid from begin() until the log phase has run. Modules
// that start async work hold a RequestTask, which the Request cancels if it dies first.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error/error_kind.h"
#include "core/http1/http1_parser.h"
#include "core/net/clock.h"
#include "core/pipeline/config_model.h"
#include "core/pipeline/route.h"

namespace subgate {

class Worker;

// A response subgate produces itself (return, errors). Reply filters may edit it.
struct LocalReply {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<ErrorKind> error;  // set for failures; error_header renders it
  std::string error_message;
};

// The head of a streamed response (from an upstream or an isolate).
struct ResponseHead {
  int status = 200;
  std::string_view reason;
  // End-to-end headers only: the producer has removed hop-by-hop and framing headers.
  std::span<const http1::HeaderField> headers;
  std::optional<uint64_t> content_length;  // nullopt: length unknown (chunked / close-delimited)
  bool bodiless = false;  // HEAD request, 204, 304: no body follows whatever the headers say
};

// What the response-head filters do to a final response head on its way to the client: they see
// its status and add or remove headers; the Request applies the edits when it hands the head to
// the transport. Framing headers stay subgate's: filters never set them.
class ResponseHeadEdit {
 public:
  using Header = std::pair<std::string, std::string>;
  explicit ResponseHeadEdit(int status) : status_(status) {}
  int status() const { return status_; }
  // Adds a header after the producer's (a name already there gets a second field).
  void add(std::string name, std::string value) {
    added_.emplace_back(std::move(name), std::move(value));
  }
  // Drops every field called `name` (any case) that the producer set.
  void remove(std::string name) { removed_.push_back(std::move(name)); }

  std::span<const Header> added() const { return added_; }
  bool removes(std::string_view name) const;
  bool removesAny() const { return !removed_.empty(); }

 private:
  int status_;
  std::vector<Header> added_;
  std::vector<std::string> removed_;
};

// A module's per-request state (Request::state<T>()): one object per Request and module, reused
// for the next request on the same connection or stream.
class ModuleRequestState {
 public:
  virtual ~ModuleRequestState() = default;
  // The request ended: forget it (keep allocations).
  virtual void clear() = 0;
};

// Receives the request body as it streams in.
class BodySink {
 public:
  virtual ~BodySink() = default;
  // A piece of body; the bytes are only valid during the call. Return false when no more can
  // be taken now: the transport stops reading until Request::resumeBody().
  virtual bool onBodyData(std::string_view data) = 0;
  // The whole body has arrived. `trailers` holds raw trailer lines of a chunked body.
  virtual void onBodyEnd(std::string_view trailers) = 0;
};

// Async work a content handler runs for a request (a proxy session, a boot wait).
class RequestTask {
 public:
  virtual ~RequestTask() = default;
  // The client side can take more response bytes again after sendBody() returned false.
  virtual void onClientDrained() {}
};

// What a Request needs from the client protocol. Implemented by Http1Connection and by each
// stream of an Http2Connection.
class RequestTransport {
 public:
  virtual ~RequestTransport() = default;
  virtual void transportSendHead(const ResponseHead& head,
                                 std::span<const std::pair<std::string, std::string>> extra) = 0;
  virtual bool transportSendBody(std::string_view data) = 0;
  virtual void transportEndResponse(std::string_view trailers) = 0;
  virtual void transportFlush() = 0;
  virtual void transportStartBody() = 0;   // begin delivering body bytes to the sink
  virtual void transportResumeBody() = 0;  // the sink can take more
  virtual void transportAbort() = 0;       // response cannot complete: reset the client side
  // The client's protocol as nginx's $server_protocol writes it: "HTTP/1.0", "HTTP/1.1",
  // "HTTP/2.0" (the access log).
  virtual std::string_view transportProtocol() const = 0;
  // The status the client gets for a response head with `status` (what the log records): an
  // HTTP/2 stream answers an extended CONNECT's 101 with 200 (RFC 8441) and sends no other 1xx.
  virtual int transportStatus(int status) const { return status; }
};

class Request {
 public:
  Request() = default;
  // A tunnel still counted open is counted closed (its connection went away before the log
  // phase ran).
  ~Request() { noteTunnelClosed(); }
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  // ---- set up by the transport
  void begin(RequestTransport* transport, Worker* worker,
             std::shared_ptr<const RuntimeConfig> config, const ServerConf* server,
             const http1::MessageHead* head, std::string_view remote_addr);
  bool active() const { return head_ != nullptr; }
  // Runs the pipeline from the first phase.
  void run();
  // Marks the client as gone (or a fatal transport error): cancels any task.
  void cancel();
  // Clears everything for the next request on the connection (keeps allocations).
  void reset();

  // ---- what the client sent
  const http1::MessageHead& head() const { return *head_; }
  std::string_view method() const { return head_->method; }
  std::string_view target() const { return head_->target; }
  std::string_view path() const { return head_->path; }
  std::string_view query() const { return head_->query; }
  std::string_view header(std::string_view name) const { return head_->find(name); }
  std::string_view remoteAddress() const { return remote_addr_; }
  // Whether the client connection is TLS (set by the transport after begin()).
  bool secure() const { return secure_; }
  void setSecure(bool secure) { secure_ = secure; }
  // An HTTP/2 extended CONNECT (RFC 8441) carried as an HTTP/1.1 upgrade: its client reads any
  // 2xx as "tunnel open", so only a 101 from the upstream may answer it with success.
  bool extendedConnect() const { return extended_connect_; }
  void setExtendedConnect(bool extended) { extended_connect_ = extended; }
  bool hasBody() const { return head_->framing != http1::BodyFraming::kNone; }

  // ---- request id and trace context (request_trace.h), settled when the pipeline starts (or
  // when an answer comes first), from the location's request_id and trace_child_span
  // The request's id: the client's first x-request-id when well-formed, else a new one; empty
  // with `request_id off`. Sent back on every response, logged.
  std::string_view requestId() const { return id_header_.second; }
  // True when the upstream gets requestId() instead of the client's x-request-id fields (the
  // client sent none, a malformed one, or several).
  bool replacesRequestId() const { return replace_id_; }
  // The trace id of the client's well-formed traceparent; empty otherwise.
  std::string_view traceId() const { return trace_id_; }
  // With trace_child_span on and a well-formed traceparent: the traceparent the upstream gets
  // instead of the client's (a new parent id). Empty: the client's goes on unchanged.
  std::string_view childTraceParent() const { return child_traceparent_; }

  // ---- where it is served
  const RuntimeConfig& config() const { return *config_; }
  const ServerConf& server() const { return *server_; }
  const LocationConf& location() const { return *location_; }
  Worker& worker() const { return *worker_; }

  // ---- per-request values set by modules
  // The upstream's response head must arrive before this time (timeout module). Unset: none.
  void setResponseDeadline(SteadyTime deadline) { deadline_ = deadline; }
  std::optional<SteadyTime> responseDeadline() const { return deadline_; }
  // Where the request goes (core/pipeline/route.h: who writes which field).
  RouteDecision& route() { return route_; }
  const RouteDecision& route() const { return route_; }
  // The request's slot of `module` (its per-request state), created on first use and kept, after
  // ModuleRequestState::clear(), for the next request this Request object serves.
  template <class T>
  T& state(const Module& module) {
    std::unique_ptr<ModuleRequestState>& slot = slotOf(module);
    if (!slot) slot = std::make_unique<T>();
    return static_cast<T&>(*slot);
  }

  // ---- answering
  // A complete local response; runs reply filters, ends the request.
  void respond(LocalReply reply);
  // A failure answer per the error table; if the response already started, resets the client.
  void fail(ErrorKind kind, std::string_view message = {});
  // Streaming: head, body pieces (false = back-pressure, wait for RequestTask::onClientDrained),
  // end. flush() pushes what sendBody() buffered to the socket; producers call it at the end
  // of each batch so small pieces go out in one write.
  void sendHead(const ResponseHead& head);
  bool sendBody(std::string_view data);
  void flush();
  void endResponse(std::string_view trailers = {});
  bool responseStarted() const { return response_started_; }
  bool finished() const { return finished_; }

  // ---- request body
  void readBody(BodySink* sink);
  void resumeBody();
  BodySink* bodySink() const { return body_sink_; }

  // ---- async
  void setTask(std::unique_ptr<RequestTask> task) { task_ = std::move(task); }
  RequestTask* task() const { return task_.get(); }
  // Continues the pipeline after a hook returned kSuspend.
  void resume();

  // ---- for the log phase
  // The status the client got (after the transport's mapping), 0 before a response started.
  int status() const { return status_; }
  std::string_view protocol() const {
    if (transport_) return transport_->transportProtocol();
    return head_ && head_->version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";  // tests without one
  }
  uint64_t bodyBytesSent() const { return body_bytes_sent_; }
  std::optional<ErrorKind> errorKind() const { return error_; }
  SteadyTime startTime() const { return start_; }
  std::string_view upstreamAddress() const { return upstream_addr_; }
  void setUpstreamAddress(std::string_view address) { upstream_addr_.assign(address); }
  void addBodyBytesSent(uint64_t n) { body_bytes_sent_ += n; }
  // Request body bytes the transport handed to the body sink (after de-chunking).
  uint64_t bodyBytesReceived() const { return body_bytes_received_; }
  void addBodyBytesReceived(uint64_t n) { body_bytes_received_ += n; }
  // When the response head went to the transport (the client's time to first byte); unset
  // before a response started.
  std::optional<SteadyTime> responseStartTime() const { return response_start_; }
  // The isolates module (content): how long the request waited for an isolate (a boot, a spare,
  // a queue); zero when one was ready. And the isolate that served it ("iso-7"); empty when none.
  SteadyTime::duration isolateWait() const { return isolate_wait_; }
  void setIsolateWait(SteadyTime::duration wait) { isolate_wait_ = wait; }
  std::string_view isolateName() const { return isolate_name_; }
  void setIsolateName(std::string_view name) { isolate_name_.assign(name); }
  // Runs the log phase (called by the transport once the response is on the wire).
  void runLogPhase();

 private:
  void runFrom(size_t access_index);
  // Counts the request's WebSocket tunnel closed, once, if one opened (the gauge of open
  // WebSockets): from the log phase, or from reset() and the destructor when a transport went
  // away without running it.
  void noteTunnelClosed();
  // Settles the request id and trace context once per request.
  void startTrace();
  // Runs the response-head filters of the location over a final head; false when there are
  // none (the head goes out as produced).
  bool filterHead(int status, std::optional<ResponseHeadEdit>& edit) const;

  RequestTransport* transport_ = nullptr;
  Worker* worker_ = nullptr;
  std::shared_ptr<const RuntimeConfig> config_;
  const ServerConf* server_ = nullptr;
  const LocationConf* location_ = nullptr;
  const http1::MessageHead* head_ = nullptr;
  std::string remote_addr_;
  std::optional<SteadyTime> deadline_;
  std::unique_ptr<RequestTask> task_;
  BodySink* body_sink_ = nullptr;
  size_t next_hook_ = 0;
  bool response_started_ = false;
  bool finished_ = false;
  bool logged_ = false;
  bool secure_ = false;
  bool extended_connect_ = false;
  bool websocket_ = false;  // a tunnel opened (counted open until the log phase)
  int status_ = 0;
  uint64_t body_bytes_sent_ = 0;
  uint64_t body_bytes_received_ = 0;
  std::optional<SteadyTime> response_start_;
  SteadyTime::duration isolate_wait_{};
  std::string isolate_name_;
  std::optional<ErrorKind> error_;
  SteadyTime start_{};
  std::string upstream_addr_;
  bool traced_ = false;
  bool replace_id_ = false;
  std::pair<std::string, std::string> id_header_{"x-request-id", std::string()};
  std::string trace_id_;
  std::string child_traceparent_;
  RouteDecision route_;
  std::vector<std::unique_ptr<ModuleRequestState>> slots_;  // by Module::index()
  std::unique_ptr<ModuleRequestState>& slotOf(const Module& module);
};

}  // namespace subgate
