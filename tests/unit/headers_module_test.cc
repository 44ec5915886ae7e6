// modules/headers (add_header) through the pipeline in memory: which responses get the header,
// inheritance between levels, and the config errors.
#include <gtest/gtest.h>

#include "tests/support/pipeline_harness.h"

namespace subgate {
namespace {

using test_support::PipelineHarness;
using test_support::serverDirectiveError;

constexpr const char* kConfig = R"(
add_header x-main main;
server {
    listen 127.0.0.1:8080;
    add_header x-frame-options DENY;
    add_header x-always yes always;
    location = /ok { return 200 "ok"; }
    location = /moved { return 302 /ok; }
    location = /teapot { return 418 "no"; }
    location = /own { add_header x-own 1; return 200 "own"; }
    location = /empty { add_header x-empty ""; return 200 "empty"; }
    location = /twice { add_header cache-control a; add_header Cache-Control b; return 200; }
}
)";

TEST(HeadersModule, AddsToSuccessfulAndRedirectResponses) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto ok = harness.get("/ok");
  EXPECT_EQ(ok->transport.status, 200);
  EXPECT_EQ(ok->transport.header("x-frame-options"), "DENY");
  EXPECT_EQ(ok->transport.header("x-always"), "yes");
  EXPECT_EQ(ok->transport.header("content-type"), "text/plain; charset=utf-8");  // kept
  EXPECT_EQ(ok->transport.body, "ok");
  auto moved = harness.get("/moved");
  EXPECT_EQ(moved->transport.status, 302);
  EXPECT_EQ(moved->transport.header("x-frame-options"), "DENY");
}

TEST(HeadersModule, OtherStatusesOnlyGetAlwaysHeaders) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto teapot = harness.get("/teapot");
  EXPECT_EQ(teapot->transport.status, 418);
  EXPECT_FALSE(teapot->transport.header("x-frame-options"));
  EXPECT_EQ(teapot->transport.header("x-always"), "yes");
  // Errors subgate renders itself (here NOT_FOUND) pass the same filter, after error_header.
  auto missing = harness.get("/missing");
  EXPECT_EQ(missing->transport.status, 404);
  EXPECT_TRUE(missing->transport.header("x-deno-error"));
  EXPECT_FALSE(missing->transport.header("x-frame-options"));
  EXPECT_EQ(missing->transport.header("x-always"), "yes");
}

TEST(HeadersModule, ALevelWithItsOwnDirectivesInheritsNone) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto own = harness.get("/own");
  EXPECT_EQ(own->transport.header("x-own"), "1");
  EXPECT_FALSE(own->transport.header("x-frame-options"));
  EXPECT_FALSE(own->transport.header("x-main"));  // the server's level hides main's
  auto ok = harness.get("/ok");
  EXPECT_FALSE(ok->transport.header("x-main"));
}

TEST(HeadersModule, EmptyValuesAddNothingAndRepeatsAddFields) {
  PipelineHarness harness(kConfig);
  ASSERT_TRUE(harness.ok()) << harness.error();
  auto empty = harness.get("/empty");
  EXPECT_EQ(empty->transport.status, 200);
  EXPECT_FALSE(empty->transport.header("x-empty"));
  auto twice = harness.get("/twice");
  EXPECT_EQ(twice->transport.count("cache-control"), 2u);
}

TEST(HeadersModule, InactiveWithoutDirectives) {
  PipelineHarness harness(
      "server { listen 127.0.0.1:8080; request_id off; location / { return 200 \"x\"; } }");
  ASSERT_TRUE(harness.ok()) << harness.error();
  EXPECT_TRUE(harness.config().servers.front()->locations.front()->head_filter.empty());
  auto ok = harness.get("/");
  EXPECT_EQ(ok->transport.headers.size(), 1u);  // content-type only
}

TEST(HeadersModule, RefusesBadNamesValuesFramingHeadersAndParameters) {
  EXPECT_EQ(serverDirectiveError("add_header \"bad name\" x;"),
            "<embedded>:3: invalid header name \"bad name\" in \"add_header\" directive");
  EXPECT_EQ(serverDirectiveError("add_header Content-Length 5;"),
            "<embedded>:3: \"add_header\" cannot set \"Content-Length\": framing and hop-by-hop "
            "headers are subgate's");
  EXPECT_EQ(serverDirectiveError("add_header x-a \"a\r\nx-b: injected\";"),
            "<embedded>:3: invalid value for header \"x-a\" in \"add_header\" directive (control "
            "characters)");
  EXPECT_EQ(serverDirectiveError("add_header x-a b sometimes;"),
            "<embedded>:3: invalid parameter \"sometimes\" in \"add_header\" directive (only "
            "\"always\")");
  EXPECT_EQ(serverDirectiveError("add_header x-a;"),
            "<embedded>:3: invalid number of arguments in \"add_header\" directive");
}

}  // namespace
}  // namespace subgate
