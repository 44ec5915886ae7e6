#include "modules/metrics/metrics_families.h"

#include "modules/metrics/prometheus_text.h"

namespace subgate {
namespace {

constexpr const char* kCounter = "counter";
constexpr const char* kGauge = "gauge";
constexpr std::string_view kClassNames[RequestCounters::kClasses] = {"1xx", "2xx", "3xx", "4xx",
                                                                     "5xx"};

void renderRequests(PrometheusText& out, const std::vector<RequestCounters::Row>& rows) {
  out.family("subgate_http_requests_total", kCounter,
             "Requests answered, by server (its first server_name, else its first listen "
             "address) and status class.");
  for (const RequestCounters::Row& row : rows)
    for (size_t k = 0; k < RequestCounters::kClasses; ++k)
      out.sample({{"server", row.label}, {"code", kClassNames[k]}}, row.by_class[k]);
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
  out.single("subgate_isolate_egress_denied_total", kCounter,
             "Connections and listens of isolates the egress policy refused.", s.egress_denied);
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

std::string renderMetrics(const MetricsSnapshot& snapshot) {
  PrometheusText out;
  renderRequests(out, snapshot.requests);
  renderPool(out, snapshot.isolates.pool);
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
