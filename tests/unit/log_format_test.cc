// modules/access_log/log_format: compiling `log_format` strings (variables, ${} adjacency, a
// lone $, errors), every variable through the pipeline in memory, the three escapings (hostile
// bytes cannot forge a line, json stays valid JSON), and the config errors of log_format and
// access_log with a format name.
#include "modules/access_log/log_format.h"

#include <gtest/gtest.h>
#include <jansson.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/regex/regex.h"
#include "tests/support/pipeline_harness.h"
#include "tests/support/temp_dir.h"

namespace subgate {
namespace {

using test_support::configError;
using test_support::PipelineHarness;
using test_support::TempDir;

bool fullMatch(std::string_view subject, const std::string& pattern) {
  std::string error;
  auto regex = Regex::compile("^(?:" + pattern + ")$", false, error);
  EXPECT_TRUE(regex) << error;
  return regex && regex->matches(subject);
}

std::string compileError(std::string text) {
  LogFormat format;
  std::string error;
  EXPECT_FALSE(LogFormat::compile(std::span<const std::string>(&text, 1), LogEscape::kDefault,
                                  format, error))
      << text;
  return error;
}

LogFormat compiled(std::vector<std::string> parts, LogEscape escape = LogEscape::kDefault) {
  LogFormat format;
  std::string error;
  EXPECT_TRUE(LogFormat::compile(parts, escape, format, error)) << error;
  return format;
}

TEST(LogFormat, CompilesIntoLiteralsAndVariables) {
  LogFormat format = compiled({"[$status] ", "${request_id}x $$ $http_User_Agent", "$"});
  auto pieces = format.pieces();
  ASSERT_EQ(pieces.size(), 7u);
  EXPECT_EQ(pieces[0].variable, LogVariable::kLiteral);
  EXPECT_EQ(pieces[0].text, "[");
  EXPECT_EQ(pieces[1].variable, LogVariable::kStatus);
  EXPECT_EQ(pieces[2].text, "] ");  // the parts are concatenated
  EXPECT_EQ(pieces[3].variable, LogVariable::kRequestId);
  EXPECT_EQ(pieces[4].text, "x $$ ");  // `$` followed by no name is itself
  EXPECT_EQ(pieces[5].variable, LogVariable::kHttpHeader);
  EXPECT_EQ(pieces[5].text, "user-agent");  // underscores are dashes, any case
  EXPECT_EQ(pieces[6].text, "$");
}

TEST(LogFormat, RefusesUnknownVariablesByName) {
  EXPECT_EQ(compileError("$status $nope"), "unknown log variable \"$nope\"");
  EXPECT_EQ(compileError("${request_idx}"), "unknown log variable \"$request_idx\"");
  EXPECT_EQ(compileError("$http_"), "unknown log variable \"$http_\"");
  EXPECT_EQ(compileError("a ${status"), "unterminated \"${\" in log_format");
}

TEST(LogFormat, DefaultEscapingKeepsEveryValueOnOneLineAndInItsQuotes) {
  std::string out;
  appendLogDefault(out, std::string("a\"b\\c\nd\x01\x7f\xc3\xa9 e", 13));
  EXPECT_EQ(out, "a\\x22b\\x5Cc\\x0Ad\\x01\\x7F\\xC3\\xA9 e");
}

TEST(LogFormat, JsonEscapingIsValidJsonForAnyBytes) {
  std::string hostile;
  for (int b = 0; b < 256; ++b) hostile += static_cast<char>(b);
  hostile += "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";  // valid UTF-8 stays as it is
  hostile +=
      "\xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82";  // overlong, surrogate, too big, cut
  std::string line = R"({"v":")";
  appendLogJson(line, hostile);
  line += "\"}";
  EXPECT_EQ(line.find('\n'), std::string::npos);
  json_error_t error;
  // Strict UTF-8 (jansson refuses anything else); NUL is \u0000.
  json_t* json = json_loads(line.c_str(), JSON_ALLOW_NUL, &error);
  ASSERT_TRUE(json_is_object(json)) << error.text;
  json_t* v = json_object_get(json, "v");
  std::string value(json_string_value(v), json_string_length(v));
  json_decref(json);
  EXPECT_NE(value.find("\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), std::string::npos);
  EXPECT_EQ(value.substr(0, 128), hostile.substr(0, 128));  // ASCII, controls included, round-trips
  EXPECT_EQ(value.find('\xc0'), std::string::npos);         // invalid bytes became U+FFFD
  EXPECT_NE(value.find("\xef\xbf\xbd"), std::string::npos);
}

class LogFormatRequestTest : public ::testing::Test {
 protected:
  void load(const std::string& formats, const std::string& access_log) {
    harness_ = std::make_unique<PipelineHarness>(formats + R"(
server {
    listen 127.0.0.1:8080;
    server_name logs.example www.logs.example;
    )" + access_log + R"(
    location /ok { return 200 "hello"; }
}
)",
                                                 dir_.path());
    ASSERT_TRUE(harness_->ok()) << harness_->error();
  }

  // The one line a request to `raw` logs after `edit` set the values modules would have.
  std::string lineOf(std::string raw, const std::function<void(Request&)>& edit = {}) {
    auto exchange = harness_->run(std::move(raw), "192.0.2.9");
    if (edit) edit(exchange->request);
    exchange->request.runLogPhase();
    std::string text = dir_.read("a.log");
    dir_.write("a.log", "");
    EXPECT_FALSE(text.empty());
    EXPECT_EQ(text.find('\n'), text.size() - 1) << text;  // exactly one line
    return text.substr(0, text.size() - 1);
  }

  static void serveFromIsolate(Request& req) {
    auto token = std::make_shared<VerifiedToken>();
    auto subhoster = std::make_shared<Subhoster>();
    subhoster->name = "acme";
    token->subhoster = subhoster;
    token->deployment_id = "dep-1";
    req.route().token = token;
    req.route().instance_id = "inst-9";
    req.setIsolateName("iso-7");
    req.setIsolateWait(std::chrono::milliseconds(1234));
    req.setUpstreamAddress("unix:/run/iso-7.sock");
  }

  TempDir dir_;
  std::unique_ptr<PipelineHarness> harness_;
};

TEST_F(LogFormatRequestTest, EveryVariable) {
  load(R"(log_format all "$remote_addr|$request_method|$request_uri|$uri|$args|$query_string|"
      "$server_protocol|$request|$status|$body_bytes_sent|$request_body_length|$request_time|"
      "$upstream_response_time|$upstream_header_time|$first_byte_time|$time_local|$time_iso8601|"
      "$msec|$http_x_custom_thing|$request_id|$trace_id|$deployment_id|$subhoster|"
      "$instance_id|$isolate|$isolate_wait|$upstream_addr|$error_code|$server_name";)",
       "access_log a.log all;");
  std::string line = lineOf(
      "GET /ok/p?x=1 HTTP/1.1\r\nHost: logs.example\r\nX-Custom-Thing: yes\r\n"
      "X-Request-Id: rid-1\r\n"
      "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n",
      serveFromIsolate);
  const std::string seconds = R"(\d+\.\d{3})";
  EXPECT_TRUE(fullMatch(
      line,
      R"(192\.0\.2\.9\|GET\|/ok/p\?x=1\|/ok/p\|x=1\|x=1\|HTTP/1\.1\|GET /ok/p\?x=1 HTTP/1\.1\|)"
      R"(200\|5\|0\|)" +
          seconds + "\\|" + seconds + "\\|" + seconds + "\\|" + seconds +
          R"(\|\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\|)"
          R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d\|\d{10}\.\d{3}\|yes\|rid-1\|)"
          R"(4bf92f3577b34da6a3ce929d0e0e4736\|dep-1\|acme\|inst-9\|iso-7\|1\.234\|)"
          R"(unix:/run/iso-7\.sock\|-\|logs\.example)"))
      << line;
}

