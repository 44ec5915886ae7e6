// modules/status (`status;`) through the pipeline in memory: the isolate pool as JSON, which in
// a config that never started an isolate has every count at zero. Counts under load are the
// integration tier's (tests/integration/test_lua_hooks.py).
#include <gtest/gtest.h>
#include <jansson.h>

#include "core/isolates/isolate_registry.h"
#include "tests/support/pipeline_harness.h"

namespace subgate {
namespace {

using test_support::PipelineHarness;

// The body without the modules' counters (Module::counters(): token_cache_hits, lua_errors,
// lua_budget_hits), which count for the whole process and so depend on the tests that ran
// before; checks that they are there.
std::string withoutModuleCounters(std::string body) {
  for (const char* name : {"lua_budget_hits", "lua_errors", "token_cache_hits"}) {
    std::string key = ",\"";
    key.append(name).append("\":");
    size_t at = body.find(key);
    if (at == std::string::npos) {  // the first key of the object: no comma before it
      key.erase(0, 1);
      at = body.find(key);
    }
    EXPECT_NE(at, std::string::npos) << name << " in " << body;
    if (at != std::string::npos) body.erase(at, body.find_first_of(",}", at + 1) - at);
  }
  return body;
}

constexpr const char* kConfig = R"(
server {
    listen 127.0.0.1:8081;
    location = /status { status; }
    location / { return 200 "other"; }
}
)";

TEST(StatusModule, AnswersThePoolAsJsonThatIsNeverCached) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto status = harness.get("/status");
  EXPECT_EQ(status->transport.status, 200);
  EXPECT_EQ(status->transport.header("content-type"), "application/json");
  EXPECT_EQ(status->transport.header("cache-control"), "no-store");
  EXPECT_FALSE(status->transport.header("x-deno-error"));
  EXPECT_TRUE(status->transport.ended);
  // Compact, keys sorted, one line.
  EXPECT_EQ(
      withoutModuleCounters(status->transport.body),
      R"({"boot_backoff_answers":0,"boot_failures":0,"boots":0,"deployments":[],"egress_denied":0,"events_dropped":0,"events_failed":0,)"
      R"("events_origins":0,"events_posts":0,"events_queued":0,"events_rate_limited":0,)"
      R"("events_retries":0,"events_sent":0,"evicted_idle":0,"evicted_lru":0,"isolates":0,)"
      R"("processes":0,"ready":0,"spares":0,"sticky":0,"stopped_memory_limit":0,)"
      R"("stopped_time_limit":0})"
      "\n");
  EXPECT_EQ(status->transport.content_length, status->transport.body.size());

  json_error_t error;
  json_t* root = json_loads(status->transport.body.c_str(), 0, &error);
  ASSERT_TRUE(json_is_object(root)) << error.text;
  EXPECT_TRUE(json_is_integer(json_object_get(root, "token_cache_hits")));
  for (const char* count : {"isolates", "spares", "sticky", "boots", "processes"}) {
    EXPECT_TRUE(json_is_integer(json_object_get(root, count))) << count;
    EXPECT_EQ(json_integer_value(json_object_get(root, count)), 0) << count;
  }
  EXPECT_TRUE(json_is_array(json_object_get(root, "deployments")));
  EXPECT_EQ(json_array_size(json_object_get(root, "deployments")), 0u);
  json_decref(root);
}

TEST(StatusModule, ReadsThePoolOfItsOwnConfig) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  ASSERT_TRUE(harness.config().isolates);
  auto status = harness.get("/status");
  EXPECT_EQ(withoutModuleCounters(status->transport.body),
            harness.config().isolates->statusJson() + "\n");
  // Only where configured.
  auto other = harness.get("/other");
  EXPECT_EQ(other->transport.body, "other");
}

TEST(StatusModule, HeadGetsTheHeadWithoutTheJson) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto head = harness.run("HEAD /status HTTP/1.1\r\nHost: example.com\r\n\r\n");
  EXPECT_EQ(head->transport.status, 200);
  EXPECT_EQ(head->transport.header("content-type"), "application/json");
  EXPECT_EQ(head->transport.body, "");
  EXPECT_GT(head->transport.content_length.value_or(0), 0u);
}

TEST(StatusModule, RefusesArgumentsAndTheMainLevel) {
  PipelineHarness with_argument(
      "server {\n listen 127.0.0.1:8081;\n location = /status { status all; }\n}\n");
  EXPECT_FALSE(with_argument.ok());
  EXPECT_EQ(with_argument.error(),
            "<embedded>:3: invalid number of arguments in \"status\" directive");
  PipelineHarness main_level("status;\nserver { listen 127.0.0.1:8081; return 200; }\n");
  EXPECT_FALSE(main_level.ok());
  EXPECT_EQ(main_level.error(), "<embedded>:1: \"status\" directive is not allowed here");
}

}  // namespace
}  // namespace subgate
