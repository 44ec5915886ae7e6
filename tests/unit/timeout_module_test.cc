// modules/timeout through the pipeline in memory: the response deadline each request gets
// (request_timeout, or x-deno-timeout-ms clamped by request_timeout_max) and the 400 for a bad
// header value. The header parser alone is tested in timeout_header_test.cc; enforcing the
// deadline (504 REQUEST_TIMED_OUT) is the proxy's, tested by the integration tier.
#include <gtest/gtest.h>

#include <chrono>

#include "core/net/clock.h"
#include "tests/support/pipeline_harness.h"

namespace subgate {
namespace {

using std::chrono::milliseconds;
using test_support::PipelineHarness;
using test_support::serverDirectiveError;

constexpr const char* kConfig = R"(
server {
    listen 127.0.0.1:8080;
    location / { return 200 "ok"; }
    location /short { request_timeout 2s; request_timeout_max 5s; return 200 "short"; }
    location /capped { request_timeout 10m; request_timeout_max 30s; return 200 "capped"; }
}
)";

// Runs a GET and checks that its deadline is `expected` after the moment it ran.
void expectDeadline(PipelineHarness& harness, std::string_view path, std::string_view extra,
                    milliseconds expected) {
  SCOPED_TRACE(std::string(path) + " " + std::string(extra));
  const SteadyTime before = steadyNow();
  auto exchange = harness.get(path, extra);
  const SteadyTime after = steadyNow();
  EXPECT_EQ(exchange->transport.status, 200);
  std::optional<SteadyTime> deadline = exchange->request.responseDeadline();
  ASSERT_TRUE(deadline);
  EXPECT_GE(*deadline, before + expected);
  EXPECT_LE(*deadline, after + expected);
}

TEST(TimeoutModule, WithoutTheHeaderRequestTimeoutApplies) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  expectDeadline(harness, "/", "", milliseconds(60000));  // the default
  expectDeadline(harness, "/short", "", milliseconds(2000));
  // request_timeout is itself capped by request_timeout_max.
  expectDeadline(harness, "/capped", "", milliseconds(30000));
}

TEST(TimeoutModule, TheHeaderSetsTheDeadlineUpToRequestTimeoutMax) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  expectDeadline(harness, "/", "x-deno-timeout-ms: 1500\r\n", milliseconds(1500));
  expectDeadline(harness, "/", "X-Deno-Timeout-Ms: 1\r\n", milliseconds(1));
  // Longer than request_timeout is fine, up to request_timeout_max (default 300s).
  expectDeadline(harness, "/", "x-deno-timeout-ms: 120000\r\n", milliseconds(120000));
  expectDeadline(harness, "/", "x-deno-timeout-ms: 9999999999\r\n", milliseconds(300000));
  expectDeadline(harness, "/short", "x-deno-timeout-ms: 4000\r\n", milliseconds(4000));
  expectDeadline(harness, "/short", "x-deno-timeout-ms: 60000\r\n", milliseconds(5000));
  expectDeadline(harness, "/capped", "x-deno-timeout-ms: 30001\r\n", milliseconds(30000));
}

TEST(TimeoutModule, ARepeatedHeaderTakesTheLastValue) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  expectDeadline(harness, "/", "x-deno-timeout-ms: 1000\r\nx-deno-timeout-ms: 2500\r\n",
                 milliseconds(2500));
}

TEST(TimeoutModule, ABadValueAnswers400BadRequest) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  for (const char* value : {"0", "-5", "abc", "1.5", "1e3", "12345678901", "", "+5"}) {
    SCOPED_TRACE(value);
    auto bad = harness.get("/", std::string("x-deno-timeout-ms: ") + value + "\r\n");
    EXPECT_EQ(bad->transport.status, 400);
    EXPECT_EQ(bad->transport.header("x-deno-error"),
              R"({"code":"BAD_REQUEST","message":"x-deno-timeout-ms must be a positive integer )"
              R"(of milliseconds"})");
    EXPECT_EQ(bad->transport.body,
              "400 Bad Request: x-deno-timeout-ms must be a positive integer of milliseconds "
              "(BAD_REQUEST)\n");
    EXPECT_EQ(bad->request.errorKind(), ErrorKind::kBadRequest);
    EXPECT_FALSE(bad->request.responseDeadline());
  }
  // One bad value among good ones is enough.
  auto mixed = harness.get("/", "x-deno-timeout-ms: 1000\r\nx-deno-timeout-ms: soon\r\n");
  EXPECT_EQ(mixed->transport.status, 400);
}

TEST(TimeoutModule, UnmatchedPathsGetADeadlineToo) {
  // The module is active everywhere, the server's fallback included: a bad header is refused
  // before the 404.
  PipelineHarness server_only(R"(
server {
    listen 127.0.0.1:8080;
    request_timeout 3s;
    location = /x { return 200; }
}
)");
  ASSERT_TRUE(server_only.ok()) << server_only.error();
  auto missing = server_only.get("/elsewhere", "x-deno-timeout-ms: nope\r\n");
  EXPECT_EQ(missing->transport.status, 400);
  auto not_found = server_only.get("/elsewhere");
  EXPECT_EQ(not_found->transport.status, 404);
  EXPECT_TRUE(not_found->request.responseDeadline());
}

TEST(TimeoutModule, RefusesDurationsThatAreNotPositive) {
  EXPECT_EQ(serverDirectiveError("request_timeout 0;"),
            "<embedded>:3: invalid duration \"0\" in \"request_timeout\" directive");
  EXPECT_EQ(serverDirectiveError("request_timeout soon;"),
            "<embedded>:3: invalid duration \"soon\" in \"request_timeout\" directive");
  EXPECT_EQ(serverDirectiveError("request_timeout_max -1s;"),
            "<embedded>:3: invalid duration \"-1s\" in \"request_timeout_max\" directive");
  EXPECT_EQ(serverDirectiveError("request_timeout 1s 2s;"),
            "<embedded>:3: invalid number of arguments in \"request_timeout\" directive");
}

}  // namespace
}  // namespace subgate
