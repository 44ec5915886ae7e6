// modules/isolates through the pipeline in memory, up to where it would ask the isolate runtime
// for an isolate (which needs a worker and real processes: the integration tier,
// tests/integration/test_ingress_isolates.py): the requests it refuses first, its directives, and
// the runtime it leaves in the compiled config.
#include <gtest/gtest.h>

#include <ctime>
#include <string>

#include "core/isolates/isolate_registry.h"
#include "core/jwt/jwt.h"
#include "tests/support/pipeline_harness.h"

namespace subgate {
namespace {

using test_support::configError;
using test_support::PipelineHarness;

constexpr const char* kSecret = "isolates-test-secret-0123";

constexpr const char* kConfig = R"(
subhoster acme { secret isolates-test-secret-0123; }
runtime deno { spare 0; }
server {
    listen 127.0.0.1:8080;
    location /relayed { subhost_auth on; isolates; }
    location /unauthenticated { isolates; }
    location /short { subhost_auth on; isolates; isolate_loop_limit 2; }
}
)";

std::string token() {
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  return jwt::signHs256("acme",
                        "{\"iat\":" + std::to_string(now) +
                            ",\"exp\":" + std::to_string(now + 900) +
                            ",\"deployment_id\":\"dep\",\"rpc_root\":\"http://127.0.0.1:9/\"}",
                        kSecret);
}

std::string errorCode(const test_support::RecordingTransport& transport) {
  auto header = transport.header("x-deno-error");
  if (!header) return "";
  size_t at = header->find("\"code\":\"");
  return at == std::string::npos ? "" : header->substr(at + 8, header->find('"', at + 8) - at - 8);
}

TEST(IsolatesModule, ALocationWithoutADeploymentAnswers500) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto none = harness.get("/unauthenticated");
  EXPECT_EQ(none->transport.status, 500);
  EXPECT_EQ(errorCode(none->transport), "INTERNAL_SERVER_ERROR");
  EXPECT_NE(none->transport.header("x-deno-error")->find("no deployment was chosen"),
            std::string::npos);
}

TEST(IsolatesModule, AnInvalidInstanceIdAnswers400BeforeAnyIsolateIsAskedFor) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  const std::string auth = "x-deno-subhost: " + token() + "\r\n";
  auto too_long = harness.get(
      "/relayed", auth + "x-deno-isolate-instance-id: " + std::string(300, 'x') + "\r\n");
  EXPECT_EQ(too_long->transport.status, 400);
  EXPECT_EQ(errorCode(too_long->transport), "BAD_REQUEST");
  auto bad_escape = harness.get("/relayed?deno_isolate_instance_id=%zz", auth);
  EXPECT_EQ(bad_escape->transport.status, 400);
  EXPECT_EQ(errorCode(bad_escape->transport), "BAD_REQUEST");
  // Nothing was started: the runtime of this config never ran.
  EXPECT_EQ(harness.config().isolates->stats().processes, 0u);
}

TEST(IsolatesModule, ARequestAtTheLoopLimitAnswers508BeforeAnyIsolateIsAskedFor) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  const std::string auth = "x-deno-subhost: " + token() + "\r\n";
  // The default limit (8), counted in subgate's CDN-Loop entry among other CDNs' entries.
  auto looped = harness.get("/relayed", auth + "cdn-loop: cdn.example, subgate; hops=8\r\n");
  EXPECT_EQ(looped->transport.status, 508);
  EXPECT_EQ(errorCode(looped->transport), "LOOP_DETECTED");
  EXPECT_NE(looped->transport.header("x-deno-error")->find("isolate_loop_limit 8"),
            std::string::npos);
  // Fields of one list on several lines count together; the location's own limit applies.
  auto short_limit =
      harness.get("/short", auth + "cdn-loop: cdn.example\r\ncdn-loop: subgate; hops=2\r\n");
  EXPECT_EQ(short_limit->transport.status, 508);
  EXPECT_EQ(errorCode(short_limit->transport), "LOOP_DETECTED");
  EXPECT_EQ(harness.config().isolates->stats().processes, 0u);
}

TEST(IsolatesModule, EveryConfigHasARuntimeThatStartsNothingUntilActivated) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  ASSERT_TRUE(harness.config().isolates);
  IsolateRegistry::Stats stats = harness.config().isolates->stats();
  EXPECT_EQ(stats.isolates, 0u);
  EXPECT_EQ(stats.spares, 0u);
  EXPECT_EQ(stats.boots, 0u);
  PipelineHarness other(kConfig);
  ASSERT_TRUE(other.ok()) << other.error();
  EXPECT_NE(other.config().isolates, harness.config().isolates);  // no process-wide singleton
}

