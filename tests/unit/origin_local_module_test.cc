// modules/origin_local (`origin_local DIR;`) through the pipeline in memory: the built-in origin
// answering `GET .../boot?deployment_id=ID` (protocol.md §3) for deployment folders in a temp
// dir, with boot tokens signed here the way the boot client signs them
// (core/isolates/boot_client.cc). Its refusals are an origin's plain answers, not subgate
// failures: they carry no x-deno-error (the isolate runtime turns them into its own errors).
#include <gtest/gtest.h>
#include <jansson.h>

#include <ctime>
#include <string>

#include "core/events/gzip.h"
#include "core/jwt/jwt.h"
#include "modules/origin_local/origin_local_events.h"
#include "tests/support/pipeline_harness.h"
#include "tests/support/temp_dir.h"

namespace subgate {
namespace {

using test_support::PipelineHarness;
using test_support::TempDir;

constexpr const char* kSecret = "acme-secret-0123456789";
constexpr const char* kHelloCode = "Deno.serve(() => new Response(\"hello\"));\n";
constexpr const char* kHelloConfig =
    R"({"envs": {"GREETING": "hi"}, "permissions": {"net": false}, "ignored": 1})";

int64_t now() { return static_cast<int64_t>(std::time(nullptr)); }

// A boot token: claims iat, exp and deployment_id, no rpc_root.
std::string bootToken(std::string_view deployment_id, std::string_view secret = kSecret,
                      std::string_view kid = "acme", int64_t exp_in = 60) {
  return jwt::signHs256(kid,
                        "{\"iat\":" + std::to_string(now()) +
                            ",\"exp\":" + std::to_string(now() + exp_in) + ",\"deployment_id\":\"" +
                            std::string(deployment_id) + "\"}",
                        secret);
}

std::string bearer(const std::string& token) { return "Authorization: Bearer " + token + "\r\n"; }

class OriginLocalModuleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.write("deployments/hello/main.ts", kHelloCode);
    dir_.write("deployments/hello/config.json", kHelloConfig);
    dir_.write("deployments/plain.js/main.js", "export default {};\n");
    dir_.write("deployments/broken/main.ts", "1;\n");
    dir_.write("deployments/broken/config.json", "[1, 2]");
    dir_.write("deployments/empty/README", "no code here\n");
    harness_ = std::make_unique<PipelineHarness>(R"(
subhoster acme { secret acme-secret-0123456789; rpc_root_allow http://127.0.0.1:8000/origin/; }
server {
    listen 127.0.0.1:8000;
    location /origin/ { origin_local deployments; }
}
)",
                                                 dir_.path());
    ASSERT_TRUE(harness_->ok()) << harness_->error();
  }

  // GET /origin/boot?deployment_id=ID with a token for `token_for`.
  std::unique_ptr<PipelineHarness::Exchange> boot(std::string_view id, std::string_view token_for) {
    return harness_->get("/origin/boot?deployment_id=" + std::string(id),
                         bearer(bootToken(token_for)));
  }

  TempDir dir_;
  std::unique_ptr<PipelineHarness> harness_;
};

TEST_F(OriginLocalModuleTest, BootAnswersTheCodeAndItsDenoConfig) {
  auto hello = boot("hello", "hello");
  EXPECT_EQ(hello->transport.status, 200);
  EXPECT_EQ(hello->transport.body, kHelloCode);
  EXPECT_EQ(hello->transport.header("content-type"), "application/typescript; charset=utf-8");
  EXPECT_FALSE(hello->transport.header("x-deno-error"));
  std::optional<std::string> config = hello->transport.header("x-deno-config");
  ASSERT_TRUE(config);
  // entrypoint, then envs and permissions copied from config.json (other fields are not).
  EXPECT_EQ(*config, R"({"entrypoint":"file:///src/main.ts","envs":{"GREETING":"hi"},)"
                     R"("permissions":{"net":false}})");
}

