// modules/metrics (`metrics;`): the text format (escaping), the families rendered from a
// snapshot, the per-thread request counters, and the handler through the pipeline in memory.
// Scraped values under real traffic are the integration tier's (tests/integration/test_metrics.py).
#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <thread>

#include "core/pipeline/deployment_counters.h"
#include "core/pipeline/request_counters.h"
#include "modules/metrics/metrics_families.h"
#include "modules/metrics/prometheus_text.h"
#include "tests/support/pipeline_harness.h"

namespace subgate {
namespace {

using test_support::configError;
using test_support::PipelineHarness;

TEST(PrometheusText, WritesHelpTypeAndSamples) {
  PrometheusText out;
  out.family("subgate_things_total", "counter", "Things counted.");
  out.sample({}, 3);
  out.family("subgate_by_reason_total", "counter", "By reason.");
  out.sample({{"reason", "idle"}, {"server", "a"}}, 0);
  out.single("subgate_gauge", "gauge", "A gauge.", 18446744073709551615u);
  EXPECT_EQ(out.text(),
            "# HELP subgate_things_total Things counted.\n"
            "# TYPE subgate_things_total counter\n"
            "subgate_things_total 3\n"
            "# HELP subgate_by_reason_total By reason.\n"
            "# TYPE subgate_by_reason_total counter\n"
            "subgate_by_reason_total{reason=\"idle\",server=\"a\"} 0\n"
            "# HELP subgate_gauge A gauge.\n"
            "# TYPE subgate_gauge gauge\n"
            "subgate_gauge 18446744073709551615\n");
}

TEST(PrometheusText, EscapesLabelValuesAndHelp) {
  std::string value;
  PrometheusText::appendLabelValue(value, "a\\b\"c\nd'e\tf");
  EXPECT_EQ(value, "a\\\\b\\\"c\\nd'e\tf");
  std::string help;
  PrometheusText::appendHelp(help, "a\\b\"c\nd");
  EXPECT_EQ(help, "a\\\\b\"c\\nd");  // quotes stay as they are in HELP

  PrometheusText out;
  out.family("subgate_x_total", "counter", "Line one\nline two.");
  out.sample({{"server", "we\"ird\\name\n"}}, 1);
  EXPECT_EQ(out.text(),
            "# HELP subgate_x_total Line one\\nline two.\n"
            "# TYPE subgate_x_total counter\n"
            "subgate_x_total{server=\"we\\\"ird\\\\name\\n\"} 1\n");
}

TEST(RequestCounters, InternsLabelsOncePerProcess) {
  const uint32_t a = RequestCounters::slotFor("counters-test-a");
  const uint32_t b = RequestCounters::slotFor("counters-test-b");
  EXPECT_NE(a, b);
  EXPECT_EQ(RequestCounters::slotFor("counters-test-a"), a);
  const auto rows = RequestCounters::snapshot();
  ASSERT_GT(rows.size(), std::max(a, b));
  EXPECT_EQ(rows[a].label, "counters-test-a");
  EXPECT_EQ(rows[b].label, "counters-test-b");
}

TEST(RequestCounters, CountsByStatusClassSummedOverThreads) {
  const uint32_t slot = RequestCounters::slotFor("counters-test-threads");
  const auto before = RequestCounters::snapshot()[slot].by_class;
  RequestCounters::count(slot, 200);
  RequestCounters::count(slot, 404);
  RequestCounters::count(slot, 0);    // no response: not counted
  RequestCounters::count(slot, 600);  // not a status
  RequestCounters::count(slot, 99);   // not a status
  std::thread other([slot] {
    for (int i = 0; i < 1000; ++i) RequestCounters::count(slot, 503);
    RequestCounters::count(slot, 101);
  });
  other.join();
  RequestCounters::count(slot, 302);
  const auto after = RequestCounters::snapshot()[slot].by_class;
  EXPECT_EQ(after[0] - before[0], 1u);     // 1xx
  EXPECT_EQ(after[1] - before[1], 1u);     // 2xx
  EXPECT_EQ(after[2] - before[2], 1u);     // 3xx
  EXPECT_EQ(after[3] - before[3], 1u);     // 4xx
  EXPECT_EQ(after[4] - before[4], 1000u);  // 5xx, from a thread that has exited
}

TEST(MetricsFamilies, RendersEverySourceOfStatus) {
  MetricsSnapshot snapshot;
  IsolateRegistry::Stats& pool = snapshot.isolates.pool;
  pool.isolates = 3;
  pool.spares = 1;
  pool.deployments = 2;
  pool.sticky = 4;
  pool.boots = 5;
  pool.boot_failures = 6;
  pool.boot_backoff_answers = 7;
  pool.processes = 8;
  pool.ready = 9;
  pool.evicted_idle = 10;
  pool.evicted_lru = 11;
  pool.egress_denied = 12;
  pool.stopped_time_limit = 13;
  pool.stopped_memory_limit = 14;
  pool.stopped_failed = 24;
  pool.events_rate_limited = 15;
  snapshot.isolates.cluster.broadcasts = 16;
  snapshot.isolates.cluster.rejected = 17;
  snapshot.isolates.events.sent = 18;
  snapshot.isolates.events.queued = 19;
  RequestCounters::Row requests;
  requests.label = "api.example";
  requests.by_class = {0, 20, 0, 21, 22};
  snapshot.requests.push_back(requests);
  snapshot.modules.push_back({"token_cache_hits", 23, "Cache hits."});
  const std::string text = renderMetrics(snapshot);
  for (const char* line : {
           "subgate_http_requests_total{server=\"api.example\",code=\"1xx\"} 0\n",
           "subgate_http_requests_total{server=\"api.example\",code=\"2xx\"} 20\n",
           "subgate_http_requests_total{server=\"api.example\",code=\"4xx\"} 21\n",
           "subgate_http_requests_total{server=\"api.example\",code=\"5xx\"} 22\n",
           "subgate_isolates 3\n",
           "subgate_isolate_spares 1\n",
           "subgate_isolate_deployments 2\n",
           "subgate_isolate_sticky_entries 4\n",
           "subgate_isolate_boots_total 5\n",
           "subgate_isolate_boot_failures_total 6\n",
           "subgate_isolate_boot_backoff_answers_total 7\n",
           "subgate_isolate_processes_started_total 8\n",
           "subgate_isolate_ready_total 9\n",
           "subgate_isolate_evictions_total{reason=\"idle\"} 10\n",
           "subgate_isolate_evictions_total{reason=\"lru\"} 11\n",
           "subgate_isolate_egress_denied_total 12\n",
           "subgate_isolate_limit_stops_total{reason=\"time_limit\"} 13\n",
           "subgate_isolate_limit_stops_total{reason=\"memory_limit\"} 14\n",
           "subgate_isolate_failures_total 24\n",
           "subgate_events_rate_limited_total 15\n",
           "subgate_cluster_broadcasts_total 16\n",
           "subgate_cluster_rejected_total 17\n",
           "subgate_events_sent_total 18\n",
           "subgate_events_queued 19\n",
           "# HELP subgate_token_cache_hits_total Cache hits.\n",
           "subgate_token_cache_hits_total 23\n",
       })
    EXPECT_NE(text.find(line), std::string::npos) << line << "\nin:\n" << text;

  // Every family once, with HELP then TYPE; counters end in _total, gauges do not; every sample
  // belongs to the family above it.
  std::istringstream lines(text);
  std::string line;
  std::string family;
  std::string type;
  std::set<std::string> seen;
  while (std::getline(lines, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      family = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(seen.insert(family).second) << family;
      ASSERT_TRUE(std::getline(lines, line));
      std::string type_prefix = "# TYPE ";
      type_prefix.append(family).append(" ");
      ASSERT_EQ(line.rfind(type_prefix, 0), 0u) << line;
      type = line.substr(8 + family.size());
      const bool total = family.size() > 6 && family.ends_with("_total");
      EXPECT_EQ(total, type == "counter") << family << " " << type;
      EXPECT_EQ(family.rfind("subgate_", 0), 0u) << family;
      continue;
    }
    if (line.rfind("# UNIT ", 0) == 0) continue;  // OpenMetrics only
    std::string name = line.substr(0, line.find_first_of("{ "));
    if (type == "histogram") {
      for (const char* suffix : {"_bucket", "_sum", "_count"})
        if (name.ends_with(suffix)) name.resize(name.size() - std::string_view(suffix).size());
    }
    EXPECT_EQ(name, family) << line;
  }
  EXPECT_EQ(seen.size(), 48u);
}

TEST(LatencyBuckets, PutsADurationInTheFirstBucketAtOrAboveIt) {
  EXPECT_EQ(LatencyBuckets::bucketOf(0), 0u);
  EXPECT_EQ(LatencyBuckets::bucketOf(500'000), 0u);  // le is inclusive
  EXPECT_EQ(LatencyBuckets::bucketOf(500'001), 1u);
  EXPECT_EQ(LatencyBuckets::bucketOf(1'000'000'000), 10u);  // 1 s
  EXPECT_EQ(LatencyBuckets::bucketOf(10'000'000'000ull), LatencyBuckets::kBounds - 1);
  EXPECT_EQ(LatencyBuckets::bucketOf(10'000'000'001ull), LatencyBuckets::kBounds);  // +Inf
  for (size_t i = 0; i < LatencyBuckets::kBounds; ++i)
    EXPECT_EQ(static_cast<uint64_t>(LatencyBuckets::kSeconds[i] * 1e9 + 0.5),
              LatencyBuckets::kNanos[i]);
  EXPECT_EQ(LatencyBuckets::nanosOf(std::chrono::milliseconds(-3)), 0u);
}

TEST(PrometheusText, WritesAHistogramCumulatively) {
  LatencyHistogram h;
  h.add(400'000);         // 0.0005
  h.add(3'000'000);       // 0.005
  h.add(3'000'000);       // 0.005
  h.add(60'000'000'000);  // +Inf
  PrometheusText out;
  out.family("subgate_x_seconds", "histogram", "X.", "seconds");
  out.histogram({{"server", "a"}}, h);
  const std::string& text = out.text();
  EXPECT_EQ(text.rfind("# HELP subgate_x_seconds X.\n# TYPE subgate_x_seconds histogram\n"
                       "subgate_x_seconds_bucket{server=\"a\",le=\"0.0005\"} 1\n"
                       "subgate_x_seconds_bucket{server=\"a\",le=\"0.001\"} 1\n"
                       "subgate_x_seconds_bucket{server=\"a\",le=\"0.0025\"} 1\n"
                       "subgate_x_seconds_bucket{server=\"a\",le=\"0.005\"} 3\n",
                       0),
            0u)
      << text;
  for (const char* line : {"subgate_x_seconds_bucket{server=\"a\",le=\"1.0\"} 3\n",
                           "subgate_x_seconds_bucket{server=\"a\",le=\"10.0\"} 3\n",
                           "subgate_x_seconds_bucket{server=\"a\",le=\"+Inf\"} 4\n",
                           "subgate_x_seconds_sum{server=\"a\"} 60.0064\n",
                           "subgate_x_seconds_count{server=\"a\"} 4\n"})
    EXPECT_NE(text.find(line), std::string::npos) << line << text;
  EXPECT_EQ(text.find("# UNIT"), std::string::npos);  // the text format has no units
  PrometheusText bare;
  bare.family("subgate_y_seconds", "histogram", "Y.");
  bare.histogram({}, LatencyHistogram{});
  EXPECT_NE(bare.text().find("subgate_y_seconds_bucket{le=\"+Inf\"} 0\nsubgate_y_seconds_sum 0.0\n"
                             "subgate_y_seconds_count 0\n"),
            std::string::npos)
      << bare.text();
}

TEST(PrometheusText, WritesOpenMetrics) {
  PrometheusText out(PrometheusText::Format::kOpenMetrics);
  out.single("subgate_things_total", "counter", "Things \"counted\".", 3);
  out.single("subgate_body_bytes_total", "counter", "Bytes.", 7, "bytes");
  out.single("subgate_open", "gauge", "Open.", 2);
  EXPECT_EQ(out.take(),
            "# HELP subgate_things Things \\\"counted\\\".\n"
            "# TYPE subgate_things counter\n"
            "subgate_things_total 3\n"
            "# HELP subgate_body_bytes Bytes.\n"
            "# TYPE subgate_body_bytes counter\n"
            "# UNIT subgate_body_bytes bytes\n"
            "subgate_body_bytes_total 7\n"
            "# HELP subgate_open Open.\n"
            "# TYPE subgate_open gauge\n"
            "subgate_open 2\n"
            "# EOF\n");
  PrometheusText text;
  text.single("subgate_things_total", "counter", "Things.", 3);
  EXPECT_EQ(text.take().find("# EOF"), std::string::npos);
}

TEST(PrometheusText, NegotiatesOpenMetricsByAccept) {
  using F = PrometheusText::Format;
  EXPECT_EQ(PrometheusText::negotiate(""), F::kText);
  EXPECT_EQ(PrometheusText::negotiate("text/plain;version=0.0.4"), F::kText);
  EXPECT_EQ(PrometheusText::negotiate("*/*"), F::kText);
  // What Prometheus sends.
  EXPECT_EQ(PrometheusText::negotiate(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
            F::kOpenMetrics);
  EXPECT_EQ(PrometheusText::negotiate("text/plain, Application/OpenMetrics-Text ; q=0.2"),
            F::kOpenMetrics);
  EXPECT_EQ(PrometheusText::negotiate("application/openmetrics-text;q=0, text/plain"), F::kText);
  EXPECT_EQ(PrometheusText::negotiate("application/openmetrics-text; q=0.000"), F::kText);
}

TEST(RequestCounters, CountsErrorsBytesAndDurationsOfASlot) {
  const uint32_t slot = RequestCounters::slotFor("counters-test-samples");
  const RequestCounters::Row before = RequestCounters::snapshot()[slot];
  const RequestCounters::Totals totals_before = RequestCounters::totals();
  RequestSample sample;
  sample.status = 503;
  sample.error = ErrorKind::kCapacityExceeded;
  sample.request_body_bytes = 10;
  sample.response_body_bytes = 100;
  sample.duration_nanos = 3'000'000;
  sample.first_byte_nanos = 2'000'000;
  sample.isolate_wait_nanos = 1'500'000;
  RequestCounters::count(slot, sample);
  sample.status = 0;  // no response: nothing of it counted
  RequestCounters::count(slot, sample);
  RequestCounters::note(RequestCounters::Event::kWebSocketOpened);
  std::thread other([] { RequestCounters::note(RequestCounters::Event::kWebSocketOpened); });
  other.join();
  const RequestCounters::Row after = RequestCounters::snapshot()[slot];
  const RequestCounters::Totals totals_after = RequestCounters::totals();
  const auto capacity = static_cast<size_t>(ErrorKind::kCapacityExceeded);
  EXPECT_EQ(after.errors[capacity] - before.errors[capacity], 1u);
  EXPECT_EQ(after.request_body_bytes - before.request_body_bytes, 10u);
  EXPECT_EQ(after.response_body_bytes - before.response_body_bytes, 100u);
  EXPECT_EQ(after.duration.count() - before.duration.count(), 1u);
  EXPECT_EQ(after.duration.buckets[3] - before.duration.buckets[3], 1u);  // le 0.005
  EXPECT_EQ(after.duration.sum_nanos - before.duration.sum_nanos, 3'000'000u);
  EXPECT_EQ(after.first_byte.buckets[2] - before.first_byte.buckets[2], 1u);  // le 0.0025
  EXPECT_EQ(totals_after.isolate_wait.count() - totals_before.isolate_wait.count(), 1u);
  EXPECT_EQ(totals_after.of(RequestCounters::Event::kWebSocketOpened) -
                totals_before.of(RequestCounters::Event::kWebSocketOpened),
            2u);
}

// A tunnel is counted closed once, whether its log phase ran or its connection went away first
// (Http1Connection::close() cancels the request and resets it without a log phase).
TEST(RequestCounters, ATunnelIsCountedClosedOnceHoweverItEnds) {
  using Event = RequestCounters::Event;
  auto open = [] {
    const RequestCounters::Totals t = RequestCounters::totals();
    return static_cast<int64_t>(t.of(Event::kWebSocketOpened)) -
           static_cast<int64_t>(t.of(Event::kWebSocketClosed));
  };
  const int64_t before = open();
  ServerConf server;
  http1::HeadParser parser{http1::HeadParser::Mode::kRequest};
  ASSERT_EQ(parser.parse("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n"),
            http1::ParseStatus::kDone);
  test_support::RecordingTransport transport;
  ResponseHead head;
  head.status = 101;
  {
    Request request;
    for (int round = 0; round < 2; ++round) {
      request.begin(&transport, nullptr, nullptr, &server, &parser.head(), "127.0.0.1");
      request.sendHead(head);
      EXPECT_EQ(open(), before + 1);
      if (round == 0) {
        request.runLogPhase();  // the tunnel ended, logged
        EXPECT_EQ(open(), before);
      } else {
        request.cancel();  // the client went away: no log phase
      }
      request.reset();
      EXPECT_EQ(open(), before);
    }
    request.begin(&transport, nullptr, nullptr, &server, &parser.head(), "127.0.0.1");
    request.sendHead(head);
    EXPECT_EQ(open(), before + 1);
  }  // destroyed with its connection
  EXPECT_EQ(open(), before);
}

TEST(DeploymentCounters, CountsPerDeploymentSummedOverThreads) {
  RequestSample ok;
  ok.status = 200;
  ok.duration_nanos = 700'000;
  RequestSample full = ok;
  full.status = 503;
  full.error = ErrorKind::kCapacityExceeded;
  DeploymentCounters::count("sub", "dc-test-a", ok);
  DeploymentCounters::count("sub", "dc-test-a", full);
  DeploymentCounters::count("other-sub", "dc-test-a", ok);         // another subhoster's
  DeploymentCounters::count("sub", "dc-test-a", RequestSample{});  // no status: not counted
  std::thread other([&] { DeploymentCounters::count("sub", "dc-test-a", ok); });
  other.join();
  const DeploymentCounters::Snapshot snapshot = DeploymentCounters::snapshot();
  const DeploymentCounters::Row* a = nullptr;
  const DeploymentCounters::Row* b = nullptr;
  for (const auto& row : snapshot.rows) {
    if (row.deployment_id != "dc-test-a") continue;
    (row.subhoster == "sub" ? a : b) = &row;
  }
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->by_class[1], 2u);
  EXPECT_EQ(a->by_class[4], 1u);
  EXPECT_EQ(a->errors[static_cast<size_t>(ErrorKind::kCapacityExceeded)], 1u);
  EXPECT_EQ(a->duration.count(), 3u);
  EXPECT_EQ(a->requests(), 3u);
  EXPECT_EQ(b->requests(), 1u);
}

TEST(DeploymentCounters, BoundsEachThreadsTableAndKeepsEvictedCounts) {
  // On a thread of its own, so that its table starts empty.
  std::thread writer([] {
    RequestSample ok;
    ok.status = 200;
    for (int i = 0; i < 50; ++i) DeploymentCounters::count("", "dc-busy", ok);
    const size_t n = DeploymentCounters::kCellsPerThread * 3;
    for (size_t i = 0; i < n; ++i)
      DeploymentCounters::count("", "dc-tail-" + std::to_string(i), ok);
  });
  writer.join();
  const DeploymentCounters::Snapshot snapshot = DeploymentCounters::snapshot();
  uint64_t tail_rows = 0;
  uint64_t tail_requests = 0;
  bool busy = false;
  for (const auto& row : snapshot.rows) {
    if (row.deployment_id.starts_with("dc-tail-")) {
      ++tail_rows;
      tail_requests += row.requests();
    }
    if (row.deployment_id == "dc-busy") busy = row.requests() == 50;
  }
  EXPECT_TRUE(busy);  // the heavy hitter stays
  EXPECT_LT(tail_rows, DeploymentCounters::kCellsPerThread);
  // Nothing is lost: what left the table is in `evicted`.
  EXPECT_GE(snapshot.evicted.requests(), DeploymentCounters::kCellsPerThread * 3 - tail_requests);
}

TEST(MetricsFamilies, RendersTrafficConnectionsAndIsolateFamilies) {
  MetricsSnapshot snapshot;
  RequestCounters::Row row;
  row.label = "api.example";
  row.by_class = {0, 1, 0, 0, 1};
  row.errors[static_cast<size_t>(ErrorKind::kCapacityExceeded)] = 1;
  row.request_body_bytes = 5;
  row.response_body_bytes = 6;
  row.duration.add(2'000'000);
  row.first_byte.add(1'000'000);
  snapshot.requests.push_back(row);
  using Event = RequestCounters::Event;
  auto set = [&](Event e, uint64_t n) { snapshot.totals.events[static_cast<size_t>(e)] = n; };
  set(Event::kConnectionAccepted, 10);
  set(Event::kHttp1Served, 6);
  set(Event::kHttp1Closed, 7);
  set(Event::kHttp2Started, 3);
  set(Event::kHttp2Closed, 1);
  set(Event::kTlsHandshake, 4);
  set(Event::kTlsHandshakeFailed, 2);
  set(Event::kWebSocketOpened, 5);
  set(Event::kWebSocketClosed, 4);
  snapshot.totals.isolate_wait.add(20'000'000);
  IsolateRegistry::Stats& pool = snapshot.isolates.pool;
  pool.code_cache_hits = 8;
  pool.waiting_code = 1;
  pool.starting = 2;
  pool.ready_now = 3;
  pool.stopping = 4;
  pool.queued = 9;
  pool.boot_cold.add(300'000'000);
  pool.boot_spare.add(30'000'000);
  const std::string text = renderMetrics(snapshot);
  for (const char* line : {
           "subgate_http_errors_total{server=\"api.example\",code=\"CAPACITY_EXCEEDED\"} 1\n",
           "subgate_http_errors_total{server=\"api.example\",code=\"DEPLOYMENT_FAILED\"} 0\n",
           "subgate_http_request_duration_seconds_bucket{server=\"api.example\",le=\"0.0025\"} 1\n",
           "subgate_http_request_duration_seconds_bucket{server=\"api.example\",le=\"0.001\"} 0\n",
           "subgate_http_request_duration_seconds_count{server=\"api.example\"} 1\n",
           "subgate_http_time_to_first_byte_seconds_bucket{server=\"api.example\",le=\"0.001\"} "
           "1\n",
           "subgate_http_request_body_bytes_total{server=\"api.example\"} 5\n",
           "subgate_http_response_body_bytes_total{server=\"api.example\"} 6\n",
           "subgate_connections_accepted_total 10\n",
           "subgate_connections_total{protocol=\"http1\"} 6\n",
           "subgate_connections_total{protocol=\"http2\"} 3\n",
           "subgate_connections_open{protocol=\"http1\"} 3\n",
           "subgate_connections_open{protocol=\"http2\"} 2\n",
           "subgate_tls_handshakes_total 4\n",
           "subgate_tls_handshake_failures_total 2\n",
           "subgate_websockets_total 5\n",
           "subgate_websockets_open 1\n",
           "subgate_isolate_code_cache_hits_total 8\n",
           "subgate_isolates_by_state{state=\"waiting_code\"} 1\n",
           "subgate_isolates_by_state{state=\"starting\"} 2\n",
           "subgate_isolates_by_state{state=\"ready\"} 3\n",
           "subgate_isolates_by_state{state=\"stopping\"} 4\n",
           "subgate_isolate_queued_requests 9\n",
           "subgate_isolate_boot_duration_seconds_bucket{spare=\"false\",le=\"0.25\"} 0\n",
           "subgate_isolate_boot_duration_seconds_bucket{spare=\"false\",le=\"0.5\"} 1\n",
           "subgate_isolate_boot_duration_seconds_bucket{spare=\"true\",le=\"0.05\"} 1\n",
           "subgate_isolate_wait_seconds_bucket{le=\"0.025\"} 1\n",
           "subgate_isolate_wait_seconds_count 1\n",
       })
    EXPECT_NE(text.find(line), std::string::npos) << line << "\nin:\n" << text;
  EXPECT_EQ(text.find("subgate_deployment_"), std::string::npos);  // metrics_deployments 0
}

TEST(MetricsFamilies, ShowsTheBusiestDeploymentsAndSumsTheRest) {
  MetricsSnapshot snapshot;
  snapshot.deployments_shown = 2;
  auto add = [&](std::string id, uint64_t ok, uint64_t full) {
    DeploymentCounters::Row row;
    row.subhoster = "sub";
    row.deployment_id = std::move(id);
    row.by_class[1] = ok;
    row.by_class[4] = full;
    row.errors[static_cast<size_t>(ErrorKind::kCapacityExceeded)] = full;
    for (uint64_t i = 0; i < ok + full; ++i) row.duration.add(1'000'000);
    snapshot.deployments.rows.push_back(row);
  };
  add("small", 1, 0);
  add("big", 10, 3);
  add("mid", 5, 0);
  add("tiny", 0, 1);
  snapshot.deployments.evicted.by_class[1] = 100;
  snapshot.deployment_isolates = {{"sub", "big", 2}, {"sub", "small", 1}, {"sub", "idle", 4}};
  const std::string text = renderMetrics(snapshot);
  for (
      const char* line : {
          "subgate_deployment_requests_total{deployment=\"big\",subhoster=\"sub\",code=\"2xx\"} "
          "10\n",
          "subgate_deployment_requests_total{deployment=\"mid\",subhoster=\"sub\",code=\"2xx\"} "
          "5\n",
          "subgate_deployment_requests_total{deployment=\"_other\",subhoster=\"\",code=\"2xx\"} "
          "101\n",
          "subgate_deployment_requests_total{deployment=\"_other\",subhoster=\"\",code=\"5xx\"} "
          "1\n",
          "subgate_deployment_errors_total{deployment=\"big\",subhoster=\"sub\",code=\"CAPACITY_"
          "EXCEEDED\"} 3\n",
          "subgate_deployment_errors_total{deployment=\"_other\",subhoster=\"\",code=\"CAPACITY_"
          "EXCEEDED\"} 1\n",
          "subgate_deployment_request_duration_seconds_count{deployment=\"big\",subhoster=\"sub\"} "
          "13\n",
          "subgate_deployment_request_duration_seconds_count{deployment=\"_other\",subhoster=\"\"} "
          "2\n",
          "subgate_deployment_isolates{deployment=\"big\",subhoster=\"sub\"} 2\n",
          "subgate_deployment_isolates{deployment=\"mid\",subhoster=\"sub\"} 0\n",
          "subgate_deployment_isolates{deployment=\"_other\",subhoster=\"\"} 5\n",
      })
    EXPECT_NE(text.find(line), std::string::npos) << line << "\nin:\n" << text;
  EXPECT_EQ(text.find("deployment=\"small\""), std::string::npos);
  EXPECT_EQ(text.find("deployment=\"tiny\""), std::string::npos);
}

constexpr const char* kConfig = R"(
server {
    listen 127.0.0.1:8081;
    server_name metrics-unit.example other.example;
    location = /metrics { metrics; }
    location = /ok { return 200 "ok"; }
    location = /moved { return 302 /ok; }
}
)";

uint64_t sampleOf(const std::string& text, const std::string& series) {
  std::string needle = "\n";
  needle.append(series).append(" ");
  const size_t at = text.find(needle);
  if (at == std::string::npos) return ~uint64_t{0};
  return std::stoull(text.substr(at + series.size() + 2));
}

TEST(MetricsModule, CountsTheRequestsOfItsServerByStatusClass) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  const std::string ok = R"(subgate_http_requests_total{server="metrics-unit.example",code="2xx"})";
  const std::string redirect =
      R"(subgate_http_requests_total{server="metrics-unit.example",code="3xx"})";
  const std::string missing =
      R"(subgate_http_requests_total{server="metrics-unit.example",code="4xx"})";
  auto first = harness.get("/metrics");
  EXPECT_EQ(first->transport.status, 200);
  EXPECT_EQ(first->transport.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(first->transport.header("cache-control"), "no-store");
  const std::string& before = first->transport.body;
  ASSERT_NE(sampleOf(before, ok), ~uint64_t{0}) << before;
  first->request.runLogPhase();  // the scrape itself is a 2xx once it ended

  for (const char* path : {"/ok", "/ok", "/moved", "/nowhere"})
    harness.get(path)->request.runLogPhase();
  harness.get("/ok");  // still in its log phase: not counted yet

  auto second = harness.get("/metrics");
  const std::string& after = second->transport.body;
  EXPECT_EQ(sampleOf(after, ok) - sampleOf(before, ok), 3u) << after;
  EXPECT_EQ(sampleOf(after, redirect) - sampleOf(before, redirect), 1u) << after;
  EXPECT_EQ(sampleOf(after, missing) - sampleOf(before, missing), 1u) << after;
  EXPECT_NE(after.find("\n# TYPE subgate_isolates gauge\nsubgate_isolates 0\n"), std::string::npos);
}

TEST(MetricsModule, LabelsAServerWithoutANameByItsFirstListen) {
  PipelineHarness harness(
      "server {\n listen 127.0.0.1:18099;\n listen 127.0.0.1:18098;\n"
      " location = /metrics { metrics; }\n location / { return 204; }\n}\n");
  ASSERT_TRUE(harness.ok()) << harness.error();
  const std::string series = R"(subgate_http_requests_total{server="127.0.0.1:18099",code="2xx"})";
  const uint64_t before = sampleOf(harness.get("/metrics")->transport.body, series);
  harness.get("/x")->request.runLogPhase();
  EXPECT_EQ(sampleOf(harness.get("/metrics")->transport.body, series), before + 1);
}

TEST(MetricsModule, AnswersOpenMetricsWhenAsked) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto om = harness.get("/metrics",
                        "Accept: application/openmetrics-text;version=1.0.0,"
                        "text/plain;version=0.0.4;q=0.5\r\n");
  EXPECT_EQ(om->transport.status, 200);
  EXPECT_EQ(om->transport.header("content-type"),
            "application/openmetrics-text; version=1.0.0; charset=utf-8");
  const std::string& body = om->transport.body;
  EXPECT_TRUE(body.ends_with("\n# EOF\n")) << body;
  EXPECT_NE(body.find("# TYPE subgate_http_requests counter\n"), std::string::npos);
  EXPECT_NE(body.find("# UNIT subgate_http_request_duration_seconds seconds\n"), std::string::npos);
  auto text = harness.get("/metrics", "Accept: text/plain\r\n");
  EXPECT_EQ(text->transport.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(text->transport.body.find("# EOF"), std::string::npos);
}

TEST(MetricsModule, CountsErrorAnswersByCode) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  const std::string series =
      R"(subgate_http_errors_total{server="metrics-unit.example",code="NOT_FOUND"})";
  const uint64_t before = sampleOf(harness.get("/metrics")->transport.body, series);
  harness.get("/nowhere")->request.runLogPhase();
  EXPECT_EQ(sampleOf(harness.get("/metrics")->transport.body, series), before + 1);
}

TEST(MetricsModule, ReadsMetricsDeployments) {
  PipelineHarness shown("metrics_deployments 3;\n" + std::string(kConfig));
  ASSERT_TRUE(shown.ok()) << shown.error();
  EXPECT_NE(shown.get("/metrics")->transport.body.find("subgate_deployment_requests_total{"),
            std::string::npos);
  PipelineHarness off("metrics_deployments 0;\n" + std::string(kConfig));
  ASSERT_TRUE(off.ok()) << off.error();
  EXPECT_EQ(off.get("/metrics")->transport.body.find("subgate_deployment_"), std::string::npos);
  EXPECT_EQ(configError("metrics_deployments 1025;\nserver { listen 127.0.0.1:8081; }\n")
                .find("<embedded>:1:"),
            0u);
  EXPECT_EQ(configError("server {\n listen 127.0.0.1:8081;\n metrics_deployments 5;\n}\n"),
            "<embedded>:3: \"metrics_deployments\" directive is not allowed here");
}

TEST(MetricsModule, HeadGetsTheHeadOnly) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto head = harness.run("HEAD /metrics HTTP/1.1\r\nHost: example.com\r\n\r\n");
  EXPECT_EQ(head->transport.status, 200);
  EXPECT_EQ(head->transport.body, "");
}

TEST(MetricsModule, RefusesArgumentsAndTheMainLevel) {
  EXPECT_EQ(configError("server {\n listen 127.0.0.1:8081;\n location = /m { metrics all; }\n}\n"),
            "<embedded>:3: invalid number of arguments in \"metrics\" directive");
  EXPECT_EQ(configError("metrics;\nserver { listen 127.0.0.1:8081; return 200; }\n"),
            "<embedded>:1: \"metrics\" directive is not allowed here");
  EXPECT_EQ(
      configError("server {\n listen 127.0.0.1:8081;\n location = /m { metrics; status; }\n}\n"),
      "<embedded>:3: more than one content handler (status and metrics)");
}

}  // namespace
}  // namespace subgate
