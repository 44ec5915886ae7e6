// modules/forwarded_host (`forwarded_host on;`) through the pipeline in memory: a request must
// carry a valid x-forwarded-host, which becomes the route decision's forwarded host; the
// scheme follows x-forwarded-proto. The decision is read from the Request after a `return 200`
// answered it (no worker needed).
#include <gtest/gtest.h>

#include "tests/support/pipeline_harness.h"

namespace subgate {
namespace {

using test_support::PipelineHarness;

constexpr const char* kConfig = R"(
server {
    listen 127.0.0.1:8080;
    forwarded_host on;
    location / { return 200 "ok"; }
    location /open { forwarded_host off; return 200 "open"; }
}
)";

constexpr const char* kMissingMessage =
    "the x-forwarded-host header is missing; subhosted requests must carry it";
constexpr const char* kInvalidMessage =
    "x-forwarded-host is not a valid host (a name, an IPv4 address or [IPv6], with an optional "
    ":port)";

std::string errorHeader(const char* code, std::string_view message) {
  return std::string(R"({"code":")") + code + R"(","message":")" + std::string(message) + "\"}";
}

TEST(ForwardedHostModule, AValidHostBecomesTheForwardedHost) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  for (const char* host :
       {"app.example.com", "app.example.com:8443", "192.0.2.1", "192.0.2.1:80", "[2001:db8::1]",
        "[2001:db8::1]:443", "localhost", "xn--bcher-kva.example"}) {
    SCOPED_TRACE(host);
    auto ok = harness.get("/", std::string("x-forwarded-host: ") + host + "\r\n", "relay.internal");
    EXPECT_EQ(ok->transport.status, 200);
    EXPECT_EQ(ok->transport.body, "ok");
    EXPECT_EQ(ok->request.route().forwarded_host, host);
    EXPECT_TRUE(ok->request.route().https);
  }
}

TEST(ForwardedHostModule, ForwardedProtoHttpTurnsHttpsOff) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  struct Case {
    const char* proto;
    bool https;
  } cases[] = {{"http", false}, {"HTTP", false}, {"https", true}, {"ftp", true}, {"", true}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.proto);
    auto ok = harness.get("/", std::string("x-forwarded-host: app.example.com\r\n") +
                                   "x-forwarded-proto: " + c.proto + "\r\n");
    EXPECT_EQ(ok->transport.status, 200);
    EXPECT_EQ(ok->request.route().https, c.https);
  }
  auto without = harness.get("/", "x-forwarded-host: app.example.com\r\n");
  EXPECT_TRUE(without->request.route().https);
}

TEST(ForwardedHostModule, AMissingOrEmptyHeaderAnswers400MissingXforwardedHost) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  for (const char* extra : {"", "x-forwarded-host: \r\n", "x-forwarded-proto: https\r\n"}) {
    SCOPED_TRACE(extra);
    auto missing = harness.get("/", extra);
    EXPECT_EQ(missing->transport.status, 400);
    EXPECT_EQ(missing->transport.header("x-deno-error"),
              errorHeader("MISSING_XFORWARDED_HOST", kMissingMessage));
    EXPECT_EQ(missing->transport.body,
              std::string("400 Bad Request: ") + kMissingMessage + " (MISSING_XFORWARDED_HOST)\n");
    EXPECT_EQ(missing->request.errorKind(), ErrorKind::kMissingForwardedHost);
    EXPECT_EQ(missing->request.route().forwarded_host, "");
  }
}

TEST(ForwardedHostModule, AnInvalidHostAnswers400InvalidHostHeader) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  for (const char* host : {"app example.com", "app.example.com:", "app.example.com:65536",
                           "app.example.com:http", "user@app.example.com", "app.example.com/path",
                           "[2001:db8::zz]", "[2001:db8::1", "2001:db8::1", ":8080"}) {
    SCOPED_TRACE(host);
    auto invalid = harness.get("/", std::string("x-forwarded-host: ") + host + "\r\n");
    EXPECT_EQ(invalid->transport.status, 400);
    EXPECT_EQ(invalid->transport.header("x-deno-error"),
              errorHeader("INVALID_HOST_HEADER", kInvalidMessage));
    EXPECT_EQ(invalid->request.errorKind(), ErrorKind::kInvalidHostHeader);
    EXPECT_EQ(invalid->request.route().forwarded_host, "");
  }
}

TEST(ForwardedHostModule, RepeatsMustAgree) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto same = harness.get("/", "x-forwarded-host: a.example\r\nX-Forwarded-Host: a.example\r\n");
  EXPECT_EQ(same->transport.status, 200);
  EXPECT_EQ(same->request.route().forwarded_host, "a.example");
  auto differ = harness.get("/", "x-forwarded-host: a.example\r\nx-forwarded-host: b.example\r\n");
  EXPECT_EQ(differ->transport.status, 400);
  EXPECT_EQ(differ->transport.header("x-deno-error"),
            errorHeader("INVALID_HOST_HEADER",
                        "x-forwarded-host was sent more than once with different values"));
}

TEST(ForwardedHostModule, OffAtALocationRequiresNothing) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto open = harness.get("/open");
  EXPECT_EQ(open->transport.status, 200);
  EXPECT_EQ(open->transport.body, "open");
  // Not validated, not recorded: the Host header stays what goes out.
  auto ignored = harness.get("/open", "x-forwarded-host: not a host\r\n");
  EXPECT_EQ(ignored->transport.status, 200);
  EXPECT_EQ(ignored->request.route().forwarded_host, "");
}

TEST(ForwardedHostModule, AppliesToUnmatchedPathsOnItsServerBeforeTheNotFound) {
  PipelineHarness harness(R"(
server {
    listen 127.0.0.1:8080;
    forwarded_host on;
    location = /only { return 200; }
}
)");
  ASSERT_TRUE(harness.ok()) << harness.error();
  EXPECT_EQ(harness.get("/elsewhere")->transport.status, 400);
  auto not_found = harness.get("/elsewhere", "x-forwarded-host: app.example.com\r\n");
  EXPECT_EQ(not_found->transport.status, 404);
  EXPECT_EQ(not_found->request.route().forwarded_host, "app.example.com");
}

TEST(ForwardedHostModule, RefusesValuesOtherThanOnAndOff) {
  PipelineHarness harness(
      "server {\n listen 127.0.0.1:8080;\n forwarded_host yes;\n location / { return 200; }\n}\n");
  EXPECT_FALSE(harness.ok());
  EXPECT_EQ(harness.error(),
            "<embedded>:3: invalid value \"yes\" in \"forwarded_host\" directive, it must be "
            "\"on\" or \"off\"");
  PipelineHarness twice(
      "forwarded_host on;\nforwarded_host off;\nserver { listen 127.0.0.1:8080; return 200; }\n");
  EXPECT_FALSE(twice.ok());
  EXPECT_EQ(twice.error(), "<embedded>:2: \"forwarded_host\" directive is duplicate");
}

}  // namespace
}  // namespace subgate