TEST_F(OriginLocalModuleTest, AJavaScriptDeploymentWithoutConfigJsonHasOnlyItsEntrypoint) {
  auto plain = boot("plain.js", "plain.js");
  EXPECT_EQ(plain->transport.status, 200);
  EXPECT_EQ(plain->transport.body, "export default {};\n");
  EXPECT_EQ(plain->transport.header("x-deno-config"), R"({"entrypoint":"file:///src/main.js"})");
}

TEST_F(OriginLocalModuleTest, HeadAnswersTheHeadWithoutTheCode) {
  auto head = harness_->run("HEAD /origin/boot?deployment_id=hello HTTP/1.1\r\nHost: x\r\n" +
                            bearer(bootToken("hello")) + "\r\n");
  EXPECT_EQ(head->transport.status, 200);
  EXPECT_EQ(head->transport.content_length, std::string_view(kHelloCode).size());
  EXPECT_EQ(head->transport.body, "");
  EXPECT_TRUE(head->transport.header("x-deno-config"));
}

TEST_F(OriginLocalModuleTest, AMissingOrWrongTokenAnswers401) {
  struct Case {
    std::string authorization;
    const char* body;
  } cases[] = {
      {"", "missing bearer token\n"},
      {"Authorization: Basic YWNtZTpzZWNyZXQ=\r\n", "missing bearer token\n"},
      {bearer("not-a-token"), "invalid token: token is not three dot-separated parts\n"},
      {bearer(bootToken("hello", "another-secret-012345")),
       "invalid token: signature does not match\n"},
      {bearer(bootToken("hello", kSecret, "nobody")), "invalid token: unknown kid\n"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.authorization);
    auto refused = harness_->get("/origin/boot?deployment_id=hello", c.authorization);
    EXPECT_EQ(refused->transport.status, 401);
    EXPECT_EQ(refused->transport.body, c.body);
    EXPECT_EQ(refused->transport.header("content-type"), "text/plain; charset=utf-8");
    EXPECT_FALSE(refused->transport.header("x-deno-config"));
    EXPECT_FALSE(refused->transport.header("x-deno-error"));
  }
  // Expired beyond the 60s leeway.
  auto expired = harness_->get("/origin/boot?deployment_id=hello",
                               bearer(bootToken("hello", kSecret, "acme", -120)));
  EXPECT_EQ(expired->transport.status, 401);
  EXPECT_EQ(expired->transport.body.rfind("invalid token: token expired at ", 0), 0u)
      << expired->transport.body;
}

TEST_F(OriginLocalModuleTest, ATokenForAnotherDeploymentAnswers403) {
  auto other = boot("hello", "plain.js");
  EXPECT_EQ(other->transport.status, 403);
  EXPECT_EQ(other->transport.body, "the token is for another deployment\n");
}

TEST_F(OriginLocalModuleTest, AnUnknownDeploymentAnswers404) {
  auto unknown = boot("nope", "nope");
  EXPECT_EQ(unknown->transport.status, 404);
  EXPECT_EQ(unknown->transport.body, "no deployment \"nope\"\n");
  EXPECT_FALSE(unknown->transport.header("x-deno-config"));
  EXPECT_FALSE(unknown->transport.header("x-deno-error"));
  // A folder without main.ts or main.js is no deployment either.
  auto empty = boot("empty", "empty");
  EXPECT_EQ(empty->transport.status, 404);
  EXPECT_EQ(empty->transport.body, "no deployment \"empty\"\n");
}

TEST_F(OriginLocalModuleTest, MalformedDeploymentIdsAnswer400BeforeTheToken) {
  for (const char* query :
       {"", "?deployment_id=", "?other=hello", "?deployment_id=..", "?deployment_id=.hidden",
        "?deployment_id=a/b", "?deployment_id=%2E%2E", "?deployment_id=a%20b"}) {
    SCOPED_TRACE(query);
    auto bad = harness_->get(std::string("/origin/boot") + query, bearer(bootToken("hello")));
    EXPECT_EQ(bad->transport.status, 400);
    EXPECT_EQ(bad->transport.body, "missing or malformed deployment_id\n");
  }
  auto too_long = boot(std::string(129, 'a'), std::string(129, 'a'));
  EXPECT_EQ(too_long->transport.status, 400);
  auto longest = boot(std::string(128, 'a'), std::string(128, 'a'));
  EXPECT_EQ(longest->transport.status, 404);  // valid, just not there
}

TEST_F(OriginLocalModuleTest, OnlyGetAndHeadOfBootAreServed) {
  auto other_path = harness_->get("/origin/code?deployment_id=hello", bearer(bootToken("hello")));
  EXPECT_EQ(other_path->transport.status, 404);
  EXPECT_EQ(other_path->transport.body,
            "not found: this origin serves GET .../boot and .../events\n");
  auto post = harness_->run("POST /origin/boot?deployment_id=hello HTTP/1.1\r\nHost: x\r\n" +
                            bearer(bootToken("hello")) + "Content-Length: 0\r\n\r\n");
  EXPECT_EQ(post->transport.status, 405);
  EXPECT_EQ(post->transport.body, "method not allowed\n");
}

TEST_F(OriginLocalModuleTest, AnInvalidConfigJsonAnswers500) {
  auto broken = boot("broken", "broken");
  EXPECT_EQ(broken->transport.status, 500);
  EXPECT_EQ(broken->transport.body.rfind(dir_.path() + "/deployments/broken/config.json is not a "
                                                       "JSON object",
                                         0),
            0u)
      << broken->transport.body;
  EXPECT_FALSE(broken->transport.header("x-deno-config"));
}

TEST(OriginLocalModule, ServesTheShippedHelloDeployment) {
  PipelineHarness harness(R"(
subhoster local { secret local-secret-0123456789; }
server { listen 127.0.0.1:8000; origin_local conf/deployments; }
)",
                          SUBGATE_SOURCE_DIR);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto hello = harness.get("/boot?deployment_id=hello",
                           bearer(bootToken("hello", "local-secret-0123456789", "local")));
  EXPECT_EQ(hello->transport.status, 200);
  EXPECT_NE(hello->transport.body.find("Deno.serve"), std::string::npos);
  json_error_t error;
  json_t* config =
      json_loads(hello->transport.header("x-deno-config").value_or("").c_str(), 0, &error);
  ASSERT_TRUE(json_is_object(config)) << error.text;
  EXPECT_STREQ(json_string_value(json_object_get(config, "entrypoint")), "file:///src/main.ts");
  EXPECT_TRUE(json_is_object(json_object_get(config, "envs")));
  json_decref(config);
}

