// The events of isolates (docs/origin.md "Events"): what the supervisor turns into events, and
// the error log lines of user code's output. Runs with the registry mutex held (isolate_pool.h);
// queueing an event only takes the sender's mutex (core/events/event_sender.h).
#include <jansson.h>
#include <openssl/rand.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>

#include "core/events/event_record.h"
#include "core/isolates/isolate_pool.h"
#include "core/log/log.h"
#include "core/pipeline/request_trace.h"

namespace subgate {

namespace {

// A random UUID (version 4), the execution id of an isolate.
std::string randomUuid() {
  unsigned char b[16];
  RAND_bytes(b, sizeof b);
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  char out[40];
  std::snprintf(out, sizeof out,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

// The text of a JSON string (the harness's JSON.stringify), or the raw text when it is not one
// (a lone surrogate, which jansson refuses: the encoder replaces what is not UTF-8).
std::string jsonStringText(std::string_view json) {
  json_error_t error;
  json_t* value = json_loadb(json.data(), json.size(), JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
  std::string out;
  if (json_is_string(value)) {
    out.assign(json_string_value(value), json_string_length(value));
  } else {
    out.assign(json);
  }
  json_decref(value);
  return out;
}

}  // namespace

void IsolateRegistry::Impl::eventsBeginLocked(Isolate& isolate) {
  IsolateEvents& e = isolate.events;
  e.execution_id = randomUuid();
  e.launched = steadyNow();
  e.boot_reported = false;
  e.region = settings.region;
  e.limiter.setLimits(settings.events_log_lines, settings.events_log_bytes);
  const Deployment* d = isolate.deployment;
  if (d && d->subhoster && d->subhoster->events) {
    e.subhoster = d->subhoster;
    e.rpc_root = d->rpc_root;
  } else {
    e.subhoster.reset();
    e.rpc_root.clear();
  }
}

void IsolateRegistry::Impl::eventLocked(Isolate& isolate, EventType type, std::string payload) {
  const IsolateEvents& e = isolate.events;
  if (!e.subhoster) return;
  EventRecord event;
  event.deployment_id = isolate.deployment_id;
  event.time = std::chrono::system_clock::now();
  event.type = type;
  event.payload = std::move(payload);
  event.execution_id = e.execution_id;
  event.region = e.region;
  event_sender.enqueue(e.subhoster, e.rpc_root, encodeEventLine(event));
}

void IsolateRegistry::Impl::bootEventLocked(Isolate& isolate, bool ok, std::string_view msg) {
  IsolateEvents& e = isolate.events;
  if (e.boot_reported || e.execution_id.empty()) return;
  e.boot_reported = true;
  if (ok) {
    eventLocked(isolate, EventType::kBoot, bootPayload(steadyNow() - e.launched));
  } else {
    eventLocked(isolate, EventType::kBootFailure, messagePayload(msg));
  }
}

void IsolateRegistry::Impl::userLogLocked(Isolate& isolate, LogEventLevel level,
                                          std::string_view msg, std::string_view request_id) {
  const LogLevel at = settings.isolate_log_level.value_or(
      level <= LogEventLevel::kInfo ? LogLevel::kInfo : LogLevel::kWarn);
  // logf() writes whatever the level: the error_log level is checked here, as LOG_* do.
  if (settings.isolate_log && logEnabled(at)) {
    // One error log line per line of the message (a stack trace has several), each ending with
    // the request's id as subgate's own lines about a request do.
    std::string_view rest = msg;
    do {
      const size_t nl = rest.find('\n');
      const std::string line = logSafe(rest.substr(0, nl));
      if (request_id.empty()) {
        logf(at, "isolate %s: %s", isolate.tag().c_str(), line.c_str());
      } else {
        logf(at, "isolate %s: %s, request_id: %.*s", isolate.tag().c_str(), line.c_str(),
             static_cast<int>(request_id.size()), request_id.data());
      }
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    } while (!rest.empty());
  }
  IsolateEvents& e = isolate.events;
  if (!e.subhoster) return;
  const SteadyTime now = steadyNow();
  flushDroppedLocked(isolate, now);
  if (!e.limiter.admit(now, msg.size())) {
    ++counters.events_rate_limited;
    return;
  }
  eventLocked(isolate, EventType::kLog, logPayload(msg, level, request_id));
}

void IsolateRegistry::Impl::flushDroppedLocked(Isolate& isolate, SteadyTime now) {
  if (!isolate.events.subhoster) return;
  const LogRateLimiter::Dropped dropped = isolate.events.limiter.takeDropped(now);
  if (!dropped) return;
  std::string msg = "subgate: the log rate limit (events_log_rate) dropped ";
  msg.append(std::to_string(dropped.lines)).append(" lines (");
  msg.append(std::to_string(dropped.bytes)).append(" bytes) of this isolate");
  eventLocked(isolate, EventType::kLog, logPayload(msg, LogEventLevel::kWarn));
}

void IsolateRegistry::Impl::logReportLocked(Isolate& isolate, std::string_view report) {
  const size_t space = report.find(' ');
  LogEventLevel level = LogEventLevel::kInfo;
  if (space == std::string_view::npos || !parseLogEventLevel(report.substr(0, space), level)) {
    userLogLocked(isolate, LogEventLevel::kInfo, report);  // not the harness's shape: as it is
    return;
  }
  std::string_view rest = report.substr(space + 1);
  // "<level> <request id> <json>" inside a request's handler: the message is a JSON string, so
  // a word before it that does not start with a quote is the id (checked: it goes to the log).
  std::string_view request_id;
  if (!rest.empty() && rest.front() != '"') {
    const size_t end = rest.find(' ');
    if (end != std::string_view::npos && isValidRequestId(rest.substr(0, end))) {
      request_id = rest.substr(0, end);
      rest = rest.substr(end + 1);
    }
  }
  userLogLocked(isolate, level, jsonStringText(rest), request_id);
}

void IsolateRegistry::Impl::uncaughtReportLocked(Isolate& isolate, std::string_view json) {
  const std::string msg = jsonStringText(json);
  LOG_WARN("isolate %s: uncaught exception: %s", isolate.tag().c_str(), logSafe(msg).c_str());
  // What the requests in flight are told when the process exits next.
  isolate.failure.assign("uncaught exception: ").append(msg, 0, msg.find('\n'));
  eventLocked(isolate, EventType::kUncaughtException, messagePayload(msg));
  // The harness exits next: a request placed on it now would find its socket closed. Nothing new
  // goes to it; the next request of its deployment starts a fresh isolate.
  detachLocked(isolate);
}

void IsolateRegistry::Impl::exitEventsLocked(Isolate& isolate) {
  if (isolate.events.execution_id.empty()) return;  // a spare: never given a deployment
  flushDroppedLocked(isolate, steadyNow() + std::chrono::seconds(2));  // its window is over
  if (isolate.memory_limit)
    eventLocked(isolate, EventType::kMemoryLimit, messagePayload(isolate.failure));
  bootEventLocked(isolate, false, isolate.failure);  // only if it never served nor failed before
}

}  // namespace subgate
