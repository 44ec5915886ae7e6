// modules/error_header through the pipeline in memory: every failure subgate answers itself is
// rendered as `STATUS REASON: message (CODE)` with `x-deno-error: {"code":...,"message":...}`,
// whichever phase failed; replies that are not failures pass untouched.
#include <gtest/gtest.h>

#include "core/jwt/jwt.h"
#include "tests/support/pipeline_harness.h"

namespace subgate {
namespace {

using test_support::PipelineHarness;

constexpr const char* kConfig = R"(
subhoster acme { secret 0123456789abcdef0123; }
server {
    listen 127.0.0.1:8080;
    location = /ok { return 200 "ok"; }
    location = /teapot { return 418 "not an error of subgate's"; }
    location /small { client_max_body_size 10; return 200 "small"; }
    location /unlimited { client_max_body_size 0; return 200 "unlimited"; }
    location /default { return 200 "default"; }
    location /forwarded { forwarded_host on; return 200 "forwarded"; }
    location /auth { subhost_auth on; return 200 "auth"; }
}
)";

std::string post(std::string_view path, std::string_view content_length) {
  std::string raw = "POST ";
  raw.append(path).append(" HTTP/1.1\r\nHost: example.com\r\nContent-Length: ");
  raw.append(content_length).append("\r\n\r\n");
  return raw;
}

TEST(ErrorHeaderModule, AnUnmatchedPathAnswers404NotFound) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto missing = harness.get("/missing");
  EXPECT_EQ(missing->transport.status, 404);
  EXPECT_EQ(missing->transport.header("x-deno-error"),
            R"({"code":"NOT_FOUND","message":"no location matches the request"})");
  EXPECT_EQ(missing->transport.body,
            "404 Not Found: no location matches the request (NOT_FOUND)\n");
  EXPECT_EQ(missing->transport.content_length, missing->transport.body.size());
  EXPECT_EQ(missing->transport.header("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(missing->transport.count("x-deno-error"), 1u);
  EXPECT_TRUE(missing->transport.ended);
  EXPECT_EQ(missing->request.errorKind(), ErrorKind::kNotFound);
  EXPECT_EQ(missing->request.status(), 404);
}

TEST(ErrorHeaderModule, ABodyOverClientMaxBodySizeAnswers413BeforeAnyModuleRuns) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto large = harness.run(post("/small", "11"));
  EXPECT_EQ(large->transport.status, 413);
  EXPECT_EQ(large->transport.header("x-deno-error"),
            R"({"code":"PAYLOAD_TOO_LARGE",)"
            R"("message":"the request body is larger than client_max_body_size"})");
  EXPECT_EQ(large->transport.body,
            "413 Content Too Large: the request body is larger than client_max_body_size "
            "(PAYLOAD_TOO_LARGE)\n");
  EXPECT_EQ(large->request.errorKind(), ErrorKind::kPayloadTooLarge);

  auto fits = harness.run(post("/small", "10"));
  EXPECT_EQ(fits->transport.status, 200);
  EXPECT_EQ(fits->transport.body, "small");
  EXPECT_FALSE(fits->transport.header("x-deno-error"));
}

TEST(ErrorHeaderModule, TheDefaultBodyLimitIsOneMebibyteAndZeroMeansNone) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  EXPECT_EQ(harness.run(post("/default", "1048576"))->transport.status, 200);
  EXPECT_EQ(harness.run(post("/default", "1048577"))->transport.status, 413);
  EXPECT_EQ(harness.run(post("/unlimited", "1000000000000"))->transport.status, 200);
}

TEST(ErrorHeaderModule, FailuresOfAccessModulesAreRenderedWithTheirMessage) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto forwarded = harness.get("/forwarded");
  EXPECT_EQ(forwarded->transport.status, 400);
  EXPECT_EQ(forwarded->transport.header("x-deno-error"),
            R"({"code":"MISSING_XFORWARDED_HOST","message":"the x-forwarded-host header is )"
            R"(missing; subhosted requests must carry it"})");
  EXPECT_EQ(forwarded->transport.body,
            "400 Bad Request: the x-forwarded-host header is missing; subhosted requests must "
            "carry it (MISSING_XFORWARDED_HOST)\n");
  auto auth = harness.get("/auth");
  EXPECT_EQ(auth->transport.status, 401);
  EXPECT_EQ(auth->transport.body,
            "401 Unauthorized: the x-deno-subhost header is missing; subhosted requests must "
            "carry a signed token (MISSING_XDENO_SUBHOST)\n");
}

TEST(ErrorHeaderModule, TheHeaderStaysOneLineOfJsonWhenTheMessageQuotesClientText) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  // subhost_auth quotes the token's (unauthenticated) kid: its quotes and backslashes must not
  // break the JSON.
  std::string token = jwt::base64UrlEncode(R"({"alg":"HS256","kid":"a\"b\\c"})") + "." +
                      jwt::base64UrlEncode("{}") + ".c2ln";
  auto reply = harness.get("/auth", "x-deno-subhost: " + token + "\r\n");
  EXPECT_EQ(reply->transport.status, 401);
  EXPECT_EQ(reply->transport.header("x-deno-error"),
            R"({"code":"INVALID_XDENO_SUBHOST","message":"x-deno-subhost is invalid: unknown )"
            R"(subhoster (kid) \"a\"b\\c\""})");
  EXPECT_EQ(reply->transport.body,
            "401 Unauthorized: x-deno-subhost is invalid: unknown subhoster (kid) \"a\"b\\c\" "
            "(INVALID_XDENO_SUBHOST)\n");
}

TEST(ErrorHeaderModule, RepliesThatAreNotFailuresPassUntouched) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto teapot = harness.get("/teapot");
  EXPECT_EQ(teapot->transport.status, 418);
  EXPECT_EQ(teapot->transport.body, "not an error of subgate's");
  EXPECT_FALSE(teapot->transport.header("x-deno-error"));
  EXPECT_FALSE(teapot->request.errorKind());
}

TEST(ErrorHeaderModule, AHeadRequestGetsTheErrorHeadWithoutBody) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto head = harness.run("HEAD /missing HTTP/1.1\r\nHost: example.com\r\n\r\n");
  EXPECT_EQ(head->transport.status, 404);
  EXPECT_TRUE(head->transport.header("x-deno-error"));
  EXPECT_EQ(
      head->transport.content_length,
      std::string_view("404 Not Found: no location matches the request (NOT_FOUND)\n").size());
  EXPECT_EQ(head->transport.body, "");
}

}  // namespace
}  // namespace subgate