TEST(OriginLocalModule, RefusesAMissingFolderOrNoSubhoster) {
  PipelineHarness missing(
      "subhoster a { secret 0123456789abcdef; }\n"
      "server {\n listen 127.0.0.1:8000;\n origin_local /nonexistent/deployments;\n}\n");
  EXPECT_FALSE(missing.ok());
  EXPECT_EQ(missing.error(),
            "<embedded>:4: origin_local folder \"/nonexistent/deployments\" does not exist");
  TempDir dir;
  PipelineHarness no_subhoster("server {\n listen 127.0.0.1:8000;\n origin_local " + dir.path() +
                               ";\n}\n");
  EXPECT_FALSE(no_subhoster.ok());
  EXPECT_EQ(no_subhoster.error(),
            "<embedded>:3: origin_local needs a subhoster block: /boot tokens are verified with "
            "its secret");
}

// ---- POST/GET .../events (origin_local_events.h)

// An events token: iat and exp, no deployment_id (core/events/event_sender.cc signs the same).
std::string eventsToken(std::string_view secret = kSecret, std::string_view kid = "acme") {
  return jwt::signHs256(
      kid, "{\"iat\":" + std::to_string(now()) + ",\"exp\":" + std::to_string(now() + 60) + "}",
      secret);
}

std::string eventLine(std::string_view deployment, std::string_view msg) {
  return R"({"deployment_id":")" + std::string(deployment) +
         R"(","timestamp":"2026-12-06T23:50:45.123Z","event_type":"log","event":{"msg":")" +
         std::string(msg) + R"(","level":"info"},"execution_id":"e-1","region":"local"})" + "\n";
}

class OriginLocalEventsTest : public OriginLocalModuleTest {
 protected:
  // POSTs `body` (gzip'd unless `encoding` is empty) with `token`; the body goes to the
  // handler's sink as a transport would deliver it.
  std::unique_ptr<PipelineHarness::Exchange> post(const std::string& body, const std::string& token,
                                                  std::string encoding = "gzip") {
    std::string sent = body;
    if (encoding == "gzip") {
      EXPECT_TRUE(gzipCompress(body, sent));
    }
    std::string head =
        "POST /origin/events HTTP/1.1\r\nHost: x\r\n" + bearer(token) +
        "Content-Type: application/x-ndjson\r\nContent-Length: " + std::to_string(sent.size()) +
        "\r\n";
    if (!encoding.empty()) head += "Content-Encoding: " + encoding + "\r\n";
    auto exchange = harness_->run(head + "\r\n");
    if (BodySink* sink = exchange->request.bodySink()) {
      sink->onBodyData(sent);
      sink->onBodyEnd({});
    }
    return exchange;
  }
  std::string shown(std::string_view deployment) {
    auto r = harness_->get("/origin/events?deployment_id=" + std::string(deployment));
    EXPECT_EQ(r->transport.status, 200);
    EXPECT_EQ(r->transport.header("content-type"), "application/json");
    return r->transport.body;
  }
};

