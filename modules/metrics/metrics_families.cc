#include "modules/metrics/metrics_families.h"

#include "modules/metrics/prometheus_text.h"

namespace subgate {
namespace {

constexpr const char* kCounter = "counter";
constexpr const char* kGauge = "gauge";
constexpr std::string_view kClassNames[RequestCounters::kClasses] = {"1xx", "2xx", "3xx", "4xx",
                                                                     "5xx"};

constexpr const char* kHistogram = "histogram";

std::string_view errorCode(size_t kind) { return errorInfo(static_cast<ErrorKind>(kind)).code; }

void renderRequests(PrometheusText& out, const std::vector<RequestCounters::Row>& rows) {
  out.family("subgate_http_requests_total", kCounter,
             "Requests answered, by server (its first server_name, else its first listen "
             "address) and status class.");
  for (const RequestCounters::Row& row : rows)
    for (size_t k = 0; k < RequestCounters::kClasses; ++k)
      out.sample({{"server", row.label}, {"code", kClassNames[k]}}, row.by_class[k]);
  out.family("subgate_http_errors_total", kCounter,
             "Answers subgate made itself with an x-deno-error, by server and error code.");
  for (const RequestCounters::Row& row : rows)
    for (size_t k = 0; k < RequestCounters::kErrorKinds; ++k)
      out.sample({{"server", row.label}, {"code", errorCode(k)}}, row.errors[k]);
  out.family("subgate_http_request_duration_seconds", kHistogram,
             "Requests by time from their head's arrival to the end of their response, by "
             "server.",
             "seconds");
  for (const RequestCounters::Row& row : rows) out.histogram({{"server", row.label}}, row.duration);
  out.family("subgate_http_time_to_first_byte_seconds", kHistogram,
             "Requests by time from their head's arrival to their response head, by server.",
             "seconds");
  for (const RequestCounters::Row& row : rows)
    out.histogram({{"server", row.label}}, row.first_byte);
  out.family("subgate_http_request_body_bytes_total", kCounter,
             "Request body bytes received from clients, by server.", "bytes");
  for (const RequestCounters::Row& row : rows)
    out.sample({{"server", row.label}}, row.request_body_bytes);
  out.family("subgate_http_response_body_bytes_total", kCounter,
             "Response body bytes sent to clients, by server.", "bytes");
  for (const RequestCounters::Row& row : rows)
    out.sample({{"server", row.label}}, row.response_body_bytes);
}

// Counts of events that other events undo (opened, closed) as a gauge; never below zero while
// a thread's pair is read between its two writes.
uint64_t difference(uint64_t up, uint64_t down) { return up > down ? up - down : 0; }

void renderConnections(PrometheusText& out, const RequestCounters::Totals& t) {
  using Event = RequestCounters::Event;
  out.single("subgate_connections_accepted_total", kCounter,
             "Client connections accepted (HTTP/2 ones start as HTTP/1.x until ALPN or the "
             "preface).",
             t.of(Event::kConnectionAccepted));
  out.family("subgate_connections_total", kCounter,
             "Client connections by protocol: http1, those that sent an HTTP/1.x request; http2, "
             "those that continued as HTTP/2.");
  out.sample({{"protocol", "http1"}}, t.of(Event::kHttp1Served));
  out.sample({{"protocol", "http2"}}, t.of(Event::kHttp2Started));
  out.family("subgate_connections_open", kGauge,
             "Client connections open now, by protocol (http1 includes those that have not sent "
             "anything yet).");
  out.sample({{"protocol", "http1"}},
             difference(t.of(Event::kConnectionAccepted), t.of(Event::kHttp1Closed)));
  out.sample({{"protocol", "http2"}},
             difference(t.of(Event::kHttp2Started), t.of(Event::kHttp2Closed)));
  out.single("subgate_tls_handshakes_total", kCounter, "TLS handshakes completed.",
             t.of(Event::kTlsHandshake));
  out.single("subgate_tls_handshake_failures_total", kCounter,
             "TLS handshakes that failed, timed out or whose client went away.",
             t.of(Event::kTlsHandshakeFailed));
  out.single("subgate_websockets_total", kCounter,
             "WebSockets (and other upgrades) opened: 101 answers, and 2xx answers to an HTTP/2 "
             "extended CONNECT.",
             t.of(Event::kWebSocketOpened));
  out.single("subgate_websockets_open", kGauge, "WebSockets open now.",
             difference(t.of(Event::kWebSocketOpened), t.of(Event::kWebSocketClosed)));
}

void renderPool(PrometheusText& out, const IsolateRegistry::Stats& s) {
  out.single("subgate_isolates", kGauge, "Isolates alive (starting or ready).", s.isolates);
  out.single("subgate_isolate_spares", kGauge, "Spare runtime processes waiting for a deployment.",
             s.spares);
  out.single("subgate_isolate_deployments", kGauge, "Deployments the isolate pool knows.",
             s.deployments);
  out.single("subgate_isolate_sticky_entries", kGauge,
             "Entries of the identify() tables (identifier to isolate).", s.sticky);
  out.single("subgate_isolate_boots_total", kCounter, "Origin /boot calls made.", s.boots);
  out.single("subgate_isolate_boot_failures_total", kCounter, "Origin /boot calls that failed.",
             s.boot_failures);
  out.single("subgate_isolate_boot_backoff_answers_total", kCounter,
             "Requests answered with a remembered boot failure.", s.boot_backoff_answers);
  out.single("subgate_isolate_processes_started_total", kCounter, "Runtime processes started.",
             s.processes);
  out.single("subgate_isolate_ready_total", kCounter,
             "Isolates that became ready to serve their deployment.", s.ready);
  out.family("subgate_isolate_evictions_total", kCounter,
             "Idle isolates stopped, by reason: idle (idle_timeout), lru (room under "
             "max_isolates).");
  out.sample({{"reason", "idle"}}, s.evicted_idle);
  out.sample({{"reason", "lru"}}, s.evicted_lru);
  out.family("subgate_isolate_limit_stops_total", kCounter,
             "Isolates stopped for a limit, by reason: time_limit (CPU time, TIME_LIMIT), "
             "memory_limit (MEMORY_LIMIT).");
  out.sample({{"reason", "time_limit"}}, s.stopped_time_limit);
  out.sample({{"reason", "memory_limit"}}, s.stopped_memory_limit);
  out.single("subgate_isolate_failures_total", kCounter,
             "Isolates of a deployment that ended unasked and not for a limit "
             "(DEPLOYMENT_FAILED): their code failed to load, threw an uncaught exception, or the "
             "process exited or crashed.",
             s.stopped_failed);
  out.single("subgate_isolate_egress_denied_total", kCounter,
             "Connections and listens of isolates the egress policy refused.", s.egress_denied);
  out.single("subgate_isolate_code_cache_hits_total", kCounter,
             "Isolates started with their deployment's code still cached (no /boot call).",
             s.code_cache_hits);
  out.family("subgate_isolates_by_state", kGauge,
             "Deployments' isolates now, by state: waiting_code (for /boot), starting, ready, "
             "stopping.");
  out.sample({{"state", "waiting_code"}}, s.waiting_code);
  out.sample({{"state", "starting"}}, s.starting);
  out.sample({{"state", "ready"}}, s.ready_now);
  out.sample({{"state", "stopping"}}, s.stopping);
  out.single("subgate_isolate_queued_requests", kGauge,
             "Requests waiting in deployment queues for room under isolate_limit.", s.queued);
  out.family("subgate_isolate_boot_duration_seconds", kHistogram,
             "Isolates by time from their creation for a request to ready: spare=\"false\" "
             "started a process (and waited for /boot unless the code was cached), "
             "spare=\"true\" took a spare process.",
             "seconds");
  out.histogram({{"spare", "false"}}, s.boot_cold);
  out.histogram({{"spare", "true"}}, s.boot_spare);
}

void renderIsolateWait(PrometheusText& out, const LatencyHistogram& wait) {
  out.family("subgate_isolate_wait_seconds", kHistogram,
             "Requests the isolate runtime placed, by time they waited for an isolate (a boot, a "
             "spare, a queue; zero when one was ready), including waits that ended in an error.",
             "seconds");
  out.histogram({}, wait);
}

void renderCluster(PrometheusText& out, const ClusterHub::Counters& c) {
  out.single("subgate_cluster_broadcasts_total", kCounter, "Cluster sends without uid.",
             c.broadcasts);
  out.single("subgate_cluster_whispers_total", kCounter, "Cluster sends with a uid.", c.whispers);
  out.single("subgate_cluster_gossips_total", kCounter, "Cluster gossip calls.", c.gossips);
  out.single("subgate_cluster_deliveries_total", kCounter,
             "Connections reached on siblings (acknowledged).", c.deliveries);
  out.single("subgate_cluster_answers_total", kCounter, "Gossip answers received.", c.answers);
  out.single("subgate_cluster_failed_total", kCounter,
             "Siblings that died, refused, answered an error or were full.", c.failed);
  out.single("subgate_cluster_timed_out_total", kCounter, "Siblings that did not answer in time.",
             c.timed_out);
  out.single("subgate_cluster_rejected_total", kCounter, "Malformed or oversized cluster reports.",
             c.rejected);
}

void renderEvents(PrometheusText& out, const EventSender::Totals& e, uint64_t rate_limited) {
  out.single("subgate_events_sent_total", kCounter, "Events delivered to their origin.", e.sent);
  out.single("subgate_events_dropped_total", kCounter, "Events pushed out of a full queue.",
             e.dropped);
  out.single("subgate_events_failed_total", kCounter,
             "Events in batches the origin rejected or that were given up.", e.failed);
  out.single("subgate_events_retries_total", kCounter, "Event posts retried.", e.retries);
  out.single("subgate_events_posts_total", kCounter, "Event posts made to origins.", e.posts);
  out.single("subgate_events_rate_limited_total", kCounter,
             "Isolate log lines events_log_rate kept out of events.", rate_limited);
  out.single("subgate_events_queued", kGauge, "Events waiting to be sent, all origins.", e.queued);
  out.single("subgate_events_origins", kGauge, "Event queues (one per origin) now.", e.origins);
}

}  // namespace

std::string renderMetrics(const MetricsSnapshot& snapshot, PrometheusText::Format format) {
  PrometheusText out(format);
  renderRequests(out, snapshot.requests);
  renderConnections(out, snapshot.totals);
  renderPool(out, snapshot.isolates.pool);
  renderIsolateWait(out, snapshot.totals.isolate_wait);
  renderDeployments(out, snapshot);
  renderCluster(out, snapshot.isolates.cluster);
  renderEvents(out, snapshot.isolates.events, snapshot.isolates.pool.events_rate_limited);
  for (const ModuleCounter& counter : snapshot.modules) {
    std::string name = "subgate_";
    name += counter.name;
    name += "_total";
    out.single(name, kCounter, counter.help.empty() ? counter.name : counter.help, counter.value);
  }
  return out.take();
}

}  // namespace subgate
