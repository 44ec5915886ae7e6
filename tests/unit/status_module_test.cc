// modules/status (`status;`) through the pipeline in memory: the isolate pool as JSON, which in
// a config that never started an isolate has every count at zero. Counts under load are the
// integration tier's (tests/integration/test_lua_hooks.py).
#include <gtest/gtest.h>
#include <jansson.h>
#include <openssl/evp.h>

#include <cstdlib>
#include <string>

#include "core/isolates/isolate_registry.h"
#include "core/pipeline/request_counters.h"
#include "modules/status/status_history.h"
#include "modules/status/status_page.h"
#include "tests/support/pipeline_harness.h"

namespace subgate {
namespace {

using test_support::PipelineHarness;

// The body without what counts for the whole process and so depends on the tests that ran
// before: the modules' counters (Module::counters(): token_cache_hits, lua_errors,
// lua_budget_hits), the requests by server
// and the history (status_json.h), and the time. Checks that they are there.
std::string withoutProcessCounts(const std::string& body) {
  json_error_t error;
  json_t* root = json_loads(body.c_str(), 0, &error);
  EXPECT_TRUE(json_is_object(root)) << error.text << body;
  if (!root) return body;
  for (const char* key : {"token_cache_hits", "lua_errors", "lua_budget_hits", "requests",
                          "servers", "history", "time_ms"}) {
    EXPECT_TRUE(json_object_get(root, key)) << key;
    json_object_del(root, key);
  }
  char* text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
  std::string out = text ? text : "";
  free(text);
  json_decref(root);
  return out;
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
  EXPECT_EQ(status->transport.body.find('\n'), status->transport.body.size() - 1);
  EXPECT_EQ(
      withoutProcessCounts(status->transport.body),
      R"({"boot_backoff_answers":0,"boot_failures":0,"boots":0,"deployments":[],"egress_denied":0,"events_dropped":0,"events_failed":0,)"
      R"("events_origins":0,"events_posts":0,"events_queued":0,"events_rate_limited":0,)"
      R"("events_retries":0,"events_sent":0,"evicted_idle":0,"evicted_lru":0,)"
      R"("isolate_boot_failures":0,"isolates":0,"processes":0,"queued":0,"ready":0,)"
      R"("recent_boots":[],"spares":0,"sticky":0,"stopped_failed":0,"stopped_memory_limit":0,"stopped_time_limit":0})");
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
  EXPECT_EQ(withoutProcessCounts(status->transport.body), harness.config().isolates->statusJson());
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

TEST(StatusModule, AddsRequestsByStatusClassAndTheHistory) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  const uint32_t slot = RequestCounters::slotFor("status-test.example");
  RequestCounters::count(slot, 200);
  RequestCounters::count(slot, 503);
  RequestCounters::count(slot, 503);
  const int64_t before = unixMillisNow();
  auto status = harness.get("/status");
  json_error_t error;
  json_t* root = json_loads(status->transport.body.c_str(), 0, &error);
  ASSERT_TRUE(json_is_object(root)) << error.text;
  EXPECT_GE(json_integer_value(json_object_get(root, "time_ms")), before);
  json_t* requests = json_object_get(root, "requests");
  for (const char* k : {"1xx", "2xx", "3xx", "4xx", "5xx"})
    EXPECT_TRUE(json_is_integer(json_object_get(requests, k))) << k;
  EXPECT_GE(json_integer_value(json_object_get(requests, "5xx")), 2);
  bool found = false;
  size_t i;
  json_t* server;
  json_array_foreach(json_object_get(root, "servers"), i, server) {
    if (std::string(json_string_value(json_object_get(server, "server"))) != "status-test.example")
      continue;
    found = true;
    EXPECT_EQ(json_integer_value(json_object_get(server, "2xx")), 1);
    EXPECT_EQ(json_integer_value(json_object_get(server, "5xx")), 2);
    EXPECT_EQ(json_integer_value(json_object_get(server, "4xx")), 0);
  }
  EXPECT_TRUE(found) << status->transport.body;
  // The read took a sample unless one is recent (no sampler thread runs here; the history is the
  // process's, so an earlier test's read may have taken it).
  json_t* history = json_object_get(root, "history");
  EXPECT_EQ(json_integer_value(json_object_get(history, "interval_ms")), 2000);
  json_t* samples = json_object_get(history, "samples");
  ASSERT_GE(json_array_size(samples), 1u);
  json_t* newest = json_array_get(samples, json_array_size(samples) - 1);
  EXPECT_EQ(json_array_size(json_object_get(newest, "requests")), 5u);
  EXPECT_GE(json_integer_value(json_object_get(newest, "time_ms")), before - 2000);
  for (const char* k : {"time_ms", "ready", "boot_failures", "isolates", "queued"})
    EXPECT_TRUE(json_is_integer(json_object_get(newest, k))) << k;
  json_decref(root);
}

std::string get(PipelineHarness& harness, std::string_view accept,
                std::string_view method = "GET") {
  std::string raw(method);
  raw += " /status HTTP/1.1\r\nHost: example.com\r\n";
  if (!accept.empty()) {
    raw += "Accept: ";
    raw += accept;
    raw += "\r\n";
  }
  raw += "\r\n";
  auto exchange = harness.run(raw);
  EXPECT_EQ(exchange->transport.status, 200);
  EXPECT_EQ(exchange->transport.header("vary"), "Accept");
  EXPECT_EQ(exchange->transport.header("cache-control"), "no-store");
  return std::string(exchange->transport.header("content-type").value_or(""));
}

TEST(StatusModule, AnswersThePageToABrowserAndJsonToEveryoneElse) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  constexpr const char* kBrowser =
      "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
  EXPECT_EQ(get(harness, kBrowser), "text/html; charset=utf-8");
  EXPECT_EQ(get(harness, kBrowser, "HEAD"), "text/html; charset=utf-8");
  EXPECT_EQ(get(harness, "*/*"), "application/json");  // curl
  EXPECT_EQ(get(harness, ""), "application/json");
  EXPECT_EQ(get(harness, "application/json"), "application/json");  // the page's own fetch

