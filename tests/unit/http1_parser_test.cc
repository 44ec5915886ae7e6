#include "core/http1/http1_parser.h"

#include <gtest/gtest.h>

#include <string>

namespace subgate::http1 {
namespace {

using Mode = HeadParser::Mode;

ParseStatus parseWhole(HeadParser& parser, const std::string& text) { return parser.parse(text); }

// Feeds `text` byte by byte (the buffer growing each time, as from a socket) and returns the
// final status; checks that no prefix was reported complete too early.
ParseStatus parseBytewise(HeadParser& parser, const std::string& text) {
  ParseStatus status = ParseStatus::kIncomplete;
  for (size_t n = 1; n <= text.size(); ++n) {
    status = parser.parse(std::string_view(text).substr(0, n));
    if (status != ParseStatus::kIncomplete) return status;
  }
  return status;
}

TEST(Http1Parser, SimpleRequest) {
  HeadParser parser(Mode::kRequest);
  std::string text =
      "GET /a/b?x=1&y HTTP/1.1\r\nHost: example.com\r\nX-Empty:\r\nX-Pad:  v  \r\n\r\n";
  ASSERT_EQ(parseWhole(parser, text), ParseStatus::kDone);
  const MessageHead& head = parser.head();
  EXPECT_EQ(head.method, "GET");
  EXPECT_EQ(head.target, "/a/b?x=1&y");
  EXPECT_EQ(head.path, "/a/b");
  EXPECT_EQ(head.query, "x=1&y");
  EXPECT_EQ(head.version_minor, 1);
  ASSERT_EQ(head.headers.size(), 3u);
  EXPECT_EQ(head.headers[0].name, "Host");
  EXPECT_EQ(head.headers[1].value, "");
  EXPECT_EQ(head.headers[2].value, "v");
  EXPECT_EQ(head.find("HOST"), "example.com");
  EXPECT_EQ(head.framing, BodyFraming::kNone);
  EXPECT_TRUE(head.keep_alive);
  EXPECT_EQ(head.head_bytes, text.size());
}

TEST(Http1Parser, CompactKeepsTheHeadAndReleaseMemoryStartsOver) {
  HeadParser parser(Mode::kRequest);
  std::string text =
      "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n";
  ASSERT_EQ(parseWhole(parser, text), ParseStatus::kDone);
  parser.compact();
  EXPECT_EQ(parser.head().headers.capacity(), 3u);
  EXPECT_EQ(parser.head().find("upgrade"), "websocket");
  EXPECT_EQ(parser.head().path, "/ws");
  parser.releaseMemory();
  EXPECT_EQ(parser.head().headers.capacity(), 0u);
  EXPECT_TRUE(parser.head().method.empty());
  // Still usable for the next message.
  parser.reset();
  const std::string next = "GET /b HTTP/1.1\r\nHost: b\r\n\r\n";  // outlives the views
  ASSERT_EQ(parseWhole(parser, next), ParseStatus::kDone);
  EXPECT_EQ(parser.head().find("host"), "b");
}

TEST(Http1Parser, EverySplitGivesTheSameResult) {
  const std::string text =
      "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\nExpect: 100-continue\r\n"
      "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nX-Obs: caf\xc3\xa9\r\n\r\nBODY";
  HeadParser whole(Mode::kRequest);
  ASSERT_EQ(whole.parse(text), ParseStatus::kDone);
  for (size_t split = 1; split < text.size(); ++split) {
    HeadParser parser(Mode::kRequest);
    ParseStatus first = parser.parse(std::string_view(text).substr(0, split));
    // Copy into a new buffer: the parser must cope with the data moving between calls.
    std::string moved = text;
    ParseStatus second = first == ParseStatus::kDone ? first : parser.parse(moved);
    ASSERT_EQ(second, ParseStatus::kDone) << "split at " << split;
    const MessageHead& a = whole.head();
    const MessageHead& b = parser.head();
    EXPECT_EQ(b.method, a.method);
    EXPECT_EQ(b.target, a.target);
    EXPECT_EQ(b.head_bytes, a.head_bytes);
    ASSERT_EQ(b.headers.size(), a.headers.size());
    for (size_t i = 0; i < a.headers.size(); ++i) {
      EXPECT_EQ(b.headers[i].name, a.headers[i].name);
      EXPECT_EQ(b.headers[i].value, a.headers[i].value);
    }
    EXPECT_EQ(b.content_length, 10u);
    EXPECT_TRUE(b.expect_continue);
    EXPECT_TRUE(b.upgrade);
  }
  HeadParser bytewise(Mode::kRequest);
  EXPECT_EQ(parseBytewise(bytewise, text), ParseStatus::kDone);
  EXPECT_EQ(bytewise.head().head_bytes, whole.head().head_bytes);
}

TEST(Http1Parser, PipelinedRequestsEndAtHeadBytes) {
  std::string first = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n";
  std::string both = first + "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n";
  HeadParser parser(Mode::kRequest);
  ASSERT_EQ(parser.parse(both), ParseStatus::kDone);
  EXPECT_EQ(parser.head().head_bytes, first.size());
  parser.reset();
  ASSERT_EQ(parser.parse(std::string_view(both).substr(first.size())), ParseStatus::kDone);
  EXPECT_EQ(parser.head().target, "/2");
}

TEST(Http1Parser, LeadingEmptyLinesAreSkipped) {
  HeadParser parser(Mode::kRequest);
  ASSERT_EQ(parser.parse("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"), ParseStatus::kDone);
  EXPECT_EQ(parser.head().method, "GET");
}

TEST(Http1Parser, Framing) {
  struct Case {
    const char* text;
    BodyFraming framing;
    uint64_t length;
  } cases[] = {
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 42\r\n\r\n", BodyFraming::kContentLength, 42},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", BodyFraming::kContentLength, 0},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\ncontent-length: 7\r\n\r\n",
       BodyFraming::kContentLength, 7},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7, 7\r\n\r\n", BodyFraming::kContentLength,
       7},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", BodyFraming::kChunked,
       0},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: CHUNKED\r\n\r\n", BodyFraming::kChunked,
       0},
      {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", BodyFraming::kNone, 0},
  };
  for (const Case& c : cases) {
    HeadParser parser(Mode::kRequest);
    ASSERT_EQ(parser.parse(c.text), ParseStatus::kDone) << c.text << parser.errorMessage();
    EXPECT_EQ(parser.head().framing, c.framing) << c.text;
    EXPECT_EQ(parser.head().content_length, c.length) << c.text;
  }
}

