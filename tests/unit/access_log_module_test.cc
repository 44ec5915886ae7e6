// modules/access_log through the pipeline in memory: one line per request written in the log
// phase (which the test runs, as a transport does once the response is on the wire), its json
// and combined formats, `access_log off`, and the config errors.
#include <gtest/gtest.h>
#include <jansson.h>

#include <string>
#include <vector>

#include "core/regex/regex.h"
#include "tests/support/pipeline_harness.h"
#include "tests/support/temp_dir.h"

namespace subgate {
namespace {

// Whether all of `subject` matches `pattern` (PCRE2, the project's regex: std::regex trips
// GCC 12's -Wmaybe-uninitialized under the sanitizers).
bool fullMatch(std::string_view subject, const std::string& pattern) {
  std::string error;
  auto regex = Regex::compile("^(?:" + pattern + ")$", false, error);
  EXPECT_TRUE(regex) << error;
  return regex && regex->matches(subject);
}

using test_support::PipelineHarness;
using test_support::serverDirectiveError;
using test_support::TempDir;

std::vector<std::string> linesOf(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) {
      ADD_FAILURE() << "unterminated line: " << text.substr(start);
      break;
    }
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

// One parsed JSON log line.
class JsonLine {
 public:
  explicit JsonLine(const std::string& line) {
    json_error_t error;
    json_ = json_loads(line.c_str(), 0, &error);
    EXPECT_TRUE(json_is_object(json_)) << line << ": " << error.text;
  }
  ~JsonLine() { json_decref(json_); }
  JsonLine(const JsonLine&) = delete;
  JsonLine& operator=(const JsonLine&) = delete;

  std::string string(const char* key) const {
    json_t* value = json_object_get(json_, key);
    EXPECT_TRUE(json_is_string(value)) << key;
    return value ? std::string(json_string_value(value), json_string_length(value)) : "";
  }
  json_int_t integer(const char* key) const {
    json_t* value = json_object_get(json_, key);
    EXPECT_TRUE(json_is_integer(value)) << key;
    return json_integer_value(value);
  }
  double number(const char* key) const {
    json_t* value = json_object_get(json_, key);
    EXPECT_TRUE(json_is_number(value)) << key;
    return json_number_value(value);
  }
  size_t size() const { return json_object_size(json_); }

 private:
  json_t* json_ = nullptr;
};

class AccessLogModuleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    harness_ = std::make_unique<PipelineHarness>(R"(
server {
    listen 127.0.0.1:8080;
    access_log )" + dir_.path() + R"(/access.json json;
    location = /ok { return 200 "hello"; }
    location = /moved { return 302 /ok; }
    location = /quiet { access_log off; return 200 "quiet"; }
    location = /combined { access_log combined.log; return 201 "c"; }
    location = /also-combined { access_log combined.log combined; return 200; }
}
)",
                                                 dir_.path());
    ASSERT_TRUE(harness_->ok()) << harness_->error();
  }

  // Runs `raw` and then its log phase.
  std::unique_ptr<PipelineHarness::Exchange> logged(std::string raw,
                                                    std::string_view remote = "192.0.2.7") {
    auto exchange = harness_->run(std::move(raw), remote);
    EXPECT_TRUE(exchange->transport.ended);
    exchange->request.runLogPhase();
    return exchange;
  }

  std::vector<std::string> jsonLines() const { return linesOf(dir_.read("access.json")); }

  TempDir dir_;
  std::unique_ptr<PipelineHarness> harness_;
};

TEST_F(AccessLogModuleTest, WritesOneJsonLinePerRequestInTheLogPhase) {
  auto exchange =
      harness_->run("GET /ok?x=1&y=%22 HTTP/1.1\r\nHost: example.com\r\n\r\n", "192.0.2.7");
  EXPECT_EQ(exchange->transport.status, 200);
  // Nothing before the log phase: the transport runs it once the response is on the wire.
  EXPECT_EQ(dir_.read("access.json"), "");
  exchange->request.runLogPhase();
  exchange->request.runLogPhase();  // once per request
  std::vector<std::string> lines = jsonLines();
  ASSERT_EQ(lines.size(), 1u);
  JsonLine line(lines[0]);
  EXPECT_EQ(line.size(), 19u);
  EXPECT_TRUE(fullMatch(line.string("time"), R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4})"))
      << line.string("time");
  EXPECT_EQ(line.string("remote"), "192.0.2.7");
  EXPECT_EQ(line.string("method"), "GET");
  EXPECT_EQ(line.string("uri"), "/ok?x=1&y=%22");  // the target as sent, query included
  EXPECT_EQ(line.string("protocol"), "HTTP/1.1");
  EXPECT_EQ(line.integer("status"), 200);
  EXPECT_EQ(line.integer("bytes"), 5);  // body bytes only
  EXPECT_GE(line.number("duration_ms"), 0.0);
  EXPECT_LT(line.number("duration_ms"), 60000.0);
  EXPECT_EQ(line.string("upstream"), "");
  EXPECT_EQ(line.string("error"), "");
  // A new id, the one the client got; no traceparent, no trace id.
  EXPECT_TRUE(fullMatch(line.string("request_id"), "[0-9a-f]{32}")) << line.string("request_id");
  EXPECT_EQ(line.string("request_id"), exchange->transport.header("x-request-id").value_or(""));
  EXPECT_EQ(line.string("trace_id"), "");
  // No deployment, isolate or request body here (log_format_test.cc has them).
  EXPECT_EQ(line.string("deployment_id"), "");
  EXPECT_EQ(line.string("isolate"), "");
  EXPECT_EQ(line.integer("request_bytes"), 0);
  EXPECT_EQ(line.number("isolate_wait_ms"), 0.0);
  EXPECT_GE(line.number("first_byte_ms"), 0.0);
  EXPECT_LE(line.number("first_byte_ms"), line.number("duration_ms"));
}

