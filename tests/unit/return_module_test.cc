// modules/return (`return CODE [TEXT|URL]`) through the pipeline in memory: text bodies,
// redirects with a Location, status-only answers, HEAD requests, the server-level handler, and
// the config errors.
#include <gtest/gtest.h>

#include "tests/support/pipeline_harness.h"

namespace subgate {
namespace {

using test_support::PipelineHarness;

constexpr const char* kConfig = R"(
server {
    listen 127.0.0.1:8080;
    location = /text { return 200 "hello, world"; }
    location = /teapot { return 418 "short and stout"; }
    location = /unavailable { return 503; }
    location = /no-content { return 204; }
    location = /moved { return 301 https://example.org/new; }
    location = /found { return 302 /text; }
    location = /see-other { return 303 /text?from=see-other; }
    location = /temporary { return 307 /text; }
    location = /permanent { return 308 /text; }
    location = /redirect-without-url { return 302; }
    location = /multiple-choices { return 300 /text; }
}
)";

TEST(ReturnModule, AnswersTheTextAsAPlainTextBody) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto text = harness.get("/text");
  EXPECT_EQ(text->transport.status, 200);
  EXPECT_EQ(text->transport.body, "hello, world");
  EXPECT_EQ(text->transport.content_length, 12u);
  EXPECT_EQ(text->transport.header("content-type"), "text/plain; charset=utf-8");
  EXPECT_FALSE(text->transport.header("location"));
  EXPECT_FALSE(text->transport.header("x-deno-error"));
  EXPECT_TRUE(text->transport.ended);
  EXPECT_FALSE(text->transport.aborted);
  EXPECT_EQ(text->request.status(), 200);
  EXPECT_EQ(text->request.bodyBytesSent(), 12u);
  EXPECT_FALSE(text->request.errorKind());

  // Any status takes a body, error statuses included: it is not a failure of subgate's.
  auto teapot = harness.get("/teapot");
  EXPECT_EQ(teapot->transport.status, 418);
  EXPECT_EQ(teapot->transport.body, "short and stout");
  EXPECT_FALSE(teapot->transport.header("x-deno-error"));
  EXPECT_FALSE(teapot->request.errorKind());
}

TEST(ReturnModule, ACodeAloneAnswersAnEmptyBodyWithoutContentType) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  for (const char* path : {"/unavailable", "/no-content"}) {
    SCOPED_TRACE(path);
    auto reply = harness.get(path);
    EXPECT_EQ(reply->transport.status, std::string_view(path) == "/no-content" ? 204 : 503);
    EXPECT_EQ(reply->transport.body, "");
    EXPECT_EQ(reply->transport.content_length, 0u);
    // Nothing but the request id (core, request.h): no content-type.
    ASSERT_EQ(reply->transport.headers.size(), 1u);
    EXPECT_EQ(reply->transport.headers[0].first, "x-request-id");
    EXPECT_TRUE(reply->transport.ended);
  }
}

TEST(ReturnModule, RedirectStatusesTakeTheArgumentAsLocation) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  struct Case {
    const char* path;
    int status;
    const char* location;
  } cases[] = {
      {"/moved", 301, "https://example.org/new"},
      {"/found", 302, "/text"},
      {"/see-other", 303, "/text?from=see-other"},
      {"/temporary", 307, "/text"},
      {"/permanent", 308, "/text"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path);
    auto reply = harness.get(c.path);
    EXPECT_EQ(reply->transport.status, c.status);
    EXPECT_EQ(reply->transport.header("location"), c.location);
    EXPECT_EQ(reply->transport.count("location"), 1u);
    EXPECT_EQ(reply->transport.body, "");  // no body, so no content-type either
    EXPECT_FALSE(reply->transport.header("content-type"));
    EXPECT_EQ(reply->transport.content_length, 0u);
  }
}

TEST(ReturnModule, ARedirectWithoutUrlHasNoLocationAndOtherCodesKeepTheTextAsBody) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto bare = harness.get("/redirect-without-url");
  EXPECT_EQ(bare->transport.status, 302);
  EXPECT_FALSE(bare->transport.header("location"));
  EXPECT_EQ(bare->transport.body, "");
  // 300 is not one of the redirect codes: its argument is a body like any other's.
  auto choices = harness.get("/multiple-choices");
  EXPECT_EQ(choices->transport.status, 300);
  EXPECT_FALSE(choices->transport.header("location"));
  EXPECT_EQ(choices->transport.body, "/text");
}