TEST_F(LogFormatRequestTest, MissingValuesAreDashesAndErrorsHaveTheirCode) {
  load(R"(log_format m "$args $http_referer $trace_id $deployment_id $subhoster $instance_id "
      "$isolate $isolate_wait $upstream_addr $error_code $status";)",
       "access_log a.log m;");
  EXPECT_EQ(lineOf("GET /missing HTTP/1.1\r\nHost: logs.example\r\n\r\n"),
            "- - - - - - - - - NOT_FOUND 404");
}

TEST_F(LogFormatRequestTest, HostileHeadersCannotForgeLines) {
  load(R"(log_format q '"$http_user_agent" $request_uri';
      log_format j escape=json '{"ua":"$http_user_agent","id":"$request_id","t":"$trace_id"}';
      log_format n escape=none '$http_user_agent';)",
       "location /q { access_log a.log q; return 200; }\n"
       "location /j { access_log a.log j; return 200; }\n"
       "location /n { access_log a.log n; return 200; }");
  // (The HTTP parser refuses control bytes in a header: the escaping tests above have them.)
  const std::string agent = "User-Agent: x\" \\ \xff\xc3\xa9\r\n";
  EXPECT_EQ(lineOf("GET /q?%22 HTTP/1.1\r\nHost: h\r\n" + agent + "\r\n"),
            "\"x\\x22 \\x5C \\xFF\\xC3\\xA9\" /q?%22");
  std::string json = lineOf("GET /j HTTP/1.1\r\nHost: h\r\n" + agent + "\r\n");
  json_error_t error;
  json_t* value = json_loads(json.c_str(), 0, &error);
  ASSERT_TRUE(json_is_object(value)) << json << ": " << error.text;
  EXPECT_EQ(std::string(json_string_value(json_object_get(value, "ua"))),
            "x\" \\ \xef\xbf\xbd\xc3\xa9");
  EXPECT_EQ(std::string(json_string_value(json_object_get(value, "t"))), "");  // missing: empty
  json_decref(value);
  EXPECT_EQ(lineOf("GET /n HTTP/1.1\r\nHost: h\r\n" + agent + "\r\n"), "x\" \\ \xff\xc3\xa9");
}

