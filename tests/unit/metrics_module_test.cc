// modules/metrics (`metrics;`): the text format (escaping), the families rendered from a
// snapshot, the per-thread request counters, and the handler through the pipeline in memory.
// Scraped values under real traffic are the integration tier's (tests/integration/test_metrics.py).
#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <thread>

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
  pool.events_rate_limited = 15;
  snapshot.isolates.cluster.broadcasts = 16;
  snapshot.isolates.cluster.rejected = 17;
  snapshot.isolates.events.sent = 18;
  snapshot.isolates.events.queued = 19;
  snapshot.requests.push_back({"api.example", {0, 20, 0, 21, 22}});
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
    EXPECT_EQ(line.substr(0, line.find_first_of("{ ")), family) << line;
  }
  EXPECT_EQ(seen.size(), 30u);
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