TEST(ReturnModule, HeadGetsTheHeadersAndLengthButNoBody) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto head = harness.run("HEAD /text HTTP/1.1\r\nHost: example.com\r\n\r\n");
  EXPECT_EQ(head->transport.status, 200);
  // The head is the GET's: content-length of the body that is not sent, and its content-type.
  EXPECT_EQ(head->transport.content_length, 12u);
  EXPECT_EQ(head->transport.header("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(head->transport.body, "");
  EXPECT_TRUE(head->transport.ended);
  EXPECT_EQ(head->request.bodyBytesSent(), 0u);

  auto redirect = harness.run("HEAD /found HTTP/1.1\r\nHost: example.com\r\n\r\n");
  EXPECT_EQ(redirect->transport.status, 302);
  EXPECT_EQ(redirect->transport.header("location"), "/text");
}

TEST(ReturnModule, AnyMethodGetsTheSameAnswer) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS"}) {
    SCOPED_TRACE(method);
    auto reply = harness.run(std::string(method) + " /text HTTP/1.1\r\nHost: example.com\r\n\r\n");
    EXPECT_EQ(reply->transport.status, 200);
    EXPECT_EQ(reply->transport.body, "hello, world");
  }
}

TEST(ReturnModule, AServerLevelReturnServesUnmatchedPathsAndLocationsWithoutHandler) {
  PipelineHarness harness(R"(
server {
    listen 127.0.0.1:8080;
    return 200 "server";
    location /own { return 201 "own"; }
    location /inherits { client_max_body_size 1k; }
}
)");
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto unmatched = harness.get("/elsewhere");
  EXPECT_EQ(unmatched->transport.status, 200);
  EXPECT_EQ(unmatched->transport.body, "server");
  auto own = harness.get("/own/x");
  EXPECT_EQ(own->transport.status, 201);
  EXPECT_EQ(own->transport.body, "own");
  auto inherits = harness.get("/inherits");
  EXPECT_EQ(inherits->transport.status, 200);
  EXPECT_EQ(inherits->transport.body, "server");
}

// The loader's error for `directive` inside a location (line 4).
std::string errorOf(std::string_view directive) {
  std::string text = "server {\n listen 127.0.0.1:8080;\n location / {\n  ";
  text.append(directive).append("\n }\n}\n");
  return test_support::configError(text);
}

TEST(ReturnModule, RefusesCodesThatAreNotThreeDigitNumbers) {
  EXPECT_EQ(errorOf("return abc;"), "<embedded>:4: invalid return code \"abc\"");
  EXPECT_EQ(errorOf("return 99;"), "<embedded>:4: invalid return code \"99\"");
  EXPECT_EQ(errorOf("return 1000 x;"), "<embedded>:4: invalid return code \"1000\"");
  EXPECT_EQ(errorOf("return 200x;"), "<embedded>:4: invalid return code \"200x\"");
  EXPECT_EQ(errorOf("return -200;"), "<embedded>:4: invalid return code \"-200\"");
  EXPECT_EQ(errorOf("return \"\";"), "<embedded>:4: invalid return code \"\"");
}

TEST(ReturnModule, RefusesBadArgumentCountsPlacesAndASecondHandler) {
  EXPECT_EQ(errorOf("return;"),
            "<embedded>:4: invalid number of arguments in \"return\" directive");
  EXPECT_EQ(errorOf("return 200 a b;"),
            "<embedded>:4: invalid number of arguments in \"return\" directive");
  EXPECT_EQ(errorOf("return 200; return 204;"), "<embedded>:4: \"return\" directive is duplicate");
  EXPECT_EQ(errorOf("return 200; status;"),
            "<embedded>:3: more than one content handler (return and status)");
  PipelineHarness main_level("return 200;\nserver { listen 127.0.0.1:8080; }\n");
  EXPECT_FALSE(main_level.ok());
  EXPECT_EQ(main_level.error(), "<embedded>:1: \"return\" directive is not allowed here");
}

}  // namespace
}  // namespace subgate