TEST(Http1Parser, KeepAliveRules) {
  struct Case {
    const char* text;
    bool keep_alive;
  } cases[] = {
      {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, Close\r\n\r\n", false},
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
  };
  for (const Case& c : cases) {
    HeadParser parser(Mode::kRequest);
    ASSERT_EQ(parser.parse(c.text), ParseStatus::kDone) << c.text;
    EXPECT_EQ(parser.head().keep_alive, c.keep_alive) << c.text;
  }
}

struct Rejection {
  const char* name;
  std::string text;
  ParseError error;
};

class Http1Rejections : public ::testing::TestWithParam<Rejection> {};

TEST_P(Http1Rejections, RejectedWholeAndBytewise) {
  const Rejection& r = GetParam();
  Limits limits;
  limits.max_head_bytes = 1024;
  limits.max_headers = 8;
  limits.max_uri_bytes = 64;
  limits.max_body_bytes = 1000;
  HeadParser whole(Mode::kRequest, limits);
  EXPECT_EQ(whole.parse(r.text), ParseStatus::kError);
  EXPECT_EQ(whole.error(), r.error);
  EXPECT_STRNE(whole.errorMessage(), "");
  HeadParser bytewise(Mode::kRequest, limits);
  EXPECT_EQ(parseBytewise(bytewise, r.text), ParseStatus::kError);
  EXPECT_EQ(bytewise.error(), r.error);
}

const char* kHost = "Host: h\r\n";

INSTANTIATE_TEST_SUITE_P(
    AllOfThem, Http1Rejections,
    ::testing::Values(
        Rejection{"ClAndTe",
                  std::string("POST / HTTP/1.1\r\n") + kHost +
                      "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                  ParseError::kBadRequest},
        Rejection{"DifferingCl",
                  std::string("POST / HTTP/1.1\r\n") + kHost +
                      "Content-Length: 1\r\nContent-Length: 2\r\n\r\n",
                  ParseError::kBadRequest},
        Rejection{"DifferingClList",
                  std::string("POST / HTTP/1.1\r\n") + kHost + "Content-Length: 1, 2\r\n\r\n",
                  ParseError::kBadRequest},
        Rejection{"EmptyCl", std::string("POST / HTTP/1.1\r\n") + kHost + "Content-Length:\r\n\r\n",
                  ParseError::kBadRequest},
        Rejection{"SignedCl",
                  std::string("POST / HTTP/1.1\r\n") + kHost + "Content-Length: +5\r\n\r\n",
                  ParseError::kBadRequest},
        Rejection{"HugeCl",
                  std::string("POST / HTTP/1.1\r\n") + kHost +
                      "Content-Length: 99999999999999999999999\r\n\r\n",
                  ParseError::kBadRequest},
        Rejection{"GzipTe",
                  std::string("POST / HTTP/1.1\r\n") + kHost + "Transfer-Encoding: gzip\r\n\r\n",
                  ParseError::kBadRequest},
        Rejection{
            "ChunkedNotLast",
            std::string("POST / HTTP/1.1\r\n") + kHost + "Transfer-Encoding: chunked, gzip\r\n\r\n",
            ParseError::kBadRequest},
        Rejection{"ChunkedTwice",
                  std::string("POST / HTTP/1.1\r\n") + kHost +
                      "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                  ParseError::kBadRequest},
        Rejection{
            "GzipThenChunked",
            std::string("POST / HTTP/1.1\r\n") + kHost + "Transfer-Encoding: gzip, chunked\r\n\r\n",
            ParseError::kBadRequest},
        Rejection{"EmptyTe",
                  std::string("POST / HTTP/1.1\r\n") + kHost + "Transfer-Encoding: \r\n\r\n",
                  ParseError::kBadRequest},
        Rejection{"TeOnHttp10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
                  ParseError::kBadRequest},
        Rejection{"ObsFold", std::string("GET / HTTP/1.1\r\n") + kHost + "X: a\r\n b\r\n\r\n",
                  ParseError::kBadRequest},
        Rejection{"ObsFoldTab", std::string("GET / HTTP/1.1\r\n") + kHost + "X: a\r\n\tb\r\n\r\n",
                  ParseError::kBadRequest},
        Rejection{"BareCrInValue", std::string("GET / HTTP/1.1\r\n") + kHost + "X: a\rb\r\n\r\n",
                  ParseError::kBadRequest},
        Rejection{"BareCrInRequestLine", "GET /\r HTTP/1.1\r\nHost: h\r\n\r\n",
                  ParseError::kBadRequest},
        Rejection{"BareLf", "GET / HTTP/1.1\nHost: h\r\n\r\n", ParseError::kBadRequest},
        Rejection{"BareLfEnd", "GET / HTTP/1.1\r\nHost: h\r\n\n", ParseError::kBadRequest},
        Rejection{"SpaceBeforeColon", std::string("GET / HTTP/1.1\r\n") + kHost + "X : a\r\n\r\n",
                  ParseError::kBadRequest},
        Rejection{"SpaceInName", std::string("GET / HTTP/1.1\r\n") + kHost + "X Y: a\r\n\r\n",
                  ParseError::kBadRequest},
        Rejection{"EmptyName", std::string("GET / HTTP/1.1\r\n") + kHost + ": a\r\n\r\n",
                  ParseError::kBadRequest},
        Rejection{"NoColon", std::string("GET / HTTP/1.1\r\n") + kHost + "X\r\n\r\n",
                  ParseError::kBadRequest},
        Rejection{"ControlInName", std::string("GET / HTTP/1.1\r\n") + kHost + "X\x01Y: a\r\n\r\n",
                  ParseError::kBadRequest},
        Rejection{"HighByteInName",
                  std::string("GET / HTTP/1.1\r\n") + kHost + "X\xc3\xa9: a\r\n\r\n",
                  ParseError::kBadRequest},
        Rejection{"NulInValue",
                  std::string("GET / HTTP/1.1\r\n") + kHost + std::string("X: a\0b\r\n\r\n", 10),
                  ParseError::kBadRequest},
        Rejection{"NulInTarget", std::string("GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n", 28),
                  ParseError::kBadRequest},
        Rejection{"DelInValue", std::string("GET / HTTP/1.1\r\n") + kHost + "X: a\x7f\r\n\r\n",
                  ParseError::kBadRequest},
        Rejection{"MissingHost", "GET / HTTP/1.1\r\nX: 1\r\n\r\n", ParseError::kBadRequest},
        Rejection{"TwoHosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                  ParseError::kBadRequest},
        Rejection{"Http2", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", ParseError::kBadRequest},
        Rejection{"Http09", "GET /\r\n\r\n", ParseError::kBadRequest},
        Rejection{"LowercaseVersion", "GET / http/1.1\r\nHost: h\r\n\r\n", ParseError::kBadRequest},
        Rejection{"BadMethod", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", ParseError::kBadRequest},
        Rejection{"DoubleSpace", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", ParseError::kBadRequest},
        Rejection{"TrailingSpace", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", ParseError::kBadRequest},
        Rejection{"SpaceInTarget", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", ParseError::kBadRequest},
        Rejection{"UriTooLong", "GET /" + std::string(100, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n",
                  ParseError::kUriTooLong},
        Rejection{
            "HeadTooLarge",
            std::string("GET / HTTP/1.1\r\n") + kHost + "X: " + std::string(1100, 'a') + "\r\n\r\n",
            ParseError::kHeaderTooLarge},
        Rejection{"TooManyHeaders",
                  std::string("GET / HTTP/1.1\r\n") + kHost +
                      "A: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\nF: 1\r\nG: 1\r\nH: 1\r\n\r\n",
                  ParseError::kTooManyHeaders},
        Rejection{"BodyTooLarge",
                  std::string("POST / HTTP/1.1\r\n") + kHost + "Content-Length: 1001\r\n\r\n",
                  ParseError::kBodyTooLarge}),
    [](const ::testing::TestParamInfo<Rejection>& info) { return info.param.name; });

// The line scan takes 16 bytes a step (findLineBreak): every byte value, at every position of a
// value around the steps' edges, must be taken or refused exactly as a field value allows
// (HTAB, SP, VCHAR, obs-text), whole and byte by byte, and a value found clean must be kept.
TEST(Http1Parser, EveryByteAtEveryPositionOfAValue) {
  for (int c = 0; c < 256; ++c) {
    if (c == '\r' || c == '\n') continue;  // line ends: covered by the rejections above
    const bool allowed = c == '\t' || (c >= 0x20 && c != 0x7f);
    for (size_t at = 0; at < 40; ++at) {
      std::string value(40, 'v');
      value[at] = static_cast<char>(c);
      const std::string text = "GET / HTTP/1.1\r\nHost: h\r\nX-V: " + value + "\r\n\r\n";
      for (bool bytewise : {false, true}) {
        HeadParser parser(Mode::kRequest);
        const ParseStatus status = bytewise ? parseBytewise(parser, text) : parser.parse(text);
        SCOPED_TRACE("byte " + std::to_string(c) + " at " + std::to_string(at) +
                     (bytewise ? " bytewise" : " whole"));
        if (!allowed) {
          EXPECT_EQ(status, ParseStatus::kError);
          EXPECT_EQ(parser.error(), ParseError::kBadRequest);
          continue;
        }
        ASSERT_EQ(status, ParseStatus::kDone);
        std::string_view expected(value);
        // Whitespace at either end of a value is not part of it.
        while (!expected.empty() && (expected.front() == ' ' || expected.front() == '\t'))
          expected.remove_prefix(1);
        while (!expected.empty() && (expected.back() == ' ' || expected.back() == '\t'))
          expected.remove_suffix(1);
        EXPECT_EQ(parser.head().find("x-v"), expected);
      }
    }
  }
}

TEST(Http1Parser, UriTooLongIsSeenBeforeTheLineEnds) {
  Limits limits;
  limits.max_uri_bytes = 64;
  HeadParser parser(Mode::kRequest, limits);
  EXPECT_EQ(parser.parse("GET /" + std::string(200, 'a')), ParseStatus::kError);
  EXPECT_EQ(parser.error(), ParseError::kUriTooLong);
}

TEST(Http1Parser, HeadTooLargeIsSeenBeforeTheHeadEnds) {
  Limits limits;
  limits.max_head_bytes = 256;
  HeadParser parser(Mode::kRequest, limits);
  EXPECT_EQ(parser.parse("GET / HTTP/1.1\r\nX: " + std::string(300, 'a')), ParseStatus::kError);
  EXPECT_EQ(parser.error(), ParseError::kHeaderTooLarge);
}

TEST(Http1Parser, LimitsAreInclusive) {
  Limits limits;
  limits.max_headers = 2;
  limits.max_uri_bytes = 10;
  HeadParser parser(Mode::kRequest, limits);
  EXPECT_EQ(parser.parse("GET /123456789 HTTP/1.1\r\nHost: h\r\nX: 1\r\n\r\n"), ParseStatus::kDone);
}

TEST(Http1Parser, Responses) {
  struct Case {
    const char* text;
    bool head_request;
    int status;
    BodyFraming framing;
    bool keep_alive;
  } cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, 200, BodyFraming::kContentLength,
       true},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, 200, BodyFraming::kChunked,
       true},
      {"HTTP/1.1 200 OK\r\n\r\n", false, 200, BodyFraming::kUntilClose, false},
      {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, 200, BodyFraming::kNone, true},
      {"HTTP/1.1 204 No Content\r\n\r\n", false, 204, BodyFraming::kNone, true},
      {"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", false, 304, BodyFraming::kNone,
       true},
      {"HTTP/1.1 100 Continue\r\n\r\n", false, 100, BodyFraming::kNone, true},
      {"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false, 200, BodyFraming::kContentLength,
       false},
      {"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", false, 404, BodyFraming::kContentLength, true},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, 200, BodyFraming::kUntilClose,
       false},
  };
  for (const Case& c : cases) {
    HeadParser parser(Mode::kResponse);
    if (c.head_request) parser.setRequestMethod("HEAD");
    ASSERT_EQ(parser.parse(c.text), ParseStatus::kDone) << c.text << parser.errorMessage();
    EXPECT_EQ(parser.head().status, c.status) << c.text;
    EXPECT_EQ(parser.head().framing, c.framing) << c.text;
    EXPECT_EQ(parser.head().keep_alive, c.keep_alive) << c.text;
  }
  HeadParser reason(Mode::kResponse);
  ASSERT_EQ(reason.parse("HTTP/1.1 418 I'm a teapot\r\n\r\n"), ParseStatus::kDone);
  EXPECT_EQ(reason.head().reason, "I'm a teapot");
}

TEST(Http1Parser, BadResponses) {
  for (const char* text :
       {"HTTP/9 banana\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1 099 X\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "HTTP/1.1 200 OK\nX: 1\r\n\r\n",
        "ICY 200 OK\r\n\r\n"}) {
    HeadParser parser(Mode::kResponse);
    EXPECT_EQ(parser.parse(text), ParseStatus::kError) << text;
    EXPECT_EQ(parser.error(), ParseError::kBadResponse) << text;
  }
}

TEST(Http1Parser, ResetKeepsWorking) {
  HeadParser parser(Mode::kRequest);
  ASSERT_EQ(parser.parse("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n\r\n"), ParseStatus::kDone);
  parser.reset();
  ASSERT_EQ(parser.parse("GET /x HTTP/1.0\r\n\r\n"), ParseStatus::kDone);
  EXPECT_EQ(parser.head().target, "/x");
  EXPECT_TRUE(parser.head().headers.empty());
  EXPECT_FALSE(parser.head().keep_alive);
  parser.reset();
  EXPECT_EQ(parser.parse("BAD\r\n\r\n"), ParseStatus::kError);
  parser.reset();
  EXPECT_EQ(parser.parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), ParseStatus::kDone);
}

TEST(Http1Helpers, TokensAndCase) {
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_FALSE(iequals("a", "ab"));
  EXPECT_TRUE(headerHasToken("keep-alive, Upgrade", "upgrade"));
  EXPECT_TRUE(headerHasToken(" close ", "close"));
  EXPECT_FALSE(headerHasToken("closed", "close"));
  EXPECT_FALSE(headerHasToken("", "close"));
}

}  // namespace
}  // namespace subgate::http1

namespace subgate::http1 {
namespace {

TEST(MessageHeadRebase, ViewsFollowMovedBytes) {
  std::string first = "GET /a?b=1 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n";
  HeadParser parser(HeadParser::Mode::kRequest);
  ASSERT_EQ(parser.parse(first), ParseStatus::kDone);
  std::string second = first;  // the same bytes elsewhere
  parser.rebaseHead(first.data(), second.data());
  first.assign(first.size(), 'x');  // the old bytes are gone
  const MessageHead& head = parser.head();
  EXPECT_EQ(head.method, "GET");
  EXPECT_EQ(head.target, "/a?b=1");
  EXPECT_EQ(head.path, "/a");
  EXPECT_EQ(head.query, "b=1");
  EXPECT_EQ(head.find("upgrade"), "websocket");
  EXPECT_EQ(head.headers[0].name.data(), second.data() + 21);
}

}  // namespace
}  // namespace subgate::http1
