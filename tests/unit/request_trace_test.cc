// core/pipeline/request_trace: x-request-id validation and generation, traceparent parsing and
// child spans; then the Request through the pipeline in memory: the id it keeps or makes, sent
// back on local replies, `request_id off`, and the trace id it keeps.
#include "core/pipeline/request_trace.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "tests/support/pipeline_harness.h"

namespace subgate {
namespace {

using test_support::PipelineHarness;
using test_support::serverDirectiveError;

bool isLowerHex(std::string_view text) {
  return text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

constexpr std::string_view kTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

// The header line "traceparent: <kTraceParent>\r\n".
std::string traceParentLine() {
  std::string line = "traceparent: ";
  line.append(kTraceParent).append("\r\n");
  return line;
}

TEST(RequestId, AcceptsOneTo128SafeCharacters) {
  EXPECT_TRUE(isValidRequestId("a"));
  EXPECT_TRUE(isValidRequestId("AZaz09._:-"));
  EXPECT_TRUE(isValidRequestId("f47ac10b-58cc-4372-a567-0e02b2c3d479"));
  EXPECT_TRUE(isValidRequestId(std::string(128, 'x')));
  EXPECT_FALSE(isValidRequestId(""));
  EXPECT_FALSE(isValidRequestId(std::string(129, 'x')));
  for (std::string_view bad : {"a b", "a/b", "a,b", "a\"b", "é", "a\tb", "a;b", "a=b", "a+b"})
    EXPECT_FALSE(isValidRequestId(bad)) << bad;
}

TEST(RequestId, NewIdsAre32HexDigitsAndDiffer) {
  std::set<std::string> seen;
  std::string id;
  for (int i = 0; i < 1000; ++i) {
    newRequestId(id);
    ASSERT_EQ(id.size(), 32u);
    EXPECT_TRUE(isLowerHex(id)) << id;
    EXPECT_TRUE(isValidRequestId(id));
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(TraceParent, ParsesAWellFormedVersion00) {
  TraceParent parent;
  ASSERT_TRUE(parseTraceParent(kTraceParent, parent));
  EXPECT_EQ(parent.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(parent.parent_id, "00f067aa0ba902b7");
  EXPECT_EQ(parent.flags, "01");
  ASSERT_TRUE(parseTraceParent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", parent));
  EXPECT_EQ(parent.flags, "00");
}

TEST(TraceParent, RefusesMalformedValues) {
  TraceParent parent;
  for (std::string_view bad : {
           "",
           "00",
           "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // another version
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // the forbidden one
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // zero parent id
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   // uppercase
           "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",    // short trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",    // short parent id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",    // short flags
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",  // trailing
           "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",   // separators
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",   // not hex
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
       }) {
    EXPECT_FALSE(parseTraceParent(bad, parent)) << bad;
  }
}

TEST(TraceParent, AChildKeepsTraceIdAndFlagsWithANewParentId) {
  TraceParent parent;
  ASSERT_TRUE(parseTraceParent(kTraceParent, parent));
  std::string child;
  std::string previous;
  for (int i = 0; i < 100; ++i) {
    childTraceParent(parent, child);
    TraceParent parsed;
    ASSERT_TRUE(parseTraceParent(child, parsed)) << child;
    EXPECT_EQ(parsed.trace_id, parent.trace_id);
    EXPECT_EQ(parsed.flags, parent.flags);
    EXPECT_NE(parsed.parent_id, parent.parent_id);
    EXPECT_NE(child, previous);
    previous = child;
  }
}

class RequestIdPipelineTest : public ::testing::Test {
 protected:
  PipelineHarness harness_{R"(
server {
    listen 127.0.0.1:8080;
    location = /ok { return 200 "hello"; }
    location = /off { request_id off; return 200 "no id"; }
    location = /child { trace_child_span on; return 200 "child"; }
}
)"};
};

TEST_F(RequestIdPipelineTest, ANewIdGoesBackOnRepliesAndFailures) {
  auto ok = harness_.get("/ok");
  const std::string id = ok->transport.header("x-request-id").value_or("");
  EXPECT_EQ(id.size(), 32u);
  EXPECT_TRUE(isLowerHex(id)) << id;
  EXPECT_EQ(ok->request.requestId(), id);
  EXPECT_TRUE(ok->request.replacesRequestId());
  auto missing = harness_.get("/missing");
  EXPECT_EQ(missing->transport.status, 404);
  EXPECT_EQ(missing->transport.count("x-request-id"), 1u);
  EXPECT_NE(missing->transport.header("x-request-id"), id);
}

TEST_F(RequestIdPipelineTest, KeepsTheClientsFirstWellFormedId) {
  auto kept = harness_.get("/ok", "X-Request-Id: abc-123\r\n");
  EXPECT_EQ(kept->transport.header("x-request-id"), "abc-123");
  EXPECT_FALSE(kept->request.replacesRequestId());
  auto first = harness_.get("/ok", "X-Request-Id: first\r\nX-Request-Id: second\r\n");
  EXPECT_EQ(first->transport.header("x-request-id"), "first");
  EXPECT_EQ(first->transport.count("x-request-id"), 1u);
  EXPECT_TRUE(first->request.replacesRequestId());  // the upstream gets the first only
}

TEST_F(RequestIdPipelineTest, ReplacesAMalformedId) {
  auto replaced = harness_.get("/ok", "X-Request-Id: not valid/id\r\n");
  const std::string id = replaced->transport.header("x-request-id").value_or("");
  EXPECT_EQ(id.size(), 32u);
  EXPECT_TRUE(replaced->request.replacesRequestId());
}

TEST_F(RequestIdPipelineTest, OffMakesNoIdAndSendsNone) {
  auto off = harness_.get("/off", "X-Request-Id: abc\r\n");
  EXPECT_EQ(off->transport.body, "no id");
  EXPECT_EQ(off->transport.count("x-request-id"), 0u);
  EXPECT_EQ(off->request.requestId(), "");
}

TEST_F(RequestIdPipelineTest, KeepsTheTraceIdOfAWellFormedTraceParent) {
  auto traced = harness_.get("/ok", traceParentLine());
  EXPECT_EQ(traced->request.traceId(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(traced->request.childTraceParent(), "");  // trace_child_span is off by default
  auto malformed = harness_.get("/ok", "traceparent: 00-garbage\r\n");
  EXPECT_EQ(malformed->request.traceId(), "");
  auto child = harness_.get("/child", traceParentLine());
  TraceParent parsed;
  ASSERT_TRUE(parseTraceParent(child->request.childTraceParent(), parsed));
  EXPECT_EQ(parsed.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_NE(parsed.parent_id, "00f067aa0ba902b7");
  EXPECT_EQ(parsed.flags, "01");
}

TEST(RequestIdConfig, DirectivesTakeOnOrOff) {
  EXPECT_NE(serverDirectiveError("request_id maybe;"), "");
  EXPECT_NE(serverDirectiveError("trace_child_span yes;"), "");
}

}  // namespace
}  // namespace subgate