  auto page = harness.run("GET /status HTTP/1.1\r\nHost: example.com\r\nAccept: text/html\r\n\r\n");
  EXPECT_EQ(page->transport.body, statusPageHtml());
  EXPECT_EQ(page->transport.header("x-content-type-options"), "nosniff");
  const std::string policy(page->transport.header("content-security-policy").value_or(""));
  EXPECT_EQ(policy, statusPagePolicy());
  EXPECT_NE(policy.find("default-src 'none'"), std::string::npos) << policy;
  EXPECT_NE(policy.find("connect-src 'self'"), std::string::npos) << policy;
  // Only styles may be inline without a hash; the script is allowed by its hash.
  EXPECT_NE(policy.find("script-src 'sha256-"), std::string::npos) << policy;
  EXPECT_EQ(policy.find("'unsafe-inline'"), policy.find("style-src 'unsafe-inline'") + 10)
      << policy;
  EXPECT_EQ(policy.find("'unsafe-inline'"), policy.rfind("'unsafe-inline'")) << policy;
}

TEST(StatusModule, ThePolicyAllowsThePageScriptByItsHash) {
  const std::string_view page = statusPageHtml();
  const size_t open = page.find("<script>");
  const size_t close = page.find("</script>");
  ASSERT_NE(open, std::string_view::npos);
  ASSERT_NE(close, std::string_view::npos);
  EXPECT_EQ(page.find("<script", open + 1), std::string_view::npos) << "one inline script";
  const std::string_view script = page.substr(open + 8, close - open - 8);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  ASSERT_EQ(EVP_Digest(script.data(), script.size(), digest, &length, EVP_sha256(), nullptr), 1);
  unsigned char encoded[64] = {};
  EVP_EncodeBlock(encoded, digest, static_cast<int>(length));
  std::string source = "script-src 'sha256-";
  source.append(reinterpret_cast<const char*>(encoded));
  source += '\'';
  EXPECT_NE(statusPagePolicy().find(source), std::string::npos) << statusPagePolicy();
  // The page inserts data as text only.
  EXPECT_EQ(page.find("innerHTML"), std::string_view::npos);
  EXPECT_EQ(page.find("insertAdjacentHTML"), std::string_view::npos);
  EXPECT_EQ(page.find("document.write"), std::string_view::npos);
  // Self-contained: nothing loads from elsewhere.
  const std::string_view svg_namespace = "http://www.w3.org/2000/svg";  // a name, not a load
  EXPECT_EQ(page.find("http://"), page.find(svg_namespace));
  EXPECT_EQ(page.find("http://", page.find(svg_namespace) + 1), std::string_view::npos);
  EXPECT_EQ(page.find("https://"), std::string_view::npos);
  EXPECT_EQ(page.find(" src="), std::string_view::npos);
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