TEST(IsolatesModule, RefusesBadRuntimeBlocksAndLimits) {
  EXPECT_EQ(
      configError("runtime node { }\nserver { listen 127.0.0.1:1; location / { isolates; } }"),
      "<embedded>:1: unknown runtime \"node\" (only \"deno\")");
  EXPECT_EQ(configError("runtime deno { spare 100; }\n"
                        "server { listen 127.0.0.1:1; location / { isolates; } }"),
            "<embedded>:1: invalid number \"100\" in \"spare\" directive");
  EXPECT_EQ(configError("server { listen 127.0.0.1:1; location / { isolates; isolate_limit 0; } }"),
            "<embedded>:1: invalid number \"0\" in \"isolate_limit\" directive");
  EXPECT_EQ(configError("server { listen 127.0.0.1:1; location / { isolates; "
                        "isolate_loop_limit 0; } }"),
            "<embedded>:1: invalid number \"0\" in \"isolate_loop_limit\" directive");
  EXPECT_EQ(configError("runtime deno { max_instances_per_deployment 0; }\n"
                        "server { listen 127.0.0.1:1; location / { isolates; } }"),
            "<embedded>:1: invalid number \"0\" in \"max_instances_per_deployment\" directive");
  EXPECT_EQ(configError("runtime deno { origin_ca_file /nonexistent/ca.pem; }\n"
                        "server { listen 127.0.0.1:1; location / { isolates; } }"),
            "<embedded>:1: cannot read origin_ca_file \"/nonexistent/ca.pem\"");
  EXPECT_EQ(configError("runtime deno { region \"us east\"; }\n"
                        "server { listen 127.0.0.1:1; location / { isolates; } }"),
            "<embedded>:1: region \"us east\" must be 1 to 64 letters, digits, '-', '_' or '.'");
}

TEST(IsolatesModule, EventsDirectives) {
  // Every events directive of the runtime block, and the subhoster's switch (subhost_auth).
  PipelineHarness harness(R"(
subhoster acme { secret isolates-test-secret-0123; events on; }
runtime deno {
    spare 0;
    events_batch_events 200; events_batch_bytes 512k; events_flush_interval 250ms;
    events_queue 5000; events_retry 100ms 10s 3; events_timeout 2s; events_log_rate 50 32k;
    isolate_log_level debug;
}
server { listen 127.0.0.1:8080; location / { subhost_auth on; isolates; } }
)");
  EXPECT_TRUE(harness.ok()) << harness.error();
  for (const char* off : {"events_log_rate off;", "isolate_log_level off;"}) {
    PipelineHarness other(std::string("runtime deno { spare 0; ") + off +
                          " }\nserver { listen 127.0.0.1:1; location / { isolates; } }");
    EXPECT_TRUE(other.ok()) << off << ": " << other.error();
  }
  auto error = [](std::string_view directives) {
    return configError("runtime deno { " + std::string(directives) +
                       " }\nserver { listen 127.0.0.1:1; location / { isolates; } }");
  };
  EXPECT_EQ(error("events_batch_events 0;"),
            "<embedded>:1: invalid number \"0\" in \"events_batch_events\" directive");
  EXPECT_NE(error("events_batch_bytes 10;").find("events_batch_bytes"), std::string::npos);
  EXPECT_NE(error("events_flush_interval 0s;").find("events_flush_interval"), std::string::npos);
  EXPECT_EQ(error("events_queue 0;"),
            "<embedded>:1: invalid number \"0\" in \"events_queue\" directive");
  EXPECT_EQ(error("events_retry 1s 100ms 3;"),
            "<embedded>:1: events_retry takes MIN MAX ATTEMPTS with durations 0 < MIN <= MAX");
  EXPECT_EQ(error("events_retry 100ms 1s 0;"),
            "<embedded>:1: events_retry ATTEMPTS must be a number from 1 to 100");
  EXPECT_NE(error("events_retry 100ms 1s;").find("events_retry"), std::string::npos);
  EXPECT_EQ(error("events_log_rate 10;"), "<embedded>:1: events_log_rate takes LINES BYTES or off");
  EXPECT_EQ(error("events_log_rate 10 100;"),
            "<embedded>:1: events_log_rate BYTES must be a size of at least 1k");
  EXPECT_EQ(error("isolate_log_level loud;"),
            "<embedded>:1: isolate_log_level takes debug, info, notice, warn, error or off");
  EXPECT_NE(configError("subhoster acme { secret isolates-test-secret-0123; events maybe; }")
                .find("events"),
            std::string::npos);
}

}  // namespace
}  // namespace subgate
