#include "core/pipeline/request.h"

#include "core/log/log.h"
#include "core/pipeline/deployment_counters.h"
#include "core/pipeline/request_counters.h"
#include "core/pipeline/request_trace.h"

namespace subgate {

void Request::begin(RequestTransport* transport, Worker* worker,
                    std::shared_ptr<const RuntimeConfig> config, const ServerConf* server,
                    const http1::MessageHead* head, std::string_view remote_addr) {
  transport_ = transport;
  worker_ = worker;
  config_ = std::move(config);
  server_ = server;
  location_ = &server->unmatched;
  head_ = head;
  remote_addr_.assign(remote_addr);
  start_ = std::chrono::steady_clock::now();
}

void Request::reset() {
  task_.reset();
  config_.reset();
  server_ = nullptr;
  location_ = nullptr;
  head_ = nullptr;
  deadline_.reset();
  body_sink_ = nullptr;
  next_hook_ = 0;
  response_started_ = false;
  finished_ = false;
  logged_ = false;
  secure_ = false;
  extended_connect_ = false;
  noteTunnelClosed();
  status_ = 0;
  body_bytes_sent_ = 0;
  body_bytes_received_ = 0;
  response_start_.reset();
  isolate_wait_ = {};
  isolate_name_.clear();
  error_.reset();
  upstream_addr_.clear();
  traced_ = false;
  replace_id_ = false;
  id_header_.second.clear();
  trace_id_.clear();
  child_traceparent_.clear();
  route_.clear();
  for (auto& slot : slots_)
    if (slot) slot->clear();
}

void Request::run() {
  location_ = &server_->match(head_->path);
  startTrace();
  uint64_t max_body = location_->core.max_body_bytes;
  if (max_body && head_->framing == http1::BodyFraming::kContentLength &&
      head_->content_length > max_body) {
    fail(ErrorKind::kPayloadTooLarge, "the request body is larger than client_max_body_size");
    return;
  }
  runFrom(0);
}

void Request::startTrace() {
  if (traced_ || !head_ || !location_) return;
  traced_ = true;
  const CoreConf& core = location_->core;
  if (core.request_id) {
    const http1::HeaderField* first = nullptr;
    size_t count = 0;
    for (const http1::HeaderField& field : head_->headers) {
      if (field.name.size() == 12 && http1::iequals(field.name, "x-request-id")) {
        if (!first) first = &field;
        ++count;
      }
    }
    if (first && isValidRequestId(first->value)) {
      id_header_.second.assign(first->value);
      replace_id_ = count > 1;  // the upstream gets the one that counts
    } else {
      newRequestId(id_header_.second);
      replace_id_ = true;
    }
  }
  TraceParent parent;
  if (parseTraceParent(head_->find("traceparent"), parent)) {
    trace_id_.assign(parent.trace_id);
    if (core.trace_child_span) subgate::childTraceParent(parent, child_traceparent_);
  }
}

void Request::resume() {
  if (finished_) return;
  runFrom(next_hook_);
}

void Request::runFrom(size_t hook_index) {
  // The access hooks, then the route hooks, counted as one sequence so that resume() goes on
  // after the hook that suspended.
  const auto& access = location_->access;
  const auto& route = location_->route;
  for (size_t i = hook_index; i < access.size() + route.size(); ++i) {
    next_hook_ = i + 1;
    const bool in_access = i < access.size();
    const HookEntry& hook = in_access ? access[i] : route[i - access.size()];
    const HookResult result =
        in_access ? hook.module->access(*this, *hook.conf) : hook.module->route(*this, *hook.conf);
    if (result != HookResult::kContinue || finished_) return;
  }
  if (route_.handler) {
    route_.handler->content(*this, *route_.handler_conf);
    return;
  }
  const HookEntry& content = location_->content;
  if (!content.module) {
    fail(ErrorKind::kNotFound);
    return;
  }
  content.module->content(*this, *content.conf);
}

void Request::cancel() {
  // The task may hold upstream resources; destroying it releases them without callbacks.
  task_.reset();
  body_sink_ = nullptr;
  finished_ = true;
}

void Request::respond(LocalReply reply) {
  if (finished_) return;
  if (response_started_) {
    transport_->transportAbort();
    finished_ = true;
    return;
  }
  for (const HookEntry& entry : location_->reply)
    entry.module->filterReply(*this, *entry.conf, reply);
  if (reply.error) error_ = reply.error;
  startTrace();
  std::vector<std::pair<std::string, std::string>> extra;
  extra.reserve(reply.headers.size() + 2);
  if (!reply.body.empty()) extra.emplace_back("content-type", reply.content_type);
  if (!requestId().empty()) {
    std::erase_if(reply.headers,
                  [](const auto& header) { return http1::iequals(header.first, "x-request-id"); });
    extra.push_back(id_header_);
  }
  for (auto& header : reply.headers) extra.push_back(std::move(header));
  std::optional<ResponseHeadEdit> edit;
  if (filterHead(reply.status, edit)) {
    std::erase_if(extra, [&](const auto& header) { return edit->removes(header.first); });
    for (const auto& [name, value] : edit->added()) extra.emplace_back(name, value);
  }
  ResponseHead head;
  head.status = reply.status;
  head.reason = reasonPhrase(reply.status);
  head.content_length = reply.body.size();
  head.bodiless = head_ && head_->method == "HEAD";
  status_ = transport_->transportStatus(reply.status);
  response_started_ = true;
  response_start_ = std::chrono::steady_clock::now();
  transport_->transportSendHead(head, extra);
  if (!head.bodiless && !reply.body.empty()) {
    transport_->transportSendBody(reply.body);
    body_bytes_sent_ += reply.body.size();
  }
  finished_ = true;
  transport_->transportEndResponse({});
}

void Request::fail(ErrorKind kind, std::string_view message) {
  if (finished_) return;
  const ErrorInfo& info = errorInfo(kind);
  error_ = kind;
  if (response_started_) {
    LOG_INFO("request %.*s %.*s failed after the response started: %.*s, request_id: %.*s",
             static_cast<int>(method().size()), method().data(), static_cast<int>(target().size()),
             target().data(), static_cast<int>(info.code.size()), info.code.data(),
             static_cast<int>(requestId().size()), requestId().data());
    finished_ = true;
    transport_->transportAbort();
    return;
  }
  LocalReply reply;
  reply.status = info.status;
  reply.error = kind;
  reply.error_message = message.empty() ? std::string(info.message) : std::string(message);
  respond(std::move(reply));
}

void Request::sendHead(const ResponseHead& head) {
  if (finished_ || response_started_) return;
  response_started_ = true;
  response_start_ = std::chrono::steady_clock::now();
  startTrace();
  status_ = transport_->transportStatus(head.status);
  // A tunnel opened (a WebSocket): a 101, or the 2xx that opens an extended CONNECT's tunnel.
  if (status_ == 101 || (extended_connect_ && status_ / 100 == 2)) {
    websocket_ = true;
    RequestCounters::note(RequestCounters::Event::kWebSocketOpened);
  }
  std::optional<ResponseHeadEdit> edit;
  // Most locations have no response-head filter: one test, and the head goes out with at most
  // the request id added.
  const bool filtered = !location_->head_filter.empty() && filterHead(head.status, edit);
  const bool with_id = !requestId().empty();
  bool producer_id = false;  // the producer set an x-request-id: ours replaces it
  if (with_id) {
    for (const http1::HeaderField& field : head.headers)
      if (field.name.size() == 12 && http1::iequals(field.name, "x-request-id")) producer_id = true;
  }
  const std::span<const ResponseHeadEdit::Header> id_extra(&id_header_, with_id ? 1 : 0);
  if (!filtered && !producer_id) {
    transport_->transportSendHead(head, id_extra);
    return;
  }
  std::vector<ResponseHeadEdit::Header> extra(id_extra.begin(), id_extra.end());
  if (filtered) extra.insert(extra.end(), edit->added().begin(), edit->added().end());
  if ((!filtered || !edit->removesAny()) && !producer_id) {
    transport_->transportSendHead(head, extra);
    return;
  }
  std::vector<http1::HeaderField> kept;
  kept.reserve(head.headers.size());
  for (const http1::HeaderField& field : head.headers) {
    if (filtered && edit->removes(field.name)) continue;
    if (producer_id && http1::iequals(field.name, "x-request-id")) continue;
    kept.push_back(field);
  }
  ResponseHead edited = head;
  edited.headers = kept;
  transport_->transportSendHead(edited, extra);
}

bool Request::filterHead(int status, std::optional<ResponseHeadEdit>& edit) const {
  if (location_->head_filter.empty() || status < 200) return false;
  edit.emplace(status);
  for (const HookEntry& entry : location_->head_filter)
    entry.module->filterHead(*this, *entry.conf, *edit);
  return true;
}

bool ResponseHeadEdit::removes(std::string_view name) const {
  for (const std::string& removed : removed_)
    if (http1::iequals(removed, name)) return true;
  return false;
}

bool Request::sendBody(std::string_view data) {
  if (finished_) return true;
  body_bytes_sent_ += data.size();
  return transport_->transportSendBody(data);
}

void Request::flush() {
  if (!finished_) transport_->transportFlush();
}

void Request::endResponse(std::string_view trailers) {
  if (finished_) return;
  finished_ = true;
  transport_->transportEndResponse(trailers);
}

void Request::readBody(BodySink* sink) {
  body_sink_ = sink;
  transport_->transportStartBody();
}

void Request::resumeBody() {
  if (body_sink_) transport_->transportResumeBody();
}

std::unique_ptr<ModuleRequestState>& Request::slotOf(const Module& module) {
  if (slots_.size() <= module.index()) slots_.resize(allModules().size());
  return slots_[module.index()];
}

void Request::noteTunnelClosed() {
  if (!websocket_) return;
  websocket_ = false;
  RequestCounters::note(RequestCounters::Event::kWebSocketClosed);
}

void Request::runLogPhase() {
  if (logged_ || !location_) return;
  logged_ = true;
  if (server_) {
    RequestSample sample;
    sample.status = status_;
    sample.error = error_;
    sample.request_body_bytes = body_bytes_received_;
    sample.response_body_bytes = body_bytes_sent_;
    const SteadyTime now = std::chrono::steady_clock::now();
    sample.duration_nanos = LatencyBuckets::nanosOf(now - start_);
    if (response_start_)
      sample.first_byte_nanos = LatencyBuckets::nanosOf(*response_start_ - start_);
    // Placed by the isolate runtime: it named the isolate, or the request waited for one.
    if (!isolate_name_.empty() || isolate_wait_.count() > 0)
      sample.isolate_wait_nanos = LatencyBuckets::nanosOf(isolate_wait_);
    RequestCounters::count(server_->metrics_slot, sample);
    if (route_.token && config_->metrics_deployments > 0) {
      const VerifiedToken& token = *route_.token;
      DeploymentCounters::count(token.subhoster ? std::string_view(token.subhoster->name) : "",
                                token.deployment_id, sample);
    }
  }
  noteTunnelClosed();
  for (const HookEntry& entry : location_->log) entry.module->log(*this, *entry.conf);
}

}  // namespace subgate