TEST_F(AccessLogModuleTest, RecordsTheClientsRequestIdAndTraceId) {
  logged(
      "GET /ok HTTP/1.1\r\nHost: example.com\r\nX-Request-Id: client-id:1\r\n"
      "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n");
  std::vector<std::string> lines = jsonLines();
  ASSERT_EQ(lines.size(), 1u);
  JsonLine line(lines[0]);
  EXPECT_EQ(line.string("request_id"), "client-id:1");
  EXPECT_EQ(line.string("trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST_F(AccessLogModuleTest, RecordsFailuresWithTheirErrorCode) {
  logged("GET /missing HTTP/1.1\r\nHost: example.com\r\n\r\n");
  logged("POST /moved HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2000000\r\n\r\n");
  std::vector<std::string> lines = jsonLines();
  ASSERT_EQ(lines.size(), 2u);
  JsonLine missing(lines[0]);
  EXPECT_EQ(missing.integer("status"), 404);
  EXPECT_EQ(missing.string("error"), "NOT_FOUND");
  EXPECT_EQ(missing.string("uri"), "/missing");
  EXPECT_EQ(
      missing.integer("bytes"),
      static_cast<json_int_t>(
          std::string_view("404 Not Found: no location matches the request (NOT_FOUND)\n").size()));
  JsonLine too_large(lines[1]);
  EXPECT_EQ(too_large.string("method"), "POST");
  EXPECT_EQ(too_large.integer("status"), 413);
  EXPECT_EQ(too_large.string("error"), "PAYLOAD_TOO_LARGE");
}

TEST_F(AccessLogModuleTest, HeadAndRedirectsSendNoBodyBytes) {
  logged("HEAD /ok HTTP/1.1\r\nHost: example.com\r\n\r\n");
  logged("GET /moved HTTP/1.1\r\nHost: example.com\r\n\r\n");
  std::vector<std::string> lines = jsonLines();
  ASSERT_EQ(lines.size(), 2u);
  JsonLine head(lines[0]);
  EXPECT_EQ(head.string("method"), "HEAD");
  EXPECT_EQ(head.integer("status"), 200);
  EXPECT_EQ(head.integer("bytes"), 0);
  JsonLine moved(lines[1]);
  EXPECT_EQ(moved.integer("status"), 302);
  EXPECT_EQ(moved.integer("bytes"), 0);
}

TEST_F(AccessLogModuleTest, OffAtALocationWritesNothing) {
  auto quiet = logged("GET /quiet HTTP/1.1\r\nHost: example.com\r\n\r\n");
  EXPECT_EQ(quiet->transport.body, "quiet");
  EXPECT_TRUE(quiet->request.config().servers.front()->match("/quiet").log.empty());
  EXPECT_EQ(dir_.read("access.json"), "");
  logged("GET /ok HTTP/1.1\r\nHost: example.com\r\n\r\n");
  EXPECT_EQ(jsonLines().size(), 1u);
}

TEST_F(AccessLogModuleTest, CombinedIsTheDefaultFormat) {
  logged(
      "GET /combined?q=1 HTTP/1.1\r\nHost: example.com\r\nReferer: https://ref.example/\r\n"
      "User-Agent: test \"agent\"\r\n\r\n");
  logged("GET /also-combined HTTP/1.1\r\nHost: example.com\r\n\r\n", "198.51.100.1");
  std::vector<std::string> lines = linesOf(dir_.read("combined.log"));
  ASSERT_EQ(lines.size(), 2u);
  // nginx's combined: remote - - [time] "request line" status bytes "referer" "user agent"
  const std::string time = R"(\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\])";
  EXPECT_TRUE(
      fullMatch(lines[0], R"(192\.0\.2\.7 - - )" + time +
                              R"( "GET /combined\?q=1 HTTP/1\.1" 201 1 "https://ref\.example/" )"
                              R"("test \\x22agent\\x22")"))
      << lines[0];
  EXPECT_TRUE(fullMatch(lines[1], R"(198\.51\.100\.1 - - )" + time +
                                      R"( "GET /also-combined HTTP/1\.1" 200 0 "-" "-")"))
      << lines[1];
  EXPECT_EQ(dir_.read("access.json"), "");  // the location's own access_log replaces the server's
}

TEST(AccessLogModule, RefusesUnknownFormatsAndUnopenableFiles) {
  EXPECT_EQ(serverDirectiveError("access_log /tmp/a.log xml;"),
            "<embedded>:3: unknown log format \"xml\" (combined, json or a log_format name)");
  EXPECT_EQ(serverDirectiveError("access_log /nonexistent-folder/a.log;"),
            "<embedded>:3: cannot open access log \"/nonexistent-folder/a.log\": No such file or "
            "directory");
  EXPECT_EQ(serverDirectiveError("access_log;"),
            "<embedded>:3: invalid number of arguments in \"access_log\" directive");
  EXPECT_EQ(serverDirectiveError("access_log /tmp/a.log json extra;"),
            "<embedded>:3: invalid number of arguments in \"access_log\" directive");
}

}  // namespace
}  // namespace subgate