TEST_F(OriginLocalEventsTest, StoresWhatIsPostedAndShowsItPerDeployment) {
  auto r = post(eventLine("hello", "one") + eventLine("other", "x") + eventLine("hello", "two"),
                eventsToken());
  EXPECT_EQ(r->transport.status, 200);
  EXPECT_EQ(r->transport.body, "OK\n");
  const std::string hello = shown("hello");
  EXPECT_EQ(hello.rfind(R"({"deployment_id":"hello","events":[{"deployment_id":"hello",)", 0), 0u)
      << hello;
  EXPECT_LT(hello.find("\"one\""), hello.find("\"two\"")) << "oldest first";
  EXPECT_EQ(hello.find("\"x\""), std::string::npos);
  EXPECT_EQ(shown("nobody"), "{\"deployment_id\":\"nobody\",\"events\":[]}\n");
  // A body without Content-Encoding is taken as it is.
  EXPECT_EQ(post(eventLine("plain", "p"), eventsToken(), "")->transport.status, 200);
  EXPECT_NE(shown("plain").find("\"p\""), std::string::npos);
}

TEST_F(OriginLocalEventsTest, RefusesBadTokensAndBodies) {
  const std::string line = eventLine("hello", "m");
  EXPECT_EQ(post(line, eventsToken("not-the-secret-0123456789"))->transport.status, 401);
  EXPECT_EQ(post(line, eventsToken(kSecret, "nobody"))->transport.status, 401);
  auto boot_token = post(line, bootToken("hello"));
  EXPECT_EQ(boot_token->transport.status, 401) << "a /boot token carries a deployment_id";
  EXPECT_NE(boot_token->transport.body.find("deployment_id"), std::string::npos);
  EXPECT_EQ(post(line, eventsToken(), "br")->transport.status, 415);
  auto not_gzip =
      harness_->run("POST /origin/events HTTP/1.1\r\nHost: x\r\n" + bearer(eventsToken()) +
                    "Content-Encoding: gzip\r\nContent-Length: 3\r\n\r\n");
  not_gzip->request.bodySink()->onBodyData("abc");
  not_gzip->request.bodySink()->onBodyEnd({});
  EXPECT_EQ(not_gzip->transport.status, 400);
  for (const std::string& bad :
       {std::string("not json\n"), std::string("[1]\n"),
        std::string(R"({"deployment_id":"","timestamp":"t","event_type":"log","event":{},)"
                    R"("execution_id":"e","region":"r"})") +
            "\n",
        std::string(R"({"deployment_id":"d","timestamp":"t","event_type":"log","event":"x",)"
                    R"("execution_id":"e","region":"r"})") +
            "\n"}) {
    SCOPED_TRACE(bad);
    auto r = post(line + bad, eventsToken());
    EXPECT_EQ(r->transport.status, 400);
    EXPECT_EQ(r->transport.body, "line 2 is not an event\n");
  }
  EXPECT_EQ(shown("hello"), "{\"deployment_id\":\"hello\",\"events\":[]}\n")
      << "a refused body adds nothing";
  auto put = harness_->run("PUT /origin/events HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(put->transport.status, 405);
  EXPECT_EQ(harness_->get("/origin/events")->transport.status, 400);
}

TEST(OriginEventStore, KeepsTheLastEventsOfTheMostRecentDeployments) {
  OriginEventStore store(2, 2);
  size_t added = 0;
  std::string error;
  ASSERT_TRUE(store.add(eventLine("a", "1") + eventLine("a", "2") + "\n" + eventLine("a", "3"),
                        added, error))
      << error;
  EXPECT_EQ(added, 3u);
  std::string a = store.json("a");
  EXPECT_EQ(a.find("\"1\""), std::string::npos) << "2 per deployment";
  EXPECT_NE(a.find("\"3\""), std::string::npos);
  ASSERT_TRUE(store.add(eventLine("b", "b1"), added, error));
  ASSERT_TRUE(store.add(eventLine("a", "4"), added, error));   // a is the most recent again
  ASSERT_TRUE(store.add(eventLine("c", "c1"), added, error));  // 2 deployments: b goes
  EXPECT_EQ(store.json("b"), R"({"deployment_id":"b","events":[]})");
  EXPECT_NE(store.json("a").find("\"4\""), std::string::npos);
  EXPECT_NE(store.json("c").find("c1"), std::string::npos);
}

}  // namespace
}  // namespace subgate