TEST_F(LogFormatRequestTest, BuiltInJsonCarriesTheIsolateFields) {
  load("", "access_log a.log json;");
  std::string line = lineOf("GET /ok HTTP/1.1\r\nHost: logs.example\r\nX-Request-Id: r\xff\r\n\r\n",
                            serveFromIsolate);
  json_error_t error;
  json_t* json = json_loads(line.c_str(), 0, &error);
  ASSERT_TRUE(json_is_object(json)) << line << ": " << error.text;
  const auto str = [&](const char* key) {
    json_t* v = json_object_get(json, key);
    EXPECT_TRUE(json_is_string(v)) << key;
    return std::string(v ? json_string_value(v) : "");
  };
  EXPECT_EQ(str("deployment_id"), "dep-1");
  EXPECT_EQ(str("subhoster"), "acme");
  EXPECT_EQ(str("instance_id"), "inst-9");
  EXPECT_EQ(str("isolate"), "iso-7");
  EXPECT_EQ(str("upstream"), "unix:/run/iso-7.sock");
  EXPECT_NEAR(json_number_value(json_object_get(json, "isolate_wait_ms")), 1234.0, 0.001);
  EXPECT_TRUE(json_is_number(json_object_get(json, "first_byte_ms")));
  EXPECT_EQ(json_integer_value(json_object_get(json, "request_bytes")), 0);
  EXPECT_TRUE(fullMatch(str("request_id"), "[0-9a-f]{32}"));  // the malformed one was replaced
  json_decref(json);
}

TEST(LogFormatConfig, Errors) {
  const std::string server =
      "server {\n listen 127.0.0.1:8080;\n access_log /tmp/a.log f;\n"
      " location / { return 200; }\n}\n";
  EXPECT_EQ(configError("log_format f '$nope';\n" + server),
            "<embedded>:1: unknown log variable \"$nope\"");
  EXPECT_EQ(configError("log_format f escape=yaml '$status';\n" + server),
            "<embedded>:1: invalid log_format parameter \"escape=yaml\" (escape=default, json or "
            "none)");
  EXPECT_EQ(configError("log_format f escape=json;\n" + server),
            "<embedded>:1: log_format \"f\" has no format");
  EXPECT_EQ(configError("log_format f a;\nlog_format f b;\n" + server),
            "<embedded>:2: duplicate log_format name \"f\"");
  EXPECT_EQ(configError("log_format json a;\n" + server),
            "<embedded>:1: duplicate log_format name \"json\"");
  EXPECT_EQ(configError("log_format g a;\n" + server),
            "<embedded>:4: unknown log format \"f\" (combined, json or a log_format name)");
  EXPECT_EQ(configError("log_format f;\n" + server),
            "<embedded>:1: invalid number of arguments in \"log_format\" directive");
  EXPECT_EQ(configError("server {\n listen 127.0.0.1:8080;\n log_format f a;\n"
                        " location / { return 200; }\n}\n"),
            "<embedded>:3: \"log_format\" directive is not allowed here");
}

}  // namespace
}  // namespace subgate
